"""Issue 26, "File transfer breaks its own limits": each finding of the review, over in-memory
channel pairs (didlink/session/transfers.py, didlink/session/files.py,
didlink/session/file_limits.py, resume.py).

- Parallel offers share one account of free space (faked), re-checked while writing.
- Every offer counts (zero-byte ones too): a flood is refused, answered, never a crash.
- A 255-byte name received twice is saved twice (the collision name cut to NAME_MAX).
- An OSError on create, write or rename fails that file (the peer is told), not the session.
- Partial files kept for resume: a per-peer budget, an age limit; rows of saved files bounded.
- `--files ask` / `refuse`: the receiver's user decides; the sender is told.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from didlink.file_policy import FilePolicy
from didlink.jsonl import AcceptFile, Expecting, RefuseFile, human_command
from didlink.profile.folder import Profile
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store
from didlink.session import file_limits, files, transfers
from didlink.session.file_limits import DiskSpace, OfferRate, TokenBucket
from didlink.session.files import CHUNK_SIZE, IncomingFile, OutgoingFile, fitted_name, unique_path
from didlink.session.node import Node, Timeouts
from didlink.session.resume import TransferStates
from didlink.session.transfers import MAX_INCOMING_FILES, Transfers
from identity import canonical
from identity.keys import IdentityKey
from messaging.channel import MessageReceived, SecureChannel
from messaging.frames import (
    Envelope,
    FileAck,
    FileChunk,
    FileError,
    FileOffer,
    FrameError,
    decode_frame,
    encode_frame,
)
from tests.support.loopback import ChannelPair
from tests.support.sink import RecordingSink

pytestmark = pytest.mark.timeout(60)

ALICE_KEY, BOB_KEY = IdentityKey(seed=b"\x0c" * 32), IdentityKey(seed=b"\x0d" * 32)
MB = 1_000_000
MIB = 1024 * 1024


class Pair:
    """Alice and Bob's Transfers over one channel pair; frames carried until nothing moves."""

    def __init__(self, tmp: Path, *, stored: bool = False, **bob: Any) -> None:
        self.tmp = tmp
        self.pair = ChannelPair.create()
        self.events: dict[str, list[tuple[str, dict[str, Any]]]] = {"a": [], "b": []}
        self.stores: list[Store] = []
        self.alice = self._side("a", self.pair.a, ALICE_KEY, BOB_KEY.did, stored, {})
        self.bob = self._side("b", self.pair.b, BOB_KEY, ALICE_KEY.did, stored, bob)
        self.pair.pump()

    def _side(
        self,
        name: str,
        channel: SecureChannel,
        key: IdentityKey,
        peer: str,
        stored: bool,
        options: dict[str, Any],
    ) -> Transfers:
        states = None
        if stored:
            store = Store(self.tmp / f"{name}.sqlite3")
            self.stores.append(store)
            states = TransferStates(store, Sealer(key))
        options.setdefault("rate", OfferRate(peer, peer=TokenBucket(10_000, 1.0)))
        return Transfers(
            channel=channel,
            downloads=self.tmp / f"{name}-downloads",
            peer_did=peer,
            emit=lambda event, **fields: self.events[name].append((event, fields)),
            flush=self._flush,
            kick=lambda: None,
            progressed=lambda: None,
            states=states,
            **options,
        )

    async def _flush(self) -> None:
        self.deliver()
        await asyncio.sleep(0)

    def deliver(self) -> None:
        for _ in range(50):
            self.pair.pump()
            moved = False
            for side, events in ((self.bob, self.pair.b_events), (self.alice, self.pair.a_events)):
                while events:
                    moved = True
                    event = events.pop(0)
                    if not isinstance(event, MessageReceived):
                        continue
                    message = event.message
                    if isinstance(message, FileOffer | FileChunk):
                        side.on_data(message)
                    elif isinstance(message, FileAck):
                        side.on_ack(message)
                    elif isinstance(message, FileError):
                        side.on_file_error(message)
            if not moved:
                return

    def named(self, side: str, name: str) -> list[dict[str, Any]]:
        return [fields for event, fields in self.events[side] if event == name]

    def sent_to_alice(self) -> list[Any]:
        """Bob's queued messages, as Alice will read them (without handing them to her)."""
        self.pair.pump()
        found = [e.message for e in self.pair.a_events if isinstance(e, MessageReceived)]
        self.pair.a_events.clear()
        return found

    async def settle(self, *, limit: float = 20) -> None:
        """Deliver until Alice's file tasks ended (they hash in threads, wait for acks)."""
        async with asyncio.timeout(limit):
            while self.alice._tasks:
                self.deliver()
                await asyncio.sleep(0.001)
        self.deliver()

    def close(self) -> None:
        for store in self.stores:
            store.close()

    @property
    def downloads(self) -> Path:
        return self.tmp / "b-downloads"


def _offer(number: int, *, size: int = 10, name: str | None = None) -> FileOffer:
    return FileOffer(
        file_id=number.to_bytes(16, "big"),
        name=name or f"f{number}.bin",
        size=size,
        sha256=hashlib.sha256(b"").digest() if size == 0 else bytes(32),
        chunk_size=CHUNK_SIZE,
    )


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(".didlink-*.part")) if folder.exists() else []


@pytest.fixture(autouse=True)
def _fresh_peer_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-peer offer rates are process-wide: each test starts with full buckets."""
    monkeypatch.setattr(file_limits, "_PEER_BUCKETS", {})


class _Usage(NamedTuple):
    total: int
    used: int
    free: int


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """A fake disk for `shutil.disk_usage`: `free` bytes minus what the test's folders hold."""
    state = {"free": 100 * MB}
    watched: list[Path] = []

    def usage(path: Any) -> _Usage:
        folder = Path(path)
        watched.append(folder)
        held = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        free = max(0, state["free"] - held)
        return _Usage(10**12, 10**12 - free, free)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    yield state


# -- free space: one account for every file in progress ------------------------------------


async def test_parallel_offers_are_checked_together_against_the_free_space(
    tmp_path: Path, disk: dict[str, int]
) -> None:
    """Eight 12 MiB offers, each fitting alone on a 100 MB disk with 64 MiB kept free: only as
    many as fit together (two) are taken; the rest are refused and the peer is told."""
    pair = Pair(tmp_path)
    for number in range(8):
        pair.bob.on_data(_offer(number, size=12 * MIB))
    parts = _parts(pair.downloads)
    assert len(parts) == 2
    errors = pair.named("b", "error")
    assert len(errors) == 6 and all("do not fit on the disk" in e["message"] for e in errors)
    answers = pair.sent_to_alice()
    refusals = [m for m in answers if isinstance(m, FileError)]
    assert len(refusals) == 6 and {m.code for m in refusals} == {"failed"}
    assert all(m.reason == "no room for it on the disk" for m in refusals)
    assert [m.next_offset for m in answers if isinstance(m, FileAck)] == [0, 0]


async def test_a_file_that_ended_gives_its_reservation_back(
    tmp_path: Path, disk: dict[str, int]
) -> None:
    disk["free"] = 64 * MIB + 3 * CHUNK_SIZE + 10
    pair = Pair(tmp_path)
    data = os.urandom(3 * CHUNK_SIZE)
    (tmp_path / "one.bin").write_bytes(data)
    (tmp_path / "two.bin").write_bytes(data)
    pair.alice.send(OutgoingFile(tmp_path / "one.bin"))
    await pair.settle()
    (pair.downloads / "one.bin").unlink()  # the user moved it away: the space is free again
    pair.alice.send(OutgoingFile(tmp_path / "two.bin"))
    await pair.settle()
    assert [f["name"] for f in pair.named("b", "file")] == ["one.bin", "two.bin"]
    assert not pair.named("b", "error")


async def test_free_space_is_checked_again_while_writing(tmp_path: Path) -> None:
    """Another program fills the disk during the transfer: only this file fails, clearly, its
    part file is deleted, the sender is told, and the session goes on."""
    free = {"bytes": 100 * MB}
    space = DiskSpace(tmp_path / "b-downloads", free=lambda _: free["bytes"], recheck=CHUNK_SIZE)
    pair = Pair(tmp_path, space=space)
    data = os.urandom(6 * CHUNK_SIZE)
    (tmp_path / "big.bin").write_bytes(data)
    pair.bob.on_data(
        FileOffer(
            file_id=bytes(16),
            name="big.bin",
            size=len(data),
            sha256=hashlib.sha256(data).digest(),
            chunk_size=CHUNK_SIZE,
        )
    )
    pair.bob.on_data(FileChunk(file_id=bytes(16), offset=0, data=data[:CHUNK_SIZE]))
    free["bytes"] = 64 * MIB + CHUNK_SIZE  # the disk fills up
    second = data[CHUNK_SIZE : 2 * CHUNK_SIZE]
    pair.bob.on_data(FileChunk(file_id=bytes(16), offset=CHUNK_SIZE, data=second))
    [error] = pair.named("b", "error")
    assert "the disk is filling up" in error["message"] and "big.bin" in error["message"]
    assert _parts(pair.downloads) == [] and space.reserved == 0
    [told] = [m for m in pair.sent_to_alice() if isinstance(m, FileError)]
    assert told.code == "failed" and told.reason == "no more room on the disk"
    free["bytes"] = 100 * MB  # later files are received again
    small = os.urandom(100)
    (tmp_path / "small.bin").write_bytes(small)
    pair.alice.send(OutgoingFile(tmp_path / "small.bin"))
    await pair.settle()
    assert (pair.downloads / "small.bin").read_bytes() == small


# -- every offer counts -------------------------------------------------------------------


async def test_a_flood_of_zero_byte_files_is_rate_limited(
    tmp_path: Path, disk: dict[str, int]
) -> None:
    """3,000 empty files at once: at most the session's burst is taken (and written to the
    table); every other offer is refused with a FileError and an event; nothing crashes."""
    pair = Pair(tmp_path, stored=True, rate=None)  # the real limits (a fresh peer bucket)
    for number in range(3000):
        pair.bob.on_data(_offer(number, size=0))
    saved = pair.named("b", "file")
    assert 0 < len(saved) <= 64
    refused = [e for e in pair.named("b", "error") if "too fast" in e["message"]]
    assert len(saved) + len(refused) == 3000
    rows = pair.stores[1].connection.execute("SELECT count(*) FROM transfers").fetchone()[0]
    assert rows == len(saved)
    errors = [m for m in pair.sent_to_alice() if isinstance(m, FileError)]
    assert len(errors) == len(refused) and errors[0].reason == "too many offers"
    pair.close()


def test_offer_rate_per_session_and_per_peer() -> None:
    now = [0.0]
    peer = TokenBucket(5, 1.0)
    first = OfferRate("did:key:x", session=TokenBucket(3, 0.5), peer=peer, clock=lambda: now[0])
    assert [first.allow() for _ in range(4)] == [True, True, True, False]
    now[0] = 2.0  # one more session token; the peer's bucket had 1 left, gained 2
    assert first.allow() and not first.allow()  # a refused offer counts for the peer too
    second = OfferRate("did:key:x", session=TokenBucket(10, 1.0), peer=peer, clock=lambda: now[0])
    assert [second.allow() for _ in range(3)] == [True, False, False]  # the peer's last one


async def test_zero_byte_files_count_against_the_files_in_progress_when_asked(
    tmp_path: Path,
) -> None:
    pair = Pair(tmp_path, policy=FilePolicy.ASK)
    for number in range(MAX_INCOMING_FILES + 2):
        pair.bob.on_data(_offer(number, size=0))
    assert len(pair.named("b", "file_offer")) == MAX_INCOMING_FILES
    assert not pair.named("b", "file")  # nothing saved without consent
    assert len(pair.named("b", "error")) == 2


# -- names --------------------------------------------------------------------------------


async def test_a_255_byte_name_received_twice_is_saved_twice(tmp_path: Path) -> None:
    name = "é" * 124 + "xx.data"  # 248 + 7 = 255 bytes of UTF-8: NAME_MAX
    assert len(name.encode()) == 255
    pair = Pair(tmp_path)
    source = tmp_path / "src"
    source.mkdir()
    (source / name).write_bytes(b"first")
    pair.alice.send(OutgoingFile(source / name))
    await pair.settle()
    (source / name).write_bytes(b"second")
    pair.alice.send(OutgoingFile(source / name))
    await pair.settle()
    first, second = pair.named("b", "file")
    kept, saved = Path(first["path"]), Path(second["path"])
    assert kept.name == name and kept.read_bytes() == b"first"  # noqa: ASYNC240 - a test
    assert saved.read_bytes() == b"second"  # noqa: ASYNC240 - a test
    assert saved.parent == pair.downloads
    assert len(saved.name.encode()) <= 255 and saved.name.endswith(" (1).data")
    assert not pair.named("b", "error") and _parts(pair.downloads) == []
    assert len(pair.named("a", "file_sent")) == 2


def test_collision_names_fit_name_max(tmp_path: Path) -> None:
    assert fitted_name("a.txt", number=2) == "a (2).txt"
    long_stem = "ü" * 200 + ".tar.gz"  # 407 bytes: the stem is cut on a character boundary
    cut = fitted_name(long_stem, number=12, limit=255)
    assert len(cut.encode()) <= 255 and cut.endswith(" (12).gz") and cut.startswith("ü")
    cut.encode().decode()  # whole characters only
    all_suffix = "a." + "s" * 260  # a suffix longer than the limit is cut like a stem
    assert len(fitted_name(all_suffix, number=1, limit=255).encode()) <= 255
    assert len(fitted_name("x" * 300, limit=100).encode()) == 100
    assert fitted_name("..." + "." * 10, number=1, limit=4) not in ("", ".", "..")
    (tmp_path / ("n" * 255)).write_bytes(b"")
    assert len(unique_path(tmp_path, "n" * 255).name) == 255
    assert unique_path(tmp_path, "n" * 255).name.endswith(" (1)")


# -- OS errors fail the file, not the session ---------------------------------------------


async def test_an_oserror_when_saving_fails_that_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = Pair(tmp_path, stored=True)
    (tmp_path / "x.bin").write_bytes(b"payload")

    def broken(*_: Any, **__: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files.os, "link", broken)
    monkeypatch.setattr(files.os, "replace", broken)
    pair.alice.send(OutgoingFile(tmp_path / "x.bin"))
    await pair.settle()
    [error] = pair.named("b", "error")
    assert "cannot save x.bin" in error["message"] and "Input/output error" in error["message"]
    assert not pair.named("b", "file") and list(pair.downloads.iterdir()) == []
    rows = pair.stores[1].connection.execute("SELECT count(*) FROM transfers").fetchone()[0]
    assert rows == 0  # nothing to resume: the sender was told and forgot it too
    [told] = pair.named("a", "error")
    assert "x.bin was not received by the peer" in told["message"]
    assert not pair.alice.pending
    assert pair.stores[0].connection.execute("SELECT count(*) FROM transfers").fetchone()[0] == 0
    monkeypatch.undo()
    pair.alice.send(OutgoingFile(tmp_path / "x.bin"))  # the session goes on
    await pair.settle()
    assert [f["name"] for f in pair.named("b", "file")] == ["x.bin"]
    pair.close()


class _FailingWrites:
    """A part file whose writes fail (ENOSPC), as a full disk would make them."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def write(self, _data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


async def test_an_oserror_when_writing_fails_that_file_and_tells_the_sender(
    tmp_path: Path,
) -> None:
    pair = Pair(tmp_path)
    pair.bob.on_data(_offer(1, size=100))
    incoming = pair.bob._incoming[(1).to_bytes(16, "big")]
    assert isinstance(incoming, IncomingFile)
    incoming._handle = _FailingWrites(incoming._handle)  # type: ignore[assignment]
    pair.bob.on_data(FileChunk(file_id=(1).to_bytes(16, "big"), offset=0, data=b"x" * 10))
    [error] = pair.named("b", "error")
    assert "No space left on device" in error["message"]
    assert _parts(pair.downloads) == []
    told = [m for m in pair.sent_to_alice() if isinstance(m, FileError)]
    assert [(m.code, m.reason) for m in told] == [("failed", "the receiver could not take it")]


async def test_an_oserror_when_creating_the_part_file_is_a_file_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = Pair(tmp_path)
    real_open = os.open

    def failing_open(path: Any, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(".part"):
            raise OSError(errno.ENAMETOOLONG, "File name too long")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(files.os, "open", failing_open)
    pair.bob.on_data(_offer(1))
    [error] = pair.named("b", "error")
    assert "File name too long" in error["message"]
    assert [m.code for m in pair.sent_to_alice() if isinstance(m, FileError)] == ["failed"]


# -- partial files kept for resume: budget and age ----------------------------------------


async def _leave_partials(tmp_path: Path, numbers: range) -> Pair:
    """A session in which Alice offered Bob these files and sent 5 bytes of each, then ended."""
    pair = Pair(tmp_path, stored=True)
    for number in numbers:
        pair.bob.on_data(_offer(number))
        pair.bob.on_data(FileChunk(file_id=number.to_bytes(16, "big"), offset=0, data=b"12345"))
    await pair.bob.stop()
    pair.close()
    return pair


def _in_rows(tmp_path: Path) -> list[bytes]:
    with sqlite3.connect(tmp_path / "b.sqlite3") as db:
        rows = db.execute("SELECT file_id FROM transfers WHERE direction = 'in'").fetchall()
    return sorted(bytes(row[0]) for row in rows)


async def test_partial_files_kept_per_peer_are_bounded_in_number(tmp_path: Path) -> None:
    await _leave_partials(tmp_path, range(0, 8))
    await _leave_partials(tmp_path, range(8, 16))  # eight more: the older eight go
    kept = [number.to_bytes(16, "big") for number in range(8, 16)]
    assert _in_rows(tmp_path) == kept
    assert [p.name for p in _parts(tmp_path / "b-downloads")] == sorted(
        f".didlink-{file_id.hex()}.part" for file_id in kept
    )


async def test_partial_files_kept_per_peer_are_bounded_in_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfers, "MAX_PARTIAL_BYTES_PER_PEER", 12)
    await _leave_partials(tmp_path, range(0, 4))  # 4 x 5 bytes: only two fit in 12
    assert len(_in_rows(tmp_path)) == 2 and len(_parts(tmp_path / "b-downloads")) == 2


async def test_old_partial_files_and_their_rows_are_deleted_at_session_start(
    tmp_path: Path,
) -> None:
    await _leave_partials(tmp_path, range(0, 3))
    downloads = tmp_path / "b-downloads"
    orphan = downloads / f".didlink-{'ab' * 16}.part"  # no row: a crash, or no store
    orphan.write_bytes(b"left")
    old = (datetime.now(UTC) - timedelta(days=30)).timestamp()
    os.utime(orphan, (old, old))
    recent_orphan = downloads / f".didlink-{'cd' * 16}.part"
    recent_orphan.write_bytes(b"maybe another process's")
    recent = (datetime.now(UTC) + timedelta(days=5)).timestamp()  # 3 days old on day 8
    os.utime(recent_orphan, (recent, recent))
    later = Pair(tmp_path, stored=True, now=lambda: datetime.now(UTC) + timedelta(days=8))
    later.bob.start()
    assert _in_rows(tmp_path) == [] and _parts(downloads) == [recent_orphan]
    later.close()
    kept = Pair(tmp_path, stored=True)  # within the age limit nothing goes
    kept.bob.start()
    assert _parts(downloads) == [recent_orphan]
    kept.close()


async def test_rows_of_saved_files_are_bounded_per_peer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfers, "MAX_SAVED_ROWS_PER_PEER", 5)
    pair = Pair(tmp_path, stored=True)
    for number in range(20):
        pair.bob.on_data(_offer(number, size=0))
    assert len(pair.named("b", "file")) == 20
    await pair.bob.stop()
    pair.close()
    assert len(_in_rows(tmp_path)) == 5


# -- --files ask / refuse -------------------------------------------------------------------


async def test_ask_waits_for_the_user_and_refusal_reaches_the_sender(tmp_path: Path) -> None:
    asked: list[bool] = []
    pair = Pair(tmp_path, policy=FilePolicy.ASK, asking=asked.append)
    data = os.urandom(2 * CHUNK_SIZE + 1)
    (tmp_path / "photo.jpg").write_bytes(data)
    (tmp_path / "big.bin").write_bytes(data)
    pair.alice.send(OutgoingFile(tmp_path / "photo.jpg"))
    for _ in range(100):
        pair.deliver()
        await asyncio.sleep(0.001)
        if pair.named("b", "file_offer"):
            break
    [offer] = pair.named("b", "file_offer")
    assert offer["name"] == "photo.jpg" and offer["size"] == len(data)
    assert offer["from"] == ALICE_KEY.did and offer["sha256"] == hashlib.sha256(data).hexdigest()
    assert asked == [True] and _parts(pair.downloads) == []  # nothing written before consent
    assert pair.bob.answer("00" * 16, accept=True) is not None  # not a question asked
    assert pair.bob.answer(offer["id"], accept=False) is None
    await pair.settle()
    [refused] = pair.named("a", "file_refused")
    assert refused["name"] == "photo.jpg" and refused["by"] == "peer"
    assert refused["from"] == BOB_KEY.did
    assert pair.named("b", "file_refused")[0]["by"] == "us"
    assert not pair.alice.pending and asked == [True, False]
    pair.alice.send(OutgoingFile(tmp_path / "big.bin"))
    for _ in range(100):
        pair.deliver()
        await asyncio.sleep(0.001)
        if len(pair.named("b", "file_offer")) == 2:
            break
    assert pair.bob.answer(None, accept=True) is None  # the oldest question
    await pair.settle()
    [got] = pair.named("b", "file")
    assert Path(got["path"]).read_bytes() == data  # noqa: ASYNC240 - a test
    assert pair.named("a", "file_sent")[0]["name"] == "big.bin"


async def test_refuse_refuses_every_file_and_says_so(tmp_path: Path) -> None:
    pair = Pair(tmp_path, policy=FilePolicy.REFUSE)
    (tmp_path / "a.txt").write_bytes(b"a")
    pair.alice.send(OutgoingFile(tmp_path / "a.txt"))
    await pair.settle()
    assert [e["name"] for e in pair.named("a", "file_refused")] == ["a.txt"]
    assert [e["by"] for e in pair.named("b", "file_refused")] == ["us"]
    assert not pair.downloads.exists() or list(pair.downloads.iterdir()) == []


async def test_a_chunk_before_the_file_was_accepted_fails_it(tmp_path: Path) -> None:
    pair = Pair(tmp_path, policy=FilePolicy.ASK)
    pair.bob.on_data(_offer(3))
    pair.bob.on_data(FileChunk(file_id=(3).to_bytes(16, "big"), offset=0, data=b"x"))
    assert "before it was accepted" in pair.named("b", "error")[0]["message"]
    assert pair.bob.answer(None, accept=True) is not None  # the question is gone


async def test_ended_offers_are_remembered_within_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer offering without end does not grow what the session remembers without end."""
    monkeypatch.setattr(transfers, "MAX_ENDED_REMEMBERED", 10)
    many = TokenBucket(10_000, 1.0)
    pair = Pair(tmp_path, policy=FilePolicy.REFUSE, rate=OfferRate("x", session=many, peer=many))
    for number in range(100):
        pair.bob.on_data(_offer(number, size=0))
    assert len(pair.named("b", "file_refused")) == 100
    assert len(pair.bob._incoming) <= 10 and len(pair.bob._offered) <= 10
    pair.bob.on_data(FileChunk(file_id=(99).to_bytes(16, "big"), offset=0, data=b"x"))
    assert not pair.named("b", "error")  # a late chunk of a recent one is still ignored


def test_the_file_error_frame_is_strict() -> None:
    good = FileError(file_id=bytes(16), code="refused", reason="no")
    assert decode_frame(encode_frame([Envelope(3, good)])) == [Envelope(3, good)]
    body = {"seq": 0, "type": "file_error", "file_id": bytes(16), "code": "maybe", "reason": ""}
    with pytest.raises(FrameError):
        decode_frame(canonical.encode([body]))
    with pytest.raises(FrameError):
        decode_frame(canonical.encode([{**body, "code": "failed", "reason": "x" * 1025}]))
    with pytest.raises(FrameError):
        decode_frame(canonical.encode([{k: v for k, v in body.items() if k != "reason"}]))


async def test_line_mode_answers_the_file_question_through_the_node(tmp_path: Path) -> None:
    """`--files ask` without --jsonl: while a question waits, a typed line is its answer."""
    sink = RecordingSink("bob")
    node = Node(
        key=BOB_KEY,
        profile=Profile(tmp_path / "p"),
        sink=sink,
        timeouts=Timeouts(),
        files=FilePolicy.ASK,
    )
    pair = Pair(tmp_path)
    node._transfers = Transfers(
        channel=pair.pair.b,
        downloads=tmp_path / "node-downloads",
        peer_did=ALICE_KEY.did,
        emit=sink.emit,
        flush=pair._flush,
        kick=lambda: None,
        progressed=lambda: None,
        policy=FilePolicy.ASK,
        asking=node._asking_files,
    )
    node._transfers.on_data(_offer(1, size=0))
    node._transfers.on_data(_offer(2, size=0))
    assert node.expecting is Expecting.FILE
    command = human_command("y", node.expecting)
    assert command is not None
    node.handle(command)
    assert [f["name"] for f in sink.of("file")] == ["f1.bin"]
    assert node.expecting is Expecting.FILE  # the second question
    node.handle(RefuseFile((2).to_bytes(16, "big").hex()))
    assert [f["name"] for f in sink.of("file_refused")] == ["f2.bin"]
    assert node.expecting is Expecting.CHAT
    node.handle(AcceptFile())
    assert sink.of("error")[-1]["message"] == "no file offer is waiting for an answer"


async def test_an_oserror_while_reading_a_file_we_send_is_an_error_event(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    (tmp_path / "usb.bin").write_bytes(os.urandom(3 * CHUNK_SIZE))
    outgoing = OutgoingFile(tmp_path / "usb.bin")

    class Unplugged:
        def read(self, _size: int = -1) -> bytes:
            raise OSError(errno.EIO, "Input/output error")

        def seek(self, _offset: int) -> None:
            pass

        def close(self) -> None:
            pass

    outgoing._handle = Unplugged()  # type: ignore[assignment]
    pair.alice.send(outgoing)
    await pair.settle()
    [error] = pair.named("a", "error")
    assert "cannot read" in error["message"] and "Input/output error" in error["message"]
    assert not pair.alice.pending
