"""The parsers hostile input is thrown at, and the deterministic fixtures they need (issue 7 §1).

Each `Target` names one entry point that reads bytes or text from outside the process, and the
package error every refusal must be an instance of. `Target.attempt(data)` runs the parser on a
fresh fixture and returns the exception it raised (None if it accepted the input); anything that
is not the target's typed error is re-raised, so a test fails on it with its traceback.

Everything here is deterministic (fixed seeds, counter "randomness"), so that
scripts/gen_corpus.py can build authentic inputs (signed tokens, encrypted frames, handshake
messages) that these fixtures accept, and hostile variants of them that they must refuse.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from identity.did_document import resolve
from identity.errors import DidError, IdentityError, InvitationError, KeystoreError
from identity.keys import IdentityKey
from identity.keystore import KdfParams, seal_keystore, unlock
from identity.token import decode_token
from messaging.channel import SecureChannel
from messaging.errors import CryptoFailure, MessagingError, RemoteProtocolError
from messaging.frames import FrameError, decode_frame
from messaging.handshake import Handshake, Role
from messaging.padding import PaddingError, unpad
from messaging.ratchet import RatchetSession
from messaging.safety_number import InvalidSafetyNumberPayload, SafetyNumber
from transport.compact_offer import Candidate, CandidateKind, CompactOffer, SetupRole
from transport.errors import CompactOfferError, TransportError

# --- deterministic identities and randomness ---------------------------------------------------

ALICE = IdentityKey(bytes.fromhex("a1" * 32))  # inviter, handshake initiator
BOB = IdentityKey(bytes.fromhex("b0" * 32))  # invitee, handshake responder
MALLORY = IdentityKey(bytes.fromhex("3a" * 32))
INVITATION_ID = bytes(range(0x40, 0x50))
FP_ALICE = "sha-256 " + ":".join(["AA"] * 32)
FP_BOB = "sha-256 " + ":".join(["BB"] * 32)
PASSPHRASE = "correct horse battery staple"
CHEAP_KDF = KdfParams(memory_cost=8, iterations=1, lanes=1)
"""Argon2id at its minimum: the keystore corpus and tamper tests unlock thousands of times."""

RATCHET_SEED = hashlib.sha256(b"didlink hostile ratchet seed").digest()
RATCHET_AD = b"didlink hostile associated data"
BOB_RATCHET_PRIVATE = hashlib.sha256(b"didlink hostile bob ratchet").digest()


def counter_rng(label: bytes) -> Callable[[int], bytes]:
    """Deterministic 'randomness': SHA-256(label || counter), truncated or repeated to size."""
    counter = 0

    def rng(size: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < size:
            counter += 1
            out += hashlib.sha256(label + counter.to_bytes(8, "big")).digest()
        return out[:size]

    return rng


# --- handshake fixtures ------------------------------------------------------------------------


def new_handshake(
    role: Role, *, label: bytes = b"", invitation_id: bytes = INVITATION_ID
) -> Handshake:
    """Alice (initiator) or Bob (responder) for the fixed invitation and fingerprints."""
    if role is Role.INITIATOR:
        local, peer, fp_local, fp_peer = ALICE, BOB, FP_ALICE, FP_BOB
    else:
        local, peer, fp_local, fp_peer = BOB, ALICE, FP_BOB, FP_ALICE
    return Handshake(
        role=role,
        local_key=local,
        peer_did=peer.did,
        invitation_id=invitation_id,
        local_fingerprint=fp_local,
        peer_fingerprint=fp_peer,
        rng=counter_rng(b"hostile handshake " + role.value.encode() + label),
    )


def handshake_messages(
    *, label: bytes = b"", invitation_id: bytes = INVITATION_ID
) -> tuple[bytes, bytes, bytes]:
    """The three messages (COMMITMENT, INITIATION, RESPONSE) of one deterministic handshake."""
    initiator = new_handshake(Role.INITIATOR, label=label, invitation_id=invitation_id)
    responder = new_handshake(Role.RESPONDER, label=label, invitation_id=invitation_id)
    initiator.start()
    commitment = responder.start()
    assert commitment is not None
    initiation = initiator.receive(commitment)
    assert initiation is not None
    response = responder.receive(initiation)
    assert response is not None
    assert initiator.receive(response) is None
    return commitment, initiation, response


def handshake_expecting(step: str) -> Handshake:
    """A fresh machine in the state that expects `step` (commitment / initiation / response)."""
    if step == "initiation":
        responder = new_handshake(Role.RESPONDER)
        responder.start()
        return responder
    initiator = new_handshake(Role.INITIATOR)
    initiator.start()
    if step == "response":
        commitment, _, _ = handshake_messages()
        initiator.receive(commitment)
    elif step != "commitment":
        raise ValueError(step)
    return initiator


# --- ratchet and channel fixtures -------------------------------------------------------------


def bob_ratchet_public() -> bytes:
    return X25519PrivateKey.from_private_bytes(BOB_RATCHET_PRIVATE).public_key().public_bytes_raw()


def ratchet_pair() -> tuple[RatchetSession, RatchetSession]:
    """(Alice the initiator, Bob the responder), seeded as the handshake would seed them."""
    alice = RatchetSession.initiator(
        RATCHET_SEED,
        bob_ratchet_public(),
        associated_data=RATCHET_AD,
        rng=counter_rng(b"hostile ratchet alice"),
    )
    bob = RatchetSession.responder(
        RATCHET_SEED,
        BOB_RATCHET_PRIVATE,
        associated_data=RATCHET_AD,
        rng=counter_rng(b"hostile ratchet bob"),
    )
    return alice, bob


def channel_pair() -> tuple[SecureChannel, SecureChannel]:
    """(initiator channel, responder channel) over `ratchet_pair()`."""
    alice, bob = ratchet_pair()
    return SecureChannel(alice, initiator=True), SecureChannel(bob, initiator=False)


# --- other fixtures ---------------------------------------------------------------------------


def sealed_keystore() -> bytes:
    """A valid keystore file of BOB under PASSPHRASE with CHEAP_KDF (fixed salt and nonce)."""
    model = seal_keystore(
        BOB, PASSPHRASE, params=CHEAP_KDF, salt=bytes(range(16)), nonce=bytes(range(12))
    )
    return model.to_bytes()


def sample_offer() -> bytes:
    """A compact offer with an IPv4 host and an IPv6 server-reflexive candidate (~110 bytes)."""
    return CompactOffer(
        setup=SetupRole.ACTPASS,
        ufrag="Ufr4",
        pwd="Passw0rdPassw0rdPassw0rd",
        fingerprint=bytes(range(32)),
        candidates=(
            Candidate(kind=CandidateKind.HOST, ip=ip_address("192.0.2.1"), port=50000),
            Candidate(
                kind=CandidateKind.SRFLX,
                ip=ip_address("2001:db8::1"),
                port=40000,
                related_ip=ip_address("192.0.2.1"),
                related_port=50000,
            ),
        ),
    ).to_cbor()


# --- the targets ------------------------------------------------------------------------------


def _did(data: Any) -> Any:
    return resolve(data)


def _token(data: Any) -> Any:
    return decode_token(data)


def _keystore(data: Any) -> Any:
    """Write `data` as a profile's keystore file and unlock it with the right passphrase."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "keystore.json"
        path.write_bytes(data)
        return unlock(path, PASSPHRASE)


def _handshake(step: str) -> Callable[[Any], Any]:
    def receive(data: Any) -> Any:
        return handshake_expecting(step).receive(data)

    return receive


def _ratchet(data: Any) -> Any:
    return ratchet_pair()[1].decrypt(data)


def _channel(data: Any) -> Any:
    """The responder's channel receives `data` as the first frame (it expects Alice's Hello)."""
    return channel_pair()[1].receive(data)


def _safety(data: Any) -> Any:
    return SafetyNumber.from_qr_payload(data)


def _offer(data: Any) -> Any:
    return CompactOffer.from_cbor(data)


@dataclass(frozen=True)
class Target:
    """One parser: its name (the corpus folder), entry point and the errors it may raise."""

    name: str
    parse: Callable[[Any], Any]
    error: type[Exception]
    """Every refusal must be an instance of this (the parser's documented error class)."""
    package_error: type[Exception]
    """The package's error base (what the CLI frame turns into one line)."""
    description: str

    def attempt(self, data: Any) -> Exception | None:
        """Run the parser; the typed error it raised, or None if it accepted `data`."""
        try:
            self.parse(data)
        except self.error as exc:
            return exc
        return None


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("did", _did, DidError, IdentityError, "identity.did_document.resolve"),
        Target("token", _token, InvitationError, IdentityError, "identity.token.decode_token"),
        Target(
            "keystore",
            _keystore,
            KeystoreError,
            IdentityError,
            "identity.keystore.unlock (file on disk)",
        ),
        Target(
            "handshake_commitment",
            _handshake("commitment"),
            RemoteProtocolError,
            MessagingError,
            "Handshake.receive, initiator awaiting COMMITMENT",
        ),
        Target(
            "handshake_initiation",
            _handshake("initiation"),
            RemoteProtocolError,
            MessagingError,
            "Handshake.receive, responder awaiting INITIATION",
        ),
        Target(
            "handshake_response",
            _handshake("response"),
            RemoteProtocolError,
            MessagingError,
            "Handshake.receive, initiator awaiting RESPONSE",
        ),
        Target("frame", decode_frame, FrameError, MessagingError, "messaging.frames.decode_frame"),
        Target("padding", unpad, PaddingError, MessagingError, "messaging.padding.unpad"),
        Target("ratchet", _ratchet, CryptoFailure, MessagingError, "RatchetSession.decrypt"),
        Target("channel", _channel, RemoteProtocolError, MessagingError, "SecureChannel.receive"),
        Target(
            "safety_qr",
            _safety,
            InvalidSafetyNumberPayload,
            MessagingError,
            "SafetyNumber.from_qr_payload",
        ),
        Target(
            "compact_offer",
            _offer,
            CompactOfferError,
            TransportError,
            "transport.compact_offer.CompactOffer.from_cbor",
        ),
    )
}
