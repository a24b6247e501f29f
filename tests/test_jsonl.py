"""The --jsonl command parser, the typed-line mode and the event encoding (specs/cli-jsonl.md)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import select

import pytest
from hypothesis import given
from hypothesis import strategies as st

from didlink.jsonl import (
    LINES_PER_TURN,
    AcceptFile,
    BadCommand,
    ConfirmSas,
    Expecting,
    HumanSink,
    JsonlSink,
    LineReader,
    Quit,
    RefuseFile,
    RejectSas,
    SendFile,
    SendText,
    SubmitResponse,
    event_line,
    held,
    human_command,
    parse_command,
)
from didlink.words.display import is_unsafe, json_safe
from messaging.frames import Envelope, SasConfirm, decode_frame, encode_frame
from tests.support.hostile_text import HOSTILE_TEXTS, assert_display_safe


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ('{"cmd":"response","token":"didlink:abc"}', SubmitResponse("didlink:abc")),
        ('{"cmd":"confirm_sas"}', ConfirmSas()),
        ('{"cmd":"reject_sas"}', RejectSas()),
        ('{"cmd":"send","text":"hi"}', SendText("hi")),
        ('{"cmd":"send","text":"hi","ref":{"n":1}}', SendText("hi", {"n": 1})),
        ('{"cmd":"send_file","path":"/tmp/x"}', SendFile("/tmp/x")),
        ('  {"cmd": "quit"}  ', Quit()),
        ('{"text":"é 🙂","cmd":"send"}', SendText("é 🙂")),
        ('{"cmd":"accept_file","id":"ab"}', AcceptFile("ab")),
        ('{"cmd":"refuse_file","id":"cd"}', RefuseFile("cd")),
    ],
)
def test_parse_command(line: str, command: object) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("", "JSON"),
        ("{not json", "JSON"),
        ("[]", "object"),
        ('"quit"', "object"),
        ("{}", '"cmd"'),
        ('{"cmd":1}', '"cmd"'),
        ('{"cmd":"dance"}', "unknown command"),
        ('{"cmd":"send"}', '"text"'),
        ('{"cmd":"send","text":""}', '"text"'),
        ('{"cmd":"send","text":5}', '"text"'),
        ('{"cmd":"send","text":"x","to":"bob"}', "unknown fields: to"),
        ('{"cmd":"quit","now":true}', "unknown fields"),
        ('{"cmd":"response"}', '"token"'),
        ('{"cmd":"send_file","path":null}', '"path"'),
        ('{"cmd":"accept_file"}', '"id"'),
        ('{"cmd":"refuse_file","id":"ab","why":"x"}', "unknown fields: why"),
        ('{"cmd":"send","text":"' + "x" * (1 << 20) + '"}', "at most"),
    ],
)
def test_parse_command_refuses(line: str, needle: str) -> None:
    with pytest.raises(BadCommand) as info:
        parse_command(line)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("line", "expecting", "command"),
    [
        ("", Expecting.CHAT, None),
        ("   ", Expecting.SAS, None),
        ("/quit", Expecting.SAS, Quit()),
        ("didlink:abc\n", Expecting.RESPONSE, SubmitResponse("didlink:abc")),
        ("y", Expecting.SAS, ConfirmSas()),
        ("YES", Expecting.SAS, ConfirmSas()),
        ("n", Expecting.SAS, RejectSas()),
        ("maybe", Expecting.SAS, RejectSas()),  # anything but yes is a no (y/N)
        ("  hello there ", Expecting.CHAT, SendText("  hello there ")),
        ("y", Expecting.FILE, AcceptFile()),  # --files ask: the oldest question asked
        ("Yes", Expecting.FILE, AcceptFile()),
        ("no", Expecting.FILE, RefuseFile()),
        ("", Expecting.FILE, None),
        ("/quit", Expecting.FILE, Quit()),
    ],
)
def test_human_command(line: str, expecting: Expecting, command: object) -> None:
    assert human_command(line, expecting) == command


def test_event_lines_are_one_json_object_with_event_first() -> None:
    out = io.StringIO()
    sink = JsonlSink(out=out, err=io.StringIO())
    sink.emit("message", **{"from": "did:key:z6Mk"}, id=3, text="a\nb 🙂")
    sink.emit("closed", reason="quit")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith('{"event":"message",')
    assert lines[0] == '{"event":"message","from":"did:key:z6Mk","id":3,"text":"a\\nb 🙂"}'
    assert json.loads(lines[0]) == {
        "event": "message",
        "from": "did:key:z6Mk",
        "id": 3,
        "text": "a\nb 🙂",
    }
    assert event_line("closed", reason="quit") == '{"event":"closed","reason":"quit"}'


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(st.text(min_size=1), st.dictionaries(st.text().filter(lambda k: k != "event"), _JSON))
def test_an_event_line_is_the_compact_json_of_its_fields(
    event: str, fields: dict[str, object]
) -> None:
    """One line, "event" first, then the fields in order; non-ASCII text kept as it is, but
    for the characters a terminal could act on, \\u-escaped (didlink/words/display.py)."""
    line = event_line(event, **fields)
    assert "\n" not in line
    plain = json.dumps({"event": event, **fields}, ensure_ascii=False, separators=(",", ":"))
    assert line == json_safe(plain)
    assert not any(is_unsafe(ch) for ch in line)
    assert json.loads(line) == {"event": event, **fields}


def test_sas_confirm_frame_known_bytes() -> None:
    """specs/frames.md s.3: {"seq": 3, "type": "sas_confirm"} in a one-envelope frame."""
    expected = bytes.fromhex("81 a2 63 736571 03 64 74797065 6b 7361735f636f6e6669726d")
    assert encode_frame([Envelope(3, SasConfirm())]) == expected
    assert decode_frame(expected) == [Envelope(3, SasConfirm())]


class _Lines:
    """What a LineReader hands over: the lines, and the loop turn of each call."""

    def __init__(self) -> None:
        self.lines: list[str | None] = []
        self.calls: list[list[str | None]] = []
        self.ended = asyncio.Event()

    def __call__(self, lines: list[str | None]) -> None:
        self.calls.append(lines)
        self.lines.extend(lines)
        if lines and lines[-1] is None:
            self.ended.set()


async def _read_all(data: list[bytes], got: _Lines) -> None:
    read_fd, write_fd = os.pipe()
    reader = LineReader(got, read_fd)
    for chunk in data:
        os.write(write_fd, chunk)
    os.close(write_fd)
    try:
        await asyncio.wait_for(got.ended.wait(), 10)
    finally:
        reader.close()
        os.close(read_fd)


async def test_line_reader_splits_lines_and_reports_the_end() -> None:
    got = _Lines()
    await _read_all([b"one\r\ntwo\nthr", "ee \u00e9".encode()], got)
    assert got.lines == ["one", "two", "three \u00e9", None]


async def test_line_reader_hands_over_a_whole_read_in_order() -> None:
    got = _Lines()
    await _read_all([b"".join(b"line %d\n" % i for i in range(LINES_PER_TURN - 1))], got)
    assert got.lines == [f"line {i}" for i in range(LINES_PER_TURN - 1)] + [None]
    assert len(got.calls[0]) == LINES_PER_TURN - 1  # the whole read in one call


async def test_line_reader_lets_the_loop_run_between_slices_of_a_burst() -> None:
    """A long read comes LINES_PER_TURN lines per call, one call per loop turn, so other work of
    the loop (the session's writer, the transport) runs between them; lines keep their order."""
    loop = asyncio.get_running_loop()
    turns = 0
    ticking = True

    def tick() -> None:
        nonlocal turns
        turns += 1
        if ticking:
            loop.call_soon(tick)

    turn_of_call: list[int] = []

    class Counted(_Lines):
        def __call__(self, lines: list[str | None]) -> None:
            turn_of_call.append(turns)
            super().__call__(lines)

    got = Counted()
    tick()
    total = 3 * LINES_PER_TURN + 5
    await _read_all([b"".join(b"%d\n" % i for i in range(total))], got)
    ticking = False
    assert got.lines == [str(i) for i in range(total)] + [None]
    assert max(len(call) for call in got.calls) == LINES_PER_TURN
    assert len(got.calls) >= 4
    full = [turn for turn, call in zip(turn_of_call, got.calls, strict=True) if len(call) > 1]
    assert len(set(full)) == len(full)  # never two slices in one turn


async def test_line_reader_hands_over_nothing_after_close() -> None:
    got = _Lines()
    read_fd, write_fd = os.pipe()
    reader = LineReader(got, read_fd)
    reader.close()
    os.write(write_fd, b"too late\n")
    os.close(write_fd)
    await asyncio.sleep(0.2)
    assert got.lines == []
    os.close(read_fd)


class _Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []

    def write(self, text: str) -> int:
        self.chunks.append(text)
        return super().write(text)


class _CountingOut(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_held_events_are_written_once_in_order_even_after_an_error() -> None:
    out = _CountingOut()
    sink = JsonlSink(out=out)
    sink.emit("sent", id=1)
    assert out.writes == 1
    with pytest.raises(RuntimeError), sink.held():
        sink.emit("message", id=2, text="a")
        with held(sink):  # nested: still one write, at the outer end
            sink.emit("message", id=3, text="b")
        assert out.writes == 1
        raise RuntimeError("the frame was bad")
    assert out.writes == 2
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["event"], e["id"]) for e in events] == [("sent", 1), ("message", 2), ("message", 3)]
    sink.emit("delivered", id=4)  # outside: written at once again
    assert out.writes == 3


def test_held_events_leave_in_whole_lines_of_at_most_pipe_buf_bytes() -> None:
    out = _Writes()
    sink = JsonlSink(out=out)
    with sink.held():
        for i in range(200):
            sink.emit("message", id=i, text="é" * (i % 50))
        sink.emit("message", id=200, text="x" * 10_000)  # longer than PIPE_BUF: alone
    assert 2 < len(out.chunks) < 20  # about 17 KiB of short lines, then the long one alone
    assert out.chunks[-1].count("\n") == 1
    for chunk in out.chunks:
        assert chunk.endswith("\n")
        assert len(chunk.encode()) <= select.PIPE_BUF or chunk.count("\n") == 1
    ids = [json.loads(line)["id"] for line in "".join(out.chunks).splitlines()]
    assert ids == list(range(201))


def test_a_person_sees_each_event_at_once_even_when_held(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = HumanSink()
    with held(sink):
        sink.emit("message", **{"from": "did:key:z6Mk"}, id=2, text="shown now")
        assert "shown now" in capsys.readouterr().out


# Every event exactly as didlink/session/node.py and didlink/session/live.py emit it
# (specs/cli-jsonl.md s.2).
NODE_EVENTS: list[tuple[str, dict[str, object]]] = [
    ("token", {"kind": "invite", "token": "didlink:abc"}),
    ("token", {"kind": "response", "token": "didlink:abc"}),
    ("sas", {"emoji": ["🐶"] * 7, "names": ["Dog"] * 7, "decimal": [1000, 2000, 9191]}),
    ("connected", {"peer": "did:key:z6Mk", "verified": True, "timings_ms": {"open": 5}}),
    (
        "connected",
        {
            "peer": "did:key:z6Mk",
            "verified": True,
            "path": "relay",
            "timings_ms": {"open": 5},
            "suggested_name": "Bob",
        },
    ),
    ("sent", {"id": 2}),
    ("sent", {"id": 2, "ref": "r"}),
    ("delivered", {"id": 2}),
    ("message", {"from": "did:key:z6Mk", "id": 2, "text": "hi"}),
    ("message", {"from": "did:key:z6Mk", "id": 2, "text": "hi", "sent_at": "2026-01-01T00:00:00Z"}),
    (
        "queued",
        {"to": "did:key:z6Mk", "messages": [{"id": "ab" * 16, "text": "hi", "typed_at": "x"}]},
    ),
    ("progress", {"id": "ab" * 16, "bytes": 5, "total": 10, "direction": "out", "name": "a"}),
    ("progress", {"id": "ab" * 16, "bytes": 0, "total": 0, "direction": "in", "name": "b"}),
    ("progress", {"id": "ab" * 16, "bytes": 1, "total": 2}),  # before direction and name
    (
        "file",
        {"from": "d", "id": "ab", "name": "n", "size": 1, "sha256": "00", "path": "/x/n"},
    ),
    ("file_sent", {"id": "ab", "name": "n", "size": 1, "sha256": "00"}),
    (
        "file_offer",
        {"from": "d", "id": "ab", "name": "n", "size": 1, "sha256": "00"},
    ),
    ("file_refused", {"from": "d", "id": "ab", "name": "n", "size": 1, "by": "peer"}),
    ("file_refused", {"from": "d", "id": "ab", "name": "n", "size": 1, "by": "us"}),
    (
        "queued",
        {"to": "d", "messages": [], "files": [{"id": "ab" * 16, "name": "n.pdf", "size": 5}]},
    ),
    (
        "file_unsent",
        {"id": "ab" * 16, "name": "n.pdf", "path": "/x/n.pdf", "size": 5, "reason": "changed"},
    ),
    ("error", {"message": "oops"}),
    ("closed", {"reason": "quit"}),
]


@pytest.mark.parametrize(("event", "fields"), NODE_EVENTS)
def test_human_sink_shows_every_event(
    event: str, fields: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    HumanSink().emit(event, **fields)
    captured = capsys.readouterr()
    assert '"event"' not in captured.out  # worded for people, not the JSON fallback
    if event not in ("sent", "delivered"):
        assert (captured.out + captured.err).strip()


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_line_mode_shows_hostile_texts_without_obeying_them(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The line mode (pipes, TERM=dumb) escapes what a peer controls (issue 26, class 1)."""
    sink = HumanSink()
    sink.emit("connected", peer="did:key:z6Mk" + text, verified=True, timings_ms={})
    sink.emit("message", id=1, text=text, **{"from": "did:key:z6Mk" + text})
    sink.emit("progress", id=text, bytes=1, total=2)
    sink.emit("progress", id="ab", bytes=1, total=2, direction="in", name=text)
    sink.emit("file", id=text, name=text, size=1, sha256="0", path=text)
    sink.emit("file_sent", id=text, name=text, size=1, sha256="0")
    sink.emit("error", message=f"the peer broke the protocol: {text}")
    sink.warn(f"about {text}")
    sink.emit("closed", reason=text)
    out, err = capsys.readouterr()
    assert_display_safe(out)
    assert_display_safe(err)
    json_sink = JsonlSink()
    json_sink.warn(text)
    json_sink.emit("message", id=1, text=text)
    out, err = capsys.readouterr()
    assert_display_safe(err)
    assert json.loads(out)["text"] == text  # exact, and inert on a terminal
    assert not any(is_unsafe(ch) for ch in out.rstrip("\n"))


def test_a_file_offer_is_asked_with_the_peer_controlled_name_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = HumanSink()
    sink.emit("file_offer", id="ab", name="big.bin", size=20_000_000, sha256="00", **{"from": "d"})
    assert capsys.readouterr().out == "Receive file big.bin (20.0 MB) from d? [y/N]\n"
    sink.emit("file_offer", id="ab", name="a\u2028b\u202e.txt", size=1, sha256="0", **{"from": "d"})
    assert "a\\u2028b\\u202e.txt (1 B)" in capsys.readouterr().out
    sink.emit("file_refused", id="ab", name="photo.jpg", size=1, by="peer", **{"from": "Bob"})
    sink.emit("file_refused", id="ab", name="x\x1b[2J", size=1, by="us", **{"from": "Bob"})
    assert capsys.readouterr().out == "Bob refused photo.jpg\nRefused x\\x1b[2J from Bob\n"


@pytest.mark.parametrize(
    ("path", "relay_host", "words"),
    [
        ("host", None, "(verified, direct)"),
        ("srflx", None, "(verified, direct (through your router))"),
        ("prflx", None, "(verified, direct (through your router))"),
        ("relay", "turn.example.org", "(verified, relayed by turn.example.org)"),
        ("relay", None, "(verified, relayed by your TURN server)"),
        (None, None, "(verified)"),
    ],
)
def test_line_mode_says_the_path(
    capsys: pytest.CaptureFixture[str], path: str | None, relay_host: str | None, words: str
) -> None:
    HumanSink(relay_host=relay_host).emit(
        "connected", peer="did:key:z6Mk", verified=True, path=path, timings_ms={}
    )
    assert f"Connected to did:key:z6Mk {words}." in capsys.readouterr().out


def test_line_mode_says_whose_name_a_suggestion_is(capsys: pytest.CaptureFixture[str]) -> None:
    HumanSink().emit(
        "connected", peer="did:key:z6Mk", verified=True, timings_ms={}, suggested_name="B\x1bob"
    )
    out = capsys.readouterr().out
    assert 'They call themselves "B\\x1bob" (only their word for it)' in out
    assert "didlink contacts rename did:key:z6Mk" in out and "\x1b" not in out
