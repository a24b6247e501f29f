"""The chat screen in-process: its wording, and prompt_toolkit input with a message arriving."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.output.vt100 import Vt100_Output

from didlink.chat import screen as chat_ui
from didlink.chat.screen import ChatScreen, human_size, progress_bar, sas_lines, short_did
from didlink.errors import UserError
from didlink.jsonl import (
    AcceptFile,
    Command,
    ConfirmSas,
    Expecting,
    Quit,
    RefuseFile,
    RejectSas,
    SendFile,
    SendText,
    SubmitResponse,
)
from didlink.words.display import is_unsafe
from didlink.words.transfer import TransferInProgress
from tests.support.hostile_text import HOSTILE_TEXTS, assert_display_safe
from tests.test_jsonl import NODE_EVENTS

BOB = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
CAROL = "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf"


def _screen() -> ChatScreen:
    return ChatScreen(
        names=lambda did: "Bob" if did == BOB else None,
        clock=lambda: datetime(2026, 11, 25, 12, 3),  # local wall time
    )


class FakeNode:
    """Records the commands the screen hands over."""

    def __init__(self, expecting: Expecting = Expecting.CHAT) -> None:
        self.expecting = expecting
        self.commands: list[Command] = []
        self.running: list[TransferInProgress] = []  # files being sent or received

    def handle(self, command: Command) -> None:
        self.commands.append(command)

    def transfers_in_progress(self) -> list[TransferInProgress]:
        return list(self.running)


def test_pure_formatting() -> None:
    assert progress_bar(0, 100, width=10) == "[----------]   0%  0 B / 100 B"
    assert progress_bar(37, 100, width=10) == "[####------]  37%  37 B / 100 B"
    assert progress_bar(5_000_000, 5_000_000, width=4) == "[####] 100%  5.0 MB / 5.0 MB"
    assert progress_bar(0, 0, width=2) == "[##] 100%  0 B / 0 B"  # an empty file is complete
    assert human_size(999) == "999 B" and human_size(1000) == "1.0 kB"
    assert human_size(3_000_000_000_000) == "3000.0 GB"
    assert short_did(BOB) == "did:key:z6MkhaXgBZDv...2doK"
    assert short_did("did:key:z6Mkshort") == "did:key:z6Mkshort"
    lines = sas_lines(list("ABCDEFG"), [f"n{i}" for i in range(7)], [1000, 2345, 9191])
    assert lines[1] == "    A n0   B n1   C n2   D n3"
    assert lines[2] == "    E n4   F n5   G n6"
    assert lines[3] == "    numbers: 1000  2345  9191"
    with pytest.raises(ValueError):
        sas_lines(["A"], [], [1])


def test_events_worded_for_a_person(capsys: pytest.CaptureFixture[str]) -> None:
    screen = _screen()
    screen._node = node = FakeNode()
    node.running = [TransferInProgress("in", "a.txt", 50, 200, "ab" * 16)]
    assert screen.prompt_text() == "didlink> "
    screen.emit("connected", peer=BOB, verified=True, timings_ms={})
    assert screen.prompt_text() == "Bob> "
    screen.emit("message", **{"from": BOB}, id="aa", text="hi Alice")
    assert screen.command_for("hello Bob", Expecting.CHAT) == SendText("hello Bob", ref=1)
    screen.emit("sent", id="m1", ref=1)
    screen.emit("sent", id="m2")  # not typed here (e.g. resent from the outbox): not echoed
    screen.emit("delivered", id="m1")
    screen.emit("delivered", id="m1")  # once only
    screen.emit("message", **{"from": CAROL}, id=3, text="who?")
    screen.emit("progress", id="ab" * 16, bytes=50, total=200, direction="in", name="a.txt")
    assert screen.toolbar().startswith("receiving a.txt [######------------------]  25%")
    screen.emit(
        "file", **{"from": BOB}, id="ab" * 16, name="a.txt", size=1500, sha256="0", path="/d"
    )
    assert screen.toolbar() == chat_ui.TOOLBAR_HINT
    screen.emit("file_sent", id="cd" * 16, name="b.bin", size=2_000_000, sha256="0")
    screen.emit("error", message="something broke")
    screen.emit("closed", reason="quit")
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"Connected to Bob ({BOB}), SAS verified.",
        "Type a message, /send PATH, /help or /quit.",
        "[12:03] Bob: hi Alice",
        "[12:03] you \u2713: hello Bob",
        "        \u2713\u2713 delivered: hello Bob",
        "[12:03] did:key:z6MknGc3ocHs...Sdxf: who?",
        "[12:03] Bob sent you a.txt (1.5 kB, SHA-256 checked): /d",
        "[12:03] \u2713 b.bin (2.0 MB) arrived, SHA-256 checked.",
        "Session closed: you left the chat.",
    ]
    assert err == "error: something broke\n"
    relayed = ChatScreen(
        names=lambda did: "Bob" if did == BOB else None, relay_host="turn.example.org"
    )
    relayed.emit("connected", peer=BOB, verified=True, path="relay", timings_ms={})
    direct = _screen()
    direct.emit("connected", peer=BOB, verified=True, path="srflx", timings_ms={})
    out, _ = capsys.readouterr()
    assert f"Connected to Bob ({BOB}), SAS verified, relayed by turn.example.org." in out
    assert f"Connected to Bob ({BOB}), SAS verified, direct (through your router)." in out
    unnamed = ChatScreen(names=lambda did: None)
    unnamed.emit("connected", peer=CAROL, verified=True, timings_ms={})
    assert unnamed.prompt_text() == "did:key:z6MknGc3ocHs...Sdxf> "
    assert f"didlink contacts rename {CAROL} NAME" in capsys.readouterr().out


def test_a_name_the_peer_gave_itself_is_shown_unconfirmed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`~Carol` until adopted (specs/chat-ui.md 2c): prompt, lines, endings, and the hint to
    save it after `connected` and again at the end; our own name for a peer always wins."""
    screen = ChatScreen(names=lambda did: None, clock=lambda: datetime(2026, 11, 25, 12, 3))
    screen._node = FakeNode()
    screen.emit("connected", peer=CAROL, verified=True, timings_ms={}, suggested_name="Carol")
    assert screen.prompt_text() == "~Carol> "
    screen.emit("message", **{"from": CAROL}, id="aa", text="hi")
    screen.emit("file_refused", **{"from": CAROL}, id="bb", name="x.bin", size=1, by="peer")
    screen.emit("closed", reason="peer closed")
    out = capsys.readouterr().out.splitlines()
    hint = (
        'They call themselves "Carol" (~Carol until you save it as your name for them).'
        f" Save it: /name here, or didlink contacts rename {CAROL}"
    )
    assert out[:4] == [
        f"Connected to ~Carol ({CAROL}), SAS verified.",
        hint,
        "Type a message, /send PATH, /help or /quit.",
        "[12:03] ~Carol: hi",
    ]
    assert "~Carol refused x.bin" in out[4]
    assert out[5:] == ["Session closed: ~Carol left the chat.", hint]
    assert not any("did:key:z6MknGc3ocHs..." in line for line in out)
    # Named by the user: the name, no tilde, no hint; a hostile suggestion is shown escaped.
    named = ChatScreen(names=lambda did: "Bob")
    named.emit("connected", peer=BOB, verified=True, timings_ms={}, suggested_name="Robert")
    assert named.prompt_text() == "Bob> "
    assert "Save it" not in capsys.readouterr().out
    odd = ChatScreen(names=lambda did: None)
    odd.emit("connected", peer=BOB, verified=True, timings_ms={}, suggested_name="B\x1b[2Job")
    assert odd.prompt_text() == "~B\\x1b[2Job> "
    assert "\x1b" not in capsys.readouterr().out


def test_name_saves_the_suggestion_or_a_name_of_our_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    saved: list[tuple[str, str | None]] = []

    def save(did: str, name: str | None) -> str:
        if name == "Alice":
            raise UserError("the name 'Alice' is already used by another contact")
        saved.append((did, name))
        return name or "Carol"

    screen = ChatScreen(names=lambda did: None, save_name=save)
    screen._node = FakeNode()
    assert screen.command_for("/name", Expecting.CHAT) is None
    assert "once you are connected" in capsys.readouterr().out
    screen.emit("connected", peer=CAROL, verified=True, timings_ms={}, suggested_name="Carol")
    assert screen.command_for("/name Alice", Expecting.CHAT) is None  # refused: stays ~Carol
    assert "Not saved: the name 'Alice' is already used" in capsys.readouterr().out
    assert screen.prompt_text() == "~Carol> "
    assert screen.command_for("/name", Expecting.CHAT) is None
    assert saved == [(CAROL, None)]
    assert screen.prompt_text() == "Carol> "
    assert f'Saved: "Carol" is your name for {CAROL}.' in capsys.readouterr().out
    assert screen.command_for("/name  Caz ", Expecting.CHAT) is None
    assert saved[-1] == (CAROL, "Caz") and screen.prompt_text() == "Caz> "
    capsys.readouterr()
    screen.emit("closed", reason="peer closed")  # named now: no hint at the end
    assert capsys.readouterr().out.splitlines() == ["Session closed: Caz left the chat."]
    nothing = ChatScreen(names=lambda did: None, save_name=save)
    nothing.emit("connected", peer=BOB, verified=True, timings_ms={})
    assert nothing.command_for("/name", Expecting.CHAT) is None
    assert "They suggest no name: give one, /name NAME" in capsys.readouterr().out


def test_sas_and_token_screens(capsys: pytest.CaptureFixture[str]) -> None:
    screen = _screen()
    node = FakeNode(Expecting.RESPONSE)
    screen._node = node
    assert screen.prompt_text() == "Paste the response token: "
    screen.emit("token", kind="invite", token="didlink:abc")
    node.expecting = Expecting.SAS
    assert screen.prompt_text() == "Do they match? [y/N] "
    screen.emit("sas", emoji=["🐶"] * 7, names=["Dog"] * 7, decimal=[1111, 2222, 3333])
    out = capsys.readouterr().out
    assert "paste the response token they send back" in out
    assert out.index("send back") < out.index("didlink:abc\n")  # the token last
    assert "didlink:abc\n\n" in out  # then the SAS, a blank line apart
    assert "    🐶 Dog   🐶 Dog   🐶 Dog   🐶 Dog\n" in out
    assert "numbers: 1111  2222  3333" in out
    screen.emit("token", kind="response", token="didlink:def")
    assert "Send this response token back" in capsys.readouterr().out
    screen.emit("token", kind="reconnect", token="didlink:ghi")
    assert "Give this reconnect token to your contact" in capsys.readouterr().out


def test_typed_lines_become_commands(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my file.txt").write_bytes(b"12345")
    screen = _screen()
    assert screen.command_for("didlink:xyz", Expecting.RESPONSE) == SubmitResponse("didlink:xyz")
    assert screen.command_for("y", Expecting.SAS) == ConfirmSas()
    assert screen.command_for("", Expecting.SAS) is None
    assert screen.command_for("no", Expecting.SAS) == RejectSas()
    sent = SendFile(str(tmp_path / "my file.txt"))
    assert screen.command_for("/send  my file.txt", Expecting.CHAT) == sent  # as typed: it exists
    assert screen.command_for("/send 'my file.txt' ", Expecting.CHAT) == sent
    assert "sending my file.txt (5 B) ..." in capsys.readouterr().out
    assert screen.command_for("/quit", Expecting.CHAT) == Quit()
    for local in ("/help", "/send", "/sned x"):
        assert screen.command_for(local, Expecting.CHAT) is None
    queued = screen.command_for("early", Expecting.CHAT)  # no peer yet: it waits for the SAS
    assert queued == SendText("early", ref=1)
    out = capsys.readouterr().out
    assert "/send PATH   send a file" in out and "usage: /send PATH" in out
    assert "unknown command /sned: type /help" in out and "(queued:" in out


def test_wanted_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert chat_ui.wanted() is True
    monkeypatch.setenv("TERM", "dumb")
    assert chat_ui.wanted() is False
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr("sys.stdout.isatty", lambda: False, raising=False)
    assert chat_ui.wanted() is False


@pytest.mark.timeout(20)
async def test_half_typed_text_survives_an_incoming_message() -> None:
    screen = _screen()
    node = FakeNode()
    with create_pipe_input() as keys, create_app_session(input=keys, output=DummyOutput()):
        loop = asyncio.get_running_loop()
        typing = loop.create_task(screen.run(node))
        keys.send_text("hel")
        await asyncio.sleep(0.2)
        screen.emit("connected", peer=BOB, verified=True, timings_ms={})
        screen.emit("message", **{"from": BOB}, id="x", text="interrupting!")
        await asyncio.sleep(0.2)
        keys.send_text("lo\r")
        keys.send_text("/quit\r")
        async with asyncio.timeout(10):
            await typing
    assert node.commands == [SendText("hello", ref=1), Quit()]


@pytest.mark.timeout(20)
async def test_end_of_input_quits() -> None:
    node = FakeNode()
    with create_pipe_input() as keys, create_app_session(input=keys, output=DummyOutput()):
        typing = asyncio.get_running_loop().create_task(_screen().run(node))
        keys.send_text("\x04")  # Ctrl-D on an empty line
        async with asyncio.timeout(10):
            await typing
    assert node.commands == [Quit()]


@pytest.mark.parametrize(
    ("reason", "connected", "line"),
    [
        ("quit", False, "Session closed: you quit."),
        ("quit", True, "Session closed: you left the chat."),
        ("peer closed", True, "Session closed: Bob left the chat."),
        ("sas rejected", False, "Session closed: you rejected the SAS."),
        ("sas rejected by peer", False, "Session closed: the other side rejected the SAS."),
        ("connection lost", True, "Session closed: the connection to Bob was lost."),
        ("connection lost", False, "Session closed: the connection to the other side was lost."),
        (
            "connection failed",
            False,
            "Session closed: no connection to the other side could be made.",
        ),
        (
            "no network path",
            False,
            "Session closed: no network path to the other side was found (see the error above).",
        ),
        ("timeout", False, "Session closed: it took too long (see the error above)."),
        (
            "handshake failed",
            False,
            "Session closed: the secure handshake with the other side failed.",
        ),
        ("protocol error", True, "Session closed: Bob broke the protocol."),
        (
            "internal error",
            True,
            "Session closed: an internal error ended it (see the error above).",
        ),
        ("something new", True, "Session closed: something new."),
    ],
)
def test_every_ending_is_one_line_in_words(
    reason: str, connected: bool, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    screen = _screen()
    if connected:
        screen.emit("connected", peer=BOB, verified=True, timings_ms={})
        capsys.readouterr()
    screen.emit("closed", reason=reason)
    assert capsys.readouterr().out.splitlines() == [line]


def test_the_sas_answers_are_acknowledged(capsys: pytest.CaptureFixture[str]) -> None:
    screen = _screen()
    assert screen.command_for("y", Expecting.SAS) == ConfirmSas()
    assert "Waiting for the other side to confirm it too..." in capsys.readouterr().out
    assert screen.command_for("n", Expecting.SAS) == RejectSas()
    assert "You did not confirm the SAS" in capsys.readouterr().out


class _Terminal(io.StringIO):
    """What a prompt_toolkit Vt100 output writes, kept; it says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.timeout(20)
async def test_the_end_of_the_session_takes_the_prompt_away() -> None:
    """`closed` while the prompt waits: its line is written at once, on the terminal itself
    (not through patch_stdout's thread), and the input loop ends without a Quit."""
    terminal = _Terminal()
    output = Vt100_Output(terminal, lambda: Size(rows=24, columns=80), term="xterm")
    screen = ChatScreen(names=lambda did: "Bob", out=terminal, err=terminal)
    node = FakeNode()
    with create_pipe_input() as keys, create_app_session(input=keys, output=output):
        typing = asyncio.get_running_loop().create_task(screen.run(node))
        keys.send_text("half typ")
        await asyncio.sleep(0.3)
        screen.emit("connected", peer=BOB, verified=True, timings_ms={})
        screen.warn("The other side rejected the SAS: this connection may have been intercepted.")
        screen.emit("closed", reason="sas rejected by peer")
        written = terminal.getvalue()  # at once: no task, no thread in between
        assert "WARNING: The other side rejected the SAS" in written
        assert "Session closed: Bob rejected the SAS." in written
        async with asyncio.timeout(10):
            await typing
    assert node.commands == []  # the session ended: nothing to quit, nothing sent


@pytest.mark.parametrize(("event", "fields"), NODE_EVENTS)
def test_every_node_event_has_a_wording(event: str, fields: dict[str, object]) -> None:
    screen = _screen()
    assert hasattr(screen, f"_on_{event}")
    screen.emit(event, **fields)  # no KeyError / TypeError for the fields the node sends


def test_progress_is_labelled_with_its_direction_and_name() -> None:
    """The `progress` event says which way a file goes: a resumed transfer of ours (never
    /sent in this process) is `sending`, whatever its size (issue 27, 8)."""
    screen = _screen()
    screen.emit("progress", id="11" * 16, bytes=10, total=999, direction="in", name="a\x1b.txt")
    screen.emit("progress", id="22" * 16, bytes=617, total=1234, direction="out", name="r.pdf")
    assert screen.toolbar() == (
        "receiving a\\x1b.txt [------------------------]   1%  10 B / 999 B   "
        "sending r.pdf [############------------]  50%  617 B / 1.2 kB"
    )
    screen.emit("file_sent", id="22" * 16, name="r.pdf", size=1234, sha256="0")
    assert screen.toolbar().startswith("receiving a\\x1b.txt [")
    screen.emit("progress", id="33" * 16, bytes=1, total=2)  # an older peer's event: no name
    assert "receiving [" in screen.toolbar()


def test_the_end_of_a_session_names_the_files_not_finished(
    capsys: pytest.CaptureFixture[str],
) -> None:
    screen = _screen()
    screen.emit("connected", peer=BOB, verified=True, timings_ms={})
    screen.emit("progress", id="11" * 16, bytes=5, total=10, direction="in", name="a.bin")
    screen.emit("progress", id="22" * 16, bytes=3, total=3, direction="out", name="b.bin")
    screen.emit("file_sent", id="22" * 16, name="b.bin", size=3, sha256="0")  # this one did
    capsys.readouterr()
    screen.emit("closed", reason="connection lost")
    assert capsys.readouterr().out.splitlines() == [
        "a.bin was not finished (5 B of 10 B): it resumes the next time you connect.",
        "Session closed: the connection to Bob was lost.",
    ]


def test_the_bar_of_a_failed_transfer_goes() -> None:
    """A transfer that fails ends with an `error` line, which names no file: its bar goes when
    the node no longer has the transfer."""
    screen = _screen()
    screen._node = node = FakeNode()
    node.running = [
        TransferInProgress("in", "a.bin", 5, 10, "11" * 16),
        TransferInProgress("out", "b.bin", 5, 10, "22" * 16),
    ]
    screen.emit("progress", id="11" * 16, bytes=5, total=10, direction="in", name="a.bin")
    screen.emit("progress", id="22" * 16, bytes=5, total=10, direction="out", name="b.bin")
    bars = screen.toolbar()
    assert bars.startswith("receiving a.bin [") and "sending b.bin [" in bars
    node.running.pop(0)
    screen.emit("error", message="a.bin: the SHA-256 does not match")
    assert screen.toolbar().startswith("sending b.bin [")
    node.running.clear()
    assert screen.toolbar() == chat_ui.TOOLBAR_HINT


# --- whatever a peer controls is shown, never obeyed (issue 26, class 1) ---------------------


def _every_sink_with(text: str, screen: ChatScreen) -> None:
    """Every event field a peer (or an error it provokes) controls, set to `text`."""
    hostile_did = "did:key:z6Mk" + text
    screen.emit("connected", peer=BOB, verified=True, timings_ms={})
    screen.emit("message", **{"from": BOB}, id="aa", text=text)
    screen.emit("message", **{"from": hostile_did}, id="ab", text=text)
    ref = screen.command_for(text.replace("\n", " ").replace("\r", " "), Expecting.CHAT)
    if isinstance(ref, SendText):
        screen.emit("sent", id="m1", ref=ref.ref)
        screen.emit("delivered", id="m1")
    screen.emit("progress", id=text, bytes=5, total=10, direction="in", name=text)
    assert_display_safe(screen.toolbar())
    screen.emit("file", **{"from": BOB}, id=text, name=text, size=1, sha256="0", path=text)
    screen.emit("file_sent", id=text, name=text, size=1, sha256="0")
    screen.emit("error", message=f"the peer broke the protocol: {text}")
    screen.warn(f"something about {text}")
    screen.emit("progress", id="cd" * 16, bytes=1, total=2, direction="in", name=text)
    screen.emit("closed", reason=text)  # says that file was not finished


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_texts_are_shown_not_obeyed(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    screen = ChatScreen(names=lambda did: text if did == CAROL else None)
    screen._node = FakeNode()
    _every_sink_with(text, screen)
    screen.emit("message", **{"from": CAROL}, id="ac", text=text)  # a name from the store
    out, err = capsys.readouterr()
    assert_display_safe(out)
    assert_display_safe(err)
    assert not any(is_unsafe(ch) for ch in screen.prompt_text())


def test_a_multi_line_message_continues_behind_a_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    screen = _screen()
    screen._node = FakeNode()
    screen.emit("message", **{"from": BOB}, id="aa", text="one\n[12:03] you: two\r\nthree")
    assert capsys.readouterr().out.splitlines() == [
        "[12:03] Bob: one",
        "  \u2502 [12:03] you: two",
        "  \u2502 three",
    ]


def test_a_file_offer_is_asked_in_the_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    screen = _screen()
    node = FakeNode()
    screen._node = node
    screen.emit(
        "file_offer", id="ab", name="photo.jpg", size=2_500_000, sha256="0", **{"from": BOB}
    )
    screen.emit("file_offer", id="cd", name="x\u202e.txt", size=1, sha256="0", **{"from": CAROL})
    out = capsys.readouterr().out
    assert "[12:03] Receive file photo.jpg (2.5 MB) from Bob? [y/N]" in out
    assert "x\\u202e.txt" in out  # the peer's name is shown, never obeyed
    node.expecting = Expecting.FILE
    assert screen.prompt_text() == "Receive file photo.jpg (2.5 MB) from Bob? [y/N] "
    assert screen.command_for("y", Expecting.FILE) == AcceptFile()
    assert screen.prompt_text().startswith("Receive file x\\u202e.txt (1 B) from did:key:")
    assert screen.command_for("n", Expecting.FILE) == RefuseFile()
    screen.emit("file_refused", id="ab", name="photo.jpg", size=1, by="peer", **{"from": BOB})
    assert "[12:03] Bob refused photo.jpg" in capsys.readouterr().out
