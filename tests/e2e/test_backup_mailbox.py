"""A backup carries the persistent sessions: export on Alice after a mailbox conversation with
Bob (two real Nostr relays on loopback), import into a fresh profile, and `receive` / `send`
continue with Bob, through the real CLI in separate processes (issue 30; specs/backup.md
"Restored sessions").

Bob has not moved on: the last thing of Alice's that he received came before Alice's last DH
ratchet step (Alice's last received item was Bob's receipt). The restored profile takes a fresh
DH ratchet step before it sends, so Bob opens its texts; Bob's answer then ends the restored
state.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.driver import make_identity
from tests.e2e.test_mailbox import _meet
from tests.support.cli import run_cli
from tests.support.nostr_relays import local_relays

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BACKUP_ENV = {"DIDLINK_BACKUP_PASSPHRASE": "a backup passphrase for the test"}


def _json(home: Path, *args: str, env: dict[str, str] | None = None) -> object:
    result = run_cli(*args, home=home, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _texts(home: Path) -> list[str]:
    got = _json(home, "receive", "--json")
    assert isinstance(got, list)
    return [m["text"] for m in got if m["type"] == "message"]


def _delivered(home: Path) -> list[str]:
    got = _json(home, "receive", "--json")
    assert isinstance(got, list)
    return [m["mid"] for m in got if m["type"] == "delivered"]


def _received_ids(home: Path) -> set[tuple[str, bytes]]:
    with sqlite3.connect(f"file:{home / 'store.sqlite3'}?mode=ro", uri=True) as db:
        return {
            (str(d), bytes(m)) for d, m in db.execute("SELECT peer_did, message_id FROM received")
        }


def test_a_restored_profile_continues_the_mailbox_conversation(tmp_path: Path) -> None:
    alice, bob, restored = tmp_path / "alice", tmp_path / "bob", tmp_path / "new-machine"
    dids = {"alice": make_identity(alice), "bob": make_identity(bob)}
    _meet(alice, bob)
    with local_relays(tmp_path / "relays", 2) as relays:
        urls = [relay.url for relay in relays]
        for home in (alice, bob):
            assert _json(home, "relays", "add", *urls, "--json") == {"relays": urls}

        # A conversation: Bob writes, Alice reads (her receipt goes back), Bob sees it
        # delivered; Alice writes, Bob reads, Alice sees it delivered.
        zero = _json(bob, "send", dids["alice"], "zero", "--json")
        assert isinstance(zero, dict)
        assert _texts(alice) == ["zero"]
        assert _delivered(bob) == [zero["mid"]]
        one = _json(alice, "send", dids["bob"], "one", "--json")
        assert isinstance(one, dict)
        assert _texts(bob) == ["one"]
        assert _delivered(alice) == [one["mid"]]

        # The backup, and a fresh profile made from it.
        file = tmp_path / "alice.backup"
        exported = run_cli("backup", "export", str(file), home=alice, env=BACKUP_ENV)
        assert exported.returncode == 0, exported.stderr
        assert "1 conversations" in exported.stderr
        imported = run_cli("backup", "import", str(file), home=restored, env=BACKUP_ENV)
        assert imported.returncode == 0, imported.stderr
        assert imported.stdout.strip() == dids["alice"]
        assert "1 conversations" in imported.stderr and "didlink receive" in imported.stderr
        # exactly-once survives: the ids of what Alice received are carried
        assert _received_ids(restored) == _received_ids(alice) != set()

        # The restored profile: nothing new (what the relays still hold was read before the
        # export, and does not show twice), then it writes and Bob reads it.
        assert _texts(restored) == []
        two = _json(restored, "send", dids["bob"], "two, from the new machine", "--json")
        assert isinstance(two, dict) and two["status"] == "sent"
        assert _texts(bob) == ["two, from the new machine"]
        assert _delivered(restored) == [two["mid"]]

        # Bob answers; the conversation goes on both ways.
        _json(bob, "send", dids["alice"], "three", "--json")
        assert _texts(restored) == ["three"]
        four = _json(restored, "send", dids["bob"], "four", "--json")
        assert isinstance(four, dict)
        assert _texts(bob) == ["four"]


def test_a_contact_who_moved_on_cannot_open_the_restored_texts_until_it_writes(
    tmp_path: Path,
) -> None:
    """Bob HAS moved on: he received Alice's receipt, sent from the chain the backup holds,
    before the restored profile wrote. Its text is not delivered (Bob's `receive` drops it; the
    restored `receive` shows no delivery); once Bob writes, the restored profile reads him and
    what it sends from then on reaches him."""
    alice, bob, restored = tmp_path / "alice", tmp_path / "bob", tmp_path / "new-machine"
    dids = {"alice": make_identity(alice), "bob": make_identity(bob)}
    _meet(alice, bob)
    with local_relays(tmp_path / "relays", 2) as relays:
        urls = [relay.url for relay in relays]
        for home in (alice, bob):
            assert _json(home, "relays", "add", *urls, "--json") == {"relays": urls}
        hello = _json(bob, "send", dids["alice"], "hello", "--json")
        assert isinstance(hello, dict)
        assert _texts(alice) == ["hello"]  # Alice's receipt leaves from her newest chain
        file = tmp_path / "alice.backup"
        exported = run_cli("backup", "export", str(file), home=alice, env=BACKUP_ENV)
        assert exported.returncode == 0, exported.stderr
        assert _delivered(bob) == [hello["mid"]]  # Bob took that receipt: he moved on

        imported = run_cli("backup", "import", str(file), home=restored, env=BACKUP_ENV)
        assert imported.returncode == 0, imported.stderr
        lost = _json(restored, "send", dids["bob"], "from the new machine", "--json")
        assert isinstance(lost, dict) and lost["status"] == "sent"
        assert _texts(bob) == []  # it does not open for Bob ...
        assert _delivered(restored) == []  # ... so no receipt comes back

        _json(bob, "send", dids["alice"], "are you there?", "--json")
        assert _texts(restored) == ["are you there?"]  # the restored profile reads Bob
        again = _json(restored, "send", dids["bob"], "yes, new machine", "--json")
        assert isinstance(again, dict)
        assert _texts(bob) == ["yes, new machine"]
        assert again["mid"] in _delivered(restored)
