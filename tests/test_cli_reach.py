"""Relays in cards, and contacts' relays (issue 25 point 2; specs/invitation.md §2 key 10,
specs/store.md version 7): `invite --card` with relays configured, `accept` of such a card,
`inspect`, `contacts --json`, and the store's `contact_relays`. No relay is contacted here."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink.profile.store import Store, StoreError
from identity.invitation import Invitation, Reach
from identity.token import decode_token
from messaging.alias import CARD_REACH_CONTEXT, alias_public, reach_secret
from tests.support.cli import run_cli
from tests.test_cli_invite import ALICE, ME, card_from, make_profile

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)
LONG = "wss://relay.example/" + "p" * 190  # 210 characters: too long for a token


def _ok(home: Path, *args: str) -> str:
    result = run_cli(*args, home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _card(home: Path) -> Invitation:
    token = json.loads(_ok(home, "invite", "--card", "--json"))["token"]
    invitation = decode_token(token)
    assert isinstance(invitation, Invitation)
    return invitation


def test_a_card_carries_the_first_four_relays_that_fit_and_the_card_key(home: Path) -> None:
    make_profile(home)
    assert _card(home).reach is None  # no relay configured: version 1, as before
    assert _card(home).version == 1
    urls = ["ws://127.0.0.1:7001", LONG] + [f"wss://r{i}.example" for i in range(4)]
    _ok(home, "relays", "add", *urls)
    card = _card(home)
    assert card.version == 2 and card.reach is not None
    assert card.reach.relays == (
        "ws://127.0.0.1:7001",
        "wss://r0.example",
        "wss://r1.example",
        "wss://r2.example",
    )
    assert card.reach.key == alias_public(reach_secret(ME.seed, CARD_REACH_CONTEXT))
    assert _card(home).reach == card.reach  # one request key per identity


def test_accepting_a_card_keeps_its_relays_and_inspect_shows_them(home: Path) -> None:
    make_profile(home)
    key = alias_public(reach_secret(ALICE.seed, CARD_REACH_CONTEXT))
    token = card_from(ALICE, reach=Reach(relays=("wss://alice.example",), key=key))
    described = json.loads(_ok(home, "inspect", token, "--json"))
    assert described["relays"] == ["wss://alice.example"]
    assert "wss://alice.example" in _ok(home, "inspect", token)
    _ok(home, "accept", token)
    [contact] = json.loads(_ok(home, "contacts", "--json"))
    assert contact["did"] == ALICE.did and contact["relays"] == ["wss://alice.example"]


def test_a_card_without_relays_leaves_none(home: Path) -> None:
    make_profile(home)
    _ok(home, "accept", card_from(ALICE))
    [contact] = json.loads(_ok(home, "contacts", "--json"))
    assert contact["relays"] == []


# --- the store ------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "store.sqlite3")
    opened.add_contact(ALICE.did, now=T0)
    return opened


def test_contact_relays_are_kept_replaced_and_checked(store: Store) -> None:
    assert store.contact_relays(ALICE.did) == []
    store.set_contact_relays(ALICE.did, ["wss://a.example"], now=T0)
    store.set_contact_relays(ALICE.did, ["wss://b.example", "ws://127.0.0.1:9"], now=T0)
    assert store.contact_relays(ALICE.did) == ["wss://b.example", "ws://127.0.0.1:9"]
    for bad in ([], ["wss://a.example"] * 2, [f"wss://r{i}.example" for i in range(5)]):
        with pytest.raises(ValueError):
            store.set_contact_relays(ALICE.did, bad, now=T0)
    for refused in (["http://a.example"], ["ws://a.example"], ["wss://a.example/\x1b"]):
        with pytest.raises(ValueError):
            store.set_contact_relays(ALICE.did, refused, now=T0)
    assert store.contact_relays(ALICE.did) == ["wss://b.example", "ws://127.0.0.1:9"]


@pytest.mark.parametrize("damaged", ["not json", '{"a": 1}', "[1]", '["http://x.example"]'])
def test_a_damaged_relay_row_is_a_store_error(store: Store, damaged: str) -> None:
    store.set_contact_relays(ALICE.did, ["wss://a.example"], now=T0)
    store.connection.execute("UPDATE contact_relays SET relays = ?", (damaged,))
    with pytest.raises(StoreError, match="damaged"):
        store.contact_relays(ALICE.did)


def test_migration_from_6_keeps_everything(tmp_path: Path) -> None:
    from didlink.profile.store import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "store.sqlite3"
    with sqlite3.connect(path) as raw:
        for step in MIGRATIONS[:6]:
            for statement in step:
                raw.execute(statement)
        raw.execute("PRAGMA user_version = 6")
        raw.execute(
            "INSERT INTO contacts (did, verification, first_seen, last_seen)"
            " VALUES (?, 'sas', ?, ?)",
            (ALICE.did, T0.isoformat(), T0.isoformat()),
        )
    raw.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.get_contact(ALICE.did) is not None
        assert store.contact_relays(ALICE.did) == []


def test_what_the_token_event_tells_a_person() -> None:
    from didlink.jsonl import token_intro

    assert "paste the response token they send back" in " ".join(token_intro("invite"))
    relayed = " ".join(token_intro("invite", relays=["wss://a.example"]))
    assert "comes back by relay" in relayed and "paste" in relayed
    sent = " ".join(token_intro("response", sent_by_relay=["wss://a.example"]))
    assert "by relay (1)" in sent and "If it does not arrive" in sent
    failed = " ".join(token_intro("response", sent_by_relay=[]))
    assert "by relay failed" in failed and "send this response token back" in failed
    assert "Send this response token back" in " ".join(token_intro("response"))
