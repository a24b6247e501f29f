"""The prompt_toolkit chat screen (didlink/chat/screen.py) driven in a real pseudo-terminal.

Alice runs `didlink invite` in a pty (so she gets the chat screen, as a person would); Bob is a
`--jsonl` process. The test types into Alice's terminal and reads what it shows (escape
sequences stripped), always with bounded waits.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.driver import PASSPHRASE, ROOT, Cli, cli_processes, make_identity
from tests.support import pty_spawn
from tests.support.cli import run_cli
from tests.support.hostile_text import HOSTILE_TEXTS, assert_no_forbidden_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT = 30.0
TOKEN = r"didlink:[1-9A-HJ-NP-Za-km-z]{40,}"
CPR_REQUEST = b"\x1b[6n"  # "where is the cursor?"
CPR_ANSWER = b"\x1b[20;1R"  # row 20, column 1 (of 50 rows)
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()=>][0-9A-B]?")


class Terminal:
    """`didlink ARGS` on the slave side of a pty (120x50); its output collected by a thread.

    `env` is added to the environment (the tests' DIDLINK_HOME and passphrase are set)."""

    def __init__(self, *args: str, home: Path, env: dict[str, str] | None = None) -> None:
        environment = pty_spawn.environment(
            home,
            DIDLINK_PASSPHRASE=PASSPHRASE,
            TERM="xterm-256color",
            COLUMNS="120",
            LINES="50",
        )
        environment.update(env or {})  # e.g. DIDLINK_SAS_TIMEOUT
        self.proc, self._master = pty_spawn.spawn(args, env=environment, size=(120, 50), cwd=ROOT)
        self._raw = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        pty_spawn.read_until_closed(self._master, self._keep)

    def _keep(self, chunk: bytes) -> None:
        with self._lock:
            self._raw += chunk
        for _ in range(chunk.count(CPR_REQUEST)):  # answer like a terminal would, so that
            os.write(self._master, CPR_ANSWER)  # prompt_toolkit knows the rows below

    @property
    def screen(self) -> str:
        """Everything shown so far, escape sequences removed."""
        with self._lock:
            text = self._raw.decode("utf-8", "replace")
        return ANSI.sub("", text)

    def type(self, text: str) -> None:
        os.write(self._master, text.encode("utf-8"))

    def wait_for(self, pattern: str, *, after: int = 0, timeout: float = WAIT) -> re.Match[str]:
        """The first match of `pattern` in the screen text from offset `after`."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.compile(pattern).search(self.screen, after)
            if match is not None:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not shown; screen tail: {self.screen[-3000:]!r}")
            time.sleep(0.05)

    def wait(self, timeout: float = WAIT) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self._master)


def to_the_sas(
    started: list[Cli], a_home: Path, b_home: Path, *, env: dict[str, str] | None = None
) -> tuple[Terminal, Cli]:
    """Alice (terminal) invites, Bob (--jsonl) accepts: both are shown the SAS."""
    alice = Terminal("invite", home=a_home, env=env)
    token = alice.wait_for(TOKEN).group(0)
    bob = Cli("accept", token, "--jsonl", home=b_home)
    started.append(bob)
    alice.wait_for(TOKEN + r"\s+Paste the response token:")
    alice.type(bob.expect("token")["token"] + "\r")
    bob.expect("sas")
    alice.wait_for(r"Do they match\? \[y/N\]")
    return alice, bob


def connected(alice: Terminal, bob: Cli) -> int:
    """Both confirm the SAS; the screen offset after Alice's `Connected` line."""
    alice.type("y\r")
    alice.wait_for(r"Waiting for the other side to confirm")
    bob.send("confirm_sas")
    assert bob.expect("connected")["verified"] is True
    return alice.wait_for(r"Connected to .*SAS verified").end()


def identities(tmp_path: Path, name: str = "") -> tuple[Path, Path]:
    a_home, b_home = tmp_path / f"alice{name}", tmp_path / f"bob{name}"
    make_identity(a_home)
    make_identity(b_home)
    return a_home, b_home


def test_chat_screen_in_a_terminal(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home)
    bob_did = make_identity(b_home)
    to_bob, to_alice = os.urandom(3_000_000), os.urandom(2_000_000)
    (tmp_path / "to-bob.bin").write_bytes(to_bob)
    (tmp_path / "to-alice.bin").write_bytes(to_alice)
    alice = Terminal("invite", "--label", "Alice", home=a_home)
    try:
        with cli_processes() as started:
            token = alice.wait_for(r"didlink:[1-9A-HJ-NP-Za-km-z]{40,}").group(0)
            alice.wait_for(TOKEN + r"\s+Paste the response token:")
            bob = Cli("accept", token, "--jsonl", home=b_home)
            started.append(bob)
            response = bob.expect("token")["token"]
            alice.type(response + "\r")
            # The SAS: emoji with their names, the numbers, the question.
            sas = bob.expect("sas")
            mark = alice.wait_for(r"Do they match\? \[y/N\]").start()
            # patch_stdout may draw the prompt before it flushes the lines printed above it
            for name in sas["names"]:
                alice.wait_for(re.escape(name))
            alice.wait_for(re.escape("  ".join(str(n) for n in sas["decimal"])))
            assert all(e[0] in alice.screen for e in sas["emoji"])  # first code point of each
            alice.type("y\r")
            bob.send("confirm_sas")
            assert bob.expect("connected")["verified"] is True
            mark = alice.wait_for(r"Connected to .*SAS verified", after=mark).end()
            # Typing while a message arrives: the half-typed text survives.
            alice.type("half typ")
            time.sleep(0.5)  # let the screen show it before the message arrives
            bob.send("send", text="ping from bob")
            mark = alice.wait_for(r"\[\d\d:\d\d\] \S+: ping from bob", after=mark).end()
            alice.type("ed line\r")
            got = bob.expect("message")
            assert got["text"] == "half typed line"
            mark = alice.wait_for(r"\[\d\d:\d\d\] you \u2713: half typed line", after=mark).end()
            alice.wait_for(r"\u2713\u2713 delivered: half typed line", after=mark)
            # Files both ways, a progress bar on Alice's screen for each.
            alice.type(f"/send {tmp_path / 'to-bob.bin'}\r")
            bob.send("send_file", path=str(tmp_path / "to-alice.bin"))
            assert Path(bob.expect("file")["path"]).read_bytes() == to_bob
            alice.wait_for(r"to-bob\.bin \(3\.0 MB\) arrived, SHA-256 checked", after=mark)
            alice.wait_for(r"sent you to-alice\.bin \(2\.0 MB, SHA-256 checked\)", after=mark)
            assert (a_home / "downloads" / "to-alice.bin").read_bytes() == to_alice
            # The toolbar's bars (the renderer redraws only changed cells: look for pieces).
            assert re.search(r"#{3,}", alice.screen[mark:]), alice.screen[mark:][-3000:]
            assert re.search(r"\d%", alice.screen[mark:]), alice.screen[mark:][-3000:]
            alice.type("/help\r")
            alice.wait_for(r"/send PATH +send a file", after=mark)
            alice.type("/quit\r")
            assert bob.expect("closed")["reason"] == "peer closed"
            assert alice.wait() == 0, alice.screen[-3000:]
            assert bob.wait() == 0, bob.stderr
            alice.wait_for(r"Session closed: you left the chat\.")
            assert bob_did  # Bob's DID was the peer Alice saw
        # Alice's label reached Bob only as a suggestion: it names nobody until he adopts it.
        [contact] = json.loads(run_cli("contacts", "--json", home=b_home).stdout)
        assert (contact["name"], contact["suggested_name"]) == (None, "Alice")
        assert contact["verification"] == "sas"
    finally:
        alice.kill()


def test_rejecting_the_sas_in_the_terminal(tmp_path: Path) -> None:
    a_home, b_home = identities(tmp_path)
    alice: Terminal | None = None
    try:
        with cli_processes() as started:
            alice, bob = to_the_sas(started, a_home, b_home)
            alice.type("n\r")
            assert bob.expect("closed")["reason"] == "sas rejected by peer"
            assert alice.wait() == 1
            assert bob.wait() == 1
            alice.wait_for(r"You did not confirm the SAS")
            alice.wait_for(
                r"WARNING: You rejected the SAS: this connection may have been intercepted"
            )
            alice.wait_for(r"Session closed: you rejected the SAS\.")
    finally:
        if alice is not None:
            alice.kill()


def test_hostile_messages_are_shown_not_obeyed_in_a_real_terminal(tmp_path: Path) -> None:
    """A verified peer sends the hostile corpus (tests/support/hostile_text.py): Alice's
    terminal receives none of its escape, C1, bidi or invisible sequences as they were sent,
    and no line of peer text starts like one of ours (issue 26, class 1)."""
    a_home, b_home = identities(tmp_path)
    alice: Terminal | None = None
    try:
        with cli_processes() as started:
            alice, bob = to_the_sas(started, a_home, b_home)
            mark = connected(alice, bob)
            for index, text in enumerate(HOSTILE_TEXTS):
                bob.send("send", text=f"HOSTILE{index:02d} {text}")
            bob.send("send", text="END-OF-CORPUS")
            alice.wait_for(r"END-OF-CORPUS", after=mark)
            alice.type("/quit\r")
            assert alice.wait() == 0, alice.screen[-3000:]
            bob.wait()
    finally:
        if alice is not None:
            alice.kill()
    assert alice is not None
    with alice._lock:
        raw = bytes(alice._raw)
    assert_no_forbidden_bytes(raw)
    screen = alice.screen
    for index in range(len(HOSTILE_TEXTS)):
        assert f"HOSTILE{index:02d}" in screen
    for line in re.split(r"[\r\n]", screen):
        # Peer text appears only after "<time> <sender>: " or behind the continuation prefix.
        if "forged" in line:
            assert re.search(r"\[\d\d:\d\d\] \S+: |  \u2502 |\\r|\\n", line), line
