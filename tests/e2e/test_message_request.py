"""A contact from a card is messaged at once (issue 25 point 7; specs/first-message.md §5-§7),
with the real CLI in separate processes and two real Nostr relays on loopback (skipped locally
without them, a failure under CI=true).

Bob makes a card with his relays; Alice accepts it and sends at once while Bob is offline (no
process of his runs); Bob's `receive` shows a message request from an unverified contact; his
reply goes through the new session; Alice receives it and the receipts; both compute the same
safety number. Then `send` killed (SIGKILL) at random instants while it sets up the session
loses nothing and delivers each text once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink.mailbox.requests import MessageRequests
from didlink.profile.store import Store
from identity.invitation import Invitation, Reach
from identity.keystore import unlock
from identity.token import decode_token, encode_token
from tests.e2e.driver import PASSPHRASE, make_identity
from tests.support.cli import assert_user_error, run_cli
from tests.support.nostr_relays import local_relays

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _json(home: Path, *args: str) -> object:
    result = run_cli(*args, home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _card(home: Path, urls: list[str]) -> str:
    """Bob's card made by `didlink invite --card` with relays configured. Until the CLI puts
    `reach` into cards (the relayinvite change), the same card is made here from his key."""
    token = _json(home, "invite", "--card", "--label", "Bob", "--json")
    assert isinstance(token, dict)
    card = decode_token(token["token"])
    assert isinstance(card, Invitation)
    if card.reach is not None:
        return str(token["token"])
    key = unlock(home / "keystore.json", PASSPHRASE)
    with Store(home / "store.sqlite3") as store:
        request_key = MessageRequests(store, key).request_key
    made = Invitation.create(
        key,
        now=int(datetime.now(UTC).timestamp()),
        lifetime=3600,
        label="Bob",
        reach=Reach(relays=tuple(urls[:4]), key=request_key),
    )
    return encode_token(made)


def _setup(tmp_path: Path, urls: list[str]) -> tuple[Path, Path, str, str]:
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    alice_did, bob_did = make_identity(alice), make_identity(bob)
    for home in (alice, bob):
        assert run_cli("relays", "add", *urls, home=home).returncode == 0
    assert run_cli("name", "Alice", home=alice).returncode == 0
    accepted = run_cli("accept", _card(bob, urls), home=alice)
    assert accepted.returncode == 0, accepted.stderr
    return alice, bob, alice_did, bob_did


def test_a_card_contact_is_messaged_at_once_and_answers(tmp_path: Path) -> None:
    with local_relays(tmp_path / "relays", 2) as relays:
        urls = [relay.url for relay in relays]
        alice, bob, alice_did, bob_did = _setup(tmp_path, urls)

        sent = _json(alice, "send", bob_did, "hello Bob, we met at the conference", "--json")
        assert isinstance(sent, dict) and sent["status"] == "sent" and sent["relays"]
        shown = run_cli("receive", home=bob)
        assert shown.returncode == 0, shown.stderr
        assert f"Message request from ~Alice ({alice_did})" in shown.stdout
        assert "(unverified: compare safety numbers with `didlink safety-number`)" in shown.stdout
        assert "hello Bob, we met at the conference" in shown.stdout

        # A second text before any reply uses the same session.
        assert run_cli("send", bob_did, "are you there?", home=alice).returncode == 0
        got = _json(bob, "receive", "--json")
        assert isinstance(got, list) and len(got) == 1
        [message] = got
        assert message["from"] == alice_did and message["text"] == "are you there?"
        assert message["request"] is True and message["suggested_name"] == "Alice"
        assert _json(bob, "receive", "--json") == []  # each once
        contacts = _json(bob, "contacts", "--json")
        assert isinstance(contacts, list)
        [asker] = [c for c in contacts if c["did"] == alice_did]
        assert asker["name"] is None and asker["verification"] == "unverified"
        assert asker["request"] is True and asker["suggested_name"] == "Alice"

        # Bob's reply goes through the new session; Alice sees it and her texts delivered.
        assert run_cli("send", alice_did, "hi Alice", home=bob).returncode == 0
        got = _json(alice, "receive", "--json")
        assert isinstance(got, list)
        assert [(m["type"], m["text"]) for m in got if m["type"] == "message"] == [
            ("message", "hi Alice")
        ]
        assert got[0]["request"] is False
        assert {m["text"] for m in got if m["type"] == "delivered"} == {
            "hello Bob, we met at the conference",
            "are you there?",
        }
        # Once answered, Alice's texts are no longer a request.
        contacts = _json(bob, "contacts", "--json")
        assert isinstance(contacts, list)
        assert [c["request"] for c in contacts if c["did"] == alice_did] == [False]
        assert run_cli("send", bob_did, "great", home=alice).returncode == 0
        got = _json(bob, "receive", "--json")
        assert isinstance(got, list)
        assert [(m["text"], m["request"]) for m in got if m["type"] == "message"] == [
            ("great", False)
        ]
        # Both can compare safety numbers: the same digits.
        a_digits = _json(alice, "safety-number", bob_did, "--json")
        b_digits = _json(bob, "safety-number", alice_did, "--json")
        assert a_digits == b_digits


def test_a_card_without_relays_cannot_be_messaged_by_relay(tmp_path: Path) -> None:
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    make_identity(alice)
    bob_did = make_identity(bob)
    card = _json(bob, "invite", "--card", "--json")  # Bob has no relays: no reach
    assert isinstance(card, dict)
    assert run_cli("accept", str(card["token"]), home=alice).returncode == 0
    assert run_cli("relays", "add", "ws://127.0.0.1:9", home=alice).returncode == 0
    assert_user_error(run_cli("send", bob_did, "hi", home=alice), "card carries no relays")
    with Store(alice / "store.sqlite3") as store:
        assert store.connection.execute("SELECT count(*) FROM outbox").fetchone() == (0,)


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    return {**env, "DIDLINK_HOME": str(home), "DIDLINK_PASSPHRASE": PASSPHRASE}


def test_send_killed_while_it_sets_up_the_session_loses_nothing(tmp_path: Path) -> None:
    """`send` to a card contact killed at random instants (the first ones set the session up);
    then one that completes. Bob gets every text that was queued, each once."""
    rng = random.Random()
    with local_relays(tmp_path / "relays", 2) as relays:
        urls = [relay.url for relay in relays]
        alice, bob, alice_did, bob_did = _setup(tmp_path, urls)
        queued: set[str] = set()
        for n in range(4):
            text = f"text {n}"
            process = subprocess.Popen(
                [sys.executable, "-m", "didlink", "send", bob_did, text],
                env=_clean_env(alice),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                process.wait(timeout=rng.uniform(0.3, 3.0))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            if process.returncode == 0:
                queued.add(text)
        last = run_cli("send", bob_did, "the last one", home=alice)
        assert last.returncode == 0, last.stderr
        queued.add("the last one")
        key = unlock(alice / "keystore.json", PASSPHRASE)
        from didlink.profile.outbox import Outbox
        from didlink.profile.sealing import Sealer

        with Store(alice / "store.sqlite3") as store:
            queued |= {m.text for m in Outbox(store, Sealer(key)).pending(bob_did)}
        got = _json(bob, "receive", "--json")
        assert isinstance(got, list)
        texts = [m["text"] for m in got if m["type"] == "message"]
        assert len(texts) == len(set(texts))
        assert set(texts) == queued
        assert all(m["from"] == alice_did for m in got)
        assert _json(bob, "receive", "--json") == []
