"""`didlink contacts` (list, rename, remove) through a real subprocess, with every error path.

There is no command yet that adds a contact from outside (`accept` belongs to the invitation
work), so the tests put contacts into the profile's store directly.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink.profile.store import Store
from identity.contact import Verification
from identity.keys import IdentityKey
from tests.support.cli import assert_user_error, run_cli

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ALICE = IdentityKey(b"\x01" * 32).did
BOB = IdentityKey(b"\x02" * 32).did


@pytest.fixture
def profile(home: Path) -> Path:
    """A profile with an identity and two contacts: Alice (named, SAS-verified) and Bob."""
    result = run_cli("init", home=home)
    assert result.returncode == 0, result.stderr
    with Store(home / "store.sqlite3") as store:
        store.add_contact(ALICE, name="Alice", now=T0)
        store.set_verification(ALICE, Verification.SAS)
        store.add_contact(BOB, now=T0)
    return home


def listing(home: Path) -> list[dict[str, object]]:
    result = run_cli("contacts", "--json", home=home, passphrase=None)
    assert result.returncode == 0, result.stderr
    value: list[dict[str, object]] = json.loads(result.stdout)
    return value


def test_list_json(profile: Path) -> None:
    assert listing(profile) == [
        {
            "did": ALICE,
            "name": "Alice",
            "verification": "sas",
            "suggested_name": None,
            "first_seen": "2026-11-25T12:00:00+00:00",
            "last_seen": "2026-11-25T12:00:00+00:00",
            "relays": [],
            "request": False,
        },
        {
            "did": BOB,
            "name": None,
            "verification": "unverified",
            "suggested_name": None,
            "first_seen": "2026-11-25T12:00:00+00:00",
            "last_seen": "2026-11-25T12:00:00+00:00",
            "relays": [],
            "request": False,
        },
    ]


def test_list_text(profile: Path) -> None:
    result = run_cli("contacts", home=profile, passphrase=None)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split() == [ALICE, "Alice", "sas"]
    assert lines[1].split() == [BOB, "-", "unverified"]


def test_empty_list(home: Path) -> None:
    assert run_cli("init", home=home).returncode == 0
    result = run_cli("contacts", home=home)
    assert result.returncode == 0 and "No contacts yet" in result.stdout
    assert listing(home) == []


def test_rename_by_did_name_and_prefix(profile: Path) -> None:
    result = run_cli("contacts", "rename", BOB, "Bobby", home=profile)
    assert result.returncode == 0, result.stderr
    assert "Bobby" in result.stdout
    assert run_cli("contacts", "rename", "bobby", "Robert", home=profile).returncode == 0
    assert run_cli("contacts", "rename", ALICE[:24], "Al", home=profile).returncode == 0
    names = {entry["did"]: entry["name"] for entry in listing(profile)}
    assert names == {ALICE: "Al", BOB: "Robert"}


def test_rename_errors(profile: Path) -> None:
    before = listing(profile)
    assert_user_error(run_cli("contacts", "rename", BOB, "alice", home=profile), "already used")
    assert_user_error(
        run_cli("contacts", "rename", BOB, "did:key:zfoo", home=profile), "look like a DID"
    )
    assert_user_error(run_cli("contacts", "rename", BOB, "  ", home=profile), "empty")
    assert_user_error(
        run_cli("contacts", "rename", "Nobody", "x", home=profile), "no contact named"
    )
    carol = IdentityKey(b"\x03" * 32).did
    assert_user_error(
        run_cli("contacts", "rename", carol, "x", home=profile), "not one of your contacts"
    )
    assert listing(profile) == before


def test_remove(profile: Path) -> None:
    result = run_cli("contacts", "remove", "Alice", home=profile)
    assert result.returncode == 0, result.stderr
    assert "Removed Alice" in result.stdout
    assert [entry["did"] for entry in listing(profile)] == [BOB]
    assert run_cli("contacts", "remove", BOB, home=profile).returncode == 0
    assert listing(profile) == []


def test_remove_errors(profile: Path) -> None:
    assert_user_error(run_cli("contacts", "remove", "Nobody", home=profile), "no contact named")
    assert_user_error(
        run_cli("contacts", "remove", "did:key:z6MkNOPE", home=profile),
        "no contact has a DID starting with did:key:z6MkNOPE",
    )
    assert len(listing(profile)) == 2


def test_usage_errors(profile: Path) -> None:
    result = run_cli("contacts", "rename", BOB, home=profile)
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr


def test_without_identity(home: Path) -> None:
    for args in (("contacts",), ("contacts", "--json"), ("contacts", "remove", ALICE)):
        assert_user_error(run_cli(*args, home=home), "error: noIdentity:")
    assert not home.exists()  # listing did not create an empty profile


def test_damaged_store(profile: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path = profile / f"store.sqlite3{suffix}"
        if path.exists():
            path.unlink()
    (profile / "store.sqlite3").write_bytes(b"garbage, not sqlite " * 200)
    assert_user_error(run_cli("contacts", home=profile), "damaged")


def test_newer_store_schema(profile: Path) -> None:
    raw = sqlite3.connect(profile / "store.sqlite3")
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    assert_user_error(run_cli("contacts", home=profile), "newer didlink")


# --- remove erases everything about the contact (issue 26, class 5) ---------------------------


def _fill_peer_tables(home: Path) -> None:
    """Rows keyed by Alice and by Bob in every peer table, a part file each, and bytes of
    Alice left in free space the way an older didlink (no secure_delete) left them."""
    from didlink.profile import history
    from didlink.profile.outbox import Outbox, new_message_id
    from didlink.profile.sealing import Sealer
    from didlink.session.resume import OutgoingState, TransferStates
    from messaging.frames import FileOffer

    sealer = Sealer(IdentityKey(b"\x09" * 32))
    downloads = home / "downloads"
    downloads.mkdir(mode=0o700)
    raw = sqlite3.connect(home / "store.sqlite3", isolation_level=None)
    raw.execute("PRAGMA secure_delete = OFF")  # an older didlink's deletions leave bytes
    for index in range(200):
        raw.execute(
            "INSERT INTO outbox (peer_did, message_id, created_at, sealed) VALUES (?, ?, ?, ?)",
            (ALICE, new_message_id(), T0.isoformat(), bytes(64)),
        )
        if index % 2:
            raw.execute("DELETE FROM outbox WHERE seq = (SELECT max(seq) FROM outbox)")
    raw.close()
    with Store(home / "store.sqlite3") as store:
        outbox = Outbox(store, sealer)
        for peer in (ALICE, BOB):
            for index in range(40):
                mid = outbox.add(peer, f"message {index}")
                if index % 3 == 0:
                    outbox.acknowledge(mid)
            for _ in range(2000):
                outbox.remember(peer, new_message_id(), deferred=True)
            outbox.flush()
            states = TransferStates(store, sealer)
            file_id = new_message_id()
            offer = FileOffer(
                file_id=file_id, name="a.bin", size=10, sha256=bytes(32), chunk_size=4
            )
            states.save_incoming(peer, offer)
            (downloads / f".didlink-{file_id.hex()}.part").write_bytes(b"part")
            states.save_outgoing(OutgoingState(new_message_id(), peer, home, 1, bytes(32)))
            for index in range(30):
                history.append(
                    store,
                    sealer,
                    peer_did=peer,
                    direction=history.Direction.IN,
                    message_id=index,
                    text="hello",
                    now=T0,
                )


def _raw_profile_bytes(home: Path) -> bytes:
    return b"".join(
        (home / name).read_bytes()
        for name in ("store.sqlite3", "store.sqlite3-wal")
        if (home / name).exists()
    )


def test_remove_erases_every_trace_of_the_contact(profile: Path) -> None:
    from identity.did_key import ed25519_public_key

    _fill_peer_tables(profile)
    alice_key = ed25519_public_key(ALICE)
    assert ALICE.encode() in _raw_profile_bytes(profile)  # (the check below can fail)
    result = run_cli("contacts", "remove", "Alice", home=profile, passphrase=None)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    raw = _raw_profile_bytes(profile)
    assert ALICE.encode() not in raw
    assert alice_key not in raw
    with sqlite3.connect(profile / "store.sqlite3") as db:
        for table in ("outbox", "received", "transfers", "history"):
            rows = db.execute(f"SELECT peer_did, count(*) FROM {table} GROUP BY peer_did")
            assert [peer for peer, _ in rows] == [BOB], table  # Bob's rows all stay
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    parts = sorted(p.name for p in (profile / "downloads").iterdir())
    assert len(parts) == 1  # Alice's partial download went; Bob's stays
    assert [c["did"] for c in listing(profile)] == [BOB]
