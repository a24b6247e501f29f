"""Chat messages of one live session, delivered exactly once across sessions.

Theory of operation (specs/cli-jsonl.md section 4b, specs/frames.md section 5a)
-------------------------------------------------------------------------------
Sending: once the peer is known (`bind`), `add` puts each typed text in the persistent, sealed
outbox (didlink/profile/outbox.py) under a fresh 16-byte `mid`. The rows of one event-loop turn are
sealed and written together in one transaction at the end of that turn (`write`), except when the
session's writer is waiting to hand them to the transport at once, or already did in that turn:
then the disk does not delay the frame, and the rows wait for the receipt (`report_sent`). A
message whose receipt comes within `SENT_GRACE` never reaches the disk; for the others, the rows
are written when their own grace is over (each handover has its own; older rows still in memory
are written with them, so the rows keep the typed order), or when the session ends. `send` queues a
text in the channel once the session is verified (earlier sessions' leftovers first:
`send_pending`); the seq it gets maps back to its `mid` (`_unacked`). A text sent the moment it is
typed is marked `new` (its first transmission: no earlier session can have delivered it); a leftover
is not. `sent` is reported once the writer handed the message to the transport and it is safe: its
row is on disk, or its receipt came (`take_leaving` / `report_sent`). A receipt names seqs: their
mids leave the outbox in one transaction, then `sent` (if not yet) and `delivered` are reported for
each. Texts typed for a session whose SAS was rejected are dropped from the outbox (`drop_typed`).

Receiving: every text's seq is acknowledged (receipts batched by the reader: `receipts`), even
a duplicate, so that the sender removes it. A text whose `mid` was delivered before (table
`received`, or kept in memory to be written; a `new` text only in memory: the sender says it
never sent that mid before, so the disk is not asked) is not delivered again; any other is reported
(`message`) and its `mid` recorded after, with the other ids of that loop turn, in one
transaction: a crash in between can repeat those events with the same ids, never lose one.

No protocol logic lives here: the channel numbers and encrypts, the outbox stores and seals.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Collection
from typing import Any

from didlink.errors import UserError
from didlink.profile.history import Direction, HistoryLog
from didlink.profile.outbox import Outbox, message_time
from didlink.session.commands import EventSink, held
from identity.validity import MAX_TIME, iso_time
from messaging.channel import SecureChannel
from messaging.frames import Receipt, Text

RECEIPT_BATCH = 512  # ids per receipt (and the most the reader holds before sending one)
SENT_GRACE = 0.1  # seconds a message that left waits for its receipt before its row is written


class Delivery:
    """The chat messages of one session: outbox, receipts, deduplication. See the docstring."""

    def __init__(
        self,
        *,
        sink: EventSink,
        history: HistoryLog | None,
        fail: Callable[[str], None],
        sent_grace: float = SENT_GRACE,
    ) -> None:
        self._sink = sink
        self._history = history  # --history: every message of the session, sealed
        self._fail = fail  # ends the session with this error (the outbox could not be written)
        self._outbox: Outbox | None = None
        self._peer_did = ""
        self._channel: SecureChannel | None = None
        self._kick: Callable[[], None] = lambda: None
        self._refs: dict[bytes, Any] = {}  # message id -> the `ref` of its `send` command
        self._typed: list[bytes] = []  # ids of the messages typed in this process
        self._unacked: dict[int, bytes] = {}  # seq sent in this session -> message id
        self._leaving: list[tuple[bytes, Any]] = []  # (message id, ref) queued in the channel
        self._handovers = 0  # `report_sent` calls whose `_handed_over` is still due
        self._to_ack: list[int] = []  # seqs of texts received and not yet acknowledged
        self._write_due = False  # a call_soon(write) is pending
        self._writer_waiting: Callable[[], bool] = lambda: False
        self._sent_grace = sent_grace
        self._unreported: dict[bytes, Any] = {}  # left, no `sent` yet: message id -> ref
        # What left in each handover, oldest first: (when its grace is over, its message ids).
        self._graces: list[tuple[float, list[bytes]]] = []  # (a list: a deque costs 600 bytes)
        self._grace: asyncio.TimerHandle | None = None  # for the oldest of `_graces`

    # -- set-up ------------------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        """The peer is known and its outbox open."""
        return self._outbox is not None

    def bind(self, peer_did: str, outbox: Outbox) -> None:
        """The peer is known: from now on texts go to its persistent outbox."""
        self._peer_did = peer_did
        self._outbox = outbox

    def start(
        self,
        channel: SecureChannel,
        *,
        kick: Callable[[], None],
        writer_waiting: Callable[[], bool],
    ) -> None:
        """The session's channel exists; `kick` wakes its writer, `writer_waiting` says whether
        it waits for a kick (rather than for the transport to take more)."""
        self._channel = channel
        self._kick = kick
        self._writer_waiting = writer_waiting

    def close(self) -> None:
        """Write what is deferred (then report `sent` for what left) and let go of the outbox
        (the store is about to close)."""
        self._cancel_grace()
        if self._outbox is not None:
            self._outbox.flush()
            self._report_sent()
        self._outbox = None

    # -- sending -----------------------------------------------------------------------------

    def add(self, text: str, *, ref: Any = None) -> bytes:
        """Put a typed text in the outbox (written at the end of this loop turn); its id."""
        assert self._outbox is not None  # callers check `bound`
        mid = self._outbox.add(self._peer_did, text, deferred=True)
        self._write_soon()
        self._typed.append(mid)
        if self._history is not None:
            self._history.record(self._peer_did, Direction.OUT, mid.hex(), text)
        if ref is not None:
            self._refs[mid] = ref
        return mid

    def _write_soon(self) -> None:
        if not self._write_due:
            self._write_due = True  # (`write` clears it)
            _end_of_turn(self.write)

    def write(self) -> None:
        """End of the loop turn: write the deferred outbox rows and received ids, unless the
        writer is about to hand the new texts to the transport (`report_sent` writes them)."""
        self._write_due = False
        if self._handover_next():
            return
        self._write_now()

    def _handover_next(self) -> bool:
        """The texts queued in the channel go to the transport at once: the writer's next step,
        already queued in this turn, takes them; or none is left and some were handed over in
        this turn (the node's `_write_through`), whose `_handed_over` is still due."""
        if not self._leaving:
            return self._handovers > 0
        return (
            self._channel is not None and self._channel.session.can_send and self._writer_waiting()
        )

    def _write_now(self, *, rows: bool = True, through: Collection[bytes] = ()) -> bool:
        """Write what is deferred (`rows=False`: the received ids only, and the rows through
        those of `through`: `Outbox.flush`); False (and the session ends) if the store refused
        it."""
        if self._outbox is None or not self._outbox.unwritten:
            return True
        try:
            self._outbox.flush(rows=rows, through=through)
        except (UserError, sqlite3.Error) as exc:
            self._fail(f"could not save the outbox: {exc}")
            return False
        return True

    def send(self, mid: bytes, text: str, *, new: bool = False) -> None:
        """Queue one outbox message in the channel; it stays in the outbox until its receipt.

        `new`: this is the message's first transmission (`add` just gave it its mid).
        """
        assert self._channel is not None
        at = message_time(mid)  # when it was typed (specs/frames.md 5b)
        seq = self._channel.send_text(text, mid=mid, new=new, at=at if at <= MAX_TIME else None)
        self._unacked[seq] = mid
        self._leaving.append((mid, self._refs.pop(mid, None)))
        self._kick()

    def send_pending(self) -> None:
        """The session is verified: send what the outbox holds for the peer, oldest first."""
        if self._outbox is not None:
            for pending in self._outbox.pending(self._peer_did):
                self.send(pending.message_id, pending.text)

    def report_queued(
        self, typed: tuple[bytes, str] | None = None, *, files: list[dict[str, Any]] | None = None
    ) -> None:
        """`queued` (specs/cli-jsonl.md section 2): the texts waiting in the outbox for a session
        that is not verified yet, so that a frontend shows them as queued; `typed`, the one
        text just typed, or else all of the peer's (oldest first); `files`, the peer's queued
        files (didlink/session/queued_files.py), as the event's `files` entries (no texts and no
        files: no event)."""
        if self._outbox is None:
            return
        pending = (
            [typed]
            if typed is not None
            else [(row.message_id, row.text) for row in self._outbox.pending(self._peer_did)]
        )
        if not pending and not files:
            return
        messages = []
        for mid, text in pending:
            item: dict[str, Any] = {"id": mid.hex(), "text": text}
            typed_at = message_time(mid)
            if typed_at <= MAX_TIME:
                item["typed_at"] = iso_time(typed_at)
            if (ref := self._refs.get(mid)) is not None:
                item["ref"] = ref
            messages.append(item)
        fields: dict[str, Any] = {"files": files} if files else {}
        self._sink.emit("queued", to=self._peer_did, messages=messages, **fields)

    def take_leaving(self) -> list[tuple[bytes, Any]]:
        """The messages the writer is about to hand to the transport (if the channel can send)."""
        assert self._channel is not None
        if not self._channel.session.can_send:
            return []
        leaving, self._leaving = self._leaving, []
        return leaving

    def report_sent(self, leaving: list[tuple[bytes, Any]]) -> None:
        """The writer just handed `leaving` to the transport: one loop turn later, write the
        received ids; report `sent` when the rows are on disk or the receipt came.

        The transport puts those frames on the wire in a task step it has already scheduled
        (aiortc), so neither the disk nor the events, and whoever they wake, delay the message.
        """
        if leaving:
            self._handovers += 1
            _end_of_turn(self._handed_over, leaving)

    def _handed_over(self, leaving: list[tuple[bytes, Any]]) -> None:
        self._handovers -= 1
        if not self._write_now(rows=False):
            return
        self._unreported.update(leaving)
        if self._outbox is None or not self._outbox.unwritten_rows:
            self._report_sent()  # on disk already (resent from the outbox)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a caller outside asyncio: no grace
            if self._write_now():
                self._report_sent()
            return
        self._graces.append((loop.time() + self._sent_grace, [mid for mid, _ in leaving]))
        if self._grace is None:
            self._grace = loop.call_at(self._graces[0][0], self._grace_over)

    def _grace_over(self) -> None:
        """The grace of the oldest handovers is over: the rows of what left then and has no
        receipt go to disk (with any older row still in memory, to keep their order), then
        `sent` for every message that left and is on disk; the timer waits for the next."""
        self._grace = None
        loop = asyncio.get_running_loop()
        due: set[bytes] = set()
        over = 0
        for deadline, mids in self._graces:
            if deadline > loop.time():
                break
            due.update(mids)
            over += 1
        del self._graces[:over]
        if due and not self._write_now(rows=False, through=due):
            return  # not on disk, no `sent` (the session is ending with the error)
        self._report_sent(only_written=True)
        if self._graces:
            self._grace = loop.call_at(self._graces[0][0], self._grace_over)

    def _report_sent(self, *, only_written: bool = False) -> None:
        """`sent` for what left, in order; `only_written`: up to the first message whose row
        is still in memory (rows are written oldest first, so the rest waits for its grace)."""
        outbox = self._outbox if only_written else None
        reported: list[bytes] = []
        with held(self._sink):
            for mid, ref in self._unreported.items():
                if outbox is not None and outbox.is_deferred(mid):
                    break
                self._emit_sent(mid, ref)
                reported.append(mid)
        for mid in reported:
            del self._unreported[mid]

    def _emit_sent(self, mid: bytes, ref: Any) -> None:
        extra = {} if ref is None else {"ref": ref}
        self._sink.emit("sent", id=mid.hex(), **extra, via="live")

    def emit_sent_by_mailbox(self, mid: bytes) -> None:
        """`sent` for an outbox text a relay took (didlink/session/rendezvous.py); it stays in the
        outbox until its receipt, so a live session later resends it (`sent` again, "live")."""
        ref = self._refs.get(mid)
        extra = {} if ref is None else {"ref": ref}
        self._sink.emit("sent", id=mid.hex(), **extra, via="mailbox")

    def _cancel_grace(self) -> None:
        self._graces.clear()
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    def on_receipt(self, seqs: tuple[int, ...]) -> None:
        """The peer has these seqs: out of the outbox (one transaction; a row still in memory
        is never written), then `sent` (if not reported yet) and `delivered`."""
        mids = [mid for seq in seqs if (mid := self._unacked.pop(seq, None)) is not None]
        if self._outbox is not None:
            self._outbox.acknowledge_all(mids)
        with held(self._sink):
            for mid in mids:
                if mid in self._unreported:
                    self._emit_sent(mid, self._unreported.pop(mid))
                self._sink.emit("delivered", id=mid.hex(), via="live")
        if not self._unreported:
            self._cancel_grace()

    @property
    def unacknowledged(self) -> bool:
        """Some message sent in this session has no receipt yet."""
        return bool(self._unacked)

    def drop_typed(self) -> None:
        """The SAS was rejected: texts typed for this (maybe intercepted) session are dropped."""
        if self._outbox is not None:
            self._outbox.acknowledge_all(self._typed)

    def kept(self) -> int:
        """How many messages wait in the outbox for the peer."""
        return 0 if self._outbox is None else self._outbox.count(self._peer_did)

    # -- receiving ---------------------------------------------------------------------------

    def on_text(self, seq: int, message: Text) -> None:
        """A text from the peer: deliver it once (across sessions) and acknowledge it."""
        self._to_ack.append(seq)  # a duplicate is acknowledged too: the sender drops it
        if message.mid is None:  # a peer without stable ids: nothing to deduplicate
            message_id: str | int = seq
        elif self._outbox is not None and self._outbox.seen(
            self._peer_did, message.mid, on_disk=not message.new
        ):
            return  # resent after a reconnect, delivered before: exactly once
        else:
            message_id = message.mid.hex()
        if self._history is not None:
            self._history.record(self._peer_did, Direction.IN, message_id, message.text)
        if message.at is None:  # an older peer: the arrival time only
            self._sink.emit(
                "message", **{"from": self._peer_did}, id=message_id, text=message.text, via="live"
            )
        else:  # the sender's clock, shown as given, never trusted (specs/frames.md 5b)
            self._sink.emit(
                "message",
                **{"from": self._peer_did},
                id=message_id,
                text=message.text,
                sent_at=iso_time(message.at),
                via="live",
            )
        if message.mid is not None and self._outbox is not None:
            # Recorded after the event (at the end of this loop turn, with the rest of the
            # frame's ids): a crash in between repeats it (same id), never loses it.
            self._outbox.remember(self._peer_did, message.mid, deferred=True)
            self._write_soon()

    def receipts(self, *, queue_empty: bool) -> list[Receipt]:
        """The receipts to send now: when the transport's queue is empty or a batch is full."""
        if not self._to_ack or not (queue_empty or len(self._to_ack) >= RECEIPT_BATCH):
            return []
        ids, self._to_ack = self._to_ack, []
        return [
            Receipt(ids=ids[start : start + RECEIPT_BATCH])
            for start in range(0, len(ids), RECEIPT_BATCH)
        ]


def _end_of_turn(callback: Callable[..., None], *args: Any) -> None:
    """`callback(*args)` once this event-loop turn is over; at once for a caller outside asyncio."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        callback(*args)
        return
    loop.call_soon(callback, *args)
