"""The didlink handshake: commit-then-reveal around Noise_KK_25519_AESGCM_SHA256.

Theory of operation (specs/handshake.md has the bytes and the security argument):

    responder                                   initiator
    start()  -> COMMITMENT  H(e_r)   ------->   receive(): remember the commitment,
                                                 reply INITIATION = Noise msg 1 (-> e, es, ss)
    receive(INITIATION) -> RESPONSE <-------    ...
             Noise msg 2 (<- e, ee, se),
             payload = own ratchet public key ->  receive(): check e_r against the commitment,
    DONE                                          then Noise; DONE

Both sides know both DIDs, so the static keys are the DIDs' X25519 keyAgreement keys and
Noise KK authenticates them mutually. The prologue binds the invitation id, both DIDs and
both DTLS fingerprints (messaging.prologue). The commitment forces a man in the middle to fix
its ephemeral before it sees the initiator's, so it cannot grind for a matching SAS.

The machine is sans-IO, like h11: `start()` and `receive(data)` return the bytes to send (or
None). States are named for what they expect next; `_TRANSITIONS` is the whole table; any
error moves the machine to FAILED, which is sticky. Errors: `LocalProtocolError` for a call
that is wrong in the current state, `RemoteProtocolError` for a malformed or unexpected
message, `CryptoFailure` (opaque) for any cryptographic check, including a revealed
ephemeral that does not match the commitment.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from identity.errors import IdentityError
from identity.keys import IdentityKey, did_x25519_public
from messaging.errors import CryptoFailure, LocalProtocolError, MessagingError, RemoteProtocolError
from messaging.noise.handshake_state import HandshakeState, x25519_public
from messaging.prologue import (
    COMMITMENT_SIZE,
    NOISE_PROTOCOL,
    ephemeral_commitment,
    handshake_prologue,
)

WIRE_VERSION = 1
HEADER_SIZE = 2  # type byte, version byte
KEY_SIZE = 32
TAG_SIZE = 16
RATCHET_SEED_LABEL = b"didlink/v1 ratchet seed"


class MessageType(Enum):
    """The first byte of every handshake message (specs/handshake.md section 2)."""

    COMMITMENT = 0x01
    INITIATION = 0x02
    RESPONSE = 0x03


# Exact total sizes, header included (specs/handshake.md section 2).
MESSAGE_SIZES = {
    MessageType.COMMITMENT: HEADER_SIZE + COMMITMENT_SIZE,  # 34
    MessageType.INITIATION: HEADER_SIZE + KEY_SIZE + TAG_SIZE,  # 50: e, empty payload
    MessageType.RESPONSE: HEADER_SIZE + KEY_SIZE + KEY_SIZE + TAG_SIZE,  # 82: e, ratchet key
}


class Role(Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


class State(Enum):
    """Named for what the machine expects next."""

    NEEDS_START = "needs start"
    AWAITING_COMMITMENT = "awaiting commitment"  # initiator
    AWAITING_INITIATION = "awaiting initiation"  # responder
    AWAITING_RESPONSE = "awaiting response"  # initiator
    DONE = "done"
    FAILED = "failed"


class Step(Enum):
    """An input to the machine: the local `start()` call or a received message type."""

    START = "start"
    COMMITMENT = MessageType.COMMITMENT.value
    INITIATION = MessageType.INITIATION.value
    RESPONSE = MessageType.RESPONSE.value


_TRANSITIONS: dict[tuple[Role, State, Step], State] = {
    (Role.INITIATOR, State.NEEDS_START, Step.START): State.AWAITING_COMMITMENT,
    (Role.INITIATOR, State.AWAITING_COMMITMENT, Step.COMMITMENT): State.AWAITING_RESPONSE,
    (Role.INITIATOR, State.AWAITING_RESPONSE, Step.RESPONSE): State.DONE,
    (Role.RESPONDER, State.NEEDS_START, Step.START): State.AWAITING_INITIATION,
    (Role.RESPONDER, State.AWAITING_INITIATION, Step.INITIATION): State.DONE,
}
_RECEIVING_STATES = frozenset(
    {State.AWAITING_COMMITMENT, State.AWAITING_INITIATION, State.AWAITING_RESPONSE}
)


@dataclass(frozen=True)
class HandshakeResult:
    """What a finished handshake hands to the SAS and the Double Ratchet session.

    `handshake_hash` is Noise's final `h` (public to both ends; the SAS is derived from it).
    `ratchet_seed` is the Double Ratchet's shared secret, HKDF-SHA256 over the Noise split()
    keys; it is never the SAS key. The responder plays Bob in the Double Ratchet: it holds
    `own_ratchet_private`, the initiator gets `peer_ratchet_public`.
    """

    role: Role
    handshake_hash: bytes
    ratchet_seed: bytes = field(repr=False)
    peer_ratchet_public: bytes | None
    own_ratchet_private: bytes | None = field(repr=False)
    local_did: str
    peer_did: str


def derive_ratchet_seed(handshake_hash: bytes, key_1: bytes, key_2: bytes) -> bytes:
    """HKDF-SHA256(salt=h, ikm=k1 || k2, info=RATCHET_SEED_LABEL, L=32) (spec section 5)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=handshake_hash, info=RATCHET_SEED_LABEL)
    return hkdf.derive(key_1 + key_2)


def frame(kind: MessageType, body: bytes) -> bytes:
    """Prefix a body with its type and version bytes."""
    return bytes([kind.value, WIRE_VERSION]) + body


_Key = tuple[Role, State, Step]
_Handler = Callable[["Handshake", bytes], bytes | None]


class Handshake:
    """One didlink handshake, as initiator or responder. See the module docstring."""

    def __init__(
        self,
        *,
        role: Role,
        local_key: IdentityKey,
        peer_did: str,
        invitation_id: bytes,
        local_fingerprint: str,
        peer_fingerprint: str,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not isinstance(role, Role):
            raise LocalProtocolError("role must be Role.INITIATOR or Role.RESPONDER")
        if peer_did == local_key.did:
            raise LocalProtocolError("a handshake needs two different DIDs")
        try:
            self._peer_static = did_x25519_public(peer_did)
        except (IdentityError, ValueError, TypeError) as exc:
            raise LocalProtocolError("the peer DID is not a valid Ed25519 did:key") from exc
        initiator = role is Role.INITIATOR
        self.role = role
        self.local_did = local_key.did
        self.peer_did = peer_did
        self._local_key = local_key
        self._rng = rng
        self._prologue = handshake_prologue(
            invitation_id=invitation_id,
            initiator_did=local_key.did if initiator else peer_did,
            responder_did=peer_did if initiator else local_key.did,
            initiator_fingerprint=local_fingerprint if initiator else peer_fingerprint,
            responder_fingerprint=peer_fingerprint if initiator else local_fingerprint,
        )
        self._noise: HandshakeState | None = None
        self._commitment: bytes | None = None
        self._result: HandshakeResult | None = None
        self.state = State.NEEDS_START

    def __repr__(self) -> str:
        return f"Handshake(role={self.role.value}, state={self.state.value})"

    @property
    def result(self) -> HandshakeResult:
        """The outcome; only once `state` is DONE."""
        if self._result is None or self.state is not State.DONE:
            raise LocalProtocolError(f"the handshake is not done (state: {self.state.value})")
        return self._result

    # -- the two entry points -----------------------------------------------------------

    def start(self) -> bytes | None:
        """Begin: the responder returns its COMMITMENT message; the initiator returns None."""
        return self._run(Step.START, b"")

    def receive(self, data: bytes) -> bytes | None:
        """Feed one whole message from the peer; return the reply to send, if any."""
        if self.state not in _RECEIVING_STATES:
            self._fail()
            raise LocalProtocolError(f"receive() is not allowed now (state: {self.state.value})")
        try:
            step = self._parse_header(data)
        except MessagingError:
            self._fail()
            raise
        return self._run(step, data)

    # -- machinery ----------------------------------------------------------------------

    def _fail(self) -> None:
        self.state = State.FAILED
        self._noise = None
        self._result = None

    def _parse_header(self, data: bytes) -> Step:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise LocalProtocolError("receive() takes bytes")
        data = bytes(data)
        if len(data) < HEADER_SIZE:
            raise RemoteProtocolError("handshake message is shorter than its header")
        try:
            kind = MessageType(data[0])
        except ValueError:
            raise RemoteProtocolError(f"unknown handshake message type 0x{data[0]:02x}") from None
        if data[1] != WIRE_VERSION:
            raise RemoteProtocolError(f"unsupported handshake version {data[1]}")
        if len(data) != MESSAGE_SIZES[kind]:
            raise RemoteProtocolError(
                f"{kind.name} message must be {MESSAGE_SIZES[kind]} bytes, not {len(data)}"
            )
        return Step(kind.value)

    def _run(self, step: Step, data: bytes) -> bytes | None:
        key = (self.role, self.state, step)
        next_state = _TRANSITIONS.get(key)
        if next_state is None:
            previous = self.state
            self._fail()
            if step is Step.START or previous not in _RECEIVING_STATES:
                raise LocalProtocolError(f"{step.value} is not allowed in state {previous.value}")
            raise RemoteProtocolError(f"unexpected {step.name} message in state {previous.value}")
        try:
            reply = self._handlers[key](self, bytes(data[HEADER_SIZE:]))
        except MessagingError:
            self._fail()
            raise
        except Exception as exc:  # defensive: nothing else may escape the machine
            self._fail()
            raise CryptoFailure() from exc
        self.state = next_state
        return reply

    def _draw_key(self) -> bytes:
        value = self._rng(KEY_SIZE)
        if not isinstance(value, bytes) or len(value) != KEY_SIZE:
            raise LocalProtocolError("rng must return the number of bytes asked for")
        return value

    def _new_noise(self, *, initiator: bool, ephemeral: bytes | None) -> HandshakeState:
        return HandshakeState(
            NOISE_PROTOCOL,
            initiator=initiator,
            prologue=self._prologue,
            s=self._local_key.x25519_private,
            e=ephemeral,
            rs=self._peer_static,
            rng=self._rng,
        )

    # Handlers: one per transition; each returns the reply (or None).

    def _initiator_start(self, body: bytes) -> bytes | None:
        return None

    def _responder_start(self, body: bytes) -> bytes | None:
        ephemeral = self._draw_key()
        self._noise = self._new_noise(initiator=False, ephemeral=ephemeral)
        commitment = ephemeral_commitment(self._prologue, x25519_public(ephemeral))
        return frame(MessageType.COMMITMENT, commitment)

    def _initiator_on_commitment(self, body: bytes) -> bytes | None:
        self._commitment = body
        self._noise = self._new_noise(initiator=True, ephemeral=self._draw_key())
        return frame(MessageType.INITIATION, self._noise.write_message(b""))

    def _responder_on_initiation(self, body: bytes) -> bytes | None:
        noise = self._require_noise()
        if noise.read_message(body) != b"":
            raise RemoteProtocolError("the INITIATION payload must be empty")
        ratchet_private = self._draw_key()
        reply = noise.write_message(x25519_public(ratchet_private))
        self._finish(noise, peer_ratchet_public=None, own_ratchet_private=ratchet_private)
        return frame(MessageType.RESPONSE, reply)

    def _initiator_on_response(self, body: bytes) -> bytes | None:
        noise = self._require_noise()
        revealed = body[:KEY_SIZE]
        expected = self._commitment
        if expected is None or not hmac.compare_digest(
            ephemeral_commitment(self._prologue, revealed), expected
        ):
            raise CryptoFailure()  # the responder revealed another ephemeral than committed
        peer_ratchet_public = noise.read_message(body)
        if len(peer_ratchet_public) != KEY_SIZE:  # cannot happen with the fixed size
            raise RemoteProtocolError("the RESPONSE payload must be a 32-byte key")
        self._finish(noise, peer_ratchet_public=peer_ratchet_public, own_ratchet_private=None)
        return None

    def _require_noise(self) -> HandshakeState:
        if self._noise is None:
            raise LocalProtocolError("internal state lost")
        return self._noise

    def _finish(
        self,
        noise: HandshakeState,
        *,
        peer_ratchet_public: bytes | None,
        own_ratchet_private: bytes | None,
    ) -> None:
        to_responder, to_initiator = noise.split()
        key_1, key_2 = to_responder.key, to_initiator.key
        if key_1 is None or key_2 is None:
            raise LocalProtocolError("Noise split() returned empty keys")
        handshake_hash = noise.handshake_hash
        self._result = HandshakeResult(
            role=self.role,
            handshake_hash=handshake_hash,
            ratchet_seed=derive_ratchet_seed(handshake_hash, key_1, key_2),
            peer_ratchet_public=peer_ratchet_public,
            own_ratchet_private=own_ratchet_private,
            local_did=self.local_did,
            peer_did=self.peer_did,
        )
        self._noise = None
        self._commitment = None

    _handlers: ClassVar[dict[_Key, _Handler]] = {
        (Role.INITIATOR, State.NEEDS_START, Step.START): _initiator_start,
        (Role.INITIATOR, State.AWAITING_COMMITMENT, Step.COMMITMENT): _initiator_on_commitment,
        (Role.INITIATOR, State.AWAITING_RESPONSE, Step.RESPONSE): _initiator_on_response,
        (Role.RESPONDER, State.NEEDS_START, Step.START): _responder_start,
        (Role.RESPONDER, State.AWAITING_INITIATION, Step.INITIATION): _responder_on_initiation,
    }
