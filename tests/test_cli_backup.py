"""`didlink backup phrase|export|import` and `didlink restore phrase` (specs/backup.md).

The stories run the real command in a subprocess; the every-bit and every-truncation checks run
the same click command in-process (thousands of runs) on a backup sealed with tiny Argon2
parameters, which the file carries.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from didlink.cli.main import main
from didlink.profile.sealing import Sealer
from didlink.profile.settings import Settings
from didlink.profile.store import Store
from identity.backup import make_backup, seal_backup
from identity.contact import Contact, Verification
from identity.keys import IdentityKey
from identity.keystore import KdfParams, unlock
from identity.recovery import seed_to_words
from tests.support.cli import assert_user_error, run_cli

PASS = "correct horse battery staple"
BACKUP_PASS = "another long passphrase for the backup"
BACKUP_ENV = {"DIDLINK_BACKUP_PASSPHRASE": BACKUP_PASS}
FAST = KdfParams(memory_cost=64, iterations=1, lanes=1)
T0 = datetime(2026, 11, 25, 20, 16, 8, 123456, tzinfo=UTC)


def init(home: Path) -> str:
    result = run_cli("init", home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def did_of(n: int) -> str:
    return IdentityKey(bytes([n]) * 32).did


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes); {} if it does not exist."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def strays(home: Path) -> list[str]:
    return sorted(p.name for p in home.parent.iterdir() if p.name.startswith(f".{home.name}."))


# --- the recovery phrase ---------------------------------------------------------------------


def show_phrase(home: Path) -> str:
    result = run_cli("backup", "phrase", home=home, stdin="y\n")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_phrase_shown_after_warning_restores_the_same_did(home: Path, tmp_path: Path) -> None:
    did = init(home)
    shown = run_cli("backup", "phrase", home=home, stdin="y\n")
    assert shown.returncode == 0, shown.stderr
    assert "anyone who has them can be you" in shown.stderr
    assert "paper" in shown.stderr and "website" in shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 6 and lines[0].lstrip().startswith("1. ")
    seed = unlock(home / "keystore.json", PASS).seed
    assert [w for w in shown.stdout.split() if not w[0].isdigit()] == seed_to_words(seed)

    fresh = tmp_path / "new-machine"
    restored = run_cli("restore", "phrase", home=fresh, passphrase="new one", stdin=shown.stdout)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip() == did
    assert unlock(fresh / "keystore.json", "new one").did == did
    assert stat.S_IMODE((fresh / "keystore.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700


def test_phrase_is_tolerant_of_case_and_spaces(home: Path, tmp_path: Path) -> None:
    did = init(home)
    words = [w for w in show_phrase(home).split() if not w[0].isdigit()]
    messy = "   " + "  ".join(w.upper() if i % 2 else w.title() for i, w in enumerate(words))
    result = run_cli("restore", "phrase", home=tmp_path / "b", stdin=messy + "\n\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == did


@pytest.mark.parametrize("answer", ["n\n", "", "maybe\n"])
def test_phrase_is_not_shown_without_yes(home: Path, answer: str) -> None:
    init(home)
    result = run_cli("backup", "phrase", home=home, stdin=answer)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Nothing shown." in result.stderr


def test_phrase_needs_the_passphrase(home: Path) -> None:
    init(home)
    result = run_cli("backup", "phrase", home=home, passphrase="wrong", stdin="y\n")
    assert_user_error(result, "error: wrongPassphrase:")
    assert_user_error(run_cli("backup", "phrase", home=home.parent / "none"), "noIdentity")


def test_phrase_errors_are_one_line_and_write_nothing(home: Path, tmp_path: Path) -> None:
    init(home)
    words = [w for w in show_phrase(home).split() if not w[0].isdigit()]
    target = tmp_path / "b"
    cases = {
        "wrongWordCount": " ".join(words[:23]),
        "unknownWords": " ".join(["abandn", *words[1:5], "zzzz", *words[6:]]),
        "badChecksum": " ".join([words[1], words[0], *words[2:]]),
    }
    for code, text in cases.items():
        result = run_cli("restore", "phrase", home=target, stdin=text)
        assert_user_error(result, f"error: {code}:")
        assert not target.exists()
    unknown = run_cli("restore", "phrase", home=target, stdin=cases["unknownWords"])
    assert '#1 "abandn" (abandon' in unknown.stderr and '#6 "zzzz"' in unknown.stderr


def test_restore_phrase_refuses_an_identity_unless_forced(home: Path) -> None:
    """--force with the same words is the way back after a forgotten passphrase."""
    did = init(home)
    phrase = show_phrase(home)
    before = (home / "keystore.json").read_bytes()
    refused = run_cli("restore", "phrase", home=home, stdin=phrase)
    assert_user_error(refused, "error: identityExists:", "--force")
    assert (home / "keystore.json").read_bytes() == before
    forced = run_cli(
        "restore", "phrase", "--force", home=home, passphrase="remembered", stdin=phrase
    )
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == did
    assert unlock(home / "keystore.json", "remembered").did == did


def test_restore_phrase_from_a_script_needs_a_passphrase(home: Path, tmp_path: Path) -> None:
    init(home)
    result = run_cli(
        "restore", "phrase", home=tmp_path / "b", passphrase=None, stdin=show_phrase(home)
    )
    assert_user_error(result, "DIDLINK_PASSPHRASE")
    assert not (tmp_path / "b" / "keystore.json").exists()


# --- the backup file: stories through the real CLI ----------------------------------------------


def populate(home: Path) -> None:
    with Store(home / "store.sqlite3") as store:
        store.add_contact(did_of(1), name="Alice", now=T0)
        store.record_session(did_of(1), verified=True, now=T0 + timedelta(hours=1))
        store.add_contact(did_of(2), suggested_name="Bob", now=T0)
        store.set_verification(did_of(2), Verification.SAFETY_NUMBER)
        store.record_session(did_of(3), verified=False, now=T0 + timedelta(days=2))
        store.add_contact(did_of(4), name="Straße", now=T0)
        store.mark_invitation_used(b"\x07" * 16, now=T0)


def store_state(home: Path) -> tuple[list[Contact], list[tuple[bytes, str]]]:
    with Store(home / "store.sqlite3") as store:
        rows = store.connection.execute("SELECT id, used_at FROM used_invitations").fetchall()
        return store.list_contacts(), [(bytes(r[0]), r[1]) for r in rows]


def test_export_then_import_gives_the_same_identity_and_contacts(
    home: Path, tmp_path: Path
) -> None:
    did = init(home)
    populate(home)
    file = tmp_path / "me.didlink-backup"
    exported = run_cli("backup", "export", str(file), home=home, env=BACKUP_ENV)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == ""
    assert "4 contacts" in exported.stderr
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert did.encode() not in file.read_bytes() and b"Alice" not in file.read_bytes()

    fresh = tmp_path / "new-machine"
    imported = run_cli("backup", "import", str(file), home=fresh, passphrase="new", env=BACKUP_ENV)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == did
    assert "Restored 4 contacts, 0 conversations and 1 used invitations." in imported.stderr
    assert unlock(fresh / "keystore.json", "new").did == did
    assert store_state(fresh) == store_state(home)
    assert sorted(p.name for p in fresh.iterdir()) == ["keystore.json", "store.sqlite3"]
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    for name in ("keystore.json", "store.sqlite3"):
        assert stat.S_IMODE((fresh / name).stat().st_mode) == 0o600
    listed = [run_cli("contacts", "--json", home=h, passphrase=None) for h in (home, fresh)]
    assert listed[0].returncode == 0, listed[0].stderr
    assert json.loads(listed[0].stdout) == json.loads(listed[1].stdout)
    assert strays(fresh) == []


def test_settings_come_back_and_sealed_ones_still_open(home: Path, tmp_path: Path) -> None:
    """The profile's settings (relays, ICE servers: specs/store.md "Settings") travel in the
    backup; a sealed one opens under the restored identity's store key."""
    init(home)
    key = unlock(home / "keystore.json", PASS)
    with Store(home / "store.sqlite3") as store:
        settings = Settings(store, Sealer(key))
        settings.put("relays", b'["wss://relay.example"]')
        settings.put_sealed("ice.credentials", b"turn secret")
    file = tmp_path / "me.didlink-backup"
    exported = run_cli("backup", "export", str(file), home=home, env=BACKUP_ENV)
    assert exported.returncode == 0, exported.stderr
    assert b"turn secret" not in file.read_bytes() and b"relay.example" not in file.read_bytes()
    fresh = tmp_path / "new-machine"
    imported = run_cli("backup", "import", str(file), home=fresh, passphrase="new", env=BACKUP_ENV)
    assert imported.returncode == 0, imported.stderr
    with Store(fresh / "store.sqlite3") as store:
        restored = Settings(store, Sealer(unlock(fresh / "keystore.json", "new")))
        assert restored.get("relays") == b'["wss://relay.example"]'
        assert restored.get_sealed("ice.credentials") == b"turn secret"


def test_export_refuses_to_overwrite_unless_forced(home: Path, tmp_path: Path) -> None:
    init(home)
    file = tmp_path / "backup"
    file.write_text("keep me")
    result = run_cli("backup", "export", str(file), home=home, env=BACKUP_ENV)
    assert_user_error(result, "already exists", "--force")
    assert file.read_text() == "keep me"


def test_export_from_a_script_needs_a_backup_passphrase(home: Path, tmp_path: Path) -> None:
    init(home)
    result = run_cli("backup", "export", str(tmp_path / "b"), home=home)
    assert_user_error(result, "DIDLINK_BACKUP_PASSPHRASE")
    assert not (tmp_path / "b").exists()


@pytest.fixture
def exported(home: Path, tmp_path: Path) -> tuple[str, Path]:
    did = init(home)
    populate(home)
    file = tmp_path / "backup"
    result = run_cli("backup", "export", str(file), home=home, env=BACKUP_ENV)
    assert result.returncode == 0, result.stderr
    return did, file


def test_import_refuses_a_non_empty_profile_unless_forced(
    exported: tuple[str, Path], tmp_path: Path
) -> None:
    did, file = exported
    other = tmp_path / "other"
    other_did = init(other)
    (other / "downloads").mkdir()
    (other / "downloads" / "photo.jpg").write_bytes(b"\xff\xd8 a received file")
    before = snapshot(other)
    refused = run_cli("backup", "import", str(file), home=other, env=BACKUP_ENV)
    assert_user_error(refused, "error: identityExists:", "--force")
    assert snapshot(other) == before

    contacts_only = tmp_path / "contacts-only"
    contacts_only.mkdir(mode=0o700)
    populate(contacts_only)
    before = snapshot(contacts_only)
    refused = run_cli("backup", "import", str(file), home=contacts_only, env=BACKUP_ENV)
    assert_user_error(refused, "not empty", "contacts", "--force")
    assert snapshot(contacts_only) == before

    forced = run_cli("backup", "import", "--force", str(file), home=other, env=BACKUP_ENV)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == did != other_did
    assert unlock(other / "keystore.json", PASS).did == did
    assert (other / "downloads" / "photo.jpg").read_bytes() == b"\xff\xd8 a received file"
    assert strays(other) == []


def test_import_into_an_existing_empty_profile(exported: tuple[str, Path], tmp_path: Path) -> None:
    did, file = exported
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    Store(empty / "store.sqlite3").close()  # a store with no rows is still empty
    result = run_cli("backup", "import", str(file), home=empty, env=BACKUP_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == did


def test_import_with_a_wrong_passphrase_writes_nothing(
    exported: tuple[str, Path], tmp_path: Path
) -> None:
    _, file = exported
    fresh = tmp_path / "fresh"
    result = run_cli(
        "backup", "import", str(file), home=fresh, env={"DIDLINK_BACKUP_PASSPHRASE": "wrong"}
    )
    assert_user_error(result, "error: backupDoesNotOpen:")
    assert not fresh.exists() and strays(fresh) == []


def test_import_of_a_missing_or_foreign_file(home: Path, tmp_path: Path) -> None:
    assert_user_error(
        run_cli("backup", "import", str(tmp_path / "nope"), home=home, env=BACKUP_ENV),
        "there is no file",
    )
    keystore_like = tmp_path / "keystore.json"
    init(tmp_path / "x")
    keystore_like.write_bytes((tmp_path / "x" / "keystore.json").read_bytes())
    assert_user_error(
        run_cli("backup", "import", str(keystore_like), home=home, env=BACKUP_ENV),
        "error: damagedBackup:",
    )
    assert not home.exists()


# --- every bit, every truncation, a failure before the rename (in-process) ----------------------


def small_backup(tmp_path: Path) -> Path:
    contact = Contact(
        did=did_of(1), name="Al", verification=Verification.SAS, first_seen=T0, last_seen=T0
    )
    backup = make_backup(IdentityKey(bytes(range(32))), [contact], [], now=T0)
    file = tmp_path / "small.backup"
    file.write_bytes(seal_backup(backup, BACKUP_PASS, params=FAST))
    return file


def run_in_process(
    *args: str, home: Path, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    full = {"DIDLINK_HOME": str(home), "DIDLINK_PASSPHRASE": PASS, **BACKUP_ENV, **(env or {})}
    result = CliRunner().invoke(main, list(args), env=full, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_small_backup_imports(tmp_path: Path) -> None:
    file = small_backup(tmp_path)
    code, out, err = run_in_process("backup", "import", str(file), home=tmp_path / "p")
    assert code == 0, err
    assert out.strip() == IdentityKey(bytes(range(32))).did


def test_every_single_bit_flip_is_refused_with_one_line_and_nothing_written(
    tmp_path: Path,
) -> None:
    file = small_backup(tmp_path)
    data = file.read_bytes()
    home = tmp_path / "p"
    flipped_file = tmp_path / "flipped"
    codes: set[str] = set()
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        flipped_file.write_bytes(bytes(flipped))
        code, out, err = run_in_process("backup", "import", str(flipped_file), home=home)
        assert code == 2, (bit, out, err)
        assert out == "" and len(err.strip().splitlines()) == 1, (bit, err)
        assert not home.exists(), bit
        codes.add(err.split(":")[1].strip())
    assert codes == {"damagedBackup", "backupDoesNotOpen"}
    assert strays(home) == []


def test_every_truncation_is_refused(tmp_path: Path) -> None:
    data = small_backup(tmp_path).read_bytes()
    home = tmp_path / "p"
    cut = tmp_path / "cut"
    for length in range(len(data)):
        cut.write_bytes(data[:length])
        code, out, err = run_in_process("backup", "import", str(cut), home=home)
        assert code == 2 and out == "", (length, err)
        assert err.startswith("error: damagedBackup:") and err.count("\n") == 1, err
        assert not home.exists()


def fail_before_rename(staging: Path, target: Path) -> None:
    assert sorted(p.name for p in staging.iterdir()) == ["keystore.json", "store.sqlite3"]
    raise OSError(5, "Input/output error")


def test_a_failure_before_the_final_rename_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = small_backup(tmp_path)
    monkeypatch.setattr("didlink.custody.restore._commit", fail_before_rename)
    home = tmp_path / "p"
    code, out, err = run_in_process("backup", "import", str(file), home=home)
    assert code == 2 and out == ""
    assert "nothing was changed" in err and err.count("\n") == 1
    assert not home.exists() and strays(home) == []

    other = tmp_path / "other"
    init(other)
    before = snapshot(other)
    code, _, err = run_in_process("backup", "import", "--force", str(file), home=other)
    assert code == 2 and "nothing was changed" in err
    assert snapshot(other) == before and strays(other) == []


KILLED_IMPORT = textwrap.dedent(
    """
    import os, signal, sys
    import didlink.custody.restore
    from didlink.cli.main import main

    def killed(staging, target):
        os.kill(os.getpid(), signal.SIGKILL)

    didlink.custody.restore._commit = killed
    main(["backup", "import", *sys.argv[1:]])
    """
)


@pytest.mark.faults
@pytest.mark.parametrize("force", [False, True])
def test_a_kill_before_the_final_rename_leaves_no_half_profile(
    exported: tuple[str, Path], tmp_path: Path, force: bool
) -> None:
    did, file = exported
    home = tmp_path / "target"
    if force:
        init(home)
    before = snapshot(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    env.update(DIDLINK_HOME=str(home), DIDLINK_PASSPHRASE=PASS, **BACKUP_ENV)
    args = [str(file), *(["--force"] if force else [])]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IMPORT, *args], env=env, capture_output=True, timeout=120
    )
    assert killed.returncode == -9, killed.stderr
    assert snapshot(home) == before  # the old profile (or none), whole
    assert len(strays(home)) == 1  # the staging folder, never read
    again = run_cli("backup", "import", *args, home=home, env=BACKUP_ENV)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == did
    assert strays(home) == []


# --- on a terminal ----------------------------------------------------------------------------


NEW_SECRET = "a new and rather long secret"  # strong: no "use it anyway?" question


def test_phrase_on_a_terminal_shown_then_typed_in_two_halves(home: Path, tmp_path: Path) -> None:
    from tests.test_cli_profile import run_on_tty

    did = init(home)
    shown = run_on_tty(["backup", "phrase"], home, [PASS, "y"])
    assert "Passphrase" in shown and PASS not in shown
    assert "anyone who has them can be you" in shown
    seed = unlock(home / "keystore.json", PASS).seed
    words = seed_to_words(seed)
    assert all(word in shown for word in words)

    fresh = tmp_path / "new-machine"
    typed = run_on_tty(
        ["restore", "phrase"],
        fresh,
        [" ".join(words[:12]).upper(), "  ".join(words[12:]), NEW_SECRET, NEW_SECRET],
    )
    assert "12 words so far" in typed
    assert typed.strip().splitlines()[-1].strip() == did
    assert unlock(fresh / "keystore.json", NEW_SECRET).did == did


def test_without_an_atomic_swap_the_old_profile_is_set_aside_then_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where RENAME_EXCHANGE is missing: rename aside, rename in, carry over, delete."""
    monkeypatch.setattr("didlink.custody.restore._exchange", lambda first, second: False)
    file = small_backup(tmp_path)
    other = tmp_path / "other"
    init(other)
    (other / "downloads").mkdir()
    (other / "downloads" / "a.txt").write_text("kept")
    code, out, err = run_in_process("backup", "import", "--force", str(file), home=other)
    assert code == 0, err
    assert out.strip() == IdentityKey(bytes(range(32))).did
    assert (other / "downloads" / "a.txt").read_text() == "kept"
    assert strays(other) == []


def test_without_an_atomic_swap_a_failed_rename_puts_the_old_profile_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import didlink.custody.restore

    monkeypatch.setattr("didlink.custody.restore._exchange", lambda first, second: False)
    real_rename = os.rename

    tries: list[str] = []

    def rename(source: object, target: object) -> None:
        if ".restore-" in str(source):
            tries.append(str(source))
            if len(tries) == 2:  # the first one meets the non-empty folder (ENOTEMPTY)
                raise OSError(28, "No space left on device")
        real_rename(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(didlink.custody.restore.os, "rename", rename)
    file = small_backup(tmp_path)
    other = tmp_path / "other"
    init(other)
    before = snapshot(other)
    code, _, err = run_in_process("backup", "import", "--force", str(file), home=other)
    assert code == 2 and "nothing was changed" in err
    assert len(tries) == 2
    assert snapshot(other) == before and strays(other) == []


def test_a_profile_filled_while_the_user_typed_is_refused_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import didlink.custody.restore

    home = tmp_path / "p"
    real_build = didlink.custody.restore._build

    def build_while_another_process_inits(*args: object) -> None:
        real_build(*args)  # type: ignore[arg-type]
        init(home)

    monkeypatch.setattr("didlink.custody.restore._build", build_while_another_process_inits)
    code, out, err = run_in_process("backup", "import", str(small_backup(tmp_path)), home=home)
    assert code == 2 and out == "" and "identityExists" in err
    assert unlock(home / "keystore.json", PASS).did != IdentityKey(bytes(range(32))).did
    assert strays(home) == []


# --- persistent sessions (contents version 3, specs/backup.md section 4) ----------------------


def session_backup(tmp_path: Path, sealed: bytes | None = None) -> tuple[Path, IdentityKey]:
    """A backup with one contact and its persistent session (a real one, sealed under the
    identity's store key as the store holds it, unless `sealed` is given)."""
    from didlink.mailbox.store import session_context
    from identity.backup import BackupSession
    from messaging.mailbox import new_session_state
    from tests.support.mailbox_pair import handshake_pair

    key = IdentityKey(bytes(range(32)))
    contact = Contact(
        did=did_of(1), name="Al", verification=Verification.SAS, first_seen=T0, last_seen=T0
    )
    if sealed is None:
        state = new_session_state(handshake_pair(b"backup")[0])
        plain = state.model_dump_json().encode()
        sealed = Sealer(key).seal(plain, context=session_context(did_of(1)))
    backup = make_backup(
        key,
        [contact],
        [],
        now=T0,
        sessions=[BackupSession(did_of(1), sealed)],
        received=[(did_of(1), [bytes([7]) * 16])],
    )
    file = tmp_path / "sessions.backup"
    file.write_bytes(seal_backup(backup, BACKUP_PASS, params=FAST))
    return file, key


def test_an_imported_session_is_marked_restored(tmp_path: Path) -> None:
    from didlink.mailbox.store import MailboxStore

    file, key = session_backup(tmp_path)
    home = tmp_path / "p"
    code, _, err = run_in_process("backup", "import", str(file), home=home)
    assert code == 0, err
    assert "1 conversations" in err and "didlink receive" in err
    with Store(home / "store.sqlite3") as store:
        box = MailboxStore(store, Sealer(key))
        session = box.session(did_of(1))
        assert session is not None and session.restored
        assert session.to_state().send_root is not None  # the initiator can redo its step
        rows = store.connection.execute("SELECT peer_did, message_id FROM received").fetchall()
        assert [(row[0], bytes(row[1])) for row in rows] == [(did_of(1), bytes([7]) * 16)]


@pytest.mark.parametrize(
    "sealed",
    [b"\x00" * 40, b"not sealed at all, but long enough to look like it"],
)
def test_a_session_that_does_not_open_is_refused_and_nothing_written(
    tmp_path: Path, sealed: bytes
) -> None:
    file, _ = session_backup(tmp_path, sealed)
    home = tmp_path / "p"
    code, out, err = run_in_process("backup", "import", str(file), home=home)
    assert code == 2, err
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "damagedBackup" in err and "session" in err
    assert not home.exists() and strays(home) == []


def test_a_session_sealed_for_another_contact_is_refused(tmp_path: Path) -> None:
    """Sealed under the right key but for another DID's context: it does not open."""
    from didlink.mailbox.store import session_context

    key = IdentityKey(bytes(range(32)))
    moved = Sealer(key).seal(b"{}", context=session_context(did_of(2)))
    file, _ = session_backup(tmp_path, moved)
    code, _, err = run_in_process("backup", "import", str(file), home=tmp_path / "p")
    assert code == 2 and "session" in err


def test_a_session_that_opens_but_does_not_parse_is_refused(tmp_path: Path) -> None:
    from didlink.mailbox.store import session_context

    key = IdentityKey(bytes(range(32)))
    junk = Sealer(key).seal(b'{"version": 1}', context=session_context(did_of(1)))
    file, _ = session_backup(tmp_path, junk)
    code, _, err = run_in_process("backup", "import", str(file), home=tmp_path / "p")
    assert code == 2 and "session" in err and not (tmp_path / "p").exists()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_older_contents_versions_still_import(tmp_path: Path, version: int) -> None:
    from tests.test_backup import KEY, good_contents, seal_contents
    from tests.test_backup import PASS as UNIT_PASS

    contents = good_contents()
    contents.update(version=version)
    del contents["contact_relays"], contents["contact_reach"]
    if version < 3:
        del contents["sessions"], contents["received"]
    else:
        contents["sessions"] = []  # the unit tests' session is not a real one
    if version == 1:
        del contents["settings"]
    file = tmp_path / f"v{version}.backup"
    file.write_bytes(seal_contents(contents))
    home = tmp_path / "p"
    env = {"DIDLINK_BACKUP_PASSPHRASE": UNIT_PASS}
    code, out, err = run_in_process("backup", "import", str(file), home=home, env=env)
    assert code == 0, err
    assert out.strip() == KEY.did
    assert "2 contacts, 0 conversations" in err
    with Store(home / "store.sqlite3") as store:
        for table in ("contact_relays", "contact_reach"):
            count = store.connection.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert count[0] == 0


def test_a_restored_session_with_no_step_to_redo_refuses_to_send_and_queues_nothing(
    tmp_path: Path,
) -> None:
    """The responder's session before it received anything (no ratchet key of the contact's):
    `send` says it waits for the contact, exit 2, and nothing is queued."""
    from didlink.mailbox.store import session_context
    from messaging.mailbox import new_session_state
    from tests.support.mailbox_pair import handshake_pair

    key = IdentityKey(bytes(range(32)))
    state = new_session_state(handshake_pair(b"responder")[1])
    sealed = Sealer(key).seal(state.model_dump_json().encode(), context=session_context(did_of(1)))
    file, _ = session_backup(tmp_path, sealed)
    home = tmp_path / "p"
    code, _, err = run_in_process("backup", "import", str(file), home=home)
    assert code == 0, err
    code, _, err = run_in_process("relays", "add", "ws://127.0.0.1:9", home=home)
    assert code == 0, err
    code, out, err = run_in_process("send", did_of(1), "hello", "--timeout", "5", home=home)
    assert code == 2, (out, err)
    assert "restored from a backup" in err and len(err.strip().splitlines()) == 1
    with Store(home / "store.sqlite3") as store:
        assert store.connection.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


# --- where contacts listen (contents version 4: contact_relays, contact_reach) ------------------

REACH_KEY = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")


def reach_rows(home: Path) -> dict[str, object]:
    """Every contact's relays and reach, as the store (and `send`) reads them."""
    from didlink.mailbox.requests import contact_reach, mailbox_relays

    with Store(home / "store.sqlite3") as store:
        return {
            contact.did: (
                store.contact_relays(contact.did),
                contact_reach(store, contact.did),
                mailbox_relays(store, contact.did),
            )
            for contact in store.list_contacts()
        }


def test_contacts_relays_and_reach_come_back(home: Path, tmp_path: Path) -> None:
    """Export then import through the real CLI: each contact's relays (its token's) and reach
    (its card's relays and request key) are rows of the restored store, so `send` goes to the
    contact's relays, not to one's own (specs/backup.md section 2, "Contents")."""
    from didlink.mailbox.requests import ContactReach, set_contact_reach

    init(home)
    populate(home)
    one = ["wss://relay.one.example", "wss://relay.two.example:444/inbox"]
    with Store(home / "store.sqlite3") as store:
        store.set_contact_relays(did_of(1), one, now=T0)
        store.set_contact_relays(did_of(2), ["ws://127.0.0.1:7447"], now=T0)
        set_contact_reach(store, did_of(2), ("wss://reach.example",), REACH_KEY, now=T0)
        set_contact_reach(store, did_of(4), ("wss://card.example",), REACH_KEY, now=T0)
    file = tmp_path / "me.didlink-backup"
    exported = run_cli("backup", "export", str(file), home=home, env=BACKUP_ENV)
    assert exported.returncode == 0, exported.stderr
    assert b"relay.one.example" not in file.read_bytes()
    fresh = tmp_path / "new-machine"
    imported = run_cli("backup", "import", str(file), home=fresh, passphrase="new", env=BACKUP_ENV)
    assert imported.returncode == 0, imported.stderr
    restored = reach_rows(fresh)
    assert restored == reach_rows(home)
    assert restored[did_of(1)] == (one, None, one)
    card = ContactReach(("wss://card.example",), REACH_KEY)
    assert restored[did_of(4)] == ([], card, ["wss://card.example"])
    assert restored[did_of(2)][2] == ["ws://127.0.0.1:7447"]  # its token's relays come first
    assert restored[did_of(3)] == ([], None, [])


def v4_backup(tmp_path: Path, change: object) -> Path:
    """An authentic version 4 backup (the unit tests' contents) changed by `change`."""
    from tests.test_backup import good_contents, seal_contents

    contents = good_contents()
    contents["sessions"] = []  # the unit tests' session is not a real one
    change(contents)  # type: ignore[operator]
    file = tmp_path / "v4.backup"
    file.write_bytes(seal_contents(contents))
    return file


def test_a_version_4_backup_imports_its_rows(tmp_path: Path) -> None:
    from tests.test_backup import PASS as UNIT_PASS

    file = v4_backup(tmp_path, lambda c: None)
    home = tmp_path / "p"
    env = {"DIDLINK_BACKUP_PASSPHRASE": UNIT_PASS}
    code, _, err = run_in_process("backup", "import", str(file), home=home, env=env)
    assert code == 0, err
    rows = reach_rows(home)
    assert rows[did_of(1)][0] == ["wss://relay.one.example", "wss://relay.two.example:444/path"]
    assert rows[did_of(2)][0] == ["ws://127.0.0.1:7447"]
    reach = rows[did_of(2)][1]
    assert reach is not None and reach.key == REACH_KEY  # type: ignore[attr-defined]
    with Store(home / "store.sqlite3") as store:
        times = store.connection.execute(
            "SELECT updated_at FROM contact_relays UNION SELECT updated_at FROM contact_reach"
        ).fetchall()
    assert times == [(T0.isoformat(timespec="microseconds"),)]  # the backup's moment


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda c: c["contact_relays"][0].update(did=did_of(9)), "not a contact's"),
        (lambda c: c["contact_reach"][0].update(did=did_of(9)), "not a contact's"),
        (lambda c: c["contact_relays"][1].update(did=did_of(1)), "appear twice"),
        (lambda c: c["contact_reach"][0]["relays"].append("wss://reach.example"), "twice"),
        (
            lambda c: c["contact_relays"][0]["relays"].extend(["wss://x.example"] * 3),
            "contact_relays",
        ),
        (lambda c: c["contact_relays"][0].update(relays=["ws://relay.example"]), "ws://"),
        (lambda c: c["contact_reach"][0].update(key=bytes(32)), "x-only"),
        (lambda c: c["contact_reach"][0].update(key=REACH_KEY[:16]), "contact_reach"),
        (lambda c: c.pop("contact_reach"), "contents version"),
    ],
)
def test_damaged_relays_or_reach_are_refused_and_nothing_written(
    tmp_path: Path, change: object, needle: str
) -> None:
    from tests.test_backup import PASS as UNIT_PASS

    file = v4_backup(tmp_path, change)
    home = tmp_path / "p"
    env = {"DIDLINK_BACKUP_PASSPHRASE": UNIT_PASS}
    code, out, err = run_in_process("backup", "import", str(file), home=home, env=env)
    assert code == 2, err
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "damagedBackup" in err and needle in err
    assert not home.exists() and strays(home) == []


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("INSERT INTO contact_relays VALUES (?, '[\"https://x\"]', '2026-01-01')", "relay list"),
        (
            "INSERT INTO contact_reach VALUES (?, '2026-01-01', '[\"wss://r.example\"]',"
            " zeroblob(32))",
            "cannot carry",
        ),
    ],
)
def test_export_of_a_row_a_backup_cannot_carry_fails_and_writes_nothing(
    home: Path, tmp_path: Path, sql: str, needle: str
) -> None:
    """A damaged relay row, or a stored key that is no secp256k1 point, stops the export with
    one line: never a backup that its own import would refuse."""
    init(home)
    populate(home)
    with Store(home / "store.sqlite3") as store:
        store.connection.execute(sql, (did_of(1),))
    file = tmp_path / "me.didlink-backup"
    result = run_cli("backup", "export", str(file), home=home, env=BACKUP_ENV)
    assert_user_error(result, needle)
    assert not file.exists()
