"""Padmé padding (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
Communication with PURBs", PETS 2019, section 4) for frame plaintexts (specs/frames.md s.2).

`pad(x)` appends the marker byte 0x80 and then zero bytes up to `padme(len(x) + 1)`. The
Padmé length function keeps the exponent of the length and rounds its low mantissa bits, so a
padded length leaks O(log log L) bits of the true length, with at most ~12% overhead.
`unpad` strips trailing zeros and one 0x80 marker (ISO/IEC 7816-4 style), unambiguously.
"""

from __future__ import annotations

from messaging.errors import RemoteProtocolError

MARKER = 0x80


class PaddingError(RemoteProtocolError):
    """The decrypted plaintext does not end in valid padding."""

    def __init__(self, message: str = "the frame padding is malformed") -> None:
        super().__init__(message)


def padme(length: int) -> int:
    """The Padmé padded length for `length` bytes (the paper's Algorithm 1)."""
    if length < 0:
        raise ValueError("length must be non-negative")
    if length < 2:
        return length
    e = length.bit_length() - 1  # floor(log2 L)
    s = e.bit_length()  # floor(log2 E) + 1
    last_bits = e - s
    mask = (1 << last_bits) - 1
    return (length + mask) & ~mask


def pad(plaintext: bytes) -> bytes:
    """Append 0x80 and zeros so the result is `padme(len(plaintext) + 1)` bytes long."""
    return plaintext + padding_for(len(plaintext))


def padding_for(length: int) -> bytes:
    """What `pad` appends to a plaintext of `length` bytes: 0x80, then zeros."""
    return b"\x80" + bytes(padme(length + 1) - length - 1)


def unpad(padded: bytes) -> bytes:
    """Inverse of `pad`; raises `PaddingError` if the padding is not exactly what `pad` makes."""
    stripped = padded.rstrip(b"\x00")
    if not stripped or stripped[-1] != MARKER:
        raise PaddingError()
    body = stripped[:-1]
    if len(padded) != padme(len(body) + 1):
        raise PaddingError()
    return body
