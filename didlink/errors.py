"""Application-level errors: things the user can fix, printed by the CLI as one line (exit 2)."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (missing identity, unknown contact, bad option...)."""
