"""Safety numbers: a static 60-digit fingerprint of two DIDs, compared offline.

Unlike the SAS (which is bound to one handshake), a safety number depends only on the two
identities, so two people can compare it at any time - in person, from each other's screens or
by scanning a QR code - with no connection. It is Signal's numeric fingerprint (libsignal,
rust/protocol/src/fingerprint.rs), with didlink's choice of inputs (specs/verification.md 2):

    per party:  H_0 = SHA-512(version (2 bytes BE, 0x0000) || key || stable_id || key)
                H_i = SHA-512(H_{i-1} || key)                 for i = 1 .. iterations-1
                (iterations = 5200 in total, counting H_0)
                digits = the first 30 bytes of H as 6 chunks of 5 bytes, each read as a 40-bit
                         big-endian integer mod 100000, zero-padded to 5 digits -> 30 digits
    pair:       the two 30-digit strings, sorted, concatenated -> 60 digits

Note the key appears twice in H_0 (after the version and again after the stable id): that is
what libsignal does and what its known answer needs. In didlink a party's key is its 32-byte
Ed25519 public key (from its did:key) and its stable id is its DID string in UTF-8.

Because the halves are sorted, both sides compute the same 60 digits, so the scannable form is
simply `didlink-sn:1:` + those digits: scanning the other phone's QR code and comparing the
payload with one's own (in constant time) checks the whole number at once.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from identity.did_key import ed25519_public_key
from messaging.errors import MessagingError

__all__ = [
    "FINGERPRINT_VERSION",
    "ITERATIONS",
    "QR_PREFIX",
    "InvalidSafetyNumberPayload",
    "SafetyNumber",
    "SafetyNumberVersionMismatch",
    "fingerprint_digits",
    "iterated_hash",
    "numeric_fingerprint",
]

FINGERPRINT_VERSION = 0
"""The 2-byte version hashed into H_0 (libsignal's FINGERPRINT_VERSION 0x0000)."""

ITERATIONS = 5200
"""SHA-512 invocations per party, counting the first (libsignal's value)."""

MAX_ITERATIONS = 1_000_000
DIGITS_PER_PARTY = 30
DIGITS = 2 * DIGITS_PER_PARTY
GROUP = 5

QR_SCHEME = "didlink-sn"
QR_VERSION = 1
QR_PREFIX = f"{QR_SCHEME}:{QR_VERSION}:"
"""The scannable form is QR_PREFIX followed by the 60 digits."""


class InvalidSafetyNumberPayload(MessagingError):
    """The scanned code is not a didlink safety number."""


class SafetyNumberVersionMismatch(InvalidSafetyNumberPayload):
    """The scanned safety number was made by an incompatible version of didlink."""


def iterated_hash(version: int, key: bytes, stable_id: bytes, iterations: int) -> bytes:
    """One party's 64-byte fingerprint hash H_{iterations-1} (see the module docstring)."""
    if not 0 <= version <= 0xFFFF:
        raise ValueError("the fingerprint version is a 16-bit number")
    if not 1 < iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be in 2..{MAX_ITERATIONS}")
    digest = hashlib.sha512(version.to_bytes(2, "big") + key + stable_id + key).digest()
    for _ in range(1, iterations):
        digest = hashlib.sha512(digest + key).digest()
    return digest


def fingerprint_digits(fingerprint: bytes) -> str:
    """30 digits from the first 30 bytes: 6 x (40-bit big-endian integer mod 100000, %05d)."""
    if len(fingerprint) < 30:
        raise ValueError("a fingerprint hash has at least 30 bytes")
    chunks = (fingerprint[i : i + 5] for i in range(0, 30, 5))
    return "".join(f"{int.from_bytes(chunk, 'big') % 100_000:05d}" for chunk in chunks)


def numeric_fingerprint(
    version: int,
    local_key: bytes,
    local_id: bytes,
    remote_key: bytes,
    remote_id: bytes,
    iterations: int = ITERATIONS,
) -> str:
    """The 60-digit displayable fingerprint of a pair (libsignal DisplayableFingerprint).

    Symmetric: swapping local and remote gives the same string.
    """
    local = fingerprint_digits(iterated_hash(version, local_key, local_id, iterations))
    remote = fingerprint_digits(iterated_hash(version, remote_key, remote_id, iterations))
    return local + remote if local < remote else remote + local


def _check_digits(digits: str) -> None:
    if len(digits) != DIGITS or not (digits.isascii() and digits.isdigit()):
        raise InvalidSafetyNumberPayload(f"a safety number is {DIGITS} digits (0-9)")


@dataclass(frozen=True)
class SafetyNumber:
    """The 60-digit safety number of two DIDs; the same on both sides."""

    digits: str

    def __post_init__(self) -> None:
        _check_digits(self.digits)

    @classmethod
    def for_pair(cls, local_did: str, peer_did: str) -> SafetyNumber:
        """The safety number of two Ed25519 did:keys (raises an IdentityError for a bad DID)."""
        return cls(
            numeric_fingerprint(
                FINGERPRINT_VERSION,
                ed25519_public_key(local_did),
                local_did.encode("utf-8"),
                ed25519_public_key(peer_did),
                peer_did.encode("utf-8"),
            )
        )

    @classmethod
    def from_qr_payload(cls, payload: bytes | str) -> SafetyNumber:
        """Parse a scanned `didlink-sn:1:<60 digits>` payload (InvalidSafetyNumberPayload)."""
        if isinstance(payload, bytes | bytearray):
            try:
                payload = bytes(payload).decode("ascii")
            except UnicodeDecodeError:
                raise InvalidSafetyNumberPayload("the scanned code is not text") from None
        if not isinstance(payload, str):
            raise InvalidSafetyNumberPayload("the scanned code is not text")
        scheme, sep1, rest = payload.partition(":")
        version, sep2, digits = rest.partition(":")
        if scheme != QR_SCHEME or not sep1 or not sep2:
            raise InvalidSafetyNumberPayload("the scanned code is not a didlink safety number")
        if version != str(QR_VERSION):
            raise SafetyNumberVersionMismatch(
                f"the scanned safety number has version {version[:8]!r}; this didlink "
                f"understands version {QR_VERSION}"
            )
        return cls(digits)

    def groups(self) -> tuple[str, ...]:
        """12 groups of 5 digits, in display order."""
        return tuple(self.digits[i : i + GROUP] for i in range(0, DIGITS, GROUP))

    def display_lines(self) -> tuple[str, str, str]:
        """Three lines of four groups, as shown on screen."""
        g = self.groups()
        return (" ".join(g[0:4]), " ".join(g[4:8]), " ".join(g[8:12]))

    def qr_payload(self) -> str:
        """The scannable form: 'didlink-sn:1:' + 60 digits (identical on both devices)."""
        return QR_PREFIX + self.digits

    def compare_scanned(self, payload: bytes | str) -> bool:
        """True if the payload scanned from the other device is this safety number.

        Compares in constant time. A payload that is not a didlink safety number raises
        InvalidSafetyNumberPayload (a version this code does not know: its subclass
        SafetyNumberVersionMismatch) rather than returning False, so the UI can say why.
        """
        scanned = SafetyNumber.from_qr_payload(payload)
        return hmac.compare_digest(scanned.digits.encode("ascii"), self.digits.encode("ascii"))
