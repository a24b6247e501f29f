"""Faults of the local store file through the real `didlink` command (issue 26, class 5).

A store that is empty, truncated, headerless or has a page of garbage in the middle, a store
lost beside its write-ahead log, or a store locked by another process: every command that
opens it ends with exit 2 and one line on stderr naming the file and what to do, no traceback,
nothing on stdout, and the damaged file is left byte-identical (nothing is ever recreated over
it). specs/store.md, "The file and its faults".
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink.profile.folder import Profile
from didlink.profile.outbox import new_message_id
from didlink.profile.store import DamagedStore, Store, StoreBusy, StoreConstraint, StoreError
from identity.invitation import Invitation
from identity.keys import IdentityKey
from identity.keystore import KdfParams, create_keystore
from identity.token import encode_token
from tests.support.cli import assert_user_error, run_cli

ME = IdentityKey(bytes([0x61]) * 32)
FRIEND = IdentityKey(bytes([0x62]) * 32)
CONTACTS = [IdentityKey(i.to_bytes(2, "big") * 16).did for i in range(1, 301)]
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PASSPHRASE = "correct horse battery staple"
PAGE = 4096


def _profile(home: Path) -> Path:
    """An identity and a store of many pages: 300 named contacts and 3000 received ids."""
    home.mkdir(mode=0o700, parents=True)
    create_keystore(
        home / "keystore.json",
        ME,
        PASSPHRASE,
        params=KdfParams(memory_cost=64 * 1024, iterations=3, lanes=1),
    )
    with Store(home / "store.sqlite3") as store:
        for index, did in enumerate(CONTACTS):
            store.add_contact(did, name=f"contact {index:03}", now=T0)
        with store.transaction():
            store.connection.executemany(
                "INSERT INTO received VALUES (?, ?, ?)",
                [(CONTACTS[0], new_message_id(), T0.isoformat()) for _ in range(3000)],
            )
    return home


def _zero_length(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: (len(data) // PAGE // 2) * PAGE])


def _headerless(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:100] = os.urandom(100)
    path.write_bytes(bytes(data))


def _page_of_garbage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    pages = len(data) // PAGE
    assert pages >= 20, pages  # several pages: the damaged one is in the middle
    middle = pages // 2
    data[middle * PAGE : (middle + 1) * PAGE] = os.urandom(PAGE)
    path.write_bytes(bytes(data))


DAMAGES: dict[str, Callable[[Path], None]] = {
    "zero-length": _zero_length,
    "truncated": _truncated,
    "headerless": _headerless,
    "page-of-garbage": _page_of_garbage,
}


def _card() -> str:
    return encode_token(Invitation.create(FRIEND, now=int(time.time()), lifetime=86400))


COMMANDS: dict[str, Callable[[], tuple[str, ...]]] = {
    "contacts": lambda: ("contacts",),
    "accept-card": lambda: ("accept", _card()),
    "rename": lambda: ("contacts", "rename", CONTACTS[5], "Zed"),
    "remove": lambda: ("contacts", "remove", "contact 007"),
    "chat": lambda: ("chat", "contact 009"),
    "safety-number": lambda: ("safety-number", CONTACTS[3], "--no-qr"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_damaged_store_is_one_line_and_left_as_it_is(
    tmp_path: Path, damage: str, command: str
) -> None:
    home = _profile(tmp_path / "profile")
    store = home / "store.sqlite3"
    DAMAGES[damage](store)
    before = store.read_bytes()
    result = run_cli(*COMMANDS[command](), home=home)
    assert_user_error(result, f"the local store {store}", "restore it from a backup")
    assert store.read_bytes() == before  # never repaired, reset or written over
    assert sorted(p.name for p in home.iterdir()) == ["keystore.json", "store.sqlite3"]


def test_a_store_lost_beside_its_log_is_refused(tmp_path: Path) -> None:
    home = _profile(tmp_path / "profile")
    (home / "store.sqlite3").rename(home / "elsewhere")
    (home / "store.sqlite3-wal").write_bytes(b"\x37\x7f\x06\x82" + bytes(28))
    result = run_cli("contacts", home=home)
    assert_user_error(result, "store.sqlite3 is missing while its store.sqlite3-wal is there")
    assert not (home / "store.sqlite3").exists()


def test_a_missing_store_of_an_existing_identity_is_created_and_said(tmp_path: Path) -> None:
    home = _profile(tmp_path / "profile")
    (home / "store.sqlite3").unlink()
    result = run_cli("contacts", home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No contacts yet.")
    assert (
        result.stderr == f"note: there was no local store in {home}: a new, empty one was created\n"
    )
    again = run_cli("contacts", home=home)
    assert (again.returncode, again.stderr) == (0, "")


def test_init_creates_the_store_so_no_note_later(home: Path) -> None:
    assert run_cli("init", home=home).returncode == 0
    result = run_cli("contacts", home=home)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("No contacts yet.")


def test_a_locked_store_is_one_line(tmp_path: Path) -> None:
    home = _profile(tmp_path / "profile")
    blocker = sqlite3.connect(home / "store.sqlite3", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        started = time.monotonic()
        result = run_cli("contacts", "rename", CONTACTS[5], "Zed", home=home)
        assert time.monotonic() - started >= 9  # after the busy timeout (10 s), not at once
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert_user_error(result, f"the local store {home / 'store.sqlite3'} is locked", "try again")


# --- the same rules in process ----------------------------------------------------------------


def test_a_damaged_page_found_by_a_later_query_is_typed(tmp_path: Path) -> None:
    """Opened unchecked, the damage is found only when its page is read: still a StoreError."""
    home = _profile(tmp_path / "profile")
    _page_of_garbage(home / "store.sqlite3")
    queries = [
        "SELECT * FROM contacts",
        "SELECT did FROM contacts ORDER BY did",
        "SELECT name FROM contacts ORDER BY name",
        "SELECT * FROM received",
    ]
    found = []
    with Store(home / "store.sqlite3", check=False) as store:
        for query in queries:
            try:
                for _ in store.connection.execute(query):  # fetched row by row
                    pass
            except DamagedStore as exc:
                assert "restore it from a backup" in str(exc)
                found.append(query)
    assert found  # the page belongs to one of them; no other exception escaped
    with pytest.raises(DamagedStore, match="SQLite's check"):
        Store(home / "store.sqlite3")


def test_every_sqlite_error_is_a_store_error(tmp_path: Path) -> None:
    with Store(tmp_path / "store.sqlite3") as store:
        with pytest.raises(StoreError, match="no such table"):
            store.connection.execute("SELECT * FROM no_such_table")
        store.add_contact(CONTACTS[0], name="Ann", now=T0)
        with pytest.raises(StoreConstraint) as raised:  # still catchable as IntegrityError
            store.connection.execute(
                "INSERT INTO contacts (did, name, verification, first_seen, last_seen)"
                " VALUES (?, 'x', 'unverified', 'a', 'b')",
                (CONTACTS[0],),
            )
        assert isinstance(raised.value, sqlite3.IntegrityError)
        blocker = sqlite3.connect(tmp_path / "store.sqlite3", timeout=0, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        store.connection.execute("PRAGMA busy_timeout = 0")
        with pytest.raises(StoreBusy, match="locked by another process"):
            store.rename_contact(CONTACTS[0], "Bo")
        blocker.execute("ROLLBACK")
        blocker.close()


def test_a_new_store_is_never_left_empty(tmp_path: Path) -> None:
    """Created in a temporary file and linked into place whole: an interrupted creation
    leaves no store (and no temporary file), never an empty one."""
    path = tmp_path / "store.sqlite3"

    def fail(_db: sqlite3.Connection) -> None:
        raise OSError(28, "No space left on device")

    from didlink.profile import store_file

    with pytest.raises(StoreError, match="cannot create the local store"):
        store_file.create_new(path, fail)
    assert list(tmp_path.iterdir()) == []
    with Store(path) as store:
        assert store.created
    assert path.read_bytes().startswith(b"SQLite format 3\x00")
    with Store(path) as store:
        assert not store.created


def test_profile_create_store_leaves_an_existing_one(tmp_path: Path) -> None:
    profile = Profile(tmp_path / "p")
    profile.create_store()
    profile.store_path.write_bytes(b"")
    profile.create_store()  # `init --force` does not recreate over anything
    assert profile.store_path.read_bytes() == b""
