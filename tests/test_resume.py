"""Resumable file transfers (didlink/session/resume.py + didlink/session/transfers.py) over
in-memory channels.

A "session" is a fresh SecureChannel pair with fresh Transfers objects; what survives between
sessions is only what survives a real process: each side's store (TransferStates) and files.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from didlink.profile.sealing import Sealer
from didlink.profile.store import MIGRATIONS, SCHEMA_VERSION, Store
from didlink.session.files import CHUNK_SIZE, IncomingFile, OutgoingFile
from didlink.session.resume import TransferStates
from didlink.session.transfers import Transfers
from didlink.words.transfer import TransferInProgress
from identity.keys import IdentityKey
from messaging.channel import MessageReceived, SecureChannel
from messaging.frames import FileAck, FileChunk, FileError, FileOffer
from tests.support.loopback import ChannelPair

pytestmark = pytest.mark.timeout(20)

ALICE_KEY, BOB_KEY = IdentityKey(seed=b"\x0a" * 32), IdentityKey(seed=b"\x0b" * 32)


class Session:
    """Alice and Bob's Transfers over one channel pair; file messages carried on `deliver`."""

    def __init__(self, tmp_path: Path, *, stop_after_rounds: int | None = None) -> None:
        self.pair = ChannelPair.create()
        self.events: dict[str, list[tuple[str, dict[str, Any]]]] = {"a": [], "b": []}
        self.rounds = 0
        self.stop_after = stop_after_rounds
        self.cut = False  # the "connection" broke: nothing more is carried
        self.alice = self._side("a", self.pair.a, tmp_path, ALICE_KEY, BOB_KEY.did)
        self.bob = self._side("b", self.pair.b, tmp_path, BOB_KEY, ALICE_KEY.did)
        self.pair.pump()

    def _side(
        self, name: str, channel: SecureChannel, tmp: Path, key: IdentityKey, peer: str
    ) -> Transfers:
        store = Store(tmp / f"{name}.sqlite3")
        return Transfers(
            channel=channel,
            downloads=tmp / f"{name}-downloads",
            peer_did=peer,
            emit=lambda event, **fields: self.events[name].append((event, fields)),
            flush=self._flush(),
            kick=lambda: None,
            progressed=lambda: None,
            states=TransferStates(store, Sealer(key)),
        )

    def _flush(self) -> Callable[[], Awaitable[None]]:
        async def flush() -> None:
            self.rounds += 1
            if self.stop_after is not None and self.rounds > self.stop_after:
                self.cut = True
            self.deliver()
            await asyncio.sleep(0)

        return flush

    def deliver(self) -> None:
        for _ in range(5):
            if self.cut:
                return
            self.pair.pump()
            for side, events in ((self.bob, self.pair.b_events), (self.alice, self.pair.a_events)):
                while events:
                    event = events.pop(0)
                    if isinstance(event, MessageReceived):
                        message = event.message
                        if isinstance(message, FileOffer | FileChunk):
                            side.on_data(message)
                        elif isinstance(message, FileAck):
                            side.on_ack(message)
                        elif isinstance(message, FileError):
                            side.on_file_error(message)

    def named(self, side: str, name: str) -> list[dict[str, Any]]:
        return [fields for event, fields in self.events[side] if event == name]

    async def settle(self) -> None:
        """Deliver until Alice's transfer tasks are done (a file is hashed in a thread)."""
        async with asyncio.timeout(10):
            while True:
                self.deliver()
                await asyncio.sleep(0.001 if self.alice._tasks else 0)
                if not self.alice._tasks:
                    break
        self.deliver()

    async def end(self) -> None:
        await self.alice.stop()
        await self.bob.stop()


async def test_interrupted_file_resumes_from_the_bytes_held(tmp_path: Path) -> None:
    data = os.urandom(10 * CHUNK_SIZE + 123)
    source = tmp_path / "data.bin"
    source.write_bytes(data)
    first = Session(tmp_path, stop_after_rounds=2)  # the offer and its ack, 3 chunks, a cut
    first.alice.send(OutgoingFile(source))
    await first.settle()
    # what a person quitting now is told (issue 27, 8): both sides, bytes so far
    [sending] = first.alice.in_progress()
    assert (sending.direction, sending.name, sending.total) == ("out", "data.bin", len(data))
    assert sending.done >= 3 * CHUNK_SIZE
    [receiving] = first.bob.in_progress()
    assert receiving == TransferInProgress("in", "data.bin", 3 * CHUNK_SIZE, len(data), sending.id)
    await first.end()  # the session ends: both files are still unfinished, kept to resume
    assert first.bob.in_progress() == [receiving] and first.alice.in_progress() == [sending]
    [part] = (tmp_path / "b-downloads").glob(".didlink-*.part")
    held = part.stat().st_size
    assert held == 3 * CHUNK_SIZE and not first.named("b", "file")
    with part.open("ab") as handle:  # a crash left half of a chunk: it is kept and re-hashed
        handle.write(data[held : held + 1000])
    second = Session(tmp_path)
    second.alice.resume_outgoing()
    await second.settle()
    [got] = second.named("b", "file")
    assert Path(got["path"]).read_bytes() == data  # noqa: ASYNC240 - a test
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert second.named("a", "file_sent")[0]["sha256"] == got["sha256"]
    resumed = [p["bytes"] for p in second.named("b", "progress")]
    assert resumed[0] > held + 1000 - 1 and resumed[-1] == len(data)
    # a resumed file is still ours on Alice's side, the peer's on Bob's (issue 27, 8: the
    # chat screen labelled a resumed file of ours "receiving")
    for side, way in (("a", "out"), ("b", "in")):
        ways = {(p["direction"], p["name"]) for p in second.named(side, "progress")}
        assert ways == {(way, "data.bin")}, side
    await second.end()
    third = Session(tmp_path)  # nothing left to resume, on either side
    third.alice.resume_outgoing()
    await third.settle()
    assert not third.events["a"] and not third.events["b"]
    assert sorted(p.name for p in (tmp_path / "b-downloads").iterdir()) == ["data.bin"]


async def test_a_reoffer_of_a_saved_file_is_acknowledged_not_taken_twice(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK_SIZE)
    source = tmp_path / "x.bin"
    source.write_bytes(data)
    session = Session(tmp_path)
    outgoing = OutgoingFile(source)
    offer = outgoing.offer()
    session.alice.send(outgoing)
    await session.settle()
    assert len(session.named("b", "file")) == 1
    await session.end()
    again = Session(tmp_path)
    again.bob.on_data(offer)  # the sender missed our final ack and offers it again
    events = again.pair.b.data_to_send()
    assert events and not again.named("b", "file") and not again.named("b", "error")
    assert sorted(p.name for p in (tmp_path / "b-downloads").iterdir()) == ["x.bin"]
    other = offer.model_copy(update={"size": offer.size + 1})
    third = Session(tmp_path)
    third.bob.on_data(other)  # same id, other contents: refused
    assert "other contents" in third.named("b", "error")[0]["message"]


async def test_a_changed_source_file_is_not_resumed(tmp_path: Path) -> None:
    source = tmp_path / "d.bin"
    source.write_bytes(os.urandom(8 * CHUNK_SIZE))
    first = Session(tmp_path, stop_after_rounds=2)  # the offer and its ack, 3 chunks
    first.alice.send(OutgoingFile(source))
    await first.settle()
    await first.end()
    source.write_bytes(os.urandom(8 * CHUNK_SIZE))
    second = Session(tmp_path)
    second.alice.resume_outgoing()  # hashed in a thread, then compared
    await second.settle()
    assert "changed" in second.named("a", "error")[0]["message"]
    second.alice.resume_outgoing()  # and it is forgotten
    await second.settle()
    assert len(second.named("a", "error")) == 1


def test_states_are_sealed(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    states = TransferStates(store, Sealer(ALICE_KEY))
    offer = FileOffer(
        file_id=bytes(16), name="secret-plans.pdf", size=5, sha256=bytes(32), chunk_size=5
    )
    states.save_incoming(BOB_KEY.did, offer)
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"secret-plans" not in raw
    store = Store(tmp_path / "s.sqlite3")
    found = TransferStates(store, Sealer(ALICE_KEY)).incoming(bytes(16))
    assert found is not None and found.offer == offer and found.saved is None
    store.close()


async def _interrupted(tmp_path: Path) -> tuple[bytes, Path]:
    """A file whose first session was cut after three chunks: (its data, its path)."""
    data = os.urandom(6 * CHUNK_SIZE)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    first = Session(tmp_path, stop_after_rounds=2)  # the offer and its ack, 3 chunks
    first.alice.send(OutgoingFile(source))
    await first.settle()
    await first.end()
    return data, source


def _rehash_waits_for(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make a part file's re-hash wait until the test's event loop sets the event it returns
    (bounded): a re-hash on the loop's own thread would wait the whole bound and fail."""
    release = threading.Event()
    real = IncomingFile.rehash

    def waiting(self: IncomingFile) -> None:
        if not release.wait(5):
            raise AssertionError("the part file was re-hashed on the event loop's thread")
        real(self)

    monkeypatch.setattr(IncomingFile, "rehash", waiting)
    return release


async def test_the_receiver_rehashes_a_part_file_in_a_thread_then_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = await _interrupted(tmp_path)
    release = _rehash_waits_for(monkeypatch)
    second = Session(tmp_path)
    second.alice.resume_outgoing()
    for _ in range(20):  # the loop goes on; the offer waits for its answer
        second.deliver()
        await asyncio.sleep(0.005)
    assert second.bob._rehashing and not second.named("a", "progress")
    release.set()
    await second.settle()
    [got] = second.named("b", "file")
    assert Path(got["path"]).read_bytes() == data  # noqa: ASYNC240 - a test
    assert not second.bob._rehashing
    await second.end()


async def test_a_chunk_before_the_resume_offset_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, source = await _interrupted(tmp_path)
    release = _rehash_waits_for(monkeypatch)
    second = Session(tmp_path)
    outgoing = OutgoingFile(source)
    [state] = second.alice._states.outgoing(BOB_KEY.did)  # type: ignore[union-attr]
    outgoing.file_id = state.file_id
    second.bob.on_data(outgoing.offer())  # the re-offer: Bob starts re-hashing
    second.bob.on_data(FileChunk(file_id=state.file_id, offset=0, data=data[:CHUNK_SIZE]))
    assert "before the offset" in second.named("b", "error")[0]["message"]
    release.set()
    await asyncio.sleep(0.05)  # the cancelled re-hash ends without a word
    assert len(second.named("b", "error")) == 1 and not second.bob._rehashing
    assert not list((tmp_path / "b-downloads").glob(".didlink-*.part"))  # given up: deleted
    outgoing.close()
    await second.end()


async def test_a_session_that_ends_during_the_rehash_keeps_the_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _interrupted(tmp_path)
    release = _rehash_waits_for(monkeypatch)
    second = Session(tmp_path)
    second.alice.resume_outgoing()
    for _ in range(10):
        second.deliver()
        await asyncio.sleep(0.005)
    [rehash] = second.bob._rehashing.values()
    second.pair.b.close()  # the session ends (our Close queued): no more sends on this channel
    release.set()
    async with asyncio.timeout(5):
        await rehash  # ends quietly: nobody is left to answer
    assert not second.named("b", "error") and not second.bob._rehashing
    await second.end()
    assert list((tmp_path / "b-downloads").glob(".didlink-*.part"))  # kept for the next session


async def test_an_offer_reusing_the_id_of_a_file_we_send_leaves_its_state_alone(
    tmp_path: Path,
) -> None:
    """Issue 26: Bob offers Alice a file under the id of the file Alice is sending him. Her
    state for that file is keyed by direction: it survives, and the transfer resumes."""
    data, _source = await _interrupted(tmp_path)
    second = Session(tmp_path)
    assert second.alice._states is not None
    [state] = second.alice._states.outgoing(BOB_KEY.did)
    (tmp_path / "evil.bin").write_bytes(b"not what Alice sends")
    same_id = OutgoingFile(tmp_path / "evil.bin", file_id=state.file_id)
    second.alice.on_data(same_id.offer())  # Bob's file, under Alice's id
    second.alice.on_data(FileChunk(file_id=state.file_id, offset=0, data=b"not what Alice sends"))
    assert [f["name"] for f in second.named("a", "file")] == ["evil.bin"]
    assert second.alice._states.outgoing(BOB_KEY.did) == [state]  # untouched
    assert second.alice._states.incoming(state.file_id) is not None  # its own row
    second.alice.resume_outgoing()
    await second.settle()
    [got] = second.named("b", "file")
    assert Path(got["path"]).read_bytes() == data  # noqa: ASYNC240 - a test
    assert second.alice._states.outgoing(BOB_KEY.did) == []  # forgotten at the final ack
    assert second.alice._states.incoming(state.file_id) is not None  # the other direction stays
    same_id.close()
    await second.end()


def test_schema_4_keeps_the_transfers_of_a_version_2_store(tmp_path: Path) -> None:
    """The migration to (direction, file id) keys copies every row of the version 2 table."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in (*MIGRATIONS[0], *MIGRATIONS[1]):
        db.execute(statement)
    db.execute(
        "INSERT INTO transfers (file_id, peer_did, direction, updated_at, sealed)"
        " VALUES (?, 'did:key:z', 'out', '2026-01-01T00:00:00.000000+00:00', x'00')",
        (bytes(16),),
    )
    db.execute("PRAGMA user_version = 2")
    db.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION
    rows = store.connection.execute("SELECT direction, file_id, peer_did FROM transfers").fetchall()
    assert rows == [("out", bytes(16), "did:key:z")]
    store.connection.execute(  # the same id in the other direction is another row now
        "INSERT INTO transfers (file_id, peer_did, direction, updated_at, sealed)"
        " VALUES (?, 'did:key:z', 'in', '2026-01-01T00:00:00.000000+00:00', x'00')",
        (bytes(16),),
    )
    assert store.connection.execute("SELECT count(*) FROM transfers").fetchone()[0] == 2
    store.close()
