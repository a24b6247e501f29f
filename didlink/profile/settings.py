"""The profile's settings: a named value per row of the store's `settings` table (schema 5).

What the user configures for the profile as a whole (the Nostr relays of issue 25, the ICE
servers and policy of issue 29) lives here, beside the contacts, so that one file holds the
profile's state and `backup export` can carry it. A value is bytes (its owner picks the
encoding, JSON for the current ones) kept either in clear (what is no secret: a relay's URL) or
sealed under the local store key (a TURN credential), with the context "settings\\0" + name so
that a sealed value moved to another setting does not open (specs/store.md, "Settings").

Reading a clear setting needs no passphrase; reading a sealed one needs the unlocked identity
(a `Sealer`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from didlink.profile.store import DamagedStore, Store

if TYPE_CHECKING:
    from didlink.profile.sealing import Sealer

MAX_NAME = 64
MAX_VALUE = 64 * 1024
"""A setting is small: a list of URLs, a policy word, a credential."""


def _check(name: str, value: bytes | None = None) -> None:
    if not name or len(name) > MAX_NAME or not name.isascii() or not name.isprintable():
        raise ValueError("a setting's name is 1..64 printable ASCII characters")
    if value is not None and len(value) > MAX_VALUE:
        raise ValueError(f"a setting's value is at most {MAX_VALUE} bytes")


def _context(name: str) -> bytes:
    return b"settings\x00" + name.encode("ascii")


class Settings:
    """The settings of the profile whose store is `store` (`sealer` for the sealed ones)."""

    def __init__(self, store: Store, sealer: Sealer | None = None) -> None:
        self._store = store
        self._sealer = sealer

    def _row(self, name: str) -> tuple[int, bytes] | None:
        _check(name)
        row = self._store.connection.execute(
            "SELECT sealed, value FROM settings WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def get(self, name: str) -> bytes | None:
        """The clear value of `name`, or None when it is not set."""
        row = self._row(name)
        if row is None:
            return None
        if row[0]:
            raise DamagedStore(f"the setting {name} is sealed where a clear value was expected")
        return row[1]

    def get_sealed(self, name: str) -> bytes | None:
        """The opened value of the sealed setting `name`, or None when it is not set."""
        row = self._row(name)
        if row is None:
            return None
        if not row[0]:
            raise DamagedStore(f"the setting {name} is in clear where a sealed value was expected")
        return self._require_sealer().open(row[1], context=_context(name))

    def put(self, name: str, value: bytes, *, now: datetime | None = None) -> None:
        """Set `name` to `value`, kept in clear."""
        self._write(name, 0, value, now)

    def put_sealed(self, name: str, value: bytes, *, now: datetime | None = None) -> None:
        """Set `name` to `value`, sealed under the local store key."""
        _check(name, value)
        self._write(name, 1, self._require_sealer().seal(value, context=_context(name)), now)

    def delete(self, name: str) -> bool:
        """Forget `name`; True if it was set."""
        _check(name)
        with self._store.transaction():
            cursor = self._store.connection.execute("DELETE FROM settings WHERE name = ?", (name,))
        return cursor.rowcount > 0

    def _write(self, name: str, sealed: int, value: bytes, now: datetime | None) -> None:
        _check(name, value)
        at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
        with self._store.transaction():
            self._store.connection.execute(
                "INSERT INTO settings (name, sealed, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed,"
                " value = excluded.value, updated_at = excluded.updated_at",
                (name, sealed, value, at),
            )

    def _require_sealer(self) -> Sealer:
        if self._sealer is None:
            raise ValueError("a sealed setting needs the unlocked identity (a Sealer)")
        return self._sealer
