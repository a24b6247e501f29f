"""BIP-340 Schnorr keys and signatures on secp256k1 (Nostr's), through libsecp256k1.

coincurve's `PrivateKey` computes both public keys when it is made and verifies each signature
it makes (five curve multiplications a signature where two do), which was a third of a gift
wrap's cost (issue 25, bench/README.md "The mailbox"); so this module calls the same library
through coincurve's cffi binding directly: a key pair (one multiplication), its x-only public
key, the signature. A signature by a long-lived key (the seal's alias key) is still verified
before it leaves (BIP-340's defence against faults leaking the key); one by a key used once
(the wrap's) need not be. Verification uses coincurve's public API. Imported on first use.
"""

from __future__ import annotations

import os
from typing import Any

from transport import nip44
from transport.errors import NostrKeyError


def _binding() -> tuple[Any, Any, Any]:
    import coincurve  # lazy on purpose: importing transport must stay cheap
    from coincurve._libsecp256k1 import ffi, lib  # type: ignore[import-not-found]  # (cffi)

    return ffi, lib, coincurve.context.GLOBAL_CONTEXT.ctx


def _keypair(secret: bytes) -> tuple[Any, bytes]:
    """libsecp256k1's key pair of `secret` and its 32-byte x-only public key."""
    nip44.check_secret(secret)
    ffi, lib, ctx = _binding()
    keypair = ffi.new("secp256k1_keypair *")
    if not lib.secp256k1_keypair_create(ctx, keypair, secret):  # pragma: no cover - checked
        raise NostrKeyError("not a secp256k1 secret key")
    xonly = ffi.new("secp256k1_xonly_pubkey *")
    lib.secp256k1_keypair_xonly_pub(ctx, xonly, ffi.NULL, keypair)
    out = ffi.new("unsigned char[32]")
    lib.secp256k1_xonly_pubkey_serialize(ctx, out, xonly)
    return keypair, bytes(ffi.buffer(out, 32))


def x_only_public(secret: bytes) -> bytes:
    """The 32-byte x-only public key of a secret key (NostrKeyError unless 1 <= k < n)."""
    return _keypair(secret)[1]


class SigningKey:
    """One secret key, its key pair computed once: `public` (x-only) and `sign`."""

    def __init__(self, secret: bytes) -> None:
        self._keypair, self.public = _keypair(secret)

    def sign(self, digest: bytes, *, check: bool) -> bytes:
        """The BIP-340 signature of a 32-byte digest, with fresh auxiliary randomness;
        `check`: verify it before returning it."""
        if len(digest) != 32:
            raise ValueError("BIP-340 signs a 32-byte digest here")
        ffi, lib, ctx = _binding()
        signature = ffi.new("unsigned char[64]")
        if not lib.secp256k1_schnorrsig_sign32(
            ctx, signature, digest, self._keypair, os.urandom(32)
        ):  # pragma: no cover - a valid key pair always signs
            raise NostrKeyError("signing failed")
        out = bytes(ffi.buffer(signature, 64))
        if check and not verify(self.public, out, digest):  # pragma: no cover - a fault
            raise NostrKeyError("a signature just made does not verify")
        return out


def verify(public: bytes, signature: bytes, digest: bytes) -> bool:
    """Whether `signature` is a valid BIP-340 signature of `digest` by x-only key `public`
    (False for a key off the curve)."""
    import coincurve

    try:
        return bool(coincurve.PublicKeyXOnly(public).verify(signature, digest))
    except ValueError:
        return False
