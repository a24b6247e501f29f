"""did:key encoding and decoding (w3c-ccg did:key spec; specs/identity.md).

A did:key is `did:key:` + multibase base58btc (`z` prefix) of the multicodec varint of the key
type followed by the raw public key bytes.

NOTE(skeleton): Ed25519 only for now; the full resolver (X25519, P-256, secp256k1) lands here.
"""

from __future__ import annotations

import base58

from identity.errors import InvalidDid, InvalidPublicKeyLength, UnsupportedPublicKeyType

PREFIX = "did:key:"
ED25519_CODEC = b"\xed\x01"


def ed25519_did(public_key: bytes) -> str:
    """The did:key of a 32-byte Ed25519 public key."""
    if len(public_key) != 32:
        raise InvalidPublicKeyLength("an Ed25519 public key is 32 bytes")
    return PREFIX + "z" + base58.b58encode(ED25519_CODEC + public_key).decode("ascii")


def ed25519_public_key(did: str) -> bytes:
    """The 32-byte Ed25519 public key inside an Ed25519 did:key."""
    if not did.startswith(PREFIX) or not did[len(PREFIX) :].startswith("z"):
        raise InvalidDid("not a did:key in base58btc multibase")
    try:
        raw = base58.b58decode(did[len(PREFIX) + 1 :])
    except ValueError as exc:
        raise InvalidDid("did:key is not valid base58btc") from exc
    if not raw.startswith(ED25519_CODEC):
        raise UnsupportedPublicKeyType("not an Ed25519 did:key")
    key = raw[len(ED25519_CODEC) :]
    if len(key) != 32:
        raise InvalidPublicKeyLength("an Ed25519 public key is 32 bytes")
    return key
