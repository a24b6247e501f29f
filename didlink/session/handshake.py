"""The didlink handshake over an open data channel, and one prepared before it opens.

`pump_handshake` drives the sans-IO `messaging.handshake.Handshake` over anything that sends and
receives whole messages (a transport `Peer`; the fault tests use it too). `PreparedHandshake`
is the same handshake built while the transport still connects (specs/cli-jsonl.md section 4):
the prologue needs both DTLS fingerprints, and the peer's is the one in its signed token, which
the transport checks against the peer's certificate before the channel opens; the responder
also computes its COMMITMENT ahead. A live session uses a prepared handshake only if it `fits`
the open channel's verified fingerprints; the wire bytes are those of a handshake built at open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from identity.keys import IdentityKey
from messaging.handshake import Handshake, HandshakeResult
from messaging.handshake import Role as HandshakeRole
from messaging.handshake import State as HandshakeState


class MessagePipe(Protocol):
    """What the handshake pump needs of a transport: whole messages out and in (`Peer`)."""

    async def send(self, data: bytes) -> None: ...

    async def recv(self) -> bytes: ...


async def pump_handshake(
    peer: MessagePipe, handshake: Handshake, *, first: bytes | None = None
) -> HandshakeResult:
    """Drive a sans-IO `Handshake` over the open data channel until it is done.

    A handshake that was started beforehand (`PreparedHandshake`) passes what its `start()`
    returned as `first`; otherwise it is started here.
    """
    if handshake.state is HandshakeState.NEEDS_START:
        first = handshake.start()
    if first is not None:
        await peer.send(first)
    while handshake.state is not HandshakeState.DONE:
        reply = handshake.receive(await peer.recv())
        if reply is not None:
            await peer.send(reply)
    return handshake.result


@dataclass(frozen=True)
class PreparedHandshake:
    """A handshake built (and, for the responder, started) while the transport connects.

    Building it needs the DTLS fingerprints for the prologue; the peer's comes from its signed
    token, and the transport only opens the channel if the peer's certificate has exactly that
    fingerprint (specs/transport.md), so the prologue is the same as one built at open. It is
    used only if the open channel's verified fingerprints are the ones it was built with.
    """

    handshake: Handshake
    first: bytes | None  # what `start()` returned (the responder's COMMITMENT)
    peer_did: str
    invitation_id: bytes
    local_fingerprint: str
    peer_fingerprint: str

    @classmethod
    def build(
        cls,
        *,
        key: IdentityKey,
        initiator: bool,
        peer_did: str,
        invitation_id: bytes,
        local_fingerprint: str,
        peer_fingerprint: str,
    ) -> PreparedHandshake:
        """Build and start the handshake; `LocalProtocolError` for a bad peer DID."""
        handshake = Handshake(
            role=HandshakeRole.INITIATOR if initiator else HandshakeRole.RESPONDER,
            local_key=key,
            peer_did=peer_did,
            invitation_id=invitation_id,
            local_fingerprint=local_fingerprint,
            peer_fingerprint=peer_fingerprint,
        )
        return cls(
            handshake=handshake,
            first=handshake.start(),
            peer_did=peer_did,
            invitation_id=invitation_id,
            local_fingerprint=local_fingerprint,
            peer_fingerprint=peer_fingerprint,
        )

    def fits(self, *, peer_did: str, invitation_id: bytes, local: str, remote: str) -> bool:
        """Built for exactly this session and these verified fingerprints."""
        mine = (self.peer_did, self.invitation_id, self.local_fingerprint, self.peer_fingerprint)
        return mine == (peer_did, invitation_id, local, remote)
