"""Deterministic CBOR (RFC 8949 section 4.2.1, core deterministic encoding) for wire objects.

Anything we sign or hash is encoded with `encode`; anything we receive is decoded with
`decode`, which refuses input that is not exactly what `encode` would have produced (so a
signature is never checked over bytes that have a second spelling), trailing bytes, and input
over `max_size`.
"""

from __future__ import annotations

from typing import Any

import cbor2

DEFAULT_MAX_SIZE = 64 * 1024


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
    return value
