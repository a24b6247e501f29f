"""Deterministic CBOR (RFC 8949 section 4.2.1, core deterministic encoding) for wire objects.

Anything we sign or hash is encoded with `encode`; anything we receive is decoded with
`decode`, which refuses input that is not exactly what `encode` would have produced (so a
signature is never checked over bytes that have a second spelling), trailing bytes, input over
`max_size`, and anything but the plain data model our wire objects use: integers that fit in
64 bits (no bignum tags), byte and text strings, booleans, null, arrays and maps. Floats, tags
and other CBOR types never appear in a didlink wire object, so they are refused here, before any
schema sees them.
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


def decode(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> Any:
    """Decode deterministic CBOR, rejecting oversized, non-canonical or trailing input."""
    if len(data) > max_size:
        raise NonCanonicalCbor(f"{len(data)} bytes is over the limit of {max_size}")
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types, including ValueError and EOFError
        raise NonCanonicalCbor("not valid CBOR") from exc
    try:
        again = encode(value)
    except Exception as exc:
        raise NonCanonicalCbor("CBOR holds values that cannot be re-encoded") from exc
    if again != data:
        raise NonCanonicalCbor("CBOR is not in deterministic encoding or has trailing bytes")
    _check_plain(value)
    return value


_LEAVES = frozenset({bytes, str, bool, type(None)})


def _check_plain(value: Any) -> None:
    """Refuse values outside the plain data model (iteratively: nesting depth costs no stack).

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
            pending.extend(item.keys())
            pending.extend(item.values())
        else:
            raise NonCanonicalCbor(f"CBOR holds a {kind.__name__}, which no wire object uses")
