"""Deterministic CBOR (RFC 8949 section 4.2.1, core deterministic encoding) for wire objects.

Anything we sign or hash is encoded with `encode`; anything we receive is decoded with
`decode`, which refuses input that is not exactly what `encode` would have produced (so a
signature is never checked over bytes that have a second spelling), trailing bytes, input over
`max_size`, and anything but the plain data model our wire objects use: integers that fit in
64 bits (no bignum tags), byte and text strings, booleans, null, arrays and maps. Floats, tags
and other CBOR types never appear in a didlink wire object, so they are refused here, before any
schema sees them.

In the plain data model cbor2's two encoders differ only in the order of map keys: its
deterministic mode sorts them (shorter encoded key first, then bytewise: the order `encode`
writes), its plain mode keeps the dict's order. So `decode` checks each decoded map's key order
and compares the input with the plain encoding, which skips the sort's copies and is exact:
cbor2 decodes a map's keys in their wire order. A sequence of short text keys found in order is
remembered (up to 256), so the many texts of one frame cost one order check. `encode_in_order`
is `encode` for a value the caller built with every map's keys already in that order
(messaging/frames.py does so).
"""

from __future__ import annotations

from typing import Any

import cbor2

DEFAULT_MAX_SIZE = 64 * 1024
INT_MIN = -(2**64)
INT_MAX = 2**64 - 1


class NonCanonicalCbor(ValueError):
    """The bytes are not valid deterministic CBOR."""


def encode(value: Any) -> bytes:
    """Encode `value` as deterministic CBOR."""
    return cbor2.dumps(value, canonical=True)


def encode_in_order(value: Any) -> bytes:
    """`encode` for a plain value whose maps' keys are already in deterministic order
    (`key_order`); the caller guarantees both (its tests compare the result with `encode`)."""
    return cbor2.dumps(value)


def decode(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> Any:
    """Decode deterministic CBOR, rejecting oversized, non-canonical or trailing input."""
    if len(data) > max_size:
        raise NonCanonicalCbor(f"{len(data)} bytes is over the limit of {max_size}")
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types, including ValueError and EOFError
        raise NonCanonicalCbor("not valid CBOR") from exc
    try:
        again = cbor2.dumps(value)  # keeps the map keys' order as read: `_check_plain` checks it
    except Exception as exc:  # a cyclic value (tags 28/29), for one: it is never walked
        raise NonCanonicalCbor("CBOR holds values that cannot be re-encoded") from exc
    _check_plain(value)  # first, so that a float or a tag is named as such
    if again != data:
        raise NonCanonicalCbor("CBOR is not in deterministic encoding or has trailing bytes")
    return value


_LEAVES = frozenset({bytes, str, bool, type(None)})


def _check_plain(value: Any) -> None:
    """Refuse values outside the plain data model, and maps whose keys are not in deterministic
    order (iteratively: nesting depth costs no stack).

    Exact types on purpose: cbor2 decodes to the builtin types themselves, so anything else
    (a tag, a simple value, a float, a subclass) is outside the data model.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind in _LEAVES:
            continue
        if kind is int:
            if not INT_MIN <= item <= INT_MAX:
                raise NonCanonicalCbor("CBOR holds an integer beyond 64 bits")
        elif kind is list:
            pending.extend(item)
        elif kind is dict:
            _check_key_order(item)
            pending.extend(item.keys())
            pending.extend(item.values())
        else:
            raise NonCanonicalCbor(f"CBOR holds a {kind.__name__}, which no wire object uses")


_ORDERED_TEXT_KEYS: set[tuple[str, ...]] = set()
"""Sequences of short text keys already found in deterministic order (a wire object's field
names): a map with the same keys, in the same order, is in order too. Only text keys: a text
string equals nothing but the same text, whereas 1 == True would let a map keyed by a boolean
pass as one keyed by the integer."""
_ORDERED_TEXT_KEYS_MAX = 256  # sequences remembered; later ones are checked every time
_ORDERED_TEXT_KEYS_LEN = 16  # keys in a sequence worth remembering (a wire object's fields)


def _check_key_order(mapping: dict[Any, Any]) -> None:
    """Refuse a map whose keys are not in deterministic order (each after the one before)."""
    keys = tuple(mapping)
    if keys in _ORDERED_TEXT_KEYS:
        return
    earlier: tuple[int, bytes] | None = None
    for key in keys:
        later = key_order(key)
        if earlier is not None and later <= earlier:
            raise NonCanonicalCbor("CBOR map keys are not in deterministic order")
        earlier = later
    if (
        len(_ORDERED_TEXT_KEYS) < _ORDERED_TEXT_KEYS_MAX
        and len(keys) <= _ORDERED_TEXT_KEYS_LEN
        and all(type(key) is str and len(key) < 24 for key in keys)
    ):
        _ORDERED_TEXT_KEYS.add(keys)


_SMALL_UINTS = [bytes((n,)) for n in range(24)]  # 0..23: the whole encoding is one byte
_SHORT_TEXT_HEADERS = [bytes((0x60 + n,)) for n in range(24)]  # text of 0..23 bytes


def key_order(key: Any) -> tuple[int, bytes]:
    """A map key's place in deterministic order (shorter encoded key first, then bytewise): the
    length and bytes of its deterministic encoding, built directly for the keys our wire
    objects use (small integers, short ASCII text)."""
    kind = type(key)
    if kind is int and 0 <= key < 24:
        return 1, _SMALL_UINTS[key]
    if kind is str and len(key) < 24 and key.isascii():
        return len(key) + 1, _SHORT_TEXT_HEADERS[len(key)] + key.encode("ascii")
    try:  # anything else (a key outside the plain model is refused when it is walked)
        encoded = cbor2.dumps(key, canonical=True)
    except Exception as exc:
        raise NonCanonicalCbor("CBOR holds a map key that cannot be re-encoded") from exc
    return len(encoded), encoded
