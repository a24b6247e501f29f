"""Two sides of a persistent session without a live handshake, for the mailbox tests.

`handshake_pair(seed)` gives what a finished first-contact handshake hands each side (the
fields of messaging.handshake.HandshakeResult that `new_session_state` reads): the same hash
and ratchet seed, the responder's ratchet key pair split between them. Deterministic in `seed`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from messaging.mailbox import MailboxSession, new_session_state


@dataclass(frozen=True)
class FakeHandshake:
    handshake_hash: bytes
    ratchet_seed: bytes
    peer_ratchet_public: bytes | None
    own_ratchet_private: bytes | None


def _bytes(seed: bytes, label: bytes) -> bytes:
    return hashlib.sha256(seed + b"/" + label).digest()


def handshake_pair(seed: bytes = b"pair") -> tuple[FakeHandshake, FakeHandshake]:
    """(initiator's result, responder's result) of one handshake."""
    h, sk = _bytes(seed, b"h"), _bytes(seed, b"sk")
    bob = X25519PrivateKey.from_private_bytes(_bytes(seed, b"bob ratchet"))
    bob_public = bob.public_key().public_bytes_raw()
    return (
        FakeHandshake(h, sk, bob_public, None),
        FakeHandshake(h, sk, None, bob.private_bytes_raw()),
    )


def session_pair(seed: bytes = b"pair") -> tuple[MailboxSession, MailboxSession]:
    """(initiator's, responder's) persistent sessions of one first contact."""
    initiator, responder = handshake_pair(seed)
    return MailboxSession(new_session_state(initiator)), MailboxSession(
        new_session_state(responder)
    )
