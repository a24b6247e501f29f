"""Files queued for the next live session (didlink/session/queued_files.py,
didlink/session/resume.py rows,
didlink/session/transfers.py `send_queued`), over in-memory channels (tests/test_resume.py's
harness): the checks at queue time, the order, a changed or gone file dropped with `file_unsent`, a
cut transfer of a queued file resumed, the line a person sees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from didlink import FileUnsent, Queued, QueuedFile
from didlink.errors import UserError
from didlink.events import event_from
from didlink.jsonl import HumanSink
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store
from didlink.session.files import CHUNK_SIZE
from didlink.session.queued_files import check_file, queue_file
from didlink.session.resume import TransferStates
from tests.test_resume import ALICE_KEY, BOB_KEY, Session

pytestmark = pytest.mark.timeout(30)


def _states(tmp_path: Path) -> TransferStates:
    """Alice's states in the store the harness's Alice side opens (a.sqlite3)."""
    return TransferStates(Store(tmp_path / "a.sqlite3"), Sealer(ALICE_KEY))


def _same(saved: str, source: Path) -> bool:
    return Path(saved).read_bytes() == source.read_bytes()


def _queue(tmp_path: Path, path: Path) -> str:
    return queue_file(_states(tmp_path), BOB_KEY.did, check_file(path)).id


def test_check_file_refuses_what_cannot_be_sent(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(UserError, match="cannot read"):
        check_file(tmp_path / "missing")
    with pytest.raises(UserError, match="is a folder"):
        check_file(folder)
    with pytest.raises(UserError, match="not a regular file"):
        check_file(Path("/dev/null"))
    huge = tmp_path / "huge.bin"
    with huge.open("wb") as handle:
        handle.truncate(4 * 1024**3 + 1)  # sparse
    with pytest.raises(UserError, match="at most 4294967296 bytes"):
        check_file(huge)


def test_queued_rows_are_sealed_ordered_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for index in range(3):
        path = tmp_path / f"secret-name-{index}.txt"
        path.write_bytes(b"x" * index)
        paths.append(path)
    ids = [_queue(tmp_path, path) for path in paths]
    states = _states(tmp_path)
    queued = states.queued(BOB_KEY.did)
    assert [state.file_id.hex() for state in queued] == ids
    assert [state.path for state in queued] == paths
    assert all(state.queued and state.mtime_ns for state in queued)
    assert states.queued(ALICE_KEY.did) == []
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("a.sqlite3*"))
    assert b"secret-name" not in raw
    monkeypatch.setattr("didlink.session.queued_files.MAX_QUEUED_FILES", 3)
    with pytest.raises(UserError, match="3 files already wait"):
        _queue(tmp_path, paths[0])


async def test_queued_files_leave_in_order_and_leave_the_queue(tmp_path: Path) -> None:
    sources = []
    for index, size in enumerate((3 * CHUNK_SIZE + 5, 10, 0)):
        path = tmp_path / f"f{index}.bin"
        path.write_bytes(os.urandom(size))
        sources.append(path)
    ids = [_queue(tmp_path, path) for path in sources]
    session = Session(tmp_path)
    session.alice.start()
    await session.settle()
    received = session.named("b", "file")
    assert [fields["id"] for fields in received] == ids  # in the order queued
    for fields, source in zip(received, sources, strict=True):
        assert _same(fields["path"], source)
    assert [fields["id"] for fields in session.named("a", "file_sent")] == ids
    assert _states(tmp_path).outgoing(BOB_KEY.did) == []  # acknowledged: gone
    await session.end()


async def test_a_changed_or_gone_file_is_dropped_with_file_unsent(tmp_path: Path) -> None:
    changed, same_size, gone, kept = (tmp_path / n for n in ("c.txt", "s.txt", "g.txt", "k.txt"))
    for path in (changed, same_size, gone, kept):
        path.write_bytes(b"original")
    ids = [_queue(tmp_path, path) for path in (changed, same_size, gone, kept)]
    changed.write_bytes(b"original and more")
    same_size.write_bytes(b"ORIGINAL")  # same size: the hash (and time) tell
    gone.unlink()
    session = Session(tmp_path)
    session.alice.start()
    await session.settle()
    unsent = session.named("a", "file_unsent")
    assert [(u["id"], u["reason"]) for u in unsent] == [
        (ids[0], "changed"),
        (ids[1], "changed"),
        (ids[2], "unreadable"),
    ]
    assert unsent[0]["path"] == str(changed) and unsent[0]["size"] == len(b"original")
    assert [fields["id"] for fields in session.named("b", "file")] == [ids[3]]
    assert not session.named("a", "error")
    assert _states(tmp_path).outgoing(BOB_KEY.did) == []
    await session.end()


async def test_a_queued_file_cut_off_resumes_next_time(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(12 * CHUNK_SIZE))
    file_id = _queue(tmp_path, source)
    first = Session(tmp_path, stop_after_rounds=2)  # the offer and its ack, 3 chunks
    first.alice.start()
    await first.settle()
    await first.end()
    assert not first.named("b", "file")
    [state] = _states(tmp_path).outgoing(BOB_KEY.did)
    assert state.file_id.hex() == file_id and not state.queued  # started: resumes as any
    second = Session(tmp_path)
    second.alice.start()
    await second.settle()
    [got] = second.named("b", "file")
    assert got["id"] == file_id and _same(got["path"], source)
    progress = [p["bytes"] for p in second.named("b", "progress")]
    assert not progress or progress[0] > 0  # from the bytes Bob held, not from the start
    await second.end()


async def test_a_file_queued_during_the_session_leaves_after_the_others(tmp_path: Path) -> None:
    early, late = tmp_path / "early.bin", tmp_path / "late.bin"
    early.write_bytes(os.urandom(2 * CHUNK_SIZE))
    late.write_bytes(b"late")
    first_id = _queue(tmp_path, early)
    session = Session(tmp_path)
    session.alice.start()
    late_id = _queue(tmp_path, late)
    session.alice.send_queued()  # what Node.send_queued_files does (Agent.send_file)
    await session.settle()
    assert [f["id"] for f in session.named("b", "file")] == [first_id, late_id]
    await session.end()


def test_the_events_and_the_lines_a_person_sees(capsys: pytest.CaptureFixture[str]) -> None:
    queued = event_from(
        "queued",
        {"to": "d", "messages": [], "files": [{"id": "ab", "name": "n\x1b.pdf", "size": 1500}]},
    )
    assert queued == Queued(peer="d", messages=(), files=(QueuedFile("ab", "n\x1b.pdf", 1500),))
    assert event_from("queued", {"to": "d", "messages": []}) == Queued("d", ())
    fields = {"id": "ab", "name": "n.pdf", "path": "/x/n.pdf", "size": 1, "reason": "changed"}
    assert event_from("file_unsent", fields) == FileUnsent(
        id="ab", name="n.pdf", path=Path("/x/n.pdf"), size=1, reason="changed"
    )
    sink = HumanSink()
    sink.emit(
        "queued", to="d", messages=[], files=[{"id": "ab", "name": "n\x1b.pdf", "size": 1500}]
    )
    sink.emit(
        "queued", to="d", messages=[], files=[{"id": "ab", "name": "n\x1b.pdf", "size": 1500}]
    )
    sink.emit("file_unsent", **fields)
    sink.emit("file_unsent", **{**fields, "reason": "unreadable"})
    out, err = capsys.readouterr()
    assert out.splitlines() == ["\u2026 queued: file n\\x1b.pdf (1.5 kB)"]  # once, escaped
    assert err.splitlines() == [
        "not sent: n.pdf changed since it was queued; it left the queue (send it again to send"
        " it as it is now)",
        "not sent: n.pdf is gone or cannot be read any more; it left the queue (send it again"
        " to send it as it is now)",
    ]


def test_the_chat_screen_shows_queued_files_once_and_unsent_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.test_chat_ui import _screen

    screen = _screen()
    listed = [{"id": "ab" * 16, "name": "plan\x1b[2J.pdf", "size": 2_000_000}]
    screen.emit("queued", to="d", messages=[], files=listed)
    screen.emit("queued", to="d", messages=[], files=listed)
    screen.emit(
        "file_unsent", id="ab" * 16, name="plan.pdf", path="/p", size=1, reason="unreadable"
    )
    out = capsys.readouterr().out
    assert out.count("queued: file plan\\x1b[2J.pdf (2.0 MB)") == 1
    assert "\x1b[2J" not in out
    assert "not sent: plan.pdf is gone or cannot be read any more; it left the queue" in out
