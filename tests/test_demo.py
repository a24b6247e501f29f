"""`didlink demo` end to end: real processes, real WebRTC on this machine's own address."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run_cli

pytestmark = pytest.mark.e2e


def _report(home: Path, *args: str) -> dict:
    result = run_cli("demo", "--json", *args, home=home, passphrase=None, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_demo_tells_the_whole_story(home: Path) -> None:
    report = _report(home)
    alice, bob = report["alice"], report["bob"]
    assert alice["did"].startswith("did:key:z6Mk") and bob["did"].startswith("did:key:z6Mk")
    assert alice["did"] != bob["did"]
    assert report["card"]["characters"] < 400
    assert report["card"]["tampered_refused"] and report["card"]["second_accept_refused"]
    assert report["safety_number"]["match"] is True
    assert len(report["safety_number"]["digits"]) == 60
    # the SAS each side saw: 7 emoji, 3 numbers in Matrix's range, equal on both sides
    assert alice["sas"] == bob["sas"]
    assert len(alice["sas"]["emoji"]) == 7 and len(alice["sas"]["names"]) == 7
    assert all(1000 <= n <= 9191 for n in alice["sas"]["decimal"])
    assert report["sas_match"] is True and report["refused"] is False
    assert report["messages"]["alice_to_bob"] == ["Hi Bob! I typed this before we were connected."]
    assert report["messages"]["bob_to_alice"] == ["Hello Alice, it is really me."]
    assert report["file"]["alice_to_bob"]["intact"] and report["file"]["bob_to_alice"]["intact"]
    assert {"connect_to_verified", "message_delivery"} <= set(report["timings_ms"])
    # reach: Bob offline, the text waits on two local relays, arrives once, Alice sees delivered
    assert report["mailbox"] == {
        "received": ["Dinner on Friday? (sent while you were offline)"],
        "received_again": 0,
        "delivered": True,
        "relays_saw_plaintext": False,
    }
    assert not home.exists(), "the demo must not touch the user's profile"


def test_demo_mitm_is_caught_by_the_sas(home: Path) -> None:
    report = _report(home, "--attack", "mitm")
    assert report["alice"]["sas"] != report["bob"]["sas"]
    assert report["sas_match"] is False
    assert report["refused"] is True
    assert report["messages"] == {"leaked_to_mallory": 0}


def test_demo_talks_to_people(home: Path) -> None:
    result = run_cli("demo", home=home, passphrase=None, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "They match." in result.stdout
    assert "Same SAS on both screens." in result.stdout
    assert "badSignature" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
