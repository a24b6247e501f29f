"""`didlink safety-number` and `didlink contacts verify`, through the real command line.

Contacts are added by opening the profile's Store directly (as `didlink accept` would).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink.profile.folder import Profile
from identity.contact import Verification
from identity.keys import IdentityKey
from messaging.safety_number import SafetyNumber
from tests.support.cli import assert_user_error, run_cli

PEERS = {name: IdentityKey(bytes([i + 1]) * 32).did for i, name in enumerate(
    ["Bob", "Carol", "Dave", "Erin", "Frank", "Grace"]
)}  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One profile with an identity and six unverified contacts, shared by this module."""
    path = tmp_path_factory.mktemp("safety") / "profile"
    result = run_cli("init", home=path)
    assert result.returncode == 0, result.stderr
    with Profile(path).open_store() as store:
        for name, did in PEERS.items():
            store.add_contact(did, name=name, now=datetime(2026, 1, 1, tzinfo=UTC))
    return path


def my_did(home: Path) -> str:
    return Profile(home).did()


def verification(home: Path, name: str) -> Verification:
    with Profile(home).open_store() as store:
        return store.find_contact(name).verification


# --- safety-number --------------------------------------------------------------------------


def test_json_digits_match_what_the_peer_computes(home: Path) -> None:
    result = run_cli("safety-number", "Bob", "--json", home=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "digits": SafetyNumber.for_pair(my_did(home), PEERS["Bob"]).digits
    }
    # Bob, on his side, computes with the roles swapped: same digits.
    assert (
        json.loads(result.stdout)["digits"]
        == SafetyNumber.for_pair(PEERS["Bob"], my_did(home)).digits
    )


def test_contact_by_did_and_by_did_prefix(home: Path) -> None:
    by_name = run_cli("safety-number", "Carol", "--json", home=home).stdout
    by_did = run_cli("safety-number", PEERS["Carol"], "--json", home=home).stdout
    by_prefix = run_cli("safety-number", PEERS["Carol"][:24], "--json", home=home).stdout
    assert by_name == by_did == by_prefix != ""


def test_human_output_has_three_lines_of_four_groups_and_a_qr(home: Path) -> None:
    result = run_cli("safety-number", "Bob", home=home)
    assert result.returncode == 0, result.stderr
    number = SafetyNumber.for_pair(my_did(home), PEERS["Bob"])
    lines = [line.strip() for line in result.stdout.splitlines()]
    for expected in number.display_lines():
        assert expected in lines
        assert len(expected.split(" ")) == 4
    assert number.qr_payload() in lines
    assert "\u2588" in result.stdout  # the QR code's full blocks
    assert "Bob" in result.stdout and PEERS["Bob"] in result.stdout


def test_safety_number_of_unknown_contact(home: Path) -> None:
    assert_user_error(run_cli("safety-number", "Zed", home=home), "Zed")
    assert_user_error(run_cli("safety-number", "did:key:z6Mk", "--json", home=home), "contacts")


def test_safety_number_without_identity(tmp_path: Path) -> None:
    result = run_cli("safety-number", "Bob", "--json", home=tmp_path / "empty")
    assert_user_error(result, "noIdentity")


# --- contacts verify ----------------------------------------------------------------------


def test_verify_with_yes_marks_the_contact(home: Path) -> None:
    assert verification(home, "Carol") is Verification.UNVERIFIED
    result = run_cli("contacts", "verify", "Carol", "--yes", "--no-qr", home=home)
    assert result.returncode == 0, result.stderr
    assert "Marked Carol as verified" in result.stdout
    assert SafetyNumber.for_pair(my_did(home), PEERS["Carol"]).display_lines()[0] in result.stdout
    assert verification(home, "Carol") is Verification.SAFETY_NUMBER
    listed = json.loads(run_cli("contacts", "--json", home=home).stdout)
    assert {c["name"]: c["verification"] for c in listed}["Carol"] == "safety-number"


def test_verify_asks_and_no_leaves_the_contact_unverified(home: Path) -> None:
    result = run_cli("contacts", "verify", "Dave", home=home, stdin="n\n")
    assert result.returncode == 1
    assert "Does it match what Dave sees? [y/N]" in result.stdout
    assert "Not verified" in result.stderr
    assert verification(home, "Dave") is Verification.UNVERIFIED

    result = run_cli("contacts", "verify", "Dave", home=home, stdin="y\n")
    assert result.returncode == 0, result.stderr
    assert verification(home, "Dave") is Verification.SAFETY_NUMBER


def test_verify_with_no_answer_does_not_verify(home: Path) -> None:
    result = run_cli("contacts", "verify", "Erin", home=home, stdin="")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert verification(home, "Erin") is Verification.UNVERIFIED


def test_verify_with_scanned_payload(home: Path) -> None:
    mallory = IdentityKey(bytes([99]) * 32).did
    wrong = SafetyNumber.for_pair(mallory, PEERS["Frank"]).qr_payload()
    result = run_cli("contacts", "verify", "Frank", "--scanned", wrong, home=home)
    assert result.returncode == 1
    assert "does NOT match" in result.stderr
    assert verification(home, "Frank") is Verification.SUSPECT  # a mismatch is evidence

    # What Frank's screen shows (his side of the pair) is what we compute.
    right = SafetyNumber.for_pair(PEERS["Frank"], my_did(home)).qr_payload()
    result = run_cli("contacts", "verify", "Frank", "--scanned", right, home=home)
    assert result.returncode == 0, result.stderr
    assert verification(home, "Frank") is Verification.SAFETY_NUMBER


@pytest.mark.parametrize("payload", ["hello", "didlink-sn:1:123", "didlink-sn:9:" + "1" * 60])
def test_verify_with_malformed_scanned_payload(home: Path, payload: str) -> None:
    result = run_cli("contacts", "verify", "Grace", "--scanned", payload, home=home)
    assert_user_error(result, "safety number")
    assert verification(home, "Grace") is Verification.UNVERIFIED


def test_verify_unknown_contact_and_no_identity(home: Path, tmp_path: Path) -> None:
    assert_user_error(run_cli("contacts", "verify", "Zed", "--yes", home=home), "Zed")
    assert_user_error(
        run_cli("contacts", "verify", "Bob", "--yes", home=tmp_path / "empty"), "noIdentity"
    )
