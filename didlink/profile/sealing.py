"""Sealing of what the local store keeps about conversations (outbox, transfers, history).

The store key is derived from the identity seed with its own purpose label, so it is as safe as
the keystore (unlocking needs the passphrase) and is never a session key:
    key = HKDF-SHA256(ikm = Ed25519 seed, salt = none, info = "didlink/v1 local store key", 32)
A sealed value is nonce (12 random bytes) || AES-256-GCM(key, nonce, plaintext, context), where
`context` names the table and row (e.g. b"outbox\\x00" + message id) so a sealed value moved to
another row or table does not open. See specs/store.md.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from didlink.profile.store import DamagedStore
from identity.keys import IdentityKey

STORE_KEY_INFO = b"didlink/v1 local store key"
NONCE_SIZE = 12


def store_key(identity: IdentityKey) -> bytes:
    """The profile's local store key (32 bytes)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=STORE_KEY_INFO).derive(
        identity.seed
    )


class Sealer:
    """Seals and opens values for the local store under the profile's store key."""

    def __init__(self, identity: IdentityKey) -> None:
        self._aead = AESGCM(store_key(identity))

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, *, context: bytes) -> bytes:
        """The plaintext; DamagedStore if the value was changed, moved or sealed by another key."""
        if len(sealed) < NONCE_SIZE + 16:
            raise DamagedStore("a sealed value in the local store is truncated")
        try:
            return self._aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], context)
        except InvalidTag:
            raise DamagedStore(
                "a sealed value in the local store does not open (changed, moved or foreign)"
            ) from None

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"
