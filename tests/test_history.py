"""Optional message history (didlink/profile/history.py, specs/history.md) and `didlink history`."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from didlink.profile import history
from didlink.profile.folder import Profile
from didlink.profile.history import Direction, HistoryLog, history_option, history_requested
from didlink.profile.sealing import Sealer, store_key
from didlink.profile.store import DamagedStore, Store
from identity import canonical
from identity.keys import IdentityKey
from identity.keystore import unlock
from tests.support.cli import assert_user_error, run_cli

KEY = IdentityKey(bytes(range(32)))
PEER = IdentityKey(bytes(range(1, 33))).did
OTHER = IdentityKey(bytes(range(2, 34))).did
T0 = datetime(2026, 11, 25, 12, 3, tzinfo=UTC)
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.sqlite3")


def _fill(store: Store, sealer: Sealer) -> None:
    for i, (peer, direction, text) in enumerate(
        [
            (PEER, Direction.OUT, "hello Bob"),
            (OTHER, Direction.IN, "not for Bob"),
            (PEER, Direction.IN, "héllo Alice 🙂"),
            (PEER, Direction.OUT, "bye"),
        ]
    ):
        history.append(
            store,
            sealer,
            peer_did=peer,
            direction=direction,
            message_id=f"{i:032x}",
            text=text,
            now=T0 + timedelta(minutes=i),
        )


def test_listed_in_order_per_peer_with_limit(store: Store) -> None:
    sealer = Sealer(KEY)
    _fill(store, sealer)
    entries = history.read(store, sealer, PEER)
    assert [(e.direction, e.text) for e in entries] == [
        (Direction.OUT, "hello Bob"),
        (Direction.IN, "héllo Alice 🙂"),
        (Direction.OUT, "bye"),
    ]
    assert entries[1].message_id == f"{2:032x}" and entries[1].at == T0 + timedelta(minutes=2)
    assert [e.text for e in history.read(store, sealer, PEER, limit=2)] == ["héllo Alice 🙂", "bye"]
    assert history.count(store, PEER) == 3
    with pytest.raises(ValueError):
        history.read(store, sealer, PEER, limit=0)


def test_sealed_value_is_aes_gcm_of_canonical_cbor_under_the_row_context(store: Store) -> None:
    seq = history.append(
        store,
        Sealer(KEY),
        peer_did=PEER,
        direction=Direction.IN,
        message_id=7,
        text="secret words",
        now=T0,
    )
    row = store.connection.execute(
        "SELECT peer_did, direction, at, sealed FROM history WHERE seq = ?", (seq,)
    ).fetchone()
    assert row[:3] == (PEER, "in", "2026-11-25T12:03:00.000000+00:00")
    sealed = row[3]
    # Independently: AES-256-GCM under the store key, AD = "history\0" || seq || DID || 0 || dir
    context = b"history\x00" + seq.to_bytes(8, "big") + PEER.encode() + b"\x00in"
    plain = AESGCM(store_key(KEY)).decrypt(sealed[:12], sealed[12:], context)
    assert canonical.decode(plain) == {"v": 1, "id": 7, "text": "secret words"}
    assert b"secret words" not in sealed


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE history SET peer_did = :other",  # relabelled to another peer
        "UPDATE history SET direction = 'out'",  # relabelled direction
        "UPDATE history SET seq = seq + 100",  # moved to another row
        "UPDATE history SET sealed = substr(sealed, 1, length(sealed) - 1)",  # truncated
    ],
)
def test_a_changed_row_does_not_open(store: Store, tamper: str) -> None:
    sealer = Sealer(KEY)
    history.append(
        store, sealer, peer_did=PEER, direction=Direction.IN, message_id=1, text="x", now=T0
    )
    store.connection.execute(tamper, {"other": OTHER})
    peer = OTHER if ":other" in tamper else PEER
    with pytest.raises(DamagedStore):
        history.read(store, sealer, peer)


def test_another_key_does_not_open(store: Store) -> None:
    _fill(store, Sealer(KEY))
    with pytest.raises(DamagedStore):
        history.read(store, Sealer(IdentityKey(bytes(32))), PEER)


def test_bad_plaintext_is_a_damaged_store(store: Store) -> None:
    sealer = Sealer(KEY)
    seq = history.append(
        store, sealer, peer_did=PEER, direction=Direction.OUT, message_id=1, text="x", now=T0
    )
    context = history.history_context(seq, PEER, Direction.OUT)
    for plaintext in (b"\xff", canonical.encode({"v": 2, "id": 1, "text": "x"}), b"\xa0"):
        store.connection.execute(
            "UPDATE history SET sealed = ? WHERE seq = ?",
            (sealer.seal(plaintext, context=context), seq),
        )
        with pytest.raises(DamagedStore):
            history.read(store, sealer, PEER)


def test_clear_deletes_one_conversation(store: Store) -> None:
    sealer = Sealer(KEY)
    _fill(store, sealer)
    assert history.clear(store, PEER) == 3
    assert history.read(store, sealer, PEER) == []
    assert [e.text for e in history.read(store, sealer, OTHER)] == ["not for Bob"]
    assert history.clear(store, PEER) == 0


def test_naive_time_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        history.append(
            store,
            Sealer(KEY),
            peer_did=PEER,
            direction=Direction.IN,
            message_id=1,
            text="x",
            now=datetime(2026, 1, 1),  # naive: the point of the test
        )


def test_history_log_records_and_reports_a_failure_once(tmp_path: Path) -> None:
    errors: list[str] = []
    log = HistoryLog(profile=Profile(tmp_path / "p"), key=KEY, on_error=errors.append)
    log.record(PEER, Direction.OUT, "ab" * 16, "kept")
    log.record(PEER, Direction.IN, 5, "and this")
    with Store(tmp_path / "p" / "store.sqlite3") as store:  # another connection sees both
        assert [e.text for e in history.read(store, Sealer(KEY), PEER)] == ["kept", "and this"]
    log.close()
    log.close()  # idempotent
    (tmp_path / "file").write_text("not a folder")
    broken = HistoryLog(profile=Profile(tmp_path / "file"), key=KEY, on_error=errors.append)
    broken.record(PEER, Direction.IN, 1, "a")
    broken.record(PEER, Direction.IN, 2, "b")
    assert len(errors) == 1 and "history could not be saved" in errors[0]


def test_history_option_sets_the_flag_without_changing_the_signature() -> None:
    seen: list[bool] = []

    @click.command()
    @history_option
    def live() -> None:
        seen.append(history_requested())

    runner = CliRunner()
    assert runner.invoke(live, []).exit_code == 0
    assert runner.invoke(live, ["--history"]).exit_code == 0
    assert seen == [False, True]
    assert history_requested() is False  # outside any click command


# --- the CLI (real subprocesses) ---------------------------------------------------------------


def _profile_with_history(tmp_path: Path) -> Path:
    home = tmp_path / "p"
    assert run_cli("init", home=home).returncode == 0
    key = unlock(home / "keystore.json", PASSPHRASE)
    with Store(home / "store.sqlite3") as store:
        store.add_contact(PEER, name="Bob", now=T0)
        _fill(store, Sealer(key))
    return home


def test_cli_lists_the_conversation(tmp_path: Path) -> None:
    home = _profile_with_history(tmp_path)
    result = run_cli("history", "Bob", home=home, env={"TZ": "Europe/Paris"})
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header == "Messages with Bob (times in CET, UTC+01:00):"
    assert len(lines) == 3
    assert lines[0] == "[2026-11-25 13:03] you: hello Bob"  # 12:03 UTC, in local time
    assert lines[1].endswith("] Bob: héllo Alice 🙂")
    as_json = json.loads(run_cli("history", PEER, "--json", "--limit", "1", home=home).stdout)
    assert as_json == [
        {
            "seq": 4,
            "direction": "out",
            "at": "2026-11-25T12:06:00+00:00",
            "id": f"{3:032x}",
            "text": "bye",
        }
    ]


def test_cli_clear(tmp_path: Path) -> None:
    home = _profile_with_history(tmp_path)
    result = run_cli("history", "--clear", "bob", home=home, passphrase=None)  # no passphrase
    assert result.returncode == 0, result.stderr
    assert "Deleted 3 stored messages with Bob" in result.stdout
    assert run_cli("history", "Bob", home=home).stdout.startswith("No stored messages with Bob")
    with sqlite3.connect(home / "store.sqlite3") as db:
        assert db.execute("SELECT peer_did FROM history").fetchall() == [(OTHER,)]
    # a removed contact's history can still be read and cleared by its full DID
    assert run_cli("history", OTHER, "--json", home=home).returncode == 0
    cleared = run_cli("history", OTHER, "--clear", "--json", home=home)
    assert json.loads(cleared.stdout) == {"did": OTHER, "deleted": 1}


def test_cli_wrong_passphrase_is_one_line(tmp_path: Path) -> None:
    home = _profile_with_history(tmp_path)
    result = run_cli("history", "Bob", home=home, passphrase="wrong")
    assert_user_error(result, "passphrase")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("history", "Carol"), "no contact named 'Carol'"),
        (("history", "did:key:z6MkNotAContactAtAll"), "no contact has a DID starting with"),
        (("history", "did:key:z6Mk"), "start of every contact's DID"),
        (("history", "Bob", "--clear", "--limit", "2"), "does not take --limit"),
    ],
)
def test_cli_errors(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    home = _profile_with_history(tmp_path)
    assert_user_error(run_cli(*args, home=home), needle)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("history", "Bob", "--limit", "0"), "Invalid value for '--limit'"),
        (("history", "Bob", "--limit", "x"), "Invalid value for '--limit'"),
        (("history",), "Missing argument 'DID-OR-NAME'"),
    ],
)
def test_cli_usage_errors(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    result = run_cli(*args, home=tmp_path / "p")  # click's usage errors: exit 2, usage shown
    assert result.returncode == 2 and result.stdout == ""
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_cli_damaged_history_is_one_line(tmp_path: Path) -> None:
    home = _profile_with_history(tmp_path)
    with sqlite3.connect(home / "store.sqlite3") as db:
        db.execute("UPDATE history SET direction = 'in'")
    assert_user_error(run_cli("history", "Bob", home=home), "does not open")


@pytest.mark.parametrize("extra", [(), ("--clear",)])
def test_cli_without_identity(tmp_path: Path, extra: tuple[str, ...]) -> None:
    assert_user_error(run_cli("history", "Bob", *extra, home=tmp_path / "empty"), "noIdentity")
    assert not (tmp_path / "empty").exists()  # nothing created


def test_cli_ambiguous_prefix(tmp_path: Path) -> None:
    home = _profile_with_history(tmp_path)
    twins = [IdentityKey(seed.to_bytes(32, "big")).did for seed in (827, 1547)]
    prefix = twins[0][:16]  # the store looks up prefixes of at least 16 characters
    assert twins[1].startswith(prefix) and twins[0] != twins[1]
    with Store(home / "store.sqlite3") as store:
        for did in twins:
            store.add_contact(did, now=T0)
    assert_user_error(run_cli("history", prefix, home=home), "start of 2 contacts' DIDs")
