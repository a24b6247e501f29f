"""A contact: someone whose DID we know, with the name we gave them and how far we trust it.

Contacts are kept by the application's local store (didlink/profile/store.py, specs/store.md); this
module only defines what a contact *is*, so that identity and messaging code can talk about one
without touching SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Verification(StrEnum):
    """How the contact's DID was confirmed to belong to the person we think it does."""

    UNVERIFIED = "unverified"
    """Known only from an invitation or a response: nobody compared anything yet."""
    SAS = "sas"
    """Both people compared the short authentication string of a live session."""
    SAFETY_NUMBER = "safety-number"
    """Both people compared the static safety number (in person or over another channel)."""
    SUSPECT = "suspect"
    """A comparison failed: a user rejected the SAS (or the safety number) with this DID, so
    someone may have been in the middle. Verifying again clears it."""


@dataclass(frozen=True)
class Contact:
    """One contact as stored: DID, optional petname, verification state, first and last seen,
    and the name the contact suggested for itself (a label; never used until adopted)."""

    did: str
    name: str | None
    verification: Verification
    first_seen: datetime
    last_seen: datetime
    suggested_name: str | None = None

    @property
    def display_name(self) -> str:
        """The petname when there is one, else the DID."""
        return self.name if self.name else self.did

    @property
    def is_verified(self) -> bool:
        """Verified by SAS or safety number (not unverified, not suspect)."""
        return self.verification in (Verification.SAS, Verification.SAFETY_NUMBER)
