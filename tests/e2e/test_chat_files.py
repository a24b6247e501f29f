"""Files on the chat screen and in the line mode, in a real pseudo-terminal (issue 27, 8).

- `/send` takes paths as terminals give them (quoted, backslash-escaped, completed with Tab);
  a missing file or a folder is one line and the chat goes on.
- The receiver's progress names the file (the chat screen's toolbar, the line mode's lines).
- Ctrl-C during a transfer asks first; `n` goes on (the chat screen); the line mode wants a
  second Ctrl-C.
- A file of ours resumed in a later session is labelled "sending" (it was "receiving").

Alice is a terminal (tests/e2e/test_chat_ui.py `Terminal`), Bob a `--jsonl` process. A transfer
is held mid-way by stopping the sending process (SIGSTOP: a peer that went quiet) once it
reported a few MB, and let go on with SIGCONT; every wait is bounded.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.driver import Cli, cli_processes, connect_pair
from tests.e2e.test_chat_ui import TOKEN, Terminal, connected, identities, to_the_sas

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

BIG = 12_000_000  # bytes: about half a second of transfer on loopback, held mid-way
HOLD_AFTER = 3_000_000  # the sender is stopped once it reported this many bytes sent


@contextmanager
def stopped(cli: Cli) -> Iterator[None]:
    """`cli`'s process stopped (SIGSTOP) inside, continued (SIGCONT) after, whatever happens."""
    cli.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        cli.proc.send_signal(signal.SIGCONT)


def _hold_when_sent(sender: Cli) -> None:
    """Wait until `sender` reported HOLD_AFTER bytes of its file sent."""
    while True:
        progress = sender.expect("progress")
        assert progress["direction"] == "out"
        if progress["bytes"] >= HOLD_AFTER:
            assert progress["bytes"] < progress["total"], "the file went through before the hold"
            return


def test_send_takes_paths_as_terminals_give_them(tmp_path: Path) -> None:
    a_home, b_home = identities(tmp_path)
    folder = tmp_path / "my docs"
    folder.mkdir()
    files = {
        "holiday photo.jpg": os.urandom(200_000),
        "it's here.txt": b"quoted with a backslash",
        "plain.txt": b"dropped with a file:// URL",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    alice: Terminal | None = None
    try:
        with cli_processes() as started:
            alice, bob = to_the_sas(started, a_home, b_home)
            mark = connected(alice, bob)
            # Tab: the folder (its quote left open), then the file in it (the quote closed).
            alice.type(f"/send '{tmp_path}/my d\t")
            alice.type("hol\t")
            alice.type("\r")
            sending = r"sending holiday photo\.jpg \(200\.0 kB\) \.\.\."
            mark = alice.wait_for(sending, after=mark).end()
            got = bob.expect("file")
            assert got["name"] == "holiday photo.jpg"
            assert Path(got["path"]).read_bytes() == files["holiday photo.jpg"]
            mark = alice.wait_for(r"holiday photo\.jpg \(200\.0 kB\) arrived", after=mark).end()
            # Backslashes, as macOS terminals drop a name; then a percent-encoded file:// URL.
            alice.type(f"/send {tmp_path}/my\\ docs/it\\'s\\ here.txt \r")
            assert Path(bob.expect("file")["path"]).read_bytes() == files["it's here.txt"]
            url = f"file://{tmp_path}/my docs/plain.txt".replace(" ", "%20")
            alice.type(f"/send {url}\r")
            assert Path(bob.expect("file")["path"]).read_bytes() == files["plain.txt"]
            # What names no file is one line each, and the chat goes on.
            alice.type(f"/send '{tmp_path}/nothing here.txt'\r")
            mark = alice.wait_for(r"error: cannot read .*nothing here\.txt", after=mark).end()
            alice.type(f"/send '{folder}'\r")
            mark = alice.wait_for(r"error: .*my docs is a folder, not a file", after=mark).end()
            alice.type("/send two.txt names.txt\r")
            mark = alice.wait_for(r"error: no file .*one file per /send", after=mark).end()
            alice.type("still talking\r")
            assert bob.expect("message")["text"] == "still talking"
            assert not bob.seen("error")
            alice.type("/quit\r")
            assert alice.wait() == 0, alice.screen[-3000:]
            assert bob.wait() == 0
    finally:
        if alice is not None:
            alice.kill()


def test_the_receiver_sees_the_name_and_ctrl_c_asks_first(tmp_path: Path) -> None:
    a_home, b_home = identities(tmp_path)
    data = os.urandom(BIG)
    (tmp_path / "holiday video.bin").write_bytes(data)
    alice: Terminal | None = None
    try:
        with cli_processes() as started:
            alice, bob = to_the_sas(started, a_home, b_home)
            mark = connected(alice, bob)
            bob.send("send_file", path=str(tmp_path / "holiday video.bin"))
            _hold_when_sent(bob)
            with stopped(bob):
                alice.type("\x03")  # Ctrl-C: a file is being received, so it asks
                mark = alice.wait_for(
                    r"holiday video\.bin is still being received \([\d.]+ [kM]?B of 12\.0 MB\);"
                    r" if you quit now, it resumes the next time you connect\.",
                    after=mark,
                ).end()
                alice.wait_for(r"Quit anyway\? \[y/N\]", after=mark)
                # the screen was drawn again whole: the toolbar names the file it receives
                alice.wait_for(r"receiving holiday video\.bin \[#*-*\] +\d+%", after=mark)
                alice.type("n\r")
                mark = alice.wait_for(r"Not quitting: the transfer goes on\.", after=mark).end()
            got = bob.expect("file_sent", timeout=60)
            assert got["sha256"] == hashlib.sha256(data).hexdigest()
            mark = alice.wait_for(r"sent you holiday video\.bin \(12\.0 MB", after=mark).end()
            assert (a_home / "downloads" / "holiday video.bin").read_bytes() == data
            alice.type("\x03")  # nothing moving now: Ctrl-C quits at once
            assert bob.expect("closed")["reason"] == "peer closed"
            assert alice.wait() == 0, alice.screen[-3000:]
            alice.wait_for(r"Session closed: you left the chat\.", after=mark)
            assert "Quit anyway" not in alice.screen[mark:]
    finally:
        if alice is not None:
            alice.kill()


def test_a_resumed_file_of_ours_is_labelled_sending(tmp_path: Path) -> None:
    """A file interrupted in one session goes on in the next: the sender's bar said
    "receiving" (the screen guessed the direction from the sizes of this session's /send).
    Then Alice quits anyway during it (that the file then resumes and arrives intact:
    tests/e2e/test_reconnect.py::test_file_interrupted_by_sigkill_resumes_and_arrives_intact)."""
    a_home, b_home = identities(tmp_path)
    data = os.urandom(BIG)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    with cli_processes() as started:  # the first session, cut mid-file
        first_alice, first_bob = connect_pair(started, a_home, b_home)
        first_alice.expect("sas"), first_bob.expect("sas")
        first_alice.send("confirm_sas")
        first_bob.send("confirm_sas")
        bob_did = first_alice.expect("connected")["peer"]
        first_bob.expect("connected")
        first_alice.send("send_file", path=str(source))
        while first_bob.expect("progress")["bytes"] < HOLD_AFTER:
            pass
        first_bob.proc.send_signal(signal.SIGKILL)
        first_alice.proc.send_signal(signal.SIGKILL)
        first_bob.wait(), first_alice.wait()
    [part] = (b_home / "downloads").glob(".didlink-*.part")
    assert 0 < part.stat().st_size < BIG
    alice = Terminal("chat", bob_did, home=a_home)
    try:
        with cli_processes() as started:
            token = alice.wait_for(TOKEN).group(0)
            bob = Cli("accept", token, "--jsonl", home=b_home)
            started.append(bob)
            alice.wait_for(r"Paste the response token:")
            alice.type(bob.expect("token")["token"] + "\r")
            mark = alice.wait_for(r"Connected to .*SAS verified").end()  # verified contacts
            while True:  # Bob's side: the resumed file arrives (held once it moved on a bit)
                progress = bob.expect("progress")
                assert (progress["direction"], progress["name"]) == ("in", "big.bin")
                if progress["bytes"] < BIG:
                    break
            with stopped(bob):
                alice.type("\x03")
                mark = alice.wait_for(r"big\.bin is still being sent", after=mark).end()
                alice.wait_for(r"sending big\.bin \[#*-*\] +\d+%", after=mark)
                assert not re.search(r"receiving", alice.screen[mark:])
                alice.type("n\r")
                mark = alice.wait_for(r"Not quitting: the transfer goes on\.", after=mark).end()
                # Quit anyway: no wait for the file (it resumes in a later session), no
                # complaint that the peer did not confirm it.
                alice.type("\x03")
                mark = alice.wait_for(r"Quit anyway\? \[y/N\]", after=mark).end()
                alice.type("y\r")
                assert alice.wait() == 0, alice.screen[-3000:]
                alice.wait_for(
                    r"big\.bin was not finished \([\d.]+ MB of 12\.0 MB\): it resumes the next"
                    r" time you connect\.\s+Session closed: you left the chat\.",
                    after=mark,
                )
                assert "quit before the peer confirmed" not in alice.screen[mark:]
            assert bob.expect("closed", timeout=60)["reason"] in ("peer closed", "connection lost")
            assert not bob.seen("file")
        [part] = (b_home / "downloads").glob(".didlink-*.part")  # kept for the next session
        assert 0 < part.stat().st_size < BIG
    finally:
        alice.kill()


def test_the_line_mode_names_the_file_and_wants_a_second_ctrl_c(tmp_path: Path) -> None:
    """TERM=dumb: the plain line mode in the same terminal. Ctrl-C is a signal there (the test
    sends SIGINT: the process has no controlling terminal of its own)."""
    a_home, b_home = identities(tmp_path)
    data = os.urandom(BIG)
    (tmp_path / "holiday video.bin").write_bytes(data)
    alice = Terminal("invite", home=a_home, env={"TERM": "dumb"})
    try:
        with cli_processes() as started:
            token = alice.wait_for(TOKEN).group(0)
            bob = Cli("accept", token, "--jsonl", home=b_home)
            started.append(bob)
            # the token is printed last, right above where the response is read
            alice.type(bob.expect("token")["token"] + "\r")
            bob.expect("sas")
            alice.wait_for(r"Do you both see the same\? \[y/N\]")
            alice.type("y\r")
            bob.send("confirm_sas")
            mark = alice.wait_for(r"Connected to did:key:\S+ \(verified").end()
            bob.send("send_file", path=str(tmp_path / "holiday video.bin"))
            _hold_when_sent(bob)
            with stopped(bob):
                line = r"  receiving holiday video\.bin: \d+% \([\d.]+ [kM]?B of 12\.0 MB\)"
                mark = alice.wait_for(line, after=mark).end()
                alice.proc.send_signal(signal.SIGINT)
                mark = alice.wait_for(
                    r"holiday video\.bin is still being received \([^)]*\): press Ctrl-C again"
                    r" within 5 seconds to quit anyway",
                    after=mark,
                ).end()
            got = bob.expect("file_sent", timeout=60)  # it went on
            assert got["sha256"] == hashlib.sha256(data).hexdigest()
            alice.wait_for(r"Received holiday video\.bin \(12000000 bytes", after=mark)
            assert alice.proc.poll() is None
            alice.proc.send_signal(signal.SIGINT)  # nothing moving: it ends as Ctrl-C did
            assert alice.wait() == 130
            alice.wait_for(r"interrupted")
    finally:
        alice.kill()
