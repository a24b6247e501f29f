"""didlink/session/transfers.py over an in-memory SecureChannel pair (no WebRTC): files both ways,
backpressure-shaped sending, a forged hash, chunks of unknown files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from didlink.session import files
from didlink.session.files import CHUNK_SIZE, FileTransferError, OutgoingFile
from didlink.session.transfers import MAX_INCOMING_FILES, Transfers
from messaging.channel import MessageReceived
from messaging.frames import FileAck, FileChunk, FileError, FileOffer
from tests.support.loopback import ChannelPair

pytestmark = pytest.mark.timeout(20)


class Side:
    """One side's Transfers plus the events it emitted; `flush` carries frames to the other."""

    def __init__(self, pair: ChannelPair, *, initiator: bool, downloads: Path) -> None:
        self.pair = pair
        self.initiator = initiator
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.flushes = 0
        self.other: Side | None = None
        channel = pair.a if initiator else pair.b
        self.transfers = Transfers(
            channel=channel,
            downloads=downloads,
            peer_did="did:key:peer",
            emit=lambda event, **fields: self.events.append((event, fields)),
            flush=self.flush,
            kick=lambda: None,
            progressed=lambda: None,
        )

    async def flush(self) -> None:
        self.flushes += 1
        deliver(self.pair)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [fields for event, fields in self.events if event == name]


SIDES: dict[int, tuple[Side, Side]] = {}


def deliver(pair: ChannelPair) -> None:
    """Pump the pair and hand file messages to the receiving side's Transfers, until nothing
    more moves (an offer's first ack comes back in the same call)."""
    alice, bob = SIDES[id(pair)]
    for _ in range(5):
        pair.pump()
        moved = False
        for side, events in ((bob, pair.b_events), (alice, pair.a_events)):
            while events:
                moved = True
                event = events.pop(0)
                if isinstance(event, MessageReceived):
                    message = event.message
                    if isinstance(message, FileOffer | FileChunk):
                        side.transfers.on_data(message)
                    elif isinstance(message, FileAck):
                        side.transfers.on_ack(message)
                    elif isinstance(message, FileError):
                        side.transfers.on_file_error(message)
        if not moved:
            return


def make_pair(tmp_path: Path) -> tuple[Side, Side]:
    pair = ChannelPair.create()
    alice = Side(pair, initiator=True, downloads=tmp_path / "a-downloads")
    bob = Side(pair, initiator=False, downloads=tmp_path / "b-downloads")
    SIDES[id(pair)] = (alice, bob)
    pair.pump()  # the Hello, so that the responder can send
    return alice, bob


async def _drain(side: Side) -> None:
    """Wait (bounded) until the side's file tasks ended, then deliver what is left."""
    async with asyncio.timeout(10):
        await asyncio.gather(*side.transfers._tasks)
    deliver(side.pair)


async def test_a_file_each_way(tmp_path: Path) -> None:
    alice, bob = make_pair(tmp_path)
    data_ab, data_ba = os.urandom(7 * CHUNK_SIZE + 5), os.urandom(1000)
    (tmp_path / "ab.bin").write_bytes(data_ab)
    (tmp_path / "ba.bin").write_bytes(data_ba)
    alice.transfers.send(OutgoingFile(tmp_path / "ab.bin"))
    bob.transfers.send(OutgoingFile(tmp_path / "ba.bin"))
    assert [t.direction for t in alice.transfers.in_progress()] == ["out"]  # being hashed
    await _drain(alice)
    await _drain(bob)
    [got] = bob.named("file")
    assert (tmp_path / "b-downloads" / "ab.bin").read_bytes() == data_ab
    assert got["path"] == str(tmp_path / "b-downloads" / "ab.bin")
    assert got["sha256"] == hashlib.sha256(data_ab).hexdigest()
    assert got["from"] == "did:key:peer" and got["size"] == len(data_ab)
    [back] = alice.named("file")
    assert back["path"] == str(tmp_path / "a-downloads" / "ba.bin")
    assert (tmp_path / "a-downloads" / "ba.bin").read_bytes() == data_ba
    assert alice.named("file_sent")[0]["sha256"] == got["sha256"]
    assert bob.named("file_sent")[0]["size"] == len(data_ba)
    assert not alice.transfers.pending and not bob.transfers.pending
    assert not alice.transfers.in_progress() and not bob.transfers.in_progress()
    assert alice.flushes == 4  # the offer, then 8 chunks three per round: never the whole file
    sent_id = alice.named("file_sent")[0]["id"]
    sent = [p["bytes"] for p in alice.named("progress") if p["id"] == sent_id]
    assert sent == sorted(sent) and sent[-1] == len(data_ab)
    ways = {(p["id"], p["direction"], p["name"]) for p in alice.named("progress")}
    assert ways == {(sent_id, "out", "ab.bin"), (back["id"], "in", "ba.bin")}


async def test_a_forged_hash_is_reported_and_discarded(tmp_path: Path) -> None:
    _, bob = make_pair(tmp_path)
    file_id = bytes(16)
    offer = FileOffer(
        file_id=file_id, name="x.txt", size=3, sha256=hashlib.sha256(b"abd").digest(), chunk_size=3
    )
    bob.transfers.on_data(offer)
    bob.transfers.on_data(FileChunk(file_id=file_id, offset=0, data=b"abc"))
    assert "SHA-256" in bob.named("error")[0]["message"]
    assert not bob.named("file")
    assert list((tmp_path / "b-downloads").iterdir()) == []
    bob.transfers.on_data(FileChunk(file_id=bytes([1] * 16), offset=0, data=b"?"))
    assert "did not offer" in bob.named("error")[1]["message"]
    bob.transfers.on_data(offer)  # the same id again
    assert "twice" in bob.named("error")[2]["message"]


async def test_stop_deletes_partial_downloads(tmp_path: Path) -> None:
    _, bob = make_pair(tmp_path)
    offer = FileOffer(
        file_id=bytes(16), name="big", size=10, sha256=bytes(32), chunk_size=CHUNK_SIZE
    )
    bob.transfers.on_data(offer)
    bob.transfers.on_data(FileChunk(file_id=bytes(16), offset=0, data=b"12345"))
    assert len(list((tmp_path / "b-downloads").iterdir())) == 1
    await bob.transfers.stop()
    assert list((tmp_path / "b-downloads").iterdir()) == []


async def test_an_offer_larger_than_the_free_disk_is_refused(tmp_path: Path) -> None:
    """No size limit but the disk: 8 EiB announced is refused before anything is written."""
    _, bob = make_pair(tmp_path)
    huge = FileOffer(
        file_id=bytes(16), name="huge.bin", size=2**63 - 1, sha256=bytes(32), chunk_size=65536
    )
    bob.transfers.on_data(huge)
    [error] = bob.named("error")
    assert "do not fit on the disk" in error["message"]
    assert list((tmp_path / "b-downloads").iterdir()) == []
    bob.transfers.on_data(FileChunk(file_id=bytes(16), offset=0, data=b"x"))  # ignored
    assert len(bob.named("error")) == 1 and not bob.named("file")


async def test_a_peer_cannot_open_files_without_bound(tmp_path: Path) -> None:
    _, bob = make_pair(tmp_path)
    for number in range(MAX_INCOMING_FILES + 3):
        bob.transfers.on_data(
            FileOffer(
                file_id=bytes([number]) * 16,
                name=f"f{number}.bin",
                size=10,
                sha256=bytes(32),
                chunk_size=65536,
            )
        )
    errors = bob.named("error")
    assert len(errors) == 3 and all("already sending" in e["message"] for e in errors)
    parts = list((tmp_path / "b-downloads").iterdir())
    assert len(parts) == MAX_INCOMING_FILES


def _hash_waits_for(release: threading.Event, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make file hashing wait until the test's event loop sets `release` (bounded): a hash run
    on the loop's own thread would wait the whole bound and fail."""
    real = files._sha256_of

    def waiting(handle: BinaryIO) -> bytes:
        if not release.wait(5):
            raise AssertionError("the file was hashed on the event loop's thread")
        return real(handle)

    monkeypatch.setattr(files, "_sha256_of", waiting)


async def test_a_file_is_hashed_in_a_thread_while_the_session_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = make_pair(tmp_path)
    data = os.urandom(3 * CHUNK_SIZE + 7)
    (tmp_path / "big.bin").write_bytes(data)
    release = threading.Event()
    _hash_waits_for(release, monkeypatch)
    outgoing = OutgoingFile(tmp_path / "big.bin", hash_now=False)
    assert not outgoing.hashed
    with pytest.raises(FileTransferError, match="hashed first"):
        outgoing.offer()
    alice.transfers.send(outgoing)
    await asyncio.sleep(0.05)  # the loop runs on while the file is read
    assert alice.transfers.pending and not bob.named("file")
    release.set()
    await _drain(alice)
    [got] = bob.named("file")
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert alice.named("file_sent")[0]["sha256"] == got["sha256"]


async def test_stopping_while_a_file_is_hashed_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = make_pair(tmp_path)
    (tmp_path / "big.bin").write_bytes(os.urandom(2 * CHUNK_SIZE))
    release = threading.Event()
    _hash_waits_for(release, monkeypatch)
    outgoing = OutgoingFile(tmp_path / "big.bin", hash_now=False)
    alice.transfers.send(outgoing)
    await asyncio.sleep(0.01)
    stopping = asyncio.create_task(alice.transfers.stop())  # quit, or the session ended
    await asyncio.sleep(0.01)
    release.set()  # the thread ends with its read of the closed file
    async with asyncio.timeout(5):
        await stopping
    assert outgoing._handle.closed
    assert not bob.named("file") and not alice.named("error")


async def test_a_store_fault_while_sending_ends_the_session(tmp_path: Path) -> None:
    """The transfer state cannot be saved (specs/store.md): the session's `store_failed` gets
    the typed error (the node ends the session with it, exit 2), not one `error` among others."""
    from didlink.profile.store import DamagedStore, StoreError

    class BrokenStates:
        def save_outgoing(self, state: object) -> None:
            raise DamagedStore("the local store /p/store.sqlite3 is damaged: restore it")

    alice, _bob = make_pair(tmp_path)
    failures: list[StoreError] = []
    alice.transfers._states = BrokenStates()  # type: ignore[assignment]
    alice.transfers._store_failed = failures.append
    (tmp_path / "f.bin").write_bytes(b"data")
    alice.transfers.send(OutgoingFile(tmp_path / "f.bin"))
    await _drain(alice)
    assert [str(f) for f in failures] == ["the local store /p/store.sqlite3 is damaged: restore it"]
    assert alice.named("error") == [] and not alice.transfers.pending
