"""An independent NIP-44 v2 reference, written from the NIP for the tests only.

The shipped code encrypts with nostr-sdk, whose Python API takes key pairs and draws its own
nonce, so the known answers that need a pinned nonce or a bare conversation key are checked
against this oracle (pyca/cryptography's secp256k1 ECDH, HKDF, ChaCha20 and HMAC), and nostr-sdk
is checked against the oracle in both directions (tests/test_nostr_nip44.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

SALT = b"nip44-v2"
MIN_PLAINTEXT = 1
MAX_PLAINTEXT = 65535


class Nip44Refused(ValueError):
    """The oracle refuses this input; the message names the NIP-44 reason."""


def conversation_key(secret: bytes, public_x: bytes) -> bytes:
    """HKDF-extract(salt="nip44-v2", IKM=x of ECDH(secret, lift_x(public_x)))."""
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    scalar = int.from_bytes(secret, "big")
    if not 1 <= scalar < n:
        raise Nip44Refused("secret key out of range")
    try:
        their = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), b"\x02" + public_x)
    except ValueError as exc:
        raise Nip44Refused("public key not on the curve") from exc
    ours = ec.derive_private_key(scalar, ec.SECP256K1())
    shared_x = ours.exchange(ec.ECDH(), their)
    return hmac.new(SALT, shared_x, hashlib.sha256).digest()


def message_keys(conv: bytes, nonce: bytes) -> tuple[bytes, bytes, bytes]:
    """(chacha_key, chacha_nonce, hmac_key) = HKDF-expand(conv, info=nonce, 76) split 32/12/32."""
    keys = HKDFExpand(hashes.SHA256(), 76, nonce).derive(conv)
    return keys[:32], keys[32:44], keys[44:76]


def calc_padded_len(length: int) -> int:
    if length <= 32:
        return 32
    next_power = 1 << (length - 1).bit_length()
    chunk = 32 if next_power <= 256 else next_power // 8
    return chunk * ((length - 1) // chunk + 1)


def _chacha(key: bytes, nonce12: bytes, data: bytes) -> bytes:
    encryptor = Cipher(
        algorithms.ChaCha20(key, b"\x00\x00\x00\x00" + nonce12), mode=None
    ).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def encrypt_padded(conv: bytes, nonce: bytes, padded: bytes) -> str:
    """Encrypt an already padded buffer (lets a test build a payload with bad padding)."""
    chacha_key, chacha_nonce, hmac_key = message_keys(conv, nonce)
    ciphertext = _chacha(chacha_key, chacha_nonce, padded)
    mac = hmac.new(hmac_key, nonce + ciphertext, hashlib.sha256).digest()
    return base64.b64encode(b"\x02" + nonce + ciphertext + mac).decode("ascii")


def pad(plaintext: bytes) -> bytes:
    if not MIN_PLAINTEXT <= len(plaintext) <= MAX_PLAINTEXT:
        raise Nip44Refused("invalid plaintext length")
    padding = calc_padded_len(len(plaintext)) - len(plaintext)
    return struct.pack(">H", len(plaintext)) + plaintext + b"\x00" * padding


def encrypt(conv: bytes, nonce: bytes, plaintext: bytes) -> str:
    return encrypt_padded(conv, nonce, pad(plaintext))


def decrypt(conv: bytes, payload: str) -> bytes:
    if not payload:
        raise Nip44Refused("invalid payload size")
    if payload[0] == "#":
        raise Nip44Refused("unknown encryption version")
    if not 132 <= len(payload) <= 87472:
        raise Nip44Refused("invalid payload size")
    try:
        data = base64.b64decode(payload.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise Nip44Refused("invalid base64") from exc
    if not 99 <= len(data) <= 65603:
        raise Nip44Refused("invalid data size")
    if data[0] != 2:
        raise Nip44Refused("unknown encryption version")
    nonce, ciphertext, mac = data[1:33], data[33:-32], data[-32:]
    chacha_key, chacha_nonce, hmac_key = message_keys(conv, nonce)
    expected = hmac.new(hmac_key, nonce + ciphertext, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise Nip44Refused("invalid MAC")
    padded = _chacha(chacha_key, chacha_nonce, ciphertext)
    (length,) = struct.unpack(">H", padded[:2])
    unpadded = padded[2 : 2 + length]
    if length == 0 or len(unpadded) != length or len(padded) != 2 + calc_padded_len(length):
        raise Nip44Refused("invalid padding")
    return unpadded
