"""Files wait for a live connection (issue 25 point 8): `didlink send CONTACT --file PATH`.

Real processes through the real CLI: Alice queues files for Bob while no session runs (Bob is
offline); the next live session (`chat` + `accept`, as tests/e2e/test_reconnect.py does) sends
them, in order, with nobody typing /send; a file changed or gone meanwhile is not sent and
leaves the queue with a `file_unsent` event. The refusals of `send --file` are one line, exit 2.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from didlink.session.file_limits import MAX_QUEUED_FILE_BYTES
from tests.e2e.driver import Cli, cli_processes, make_identity
from tests.e2e.test_chat_ui import TOKEN, Terminal
from tests.e2e.test_reconnect import _reconnect, _verified_pair
from tests.support.cli import assert_user_error, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _queued_out_rows(home: Path) -> int:
    """The `out` rows left in Alice's store (queued or unfinished files)."""
    with sqlite3.connect(home / "store.sqlite3") as db:
        return int(
            db.execute("SELECT count(*) FROM transfers WHERE direction = 'out'").fetchone()[0]
        )


def _queue(home: Path, contact: str, path: Path, *extra: str) -> str:
    result = run_cli("send", contact, "--file", str(path), *extra, home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_files_queued_offline_leave_in_order_on_the_next_live_session(tmp_path: Path) -> None:
    a_home, b_home, alice_did, bob_did = _verified_pair(tmp_path)
    first, second = os.urandom(300 * 1024), os.urandom(70 * 1024)
    (tmp_path / "first.bin").write_bytes(first)
    (tmp_path / "second.bin").write_bytes(second)
    # Bob is offline: no session runs. Each is queued at once, exit 0.
    said = _queue(a_home, bob_did, tmp_path / "first.bin")
    assert said.startswith("queued: leaves on the next live connection with ")
    value = json.loads(_queue(a_home, bob_did, tmp_path / "second.bin", "--json"))
    assert value["status"] == "queued" and value["to"] == bob_did
    assert value["name"] == "second.bin" and value["size"] == len(second)
    second_id = value["id"]
    assert len(bytes.fromhex(second_id)) == 16
    assert _queued_out_rows(a_home) == 2
    with cli_processes() as started:
        alice, bob = _reconnect(started, a_home, b_home, bob_did)
        queued = alice.expect("queued")
        assert queued["to"] == bob_did and queued["messages"] == []
        assert [(f["name"], f["size"]) for f in queued["files"]] == [
            ("first.bin", len(first)),
            ("second.bin", len(second)),
        ]
        assert queued["files"][1]["id"] == second_id
        alice.expect("connected"), bob.expect("connected")
        got_first = bob.expect("file", timeout=60)
        got_second = bob.expect("file", timeout=60)
        assert (got_first["name"], got_second["name"]) == ("first.bin", "second.bin")
        assert got_first["from"] == alice_did
        assert Path(got_first["path"]).read_bytes() == first
        assert Path(got_second["path"]).read_bytes() == second
        assert got_second["id"] == second_id
        sent = {alice.expect("file_sent", timeout=30)["id"] for _ in range(2)}
        assert second_id in sent
        alice.send("quit")
        assert alice.wait() == 0 and bob.wait() == 0
    assert _queued_out_rows(a_home) == 0  # done: it left the queue
    # The next session sends nothing again.
    with cli_processes() as started:
        alice, bob = _reconnect(started, a_home, b_home, bob_did)
        alice.expect("connected"), bob.expect("connected")
        alice.send("quit")
        assert alice.wait() == 0 and bob.wait() == 0
        assert not bob.seen("file") and not alice.seen("queued")
    assert sorted(p.name for p in (b_home / "downloads").iterdir()) == ["first.bin", "second.bin"]


def test_a_file_changed_or_gone_since_queued_is_not_sent(tmp_path: Path) -> None:
    a_home, b_home, _alice_did, bob_did = _verified_pair(tmp_path)
    changed, gone, kept = tmp_path / "changed.txt", tmp_path / "gone.txt", tmp_path / "kept.txt"
    changed.write_bytes(b"version 1\n")
    gone.write_bytes(b"soon gone\n")
    kept.write_bytes(b"as it was\n")
    for path in (changed, gone, kept):
        _queue(a_home, bob_did, path)
    changed.write_bytes(b"version 2, longer\n")
    gone.unlink()
    with cli_processes() as started:
        alice, bob = _reconnect(started, a_home, b_home, bob_did)
        alice.expect("connected"), bob.expect("connected")
        unsent = [alice.expect("file_unsent", timeout=30) for _ in range(2)]
        assert [(u["name"], u["reason"]) for u in unsent] == [
            ("changed.txt", "changed"),
            ("gone.txt", "unreadable"),
        ]
        got = bob.expect("file", timeout=60)
        assert got["name"] == "kept.txt"
        assert Path(got["path"]).read_bytes() == b"as it was\n"
        alice.expect("file_sent", timeout=30)
        alice.send("quit")
        assert alice.wait() == 0 and bob.wait() == 0
        assert [f["name"] for f in bob.seen("file")] == ["kept.txt"]
    assert _queued_out_rows(a_home) == 0  # the refused ones left the queue too
    assert [p.name for p in (b_home / "downloads").iterdir()] == ["kept.txt"]


def test_send_file_refusals(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home)
    bob_did = make_identity(b_home)
    card = run_cli("invite", "--card", "--json", home=b_home)
    assert card.returncode == 0, card.stderr
    assert run_cli("accept", json.loads(card.stdout)["token"], home=a_home).returncode == 0
    folder = tmp_path / "folder"
    folder.mkdir()
    small = tmp_path / "small.txt"
    small.write_text("hi\n")
    huge = tmp_path / "huge.bin"
    with huge.open("wb") as handle:  # sparse: no disk is used
        handle.truncate(MAX_QUEUED_FILE_BYTES + 1)
    cases = [
        (("--file", str(tmp_path / "missing.txt")), "cannot read"),
        (("--file", str(folder)), "is a folder"),
        (("--file", str(huge)), "at most"),
        (("some text", "--file", str(small)), "exactly one"),
        ((), "exactly one"),
        (("--file", str(small), "--wait"), "--wait is for texts"),
    ]
    for args, needle in cases:
        assert_user_error(run_cli("send", bob_did, *args, home=a_home), needle)
    assert_user_error(run_cli("send", "nobody", "--file", str(small), home=a_home))
    assert _queued_out_rows(a_home) == 0  # nothing was queued
    # An unverified contact from a card: queued all the same (it leaves once verified live).
    _queue(a_home, bob_did, small)
    assert _queued_out_rows(a_home) == 1


def test_the_chat_screen_shows_queued_files_and_says_when_one_is_not_sent(tmp_path: Path) -> None:
    """Alice's `chat bob` in a real pseudo-terminal (tests/e2e/test_chat_ui.py `Terminal`):
    her queued files are listed, the changed one gets one line, the other reaches Bob."""
    a_home, b_home, _alice_did, bob_did = _verified_pair(tmp_path)
    changed, kept = tmp_path / "changed.txt", tmp_path / "kept.txt"
    changed.write_bytes(b"before\n")
    kept.write_bytes(b"kept as it was\n")
    _queue(a_home, bob_did, changed)
    _queue(a_home, bob_did, kept)
    changed.write_bytes(b"after, and longer\n")
    with cli_processes() as started:
        alice = Terminal("chat", bob_did, home=a_home)
        try:
            token = alice.wait_for(TOKEN).group(0)
            bob = Cli("accept", token, "--jsonl", home=b_home)
            started.append(bob)
            alice.wait_for(r"Paste the response token:")
            alice.type(bob.expect("token")["token"] + "\r")
            alice.wait_for(r"queued: file changed\.txt \(7 B\)")
            alice.wait_for(r"queued: file kept\.txt \(15 B\)")
            alice.wait_for(r"not sent: changed\.txt changed since it was queued; it left the queue")
            got = bob.expect("file", timeout=60)
            assert got["name"] == "kept.txt"
            assert Path(got["path"]).read_bytes() == b"kept as it was\n"
            alice.wait_for(r"kept\.txt \(15 B\) arrived, SHA-256 checked")
            alice.type("/quit\r")
            assert alice.wait() == 0
        finally:
            alice.kill()
    assert _queued_out_rows(a_home) == 0
