"""identity.canonical: deterministic CBOR in, and only the plain data model out."""

from __future__ import annotations

import cbor2
import pytest

from identity.canonical import INT_MAX, INT_MIN, NonCanonicalCbor, decode, encode


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
