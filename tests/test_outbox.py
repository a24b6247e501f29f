"""The persistent outbox and received-id set (didlink/profile/outbox.py, specs/store.md schema
2)."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from didlink.profile.outbox import RECEIVED_KEEP, RECEIVED_PRUNE_EVERY, Outbox, new_message_id
from didlink.profile.sealing import Sealer
from didlink.profile.store import DamagedStore, Store, StoreBusy
from identity.keys import IdentityKey

KEY = IdentityKey(seed=bytes(range(32)))
ALICE = IdentityKey(seed=b"\x01" * 32).did
BOB = IdentityKey(seed=b"\x02" * 32).did


def _outbox(path: Path, key: IdentityKey = KEY) -> tuple[Store, Outbox]:
    store = Store(path / "store.sqlite3")
    return store, Outbox(store, Sealer(key))


def _raw_bytes(folder: Path) -> bytes:
    """Every byte SQLite wrote: the database, its WAL and shared-memory files."""
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def test_no_plaintext_on_disk(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    secret = "the plan: meet at the old mill at nine"
    outbox.add(ALICE, secret)
    outbox.add(ALICE, "é" * 40)
    raw = _raw_bytes(tmp_path)
    store.close()
    raw += _raw_bytes(tmp_path)  # after the WAL was checkpointed into the main file
    assert secret.encode() not in raw
    assert "é".encode() * 40 not in raw
    assert b"old mill" not in raw
    assert ALICE.encode() in raw  # the peer's DID and the ids are in clear, by design


def test_order_per_peer_and_acknowledge(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    ids = [outbox.add(ALICE if i % 2 else BOB, f"m{i}") for i in range(6)]
    assert [p.text for p in outbox.pending(ALICE)] == ["m1", "m3", "m5"]
    assert [p.text for p in outbox.pending(BOB)] == ["m0", "m2", "m4"]
    assert [p.message_id for p in outbox.pending(BOB)] == ids[0::2]
    assert outbox.acknowledge(ids[3]) is True
    assert outbox.acknowledge(ids[3]) is False  # a second receipt changes nothing
    assert outbox.acknowledge(new_message_id()) is False
    assert [p.text for p in outbox.pending(ALICE)] == ["m1", "m5"]
    assert outbox.count(ALICE) == 2 and outbox.count(BOB) == 3
    store.close()


def test_survives_reopening(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    mid = outbox.add(ALICE, "kept across processes")
    store.close()
    store, outbox = _outbox(tmp_path)
    assert [(p.message_id, p.text) for p in outbox.pending(ALICE)] == [
        (mid, "kept across processes")
    ]
    store.close()


def test_other_key_or_moved_value_is_a_damaged_store(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    first = outbox.add(ALICE, "one")
    second = outbox.add(ALICE, "two")
    foreign = Outbox(store, Sealer(IdentityKey(seed=b"\x07" * 32)))
    with pytest.raises(DamagedStore):  # sealed under another identity's store key
        foreign.pending(ALICE)
    db = store.connection
    sealed_first = db.execute("SELECT sealed FROM outbox WHERE message_id = ?", (first,)).fetchone()
    db.execute("UPDATE outbox SET sealed = ? WHERE message_id = ?", (sealed_first[0], second))
    with pytest.raises(DamagedStore):  # the seal names the row: a moved value does not open
        outbox.pending(ALICE)
    db.execute("UPDATE outbox SET peer_did = ? WHERE message_id = ?", (BOB, first))
    with pytest.raises(DamagedStore):  # the sealed value names its peer
        outbox.pending(BOB)
    store.close()


def test_received_ids_dedup(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    mid = new_message_id()
    assert not outbox.seen(ALICE, mid)
    assert outbox.remember(ALICE, mid) is True
    assert outbox.remember(ALICE, mid) is False
    assert outbox.seen(ALICE, mid)
    assert not outbox.seen(BOB, mid)  # per peer
    assert outbox.remember(BOB, mid) is True
    with pytest.raises(ValueError):
        outbox.remember(ALICE, b"short")
    with pytest.raises(ValueError):
        outbox.add(ALICE, "x", message_id=b"\x00" * 15)
    with pytest.raises(sqlite3.IntegrityError):  # one message id, one outbox row
        outbox.add(ALICE, "x", message_id=mid)
        outbox.add(BOB, "y", message_id=mid)
    store.close()


def _received_on_disk(path: Path) -> list[bytes]:
    """The received ids as another connection (another process) sees them."""
    other = sqlite3.connect(path / "store.sqlite3")
    try:
        return sorted(bytes(r[0]) for r in other.execute("SELECT message_id FROM received"))
    finally:
        other.close()


def test_deferred_received_ids_count_as_seen_and_are_written_by_flush(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    ids = [new_message_id() for _ in range(3)]
    for mid in ids:
        assert not outbox.seen(ALICE, mid)
        assert outbox.remember(ALICE, mid, deferred=True) is True
        assert outbox.seen(ALICE, mid)  # before it is on disk: a resend in the same frame
    assert outbox.remember(ALICE, ids[0], deferred=True) is False
    assert not outbox.seen(BOB, ids[0])
    row = outbox.add(ALICE, "a message and the ids: one transaction", deferred=True)
    assert outbox.unwritten == 4
    assert _received_on_disk(tmp_path) == []
    outbox.flush()
    assert outbox.unwritten == 0
    assert _received_on_disk(tmp_path) == sorted(ids)
    assert _on_disk(tmp_path) == [row]
    store.close()
    store, later = _outbox(tmp_path)  # the next session, from disk
    assert all(later.seen(ALICE, mid) for mid in ids)
    assert later.remember(ALICE, ids[1]) is False
    store.close()


def test_a_failed_flush_keeps_the_received_ids(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    mid = new_message_id()
    outbox.remember(ALICE, mid, deferred=True)
    outbox.add(ALICE, "with it", deferred=True)
    blocker = sqlite3.connect(tmp_path / "store.sqlite3", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    store.connection.execute("PRAGMA busy_timeout = 0")
    with pytest.raises(StoreBusy, match="locked by another process"):
        outbox.flush()
    assert outbox.unwritten == 2 and outbox.seen(ALICE, mid)
    blocker.rollback()
    blocker.close()
    outbox.flush()
    assert _received_on_disk(tmp_path) == [mid]
    store.close()


def _on_disk(path: Path) -> list[bytes]:
    """The outbox's message ids as another connection (another process) sees them."""
    other = sqlite3.connect(path / "store.sqlite3")
    try:
        return [bytes(r[0]) for r in other.execute("SELECT message_id FROM outbox ORDER BY seq")]
    finally:
        other.close()


def test_deferred_rows_are_written_by_flush_in_order(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    first = outbox.add(ALICE, "written at once")
    deferred = [outbox.add(ALICE, f"burst {i}", deferred=True) for i in range(5)]
    assert outbox.unwritten == 5
    assert _on_disk(tmp_path) == [first]  # not on disk yet: another process does not see them
    outbox.flush()
    assert outbox.unwritten == 0
    assert _on_disk(tmp_path) == [first, *deferred]  # one transaction, in the order typed
    outbox.flush()  # nothing left: a no-op
    assert _on_disk(tmp_path) == [first, *deferred]
    store.close()


@pytest.mark.parametrize("read", ["pending", "count"])
def test_every_read_flushes_first(tmp_path: Path, read: str) -> None:
    """The outbox reads as if deferred rows were written (so no caller can miss one)."""
    store, outbox = _outbox(tmp_path)
    mids = [outbox.add(BOB, f"m{i}", deferred=True) for i in range(3)]
    if read == "pending":
        assert [p.message_id for p in outbox.pending(BOB)] == mids
    else:
        assert outbox.count(BOB) == 3
    assert outbox.unwritten == 0
    assert _on_disk(tmp_path) == mids
    store.close()


@pytest.mark.parametrize("one_by_one", [False, True])
def test_an_acknowledged_deferred_row_is_never_written(tmp_path: Path, one_by_one: bool) -> None:
    """A receipt that comes before the row was written: the row is dropped, the others stay
    deferred, and rows already on disk are deleted, all counted once."""
    store, outbox = _outbox(tmp_path)
    written = outbox.add(BOB, "on disk")
    mids = [outbox.add(BOB, f"m{i}", deferred=True) for i in range(3)]
    if one_by_one:
        assert outbox.acknowledge(mids[1]) is True
        assert outbox.acknowledge(written) is True
        assert outbox.acknowledge(mids[1]) is False  # a second receipt changes nothing
    else:
        assert outbox.acknowledge_all([mids[1], written, mids[1], new_message_id()]) == 2
    assert outbox.unwritten == 2 and _on_disk(tmp_path) == []
    outbox.flush()
    assert _on_disk(tmp_path) == [mids[0], mids[2]]
    store.close()


def test_acknowledge_all_counts_only_what_was_there(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    mids = [outbox.add(ALICE, f"m{i}") for i in range(4)]
    assert outbox.acknowledge_all([mids[0], mids[0], new_message_id(), mids[3]]) == 2
    assert outbox.acknowledge_all([]) == 0
    assert outbox.acknowledge_all([mids[1]]) == 1
    assert outbox.acknowledge_all([mids[1]]) == 0  # a second receipt changes nothing
    assert [p.message_id for p in outbox.pending(ALICE)] == [mids[2]]
    store.close()


def test_a_receipt_of_many_ids_deletes_them_all_once(tmp_path: Path) -> None:
    """More ids than one DELETE statement takes, repeats and unknown ids among them."""
    store, outbox = _outbox(tmp_path)
    mids = [outbox.add(ALICE, f"m{i}", deferred=True) for i in range(700)]
    outbox.flush()
    receipt = [*mids[:600], *mids[100:300], new_message_id()]
    assert outbox.acknowledge_all(receipt) == 600
    assert [p.message_id for p in outbox.pending(ALICE)] == mids[600:]
    store.close()


def test_a_failed_flush_keeps_the_rows(tmp_path: Path) -> None:
    """A flush that fails writes nothing and loses nothing (the rows wait for the next one)."""
    store, outbox = _outbox(tmp_path)
    taken = outbox.add(ALICE, "first")
    outbox.add(ALICE, "ok", deferred=True)
    outbox.add(ALICE, "clash", message_id=taken, deferred=True)  # UNIQUE message_id
    with pytest.raises(sqlite3.IntegrityError):
        outbox.flush()
    assert outbox.unwritten == 2
    assert _on_disk(tmp_path) == [taken]  # the transaction rolled back as a whole
    store.close()


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from([ALICE, BOB]), st.text(max_size=40)),
        st.tuples(st.just("defer"), st.sampled_from([ALICE, BOB]), st.text(max_size=40)),
        st.tuples(st.just("ack"), st.integers(min_value=0, max_value=30)),
        st.tuples(st.just("ack_all"), st.lists(st.integers(min_value=0, max_value=30))),
        st.tuples(st.just("flush")),
        st.tuples(st.just("through"), st.lists(st.integers(min_value=0, max_value=30))),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_outbox_matches_a_list_model(ops: list[tuple[object, ...]]) -> None:
    """Whatever the adds and acknowledgements, pending() is the model's list, in order."""
    with tempfile.TemporaryDirectory() as folder:
        store, outbox = _outbox(Path(folder))
        model: list[tuple[str, bytes, str]] = []
        added: list[bytes] = []
        for op in ops:
            if op[0] in ("add", "defer"):
                peer, text = str(op[1]), str(op[2])
                mid = outbox.add(peer, text, deferred=op[0] == "defer")
                added.append(mid)
                model.append((peer, mid, text))
            elif op[0] == "flush":
                outbox.flush()
            elif op[0] == "through" and added:
                indexes = cast(list[int], op[1])
                outbox.flush(rows=False, through={added[i % len(added)] for i in indexes})
            elif op[0] == "ack" and added:
                index = int(str(op[1])) % len(added)
                mid = added[index]
                was_there = any(m == mid for _, m, _ in model)
                assert outbox.acknowledge(mid) is was_there
                model = [entry for entry in model if entry[1] != mid]
            elif op[0] == "ack_all" and added:
                indexes = cast(list[int], op[1])
                chosen = list(dict.fromkeys(added[i % len(added)] for i in indexes))
                there = sum(any(m == mid for _, m, _ in model) for mid in chosen)
                assert outbox.acknowledge_all(chosen) == there
                model = [entry for entry in model if entry[1] not in chosen]
        for peer in (ALICE, BOB):
            expected = [(m, t) for p, m, t in model if p == peer]
            assert [(x.message_id, x.text) for x in outbox.pending(peer)] == expected
            assert outbox.count(peer) == len(expected)
        store.close()


def test_flush_of_the_received_ids_only_keeps_the_rows_deferred(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    mid = outbox.add(ALICE, "still in memory", deferred=True)
    received = new_message_id()
    outbox.remember(ALICE, received, deferred=True)
    outbox.flush(rows=False)
    assert _received_on_disk(tmp_path) == [received] and _on_disk(tmp_path) == []
    assert outbox.unwritten == outbox.unwritten_rows == 1
    outbox.flush(rows=False)  # nothing but rows left: a no-op
    outbox.flush()
    assert _on_disk(tmp_path) == [mid] and outbox.unwritten == 0
    store.close()


def test_flush_through_writes_the_oldest_rows_through_the_newest_named(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    mids = [outbox.add(ALICE, f"m{i}", deferred=True) for i in range(5)]
    outbox.acknowledge(mids[0])  # never written
    outbox.flush(rows=False, through={mids[2], new_message_id()})  # (an unknown id: ignored)
    assert _on_disk(tmp_path) == mids[1:3]  # the oldest first, through mids[2]
    assert [outbox.is_deferred(mid) for mid in mids] == [False, False, False, True, True]
    outbox.flush(rows=False, through={mids[1]})  # on disk already: nothing to write
    assert outbox.unwritten_rows == 2
    outbox.flush()
    assert _on_disk(tmp_path) == mids[1:]
    store.close()


def test_message_ids_are_16_bytes_and_never_repeat() -> None:
    ids = [new_message_id() for _ in range(2000)]
    assert all(type(mid) is bytes and len(mid) == 16 for mid in ids)
    assert len(set(ids)) == len(ids)
    assert len({mid[6:] for mid in ids}) == len(ids)  # 10 random bytes each


def test_a_message_id_starts_with_the_time_in_milliseconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """specs/frames.md 5a: 6 bytes of Unix time in ms, big-endian, so later ids sort later."""
    monkeypatch.setattr(time, "time_ns", lambda: 1_764_000_000_123_456_789)
    first = new_message_id()
    assert first[:6] == (1_764_000_000_123).to_bytes(6, "big")
    monkeypatch.setattr(time, "time_ns", lambda: 1_764_000_000_124_000_000)
    assert new_message_id() > first  # a millisecond later sorts later, whatever the random part
    monkeypatch.setattr(time, "time_ns", lambda: -5)  # a clock before 1970: the lowest time
    assert new_message_id()[:6] == bytes(6)


def test_ids_made_later_sort_later() -> None:
    ids = []
    for _ in range(5):
        ids.append(new_message_id())
        time.sleep(0.002)
    assert ids == sorted(ids)


# --- received ids are bounded (issue 26, class 5; specs/store.md "Received ids") --------------

BOUND = RECEIVED_KEEP + RECEIVED_PRUNE_EVERY - 1


def _mids(count: int, *, start_ms: int = 1_800_000_000_000) -> list[bytes]:
    """`count` message ids as one sender makes them: one millisecond apart, in order."""
    return [(start_ms + i).to_bytes(6, "big") + os.urandom(10) for i in range(count)]


def _received(path: Path, peer: str) -> list[bytes]:
    other = sqlite3.connect(path / "store.sqlite3")
    try:
        rows = other.execute(
            "SELECT message_id FROM received WHERE peer_did = ? ORDER BY message_id", (peer,)
        )
        return [bytes(r[0]) for r in rows]
    finally:
        other.close()


def test_a_flood_of_received_ids_stays_within_the_bound(tmp_path: Path) -> None:
    store, outbox = _outbox(tmp_path)
    flood = _mids(30_000)
    for start in range(0, len(flood), 128):  # one flush per received frame, as a session does
        for mid in flood[start : start + 128]:
            assert not outbox.seen(ALICE, mid)
            outbox.remember(ALICE, mid, deferred=True)
        outbox.flush()
        assert len(_received(tmp_path, ALICE)) <= BOUND
    kept = _received(tmp_path, ALICE)
    assert RECEIVED_KEEP <= len(kept) <= BOUND
    assert kept == flood[-len(kept) :]  # the newest ones
    outbox.remember(BOB, new_message_id())  # another peer's ids are its own
    assert len(_received(tmp_path, BOB)) == 1
    store.close()


def test_a_resend_after_reconnect_is_still_suppressed(tmp_path: Path) -> None:
    """After a flood, the sender resends what it had no receipt for, oldest first, on the next
    session: every one is a duplicate, kept or pruned; a message never delivered is not."""
    store, outbox = _outbox(tmp_path)
    flood = _mids(20_000)
    for start in range(0, len(flood), 500):
        for mid in flood[start : start + 500]:
            outbox.remember(ALICE, mid, deferred=True)
        outbox.flush()
    assert len(_received(tmp_path, ALICE)) <= BOUND
    store.close()
    store, outbox = _outbox(tmp_path)  # a new session (a new process) after the reconnect
    unacknowledged = flood[-12_000:]  # receipts lost: more than are kept
    for mid in unacknowledged:
        assert outbox.seen(ALICE, mid), mid.hex()  # on disk, or older than the ids kept
    never_delivered = _mids(3, start_ms=1_800_000_000_000 + 20_000)  # typed after the flood
    for mid in never_delivered:
        assert not outbox.seen(ALICE, mid)
        assert outbox.remember(ALICE, mid)
        assert outbox.seen(ALICE, mid)
    assert not outbox.seen(BOB, flood[0])  # the floor is per peer
    store.close()


def test_an_unbounded_table_from_before_is_pruned_at_the_first_write(tmp_path: Path) -> None:
    """A store an older didlink filled (70,000 ids after one flood) shrinks to the bound."""
    store, outbox = _outbox(tmp_path)
    flood = _mids(70_000)
    with store.transaction():
        store.connection.executemany(
            "INSERT INTO received VALUES (?, ?, 'x')", [(ALICE, mid) for mid in flood]
        )
    store.close()
    store, outbox = _outbox(tmp_path)
    outbox.remember(ALICE, new_message_id())
    assert len(_received(tmp_path, ALICE)) == RECEIVED_KEEP
    assert outbox.seen(ALICE, flood[0]) and outbox.seen(ALICE, flood[-1])
    store.close()
