"""The identity key pair: Ed25519 for signatures, with its X25519 twin for key agreement.

The X25519 keys are derived with libsodium's birational map (through PyNaCl), the same
conversion the did:key spec uses for the `keyAgreement` method of an Ed25519 DID.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import nacl.bindings
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from identity.did_key import ed25519_did, ed25519_public_key
from identity.errors import InvalidPublicKey

SEED_SIZE = 32


def x25519_public_from_ed25519(public_key: bytes) -> bytes:
    """The X25519 public key of an Ed25519 public key (libsodium)."""
    try:
        return bytes(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(public_key))
    except Exception as exc:  # nacl raises RuntimeError for points off the curve
        raise InvalidPublicKey("Ed25519 public key is not a valid curve point") from exc


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True if `signature` is a valid Ed25519 signature of `message` under `public_key`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, repr=False)
class IdentityKey:
    """A private Ed25519 identity key, from its 32-byte seed. Its repr never shows the seed."""

    seed: bytes
    _private: Ed25519PrivateKey = field(init=False, compare=False)
    public_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_SIZE:
            raise ValueError("an Ed25519 seed is 32 bytes")
        private = Ed25519PrivateKey.from_private_bytes(self.seed)
        object.__setattr__(self, "_private", private)
        raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        object.__setattr__(self, "public_key", raw)

    @classmethod
    def generate(cls) -> IdentityKey:
        return cls(os.urandom(SEED_SIZE))

    @property
    def did(self) -> str:
        return ed25519_did(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    @property
    def x25519_private(self) -> bytes:
        """The X25519 private key (libsodium's conversion of the Ed25519 secret key)."""
        secret = self.seed + self.public_key
        return bytes(nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(secret))

    @property
    def x25519_public(self) -> bytes:
        return x25519_public_from_ed25519(self.public_key)

    def __repr__(self) -> str:
        return f"IdentityKey(did={self.did!r})"


def did_x25519_public(did: str) -> bytes:
    """The X25519 key-agreement public key of an Ed25519 did:key."""
    return x25519_public_from_ed25519(ed25519_public_key(did))
