"""NIP-44 v2 encryption (the two layers of a gift wrap), and the secp256k1 keys it needs.

Theory of operation (NIP-44 v2; specs/mailbox.md §2):

- conversation key = HKDF-extract(salt "nip44-v2", x of ECDH(secret, lift_x(public)));
- per message: a 32-byte random nonce; HKDF-expand(conversation key, info = nonce, 76 bytes)
  split into the ChaCha20 key (32), the ChaCha20 nonce (12) and the HMAC-SHA256 key (32);
- plaintext (1..65,535 bytes) prefixed by its length (u16 big endian) and zero-padded to
  `padded_length`; payload = base64(0x02 || nonce || ChaCha20(padded) || HMAC(nonce || ct)).

Why not nostr-sdk's `nip44_encrypt` / `nip44_decrypt` (which the envelope used before): its
Python binding copies every string argument into Rust byte by byte in Python (uniffi), which
cost more than the cryptography itself (issue 25, bench/README.md "The mailbox"). Here the
elliptic-curve work is libsecp256k1's (coincurve) and the symmetric work OpenSSL's (pyca), both
in C. nostr-sdk and an independent reference (tests/support/nip44_oracle.py) stay in the tests
as oracles: every NIP-44 vector is checked against this module and both of them.

Every failure to decrypt is one opaque `Nip44Error` (the MAC is checked before anything else
is read from the ciphertext). Sans-IO; coincurve is imported on first use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from transport.errors import NostrKeyError

SALT = b"nip44-v2"
VERSION = 2
MIN_PLAINTEXT = 1
MAX_PLAINTEXT = 65535
MIN_PAYLOAD_CHARS = 132
MAX_PAYLOAD_CHARS = 87_472
_MIN_DATA = 99
_MAX_DATA = 65_603


class Nip44Error(ValueError):
    """The payload does not decrypt (any reason: size, version, MAC, padding)."""


def secp256k1() -> Any:
    """coincurve (libsecp256k1), imported on first use."""
    import coincurve  # lazy on purpose: importing transport must stay cheap

    return coincurve


@lru_cache(maxsize=1024)
def _lift(public: bytes) -> Any:
    """The point of an x-only key (even y), refused unless it is on the curve."""
    if not isinstance(public, bytes) or len(public) != 32:
        raise NostrKeyError("a public key is 32 bytes (x-only)")
    try:
        return secp256k1().PublicKey(b"\x02" + public)
    except ValueError as exc:
        raise NostrKeyError("not a secp256k1 x-only public key") from exc


ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""secp256k1's group order n: a secret key is 1..n-1."""


def check_secret(secret: bytes) -> None:
    """Raise NostrKeyError unless `secret` is 32 bytes encoding 1 <= k < n."""
    if not isinstance(secret, bytes) or len(secret) != 32:
        raise NostrKeyError("a secret key is 32 bytes")
    if not 0 < int.from_bytes(secret, "big") < ORDER:
        raise NostrKeyError("not a secp256k1 secret key")


def check_public(public: bytes) -> None:
    """Raise NostrKeyError unless `public` is a 32-byte x-only key on the curve."""
    _lift(public)


def conversation_key(secret: bytes, public: bytes) -> bytes:
    """NIP-44's conversation key between our secret and their x-only public key."""
    check_secret(secret)
    shared = _lift(public).multiply(secret).format(compressed=True)[1:]
    return hmac.new(SALT, shared, hashlib.sha256).digest()


def padded_length(length: int) -> int:
    """NIP-44's padded length of a plaintext of `length` bytes."""
    if length <= 32:
        return 32
    next_power = 1 << (length - 1).bit_length()
    chunk = 32 if next_power <= 256 else next_power // 8
    return chunk * ((length - 1) // chunk + 1)


def _message_keys(conv: bytes, nonce: bytes) -> tuple[bytes, bytes, bytes]:
    # HKDF-expand with one block more than needed: T(1..3) = HMAC(conv, T(i-1) || info || i).
    okm = b""
    block = b""
    for counter in (1, 2, 3):
        block = hmac.new(conv, block + nonce + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:32], okm[32:44], okm[44:76]


def _chacha(key: bytes, nonce12: bytes, data: bytes) -> bytes:
    cipher = Cipher(algorithms.ChaCha20(key, b"\x00\x00\x00\x00" + nonce12), mode=None)
    encryptor = cipher.encryptor()
    return encryptor.update(data) + encryptor.finalize()


def encrypt(conv: bytes, plaintext: bytes, *, nonce: bytes | None = None) -> str:
    """The NIP-44 v2 payload of `plaintext` (1..65,535 bytes) under a conversation key; `nonce`
    is random unless a known-answer test pins it."""
    if not MIN_PLAINTEXT <= len(plaintext) <= MAX_PLAINTEXT:
        raise ValueError(f"a NIP-44 plaintext is {MIN_PLAINTEXT}..{MAX_PLAINTEXT} bytes")
    nonce = os.urandom(32) if nonce is None else nonce
    if len(nonce) != 32 or len(conv) != 32:
        raise ValueError("a NIP-44 conversation key and nonce are 32 bytes")
    chacha_key, chacha_nonce, hmac_key = _message_keys(conv, nonce)
    padding = padded_length(len(plaintext)) - len(plaintext)
    padded = struct.pack(">H", len(plaintext)) + plaintext + bytes(padding)
    ciphertext = _chacha(chacha_key, chacha_nonce, padded)
    mac = hmac.new(hmac_key, nonce + ciphertext, hashlib.sha256).digest()
    return base64.b64encode(bytes([VERSION]) + nonce + ciphertext + mac).decode("ascii")


def decrypt(conv: bytes, payload: str) -> bytes:
    """The plaintext of a NIP-44 v2 payload; Nip44Error for anything else."""
    if not isinstance(payload, str) or not MIN_PAYLOAD_CHARS <= len(payload) <= MAX_PAYLOAD_CHARS:
        raise Nip44Error("invalid payload size")
    try:
        data = base64.b64decode(payload.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise Nip44Error("invalid base64") from exc
    if not _MIN_DATA <= len(data) <= _MAX_DATA or data[0] != VERSION:
        raise Nip44Error("invalid payload")
    nonce, ciphertext, mac = data[1:33], data[33:-32], data[-32:]
    chacha_key, chacha_nonce, hmac_key = _message_keys(conv, nonce)
    expected = hmac.new(hmac_key, nonce + ciphertext, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise Nip44Error("invalid MAC")
    padded = _chacha(chacha_key, chacha_nonce, ciphertext)
    (length,) = struct.unpack(">H", padded[:2])
    if length < MIN_PLAINTEXT or len(padded) != 2 + padded_length(length):
        raise Nip44Error("invalid padding")
    return padded[2 : 2 + length]
