from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli


def test_demo_tells_the_identity_story(home: Path) -> None:
    result = run_cli("demo", "--json", home=home, passphrase=None, timeout=240)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["alice"]["did"].startswith("did:key:z6Mk")
    assert report["bob"]["did"].startswith("did:key:z6Mk")
    assert report["alice"]["did"] != report["bob"]["did"]
    assert report["card"] == {
        "characters": report["card"]["characters"],
        "tampered_refused": True,
        "second_accept_refused": True,
    }
    assert report["card"]["characters"] < 400
    assert report["safety_number"]["match"] is True
    assert len(report["safety_number"]["digits"]) == 60
    assert not home.exists(), "the demo must not touch the user's profile"


def test_demo_talks_to_people(home: Path) -> None:
    result = run_cli("demo", home=home, passphrase=None, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "They match." in result.stdout
    assert "badSignature" in result.stdout
