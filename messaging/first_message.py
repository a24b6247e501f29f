"""The first message to a contact known only from their card: one-way Noise_X to their DID key.

Theory of operation (specs/first-message.md has the bytes and the argument; issue 25, point 7):

    sender (knows the recipient's DID)                 recipient (offline, knows nothing yet)
    write_first_message() -> FIRST = version || Noise_X msg (-> e, es, s, ss; payload = sender DID)
                                   ... any route, later ...
                                                        read_first_message(FIRST): the sender's
                                                        static key must be its DID's key

Noise_X needs no answer, so the message can wait in a mailbox while the recipient is offline.
It authenticates the sender to the recipient (`ss`: only the holder of the sender DID's key can
have written it) and hides the sender's DID from everyone else. Both ends then seed a Double
Ratchet session from the handshake, exactly as after the live handshake (specs/session.md
section 1): the sender plays Alice towards the recipient's DID key as Bob's first ratchet key,
and the recipient's first decryption replaces that key with a fresh one, so a stored session
never holds the identity's key. Until the recipient answers, what the sender sends has no
forward secrecy against a later theft of the recipient's identity key (as any one-way pattern;
specs/threat-model.md).

Sans-IO, like messaging.handshake: bytes in, bytes and a `HandshakeResult` out. Errors are the
package's: `LocalProtocolError` for a wrong call, `RemoteProtocolError` for malformed bytes,
`CryptoFailure` (opaque) for every cryptographic check.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from identity import canonical
from identity.errors import IdentityError
from identity.keys import IdentityKey, did_x25519_public
from messaging.errors import CryptoFailure, LocalProtocolError, RemoteProtocolError
from messaging.handshake import HandshakeResult, Role
from messaging.noise.handshake_state import HandshakeState

VERSION = 1
PROTOCOL = "Noise_X_25519_AESGCM_SHA256"
PROLOGUE_LABEL = "didlink/1 first message"
SEED_LABEL = b"didlink/v1 first message ratchet seed"
MAX_DID_BYTES = 128
"""A did:key of Ed25519 is 56 characters; the bound leaves room and stops work on junk."""
OVERHEAD = 1 + 32 + (32 + 16) + 16  # version, e, encrypted s, payload tag
MAX_FIRST_MESSAGE = OVERHEAD + 2 + MAX_DID_BYTES  # the payload is a CBOR text string


def _prologue(recipient_did: str) -> bytes:
    return canonical.encode([PROLOGUE_LABEL, recipient_did])


def _seed(handshake_hash: bytes, key: bytes) -> bytes:
    """HKDF-SHA256(salt = h, ikm = the initiator's split() key, info = SEED_LABEL, L = 32)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=handshake_hash, info=SEED_LABEL).derive(
        key
    )


def _split_key(noise: HandshakeState) -> bytes:
    to_recipient, _ = noise.split()  # one-way: the second cipher state is never used
    if to_recipient.key is None:
        raise LocalProtocolError("Noise split() returned an empty key")
    return to_recipient.key


def write_first_message(
    sender: IdentityKey,
    recipient_did: str,
    *,
    rng: Callable[[int], bytes] = os.urandom,
) -> tuple[bytes, HandshakeResult]:
    """The FIRST message to `recipient_did` and the sender's handshake result (the initiator:
    `peer_ratchet_public` is the recipient DID's X25519 key)."""
    try:
        recipient_static = did_x25519_public(recipient_did)
    except IdentityError as exc:
        raise LocalProtocolError(f"not a recipient DID: {exc}") from None
    if recipient_did == sender.did:
        raise LocalProtocolError("a first message goes to another DID than the sender's")
    noise = HandshakeState(
        PROTOCOL,
        initiator=True,
        prologue=_prologue(recipient_did),
        s=sender.x25519_private,
        rs=recipient_static,
        rng=rng,
    )
    message = bytes([VERSION]) + noise.write_message(canonical.encode(sender.did))
    handshake_hash = noise.handshake_hash
    return message, HandshakeResult(
        role=Role.INITIATOR,
        handshake_hash=handshake_hash,
        ratchet_seed=_seed(handshake_hash, _split_key(noise)),
        peer_ratchet_public=recipient_static,
        own_ratchet_private=None,
        local_did=sender.did,
        peer_did=recipient_did,
    )


def read_first_message(recipient: IdentityKey, message: bytes) -> HandshakeResult:
    """The recipient's handshake result for a FIRST message (its `peer_did` is the sender,
    authenticated). `handshake_hash` is unique per message: keep it to refuse a replay."""
    if not isinstance(message, bytes | bytearray | memoryview):
        raise LocalProtocolError("a first message is bytes")
    message = bytes(message)
    if not OVERHEAD < len(message) <= MAX_FIRST_MESSAGE:
        raise RemoteProtocolError(
            f"a first message is {OVERHEAD + 1} to {MAX_FIRST_MESSAGE} bytes, not {len(message)}"
        )
    if message[0] != VERSION:
        raise RemoteProtocolError("unknown first-message version")
    noise = HandshakeState(
        PROTOCOL,
        initiator=False,
        prologue=_prologue(recipient.did),
        s=recipient.x25519_private,
    )
    payload = noise.read_message(message[1:])  # CryptoFailure unless it is for us, unchanged
    sender_static = noise.remote_static
    try:
        sender_did = canonical.decode(payload)
    except ValueError:
        raise RemoteProtocolError("the first message's payload is not canonical CBOR") from None
    if not isinstance(sender_did, str):
        raise RemoteProtocolError("the first message's payload is not a DID")
    try:
        sender_key = did_x25519_public(sender_did)
    except IdentityError:
        raise RemoteProtocolError("the first message names no valid sender DID") from None
    if sender_static is None or sender_key != sender_static or sender_did == recipient.did:
        raise CryptoFailure()  # signed by another key than the DID it names
    handshake_hash = noise.handshake_hash
    return HandshakeResult(
        role=Role.RESPONDER,
        handshake_hash=handshake_hash,
        ratchet_seed=_seed(handshake_hash, _split_key(noise)),
        peer_ratchet_public=None,
        own_ratchet_private=recipient.x25519_private,
        local_did=recipient.did,
        peer_did=sender_did,
    )
