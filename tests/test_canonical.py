"""identity.canonical: deterministic CBOR in, and only the plain data model out."""

from __future__ import annotations

import random
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity.canonical import (
    INT_MAX,
    INT_MIN,
    NonCanonicalCbor,
    decode,
    encode,
    encode_in_order,
    key_order,
)


@pytest.mark.parametrize(
    ("hex_bytes", "value"),
    [
        ("00", 0),
        ("1bffffffffffffffff", 2**64 - 1),  # RFC 8949 appendix A
        ("3bffffffffffffffff", -(2**64)),
        ("a201020304", {1: 2, 3: 4}),
        ("8301820203820405", [1, [2, 3], [4, 5]]),
        ("f6", None),
        ("f5", True),
    ],
)
def test_rfc_8949_examples_round_trip(hex_bytes: str, value: object) -> None:
    assert decode(bytes.fromhex(hex_bytes)) == value
    assert encode(value).hex() == hex_bytes


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("c249010000000000000000"),  # bignum 2^64 (tag 2)
        bytes.fromhex("c349010000000000000000"),  # negative bignum (tag 3)
        bytes.fromhex("fb3ff8000000000000"),  # float 1.5
        bytes.fromhex("f97e00"),  # NaN
        bytes.fromhex("c074323031332d30332d32315432303a30343a30305a"),  # tag 0 date
        bytes.fromhex("d9010343010203"),  # an unknown tag around bytes
        bytes.fromhex("a1fb3ff800000000000001"),  # a float map key
    ],
)
def test_values_outside_the_plain_model_are_refused(data: bytes) -> None:
    with pytest.raises(NonCanonicalCbor):
        decode(data)


def test_boundaries_of_the_integer_range() -> None:
    assert decode(encode(INT_MAX)) == INT_MAX and decode(encode(INT_MIN)) == INT_MIN
    for outside in (INT_MAX + 1, INT_MIN - 1, 1 << 16000):
        with pytest.raises(NonCanonicalCbor, match="64 bits"):
            decode(cbor2.dumps(outside, canonical=True))


def test_non_canonical_trailing_and_oversized_input() -> None:
    for data in (bytes.fromhex("1817"), bytes.fromhex("a203040102"), b"\x00\x00", b"\x9f\xff"):
        with pytest.raises(NonCanonicalCbor):
            decode(data)
    with pytest.raises(NonCanonicalCbor, match="limit"):
        decode(encode(b"x" * 100), max_size=50)


def test_deep_nesting_costs_no_stack() -> None:
    deep = bytes.fromhex("81") * 300 + b"\x00"  # within cbor2's own nesting limit
    value = decode(deep)
    for _ in range(300):
        value = value[0]
    assert value == 0


# --- decode checks map key order, then compares with the plain encoding ----------------------

_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(INT_MIN, INT_MAX),
    st.binary(max_size=8),
    st.text(max_size=30),  # lengths on both sides of 24 (a longer text header)
)
_keys = st.one_of(st.text(max_size=30), st.integers(-300, 300), st.binary(max_size=4))
_plain = st.recursive(
    _leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=20,
)


def _shuffled(value: Any, rng: random.Random) -> Any:
    """`value` with every map's keys in a random order (encoded plainly: that order)."""
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _shuffled(item, rng) for key, item in items}
    return value


def _accepted_by_definition(data: bytes) -> bool:
    """The definition: the bytes are exactly cbor2's deterministic encoding of what they hold."""
    return cbor2.dumps(cbor2.loads(data), canonical=True) == data


@settings(max_examples=400, deadline=None)
@given(_plain, st.randoms(use_true_random=False))
def test_decode_accepts_exactly_the_deterministic_encoding(value: Any, rng: random.Random) -> None:
    """Maps of text, integer and byte keys, in any order: decode accepts the bytes if and only
    if they are the deterministic encoding (the key order check plus the plain re-encoding
    give the same answer as a sorting re-encoding)."""
    data = cbor2.dumps(_shuffled(value, rng))
    if _accepted_by_definition(data):
        assert decode(data) == value
    else:
        with pytest.raises(NonCanonicalCbor):
            decode(data)


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, 1000: 2},  # shorter encoded key first: "a" (2 bytes) before 1000 (3 bytes)
        {"b": 1, "aa": 2},  # shorter first, not alphabetical
        {"a" * 23: 1, "a" * 24: 2},  # the one-byte text header, then the two-byte one
        {1: 1, -1: 2, b"": 3, "": 4},  # same length: major type order
    ],
)
def test_map_key_order_either_way(value: dict[Any, int]) -> None:
    data = encode(value)
    assert decode(data) == value
    assert list(decode(data)) == list(value)  # the keys in deterministic order, as written
    backwards = cbor2.dumps(dict(reversed(list(value.items()))))
    with pytest.raises(NonCanonicalCbor, match="order"):
        decode(backwards)


def test_a_cyclic_value_is_refused_not_walked() -> None:
    cyclic = bytes.fromhex("d81c81d81d00")  # shareable [ shared-ref 0 ]: a list inside itself
    with pytest.raises(NonCanonicalCbor):
        decode(cyclic)


@given(st.dictionaries(st.text(max_size=30), _leaves, max_size=6))
def test_encode_in_order_is_encode_for_keys_in_key_order(value: dict[str, Any]) -> None:
    ordered = {key: value[key] for key in sorted(value, key=key_order)}
    assert encode_in_order(ordered) == encode(value)


@given(st.one_of(_keys, st.text(st.characters(max_codepoint=127), max_size=30), st.none()))
def test_key_order_is_the_deterministic_encoding(key: Any) -> None:
    encoded = cbor2.dumps(key, canonical=True)
    assert key_order(key) == (len(encoded), encoded)


def test_remembered_key_orders_change_no_answer() -> None:
    """Key sequences found in order are remembered (identity/canonical.py); a map with the same
    keys in another order, a boolean key equal to a remembered integer, and any map once the
    memory is full are still checked."""
    in_order = encode({"mid": b"", "seq": 1, "text": "", "type": "text"})
    for _ in range(2):
        assert decode(in_order)["seq"] == 1
        with pytest.raises(NonCanonicalCbor, match="order"):
            decode(cbor2.dumps({"seq": 1, "mid": b"", "text": "", "type": "text"}))
    assert decode(bytes.fromhex("a20117170b")) == {1: 23, 23: 11}  # integer keys, in order
    with pytest.raises(NonCanonicalCbor, match="order"):
        decode(bytes.fromhex("a2f5171700"))  # {true: 23, 23: 0}: true (f5) sorts after 23 (17)
    for i in range(300):  # more sequences than are remembered
        assert decode(encode({f"k{i}": 0, f"key{i}": 1})) == {f"k{i}": 0, f"key{i}": 1}
    with pytest.raises(NonCanonicalCbor, match="order"):
        decode(cbor2.dumps({"key299": 1, "k299": 0}))
