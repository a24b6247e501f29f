"""Names at first contact (issue 27, points 2 and 10), through the real command line.

- the profile's own name: `init --name`, `whoami`, `didlink name`, the default label of cards;
- finding a contact: a name, the full DID, or any unique start of the DID (with or without
  `did:key:`), an ambiguous one listing the candidates;
- a card makes a contact on one side only: `accept` says so, and the safety number can be
  compared, and the contact verified, from the side that does not have the other yet.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink.profile import own_name
from didlink.profile.folder import Profile
from didlink.profile.store import Store
from identity import invitation
from identity.contact import Verification
from identity.keys import IdentityKey
from messaging.safety_number import SafetyNumber
from tests.support.cli import assert_user_error, run_cli

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# DIDs chosen for their starts: ONE and SIX share "did:key:z6Mkon", TWO starts "z6Mko9";
# FOUR is the only one of them starting "z6Mkt".
ONE = IdentityKey(bytes([1]) * 32).did  # did:key:z6Mkon3N...
SIX = IdentityKey(bytes([6]) * 32).did  # did:key:z6Mkon22...
TWO = IdentityKey(bytes([2]) * 32).did  # did:key:z6Mko9hT...
FOUR = IdentityKey(bytes([4]) * 32).did  # did:key:z6Mkt631...


def init(home: Path, *extra: str) -> str:
    result = run_cli("init", *extra, home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def inspect_json(token: str, home: Path) -> dict[str, object]:
    result = run_cli("inspect", token, "--json", home=home, passphrase=None)
    assert result.returncode == 0, result.stderr
    value: dict[str, object] = json.loads(result.stdout)
    return value


# --- the profile's own name -----------------------------------------------------------------


def test_init_name_whoami_and_the_card_label(home: Path) -> None:
    did = init(home, "--name", "  Bob   Smith ")
    shown = run_cli("whoami", "--json", home=home, passphrase=None)
    assert json.loads(shown.stdout) == {
        "did": did,
        "name": "Bob Smith",
        "unlocked_until": None,
    }  # normalised
    assert 'Your name (suggested to the people you invite or answer): "Bob Smith"' in (
        run_cli("whoami", home=home, passphrase=None).stdout
    )
    name_file = home / own_name.NAME_FILE
    assert stat.S_IMODE(os.stat(name_file).st_mode) == 0o600
    card = run_cli("invite", "--card", "--json", home=home)
    assert card.returncode == 0, card.stderr
    assert inspect_json(json.loads(card.stdout)["token"], home)["label"] == "Bob Smith"
    other = run_cli("invite", "--card", "--json", "--label", "Robert", home=home)
    assert inspect_json(json.loads(other.stdout)["token"], home)["label"] == "Robert"


def test_name_command_shows_sets_and_clears(home: Path) -> None:
    init(home)
    assert "You suggest no name" in run_cli("name", home=home, passphrase=None).stdout
    card = run_cli("invite", "--card", "--json", home=home)
    assert inspect_json(json.loads(card.stdout)["token"], home)["label"] is None
    result = run_cli("name", "Zoé", home=home, passphrase=None)
    assert result.returncode == 0, result.stderr
    assert 'Your name is now "Zoé"' in result.stdout
    assert 'Your name: "Zoé"' in run_cli("name", home=home, passphrase=None).stdout
    card = run_cli("invite", "--card", "--json", home=home)
    assert inspect_json(json.loads(card.stdout)["token"], home)["label"] == "Zoé"
    cleared = run_cli("name", "--clear", home=home, passphrase=None)
    assert cleared.returncode == 0 and not (home / own_name.NAME_FILE).exists()
    assert json.loads(run_cli("whoami", "--json", home=home).stdout)["name"] is None


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("", "must not be empty"),
        ("Bob\x1b[2J", "control"),
        ("Bob\u202e", "control"),
        ("did:key:z6MkBob", "look like a DID"),
        ("z6MkBob", "look like a DID"),
        ("x" * 65, "at most 64"),
        ("😀" * 40, "128 bytes"),  # 40 characters, 160 bytes: too long for a token's label
        ("Pаypal", "mix"),  # Cyrillic а in Latin
    ],
)
def test_bad_own_names_are_refused_before_anything(
    home: Path, shared: Path, name: str, needle: str
) -> None:
    assert_user_error(run_cli("init", "--name", name, home=home), needle)
    assert not (home / "keystore.json").exists()  # refused before the passphrase
    assert_user_error(run_cli("name", name, home=shared, passphrase=None), needle)
    assert not (shared / own_name.NAME_FILE).exists()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile with an identity, shared by the tests that leave no name file behind."""
    home = tmp_path_factory.mktemp("names") / "profile"
    init(home)
    return home


def test_name_without_identity_and_usage(home: Path) -> None:
    assert_user_error(run_cli("name", "Bob", home=home), "noIdentity")
    init(home)
    assert_user_error(run_cli("name", "Bob", "--clear", home=home), "not both")


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"\xff\xfe",
        b'["Bob"]',
        b'{"name": 7}',
        b'{"name": "Bob", "extra": 1}',
        b'{"name": "Bob\\u001b[2J"}',
        b'{"name": "' + b"x" * 5000 + b'"}',
    ],
)
def test_a_damaged_name_file_is_an_error_never_a_label(shared: Path, content: bytes) -> None:
    name_file = shared / own_name.NAME_FILE
    name_file.write_bytes(content)
    try:
        for args in (("whoami",), ("invite", "--card")):
            result = run_cli(*args, home=shared)
            assert_user_error(result, str(name_file))
            assert "\x1b" not in result.stderr
    finally:
        name_file.unlink()


def test_the_label_limit_copy_is_the_tokens() -> None:
    assert own_name.MAX_LABEL_BYTES == invitation.MAX_LABEL_BYTES
    assert own_name.checked("x" * 64) == "x" * 64


# --- finding a contact ----------------------------------------------------------------------


@pytest.fixture
def contacts(home: Path) -> Path:
    """ONE "Alice", SIX "Frank", TWO unnamed (suggests "Bob"), FOUR unnamed."""
    init(home)
    with Store(home / "store.sqlite3") as store:
        store.add_contact(ONE, name="Alice", now=T0)
        store.add_contact(SIX, name="Frank", now=T0)
        store.add_contact(TWO, suggested_name="Bob", now=T0)
        store.add_contact(FOUR, now=T0)
    return home


def digits(home: Path, who: str) -> str:
    result = run_cli("safety-number", who, "--json", home=home, passphrase=None)
    assert result.returncode == 0, result.stderr
    value: str = json.loads(result.stdout)["digits"]
    return value


def test_any_unique_start_of_the_did(contacts: Path) -> None:
    mine = Profile(contacts).did()
    expected = SafetyNumber.for_pair(mine, FOUR).digits
    for who in (FOUR, FOUR[:13], "did:key:z6Mkt", "z6Mkt", FOUR[8:20], "DID:KEY:z6Mkt"):
        assert digits(contacts, who) == expected, who
    assert digits(contacts, "z6Mkon3") == SafetyNumber.for_pair(mine, ONE).digits
    assert digits(contacts, "z6Mko9") == SafetyNumber.for_pair(mine, TWO).digits
    assert digits(contacts, "alice") == SafetyNumber.for_pair(mine, ONE).digits


def test_an_ambiguous_start_lists_the_candidates(contacts: Path) -> None:
    result = run_cli("contacts", "rename", "z6Mkon", "Someone", home=contacts)
    assert_user_error(
        result,
        "is the start of 2 contacts' DIDs",
        f"Alice ({ONE[:20]}...)",
        f"Frank ({SIX[:20]}...)",
        "give more of the DID, or a name",
    )
    result = run_cli("chat", "did:key:z6Mko", home=contacts)
    assert_user_error(result, "start of 3 contacts' DIDs", f"~Bob ({TWO[:19]}...)")
    result = run_cli("safety-number", "z6Mk", home=contacts)
    assert_user_error(result, "start of every contact's DID")
    with Store(contacts / "store.sqlite3") as store:  # nothing was renamed
        assert store.get_contact(ONE).name == "Alice"  # type: ignore[union-attr]


def test_many_candidates_are_bounded(home: Path) -> None:
    init(home)
    with Store(home / "store.sqlite3") as store:
        for seed in range(1, 12):
            store.add_contact(IdentityKey(bytes([seed]) * 32).did, now=T0)
    result = run_cli("contacts", "remove", "z6Mk", home=home)
    assert_user_error(result, "start of every contact's DID")
    result = run_cli("contacts", "remove", "did:key:z6M", home=home)
    assert_user_error(result, "start of every contact's DID")
    all_of_them = run_cli("history", "did:key:z6Mk", home=home)
    assert_user_error(all_of_them, "start of every contact's DID")


def test_no_match(contacts: Path) -> None:
    assert_user_error(
        run_cli("contacts", "remove", "z6Mkzzz", home=contacts),
        "no contact has a DID starting with z6Mkzzz",
    )
    assert_user_error(run_cli("chat", "Nobody", home=contacts), "no contact named 'Nobody'")
    stranger = IdentityKey(bytes([9]) * 32).did
    assert_user_error(
        run_cli("contacts", "rename", stranger, "X", home=contacts), "not one of your contacts"
    )


def test_a_suggested_name_never_resolves_but_says_how_to_adopt_it(contacts: Path) -> None:
    result = run_cli("chat", "Bob", home=contacts)
    assert_user_error(result, "no contact named 'Bob'", f"{TWO} suggests that name")
    with Store(contacts / "store.sqlite3") as store:  # another one says he is Bob
        store.add_contact(IdentityKey(bytes([9]) * 32).did, suggested_name="Bob", now=T0)
    several = run_cli("chat", "Bob", home=contacts)
    assert_user_error(several, "several contacts suggest that name", TWO, "rename DID NAME")
    adopted = run_cli("contacts", "rename", "z6Mko9", home=contacts)
    assert adopted.returncode == 0, adopted.stderr
    assert digits(contacts, "Bob") == digits(contacts, TWO)


def test_names_cannot_look_like_a_did_start(contacts: Path) -> None:
    assert_user_error(
        run_cli("contacts", "rename", "Alice", "z6MkAlice", home=contacts), "look like a DID"
    )


# --- a card makes a contact on one side only ----------------------------------------------


def test_a_card_is_one_way_and_the_safety_number_works_from_both_sides(tmp_path: Path) -> None:
    alice_home, bob_home = tmp_path / "alice", tmp_path / "bob"
    alice = init(alice_home, "--name", "Alice")
    bob = init(bob_home)
    card = json.loads(run_cli("invite", "--card", "--json", home=alice_home).stdout)["token"]

    refused = run_cli("accept", card, "--label", "Bob", home=bob_home)
    assert_user_error(refused, "--label goes nowhere", "didlink invite --card")

    accepted = run_cli("accept", card, home=bob_home)
    assert accepted.returncode == 0, accepted.stderr
    out = " ".join(accepted.stdout.split())
    assert '"Alice" does not have you as a contact yet' in out
    assert "didlink invite --card" in out
    assert f"didlink safety-number {bob}" in out  # what Alice runs, before she has Bob
    assert f"didlink safety-number {alice}" in out

    # Bob (has Alice) and Alice (does not have Bob): the same 60 digits.
    bobs = digits(bob_home, alice)
    alices = digits(alice_home, bob)
    assert bobs == alices == SafetyNumber.for_pair(alice, bob).digits
    assert digits(alice_home, bob.removeprefix("did:key:")) == alices
    shown = run_cli("safety-number", bob, "--no-qr", home=alice_home)
    assert "(not one of your contacts yet)" in shown.stdout
    assert f"didlink contacts verify {bob}" in shown.stdout
    with Store(alice_home / "store.sqlite3") as store:
        assert store.get_contact(bob) is None  # looking adds nothing

    # Bob's card on Alice's side gives the same number too (the card's signer).
    bobs_card = json.loads(
        run_cli("invite", "--card", "--json", "--label", "Bob", home=bob_home).stdout
    )["token"]
    assert digits(alice_home, bobs_card) == alices

    # Alice answers "no": nobody is added.
    no = run_cli("contacts", "verify", bob, "--no-qr", home=alice_home, stdin="n\n")
    assert no.returncode == 1 and "not added" in no.stderr
    # Alice confirms with Bob's card: he is added, verified, his label a mere suggestion.
    yes = run_cli("contacts", "verify", bobs_card, "--yes", "--no-qr", home=alice_home)
    assert yes.returncode == 0, yes.stderr
    assert "Added" in yes.stdout and "verified (safety number)" in yes.stdout
    with Store(alice_home / "store.sqlite3") as store:
        contact = store.get_contact(bob)
    assert contact is not None
    assert contact.verification is Verification.SAFETY_NUMBER
    assert (contact.name, contact.suggested_name) == (None, "Bob")


def test_a_scanned_mismatch_adds_nobody(tmp_path: Path) -> None:
    home = tmp_path / "alice"
    init(home)
    stranger = IdentityKey(bytes([9]) * 32).did
    wrong = SafetyNumber.for_pair(stranger, IdentityKey(bytes([8]) * 32).did).qr_payload()
    result = run_cli("contacts", "verify", stranger, "--scanned", wrong, home=home)
    assert result.returncode == 1 and "was not added" in result.stderr
    with Store(home / "store.sqlite3") as store:
        assert store.get_contact(stranger) is None


def test_safety_number_with_oneself_or_garbage(home: Path) -> None:
    mine = init(home)
    assert_user_error(run_cli("safety-number", mine, home=home), "your own DID")
    assert_user_error(run_cli("safety-number", "didlink:2odAS7", home=home), "error: malformed")
    assert_user_error(
        run_cli(
            "safety-number", "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme", home=home
        ),
        "not one of your contacts",
    )
