"""The mailbox's state in the local store (schema 6): persistent sessions, the wraps made from
them, and what arrived until it is shown (specs/mailbox.md §10, specs/store.md).

Theory of operation
-------------------
Commit-then-send. A frame is made from a contact's session (which advances the ratchet), sealed
as a gift wrap, and then ONE transaction writes the session's new state and the wrap (sealed, in
`wraps`, beside the outbox row of the text it carries). Only then may the wrap leave. A process
killed before that commit leaves the old state: the frame never left, so encrypting again with
the same message key sends nothing twice under it. Killed after the commit: the stored wrap is
published again, byte for byte (relays answer "duplicate", the receiver drops a second copy by
event id, message key and `mid`); a message key is never used for two different frames. A wrap
is kept until the contact's receipt for its text (or, for a receipt, until it was accepted by
a relay), and made again (a new frame, a new key, the same `mid`) only when it is near its
expiry.

Receiving: the frame is opened (the ratchet advances in memory) and ONE transaction writes the
session's new state, the `mid` into `received` (the same ids as the live route: a text delivered
by either route is delivered once) and the text into `inbox`. A receipt deletes the outbox rows
and wraps of those mids (of that contact only) and leaves a `delivered` row in `inbox`. `inbox`
rows are shown by `didlink receive` and then deleted.

Sealing contexts: "sessions\\0" + DID, "wraps\\0" + event id, "inbox\\0" + kind + "\\0" + mid.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from didlink.profile.store import DamagedStore, Store
from identity import canonical
from messaging.mailbox import MailboxItem, MailboxReceipt, MailboxSession, MailboxText, SessionState

if TYPE_CHECKING:
    from didlink.profile.sealing import Sealer

RECEIVED_KEEP = 8192
_SESSION = b"sessions\x00"
_WRAP = b"wraps\x00"
_INBOX = b"inbox\x00"
_OUTBOX = b"outbox\x00"
_MAX_PLAIN = 256 * 1024


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="microseconds")


def session_context(peer_did: str) -> bytes:
    """The sealing context of a contact's stored session."""
    return _SESSION + peer_did.encode()


class NoSessionStored(DamagedStore):
    """The contact's session went away while it was in use (`contacts remove`, meanwhile)."""

    def __init__(self, peer_did: str) -> None:
        super().__init__("the contact's session is gone (removed meanwhile?): try again")


@dataclass(frozen=True)
class StoredWrap:
    event_id: bytes
    peer_did: str
    message_id: bytes | None
    expiration: int
    published: bool
    event_json: str


@dataclass(frozen=True)
class InboxEntry:
    """Something that arrived by mailbox and was not shown yet."""

    seq: int
    kind: str  # "text" or "delivered"
    peer_did: str
    message_id: bytes
    arrived_at: datetime
    sent_at: datetime | None  # a text: the sender's clock when it was typed
    text: str


class MailboxStore:
    """The mailbox tables of one profile's store (`sealer`: the profile's store key)."""

    def __init__(self, store: Store, sealer: Sealer) -> None:
        self._store = store
        self._db = store.connection
        self._sealer = sealer

    # -- sessions -----------------------------------------------------------------------------

    def session(self, peer_did: str) -> MailboxSession | None:
        row = self._db.execute(
            "SELECT sealed FROM sessions WHERE peer_did = ?", (peer_did,)
        ).fetchone()
        if row is None:
            return None
        plain = self._sealer.open(bytes(row[0]), context=_SESSION + peer_did.encode())
        try:
            state = SessionState.model_validate_json(plain)
        except ValueError as exc:
            raise DamagedStore("a stored session does not parse") from exc
        return MailboxSession(state)

    def has_session(self, peer_did: str) -> bool:
        """Whether a session with `peer_did` is stored (without opening it)."""
        row = self._db.execute("SELECT 1 FROM sessions WHERE peer_did = ?", (peer_did,))
        return row.fetchone() is not None

    def sessions(self) -> dict[str, MailboxSession]:
        dids = [
            row[0] for row in self._db.execute("SELECT peer_did FROM sessions ORDER BY peer_did")
        ]
        found = {did: self.session(did) for did in dids}
        return {did: session for did, session in found.items() if session is not None}

    def _write_session(self, peer_did: str, state: SessionState, now: datetime) -> None:
        sealed = self._sealer.seal(
            state.model_dump_json().encode(), context=_SESSION + peer_did.encode()
        )
        self._db.execute(
            "INSERT INTO sessions (peer_did, created_at, updated_at, sealed) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (peer_did) DO UPDATE SET updated_at = excluded.updated_at,"
            " sealed = excluded.sealed",
            (peer_did, _stamp(now), _stamp(now), sealed),
        )

    def install_session(self, peer_did: str, state: SessionState, *, now: datetime) -> None:
        """A new persistent session for `peer_did` (a completed first contact) replaces any
        older one; the wraps made from the older one are dropped (their texts stay in the
        outbox and are wrapped again from the new session, or go over the live connection)."""
        with self._store.transaction():
            self._db.execute("DELETE FROM sessions WHERE peer_did = ?", (peer_did,))
            self._db.execute("DELETE FROM wraps WHERE peer_did = ?", (peer_did,))
            self._write_session(peer_did, state, now)

    def add_session(
        self, peer_did: str, state: SessionState, *, now: datetime, replace: bool = False
    ) -> None:
        """The contact's session set up by a message request (didlink/mailbox/requests.py): call
        inside the caller's transaction, which checked that it has none (or, `replace`, that the
        one it has gives way: its wraps are dropped, as by `install_session`)."""
        if replace:
            self._db.execute("DELETE FROM wraps WHERE peer_did = ?", (peer_did,))
        self._write_session(peer_did, state, now)

    @contextlib.contextmanager
    def updating(self, peer_did: str, *, now: datetime) -> Iterator[MailboxSession]:
        """The contact's session read under the store's write lock (`BEGIN IMMEDIATE`), and
        its state written back in the same transaction when the block ends without error
        (with whatever else the block wrote). No two processes (nor two routes of one) ever
        seal or open from the same state: the lock serialises them, and each reads the state
        the other committed. An error in the block rolls everything back. NoSessionStored if
        the contact has none."""
        with self._store.transaction():
            session = self.session(peer_did)
            if session is None:
                raise NoSessionStored(peer_did)
            yield session
            self._write_session(peer_did, session.to_state(), now)

    # -- wraps (commit-then-send) -------------------------------------------------------------

    def add_wrap(
        self,
        peer_did: str,
        *,
        event_id: bytes,
        event_json: str,
        expiration: int,
        message_id: bytes | None,
        now: datetime,
    ) -> None:
        """Keep a wrap made from the session; call inside `updating`, so that the session's
        new state and the wrap are one transaction, before the wrap leaves. A text's older wrap
        (near its expiry, or sent again) goes."""
        sealed = self._sealer.seal(event_json.encode(), context=_WRAP + event_id)
        if message_id is not None:
            self._db.execute(
                "DELETE FROM wraps WHERE peer_did = ? AND message_id = ?", (peer_did, message_id)
            )
        self._db.execute(
            "INSERT INTO wraps (event_id, peer_did, message_id, made_at, expiration,"
            " published_at, sealed) VALUES (?, ?, ?, ?, ?, NULL, ?)",
            (event_id, peer_did, message_id, _stamp(now), expiration, sealed),
        )

    def forget_delivered(self, peer_did: str) -> int:
        """Drop the wraps of texts no longer in the outbox (their receipt came by the live
        route): nothing left to publish or send again. How many went."""
        cursor = self._db.execute(
            "DELETE FROM wraps WHERE peer_did = ? AND message_id IS NOT NULL AND message_id"
            " NOT IN (SELECT message_id FROM outbox WHERE peer_did = ?)",
            (peer_did, peer_did),
        )
        return cursor.rowcount

    def wraps(self, peer_did: str, *, unpublished: bool = False) -> list[StoredWrap]:
        """The contact's stored wraps (`unpublished`: only those no relay accepted yet), in the
        order they were made."""
        rows = self._db.execute(
            "SELECT event_id, message_id, expiration, published_at, sealed FROM wraps"
            " WHERE peer_did = ? AND (published_at IS NULL OR NOT ?) ORDER BY made_at, rowid",
            (peer_did, unpublished),
        ).fetchall()
        out = []
        for event_id, mid, expiration, published_at, sealed in rows:
            plain = self._sealer.open(bytes(sealed), context=_WRAP + bytes(event_id))
            out.append(
                StoredWrap(
                    event_id=bytes(event_id),
                    peer_did=peer_did,
                    message_id=None if mid is None else bytes(mid),
                    expiration=int(expiration),
                    published=published_at is not None,
                    event_json=plain.decode(),
                )
            )
        return out

    def mark_published(self, event_id: bytes, *, now: datetime, receipt: bool) -> None:
        """At least one relay accepted the wrap. A receipt's wrap is then forgotten (a lost
        receipt is answered again when the text comes again); a text's is kept until its
        receipt."""
        if receipt:
            self._db.execute("DELETE FROM wraps WHERE event_id = ?", (event_id,))
        else:
            self._db.execute(
                "UPDATE wraps SET published_at = ? WHERE event_id = ?", (_stamp(now), event_id)
            )

    def mark_published_all(self, published: Sequence[tuple[bytes, bool]], *, now: datetime) -> None:
        """`mark_published` for many wraps, (event id, a receipt's), in one transaction."""
        with self._store.transaction():
            for event_id, receipt in published:
                self.mark_published(event_id, now=now, receipt=receipt)

    def unwrapped_texts(
        self, peer_did: str, *, expiring_before: int, published_before: datetime
    ) -> list[tuple[bytes, str]]:
        """(mid, text) of the contact's outbox messages, oldest first, that need a new wrap:
        none is stored, or it expires before `expiring_before` (unix seconds), or it was
        published before `published_before` and no receipt came."""
        rows = self._db.execute(
            "SELECT message_id, sealed FROM outbox WHERE peer_did = ? AND message_id NOT IN"
            " (SELECT message_id FROM wraps WHERE peer_did = ? AND message_id IS NOT NULL"
            "  AND expiration > ? AND (published_at IS NULL OR published_at > ?))"
            " ORDER BY seq",
            (peer_did, peer_did, expiring_before, _stamp(published_before)),
        ).fetchall()
        return [(bytes(mid), self._outbox_text(peer_did, bytes(mid), bytes(s))) for mid, s in rows]

    def _outbox_text(self, peer_did: str, mid: bytes, sealed: bytes) -> str:
        value = canonical.decode(
            self._sealer.open(sealed, context=_OUTBOX + mid), max_size=_MAX_PLAIN
        )
        if not isinstance(value, dict) or value.get("peer") != peer_did:
            raise DamagedStore("an outbox message does not belong where it is stored")
        text = value.get("text")
        if not isinstance(text, str):
            raise DamagedStore("an outbox message does not parse")
        return text

    def pending(self, peer_did: str) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM outbox WHERE peer_did = ?", (peer_did,)
        ).fetchone()
        return int(row[0])

    def is_pending(self, peer_did: str, message_id: bytes) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM outbox WHERE peer_did = ? AND message_id = ?", (peer_did, message_id)
        ).fetchone()
        return row is not None

    # -- receiving ----------------------------------------------------------------------------

    def _seen(self, peer_did: str, mid: bytes) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM received WHERE peer_did = ? AND message_id = ?", (peer_did, mid)
        ).fetchone()
        return row is not None

    def keep_item(self, peer_did: str, item: MailboxItem, *, now: datetime) -> list[bytes]:
        """Keep what an opened frame carried; call inside `updating` (the session's new state
        and this are one transaction). A text: its mid if it is new ([] for a duplicate). A
        receipt: the mids it newly confirmed."""
        if isinstance(item, MailboxText):
            return self._keep_text(peer_did, item, now)
        if isinstance(item, MailboxReceipt):
            return self._keep_receipt(peer_did, item, now)
        return []  # a rendezvous item is never kept (specs/rendezvous.md)

    def _keep_text(self, peer_did: str, item: MailboxText, now: datetime) -> list[bytes]:
        if self._seen(peer_did, item.mid):
            return []
        self._db.execute(
            "INSERT OR IGNORE INTO received (peer_did, message_id, received_at) VALUES (?, ?, ?)",
            (peer_did, item.mid, _stamp(now)),
        )
        self._prune_received(peer_did)
        self._add_inbox(peer_did, "text", item.mid, now, {"at": item.at, "text": item.text})
        return [item.mid]

    def _keep_receipt(self, peer_did: str, item: MailboxReceipt, now: datetime) -> list[bytes]:
        confirmed = []
        for mid in dict.fromkeys(item.mids):
            row = self._db.execute(
                "SELECT sealed FROM outbox WHERE peer_did = ? AND message_id = ?", (peer_did, mid)
            ).fetchone()
            if row is None:
                continue  # not ours to this contact, or confirmed before (or by the live route)
            text = self._outbox_text(peer_did, mid, bytes(row[0]))
            self._db.execute(
                "DELETE FROM outbox WHERE peer_did = ? AND message_id = ?", (peer_did, mid)
            )
            self._db.execute(
                "DELETE FROM wraps WHERE peer_did = ? AND message_id = ?", (peer_did, mid)
            )
            self._add_inbox(peer_did, "delivered", mid, now, {"text": text})
            confirmed.append(mid)
        return confirmed

    def _prune_received(self, peer_did: str) -> None:
        floor = self._db.execute(
            "SELECT message_id FROM received WHERE peer_did = ?"
            " ORDER BY message_id DESC LIMIT 1 OFFSET ?",
            (peer_did, RECEIVED_KEEP + 1023),
        ).fetchone()
        if floor is not None:
            self._db.execute(
                "DELETE FROM received WHERE peer_did = ? AND message_id <= ?",
                (peer_did, bytes(floor[0])),
            )

    def _add_inbox(
        self, peer_did: str, kind: str, mid: bytes, now: datetime, value: dict[str, object]
    ) -> None:
        context = _INBOX + kind.encode() + b"\x00" + mid
        sealed = self._sealer.seal(canonical.encode({"peer": peer_did, **value}), context=context)
        self._db.execute(
            "INSERT OR IGNORE INTO inbox (peer_did, kind, message_id, arrived_at, sealed)"
            " VALUES (?, ?, ?, ?, ?)",
            (peer_did, kind, mid, _stamp(now), sealed),
        )

    def inbox(self) -> list[InboxEntry]:
        """What arrived and was not shown yet: texts first, in the order they were typed
        (by `mid`, which begins with the sender's clock: relays hand wraps over in any order),
        then delivery receipts, likewise."""
        rows = self._db.execute(
            "SELECT seq, peer_did, kind, message_id, arrived_at, sealed FROM inbox"
            " ORDER BY kind = 'delivered', message_id, seq"
        ).fetchall()
        return list(self._entries(rows))

    def _entries(self, rows: list[tuple[object, ...]]) -> Iterator[InboxEntry]:
        for seq, peer, kind, mid, arrived, sealed in rows:
            assert isinstance(peer, str) and isinstance(kind, str) and isinstance(arrived, str)
            mid_b = bytes(mid)  # type: ignore[call-overload]
            context = _INBOX + kind.encode() + b"\x00" + mid_b
            value = canonical.decode(
                self._sealer.open(bytes(sealed), context=context),  # type: ignore[call-overload]
                max_size=_MAX_PLAIN,
            )
            if not isinstance(value, dict) or value.get("peer") != peer:
                raise DamagedStore("an inbox row does not belong where it is stored")
            at = value.get("at")
            text = value.get("text")
            if not isinstance(text, str) or (at is not None and not isinstance(at, int)):
                raise DamagedStore("an inbox row does not parse")
            yield InboxEntry(
                seq=int(seq),  # type: ignore[call-overload]
                kind=kind,
                peer_did=peer,
                message_id=mid_b,
                arrived_at=datetime.fromisoformat(arrived),
                sent_at=None if at is None else datetime.fromtimestamp(at, UTC),
                text=text,
            )

    def forget_shown(self, seqs: list[int]) -> None:
        """The entries were shown: delete them (one transaction)."""
        if not seqs:
            return
        with self._store.transaction():
            self._db.executemany("DELETE FROM inbox WHERE seq = ?", [(seq,) for seq in seqs])
