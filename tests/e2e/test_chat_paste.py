"""Pasting tokens, as a person does, in a real pseudo-terminal (issue 27, points 5 and 7).

- `didlink accept` with no TOKEN asks for it; a paste broken into lines is joined.
- The inviter's "Paste the response token:" takes a token pasted in pieces (each line break
  submits a line) and one pasted with line breaks inside a bracketed paste.
- A token typed at the chat prompt is not sent as a message; `/send-text` sends it anyway.
- Ctrl-C at the inviter's paste prompt cancels the invitation: the accepter, already waiting
  for the connection, is told within seconds (transport/presence.py), not after 60 s.

The person is in a `Terminal` (tests/e2e/test_chat_ui.py); the other side is `--jsonl`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.driver import Cli, cli_processes, make_identity
from tests.e2e.test_chat_ui import Terminal
from tests.support.cli import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

TOKEN = r"didlink:[1-9A-HJ-NP-Za-km-z]{40,}"
BRACKETED_PASTE = ("\x1b[200~", "\x1b[201~")


def test_accept_asks_for_the_token_and_joins_its_lines(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    alice_did = make_identity(a_home)
    make_identity(b_home)
    card = run_cli("invite", "--card", "--json", home=a_home)
    assert card.returncode == 0, card.stderr
    token = card.stdout.split('"')[3]
    bob = Terminal("accept", home=b_home)
    try:
        bob.wait_for(r"Paste the invitation token, then press Enter:")
        bob.type(token[:90] + "\r")  # the paste broke at a line break
        bob.wait_for(r"more of it\? paste the rest")
        bob.type("  " + token[90:] + " \r")
        assert bob.wait() == 0, bob.screen[-2000:]
        bob.wait_for(rf"Added {alice_did}: an unverified contact\.")
    finally:
        bob.kill()


def test_the_response_pasted_in_pieces_is_joined(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home)
    make_identity(b_home)
    alice = Terminal("invite", home=a_home)
    try:
        with cli_processes() as started:
            token = alice.wait_for(TOKEN).group(0)
            bob = Cli("accept", token, "--jsonl", home=b_home)
            started.append(bob)
            alice.wait_for(r"Paste the response token:")
            response = bob.expect("token")["token"]
            alice.type(response[:150] + "\r")  # without bracketed paste: two lines
            alice.wait_for(r"looks incomplete: 150 of about 320 characters.*Paste the rest")
            alice.type(response[150:] + "\r")
            bob.expect("sas")
            alice.wait_for(r"Do they match\? \[y/N\]")
            alice.type("/quit\r")
            assert alice.wait() == 0
    finally:
        alice.kill()
    # A bracketed paste keeps its line breaks inside the one line submitted: dropped too.
    alice = Terminal("invite", home=a_home)
    try:
        with cli_processes() as started:
            token = alice.wait_for(TOKEN).group(0)
            bob = Cli("accept", token, "--jsonl", home=b_home)
            started.append(bob)
            alice.wait_for(r"Paste the response token:")
            response = bob.expect("token")["token"]
            start, end = BRACKETED_PASTE
            alice.type(start + response[:100] + "\n" + response[100:200] + "\r\n ")
            alice.type(response[200:] + end + "\r")
            bob.expect("sas")
            alice.wait_for(r"Do they match\? \[y/N\]")
            alice.type("/quit\r")
            assert alice.wait() == 0
    finally:
        alice.kill()


def test_a_token_typed_as_a_message_is_not_sent(tmp_path: Path) -> None:
    """Bob pastes his own response at his chat prompt: it is not queued for Alice."""
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home)
    make_identity(b_home)
    with cli_processes() as started:
        alice = Cli("invite", "--jsonl", home=a_home)
        started.append(alice)
        bob = Terminal("accept", alice.expect("token")["token"], home=b_home)
        try:
            response = bob.wait_for(TOKEN).group(0)
            mark = bob.wait_for(r"Waiting for the connection\.\.\.").end()
            bob.type(response + "\r")
            bob.wait_for(
                r"This is a response token: give it to the person who invited you.*"
                r"it was not sent\.",
                after=mark,
            )
            assert "(queued" not in bob.screen[mark:]
            bob.type(f"/send-text {response[:20]} is how a token starts\r")  # sent on purpose
            bob.wait_for(r"\(queued: it leaves once you both confirmed the SAS\)", after=mark)
            alice.send("response", token=response)
            alice.expect("sas")
            bob.wait_for(r"Do they match\? \[y/N\]")
            bob.type("y\r")
            alice.send("confirm_sas")
            message = alice.expect("message")
            assert message["text"] == f"{response[:20]} is how a token starts"
            alice.send("quit")
            assert bob.wait() == 0
        finally:
            bob.kill()
        assert [m["text"] for m in alice.seen("message")] == [message["text"]]


def test_ctrl_c_at_the_paste_prompt_is_told_to_the_accepter(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home)
    make_identity(b_home)
    alice = Terminal("invite", home=a_home)
    try:
        with cli_processes() as started:
            token = alice.wait_for(TOKEN).group(0)
            bob = Cli("accept", token, "--jsonl", home=b_home)
            started.append(bob)
            bob.expect("token")  # Bob waits for the connection
            alice.wait_for(r"Paste the response token:")
            time.sleep(1.5)  # Bob's probes find Alice there
            assert bob.seen("error") == []
            alice.type("\x03")  # Ctrl-C
            assert alice.wait() == 0
            alice.wait_for(r"Session closed: you quit\.", timeout=5)
            alice.wait_for(r"The invitation is cancelled: no response to it will be taken")
            gone = time.monotonic()
            error = bob.expect("error", timeout=15)
            assert "cancelled the invitation" in error["message"]
            assert bob.expect("closed")["reason"] == "connection failed"
            assert time.monotonic() - gone < 15  # not the 60 s connect timeout
            assert bob.wait() == 1
    finally:
        alice.kill()
    # Accepting the cancelled invitation later: told as promptly.
    carol_home = tmp_path / "carol"
    make_identity(carol_home)
    with cli_processes() as started:
        carol = Cli("accept", token, "--jsonl", home=carol_home)
        started.append(carol)
        carol.expect("token")
        assert "cancelled the invitation" in carol.expect("error", timeout=15)["message"]
        assert carol.wait() == 1
