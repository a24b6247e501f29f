"""First contact end to end: two real `didlink` processes over real WebRTC, driven by --jsonl.

Each test creates two fresh profiles, runs `didlink invite --jsonl` and `didlink accept TOKEN
--jsonl`, passes the response token back and goes through the SAS gate (specs/cli-jsonl.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from ipaddress import ip_address
from pathlib import Path

import pytest

from identity.invitation import Invitation, InvitationKind
from identity.keystore import unlock
from identity.token import encode_token
from tests.e2e.driver import PASSPHRASE, Cli, cli_processes, connect_pair, make_identity
from tests.support.cli import assert_user_error, run_cli
from transport import Candidate, CandidateKind, CompactOffer, SetupRole

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


def _contacts(home: Path) -> dict[str, str]:
    result = run_cli("contacts", "--json", home=home)
    assert result.returncode == 0, result.stderr
    return {c["did"]: c["verification"] for c in json.loads(result.stdout)}


def _confirm(alice: Cli, bob: Cli) -> None:
    sas_a, sas_b = alice.expect("sas"), bob.expect("sas")
    assert sas_a == sas_b  # same emoji, names and numbers on both sides
    assert len(sas_a["emoji"]) == 7 and len(sas_a["names"]) == 7 and len(sas_a["decimal"]) == 3
    alice.send("confirm_sas")
    bob.send("confirm_sas")


def _quit_both(alice: Cli, bob: Cli) -> None:
    alice.send("quit")
    assert alice.expect("closed")["reason"] == "quit"
    assert bob.expect("closed")["reason"] == "peer closed"
    assert alice.wait() == 0, alice.stderr
    assert bob.wait() == 0, bob.stderr


def test_first_contact_story(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    alice_did, bob_did = make_identity(a_home), make_identity(b_home)
    files = tmp_path / "files"
    files.mkdir()
    to_bob, to_alice = os.urandom(300_000), os.urandom(123_457)
    (files / "to-bob.bin").write_bytes(to_bob)
    (files / "to alice.txt").write_bytes(to_alice)
    with cli_processes() as started:
        alice, bob = connect_pair(started, a_home, b_home)
        # Typed before the SAS was confirmed: queued, nothing leaves yet.
        alice.send("send", text="queued before connecting", ref="q1")
        bob.send("send", text="héllo from bob 🙂")
        alice.send_line("{not json")
        assert "JSON" in alice.expect("error")["message"]
        bob.send("response", token="didlink:xyz")  # only the inviter takes a response
        assert bob.expect("error")["message"]
        _confirm(alice, bob)
        connected_a, connected_b = alice.expect("connected"), bob.expect("connected")
        assert connected_a["peer"] == bob_did and connected_a["verified"] is True
        assert connected_b["peer"] == alice_did and connected_b["verified"] is True
        assert not alice.seen("sent")  # the queued message left only after connected
        sent = alice.expect("sent")
        assert sent["ref"] == "q1"
        queued = alice.expect("queued")  # listed once Bob was known (specs/cli-jsonl.md 2a)
        assert [(m["id"], m["ref"]) for m in queued["messages"]] == [(sent["id"], "q1")]
        got = bob.expect("message")
        assert got.pop("sent_at") == queued["messages"][0]["typed_at"]  # when Alice typed it
        assert got == {
            "event": "message",
            "from": alice_did,
            "id": sent["id"],
            "text": "queued before connecting",
            "via": "live",
        }
        assert alice.expect("message")["text"] == "héllo from bob 🙂"
        assert alice.expect("delivered")["id"] == sent["id"]
        # A file each way.
        alice.send("send_file", path=str(files / "to-bob.bin"))
        bob.send("send_file", path=str(files / "to alice.txt"))
        at_bob, at_alice = bob.expect("file"), alice.expect("file")
        assert at_bob["from"] == alice_did and at_bob["name"] == "to-bob.bin"
        assert at_bob["size"] == len(to_bob)
        assert at_bob["sha256"] == hashlib.sha256(to_bob).hexdigest()
        assert Path(at_bob["path"]) == b_home / "downloads" / "to-bob.bin"
        assert Path(at_bob["path"]).read_bytes() == to_bob
        assert Path(at_alice["path"]).read_bytes() == to_alice
        assert at_alice["name"] == "to alice.txt"
        assert alice.expect("file_sent")["sha256"] == at_bob["sha256"]
        assert bob.expect("file_sent")["size"] == len(to_alice)
        alice.send("send_file", path=str(tmp_path / "missing"))
        assert "cannot read" in alice.expect("error")["message"]
        _quit_both(alice, bob)
    assert _contacts(a_home) == {bob_did: "sas"}
    assert _contacts(b_home) == {alice_did: "sas"}


def test_two_hundred_messages_each_way_in_order_exactly_once(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home), make_identity(b_home)
    count = 200
    with cli_processes() as started:
        alice, bob = connect_pair(started, a_home, b_home)
        for i in range(20):  # some queued before the SAS is confirmed
            alice.send("send", text=f"a{i}")
            bob.send("send", text=f"b{i}")
        _confirm(alice, bob)
        for i in range(20, count):
            alice.send("send", text=f"a{i}")
            bob.send("send", text=f"b{i}")
        received_b = [bob.expect("message")["text"] for _ in range(count)]
        received_a = [alice.expect("message")["text"] for _ in range(count)]
        assert received_b == [f"a{i}" for i in range(count)]
        assert received_a == [f"b{i}" for i in range(count)]
        deadline = time.monotonic() + 20
        while len(alice.seen("delivered")) < count and time.monotonic() < deadline:
            alice.expect("delivered")
        sent_ids = [e["id"] for e in alice.seen("sent")]
        assert len(sent_ids) == len(set(sent_ids)) == count
        assert sorted(e["id"] for e in alice.seen("delivered")) == sorted(sent_ids)
        _quit_both(alice, bob)
    assert len(bob.seen("message")) == count  # nothing arrived twice, even at the end
    assert len(alice.seen("message")) == count


def test_five_megabyte_file(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home), make_identity(b_home)
    data = os.urandom(5 * 1024 * 1024)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    (b_home / "downloads").mkdir(parents=True)
    (b_home / "downloads" / "big.bin").write_bytes(b"an older file")  # must not be overwritten
    with cli_processes() as started:
        alice, bob = connect_pair(started, a_home, b_home)
        _confirm(alice, bob)
        alice.expect("connected")
        start = time.monotonic()
        alice.send("send_file", path=str(source))
        received = bob.expect("file", timeout=45)
        seconds = time.monotonic() - start
        assert Path(received["path"]).name == "big (1).bin"
        assert Path(received["path"]).read_bytes() == data
        assert (b_home / "downloads" / "big.bin").read_bytes() == b"an older file"
        sent = alice.expect("file_sent")
        assert sent["sha256"] == hashlib.sha256(data).hexdigest() == received["sha256"]
        for side in (alice, bob):
            progress = [e["bytes"] for e in side.seen("progress")]
            assert progress == sorted(progress) and progress[-1] == len(data)
            assert 5 <= len(progress) <= 21  # at most one every ~5 %
        _quit_both(alice, bob)
    print(f"5 MiB in {seconds:.2f} s: {len(data) / seconds / 1e6:.1f} MB/s")
    assert not list((b_home / "downloads").glob(".didlink-*"))  # no temporary file left


@pytest.mark.parametrize("rejecter", ["alice", "bob"])
def test_rejected_sas_sends_nothing_and_only_marks_the_contact_suspect(
    tmp_path: Path, rejecter: str
) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    alice_did, bob_did = make_identity(a_home), make_identity(b_home)
    with cli_processes() as started:
        alice, bob = connect_pair(started, a_home, b_home)
        alice.send("send", text="must never arrive")
        bob.send("send", text="must never arrive either")
        alice.expect("sas")
        bob.expect("sas")
        # specs/store.md "Live sessions": nothing is written before the SAS step is over
        assert _contacts(a_home) == {}
        assert _contacts(b_home) == {}
        no, yes = (alice, bob) if rejecter == "alice" else (bob, alice)
        yes.send("confirm_sas")
        no.send("reject_sas")
        assert no.expect("closed")["reason"] == "sas rejected"
        assert yes.expect("closed")["reason"] == "sas rejected by peer"
        assert no.wait() == 1
        assert yes.wait() == 1
    for side in (alice, bob):
        names = [e["event"] for e in side.events]
        assert "connected" not in names and "message" not in names and "sent" not in names
        assert "rejected the SAS" in side.stderr
    # Both sides keep only the mark (a rejected SAS by either user is a possible interception).
    assert _contacts(a_home) == {bob_did: "suspect"}
    assert _contacts(b_home) == {alice_did: "suspect"}


def test_single_use_invitation_accepted_twice(tmp_path: Path) -> None:
    a_home, b_home, c_home = tmp_path / "alice", tmp_path / "bob", tmp_path / "carol"
    for home in (a_home, b_home, c_home):
        make_identity(home)
    with cli_processes() as started:
        alice = Cli("invite", "--jsonl", home=a_home)
        started.append(alice)
        token = alice.expect("token")["token"]
        bob = Cli("accept", token, "--jsonl", home=b_home)
        started.append(bob)
        response_b = bob.expect("token")["token"]
        # Bob's profile already used it: refused before anything happens.
        assert_user_error(run_cli("accept", token, "--jsonl", home=b_home), "alreadyUsed")
        # Carol answers too (she has not seen it), but Alice takes only the first response.
        carol = Cli("accept", token, "--jsonl", home=c_home)
        started.append(carol)
        response_c = carol.expect("token")["token"]
        alice.send("response", token="didlink:forged")
        assert alice.expect("error")["message"].startswith("response refused")
        alice.send("response", token=token)  # an invitation is not a response
        assert "not a response" in alice.expect("error")["message"]
        alice.send("response", token=response_b)  # the wait went on: this one is taken
        _confirm(alice, bob)
        alice.send("response", token=response_c)
        assert "already answered" in alice.expect("error")["message"]
        alice.expect("connected")
        _quit_both(alice, bob)


def _expired_live_token(home: Path) -> str:
    key = unlock(home / "keystore.json", PASSPHRASE)
    offer = CompactOffer(
        setup=SetupRole.ACTPASS,
        ufrag="abcd",
        pwd="a" * 22,
        fingerprint=bytes(32),
        candidates=(Candidate(kind=CandidateKind.HOST, ip=ip_address("192.0.2.1"), port=9),),
    )
    invitation = Invitation.create(
        key,
        now=int(time.time()) - 3600,
        lifetime=600,
        kind=InvitationKind.INVITE,
        connect=offer.to_cbor(),
    )
    return encode_token(invitation)


def test_expired_invitation_is_refused(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home), make_identity(b_home)
    token = _expired_live_token(a_home)
    result = run_cli("accept", token, "--jsonl", home=b_home)
    assert_user_error(result, "expired")
    assert not (b_home / "store.sqlite3").exists() or _contacts(b_home) == {}


def test_quit_while_waiting_for_the_response(tmp_path: Path) -> None:
    make_identity(tmp_path / "alice")
    with cli_processes() as started:
        alice = Cli("invite", "--jsonl", "--label", "Alice", home=tmp_path / "alice")
        started.append(alice)
        alice.expect("token")
        alice.send("confirm_sas")  # nothing to confirm yet
        assert "no SAS" in alice.expect("error")["message"]
        alice.send("quit")
        assert alice.expect("closed") == {"event": "closed", "reason": "quit"}
        assert alice.wait() == 0


def test_bad_settings_are_refused_before_anything_starts(tmp_path: Path) -> None:
    make_identity(tmp_path / "alice")
    env = {"DIDLINK_CONNECT_TIMEOUT": "soon"}
    result = run_cli("invite", "--jsonl", home=tmp_path / "alice", env=env)
    assert_user_error(result, "DIDLINK_CONNECT_TIMEOUT")
    assert_user_error(run_cli("invite", "--multi-use", home=tmp_path / "alice"), "connects once")
