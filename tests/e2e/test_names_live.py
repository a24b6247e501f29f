"""Names at first contact, live (issue 27, point 2): real processes over real WebRTC.

The invitee's response carries its signed label (its profile's name, or `accept --label`); the
inviter learns it as a *suggestion*: `connected` carries it, the contact keeps it apart from
its name, and the inviter's chat screen (in a real pseudo-terminal) names the peer `~Bob`
rather than by DID, says how to adopt it, and `/name` adopts it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.driver import Cli, cli_processes, connect_pair, make_identity
from tests.e2e.test_chat_ui import Terminal, connected, to_the_sas
from tests.support.cli import assert_user_error, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def contacts(home: Path) -> dict[str, dict[str, object]]:
    result = run_cli("contacts", "--json", home=home)
    assert result.returncode == 0, result.stderr
    return {c["did"]: c for c in json.loads(result.stdout)}


def set_name(home: Path, name: str) -> None:
    result = run_cli("name", name, home=home)
    assert result.returncode == 0, result.stderr


def test_the_inviter_learns_the_invitees_name_as_a_suggestion(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    alice_did, bob_did = make_identity(a_home), make_identity(b_home)
    set_name(a_home, "Alice")  # the default label of Alice's invitation
    set_name(b_home, "Bob")  # the default label of Bob's response
    with cli_processes() as started:
        alice, bob = connect_pair(started, a_home, b_home)
        for side in (alice, bob):
            side.expect("sas")
            side.send("confirm_sas")
        at_alice, at_bob = alice.expect("connected"), bob.expect("connected")
        assert (at_alice["peer"], at_alice["suggested_name"]) == (bob_did, "Bob")
        assert (at_bob["peer"], at_bob["suggested_name"]) == (alice_did, "Alice")
        alice.send("quit")
        assert alice.expect("closed")["reason"] == "quit"
        assert bob.expect("closed")["reason"] == "peer closed"
        assert alice.wait() == 0 and bob.wait() == 0
    # Each side keeps the other's label as a suggestion only: it names nobody yet.
    bob_at_alice = contacts(a_home)[bob_did]
    assert (bob_at_alice["name"], bob_at_alice["suggested_name"]) == (None, "Bob")
    assert bob_at_alice["verification"] == "sas"
    alice_at_bob = contacts(b_home)[alice_did]
    assert (alice_at_bob["name"], alice_at_bob["suggested_name"]) == (None, "Alice")
    # Adopting it is the inviter's choice, by a start of the DID.
    adopted = run_cli("contacts", "rename", bob_did.removeprefix("did:key:")[:10], home=a_home)
    assert adopted.returncode == 0, adopted.stderr
    assert contacts(a_home)[bob_did]["name"] == "Bob"


def test_accept_label_overrides_and_a_did_like_label_is_dropped(tmp_path: Path) -> None:
    """`accept --label` replaces the profile's name; a label that is not a valid name (here
    one that looks like a DID) reaches the inviter as no suggestion at all."""
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home)
    bob_did = make_identity(b_home)
    set_name(b_home, "Bob")
    with cli_processes() as started:
        alice = Cli("invite", "--jsonl", home=a_home)
        started.append(alice)
        token = alice.expect("token")["token"]
        refused = run_cli("accept", token, "--label", "x\x1b[2J", "--jsonl", home=b_home)
        assert_user_error(refused, "control characters")  # before anything: nothing burnt
        looks_like_a_did = "did:key:z6MkAlice"  # a valid label, but never a name
        bob = Cli("accept", token, "--label", looks_like_a_did, "--jsonl", home=b_home)
        started.append(bob)
        response = bob.expect("token")["token"]
        inspected = run_cli("inspect", response, "--json", home=a_home)
        assert json.loads(inspected.stdout)["label"] == looks_like_a_did  # signed, carried
        alice.send("response", token=response)
        for side in (alice, bob):
            side.expect("sas")
            side.send("confirm_sas")
        assert alice.expect("connected")["suggested_name"] is None
        bob.expect("connected")
        alice.send("quit")
        assert alice.wait() == 0 and bob.wait() == 0
    assert contacts(a_home)[bob_did]["suggested_name"] is None


def test_the_inviters_screen_names_the_peer_by_its_unconfirmed_name(tmp_path: Path) -> None:
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home)
    bob_did = make_identity(b_home)
    set_name(b_home, "Bob")
    alice: Terminal | None = None
    try:
        with cli_processes() as started:
            alice, bob = to_the_sas(started, a_home, b_home)
            mark = connected(alice, bob)
            alice.wait_for(re.escape(f"Connected to ~Bob ({bob_did}), SAS verified, direct."))
            hint = alice.wait_for(
                r'They call themselves "Bob" \(~Bob until you save it as your name for them\)\.'
                r"\s+Save it: /name here, or didlink contacts rename " + re.escape(bob_did)
            )
            alice.wait_for(r"~Bob>", after=hint.end())  # the prompt
            bob.send("send", text="hello from bob")
            mark = alice.wait_for(r"\[\d\d:\d\d\] ~Bob: hello from bob", after=mark).end()
            assert bob_did[:20] + "..." not in alice.screen  # never the shortened DID
            # Alice adopts the name he suggests, right there: from now on he is Bob.
            alice.type("/name\r")
            mark = alice.wait_for(
                re.escape(f'Saved: "Bob" is your name for {bob_did}.'), after=mark
            ).end()
            bob.send("send", text="second")
            alice.wait_for(r"\[\d\d:\d\d\] Bob: second", after=mark)
            alice.type("/quit\r")
            assert bob.expect("closed")["reason"] == "peer closed"
            assert alice.wait() == 0, alice.screen[-3000:]
            end = alice.wait_for(r"Session closed: you left the chat\.").end()
            assert "Save it" not in alice.screen[end:]  # named: no hint at the end
    finally:
        if alice is not None:
            alice.kill()
    # Saved by Alice's own choice (/name): his name now, and the suggestion settled.
    assert contacts(a_home)[bob_did]["name"] == "Bob"
    assert contacts(a_home)[bob_did]["suggested_name"] is None
