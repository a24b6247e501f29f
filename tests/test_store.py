"""The local SQLite store (specs/store.md): contacts, used invitations, schema and migrations."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

import didlink.profile.store as module
from didlink.errors import UserError
from didlink.profile.folder import Profile
from didlink.profile.store import SCHEMA_VERSION, DamagedStore, Store, StoreError
from identity.contact import Contact, Verification
from identity.did_key import ed25519_did, ed25519_public_key
from identity.errors import DidError, InvalidDid, NoIdentity, WrongPassphrase
from identity.keys import IdentityKey
from identity.keystore import KdfParams, create_keystore

T0 = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
ALICE = IdentityKey(b"\x01" * 32).did
BOB = IdentityKey(b"\x02" * 32).did
CAROL = IdentityKey(b"\x03" * 32).did


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store.sqlite3") as opened:
        yield opened


def test_add_and_get(store: Store) -> None:
    added = store.add_contact(ALICE, name="Alice", now=T0)
    assert added == Contact(ALICE, "Alice", Verification.UNVERIFIED, T0, T0)
    assert store.get_contact(ALICE) == added
    assert store.get_contact(BOB) is None
    assert added.display_name == "Alice"
    assert store.add_contact(BOB, now=T0).display_name == BOB


def test_add_is_idempotent_and_keeps_state(store: Store) -> None:
    store.add_contact(ALICE, name="Alice", now=T0)
    store.set_verification(ALICE, Verification.SAS)
    later = T0 + timedelta(days=2)
    again = store.add_contact(ALICE, name="Other", now=later)
    assert again == Contact(ALICE, "Alice", Verification.SAS, T0, later)
    assert len(store.list_contacts()) == 1


def test_times_round_trip_in_utc(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    local = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=paris)
    contact = store.add_contact(ALICE, now=local)
    assert contact.first_seen == local
    assert contact.first_seen.utcoffset() == timedelta(0)
    raw = store._db.execute("SELECT first_seen FROM contacts").fetchone()[0]
    assert raw == "2026-01-02T02:04:05.000006+00:00"


def test_naive_time_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.add_contact(ALICE, now=datetime(2026, 1, 1))


def test_invalid_did_is_refused(store: Store) -> None:
    with pytest.raises(InvalidDid):
        store.add_contact("did:web:example.com", now=T0)
    assert store.list_contacts() == []


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 65, "at most 64"),
        ("a\nb", "control"),
        ("a\x00b", "control"),
        ("bell\x07", "control"),
        ("did:key:z6Mk", "look like a DID"),
        ("DID:alice", "look like a DID"),
        ("  did:x", "look like a DID"),
    ],
)
def test_bad_names(store: Store, name: str, needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        store.add_contact(ALICE, name=name, now=T0)
    store.add_contact(ALICE, now=T0)
    with pytest.raises(UserError, match=needle):
        store.rename_contact(ALICE, name)
    assert store.get_contact(ALICE) == Contact(ALICE, None, Verification.UNVERIFIED, T0, T0)


def test_names_are_trimmed_and_nfc(store: Store) -> None:
    contact = store.add_contact(ALICE, name="  Zoe\u0301  ", now=T0)
    assert contact.name == "Zo\u00e9"
    assert store.find_contact("Zo\u00e9") == contact
    assert store.find_contact("Zoe\u0301") == contact


def test_names_are_unique_ignoring_ascii_case(store: Store) -> None:
    store.add_contact(ALICE, name="Alice", now=T0)
    with pytest.raises(UserError, match="already used"):
        store.add_contact(BOB, name="ALICE", now=T0)
    assert store.get_contact(BOB) is None  # the failed add left nothing behind
    store.add_contact(BOB, name="Bob", now=T0)
    with pytest.raises(UserError, match="already used"):
        store.rename_contact(BOB, "alice")
    assert store.find_contact("bob").did == BOB
    assert store.rename_contact(ALICE, "ALICE").name == "ALICE"  # own name, other case: fine


def test_rename_and_clear(store: Store) -> None:
    store.add_contact(ALICE, now=T0)
    assert store.rename_contact(ALICE, "Al").name == "Al"
    assert store.rename_contact(ALICE, None).name is None
    with pytest.raises(UserError, match="not one of your contacts"):
        store.rename_contact(BOB, "Bob")


def test_find_contact(store: Store) -> None:
    alice = store.add_contact(ALICE, name="Alice", now=T0)
    store.add_contact(BOB, now=T0)
    assert store.find_contact(ALICE) == alice
    assert store.find_contact("alice") == alice
    assert store.find_contact(f"  {ALICE} ") == alice
    assert store.find_contact(ALICE[:20]) == alice
    with pytest.raises(UserError, match="no contact named"):
        store.find_contact("Bob")
    with pytest.raises(UserError, match="not one of your contacts"):
        store.find_contact(CAROL)
    with pytest.raises(UserError, match="start of every contact's DID"):
        store.find_contact("did:key:z6M")  # says nothing about which contact
    with pytest.raises(UserError, match="start of every contact's DID"):
        store.find_contact("z6Mk")
    with pytest.raises(UserError, match="no contact has a DID starting with"):
        store.find_contact("did:key:z6Mk%%%%%")  # LIKE wildcards mean nothing
    with pytest.raises(UserError, match="not one of your contacts"):
        store.find_contact("did:web:example.com")


def valid_dids_with_long_common_prefix() -> list[str]:
    """DIDs of valid Ed25519 points that differ only in the last key byte (found by trying)."""
    found = []
    for last in range(128):
        did = ed25519_did(b"\x10" * 31 + bytes([last]))
        try:
            ed25519_public_key(did)
        except DidError:
            continue
        found.append(did)
    return found


def test_find_contact_ambiguous_prefix(store: Store) -> None:
    one, two, *_ = valid_dids_with_long_common_prefix()
    common = one[: next(i for i, (a, b) in enumerate(zip(one, two, strict=True)) if a != b)]
    assert len(common) > 30
    store.add_contact(one, now=T0)
    store.add_contact(two, now=T0)
    with pytest.raises(UserError, match="start of 2 contacts' DIDs") as info:
        store.find_contact(common)
    assert one[: len(common) + 6] in str(info.value) and two[: len(common) + 6] in str(info.value)
    assert store.find_contact(one).did == one
    assert store.find_contact(two).did == two


def test_list_order(store: Store) -> None:
    store.add_contact(CAROL, now=T0)
    store.add_contact(BOB, name="bob", now=T0)
    store.add_contact(ALICE, name="Alice", now=T0)
    assert [c.did for c in store.list_contacts()] == [ALICE, BOB, CAROL]


def test_remove(store: Store) -> None:
    store.add_contact(ALICE, name="Alice", now=T0)
    store.remove_contact(ALICE)
    assert store.get_contact(ALICE) is None
    with pytest.raises(UserError, match="not one of your contacts"):
        store.remove_contact(ALICE)
    store.add_contact(BOB, name="Alice", now=T0)  # the name is free again


def test_verification_and_touch(store: Store) -> None:
    store.add_contact(ALICE, now=T0)
    assert store.set_verification(ALICE, Verification.SAFETY_NUMBER).is_verified
    later = T0 + timedelta(hours=1)
    store.touch_contact(ALICE, later)
    contact = store.get_contact(ALICE)
    assert contact is not None
    assert (contact.verification, contact.first_seen, contact.last_seen) == (
        Verification.SAFETY_NUMBER,
        T0,
        later,
    )
    with pytest.raises(UserError):
        store.set_verification(BOB, Verification.SAS)
    with pytest.raises(UserError):
        store.touch_contact(BOB, later)


def test_verification_values() -> None:
    assert [v.value for v in Verification] == ["unverified", "sas", "safety-number", "suspect"]


def test_invitations(store: Store) -> None:
    assert not store.is_invitation_used(b"id-1")
    assert store.mark_invitation_used(b"id-1", now=T0) is True
    assert store.is_invitation_used(b"id-1")
    assert store.mark_invitation_used(b"id-1", now=T0) is False
    assert not store.is_invitation_used(b"id-2")
    for bad in (b"", b"x" * 65):
        with pytest.raises(ValueError):
            store.mark_invitation_used(bad, now=T0)


def test_concurrent_claims_one_winner(tmp_path: Path) -> None:
    """Eight connections claim the same invitation id at once: exactly one wins."""
    path = tmp_path / "store.sqlite3"
    Store(path).close()
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        with Store(path) as mine:
            barrier.wait(timeout=10)
            results.append(mine.mark_invitation_used(b"shared", now=T0))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False] * 7 + [True]


# --- file, schema, migrations -----------------------------------------------------------------


def test_persists_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with Store(path) as first:
        first.add_contact(ALICE, name="Alice", now=T0)
        first.mark_invitation_used(b"i", now=T0)
        assert first.schema_version == SCHEMA_VERSION == 9
    with Store(path) as second:
        assert [c.did for c in second.list_contacts()] == [ALICE]
        assert second.is_invitation_used(b"i")
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_migrates_an_empty_version_0_database(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE unrelated (x)")
    raw.commit()
    raw.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.add_contact(ALICE, now=T0)


def test_migrates_a_version_1_store_keeping_its_data(tmp_path: Path) -> None:
    """A profile made before the live sessions (schema 1) opens with its contacts intact."""
    path = tmp_path / "store.sqlite3"
    raw = sqlite3.connect(path)
    for statement in module.MIGRATIONS[0]:
        raw.execute(statement)
    raw.execute(
        "INSERT INTO contacts VALUES (?, 'Alice', 'sas', ?, ?)",
        (ALICE, T0.isoformat(), T0.isoformat()),
    )
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        contact = store.get_contact(ALICE)
        assert contact is not None and contact.name == "Alice"
        assert contact.verification is Verification.SAS and contact.suggested_name is None
        tables = {
            row[0]
            for row in store.connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert {"outbox", "received", "transfers", "history"} <= tables


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(UserError, match="newer didlink"):
        Store(path)


def test_not_a_database_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    path.write_bytes(b"this is not an sqlite database, just some bytes " * 100)
    with pytest.raises(DamagedStore, match="damaged"):
        Store(path)


def test_store_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "store.sqlite3").mkdir()
    with pytest.raises(DamagedStore, match="cannot open"):
        Store(tmp_path / "store.sqlite3")


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration step that fails leaves the database at its old version, untouched."""
    path = tmp_path / "store.sqlite3"
    broken = ((*module.MIGRATIONS[0], "CREATE TABLE contacts (x)"),)  # duplicate table
    monkeypatch.setattr(module, "MIGRATIONS", broken)
    with pytest.raises(StoreError, match="already exists"):
        Store(path)
    assert list(tmp_path.iterdir()) == []  # a new store is never left half made
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 0")  # an existing, empty version-0 database
    raw.close()
    with pytest.raises(StoreError, match="already exists"):
        Store(path)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 0
        tables = raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        assert tables == []
    finally:
        raw.close()
    monkeypatch.undo()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_file_mode_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "store.sqlite3"
        with Store(path) as store:
            store.add_contact(ALICE, now=T0)
            for file in tmp_path.iterdir():  # including -wal and -shm
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        os.chmod(path, 0o644)
        Store(path).close()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_profile_folder_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIDLINK_HOME", str(tmp_path / "p"))
    profile = Profile.from_env()
    assert profile.path == tmp_path / "p"
    assert not profile.path.exists()  # from_env touches nothing
    with profile.open_store() as store:
        store.add_contact(ALICE, now=T0)
    assert stat.S_IMODE(profile.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(profile.store_path.stat().st_mode) == 0o600
    os.chmod(profile.path, 0o755)
    os.chmod(profile.store_path, 0o644)
    profile.ensure()
    assert stat.S_IMODE(profile.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(profile.store_path.stat().st_mode) == 0o600


def test_profile_did_and_unlock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = Profile(tmp_path / "p")
    with pytest.raises(NoIdentity):
        profile.did()
    with pytest.raises(NoIdentity):
        profile.unlock()  # before asking for any passphrase
    profile.ensure()
    key = IdentityKey(b"\x05" * 32)
    create_keystore(
        profile.keystore_path, key, "pw", params=KdfParams(memory_cost=64, iterations=1, lanes=1)
    )
    assert profile.did() == key.did
    monkeypatch.setenv("DIDLINK_PASSPHRASE", "pw")
    assert profile.unlock() == key
    monkeypatch.setenv("DIDLINK_PASSPHRASE", "nope")
    with pytest.raises(WrongPassphrase):
        profile.unlock()
    monkeypatch.setenv("DIDLINK_PASSPHRASE", "")
    with pytest.raises(UserError, match="empty"):
        profile.unlock()


def test_profile_default_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIDLINK_HOME", raising=False)
    assert Profile.from_env().path.name == "didlink"


# --- model-based test ---------------------------------------------------------------------------

KEYS = [IdentityKey(bytes([i]) * 32).did for i in range(1, 6)]
NAMES = ["Ann", "ann", "Bo", "Cy", "did:x", ""]


def ascii_fold(name: str) -> str:
    return name.translate({c: c + 32 for c in range(ord("A"), ord("Z") + 1)})


class StoreModel(RuleBasedStateMachine):
    """The store against a dict: any sequence of operations agrees with the model."""

    dids = Bundle("dids")

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp()
        self.store = Store(Path(self.folder) / "store.sqlite3")
        self.model: dict[str, Contact] = {}
        self.used: set[bytes] = set()
        self.clock = T0

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=1, microseconds=7)
        return self.clock

    def name_free(self, name: str, did: str) -> bool:
        return all(
            c.name is None or ascii_fold(c.name) != ascii_fold(name)
            for d, c in self.model.items()
            if d != did
        )

    @staticmethod
    def valid_name(name: str) -> bool:
        return bool(name.strip()) and not name.lower().startswith("did:")

    @rule(target=dids, did=st.sampled_from(KEYS))
    def pick(self, did: str) -> str:
        return did

    @rule(did=dids, name=st.none() | st.sampled_from(NAMES))
    def add(self, did: str, name: str | None) -> None:
        now = self.tick()
        existing = self.model.get(did)
        if existing is not None:
            self.store.add_contact(did, name=name, now=now)
            self.model[did] = Contact(
                did, existing.name, existing.verification, existing.first_seen, now
            )
        elif name is not None and not (self.valid_name(name) and self.name_free(name, did)):
            with pytest.raises(UserError):
                self.store.add_contact(did, name=name, now=now)
        else:
            self.store.add_contact(did, name=name, now=now)
            self.model[did] = Contact(did, name, Verification.UNVERIFIED, now, now)

    @rule(did=dids, name=st.none() | st.sampled_from(NAMES))
    def rename(self, did: str, name: str | None) -> None:
        existing = self.model.get(did)
        ok = existing is not None and (
            name is None or (self.valid_name(name) and self.name_free(name, did))
        )
        if not ok:
            with pytest.raises(UserError):
                self.store.rename_contact(did, name)
            return
        assert existing is not None
        self.store.rename_contact(did, name)
        self.model[did] = Contact(
            did, name, existing.verification, existing.first_seen, existing.last_seen
        )

    @rule(did=dids)
    def remove(self, did: str) -> None:
        if did in self.model:
            self.store.remove_contact(did)
            del self.model[did]
        else:
            with pytest.raises(UserError):
                self.store.remove_contact(did)

    @rule(did=dids, verification=st.sampled_from(list(Verification)))
    def verify(self, did: str, verification: Verification) -> None:
        existing = self.model.get(did)
        if existing is None:
            with pytest.raises(UserError):
                self.store.set_verification(did, verification)
            return
        self.store.set_verification(did, verification)
        self.model[did] = Contact(
            did, existing.name, verification, existing.first_seen, existing.last_seen
        )

    @rule(did=dids)
    def touch(self, did: str) -> None:
        now = self.tick()
        existing = self.model.get(did)
        if existing is None:
            with pytest.raises(UserError):
                self.store.touch_contact(did, now)
            return
        self.store.touch_contact(did, now)
        self.model[did] = Contact(
            did, existing.name, existing.verification, existing.first_seen, now
        )

    @rule(invitation=st.sampled_from([b"a", b"b", b"\x00" * 64]))
    def claim(self, invitation: bytes) -> None:
        assert self.store.mark_invitation_used(invitation, now=self.tick()) is (
            invitation not in self.used
        )
        self.used.add(invitation)

    @rule(text=st.sampled_from(NAMES + KEYS))
    def find(self, text: str) -> None:
        if text.lower().startswith("did:"):
            expected = self.model.get(text)
        else:
            matches = [
                c
                for c in self.model.values()
                if c.name is not None and ascii_fold(c.name) == ascii_fold(text)
            ]
            expected = matches[0] if matches else None
        if expected is None:
            with pytest.raises(UserError):
                self.store.find_contact(text)
        else:
            assert self.store.find_contact(text) == expected

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = Store(Path(self.folder) / "store.sqlite3")

    @invariant()
    def agrees(self) -> None:
        assert sorted(self.store.list_contacts(), key=lambda c: c.did) == sorted(
            self.model.values(), key=lambda c: c.did
        )
        for did in KEYS:
            assert self.store.get_contact(did) == self.model.get(did)


TestStoreModel = StoreModel.TestCase
TestStoreModel.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)


def test_migrates_a_version_2_store_to_suggested_names_and_the_suspect_state(
    tmp_path: Path,
) -> None:
    """Schema 3 (issue 26): contacts rebuilt with `suggested_name` and 'suspect', data kept."""
    path = tmp_path / "store.sqlite3"
    raw = sqlite3.connect(path)
    for step in module.MIGRATIONS[:2]:
        for statement in step:
            raw.execute(statement)
    raw.execute(
        "INSERT INTO contacts VALUES (?, 'Alice', 'safety-number', ?, ?)",
        (ALICE, T0.isoformat(), T0.isoformat()),
    )
    raw.execute("PRAGMA user_version = 2")
    raw.commit()
    raw.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        contact = store.find_contact("alice")
        assert contact.did == ALICE and contact.verification is Verification.SAFETY_NUMBER
        assert contact.suggested_name is None and contact.first_seen == T0
        assert store.set_verification(ALICE, Verification.SUSPECT).verification == "suspect"


# --- removing a contact erases it (issue 26, class 5) -------------------------------------------


def test_remove_erases_every_table_in_one_go(store: Store) -> None:
    store.add_contact(ALICE, name="Alice", now=T0)
    store.add_contact(BOB, now=T0)
    db = store.connection
    rows = {
        "INSERT INTO outbox (peer_did, message_id, created_at, sealed) VALUES (?, ?, 't', x'')": 16,
        "INSERT INTO received VALUES (?, ?, 't')": 16,
        "INSERT INTO transfers (file_id, peer_did, direction, updated_at, sealed)"
        " VALUES (?2, ?1, 'in', 't', x'')": 8,
        "INSERT INTO history (peer_did, direction, at, sealed) VALUES (?, 'in', hex(?), x'')": 4,
        "INSERT INTO sessions VALUES (?1, 't', 't', ?2)": 4,
        "INSERT INTO wraps (event_id, peer_did, made_at, expiration, sealed)"
        " VALUES (?2, ?1, 't', 0, x'')": 12,
        "INSERT INTO inbox (peer_did, kind, message_id, arrived_at, sealed)"
        " VALUES (?, 'text', ?, 't', x'')": 10,
        "INSERT INTO contact_relays VALUES (?, hex(?), 't')": 6,
        "INSERT INTO contact_reach VALUES (?1, 't', '[]', CAST(zeroblob(31) || ?2 AS BLOB))": 1,
        "INSERT INTO message_requests VALUES (?1, hex(?2))": 6,
    }
    for peer in (ALICE, BOB):
        for statement, size in rows.items():
            db.execute(statement, (peer, peer.encode()[-size:]))
    removal = store.remove_contact(ALICE)
    assert removal.incoming_files == (ALICE.encode()[-8:],) and removal.scrubbed
    for table in module.PEER_TABLES:
        peers = [row[0] for row in db.execute(f"SELECT peer_did FROM {table}")]
        assert peers == [BOB], table
    assert [c.did for c in store.list_contacts()] == [BOB]
    raw = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.is_file())
    assert ALICE.encode() not in raw


def test_remove_while_another_process_reads_says_the_wal_was_not_emptied(
    store: Store,
) -> None:
    store.add_contact(ALICE, name="Alice", now=T0)
    store.add_contact(BOB, now=T0)
    reader = sqlite3.connect(store.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM contacts").fetchall()  # holds a snapshot
    store.connection.execute("PRAGMA busy_timeout = 0")
    removal = store.remove_contact(ALICE)
    assert not removal.scrubbed  # removed all the same
    assert store.get_contact(ALICE) is None
    reader.execute("ROLLBACK")
    reader.close()
    assert store.scrub()
    raw = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.is_file())
    assert ALICE.encode() not in raw
