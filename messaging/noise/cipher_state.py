"""Noise cipher functions and the CipherState object (Noise spec rev 34, sections 4.2 and 5.1).

Two AEADs from pyca/cryptography, each with its own nonce layout (section 12):

- AESGCM: 32 bits of zeros followed by the 64-bit counter, big-endian.
- ChaChaPoly: 32 bits of zeros followed by the 64-bit counter, little-endian.

A `CipherState` holds a key `k` (or none) and a counter `n`. With no key it passes
plaintext through unchanged, which is how the first handshake messages carry cleartext
payloads. Nonce 2**64 - 1 is reserved (section 5.1): reaching it is a local error, the
session must be rekeyed or ended long before.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from messaging.errors import CryptoFailure, LocalProtocolError

KEY_SIZE = 32
TAG_SIZE = 16
MAX_NONCE = 2**64 - 1  # reserved: never used to encrypt (section 5.1)


def _aesgcm_nonce(n: int) -> bytes:
    return b"\x00\x00\x00\x00" + struct.pack(">Q", n)


def _chachapoly_nonce(n: int) -> bytes:
    return b"\x00\x00\x00\x00" + struct.pack("<Q", n)


@dataclass(frozen=True)
class CipherFunctions:
    """One Noise cipher: its name in the protocol name, its AEAD class and its nonce layout."""

    name: str
    aead: Callable[[bytes], AESGCM | ChaCha20Poly1305]
    nonce: Callable[[int], bytes]

    def encrypt(self, k: bytes, n: int, ad: bytes, plaintext: bytes) -> bytes:
        """ENCRYPT(k, n, ad, plaintext): ciphertext followed by the 16-byte tag."""
        return self.aead(k).encrypt(self.nonce(n), plaintext, ad)

    def decrypt(self, k: bytes, n: int, ad: bytes, ciphertext: bytes) -> bytes:
        """DECRYPT(k, n, ad, ciphertext); any failure is the opaque `CryptoFailure`."""
        try:
            return self.aead(k).decrypt(self.nonce(n), ciphertext, ad)
        except (InvalidTag, ValueError) as exc:
            raise CryptoFailure() from exc

    def rekey(self, k: bytes) -> bytes:
        """REKEY(k) (section 4.2): the first 32 bytes of ENCRYPT(k, maxnonce, "", zeros)."""
        return self.encrypt(k, MAX_NONCE, b"", bytes(KEY_SIZE))[:KEY_SIZE]


AESGCM_CIPHER = CipherFunctions("AESGCM", AESGCM, _aesgcm_nonce)
CHACHAPOLY_CIPHER = CipherFunctions("ChaChaPoly", ChaCha20Poly1305, _chachapoly_nonce)
CIPHERS: dict[str, CipherFunctions] = {c.name: c for c in (AESGCM_CIPHER, CHACHAPOLY_CIPHER)}


class CipherState:
    """Section 5.1: a key (or none) and a 64-bit nonce counter."""

    def __init__(self, cipher: CipherFunctions, key: bytes | None = None) -> None:
        self.cipher = cipher
        self._k: bytes | None = None
        self.n = 0
        self.initialize_key(key)

    def __repr__(self) -> str:
        return f"CipherState({self.cipher.name}, has_key={self.has_key()}, n={self.n})"

    def initialize_key(self, key: bytes | None) -> None:
        """InitializeKey(key): set k (None means empty) and reset n to zero."""
        if key is not None and len(key) != KEY_SIZE:
            raise LocalProtocolError("a cipher key is 32 bytes")
        self._k = key
        self.n = 0

    def has_key(self) -> bool:
        return self._k is not None

    @property
    def key(self) -> bytes | None:
        """The raw key, for deriving further secrets from split() output. Never log it."""
        return self._k

    def set_nonce(self, nonce: int) -> None:
        if not 0 <= nonce <= MAX_NONCE:
            raise LocalProtocolError("a nonce is a 64-bit unsigned integer")
        self.n = nonce

    def _check_nonce(self) -> None:
        if self.n >= MAX_NONCE:
            raise LocalProtocolError("the cipher state's nonces are exhausted; rekey or end it")

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        """EncryptWithAd: AEAD-encrypt under (k, n) and increment n; pass through with no key."""
        if self._k is None:
            return plaintext
        self._check_nonce()
        ciphertext = self.cipher.encrypt(self._k, self.n, ad, plaintext)
        self.n += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """DecryptWithAd: on failure raise `CryptoFailure` and leave n unchanged."""
        if self._k is None:
            return ciphertext
        self._check_nonce()
        plaintext = self.cipher.decrypt(self._k, self.n, ad, ciphertext)
        self.n += 1
        return plaintext

    def rekey(self) -> None:
        """Rekey(): replace k by REKEY(k); n is unchanged (section 5.1)."""
        if self._k is None:
            raise LocalProtocolError("cannot rekey a cipher state that has no key")
        self._k = self.cipher.rekey(self._k)
