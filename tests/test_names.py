"""Contact names (didlink/profile/names.py, specs/store.md "Names"): the user's own words, never
invisible, mixed-script or confusable with another contact's name (issue 26, class 2)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from didlink.errors import UserError
from didlink.profile.names import check_name, folded_skeleton, look_alike, skeleton
from didlink.profile.store import Store
from identity.contact import Verification
from identity.keys import IdentityKey

ALICE = IdentityKey(bytes(range(1, 33))).did
MALLORY = IdentityKey(bytes(range(2, 34))).did
CAROL = IdentityKey(bytes(range(3, 35))).did
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("  Alice  ", "Alice"),
        ("Alice   Smith", "Alice Smith"),
        ("Zoë", "Zoë"),
        ("Zoe\u0308", "Zoë"),  # NFC
        ("Việt", "Việt"),
        ("山田 太郎", "山田 太郎"),
        ("田中 ひろし Tanaka", "田中 ひろし Tanaka"),  # Han + Hiragana + Latin: Japanese
        ("김민준 Kim", "김민준 Kim"),
        ("Mum ❤️", "Mum ❤️"),  # U+FE0F, the emoji presentation selector
        ("Αλέξης", "Αλέξης"),
        ("Дмитрий", "Дмитрий"),
    ],
)
def test_names_people_write_are_accepted(name: str, expected: str) -> None:
    assert check_name(name) == expected


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("x" * 65, "at most 64"),
        ("Al\u200bice", "invisible"),  # zero-width space
        ("Alice\u200d", "invisible"),  # zero-width joiner
        ("\u202eecilA", "invisible"),  # bidi override
        ("Alice\u2066", "invisible"),  # bidi isolate
        ("\u3164", "invisible"),  # Hangul filler
        ("Bob\u115f", "invisible"),
        ("A\u034flice", "invisible"),  # combining grapheme joiner
        ("Alice\ufe00", "invisible"),  # variation selector 1
        ("Ali\x1bce", "invisible"),
        ("Ali\nce", "invisible"),
        ("Alice\u00a0Smith", "ordinary spaces"),
        ("Alice\u3000Smith", "ordinary spaces"),
        ("e" + "\u0301" * 60, "marks"),
        ("Zalgo" + "\u0300\u0301\u0302\u0303", "marks"),
        ("\u0410lice", "scripts"),  # Cyrillic А + Latin
        ("Αlice", "scripts"),  # Greek Α + Latin
        ("paypaI\u0406", "scripts"),
        ("did:key:z6Mk", "DID"),
        ("DID:web:x", "DID"),
    ],
)
def test_invisible_mixed_or_did_like_names_are_refused(name: str, why: str) -> None:
    with pytest.raises(UserError, match=why):
        check_name(name)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Alice", "alice"),
        ("Alice", "ALICE"),
        ("Alice", "AIice"),  # capital I for small l
        ("Al", "AI"),
        ("m", "rn"),
        ("Oscar", "0scar"),
        ("paypal", "𝔭𝒶ỿ𝕡𝕒ℓ"),
        ("Alice", "Ａｌｉｃｅ"),  # fullwidth
        ("Bob", "𝐁𝐨𝐛"),  # mathematical bold
    ],
)
def test_look_alikes(one: str, other: str) -> None:
    assert look_alike(other, [one]) == one
    assert look_alike(one, [other]) == other


@pytest.mark.parametrize(("one", "other"), [("Alice", "Bob"), ("Anna", "Anne"), ("Zoë", "Zoe")])
def test_different_names_do_not_clash(one: str, other: str) -> None:
    assert look_alike(other, [one]) is None


def test_the_review_case_cyrillic_a_is_a_look_alike_even_without_the_script_rule() -> None:
    cyrillic = "\u0410lice"
    assert skeleton(cyrillic) == skeleton("Alice")
    assert folded_skeleton("ALICE") == folded_skeleton(cyrillic)


@given(st.text(min_size=1, max_size=20))
def test_a_name_always_looks_like_itself(name: str) -> None:
    assert look_alike(name, [name]) == name
    assert (
        look_alike(name, [name.upper()]) is not None or name.upper().casefold() != name.casefold()
    )


# --- the store applies the rules ------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.sqlite3")


def test_a_look_alike_of_an_existing_name_is_refused(store: Store) -> None:
    store.add_contact(ALICE, name="Alice", now=T0)
    store.add_contact(MALLORY, now=T0)
    for attempt in ("alice", "AIice", "Ａｌｉｃｅ"):
        with pytest.raises(UserError, match=r"already used|looks like"):
            store.rename_contact(MALLORY, attempt)
    with pytest.raises(UserError):
        store.add_contact(CAROL, name="ALICE", now=T0)
    assert store.get_contact(CAROL) is None
    assert store.find_contact("Alice").did == ALICE
    store.rename_contact(ALICE, "alice")  # a contact may change the case of its own name
    assert store.find_contact("alice").did == ALICE


def test_a_label_is_only_a_suggestion(store: Store) -> None:
    store.add_contact(ALICE, name="Alice", now=T0)
    mallory = store.add_contact(MALLORY, suggested_name="Alice", now=T0)
    assert mallory.name is None and mallory.suggested_name == "Alice"
    assert store.find_contact("Alice").did == ALICE  # the suggestion never resolves
    with pytest.raises(UserError, match="already used"):
        store.adopt_suggestion(MALLORY)
    bad = store.add_contact(CAROL, suggested_name="\u202eecila", now=T0)
    assert bad.suggested_name is None  # an invalid label is not even kept as a suggestion
    with pytest.raises(UserError, match="suggested no name"):
        store.adopt_suggestion(CAROL)


def test_adopting_a_suggestion_names_the_contact_and_clears_it(store: Store) -> None:
    store.add_contact(ALICE, suggested_name="Alice", now=T0)
    adopted = store.adopt_suggestion(ALICE)
    assert (adopted.name, adopted.suggested_name) == ("Alice", None)


def test_a_rejected_sas_writes_only_the_suspect_mark(store: Store) -> None:
    # The man in the middle of the review: a live invitation labelled "Alice", SAS rejected.
    contact = store.record_session(MALLORY, verified=False, suggested_name="Alice", now=T0)
    assert contact.verification is Verification.SUSPECT
    assert (contact.name, contact.suggested_name) == (None, None)
    with pytest.raises(UserError):
        store.find_contact("Alice")


def test_a_rejected_sas_downgrades_an_earlier_verification(store: Store) -> None:
    store.add_contact(ALICE, name="Alice", now=T0)
    store.record_session(ALICE, verified=True, now=T0)
    assert store.find_contact("Alice").verification is Verification.SAS
    store.record_session(ALICE, verified=False, now=T0)
    suspect = store.find_contact("Alice")
    assert suspect.verification is Verification.SUSPECT and not suspect.is_verified
    store.record_session(ALICE, verified=True, now=T0)  # verified again: the mark goes
    assert store.find_contact("Alice").verification is Verification.SAS


def test_a_confirmed_sas_keeps_a_safety_number_verification(store: Store) -> None:
    store.add_contact(ALICE, now=T0)
    store.set_verification(ALICE, Verification.SAFETY_NUMBER)
    contact = store.record_session(ALICE, verified=True, suggested_name="Queen", now=T0)
    assert contact.verification is Verification.SAFETY_NUMBER
    assert contact.suggested_name is None  # an existing contact's label changes nothing


def test_a_confirmed_sas_with_a_new_peer_keeps_its_label_as_a_suggestion(store: Store) -> None:
    contact = store.record_session(ALICE, verified=True, suggested_name="Alice", now=T0)
    assert (contact.name, contact.suggested_name) == (None, "Alice")
    assert contact.verification is Verification.SAS
