"""Messages to an offline contact through two real Nostr relays, with the real CLI between
separate processes (issue 25, points 1, 3, 4; specs/mailbox.md).

Alice and Bob meet once live (invite / accept, both confirm the SAS): both now hold a persistent
session. Two `nostr-relay` processes run on loopback (tests/support/nostr_relays.py: skipped
locally without them, a failure under CI=true). Then, with no live connection at any time:
Alice sends while Bob is offline; Bob receives each message once (and nothing the second time);
Alice sees them delivered; Bob's `send --wait` sees Alice's receipt. Finally the relays' whole
databases are read: no DID, no plaintext, no alias key shared between two contacts.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink.mailbox.store import MailboxStore
from didlink.profile.outbox import Outbox
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store
from identity.did_key import ed25519_public_key
from identity.keystore import unlock
from messaging.alias import epoch_at
from messaging.mailbox import MailboxSession
from messaging.ratchet import HEADER_LEN
from tests.e2e.driver import PASSPHRASE, cli_processes, connect_pair, make_identity
from tests.e2e.test_reconnect import _reconnect
from tests.support.cli import assert_user_error, run_cli
from tests.support.nostr_relays import LocalRelay, local_relays
from transport.nostr_envelope import open_wrap

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _meet(a_home: Path, b_home: Path) -> None:
    """A first contact whose SAS both confirm (each side then holds a persistent session)."""
    with cli_processes() as started:
        alice, bob = connect_pair(started, a_home, b_home)
        alice.expect("sas"), bob.expect("sas")
        alice.send("confirm_sas")
        bob.send("confirm_sas")
        alice.expect("connected"), bob.expect("connected")
        alice.send("quit")
        assert alice.wait() == 0 and bob.wait() == 0


def _json(home: Path, *args: str) -> object:
    result = run_cli(*args, home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _wraps(relay: LocalRelay) -> list[dict[str, object]]:
    """Every event the relay stored (read from its SQLite database)."""
    with sqlite3.connect(f"file:{relay.database}?mode=ro", uri=True) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert "events" in tables, tables
        columns = [row[1] for row in db.execute("PRAGMA table_info(events)")]
        rows = db.execute("SELECT * FROM events").fetchall()
    out = []
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        event = {
            key: (value.hex() if isinstance(value, bytes) else value)
            for key, value in record.items()
        }
        if isinstance(event.get("tags"), str):
            event["tags"] = json.loads(event["tags"])
        out.append(event)
    return out


def test_offline_contact_gets_each_message_once_and_the_sender_sees_delivered(
    tmp_path: Path,
) -> None:
    homes = {name: tmp_path / name for name in ("alice", "bob", "carol")}
    dids = {name: make_identity(home) for name, home in homes.items()}
    _meet(homes["alice"], homes["bob"])
    _meet(homes["alice"], homes["carol"])
    with local_relays(tmp_path / "relays", 2) as relays:
        urls = [relay.url for relay in relays]
        for home in homes.values():
            listed = _json(home, "relays", "add", *urls, "--json")
            assert listed == {"relays": urls}

        # Bob is offline: nothing of his runs while Alice sends.
        first = _json(homes["alice"], "send", dids["bob"], "hello Bob, are you there?", "--json")
        second = _json(homes["alice"], "send", dids["bob"], "second message", "--json")
        to_carol = _json(homes["alice"], "send", dids["carol"], "hi Carol", "--json")
        assert isinstance(first, dict) and isinstance(second, dict) and isinstance(to_carol, dict)
        assert first["status"] == "sent" and set(first["relays"]) <= set(urls) and first["relays"]

        # Bob comes online: both messages, in order, once.
        got = _json(homes["bob"], "receive", "--json")
        assert isinstance(got, list)
        assert [m["text"] for m in got] == ["hello Bob, are you there?", "second message"]
        assert [m["mid"] for m in got] == [first["mid"], second["mid"]]
        for message in got:
            assert message["type"] == "message" and message["from"] == dids["alice"]
            assert message["sent_at"].endswith("Z") and message["arrived_at"].endswith("Z")
        assert _json(homes["bob"], "receive", "--json") == []  # nothing new the second time
        human = run_cli("receive", home=homes["bob"])
        assert human.returncode == 0 and "Nothing new." in human.stdout

        # Alice sees both delivered (Bob's receipts went back by mailbox).
        delivered = _json(homes["alice"], "receive", "--json")
        assert isinstance(delivered, list)
        assert sorted(d["mid"] for d in delivered if d["type"] == "delivered") == sorted(
            [first["mid"], second["mid"]]
        )
        assert _json(homes["alice"], "receive", "--json") == []

        # Bob writes back and waits for the receipt while Alice fetches.
        env = {"DIDLINK_HOME": str(homes["bob"]), "DIDLINK_PASSPHRASE": PASSPHRASE}
        command = [sys.executable, "-m", "didlink", "send", dids["alice"], "yes, here"]
        waiting = subprocess.Popen(
            [*command, "--wait", "--json", "--timeout", "60"],
            env={**_clean_env(), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for _ in range(20):  # until Bob's message has reached a relay and Alice took it
                got = _json(homes["alice"], "receive", "--json")
                assert isinstance(got, list)
                if any(m["text"] == "yes, here" for m in got):
                    break
            else:
                pytest.fail("Alice never received Bob's reply")
            out, err = waiting.communicate(timeout=90)
        finally:
            if waiting.poll() is None:
                waiting.kill()
        assert waiting.returncode == 0, err
        assert json.loads(out)["status"] == "delivered"

        # Carol gets hers (and only hers).
        carol = _json(homes["carol"], "receive", "--json")
        assert isinstance(carol, list) and [m["text"] for m in carol] == ["hi Carol"]

        # What the relays hold: wraps, and no DID, no plaintext, no key shared by two contacts.
        for relay in relays:
            relay.stop()
        secrets = [b"hello Bob", b"second message", b"hi Carol", b"yes, here"]
        for relay in relays:
            data = relay.database_bytes()
            for did in dids.values():
                assert did.encode() not in data
                public = ed25519_public_key(did)
                assert public not in data and public.hex().encode() not in data
            for secret in secrets:
                assert secret not in data
            events = _wraps(relay)
            assert events and all(event["kind"] == 1059 for event in events)
        p_tags: dict[str, set[str]] = {}
        unique = {str(event["id"]): event for event in _wraps(relays[0]) + _wraps(relays[1])}
        for event in unique.values():
            tags = event["tags"]
            assert isinstance(tags, list)
            [p] = [tag[1] for tag in tags if tag[0] == "p"]
            p_tags.setdefault(p, set()).add(str(event["pubkey"]))
        # every wrap has its own one-time key; Alice->Bob, Bob->Alice and Alice->Carol use
        # different addressees
        all_keys = [key for keys in p_tags.values() for key in keys]
        assert len(all_keys) == len(set(all_keys))
        assert len(p_tags) >= 3
        # ... and every `p` tag is an alias of exactly one pair of contacts
        epoch = epoch_at(time.time())
        aliases = {}
        for other in ("bob", "carol"):
            session = _session(homes["alice"], dids[other])
            aliases[other] = {
                pair.to_public.hex()
                for e in (epoch - 1, epoch, epoch + 1)
                for pair in (session.sending_aliases(e), session.receiving_aliases(e))
            }
        assert not aliases["bob"] & aliases["carol"]
        assert set(p_tags) <= aliases["bob"] | aliases["carol"]
        assert set(p_tags) & aliases["bob"] and set(p_tags) & aliases["carol"]


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}


def test_send_and_receive_refuse_without_relay_or_session(tmp_path: Path) -> None:
    """No relay: nothing is sent and nothing contacted; a contact never met live has no
    session to send with. Each a one-line error, exit 2; nothing queued."""
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    make_identity(alice)
    bob_did = make_identity(bob)
    assert_user_error(run_cli("send", bob_did, "hi", home=alice), "contact")  # not a contact
    with Store(alice / "store.sqlite3") as store:
        store.add_contact(bob_did, name="Bob", now=datetime.now(UTC))
    assert_user_error(run_cli("send", "Bob", "hi", home=alice), "no relay is configured")
    assert_user_error(run_cli("receive", home=alice), "no relay is configured")
    assert run_cli("relays", "add", "ws://127.0.0.1:9", home=alice).returncode == 0
    assert_user_error(run_cli("send", "Bob", "hi", home=alice), "no session with this contact")
    # No session, but `receive` listens for message requests too: the relay (none on port 9)
    # never answers.
    nothing = run_cli("receive", "--json", "--timeout", "2", home=alice)
    assert nothing.returncode == 2 and json.loads(nothing.stdout) == []
    assert "no relay answered" in nothing.stderr
    with Store(alice / "store.sqlite3") as store:
        assert store.connection.execute("SELECT count(*) FROM outbox").fetchone() == (0,)


def _session(home: Path, peer: str) -> MailboxSession:
    """`home`'s persistent session with `peer`, read from its store (unlocked as the user)."""
    key = unlock(home / "keystore.json", PASSPHRASE)
    with Store(home / "store.sqlite3") as store:
        session = MailboxStore(store, Sealer(key)).session(peer)
    assert session is not None
    return session


def _pending_texts(home: Path, peer: str) -> set[str]:
    key = unlock(home / "keystore.json", PASSPHRASE)
    with Store(home / "store.sqlite3") as store:
        return {message.text for message in Outbox(store, Sealer(key)).pending(peer)}


def test_send_killed_at_random_instants_never_reuses_a_key_nor_loses_a_queued_text(
    tmp_path: Path,
) -> None:
    """`send` killed (SIGKILL) at random instants, each a separate process; then Alice's next
    `receive` publishes what was left. Bob gets every text that was queued (the ones `send`
    confirmed and the ones still in the outbox), each once, and no two frames on the relays
    share a ratchet header (a message key)."""
    homes = {name: tmp_path / name for name in ("alice", "bob")}
    dids = {name: make_identity(home) for name, home in homes.items()}
    _meet(homes["alice"], homes["bob"])
    rng = random.Random()
    with local_relays(tmp_path / "relays", 2) as relays:
        urls = [relay.url for relay in relays]
        for home in homes.values():
            assert run_cli("relays", "add", *urls, home=home).returncode == 0
        env = {
            **_clean_env(),
            "DIDLINK_HOME": str(homes["alice"]),
            "DIDLINK_PASSPHRASE": PASSPHRASE,
        }
        confirmed: set[str] = set()
        for n in range(8):
            text = f"text {n}"
            process = subprocess.Popen(
                [sys.executable, "-m", "didlink", "send", dids["bob"], text],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                process.wait(timeout=rng.uniform(0.2, 4.0))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            if process.returncode == 0:
                confirmed.add(text)
        queued = confirmed | _pending_texts(homes["alice"], dids["bob"])
        assert run_cli("receive", home=homes["alice"]).returncode == 0  # publishes what is left
        got = _json(homes["bob"], "receive", "--json")
        assert isinstance(got, list)
        texts = [m["text"] for m in got if m["type"] == "message"]
        assert len(texts) == len(set(texts))  # each once
        assert set(texts) == queued
        assert _json(homes["bob"], "receive", "--json") == []
        # every frame that reached a relay has a ratchet header of its own
        receiver = _session(homes["bob"], dids["alice"])
        epoch = epoch_at(time.time())
        keys = {
            pair.to_public.hex(): pair
            for pair in (receiver.receiving_aliases(e) for e in (epoch - 1, epoch, epoch + 1))
        }
        headers: list[bytes] = []
        events = {str(e["id"]): e for relay in relays for e in _wraps(relay)}
        for event in events.values():
            [p] = [tag[1] for tag in event["tags"] if tag[0] == "p"]  # type: ignore[union-attr]
            if p not in keys:
                continue  # Bob's receipts to Alice
            opened = open_wrap(
                json.dumps(event), recipient_secret=keys[p].to_secret, now=int(time.time())
            )
            headers.append(opened.payload[:HEADER_LEN])
        assert len(headers) >= len(queued)
        assert len(headers) == len(set(headers))

        # Every relay down: `send` says the text waits (exit 2); it leaves with the next
        # `receive` once a relay is back, and arrives once.
        for relay in relays:
            relay.stop()
        down = run_cli(
            "send", dids["bob"], "while the relays were down", "--timeout", "3", home=homes["alice"]
        )
        assert_user_error(down, "waits in the outbox")
        for relay in relays:
            relay.start()
        for relay in relays:
            relay.wait_ready(time.monotonic() + 30)
        assert run_cli("receive", home=homes["alice"]).returncode == 0
        got = _json(homes["bob"], "receive", "--json")
        assert isinstance(got, list)
        assert [m["text"] for m in got] == ["while the relays were down"]


def test_a_reconnect_keeps_the_session_and_a_new_first_contact_replaces_it_on_both_sides(
    tmp_path: Path,
) -> None:
    """Both sides install the persistent session at the same step: the SAS of a live invitation,
    never of a reconnect (specs/mailbox.md §7), so they always hold the same one."""
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    alice_did, bob_did = make_identity(a_home), make_identity(b_home)

    def hashes() -> tuple[bytes, bytes]:
        ours = _session(a_home, bob_did).to_state()
        theirs = _session(b_home, alice_did).to_state()
        assert ours.initiator != theirs.initiator and ours.alias_root == theirs.alias_root
        return ours.handshake_hash, theirs.handshake_hash

    _meet(a_home, b_home)
    first = hashes()
    assert first[0] == first[1]
    with cli_processes() as started:
        alice, bob = _reconnect(started, a_home, b_home, bob_did)
        alice.expect("connected"), bob.expect("connected")
        alice.send("quit")
        assert alice.wait() == 0 and bob.wait() == 0
    assert hashes() == first
    _meet(b_home, a_home)  # Bob invites this time: the roles swap
    second = hashes()
    assert second[0] == second[1] != first[0]
    assert not _session(a_home, bob_did).initiator
