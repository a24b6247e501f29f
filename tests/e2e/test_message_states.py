"""Message states and sending times in a real pseudo-terminal (issue 27 point 6).

Alice runs `didlink chat BOB` on the chat screen (a pty, as a person would); Bob is a `--jsonl`
process, or away. A text Alice types while Bob is away is shown queued (`…`, and counted in the
toolbar); in the next session, when Bob is back, it is resent from the outbox and gets its
`✓ sent` and `✓✓ delivered` lines; a text Bob left in his outbox hours ago is shown on Alice's
screen with the time he typed it beside the arrival (specs/chat-ui.md section 2e,
specs/cli-jsonl.md sections 2 and 2a).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from didlink.profile.outbox import Outbox
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store
from identity.keystore import unlock
from identity.validity import iso_time
from tests.e2e.driver import PASSPHRASE, Cli, cli_processes
from tests.e2e.test_chat_ui import TOKEN, Terminal
from tests.e2e.test_reconnect import _verified_pair

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

QUEUED, SENT, DELIVERED = "\u2026", "\u2713", "\u2713\u2713"
STAMP = r"\[(?:\d{4}-\d\d-\d\d )?\d\d:\d\d\]"  # [14:02], or [2026-12-07 23:10] another day
SENT_AT = r"\(sent (?:\d{4}-\d\d-\d\d )?\d\d:\d\d\)"


def _left_in_outbox(home: Path, peer: str, text: str, typed_at: int) -> None:
    """A text typed at `typed_at` (Unix seconds) and never sent: as a session left it."""
    key = unlock(home / "keystore.json", PASSPHRASE)
    message_id = (typed_at * 1000).to_bytes(6, "big") + bytes(range(10))  # time, then "random"
    with Store(home / "store.sqlite3") as store:
        Outbox(store, Sealer(key)).add(peer, text, message_id=message_id)


def test_queued_while_away_then_sent_and_delivered_with_the_sending_time(
    tmp_path: Path,
) -> None:
    a_home, b_home, alice_did, bob_did = _verified_pair(tmp_path)
    hours_ago = int(time.time()) - 3 * 3600
    _left_in_outbox(a_home, bob_did, "typed three hours ago", hours_ago)
    _left_in_outbox(b_home, alice_did, "Bob wrote this three hours ago", hours_ago)

    # Bob is away: Alice's leftover is listed queued at once; a text she types joins it.
    alice = Terminal("chat", bob_did, home=a_home)
    try:
        alice.wait_for(rf"{STAMP} you {QUEUED}: typed three hours ago")
        mark = alice.wait_for(TOKEN + r"\s+Paste the response token:").end()
        alice.type("/send-text written while you were away\r")
        mark = alice.wait_for(
            rf"\[\d\d:\d\d\] you {QUEUED}: written while you were away", after=mark
        ).end()
        alice.wait_for(rf"2 queued {QUEUED}", after=mark)  # the toolbar
        alice.type("/quit\r")
        assert alice.wait() == 0
        alice.wait_for(r"2 queued messages were not sent yet: they are kept")
        assert not re.search(rf"{SENT} sent: |{DELIVERED} delivered: ", alice.screen)
    finally:
        alice.kill()

    # Bob is back: both are resent, then sent and delivered; Bob's old text shows its time.
    alice = Terminal("chat", bob_did, home=a_home)
    try:
        with cli_processes() as started:
            alice.wait_for(rf"{STAMP} you {QUEUED}: typed three hours ago")
            alice.wait_for(rf"{STAMP} you {QUEUED}: written while you were away")
            token = alice.wait_for(TOKEN).group(0)
            alice.wait_for(TOKEN + r"\s+Paste the response token:")
            bob = Cli("accept", token, "--jsonl", home=b_home)
            started.append(bob)
            queued = bob.expect("queued")  # Bob's leftover, listed before it can leave
            assert queued["to"] == alice_did
            assert [(m["text"], m["typed_at"]) for m in queued["messages"]] == [
                ("Bob wrote this three hours ago", iso_time(hours_ago))
            ]
            alice.type(bob.expect("token")["token"] + "\r")
            mark = alice.wait_for(r"Connected to .*SAS verified").end()
            for text in ("typed three hours ago", "written while you were away"):
                alice.wait_for(rf"{SENT} sent: {text}", after=mark)
                alice.wait_for(rf"{DELIVERED} delivered: {text}", after=mark)
            alice.wait_for(rf"{STAMP} \S+ {SENT_AT}: Bob wrote this three hours ago", after=mark)
            got = [bob.expect("message"), bob.expect("message")]
            assert [m["text"] for m in got] == [
                "typed three hours ago",
                "written while you were away",
            ]
            assert got[0]["sent_at"] == iso_time(hours_ago)  # typed then, not resent now
            assert abs(time.time() - _seconds(got[1]["sent_at"])) < 600
            assert bob.expect("delivered")["id"] == queued["messages"][0]["id"]
            alice.type("/quit\r")
            assert bob.expect("closed")["reason"] == "peer closed"
            assert alice.wait() == 0 and bob.wait() == 0
    finally:
        alice.kill()


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_the_line_mode_prints_each_state_change_and_the_sending_time(tmp_path: Path) -> None:
    """The same on a terminal without the chat screen (TERM=dumb: the line mode)."""
    a_home, b_home, alice_did, bob_did = _verified_pair(tmp_path)
    hours_ago = int(time.time()) - 3 * 3600
    _left_in_outbox(a_home, bob_did, "typed three hours ago", hours_ago)
    _left_in_outbox(b_home, alice_did, "Bob wrote this three hours ago", hours_ago)
    alice = Terminal("chat", bob_did, home=a_home, env={"TERM": "dumb"})
    try:
        with cli_processes() as started:
            alice.wait_for(rf"{QUEUED} queued: typed three hours ago")
            token = alice.wait_for(TOKEN).group(0)
            bob = Cli("accept", token, "--jsonl", home=b_home)
            started.append(bob)
            alice.type(bob.expect("token")["token"] + "\r")
            mark = alice.wait_for(r"Connected to ").end()
            mark = alice.wait_for(rf"{SENT} sent: typed three hours ago", after=mark).end()
            alice.wait_for(rf"{DELIVERED} delivered: typed three hours ago", after=mark)
            alice.wait_for(
                r"< \[sent (?:\d{4}-\d\d-\d\d )?\d\d:\d\d\] Bob wrote this three hours ago"
            )
            alice.type("live now\r")
            assert bob.expect("message")["text"] == "typed three hours ago"
            assert bob.expect("message")["text"] == "live now"
            alice.type("/quit\r")
            assert alice.wait() == 0 and bob.wait() == 0
            assert f"{SENT} sent: live now" not in alice.screen  # only queued texts get lines
    finally:
        alice.kill()
