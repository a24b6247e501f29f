"""A live session whose local store fails mid-session (issue 26, class 5; specs/store.md).

Real processes over real WebRTC, driven by --jsonl. Once both are connected, another process
takes the write lock of Bob's store and keeps it past the busy timeout: the text Bob then
receives is delivered, but its id cannot be recorded, and Bob's session ends with an `error`
naming the file and what to do, `closed` with reason `store error`, exit 2, no traceback.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.e2e.driver import cli_processes, connect_pair, make_identity

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def _wait_until_verified_in(store: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        reader = sqlite3.connect(store)
        try:
            rows = reader.execute("SELECT verification FROM contacts").fetchall()
            sessions = reader.execute("SELECT count(*) FROM sessions").fetchone()[0]
        finally:
            reader.close()
        if rows == [("sas",)] and sessions == 1:  # and the persistent session (issue 25)
            return
        time.sleep(0.05)
    raise AssertionError(f"the contact was not marked verified in {store}")


def test_a_store_locked_mid_session_ends_it_with_a_store_error(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home), make_identity(b_home)
    store = b_home / "store.sqlite3"
    with cli_processes() as started:
        alice, bob = connect_pair(started, a_home, b_home)
        alice.expect("sas"), bob.expect("sas")
        alice.send("confirm_sas")
        bob.send("confirm_sas")
        alice.expect("connected"), bob.expect("connected")
        _wait_until_verified_in(store)  # Bob's bookkeeping after `connected` is written
        blocker = sqlite3.connect(store, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            alice.send("send", text="one message")
            assert bob.expect("message")["text"] == "one message"
            error = bob.expect("error", timeout=40)
            closed = bob.expect("closed", timeout=40)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert f"the local store {store} is locked" in error["message"]
        assert "try again" in error["message"]
        assert closed["reason"] == "store error"
        assert bob.wait() == 2
        assert not any("Traceback" in line for line in bob.stderr_lines)
        assert alice.expect("closed", timeout=40)["reason"] in ("peer closed", "connection lost")
        alice.wait()
