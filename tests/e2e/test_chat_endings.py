"""Every end of a session is told on the chat screen, in a real pseudo-terminal (issue 27, 1).

The chat screen used to print its last lines (the `closed` line, the SAS warnings) through
prompt_toolkit's patch_stdout, whose thread hands each line to the event loop as a task; when
the session ended, the process often left before that task ran and the screen dropped to the
shell with nothing said (the other side's SAS rejection: 12 times in 15). Now the screen writes
its lines itself and puts its prompt away at `closed`: each ending below is shown, the flaky one
several times in a row.

Alice runs `didlink invite` in a pty (tests/e2e/test_chat_ui.py `Terminal`); Bob is `--jsonl`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.driver import cli_processes, make_identity
from tests.e2e.test_chat_ui import Terminal, connected, identities, to_the_sas

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SHOWN_AFTER_EXIT = 5.0  # seconds for the last bytes to reach the test's reader thread


def test_the_other_side_rejecting_the_sas_is_a_warning_every_time(tmp_path: Path) -> None:
    """Alice answers y, Bob answers n: Alice learns it, loudly, in each of five sessions."""
    for attempt in range(5):
        a_home, b_home = identities(tmp_path, str(attempt))
        with cli_processes() as started:
            alice, bob = to_the_sas(started, a_home, b_home)
            try:
                alice.type("y\r")
                mark = alice.wait_for(r"You confirmed the SAS\. Waiting for the other side").end()
                bob.send("reject_sas")
                assert bob.expect("closed")["reason"] == "sas rejected"
                assert alice.wait() == 1
                alice.wait_for(
                    r"WARNING: The other side \(did:key:\S+\) rejected the SAS: this connection"
                    r" may have been intercepted\. Nothing was sent",
                    after=mark,
                    timeout=SHOWN_AFTER_EXIT,
                )
                alice.wait_for(
                    r"Session closed: the other side rejected the SAS\.",
                    after=mark,
                    timeout=SHOWN_AFTER_EXIT,
                )
            finally:
                alice.kill()


def test_the_other_side_leaving_is_shown(tmp_path: Path) -> None:
    a_home, b_home = identities(tmp_path)
    with cli_processes() as started:
        alice, bob = to_the_sas(started, a_home, b_home)
        try:
            mark = connected(alice, bob)
            bob.send("quit")
            assert bob.wait() == 0
            assert alice.wait() == 0
            alice.wait_for(
                r"Session closed: did:key:z6Mk\S+\.\.\.\S{4} left the chat\.",
                after=mark,
                timeout=SHOWN_AFTER_EXIT,
            )
        finally:
            alice.kill()


def test_a_lost_connection_is_shown(tmp_path: Path) -> None:
    """Bob's process is killed: nothing says goodbye; the transport notices (ICE consent,
    30 s; specs/transport.md section 6.4) and the screen says the connection was lost."""
    a_home, b_home = identities(tmp_path)
    with cli_processes() as started:
        alice, bob = to_the_sas(started, a_home, b_home)
        try:
            mark = connected(alice, bob)
            bob.kill()
            assert alice.wait(timeout=75) == 1
            alice.wait_for(
                r"Session closed: the connection to \S+ was lost\.",
                after=mark,
                timeout=SHOWN_AFTER_EXIT,
            )
        finally:
            alice.kill()


def test_a_timeout_is_shown(tmp_path: Path) -> None:
    """Nobody answers the SAS question in time (DIDLINK_SAS_TIMEOUT)."""
    a_home, b_home = identities(tmp_path)
    with cli_processes() as started:
        alice, _bob = to_the_sas(started, a_home, b_home, env={"DIDLINK_SAS_TIMEOUT": "2"})
        try:
            assert alice.wait() == 1
            screen = alice.wait_for(
                r"error: confirming the SAS took longer than 2 s", timeout=SHOWN_AFTER_EXIT
            )
            alice.wait_for(
                r"Session closed: it took too long",
                after=screen.end(),
                timeout=SHOWN_AFTER_EXIT,
            )
        finally:
            alice.kill()


def test_quitting_at_the_paste_prompt_is_shown(tmp_path: Path) -> None:
    a_home = tmp_path / "alice"
    make_identity(a_home)
    alice = Terminal("invite", home=a_home)
    try:
        alice.wait_for(r"Paste the response token:")
        alice.type("\x03")  # Ctrl-C
        assert alice.wait() == 0
        alice.wait_for(r"Session closed: you quit\.", timeout=SHOWN_AFTER_EXIT)
        assert not re.search(r"Traceback", alice.screen)
    finally:
        alice.kill()
