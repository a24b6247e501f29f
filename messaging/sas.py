"""Short Authentication String (SAS): 7 emoji and 3 four-digit numbers from a handshake hash.

After the didlink handshake (commit + Noise KK, specs/handshake.md) both sides hold the same
Noise handshake hash h. Each derives six bytes from it and shows them to its user, as emoji and
as numbers; the two people compare what they see (in person, by voice) and confirm. A man in the
middle ends up with two different handshake hashes, so the strings differ - and because the
responder committed to its ephemeral key before seeing the initiator's, he gets a single guess
at making them equal: 2^-42 for the emoji (specs/verification.md, section 1).

Derivation (specs/verification.md 1.1):
    sas = HKDF-SHA256(ikm = h, salt = absent (HashLen zero bytes), info = b"didlink/v1 sas", L = 6)
The info label is this derivation's own purpose string: these bytes are shown on screen and are
never used as, or derived into, a key.

Encodings are Matrix's (client-server API, "SAS method: emoji" / "SAS method: decimal"):
    emoji:   the first 42 bits of sas, as 7 groups of 6 bits, most significant bit first, each
             an index into the 64-entry table in `messaging.sas_emoji`;
    decimal: the first 40 bits of sas (5 bytes B0..B4), as three 13-bit numbers plus 1000:
             (B0 << 5 | B1 >> 3), ((B1 & 0x7) << 10 | B2 << 2 | B3 >> 6),
             ((B3 & 0x3F) << 7 | B4 >> 1), each + 1000, so every number is in 1000..9191.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from messaging.errors import LocalProtocolError
from messaging.sas_emoji import SAS_EMOJI, SasEmoji

__all__ = [
    "DECIMAL_OFFSET",
    "EMOJI_COUNT",
    "SAS_INFO",
    "SAS_LENGTH",
    "SasEmoji",
    "ShortAuthString",
    "decimal_numbers",
    "derive_sas_bytes",
    "emoji_indices",
]

SAS_INFO = b"didlink/v1 sas"
"""HKDF info: the purpose label of the SAS bytes (never a session key)."""

SAS_LENGTH = 6
"""Bytes of HKDF output: 42 bits are used by the emoji, 39 by the decimal method."""

HANDSHAKE_HASH_LENGTHS = (32, 64)
"""Noise HASHLEN for SHA-256 / BLAKE2s and SHA-512 / BLAKE2b handshake hashes."""

EMOJI_COUNT = 7
EMOJI_BITS = 6
DECIMAL_BITS = 13
DECIMAL_OFFSET = 1000


def derive_sas_bytes(handshake_hash: bytes) -> bytes:
    """The 6 SAS bytes of a Noise handshake hash (HKDF-SHA256, info `SAS_INFO`, no salt)."""
    if not isinstance(handshake_hash, bytes | bytearray):
        raise LocalProtocolError("the handshake hash must be bytes")
    if len(handshake_hash) not in HANDSHAKE_HASH_LENGTHS:
        raise LocalProtocolError(f"a handshake hash is 32 or 64 bytes, not {len(handshake_hash)}")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=SAS_LENGTH, salt=None, info=SAS_INFO)
    return hkdf.derive(bytes(handshake_hash))


def _check_sas_bytes(sas: bytes, needed: int) -> None:
    if len(sas) < needed:
        raise LocalProtocolError(f"SAS encoding needs at least {needed} bytes, got {len(sas)}")


def emoji_indices(sas: bytes) -> tuple[int, ...]:
    """Matrix "SAS method: emoji": the first 42 bits as 7 six-bit numbers, MSB first."""
    _check_sas_bytes(sas, SAS_LENGTH)
    bits = int.from_bytes(sas[:SAS_LENGTH], "big")  # 48 bits, b0 most significant
    total = SAS_LENGTH * 8
    return tuple((bits >> (total - EMOJI_BITS * (i + 1))) & 0x3F for i in range(EMOJI_COUNT))


def decimal_numbers(sas: bytes) -> tuple[int, int, int]:
    """Matrix "SAS method: decimal": three 13-bit numbers from the first 5 bytes, plus 1000."""
    _check_sas_bytes(sas, 5)
    b0, b1, b2, b3, b4 = sas[:5]
    return (
        ((b0 << 5) | (b1 >> 3)) + DECIMAL_OFFSET,
        (((b1 & 0x7) << 10) | (b2 << 2) | (b3 >> 6)) + DECIMAL_OFFSET,
        (((b3 & 0x3F) << 7) | (b4 >> 1)) + DECIMAL_OFFSET,
    )


@dataclass(frozen=True)
class ShortAuthString:
    """What each user is shown after a handshake: 7 emoji and 3 numbers (1000..9191).

    Both sides of an honest handshake compute the same value; compare it with `==` only in tests,
    people compare it by looking.
    """

    emoji: tuple[SasEmoji, ...]
    decimal: tuple[int, int, int]

    @classmethod
    def from_handshake_hash(cls, handshake_hash: bytes) -> ShortAuthString:
        """The SAS of a completed handshake (specs/verification.md 1.1)."""
        return cls.from_sas_bytes(derive_sas_bytes(handshake_hash))

    @classmethod
    def from_sas_bytes(cls, sas: bytes) -> ShortAuthString:
        """Encode 6 already-derived SAS bytes (the Matrix encodings; used by known answers)."""
        if len(sas) != SAS_LENGTH:
            raise LocalProtocolError(f"SAS bytes are {SAS_LENGTH} bytes, got {len(sas)}")
        emoji = tuple(SAS_EMOJI[i] for i in emoji_indices(sas))
        return cls(emoji=emoji, decimal=decimal_numbers(sas))

    def indices(self) -> tuple[int, ...]:
        """The 7 table indices (0..63)."""
        return tuple(e.index for e in self.emoji)

    def emoji_string(self, separator: str = "  ") -> str:
        """The 7 emoji on one line, e.g. for a terminal."""
        return separator.join(e.emoji for e in self.emoji)

    def names(self) -> tuple[str, ...]:
        """The English names of the 7 emoji (for reading aloud, or terminals without emoji)."""
        return tuple(e.name for e in self.emoji)

    def decimal_string(self, separator: str = "-") -> str:
        """The 3 numbers joined, e.g. '4936-1234-9191'."""
        return separator.join(str(n) for n in self.decimal)
