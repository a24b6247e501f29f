"""The profile's settings table (didlink/profile/settings.py, specs/store.md "Settings")."""

from __future__ import annotations

from pathlib import Path

import pytest

from didlink.profile.sealing import Sealer
from didlink.profile.settings import Settings
from didlink.profile.store import DamagedStore, Store
from identity.keys import IdentityKey


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.sqlite3")


def test_clear_values_round_trip_replace_and_delete(store: Store) -> None:
    settings = Settings(store)
    assert settings.get("relays") is None
    settings.put("relays", b'["wss://a"]')
    settings.put("relays", b'["wss://b"]')
    assert settings.get("relays") == b'["wss://b"]'
    assert settings.delete("relays") is True
    assert settings.delete("relays") is False
    assert settings.get("relays") is None


def test_sealed_values_are_not_in_clear_and_open_only_under_their_name(store: Store) -> None:
    sealer = Sealer(IdentityKey.generate())
    settings = Settings(store, sealer)
    settings.put_sealed("ice.credentials", b"hunter2-secret")
    raw = store.connection.execute("SELECT value FROM settings").fetchone()[0]
    assert b"hunter2" not in raw
    assert settings.get_sealed("ice.credentials") == b"hunter2-secret"
    store.connection.execute("UPDATE settings SET name = 'other'")
    with pytest.raises(DamagedStore):
        settings.get_sealed("other")  # moved to another name: does not open


def test_sealed_and_clear_are_not_confused(store: Store) -> None:
    settings = Settings(store, Sealer(IdentityKey.generate()))
    settings.put("a", b"clear")
    settings.put_sealed("b", b"sealed")
    with pytest.raises(DamagedStore):
        settings.get_sealed("a")
    with pytest.raises(DamagedStore):
        settings.get("b")
    with pytest.raises(ValueError, match="Sealer"):
        Settings(store).get_sealed("b")


def test_another_identity_cannot_open_a_sealed_setting(store: Store) -> None:
    Settings(store, Sealer(IdentityKey.generate())).put_sealed("s", b"x")
    with pytest.raises(DamagedStore):
        Settings(store, Sealer(IdentityKey.generate())).get_sealed("s")


@pytest.mark.parametrize("name", ["", "x" * 65, "é", "a\nb", "a\x1b"])
def test_bad_names_are_refused(store: Store, name: str) -> None:
    with pytest.raises(ValueError):
        Settings(store).put(name, b"v")


def test_values_are_bounded(store: Store) -> None:
    with pytest.raises(ValueError):
        Settings(store).put("big", bytes(64 * 1024 + 1))


def test_settings_survive_reopening(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as first:
        Settings(first).put("ice.policy", b"relay")
    with Store(tmp_path / "s.sqlite3") as again:
        assert Settings(again).get("ice.policy") == b"relay"
