"""Chat messages delivered exactly once (didlink/session/delivery.py, specs/cli-jsonl.md section
4b).

A real `SecureChannel` pair and real stores: what one side's `Delivery` sends, the other
receives; events are checked against what specs/cli-jsonl.md section 2 says they must be.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from didlink.jsonl import SendText
from didlink.profile import outbox as outbox_module
from didlink.profile.outbox import Outbox
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store
from didlink.session.delivery import RECEIPT_BATCH, Delivery
from didlink.session.outgoing import Outgoing
from identity.keys import IdentityKey
from messaging.channel import MessageReceived, ReceiptReceived, SecureChannel
from messaging.frames import Text
from messaging.ratchet import RatchetSession
from tests.support.sink import RecordingSink

ALICE = IdentityKey(seed=b"\x01" * 32)
BOB = IdentityKey(seed=b"\x02" * 32)
SEED = bytes(range(32))
BOB_RATCHET = bytes(range(32, 64))
AD = b"\x05" * 32
GRACE = 0.05  # Delivery's sent_grace in these tests (seconds)


def _channels() -> tuple[SecureChannel, SecureChannel]:
    public = X25519PrivateKey.from_private_bytes(BOB_RATCHET).public_key().public_bytes_raw()
    alice = SecureChannel(
        RatchetSession.initiator(SEED, public, associated_data=AD), initiator=True
    )
    bob = SecureChannel(
        RatchetSession.responder(SEED, BOB_RATCHET, associated_data=AD), initiator=False
    )
    return alice, bob


class Side:
    """One user: a store, a delivery bound to the peer, the channel and its kicks."""

    def __init__(self, folder: Path, key: IdentityKey, peer: IdentityKey, channel: SecureChannel):
        self.store = Store(folder / "store.sqlite3")
        self.outbox = Outbox(self.store, Sealer(key))
        self.sink = RecordingSink(folder.name)
        self.failures: list[str] = []
        self.delivery = Delivery(
            sink=self.sink, history=None, fail=self.failures.append, sent_grace=GRACE
        )
        self.delivery.bind(peer.did, self.outbox)
        self.channel = channel
        self.kicks = 0
        self.writer_waiting = False
        self.texts: list[Text] = []  # every text this side's channel delivered, duplicates too
        self.delivery.start(channel, kick=self._kick, writer_waiting=lambda: self.writer_waiting)

    def _kick(self) -> None:
        self.kicks += 1

    def write_frames(self) -> list[bytes]:
        """What the session's writer does: encrypt, hand over, report `sent`."""
        leaving = self.delivery.take_leaving()
        frames = self.channel.data_to_send()
        self.delivery.report_sent(leaving)
        return frames

    def read_frames(self, frames: list[bytes], *, queue_empty: bool = True) -> None:
        """What the session's reader does with texts and receipts."""
        for frame in frames:
            for event in self.channel.receive(frame):
                if isinstance(event, MessageReceived) and isinstance(event.message, Text):
                    self.texts.append(event.message)
                    self.delivery.on_text(event.seq, event.message)
                elif isinstance(event, ReceiptReceived):
                    self.delivery.on_receipt(event.ids)
        for receipt in self.delivery.receipts(queue_empty=queue_empty):
            self.channel.send(receipt)

    def rows(self) -> int:
        other = sqlite3.connect(self.store.path)
        try:
            return int(other.execute("SELECT count(*) FROM outbox").fetchone()[0])
        finally:
            other.close()

    def received(self) -> list[bytes]:
        other = sqlite3.connect(self.store.path)
        try:
            return sorted(bytes(r[0]) for r in other.execute("SELECT message_id FROM received"))
        finally:
            other.close()


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Side, Side]:
    a, b = _channels()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    alice, bob = Side(tmp_path / "a", ALICE, BOB, a), Side(tmp_path / "b", BOB, ALICE, b)
    bob.read_frames(alice.write_frames())  # the Hello: bob can send from now on
    return alice, bob


def _rows_at_sent(side: Side, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many outbox rows another connection sees at each `sent` event, from now on."""
    seen: list[int] = []
    record = side.sink.emit

    def emit(event: str, **fields: Any) -> None:
        if event == "sent":
            seen.append(side.rows())
        record(event, **fields)

    monkeypatch.setattr(side.sink, "emit", emit)
    return seen


async def _hand_over(
    side: Side, count: int, *, timers: bool = False
) -> tuple[list[bytes], list[bytes]]:
    """`count` texts typed for an idle writer, which hands them over; (ids, frames).

    Checks that the disk did not delay them, unless `timers`: earlier graces may be over now.
    """
    side.writer_waiting = True  # an idle writer: it takes the texts in its next step
    rows, kicks, sent = side.rows(), side.kicks, len(side.sink.of("sent"))
    mids = [side.delivery.add(f"m{i}") for i in range(count)]
    for mid in mids:
        side.delivery.send(mid, "x")
    await asyncio.sleep(0)  # the end of the turn: left to the writer, which is about to run
    assert timers or (side.rows() == rows and side.kicks == kicks + count)
    frames = side.write_frames()  # handed to the transport, whose step is queued first
    await asyncio.sleep(0)
    assert timers or (side.rows() == rows and len(side.sink.of("sent")) == sent)
    return mids, frames


async def test_without_a_receipt_the_rows_are_written_after_the_grace_then_sent(
    pair: tuple[Side, Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _ = pair
    at_sent = _rows_at_sent(alice, monkeypatch)
    mids, _ = await _hand_over(alice, 3)
    await asyncio.sleep(GRACE * 2)
    assert at_sent == [3, 3, 3]  # on disk before its `sent` event
    assert [e["id"] for e in alice.sink.of("sent")] == [m.hex() for m in mids]


async def test_each_handover_has_its_own_grace(
    pair: tuple[Side, Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream of texts: those that left first are written when their grace is over, not
    those that left just before it (their receipt may still come in time)."""
    alice, bob = pair
    at_sent = _rows_at_sent(alice, monkeypatch)
    first, first_frames = await _hand_over(alice, 2)
    await asyncio.sleep(GRACE * 0.6)
    second, second_frames = await _hand_over(alice, 3)
    await asyncio.sleep(GRACE * 0.6)  # the first grace is over, not the second
    assert at_sent == [2, 2] and alice.rows() == 2
    assert [e["id"] for e in alice.sink.of("sent")] == [m.hex() for m in first]
    bob.read_frames(first_frames + second_frames)
    alice.read_frames(bob.write_frames())  # the receipts, within the second grace
    await asyncio.sleep(GRACE * 2)
    assert alice.rows() == 0 and at_sent == [2, 2, 0, 0, 0]  # the second never on disk
    assert [e["id"] for e in alice.sink.of("sent")] == [m.hex() for m in first + second]
    assert [e["id"] for e in alice.sink.of("delivered")] == [m.hex() for m in first + second]


async def test_a_late_grace_writes_the_older_rows_first(
    pair: tuple[Side, Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are written in the order typed: when the second grace is over, its rows go after
    the first's, which waited longer (they are resent in that order)."""
    alice, _ = pair
    first, _ = await _hand_over(alice, 2)
    second, _ = await _hand_over(alice, 2)
    await asyncio.sleep(GRACE * 2)
    assert [p.message_id for p in alice.outbox.pending(BOB.did)] == first + second
    assert [e["id"] for e in alice.sink.of("sent")] == [m.hex() for m in first + second]


@pytest.mark.parametrize("seed", range(4))
async def test_a_stream_of_handovers_and_late_receipts_keeps_the_sent_promise(
    pair: tuple[Side, Side], monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Texts leave in handovers at random moments; receipts come back early, late or in
    bunches. Whatever the timing: one `sent` per message, before its `delivered`; at `sent` its
    row is on disk unless its receipt came; rows reach the disk in the order typed; a message
    whose receipt came early in its grace is never written."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    alice, bob = pair
    written: list[bytes] = []
    sealed = alice.outbox._sealed  # every row written passes here

    def sealing(peer: str, mid: bytes, stamp: str, text: str) -> tuple[str, bytes, str, bytes]:
        written.append(mid)
        return sealed(peer, mid, stamp, text)

    monkeypatch.setattr(alice.outbox, "_sealed", sealing)
    left_at: dict[bytes, float] = {}
    receipt_at: dict[bytes, float] = {}
    safe_at_sent: dict[str, bool] = {}
    record = alice.sink.emit

    def emit(event: str, **fields: Any) -> None:
        if event == "sent":
            mid = bytes.fromhex(fields["id"])
            safe_at_sent[fields["id"]] = mid in written or mid in receipt_at
        record(event, **fields)

    monkeypatch.setattr(alice.sink, "emit", emit)
    typed: list[bytes] = []
    waiting: list[tuple[list[bytes], list[bytes]]] = []  # receipts bob sent, not yet read
    for _ in range(10):
        mids, frames = await _hand_over(alice, rng.randint(1, 4), timers=True)
        typed += mids
        left_at.update(dict.fromkeys(mids, loop.time()))
        bob.read_frames(frames)
        waiting.append((mids, bob.write_frames()))
        while waiting and rng.random() < 0.4:  # some receipts come now, in order
            acknowledged, receipt = waiting.pop(0)
            receipt_at.update(dict.fromkeys(acknowledged, loop.time()))
            alice.read_frames(receipt)
        await asyncio.sleep(rng.choice([0.0, GRACE * 0.3, GRACE * 0.6]))
    for acknowledged, receipt in waiting:
        receipt_at.update(dict.fromkeys(acknowledged, loop.time()))
        alice.read_frames(receipt)
    await asyncio.sleep(GRACE * 2)
    assert not alice.failures and alice.rows() == 0  # all delivered: the outbox is empty
    names = [(r.event, r.fields["id"]) for r in alice.sink.events]
    for mid in typed:
        assert [e for e, i in names if i == mid.hex()] == ["sent", "delivered"]
    assert all(safe_at_sent.values()) and len(safe_at_sent) == len(typed)
    assert written == [mid for mid in typed if mid in written]  # the typed order
    early = [mid for mid in typed if receipt_at[mid] - left_at[mid] < GRACE * 0.5]
    assert not set(early) & set(written)


async def test_a_receipt_within_the_grace_keeps_the_rows_off_the_disk(
    pair: tuple[Side, Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = pair
    at_sent = _rows_at_sent(alice, monkeypatch)
    mids, frames = await _hand_over(alice, 3)
    bob.read_frames(frames)
    alice.read_frames(bob.write_frames())  # the receipt, before the grace is over
    assert [(r.event, r.fields["id"]) for r in alice.sink.events] == [
        (name, mid.hex()) for mid in mids for name in ("sent", "delivered")
    ]
    await asyncio.sleep(GRACE * 2)
    assert at_sent == [0, 0, 0] and alice.rows() == 0  # never written (nor deleted)
    assert len(alice.sink.of("sent")) == 3 and alice.delivery.kept() == 0


async def test_the_end_of_the_session_writes_what_waits_for_its_receipt(
    pair: tuple[Side, Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _ = pair
    at_sent = _rows_at_sent(alice, monkeypatch)
    mids, _ = await _hand_over(alice, 2)
    alice.delivery.close()  # quit, or the connection was lost: the store closes next
    assert at_sent == [2, 2]
    assert [e["id"] for e in alice.sink.of("sent")] == [m.hex() for m in mids]
    await asyncio.sleep(GRACE * 2)
    assert len(alice.sink.of("sent")) == 2  # the grace's timer is gone


async def test_a_message_resent_from_the_outbox_is_reported_sent_at_once(
    pair: tuple[Side, Side],
) -> None:
    alice, _ = pair
    older = alice.outbox.add(BOB.did, "left over from an earlier session")
    alice.delivery.send_pending()
    alice.write_frames()
    await asyncio.sleep(0)  # one turn: its row was on disk all along
    assert [e["id"] for e in alice.sink.of("sent")] == [older.hex()]


async def test_with_the_writer_busy_rows_are_written_at_the_end_of_the_turn(
    pair: tuple[Side, Side],
) -> None:
    alice, _ = pair
    alice.writer_waiting = False  # the writer waits for the transport: not soon
    mid = alice.delivery.add("typed while a file fills the connection")
    alice.delivery.send(mid, "typed while a file fills the connection")
    await asyncio.sleep(0)
    assert alice.rows() == 1 and not alice.failures


async def test_texts_handed_over_in_their_own_turn_stay_off_the_disk_until_their_grace(
    pair: tuple[Side, Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node's write-through: the writer's step runs in the turn the texts were typed, so the
    end-of-turn write (scheduled before it) must not put the disk before the transport's step."""
    alice, _ = pair
    at_sent = _rows_at_sent(alice, monkeypatch)
    alice.writer_waiting = True
    mids = [alice.delivery.add(f"m{i}") for i in range(2)]
    for mid in mids:
        alice.delivery.send(mid, "x")
    alice.write_frames()  # in this turn, before the write scheduled by `add`
    alice.writer_waiting = True  # the writer is idle again
    await asyncio.sleep(0)
    assert alice.rows() == 0 and not alice.sink.of("sent")
    await asyncio.sleep(GRACE * 2)
    assert at_sent == [2, 2]  # on disk before their `sent` events, once the grace is over


async def test_a_text_left_queued_after_a_handover_is_written_at_the_end_of_the_turn(
    pair: tuple[Side, Side],
) -> None:
    alice, _ = pair
    alice.writer_waiting = True
    first = alice.delivery.add("handed over")
    alice.delivery.send(first, "handed over")
    alice.write_frames()
    alice.writer_waiting = False  # then the transport is full: the next text waits
    second = alice.delivery.add("waits for room")
    alice.delivery.send(second, "waits for room")
    await asyncio.sleep(0)
    assert alice.rows() == 2 and not alice.failures  # durability first while it waits


async def test_deferred_rows_are_written_at_the_end_of_the_loop_turn(
    pair: tuple[Side, Side],
) -> None:
    alice, _ = pair
    for i in range(4):
        alice.delivery.add(f"m{i}")
    assert alice.rows() == 0
    await asyncio.sleep(0)  # one turn of the loop: the scheduled write ran
    assert alice.rows() == 4 and not alice.failures


def test_without_a_loop_rows_are_written_at_once(pair: tuple[Side, Side]) -> None:
    alice, _ = pair
    alice.delivery.add("no event loop here")
    assert alice.rows() == 1


def test_sent_then_delivered_and_the_outbox_emptied(pair: tuple[Side, Side]) -> None:
    alice, bob = pair
    mids = [alice.delivery.add(f"hello {i}", ref={"n": i}) for i in range(3)]
    for i, mid in enumerate(mids):
        alice.delivery.send(mid, f"hello {i}")
    bob.read_frames(alice.write_frames())
    assert [e["id"] for e in alice.sink.of("sent")] == [m.hex() for m in mids]
    assert [e["ref"] for e in alice.sink.of("sent")] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [(e["id"], e["text"], e["from"]) for e in bob.sink.of("message")] == [
        (m.hex(), f"hello {i}", ALICE.did) for i, m in enumerate(mids)
    ]
    assert alice.delivery.unacknowledged
    alice.read_frames(bob.write_frames())  # the receipt
    assert [e["id"] for e in alice.sink.of("delivered")] == [m.hex() for m in mids]
    assert not alice.delivery.unacknowledged
    assert alice.rows() == 0 and alice.delivery.kept() == 0


def test_a_resent_message_is_delivered_once_but_acknowledged(pair: tuple[Side, Side]) -> None:
    alice, bob = pair
    mid = alice.delivery.add("only once")
    alice.delivery.send(mid, "only once")
    bob.read_frames(alice.write_frames())
    alice.delivery.send(mid, "only once")  # as a later session resends it from the outbox
    bob.read_frames(alice.write_frames())
    assert len(bob.sink.of("message")) == 1
    alice.read_frames(bob.write_frames())
    assert len(alice.sink.of("delivered")) == 2  # both seqs acknowledged
    assert alice.delivery.kept() == 0


async def test_received_ids_are_written_after_the_events_at_the_end_of_the_turn(
    pair: tuple[Side, Side],
) -> None:
    alice, bob = pair
    mids = [alice.delivery.add(f"m{i}") for i in range(3)]
    for mid in mids:
        alice.delivery.send(mid, "twice in one frame")
    alice.delivery.send(mids[0], "twice in one frame")  # a resend, read in the same turn
    bob.read_frames(alice.write_frames())
    assert [e["id"] for e in bob.sink.of("message")] == [m.hex() for m in mids]
    assert bob.received() == []  # the events first; the ids when this turn ends
    await asyncio.sleep(0)
    assert bob.received() == sorted(mids) and not bob.failures


def test_receipts_wait_for_an_empty_queue_or_a_full_batch(pair: tuple[Side, Side]) -> None:
    alice, bob = pair
    assert bob.delivery.receipts(queue_empty=True) == []  # nothing received yet
    for i in range(5):
        alice.delivery.send(alice.delivery.add(f"m{i}"), f"m{i}")
    bob.read_frames(alice.write_frames(), queue_empty=False)
    assert bob.channel.next_seq == 0  # more frames are queued: the 5 ids wait
    [receipt] = bob.delivery.receipts(queue_empty=True)
    assert receipt.ids == [1, 2, 3, 4, 5]  # seq 0 was the Hello
    for i in range(RECEIPT_BATCH + 3):
        alice.delivery.send(alice.delivery.add(f"n{i}"), f"n{i}")
    bob.read_frames(alice.write_frames(), queue_empty=False)  # a full batch: sent anyway
    assert bob.channel.next_seq == 2  # RECEIPT_BATCH ids, then the 3 left over
    assert bob.delivery.receipts(queue_empty=True) == []


def test_drop_typed_after_a_rejected_sas(pair: tuple[Side, Side]) -> None:
    alice, _ = pair
    earlier = alice.outbox.add(BOB.did, "from an earlier session")
    alice.delivery.add("typed now")
    alice.delivery.drop_typed()
    assert [p.message_id for p in alice.outbox.pending(BOB.did)] == [earlier]


def test_send_pending_oldest_first(pair: tuple[Side, Side]) -> None:
    alice, bob = pair
    older = [alice.outbox.add(BOB.did, f"old {i}") for i in range(2)]
    alice.delivery.send_pending()
    bob.read_frames(alice.write_frames())
    assert [e["id"] for e in bob.sink.of("message")] == [m.hex() for m in older]


def test_a_failed_write_ends_the_session(pair: tuple[Side, Side]) -> None:
    alice, _ = pair
    taken = alice.outbox.add(BOB.did, "first")
    alice.delivery.add("clash")
    alice.outbox.add(BOB.did, "same id", message_id=taken, deferred=True)
    alice.delivery.write()
    assert alice.failures and "could not save the outbox" in alice.failures[0]


async def test_a_failed_write_when_the_grace_is_over_ends_the_session_with_no_sent(
    pair: tuple[Side, Side],
) -> None:
    alice, _ = pair
    taken = alice.outbox.add(BOB.did, "first")
    alice.outbox.add(BOB.did, "same id", message_id=taken, deferred=True)  # refused when written
    await _hand_over(alice, 2, timers=True)
    await asyncio.sleep(GRACE * 2)  # the grace writes the oldest rows through the two: it fails
    assert alice.failures and "could not save the outbox" in alice.failures[0]
    assert not alice.sink.of("sent")


def _disk_lookups(side: Side) -> list[str]:
    """The received-id lookups `side`'s store runs from now on."""
    queries: list[str] = []
    side.store.connection.set_trace_callback(
        lambda sql: queries.append(sql) if sql.startswith("SELECT 1 FROM received") else None
    )
    return queries


def test_a_new_text_is_delivered_without_asking_the_disk(pair: tuple[Side, Side]) -> None:
    """specs/frames.md 5a: the sender marks a text's first transmission `new`; the receiver
    cannot have its id, so only a resend (not new) is looked up."""
    alice, bob = pair
    lookups = _disk_lookups(bob)
    mid = alice.delivery.add("typed just now")
    alice.delivery.send(mid, "typed just now", new=True)
    bob.read_frames(alice.write_frames())
    assert [e["id"] for e in bob.sink.of("message")] == [mid.hex()]
    assert lookups == [] and bob.received() == [mid]  # recorded all the same (no loop: at once)
    alice.delivery.send(mid, "typed just now")  # a later session resends it: not new
    bob.read_frames(alice.write_frames())
    assert len(bob.sink.of("message")) == 1 and len(lookups) == 1  # found on disk: dropped
    assert [text.new for text in bob.texts] == [True, None]


def _outgoing(side: Side) -> Outgoing:
    """What the node gives `side`'s typed commands to, in a verified session."""
    return Outgoing(
        sink=side.sink,
        delivery=side.delivery,
        verified=lambda: True,
        transfers=lambda: pytest.fail("no file is sent here"),
        error=side.failures.append,
    )


def test_typed_texts_go_out_new_and_leftovers_do_not(pair: tuple[Side, Side]) -> None:
    alice, bob = pair
    alice.outbox.add(BOB.did, "left over from an earlier session")
    alice.delivery.send_pending()
    _outgoing(alice).give(SendText("typed now"))
    bob.read_frames(alice.write_frames())
    assert [(text.text, text.new) for text in bob.texts] == [
        ("left over from an earlier session", None),
        ("typed now", True),
    ]
    assert not alice.failures


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("\ud800", "the text is not valid Unicode"),
        ("é" * 40000, "the text is longer than 65536 bytes"),
    ],
)
def test_a_text_no_frame_can_carry_is_one_clear_error(
    pair: tuple[Side, Side], text: str, problem: str
) -> None:
    alice, _ = pair
    _outgoing(alice).give(SendText(text))
    assert alice.failures == [f"cannot send this message: {problem}"]
    assert alice.outbox.count(BOB.did) == 0 and alice.write_frames() == []


def test_a_flood_resent_after_a_reconnect_is_delivered_once_with_bounded_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob keeps few received ids (small bounds here; specs/store.md "Received ids"); Alice
    floods, none of Bob's receipts reach her, and the next session resends all of it from her
    outbox: Bob delivers none of it again, pruned ids included, and a new text once."""
    monkeypatch.setattr(outbox_module, "RECEIVED_KEEP", 64)
    monkeypatch.setattr(outbox_module, "RECEIVED_PRUNE_EVERY", 16)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    def session() -> tuple[Side, Side]:
        a, b = _channels()
        alice, bob = Side(tmp_path / "a", ALICE, BOB, a), Side(tmp_path / "b", BOB, ALICE, b)
        bob.read_frames(alice.write_frames())  # the Hello
        return alice, bob

    alice, bob = session()
    for index in range(300):
        mid = alice.delivery.add(f"flood {index}")
        alice.delivery.send(mid, f"flood {index}")
    bob.read_frames(alice.write_frames())
    assert len(bob.sink.of("message")) == 300
    assert len(bob.received()) <= 64 + 16 - 1  # the bound, not 300
    bob.write_frames()  # its receipts are lost with the connection
    alice.store.close(), bob.store.close()

    alice, bob = session()  # the reconnect
    assert alice.delivery.kept() == 300
    alice.delivery.send_pending()  # everything, oldest first
    bob.read_frames(alice.write_frames())
    assert bob.sink.of("message") == []  # all duplicates, the pruned ones too
    fresh = alice.delivery.add("typed after the reconnect")
    alice.delivery.send(fresh, "typed after the reconnect")
    bob.read_frames(alice.write_frames())
    assert [e["text"] for e in bob.sink.of("message")] == ["typed after the reconnect"]
    alice.read_frames(bob.write_frames())
    assert alice.delivery.kept() == 0 and not bob.failures
    assert len(bob.received()) <= 64 + 16 - 1
    alice.store.close(), bob.store.close()
