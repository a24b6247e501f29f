"""The handshake of one live session: built early when it can be, else once the channel opens.

The connect path (bench/: connect_time; specs/cli-jsonl.md section 4) builds the handshake while
the transport still connects (`prepare`), from the DTLS fingerprint in the peer's signed token;
once the channel is open, `run` uses that handshake only if it `fits` the channel's verified
fingerprints and builds one there otherwise (which is also where a bad peer DID is reported).
didlink/session/handshake.py has the parts (`PreparedHandshake`, `pump_handshake`).
"""

from __future__ import annotations

from didlink.errors import UserError
from didlink.session.handshake import PreparedHandshake, pump_handshake
from identity.keys import IdentityKey
from messaging.errors import MessagingError
from messaging.handshake import HandshakeResult
from transport import Peer


class EarlyHandshake:
    """The session's handshake: prepared while the transport connects, used if it fits."""

    def __init__(self, key: IdentityKey) -> None:
        self._key = key
        self._prepared: PreparedHandshake | None = None

    def prepare(
        self,
        *,
        initiator: bool,
        peer_did: str,
        invitation_id: bytes,
        local_fingerprint: str,
        peer_fingerprint: str,
    ) -> None:
        """Build the handshake now; a bad peer DID is left to `run` to report."""
        try:
            self._prepared = PreparedHandshake.build(
                key=self._key,
                initiator=initiator,
                peer_did=peer_did,
                invitation_id=invitation_id,
                local_fingerprint=local_fingerprint,
                peer_fingerprint=peer_fingerprint,
            )
        except MessagingError:
            self._prepared = None

    async def run(
        self, peer: Peer, *, initiator: bool, peer_did: str, invitation_id: bytes
    ) -> HandshakeResult:
        """The handshake over the open channel: the prepared one if it fits, else a new one."""
        remote = peer.remote_fingerprint
        if remote is None:  # pragma: no cover - wait_open sets it
            raise UserError("the transport did not expose the peer's fingerprint")
        prepared, self._prepared = self._prepared, None
        if prepared is None or not prepared.fits(
            peer_did=peer_did,
            invitation_id=invitation_id,
            local=peer.local_fingerprint,
            remote=remote,
        ):
            prepared = PreparedHandshake.build(
                key=self._key,
                initiator=initiator,
                peer_did=peer_did,
                invitation_id=invitation_id,
                local_fingerprint=peer.local_fingerprint,
                peer_fingerprint=remote,
            )
        return await pump_handshake(peer, prepared.handshake, first=prepared.first)
