"""`--history` in a real session: on one side the messages are kept sealed, off on the other.

Alice runs `invite --history`, Bob `accept` without it; both exchange messages over real WebRTC.
Alice's store then holds every message sent and received, in order, and the raw database files
(with the WAL) never contain the text; Bob's history table stays empty.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.driver import Cli, cli_processes, make_identity
from tests.support.cli import assert_user_error, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

CANARY_OUT = "canary-from-alice-5d1f9"
CANARY_IN = "canary-from-bob-c07e2"


def _raw_store(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.glob("store.sqlite3*")))


def _history_rows(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "store.sqlite3") as db:
        return db.execute("SELECT peer_did, direction FROM history ORDER BY seq").fetchall()


def test_history_on_one_side_only(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    alice_did, bob_did = make_identity(a_home), make_identity(b_home)
    with cli_processes() as started:
        alice = Cli("invite", "--jsonl", "--history", home=a_home)
        started.append(alice)
        bob = Cli("accept", alice.expect("token")["token"], "--jsonl", home=b_home)
        started.append(bob)
        alice.send("response", token=bob.expect("token")["token"])
        alice.expect("sas"), bob.expect("sas")
        alice.send("confirm_sas")
        bob.send("confirm_sas")
        alice.expect("connected"), bob.expect("connected")
        alice.send("send", text=CANARY_OUT + " 1")
        assert bob.expect("message")["text"] == CANARY_OUT + " 1"
        bob.send("send", text=CANARY_IN + " 🙂")
        assert alice.expect("message")["text"] == CANARY_IN + " 🙂"
        alice.send("send", text=CANARY_OUT + " 2")
        assert bob.expect("message")["text"] == CANARY_OUT + " 2"
        alice.expect("delivered"), alice.expect("delivered")
        alice.send("quit")
        assert alice.wait() == 0 and bob.wait() == 0
    assert _history_rows(b_home) == []  # off by default: nothing stored
    assert _history_rows(a_home) == [(bob_did, "out"), (bob_did, "in"), (bob_did, "out")]
    for home in (a_home, b_home):
        raw = _raw_store(home)
        assert CANARY_OUT.encode() not in raw and CANARY_IN.encode() not in raw
    shown = run_cli("history", bob_did, "--json", home=a_home)
    assert shown.returncode == 0, shown.stderr
    assert [(m["direction"], m["text"]) for m in json.loads(shown.stdout)] == [
        ("out", CANARY_OUT + " 1"),
        ("in", CANARY_IN + " 🙂"),
        ("out", CANARY_OUT + " 2"),
    ]
    assert json.loads(run_cli("history", alice_did, "--json", home=b_home).stdout) == []
    assert_user_error(run_cli("history", bob_did, home=a_home, passphrase="nope"), "passphrase")
    cleared = run_cli("history", "--clear", bob_did, home=a_home)
    assert cleared.returncode == 0 and "Deleted 3 stored messages" in cleared.stdout
    assert _history_rows(a_home) == []
