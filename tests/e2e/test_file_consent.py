"""`--files ask` and `--files refuse` end to end (issue 26): two real `didlink` processes over
real WebRTC, driven by --jsonl (specs/cli-jsonl.md sections 2, 3 and 5)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.e2e.driver import Cli, cli_processes, make_identity

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def _connected(started: list[Cli], a_home: Path, b_home: Path, *bob_args: str) -> tuple[Cli, Cli]:
    """Alice invites, Bob accepts with `bob_args`; both confirm the SAS."""
    alice = Cli("invite", "--jsonl", home=a_home)
    started.append(alice)
    token = alice.expect("token")["token"]
    bob = Cli("accept", token, "--jsonl", *bob_args, home=b_home)
    started.append(bob)
    alice.send("response", token=bob.expect("token")["token"])
    alice.expect("sas"), bob.expect("sas")
    alice.send("confirm_sas")
    bob.send("confirm_sas")
    alice.expect("connected"), bob.expect("connected")
    return alice, bob


def _quit_both(alice: Cli, bob: Cli) -> None:
    alice.send("quit")
    assert alice.expect("closed")["reason"] == "quit"
    assert bob.expect("closed")["reason"] == "peer closed"
    assert alice.wait() == 0, alice.stderr
    assert bob.wait() == 0, bob.stderr


def test_files_ask_offers_each_file_to_the_user(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    alice_did, bob_did = make_identity(a_home), make_identity(b_home)
    photo, big = os.urandom(1000), os.urandom(200_000)
    (tmp_path / "photo.jpg").write_bytes(photo)
    (tmp_path / "big.bin").write_bytes(big)
    with cli_processes() as started:
        alice, bob = _connected(started, a_home, b_home, "--files", "ask")
        alice.send("send_file", path=str(tmp_path / "photo.jpg"))
        offer = bob.expect("file_offer")
        assert offer["from"] == alice_did and offer["name"] == "photo.jpg"
        assert offer["size"] == len(photo) and offer["sha256"] == hashlib.sha256(photo).hexdigest()
        assert not list((b_home / "downloads").glob("*"))  # nothing written before consent
        bob.send("refuse_file", id=offer["id"])
        refused = alice.expect("file_refused")
        assert refused["name"] == "photo.jpg" and refused["by"] == "peer"
        assert refused["from"] == bob_did
        assert bob.expect("file_refused")["by"] == "us"
        bob.send("accept_file", id=offer["id"])  # answered already
        assert "no file offer" in bob.expect("error")["message"]
        alice.send("send_file", path=str(tmp_path / "big.bin"))
        second = bob.expect("file_offer")
        assert second["name"] == "big.bin"
        bob.send("accept_file", id=second["id"])
        got = bob.expect("file")
        assert Path(got["path"]).read_bytes() == big
        assert alice.expect("file_sent")["sha256"] == got["sha256"]
        _quit_both(alice, bob)
    assert not (b_home / "downloads" / "photo.jpg").exists()


def test_files_refuse_refuses_every_file(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home), make_identity(b_home)
    (tmp_path / "empty.txt").write_bytes(b"")
    with cli_processes() as started:
        alice, bob = _connected(started, a_home, b_home, "--files", "refuse")
        alice.send("send_file", path=str(tmp_path / "empty.txt"))
        assert alice.expect("file_refused")["name"] == "empty.txt"
        refused = bob.expect("file_refused")
        assert refused["by"] == "us" and refused["size"] == 0
        alice.send("send", text="still talking")
        assert bob.expect("message")["text"] == "still talking"
        _quit_both(alice, bob)
    assert not bob.seen("file") and not bob.seen("file_offer")
