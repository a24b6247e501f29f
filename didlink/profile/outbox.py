"""The persistent outbox and the received-id set of live sessions (specs/store.md schema 2).

Theory of operation (specs/cli-jsonl.md section 4, specs/frames.md section 5a)
------------------------------------------------------------------------------
Sender: `add` puts a chat message in the `outbox` table under a fresh 16-byte message id (`mid`: the
time, then 10 random bytes); the text is sealed (didlink/profile/sealing.py, context "outbox\\0" +
mid) so no message content is ever in clear on disk. `pending(peer)` gives that peer's messages in
the order they were typed; a message leaves only when the session is verified and stays in the table
until `acknowledge(mid)` (the peer's receipt). So whatever ends the session (quit, crash, SIGKILL, a
lost connection), unacknowledged messages are resent, in order, on the next session with that peer.

Batching (specs/cli-jsonl.md section 4b): `add(..., deferred=True)` keeps the message in memory
until `flush()`, which seals and writes every kept row in one transaction: a burst read in one
event-loop turn costs one transaction instead of one per message, and the sealing and writing of
a single message need not delay its frame. Every read (`pending`, `count`) flushes first, so the
outbox always reads as if the rows were written. `acknowledge` / `acknowledge_all` (the ids of
one receipt, in one transaction) drop a kept row without writing it: a message whose receipt
came before its row was written never reaches the disk. The live session flushes at the end of
the loop turn, or, for messages that already left, when their receipt is late
(didlink/session/delivery.py).

Receiver: `remember(peer, mid)` records a delivered id (INSERT OR IGNORE, so of two deliveries
of the same id exactly one is new); `seen(peer, mid)` says whether it was delivered already.
Together they make a resent message arrive exactly once across sessions.

Received ids are bounded (specs/store.md, "Received ids"): each peer keeps its newest
RECEIVED_KEEP ids (by id, which begins with the sender's clock); older ones are pruned, in the
transaction that writes new ones, once RECEIVED_PRUNE_EVERY ids were written for that peer since
its last prune (and at the first write of each Outbox), so a peer never has more than
RECEIVED_KEEP + RECEIVED_PRUNE_EVERY - 1 ids on disk. The oldest id kept once a peer has
RECEIVED_KEEP of them is its floor: an id below it is a duplicate, because a sender's outbox
resends its messages in the order they were made, before any newer one, so a message older
than RECEIVED_KEEP delivered ones was delivered before them. `remember(...,
deferred=True)` keeps the id in memory until `flush()`, as `add` does: a frame of many messages
then costs one transaction, and `seen` counts the unwritten ids too. The ids are written after
their `message` events (a crash in between repeats a message, never loses one).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from didlink.profile.sealing import Sealer
from didlink.profile.store import DamagedStore, Store
from identity import canonical

MESSAGE_ID_SIZE = 16
_MAX_SEALED_PLAIN = 128 * 1024  # a text is at most 64 KiB of UTF-8 (specs/frames.md s.4)
_OUTBOX_CONTEXT = b"outbox\x00"
_INSERT = "INSERT INTO outbox (peer_did, message_id, created_at, sealed) VALUES (?, ?, ?, ?)"
_DELETE = "DELETE FROM outbox WHERE message_id = ?"
_DELETE_SOME = "DELETE FROM outbox WHERE message_id IN ({})"
_DELETE_BATCH = 250  # ids per DELETE (SQLite before 3.32 takes at most 999 parameters)
_REMEMBER = "INSERT OR IGNORE INTO received (peer_did, message_id, received_at) VALUES (?, ?, ?)"
_NTH_NEWEST = (
    "SELECT message_id FROM received WHERE peer_did = ? ORDER BY message_id DESC LIMIT 1 OFFSET ?"
)
_PRUNE = "DELETE FROM received WHERE peer_did = ? AND message_id < ?"
RECEIVED_KEEP = 8192
"""Received ids kept per peer after a prune: the newest by id (see the module docstring)."""
RECEIVED_PRUNE_EVERY = 1024
"""Ids written for a peer between two prunes: a peer has at most KEEP + PRUNE_EVERY - 1."""


_MID_TIME_BYTES = 6
_MID_TIME_LIMIT = (1 << (8 * _MID_TIME_BYTES)) - 1


def new_message_id() -> bytes:
    """A fresh 16-byte message id (`mid`): the time in milliseconds since the Unix epoch (6 bytes,
    big-endian), then 10 random bytes (specs/frames.md 5a).

    Ids made later sort later (roughly: the clock may step), so the stores' indexes on them grow
    at one end: a batch of received ids goes into one or two B-tree pages, where random ids
    rewrote a page each (8-20 us an id, growing with the table, against 2.5 us). The 80 random
    bits keep ids unique; the time tells the peer when the message was typed, and the disk no
    more than the row's own `created_at` / `received_at`.
    """
    millis = min(max(time.time_ns() // 1_000_000, 0), _MID_TIME_LIMIT)
    return millis.to_bytes(_MID_TIME_BYTES, "big") + os.urandom(MESSAGE_ID_SIZE - _MID_TIME_BYTES)


def message_time(message_id: bytes) -> int:
    """When one of our own message ids was made, in Unix seconds (its first 6 bytes: ms; see
    `new_message_id`): the time its text was typed, sent as the text's `at` (specs/frames.md
    5b). Only for our own ids: a peer's `mid` is opaque (specs/frames.md 5a)."""
    return int.from_bytes(message_id[:_MID_TIME_BYTES], "big") // 1000


@dataclass(frozen=True)
class PendingMessage:
    """A message in the outbox, not yet acknowledged by its peer."""

    message_id: bytes
    text: str


def _stamp(now: datetime | None, default: str | None = None) -> str:
    """`now` as stored (ISO 8601, UTC); if None, `default`, else the current time."""
    if now is None and default is not None:
        return default
    moment = datetime.now(UTC) if now is None else now.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def _check_id(message_id: bytes) -> bytes:
    if len(message_id) != MESSAGE_ID_SIZE:
        raise ValueError("a message id is 16 bytes")
    return message_id


class Outbox:
    """Sealed outgoing messages and the ids of received ones, in a profile's store."""

    def __init__(self, store: Store, sealer: Sealer) -> None:
        self._store = store
        self._db = store.connection
        self._sealer = sealer
        # Deferred rows, in order: id -> (peer, time or None for the flush's, text), sealed at
        # `flush`; and deferred received ids -> their time (None: the flush's).
        self._unwritten: dict[bytes, tuple[str, datetime | None, str]] = {}
        self._unremembered: dict[tuple[str, bytes], datetime | None] = {}
        # Received ids written per peer since its last prune (absent: prune at the next write),
        # and each peer's floor once known (None: fewer than RECEIVED_KEEP ids, no floor).
        self._since_prune: dict[str, int] = {}
        self._floors: dict[str, bytes | None] = {}

    # -- sending -----------------------------------------------------------------------------

    def add(
        self,
        peer_did: str,
        text: str,
        *,
        message_id: bytes | None = None,
        now: datetime | None = None,
        deferred: bool = False,
    ) -> bytes:
        """Store `text` for `peer_did` (sealed); its message id.

        `deferred`: keep the row in memory until `flush()` (or a read: `pending`, `count`),
        which seals and writes it; the time stored is the flush's unless `now` is given.
        """
        mid = new_message_id() if message_id is None else _check_id(message_id)
        self._unwritten[mid] = (peer_did, now, text)
        if not deferred:
            self.flush()
        return mid

    @property
    def unwritten(self) -> int:
        """How many deferred messages and received ids are not on disk yet."""
        return len(self._unwritten) + len(self._unremembered)

    @property
    def unwritten_rows(self) -> int:
        """How many deferred messages are not on disk yet."""
        return len(self._unwritten)

    def is_deferred(self, message_id: bytes) -> bool:
        """Whether this message's row waits in memory (not written yet)."""
        return message_id in self._unwritten

    def flush(self, *, rows: bool = True, through: Collection[bytes] = ()) -> None:
        """Write what is deferred in one transaction: messages in the order added, then ids.

        `rows=False` writes only the received ids (the messages stay deferred). `through`
        (with `rows=False`): the deferred rows from the oldest through the newest of these
        messages are written too, so the rows on disk keep the order they were added in.
        """
        if rows:
            written, self._unwritten = self._unwritten, {}
        else:
            written = self._oldest_through(through)
            for mid in written:
                del self._unwritten[mid]
        if not written and not self._unremembered:
            return
        ids, self._unremembered = self._unremembered, {}
        try:
            flushed_at = _stamp(None)
            sealed = [
                self._sealed(peer, mid, _stamp(now, flushed_at), text)
                for mid, (peer, now, text) in written.items()
            ]
            received = [(peer, mid, _stamp(now, flushed_at)) for (peer, mid), now in ids.items()]
            counts = self._counted(peer for peer, _mid in ids)
            due = [peer for peer, count in counts.items() if count >= RECEIVED_PRUNE_EVERY]
            if len(sealed) + len(received) == 1 and not due:
                self._db.execute(*((_INSERT, sealed[0]) if sealed else (_REMEMBER, received[0])))
            else:
                with self._store.transaction():
                    self._db.executemany(_INSERT, sealed)
                    self._db.executemany(_REMEMBER, received)
                    floors = {peer: self._prune(peer) for peer in due}
                self._floors.update(floors)
                counts.update(dict.fromkeys(due, 0))
            self._since_prune.update(counts)
        except BaseException:
            self._unwritten = written | self._unwritten  # nothing was written: keep them
            self._unremembered = ids | self._unremembered
            raise

    def _counted(self, peers: Iterable[str]) -> dict[str, int]:
        """The ids written since each peer's last prune, counting these (one per entry)."""
        counts: dict[str, int] = {}
        for peer in peers:
            counts[peer] = counts.get(peer, self._since_prune.get(peer, RECEIVED_PRUNE_EVERY)) + 1
        return counts

    def _nth_newest(self, peer_did: str) -> bytes | None:
        """The RECEIVED_KEEP-th newest id of the peer (its floor), None if it has fewer."""
        row = self._db.execute(_NTH_NEWEST, (peer_did, RECEIVED_KEEP - 1)).fetchone()
        return None if row is None else bytes(row[0])

    def _prune(self, peer_did: str) -> bytes | None:
        """Delete the peer's ids older than its newest RECEIVED_KEEP (in the caller's
        transaction); its floor."""
        floor = self._nth_newest(peer_did)
        if floor is not None:
            self._db.execute(_PRUNE, (peer_did, floor))
        return floor

    def _oldest_through(
        self, mids: Collection[bytes]
    ) -> dict[bytes, tuple[str, datetime | None, str]]:
        """The deferred rows from the oldest through the newest of `mids` still deferred."""
        if not mids:
            return {}
        last = -1
        for index, mid in enumerate(self._unwritten):
            if mid in mids:
                last = index
        return dict(itertools.islice(self._unwritten.items(), last + 1))

    def _sealed(
        self, peer: str, mid: bytes, stamp: str, text: str
    ) -> tuple[str, bytes, str, bytes]:
        plain = canonical.encode_in_order({"peer": peer, "text": text})  # keys in order
        return (peer, mid, stamp, self._sealer.seal(plain, context=_OUTBOX_CONTEXT + mid))

    def pending(self, peer_did: str) -> list[PendingMessage]:
        """`peer_did`'s unacknowledged messages, oldest first."""
        self.flush()
        rows = self._db.execute(
            "SELECT message_id, sealed FROM outbox WHERE peer_did = ? ORDER BY seq", (peer_did,)
        ).fetchall()
        return [self._open(peer_did, bytes(mid), bytes(sealed)) for mid, sealed in rows]

    def _open(self, peer_did: str, mid: bytes, sealed: bytes) -> PendingMessage:
        plain = self._sealer.open(sealed, context=_OUTBOX_CONTEXT + mid)
        value = canonical.decode(plain, max_size=_MAX_SEALED_PLAIN)
        if (
            not isinstance(value, dict)
            or value.get("peer") != peer_did
            or not isinstance(value.get("text"), str)
        ):
            raise DamagedStore("an outbox message does not belong where it is stored")
        return PendingMessage(message_id=mid, text=value["text"])

    def count(self, peer_did: str) -> int:
        """How many messages wait for `peer_did`."""
        self.flush()
        row = self._db.execute(
            "SELECT count(*) FROM outbox WHERE peer_did = ?", (peer_did,)
        ).fetchone()
        return int(row[0])

    def acknowledge(self, message_id: bytes) -> bool:
        """The peer confirmed `message_id`: drop it. False if it was not (or no longer) there."""
        return self.acknowledge_all([message_id]) == 1

    def acknowledge_all(self, message_ids: Sequence[bytes]) -> int:
        """Drop every message of one receipt (rows still deferred are never written, the others
        are deleted in one transaction); how many were there."""
        on_disk = self._forget_deferred(message_ids)
        if len(on_disk) <= 1:
            deleted = sum(self._db.execute(_DELETE, (mid,)).rowcount for mid in on_disk)
        else:
            with self._store.transaction():
                before = self._db.total_changes
                for start in range(0, len(on_disk), _DELETE_BATCH):
                    batch = on_disk[start : start + _DELETE_BATCH]
                    self._db.execute(_DELETE_SOME.format(",".join("?" * len(batch))), batch)
                deleted = self._db.total_changes - before
        return len(message_ids) - len(on_disk) + deleted

    def _forget_deferred(self, message_ids: Sequence[bytes]) -> list[bytes]:
        """Drop the deferred rows of `message_ids`; the ids left to delete (a repeated id is
        left the second time, and counts once, as a second DELETE would)."""
        if not self._unwritten:
            return list(message_ids)
        return [mid for mid in message_ids if self._unwritten.pop(mid, None) is None]

    # -- receiving ---------------------------------------------------------------------------

    def seen(self, peer_did: str, message_id: bytes, *, on_disk: bool = True) -> bool:
        """Whether a message with this id from this peer was delivered before.

        `on_disk=False` asks only the ids not written yet: for a text its sender marks `new`
        (specs/frames.md 5a), whose id no earlier session can have delivered.
        """
        if (peer_did, message_id) in self._unremembered:
            return True
        if not on_disk:
            return False
        row = self._db.execute(
            "SELECT 1 FROM received WHERE peer_did = ? AND message_id = ?",
            (peer_did, message_id),
        ).fetchone()
        if row is not None:
            return True
        if peer_did not in self._floors:
            self._floors[peer_did] = self._nth_newest(peer_did)
        floor = self._floors[peer_did]
        return floor is not None and message_id < floor  # older than the ids kept: delivered

    def remember(
        self,
        peer_did: str,
        message_id: bytes,
        *,
        now: datetime | None = None,
        deferred: bool = False,
    ) -> bool:
        """Record a delivered id; True if it is new (False: a duplicate, drop the message).

        `deferred`: keep the id in memory until `flush()` (or any other writing call); it is new
        unless `seen` says otherwise, which the caller has asked just before.
        """
        key = (peer_did, _check_id(message_id))
        if deferred:
            if key in self._unremembered:
                return False
            self._unremembered[key] = now
            return True
        self.flush()
        cursor = self._db.execute(_REMEMBER, (*key, _stamp(now)))
        counts = self._counted([peer_did])
        if counts[peer_did] >= RECEIVED_PRUNE_EVERY:
            with self._store.transaction():
                self._floors[peer_did] = self._prune(peer_did)
            counts[peer_did] = 0
        self._since_prune.update(counts)
        return cursor.rowcount > 0
