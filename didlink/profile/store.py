"""The local store: one SQLite file in the profile for contacts and used invitation ids.

Theory of operation (specs/store.md):
- stdlib sqlite3; the file is created whole (0600, with its schema) or refused if it exists
  but is empty, headerless or damaged, and every SQLite error becomes a `StoreError` naming
  the file and what to do (didlink/profile/store_file.py). Its -wal / -shm files inherit the mode.
  WAL journal with synchronous=NORMAL: a committed change survives the process being
  killed at any instant; an OS crash or power cut may roll back the last commits, never corrupt
  the file. (FULL cost one fsync per chat message on each side: 4x the latency, bench/.)
- The schema version lives in `PRAGMA user_version`. `MIGRATIONS[i]` takes a database from
  version i to i+1; opening runs the missing ones in one IMMEDIATE transaction, so two processes
  opening a fresh profile at once cannot both migrate. A database newer than this code is refused.
- The connection is in autocommit mode; each public method is one statement or one explicit
  transaction, so every call is atomic on its own (e.g. `mark_invitation_used` is a single
  INSERT that either claims the id or finds it taken).
- Times are stored as ISO 8601 text in UTC (microseconds); callers pass aware datetimes.
- Petnames are the user's (didlink/profile/names.py): unique, never confusable with another one, and
  never looking like a DID, so that a command-line argument is unambiguously a DID or a name. A
  peer's label is kept apart, as a suggestion, until the user adopts it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from didlink.errors import UserError
from didlink.profile.names import (
    BARE_DID_START,
    ED25519_DID_START,
    check_name,
    look_alike,
    looks_like_did,
)
from didlink.profile.store_file import BUSY_TIMEOUT_S as BUSY_TIMEOUT_S
from didlink.profile.store_file import DamagedStore as DamagedStore
from didlink.profile.store_file import StoreBusy as StoreBusy
from didlink.profile.store_file import StoreConstraint as StoreConstraint
from didlink.profile.store_file import StoreError as StoreError
from didlink.profile.store_file import check_existing, connect, create_new
from didlink.words.display import shown
from identity import relay_url
from identity.contact import Contact, Verification
from identity.did_key import ed25519_public_key
from identity.errors import IdentityError

SCHEMA_VERSION = 9
MAX_INVITATION_ID = 64
MAX_CONTACT_RELAYS = 4
"""Relays kept per contact: as many as a token's reach or response carries."""
MAX_CANDIDATES = 5
"""Contacts an ambiguous DID prefix lists in its error (then "and N more")."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: contacts and used invitation ids (issue 2, section 5).
    (
        """
        CREATE TABLE contacts (
            did          TEXT PRIMARY KEY NOT NULL,
            name         TEXT COLLATE NOCASE UNIQUE,
            verification TEXT NOT NULL
                         CHECK (verification IN ('unverified', 'sas', 'safety-number')),
            first_seen   TEXT NOT NULL,
            last_seen    TEXT NOT NULL
        ) STRICT
        """,
        """
        CREATE TABLE used_invitations (
            id      BLOB PRIMARY KEY NOT NULL,
            used_at TEXT NOT NULL
        ) STRICT
        """,
    ),
    # 1 -> 2: what the live sessions keep (issue 5): the outbox, ids already received, file
    # transfers to resume, optional history. Message contents and file metadata are sealed
    # under the profile's local key (didlink/profile/sealing.py), never stored in clear.
    (
        """
        CREATE TABLE outbox (
            seq        INTEGER PRIMARY KEY AUTOINCREMENT,
            peer_did   TEXT NOT NULL,
            message_id BLOB NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            sealed     BLOB NOT NULL
        ) STRICT
        """,
        "CREATE INDEX outbox_by_peer ON outbox (peer_did, seq)",
        """
        CREATE TABLE received (
            peer_did    TEXT NOT NULL,
            message_id  BLOB NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (peer_did, message_id)
        ) STRICT, WITHOUT ROWID
        """,
        """
        CREATE TABLE transfers (
            file_id    BLOB PRIMARY KEY NOT NULL,
            peer_did   TEXT NOT NULL,
            direction  TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            updated_at TEXT NOT NULL,
            sealed     BLOB NOT NULL
        ) STRICT
        """,
        """
        CREATE TABLE history (
            seq       INTEGER PRIMARY KEY AUTOINCREMENT,
            peer_did  TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            at        TEXT NOT NULL,
            sealed    BLOB NOT NULL
        ) STRICT
        """,
        "CREATE INDEX history_by_peer ON history (peer_did, seq)",
    ),
    # 2 -> 3: a name is the user's word (a peer's label is only a suggestion until adopted), and
    # a rejected SAS marks the contact as suspect (issue 26, section 2; specs/store.md).
    (
        """
        CREATE TABLE contacts_v3 (
            did            TEXT PRIMARY KEY NOT NULL,
            name           TEXT COLLATE NOCASE UNIQUE,
            suggested_name TEXT,
            verification   TEXT NOT NULL
                           CHECK (verification IN ('unverified', 'sas', 'safety-number',
                                                   'suspect')),
            first_seen     TEXT NOT NULL,
            last_seen      TEXT NOT NULL
        ) STRICT
        """,
        "INSERT INTO contacts_v3 (did, name, verification, first_seen, last_seen)"
        " SELECT did, name, verification, first_seen, last_seen FROM contacts",
        "DROP TABLE contacts",
        "ALTER TABLE contacts_v3 RENAME TO contacts",
    ),
    # 3 -> 4: a transfer's state is keyed by (direction, file id), so a file a peer offers us
    # can never replace the state of a file we send under the same id (issue 26).
    (
        """
        CREATE TABLE transfers_4 (
            direction  TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            file_id    BLOB NOT NULL,
            peer_did   TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sealed     BLOB NOT NULL,
            PRIMARY KEY (direction, file_id)
        ) STRICT
        """,
        "INSERT INTO transfers_4 (direction, file_id, peer_did, updated_at, sealed)"
        " SELECT direction, file_id, peer_did, updated_at, sealed FROM transfers",
        "DROP TABLE transfers",
        "ALTER TABLE transfers_4 RENAME TO transfers",
        "CREATE INDEX transfers_by_peer ON transfers (peer_did, direction, updated_at)",
    ),
    # 4 -> 5: the profile's settings (relays, ICE servers and policy; issues 25 and 29), a row
    # per setting, its value in clear or sealed (didlink/profile/settings.py).
    (
        """
        CREATE TABLE settings (
            name       TEXT PRIMARY KEY NOT NULL,
            sealed     INTEGER NOT NULL CHECK (sealed IN (0, 1)),
            value      BLOB NOT NULL,
            updated_at TEXT NOT NULL
        ) STRICT
        """,
    ),
    # 5 -> 6: reach (issue 25): one persistent session per contact, the mailbox wraps made
    # from it (kept until the contact's receipt, so a crash re-sends the same bytes and never
    # re-encrypts), and what arrived by mailbox until it is shown (didlink/mailbox/store.py).
    (
        """
        CREATE TABLE sessions (
            peer_did   TEXT PRIMARY KEY NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sealed     BLOB NOT NULL
        ) STRICT
        """,
        """
        CREATE TABLE wraps (
            event_id     BLOB PRIMARY KEY NOT NULL,
            peer_did     TEXT NOT NULL,
            message_id   BLOB,
            made_at      TEXT NOT NULL,
            expiration   INTEGER NOT NULL,
            published_at TEXT,
            sealed       BLOB NOT NULL
        ) STRICT
        """,
        "CREATE INDEX wraps_by_peer ON wraps (peer_did, made_at)",
        """
        CREATE TABLE inbox (
            seq        INTEGER PRIMARY KEY AUTOINCREMENT,
            peer_did   TEXT NOT NULL,
            kind       TEXT NOT NULL CHECK (kind IN ('text', 'delivered')),
            message_id BLOB NOT NULL,
            arrived_at TEXT NOT NULL,
            sealed     BLOB NOT NULL,
            UNIQUE (peer_did, kind, message_id)
        ) STRICT
        """,
    ),
    # 6 -> 7: contacts' relays (issue 25 point 2): where a contact reads its mailbox, from the
    # reach of its invitation or card, or from its response; `send` publishes there.
    (
        """
        CREATE TABLE contact_relays (
            peer_did   TEXT PRIMARY KEY NOT NULL,
            relays     TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) STRICT
        """,
    ),
    # 7 -> 8: message requests (issue 25 point 7; didlink/mailbox/requests.py): where a contact
    # can be reached by relay (from its card or its request), the requests not answered yet,
    # and the handshake hashes of the first messages accepted (replays are refused).
    (
        """
        CREATE TABLE contact_reach (
            peer_did   TEXT PRIMARY KEY NOT NULL,
            updated_at TEXT NOT NULL,
            relays     TEXT NOT NULL,
            key        BLOB NOT NULL CHECK (length(key) = 32)
        ) STRICT
        """,
        """
        CREATE TABLE message_requests (
            peer_did   TEXT PRIMARY KEY NOT NULL,
            arrived_at TEXT NOT NULL
        ) STRICT
        """,
        """
        CREATE TABLE first_messages (
            handshake_hash BLOB PRIMARY KEY NOT NULL,
            accepted_at    INTEGER NOT NULL
        ) STRICT
        """,
    ),
    # 8 -> 9: a contact's wraps found by mid (a new wrap replacing a text's older one, a
    # receipt's mids): without it each was a scan of all the contact's wraps, quadratic in a
    # burst (issue 25's bench work).
    ("CREATE INDEX wraps_by_message ON wraps (peer_did, message_id)",),
)

assert len(MIGRATIONS) == SCHEMA_VERSION


def _timestamp(now: datetime) -> str:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("store times must be timezone-aware datetimes")
    return now.astimezone(UTC).isoformat(timespec="microseconds")


def _datetime(text: str) -> datetime:
    return datetime.fromisoformat(text)


_CONTACT_COLUMNS = "did, name, verification, first_seen, last_seen, suggested_name"


def as_suggestion(label: str | None) -> str | None:
    """A peer's label as a suggested name: a valid name (normalised), or nothing."""
    if label is None:
        return None
    try:
        return check_name(label)
    except UserError:
        return None


CANDIDATE_DID_EXTRA = 6
"""Characters of a candidate's DID shown beyond the prefix it shares with the others."""


def _candidate(contact: Contact, *, shared: int) -> str:
    """One contact in an ambiguity error: its name (or suggested one, marked ~) and the start
    of its DID, long enough to tell it from the others in most cases."""
    did = contact.did[: shared + CANDIDATE_DID_EXTRA] + "..."
    if contact.name:
        return f"{shown(contact.name, limit=32)} ({did})"
    if contact.suggested_name:
        return f"~{shown(contact.suggested_name, limit=32)} ({did})"
    return did


def _is_did(text: str) -> bool:
    try:
        check_did(text)
    except IdentityError:
        return False
    return True


@functools.lru_cache(maxsize=256)
def check_did(did: str) -> str:
    """`did` if it is a valid Ed25519 did:key; InvalidDid & co. (identity errors) otherwise.

    Valid DIDs are remembered (a full validation costs about 0.1 ms, on the connect path of a
    live session); an invalid one raises every time, since a raising call is not cached.
    """
    ed25519_public_key(did)  # raises InvalidDid & co. (identity errors: one line in the CLI)
    return did


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (take the write lock now) ... COMMIT, or ROLLBACK on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error, StoreError):  # the first error is the one
                db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Run the missing MIGRATIONS in one IMMEDIATE transaction (see the module docstring)."""
    if _user_version(db) == SCHEMA_VERSION:
        return
    with _transaction(db):
        version = _user_version(db)  # again, now that we hold the write lock
        if version > SCHEMA_VERSION:
            raise UserError(
                f"the local store {path} was made by a newer didlink "
                f"(schema {version}, this one knows {SCHEMA_VERSION})"
            )
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {step + 1}")


def _make_private(path: Path) -> None:
    """Force mode 0600 on the existing store file (something may have loosened it)."""
    try:
        if os.stat(path).st_mode & 0o777 != 0o600:
            os.chmod(path, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open the local store {path}: {exc.strerror or exc}") from exc


PEER_TABLES = (
    "outbox",
    "received",
    "transfers",
    "history",
    "sessions",
    "wraps",
    "inbox",
    "contact_relays",
    "contact_reach",
    "message_requests",
)
"""The tables whose rows are keyed by a peer's DID (`peer_did`): erased with the contact."""


@dataclass(frozen=True)
class Removal:
    """What `remove_contact` leaves to its caller."""

    incoming_files: tuple[bytes, ...]  # ids of the contact's incoming transfers (part files)
    scrubbed: bool  # the file and its WAL hold no trace of the contact (see `scrub`)


class Store:
    """The profile's SQLite database. Use as a context manager or call `close()`.

    A missing file is created with its schema (`created` is then True); an existing one must
    be a whole, undamaged didlink store (`check`: read every page first, `PRAGMA quick_check`),
    else `DamagedStore`; nothing is ever recreated over it (specs/store.md, "The file and its
    faults").
    """

    def __init__(self, path: Path, *, check: bool = True) -> None:
        self.path = Path(path)
        self.created = False
        if not os.path.lexists(self.path):
            self.created = create_new(self.path, lambda db: _migrate(db, self.path))
        check_existing(self.path)
        _make_private(self.path)
        self._db = connect(self.path)
        try:
            if check and not self.created:
                problems = self._db.execute("PRAGMA quick_check(1)").fetchall()
                if problems != [("ok",)]:
                    detail = " ".join(str(problems[0][0]).split()) if problems else "no answer"
                    detail = detail.removeprefix("*** in database main *** ")
                    raise DamagedStore(
                        f"the local store {self.path} is damaged (SQLite's check: {detail}): "
                        "restore it from a backup, or move it away and didlink starts a new, "
                        "empty store (its contacts, outbox and history are then lost)"
                    )
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA secure_delete = ON")  # deleted rows leave no bytes behind
            _migrate(self._db, self.path)
        except BaseException:
            with contextlib.suppress(StoreError):
                self._db.close()
            raise

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection (autocommit), for the store's sibling modules (outbox, history)."""
        return self._db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE (take the write lock now) ... COMMIT, or ROLLBACK on any error."""
        with _transaction(self._db):
            yield

    @property
    def schema_version(self) -> int:
        return _user_version(self._db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- contacts (names: didlink/profile/names.py) -----------------------------------------------

    @staticmethod
    def _contact(row: tuple[str, str | None, str, str, str, str | None]) -> Contact:
        did, name, verification, first_seen, last_seen, suggested_name = row
        return Contact(
            did=did,
            name=name,
            verification=Verification(verification),
            first_seen=_datetime(first_seen),
            last_seen=_datetime(last_seen),
            suggested_name=suggested_name,
        )

    def _check_free(self, name: str, *, did: str) -> None:
        """UserError if another contact's name is `name` or could be mistaken for it."""
        others = [
            str(row[0])
            for row in self._db.execute(
                "SELECT name FROM contacts WHERE name IS NOT NULL AND did != ?", (did,)
            )
        ]
        clash = look_alike(name, others)
        if clash is None:
            return
        if clash.casefold() == name.casefold():
            raise UserError(f"the name {shown(name)!r} is already used by another contact")
        raise UserError(
            f"the name {shown(name)!r} looks like {shown(clash)!r}, another contact's name:"
            " choose one that cannot be mistaken for it"
        )

    def add_contact(
        self,
        did: str,
        *,
        name: str | None = None,
        suggested_name: str | None = None,
        now: datetime,
    ) -> Contact:
        """Add an unverified contact; if it exists, keep its state and update last_seen.

        `name` (the user's own) is only used (and checked) for a new contact: a bad, taken or
        look-alike name is a UserError and nothing is added. `suggested_name` is a peer's label:
        kept as a suggestion if it is a valid name, dropped if not; it never resolves.
        """
        check_did(did)
        stamp = _timestamp(now)
        suggestion = as_suggestion(suggested_name)
        with self.transaction():
            exists = self._db.execute("SELECT 1 FROM contacts WHERE did = ?", (did,)).fetchone()
            if exists:
                self._db.execute("UPDATE contacts SET last_seen = ? WHERE did = ?", (stamp, did))
            else:
                name = None if name is None else check_name(name)
                if name is not None:
                    self._check_free(name, did=did)
                self._db.execute(
                    "INSERT INTO contacts (did, name, suggested_name, verification, first_seen,"
                    " last_seen) VALUES (?, ?, ?, ?, ?, ?)",
                    (did, name, suggestion, Verification.UNVERIFIED.value, stamp, stamp),
                )
        return self._require(did)

    def record_session(
        self, did: str, *, verified: bool, suggested_name: str | None = None, now: datetime
    ) -> Contact:
        """The outcome of a live session's SAS step, in one transaction (specs/store.md).

        Confirmed (`verified`): the contact is added if new (the peer's label kept as a
        suggestion), marked SAS-verified unless it was verified by safety number, seen now.
        Rejected: the contact becomes (or is added as) `suspect`, and nothing else is written.
        """
        check_did(did)
        stamp = _timestamp(now)
        state = Verification.SAS if verified else Verification.SUSPECT
        suggestion = as_suggestion(suggested_name) if verified else None
        with self.transaction():
            row = self._db.execute(
                "SELECT verification FROM contacts WHERE did = ?", (did,)
            ).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO contacts (did, name, suggested_name, verification, first_seen,"
                    " last_seen) VALUES (?, NULL, ?, ?, ?, ?)",
                    (did, suggestion, state.value, stamp, stamp),
                )
            elif verified:
                keep = row[0] == Verification.SAFETY_NUMBER.value
                self._db.execute(
                    "UPDATE contacts SET verification = ?, last_seen = ? WHERE did = ?",
                    (row[0] if keep else state.value, stamp, did),
                )
            else:
                self._db.execute(
                    "UPDATE contacts SET verification = ? WHERE did = ?", (state.value, did)
                )
        return self._require(did)

    def get_contact(self, did: str) -> Contact | None:
        row = self._db.execute(
            f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE did = ?",  # noqa: S608
            (did,),
        ).fetchone()
        return None if row is None else self._contact(row)

    def _require(self, did: str) -> Contact:
        contact = self.get_contact(did)
        if contact is None:
            raise UserError(f"{did} is not one of your contacts")
        return contact

    def find_contact(self, did_or_name: str) -> Contact:
        """The contact that `did_or_name` names (specs/store.md "Finding a contact"): its
        petname, its full DID, or the start of its DID, with or without `did:key:`, of any
        length after `did:key:z6Mk` that no other contact's DID starts with.

        UserError (one line, display-safe) if none matches, or if several do: then it lists
        them (name and the start of the DID, at most MAX_CANDIDATES) to choose from.
        """
        text = did_or_name.strip()
        if looks_like_did(text):
            return self._find_by_did(text)
        name = unicodedata.normalize("NFC", text)
        row = self._db.execute(
            f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE name = ?",  # noqa: S608
            (name,),
        ).fetchone()
        if row is not None:
            return self._contact(row)
        suggesting = [  # a suggestion never resolves: say whose it is and how to adopt it
            str(row[0])
            for row in self._db.execute(
                "SELECT did FROM contacts WHERE name IS NULL AND suggested_name = ?"
                " ORDER BY did LIMIT ?",
                (name, MAX_CANDIDATES + 1),
            )
        ]
        missing = f"you have no contact named {shown(text)!r}"
        if len(suggesting) == 1:
            raise UserError(
                f"{missing}; {suggesting[0]} suggests that name: to use it, run"
                f" didlink contacts rename {suggesting[0]}"
            )
        if suggesting:  # several say they are "Bob": the user tells which one is
            listed = ", ".join(suggesting[:MAX_CANDIDATES])
            more = " and more" if len(suggesting) > MAX_CANDIDATES else ""
            raise UserError(
                f"{missing}; several contacts suggest that name ({listed}{more}): name the one"
                " you mean, didlink contacts rename DID NAME"
            )
        raise UserError(missing)

    def _find_by_did(self, text: str) -> Contact:
        if text.startswith(BARE_DID_START):  # written without its did:key:
            did = "did:key:" + text
        elif text[:8].lower() == "did:key:":  # `DID:Key:` is still the did:key method
            did = "did:key:" + text[8:]
        else:
            did = text
        contact = self.get_contact(did)
        if contact is not None:
            return contact
        if len(did) <= len(ED25519_DID_START) and ED25519_DID_START.startswith(did):
            raise UserError(
                f"{shown(text)} is the start of every contact's DID: give at least one more"
                " character of the one you mean (didlink contacts lists them)"
            )
        if not did.startswith(ED25519_DID_START):
            raise UserError(
                f"{shown(text, limit=80)} is not one of your contacts (their DIDs all start"
                f" with {ED25519_DID_START})"
            )
        rows = self._db.execute(
            f"SELECT {_CONTACT_COLUMNS} FROM contacts "  # noqa: S608
            "WHERE substr(did, 1, ?) = ? ORDER BY name IS NULL, name, did LIMIT ?",
            (len(did), did, MAX_CANDIDATES + 1),
        ).fetchall()
        if len(rows) == 1:
            return self._contact(rows[0])
        if not rows:
            if _is_did(did):
                raise UserError(f"{did} is not one of your contacts")
            raise UserError(f"no contact has a DID starting with {shown(text, limit=80)}")
        (total,) = self._db.execute(
            "SELECT count(*) FROM contacts WHERE substr(did, 1, ?) = ?", (len(did), did)
        ).fetchone()
        found = [self._contact(row) for row in rows[:MAX_CANDIDATES]]
        listed = ", ".join(_candidate(c, shared=len(did)) for c in found)
        more = f" and {total - len(found)} more" if total > len(found) else ""
        raise UserError(
            f"{shown(text, limit=80)} is the start of {total} contacts' DIDs: {listed}{more};"
            " give more of the DID, or a name"
        )

    def list_contacts(self) -> list[Contact]:
        """All contacts: named ones by name (ignoring ASCII case), then unnamed ones by DID."""
        rows = self._db.execute(
            f"SELECT {_CONTACT_COLUMNS} FROM contacts"  # noqa: S608
            " ORDER BY name IS NULL, name, did"
        ).fetchall()
        return [self._contact(row) for row in rows]

    def rename_contact(self, did: str, name: str | None) -> Contact:
        """Give a contact a petname (None removes it); UserError if the name is bad, taken or
        looks like another contact's. Naming a contact settles its suggestion."""
        name = None if name is None else check_name(name)
        with self.transaction():
            self._require(did)
            if name is not None:
                self._check_free(name, did=did)
            self._db.execute(
                "UPDATE contacts SET name = ?, suggested_name = NULL WHERE did = ?", (name, did)
            )
        return self._require(did)

    def adopt_suggestion(self, did: str) -> Contact:
        """Make the name the contact suggested its petname (the rules of `rename_contact`)."""
        contact = self._require(did)
        if contact.suggested_name is None:
            raise UserError(
                f"{contact.did} suggested no name: give one (didlink contacts rename CONTACT NAME)"
            )
        return self.rename_contact(did, contact.suggested_name)

    def remove_contact(self, did: str) -> Removal:
        """Forget a contact and everything kept about it; UserError if it is unknown.

        One transaction deletes its row and every row keyed by its DID (PEER_TABLES: outbox,
        received ids, file transfer states, history); secure_delete overwrites their bytes,
        then `scrub` rewrites the file and empties the WAL, so that no copy of the DID or
        of its rows stays in store.sqlite3 or its -wal (specs/store.md, "Removing a contact").
        The caller deletes the part files of the returned incoming transfers.
        """
        with self.transaction():
            cursor = self._db.execute("DELETE FROM contacts WHERE did = ?", (did,))
            if cursor.rowcount != 1:
                raise UserError(f"{did} is not one of your contacts")
            rows = self._db.execute(
                "SELECT file_id FROM transfers WHERE peer_did = ? AND direction = 'in'", (did,)
            ).fetchall()
            for table in PEER_TABLES:
                self._db.execute(f"DELETE FROM {table} WHERE peer_did = ?", (did,))  # noqa: S608
        return Removal(incoming_files=tuple(bytes(row[0]) for row in rows), scrubbed=self.scrub())

    def scrub(self) -> bool:
        """Rewrite the database without its free space (VACUUM: deleted rows written before
        secure_delete was on go too) and checkpoint the WAL into it, truncating the WAL to zero
        bytes. False if another connection's reader kept the WAL from being emptied (its
        frames then go at the next checkpoint after that reader ends)."""
        try:
            self._db.execute("VACUUM")
            busy, _log, _done = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except StoreBusy:
            return False
        return int(busy) == 0

    def set_verification(self, did: str, verification: Verification) -> Contact:
        """Record how the contact was verified; UserError if it is unknown."""
        cursor = self._db.execute(
            "UPDATE contacts SET verification = ? WHERE did = ?",
            (Verification(verification).value, did),
        )
        if cursor.rowcount != 1:
            raise UserError(f"{did} is not one of your contacts")
        return self._require(did)

    def set_contact_relays(self, did: str, relays: Sequence[str], *, now: datetime) -> None:
        """Keep the relays a contact reads its mailbox on (1..MAX_CONTACT_RELAYS URLs, checked
        again here: they came from a peer's token); the latest replace any before."""
        check_did(did)
        urls = [relay_url.normalised(url) for url in relays]
        if not 0 < len(urls) <= MAX_CONTACT_RELAYS or len(set(urls)) != len(urls):
            raise ValueError(f"a contact has 1..{MAX_CONTACT_RELAYS} distinct relays")
        self._db.execute(
            "INSERT INTO contact_relays (peer_did, relays, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (peer_did) DO UPDATE SET relays = excluded.relays,"
            " updated_at = excluded.updated_at",
            (did, json.dumps(urls), _timestamp(now)),
        )

    def contact_relays(self, did: str) -> list[str]:
        """The relays a contact reads its mailbox on ([] if none is known); a damaged row is
        a StoreError (named, with what to do)."""
        row = self._db.execute(
            "SELECT relays FROM contact_relays WHERE peer_did = ?", (did,)
        ).fetchone()
        if row is None:
            return []
        try:
            value = json.loads(row[0])
            if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
                raise ValueError("not a list of URLs")
            return [relay_url.normalised(url) for url in value][:MAX_CONTACT_RELAYS]
        except ValueError:
            raise StoreError(
                "a contact's stored relay list is damaged: accept a new card or invitation of"
                " theirs to store it again"
            ) from None

    def touch_contact(self, did: str, now: datetime) -> None:
        """Set the contact's last_seen to `now`; UserError if it is unknown."""
        cursor = self._db.execute(
            "UPDATE contacts SET last_seen = ? WHERE did = ?", (_timestamp(now), did)
        )
        if cursor.rowcount != 1:
            raise UserError(f"{did} is not one of your contacts")

    # --- used invitations (single-use policy, specs/invitation.md) -------------------------

    @staticmethod
    def _check_invitation_id(invitation_id: bytes) -> bytes:
        if not isinstance(invitation_id, bytes) or not 0 < len(invitation_id) <= MAX_INVITATION_ID:
            raise ValueError(f"an invitation id is 1 to {MAX_INVITATION_ID} bytes")
        return invitation_id

    def is_invitation_used(self, invitation_id: bytes) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM used_invitations WHERE id = ?",
            (self._check_invitation_id(invitation_id),),
        ).fetchone()
        return row is not None

    def mark_invitation_used(self, invitation_id: bytes, *, now: datetime) -> bool:
        """Claim the id: True if it was unused (now used), False if it already was. Atomic."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO used_invitations (id, used_at) VALUES (?, ?)",
            (self._check_invitation_id(invitation_id), _timestamp(now)),
        )
        return cursor.rowcount == 1
