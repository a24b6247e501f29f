"""A live session's local store, and the peer's contact in it.

One SQLite connection per session, or one shared by a process's sessions (its owner closes
it): opening and closing one per write cost milliseconds on the connect path (closing
checkpoints the WAL, with fsyncs) and memory (bench/: connect_time, memory_per_session). The
store opens on first use and stays open until the session lets it go (`close`).

The contact: saved (with the petname if it is free and valid) once the handshake proved the
peer's DID; marked SAS-verified when both users confirmed the SAS, never downgrading a
safety-number verification (specs/cli-jsonl.md section 4a).
"""

from __future__ import annotations

from datetime import UTC, datetime

from didlink.errors import UserError
from didlink.profile import Profile
from didlink.store import Store, check_name
from identity.contact import Verification


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

    def save_contact(self, peer_did: str, petname: str | None) -> None:
        """Add the peer as a contact (named `petname` if it is new and the name is usable)."""
        now = datetime.now(UTC)
        store = self.store()
        if petname is not None and store.get_contact(peer_did) is None:
            try:
                store.add_contact(peer_did, name=check_name(petname), now=now)
                return
            except UserError:  # a bad or taken name: keep the contact unnamed
                pass
        store.add_contact(peer_did, now=now)

    def contact_verified(self, peer_did: str) -> bool:
        """The peer is a contact verified before (by SAS or safety number)."""
        contact = self.store().get_contact(peer_did)
        return contact is not None and contact.verification is not Verification.UNVERIFIED

    def mark_sas_verified(self, peer_did: str) -> None:
        """Both users confirmed the SAS; never downgrade a safety-number verification."""
        if not self.contact_verified(peer_did):
            self.store().set_verification(peer_did, Verification.SAS)
