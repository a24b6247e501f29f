"""A live session's local store, and the peer's contact in it.

One SQLite connection per session, or one shared by a process's sessions (its owner closes
it): opening and closing one per write cost milliseconds on the connect path (closing
checkpoints the WAL, with fsyncs) and memory (bench/: connect_time, memory_per_session). The
store opens on first use and stays open until the session lets it go (`close`).

The contact: written only once the SAS step is over (specs/store.md, "Live sessions"): when both
users confirmed it, the contact is saved SAS-verified (never downgrading a safety-number
verification), with the peer's label as a mere suggestion; when either rejected it, the DID is
marked suspect and nothing else is written (specs/cli-jsonl.md section 4a).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from didlink.profile.folder import Profile
from didlink.profile.store import Store

if TYPE_CHECKING:
    from didlink.profile.sealing import Sealer
    from messaging.channel import HandshakeOutput


class PeerRecords:
    """The session's store (opened lazily, shared or owned) and the peer's contact in it."""

    def __init__(self, *, profile: Profile, shared: Store | None) -> None:
        self._profile = profile
        self._shared = shared  # given by a caller running several sessions; it closes it
        self._store: Store | None = None

    @property
    def is_open(self) -> bool:
        """The store was opened (`store`) and not let go since (`close`)."""
        return self._store is not None

    def store(self) -> Store:
        """The session's local store: opened on first use, kept open until `close`."""
        if self._store is None:
            shared = self._shared
            self._store = shared if shared is not None else self._profile.open_store()
        return self._store

    def close(self) -> None:
        """Let go of the store; close it unless it is the shared one."""
        if self._store is not None and self._store is not self._shared:
            self._store.close()
        self._store = None

    def contact_verified(self, peer_did: str) -> bool:
        """The peer is a contact verified before (by SAS or safety number, and not suspect)."""
        contact = self.store().get_contact(peer_did)
        return contact is not None and contact.is_verified

    def mark_sas_verified(self, peer_did: str, suggested_name: str | None) -> None:
        """Both users confirmed the SAS: the contact is saved (its label only as a suggestion)
        and SAS-verified, never downgrading a safety-number verification."""
        self.store().record_session(
            peer_did, verified=True, suggested_name=suggested_name, now=datetime.now(UTC)
        )

    def keep_relays(self, peer_did: str, relays: tuple[str, ...]) -> None:
        """The relays the peer's token carried: where `send` reaches it from now on."""
        self.store().set_contact_relays(peer_did, relays, now=datetime.now(UTC))

    def mark_suspect(self, peer_did: str) -> None:
        """A user rejected the SAS: the DID is marked suspect, and nothing else is written."""
        self.store().record_session(peer_did, verified=False, now=datetime.now(UTC))

    def install_session(self, peer_did: str, result: HandshakeOutput, sealer: Sealer) -> None:
        """A verified first contact: the contact's persistent session (issue 25; messaging/
        mailbox.py), derived from this handshake, replaces any older one."""
        from didlink.mailbox.store import MailboxStore
        from messaging.mailbox import new_session_state

        MailboxStore(self.store(), sealer).install_session(
            peer_did, new_session_state(result), now=datetime.now(UTC)
        )
