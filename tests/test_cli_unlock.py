"""`didlink unlock` / `lock` through the real CLI: the key agent holds the key for a while, every
command that needs the identity uses it, `lock` and the end of the time make it forget and go
(issue 27, point 3; specs/key-agent.md). Processes are real; every wait is bounded."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink.custody.key_agent_protocol import socket_name
from didlink.profile.folder import Profile
from identity.keys import IdentityKey
from tests.support.cli import assert_user_error, run_cli
from tests.support.key_agents import agent_pids, alive

PASS = "correct horse battery staple"
PEER = IdentityKey(bytes([9]) * 32)
GONE_WITHIN = 30.0


def profile_with_a_contact(home: Path) -> str:
    result = run_cli("init", home=home, passphrase=PASS)
    assert result.returncode == 0, result.stderr
    with Profile(home).open_store() as store:
        store.add_contact(PEER.did, name="Bob", now=datetime(2026, 1, 1, tzinfo=UTC))
    return result.stdout.strip()


def needs_the_key(home: Path, passphrase: str | None = None) -> object:
    """`didlink history Bob`: opens the stored history, so it needs the identity key."""
    return run_cli("history", "Bob", "--json", home=home, passphrase=passphrase)


def eventually(condition: object, timeout: float = GONE_WITHIN) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.1)
    return False


def test_unlock_then_commands_need_no_passphrase_until_lock(home: Path, runtime_dir: Path) -> None:
    did = profile_with_a_contact(home)
    locked = run_cli("history", "Bob", home=home, passphrase=None)
    assert_user_error(locked, "no terminal to ask for the passphrase", "didlink unlock")

    unlocked = run_cli("unlock", "--for", "1m", home=home)
    assert unlocked.returncode == 0, unlocked.stderr
    assert unlocked.stdout.startswith("Unlocked until ")
    folder = runtime_dir / "didlink"
    sock = folder / socket_name(home)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(sock.lstat().st_mode) and stat.S_IMODE(sock.lstat().st_mode) == 0o600
    [pid] = agent_pids(runtime_dir)

    # no DIDLINK_PASSPHRASE, no terminal: the agent's key
    result = run_cli("history", "Bob", "--json", home=home, passphrase=None)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    whoami = run_cli("whoami", "--json", home=home, passphrase=None)
    until = json.loads(whoami.stdout)["unlocked_until"]
    left = datetime.fromisoformat(until) - datetime.now(UTC)
    assert 0 < left.total_seconds() <= 61
    assert json.loads(whoami.stdout)["did"] == did
    # even a wrong DIDLINK_PASSPHRASE is not asked for while unlocked (as ssh-agent's key)
    assert run_cli("history", "Bob", home=home, passphrase="wrong").returncode == 0

    # unlocking again extends, without the passphrase
    again = run_cli("unlock", "--for", "2m", home=home, passphrase=None)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Already unlocked: now until ")
    assert agent_pids(runtime_dir) == [pid]

    locking = run_cli("lock", home=home, passphrase=None)
    assert locking.returncode == 0 and locking.stdout.startswith("Locked"), locking.stderr
    assert eventually(lambda: not alive(pid))
    assert not sock.exists()
    after = run_cli("history", "Bob", home=home, passphrase=None)
    assert_user_error(after, "no terminal to ask for the passphrase")
    none = run_cli("lock", home=home, passphrase=None)
    assert none.returncode == 0 and none.stdout.startswith("Not unlocked"), none.stderr
    whoami = run_cli("whoami", "--json", home=home, passphrase=None)
    assert json.loads(whoami.stdout)["unlocked_until"] is None


def test_the_agent_goes_by_itself_at_the_end_of_the_time(home: Path, runtime_dir: Path) -> None:
    profile_with_a_contact(home)
    assert run_cli("unlock", "--for", "2s", home=home).returncode == 0
    [pid] = agent_pids(runtime_dir)
    assert eventually(lambda: not alive(pid))
    assert not (runtime_dir / "didlink" / socket_name(home)).exists()
    assert_user_error(run_cli("history", "Bob", home=home, passphrase=None), "no terminal")


def test_a_killed_agent_leaves_a_socket_that_is_cleaned_up(home: Path, runtime_dir: Path) -> None:
    profile_with_a_contact(home)
    assert run_cli("unlock", home=home).returncode == 0
    [pid] = agent_pids(runtime_dir)
    os.kill(pid, signal.SIGKILL)
    assert eventually(lambda: not alive(pid))
    sock = runtime_dir / "didlink" / socket_name(home)
    assert sock.exists()  # SIGKILL: it could not remove it
    result = run_cli("history", "Bob", home=home, passphrase=PASS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # quietly
    assert not sock.exists()


def test_unlock_with_a_wrong_passphrase_starts_nothing(home: Path, runtime_dir: Path) -> None:
    profile_with_a_contact(home)
    result = run_cli("unlock", home=home, passphrase="wrong")
    assert_user_error(result, "error: wrongPassphrase:")
    assert agent_pids(runtime_dir) == []


def test_unlock_without_identity(home: Path) -> None:
    assert_user_error(run_cli("unlock", home=home), "error: noIdentity:")


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One profile for the tests that must change nothing in it."""
    home = tmp_path_factory.mktemp("unlock") / "profile"
    profile_with_a_contact(home)
    return home


@pytest.mark.parametrize(
    "duration", ["0m", "8", "8x", "8 h", "1h30m", "-1h", "8d", "170h", "1" * 30, "", "８h"]
)
def test_unlock_refuses_bad_durations(shared_home: Path, duration: str, runtime_dir: Path) -> None:
    assert_user_error(run_cli("unlock", "--for", duration, home=shared_home), "--for")
    assert agent_pids(runtime_dir) == []


def test_replacing_the_identity_locks_the_old_key(home: Path, runtime_dir: Path) -> None:
    did = profile_with_a_contact(home)
    assert run_cli("unlock", home=home).returncode == 0
    [pid] = agent_pids(runtime_dir)
    forced = run_cli("init", "--force", home=home, passphrase=PASS, stdin=did[-6:] + "\n")
    assert forced.returncode == 0, forced.stderr
    assert eventually(lambda: not alive(pid))


def test_an_agent_holding_another_identity_is_not_used(home: Path, runtime_dir: Path) -> None:
    """The key is checked against the profile's DID (here the keystore was swapped behind the
    agent's back, not through `init --force`)."""
    profile_with_a_contact(home)
    assert run_cli("unlock", home=home).returncode == 0
    [pid] = agent_pids(runtime_dir)
    other = home.parent / "other"
    assert run_cli("init", home=other, passphrase=PASS).returncode == 0
    (home / "keystore.json").write_bytes((other / "keystore.json").read_bytes())
    result = run_cli("history", "Bob", home=home, passphrase=PASS)
    assert result.returncode == 0, result.stderr
    assert "the unlocked key was another identity's: it was locked" in result.stderr
    assert eventually(lambda: not alive(pid))


def test_exporting_the_identity_asks_for_the_passphrase_even_when_unlocked(home: Path) -> None:
    profile_with_a_contact(home)
    assert run_cli("unlock", home=home).returncode == 0
    phrase = run_cli("backup", "phrase", home=home, passphrase=None, stdin="y\n")
    assert_user_error(phrase, "no terminal to ask for the passphrase")
    export = run_cli(
        "backup",
        "export",
        str(home.parent / "backup.didlink"),
        home=home,
        passphrase=None,
        env={"DIDLINK_BACKUP_PASSPHRASE": "a long backup passphrase here"},
    )
    assert_user_error(export, "no terminal to ask for the passphrase")
    assert run_cli("backup", "phrase", home=home, stdin="y\n").returncode == 0


def test_a_signed_card_needs_no_passphrase_while_unlocked(home: Path) -> None:
    """`invite --card` signs with the identity key: the agent's, here."""
    did = profile_with_a_contact(home)
    assert_user_error(run_cli("invite", "--card", "--json", home=home, passphrase=None), "unlock")
    assert run_cli("unlock", "--for", "1m", home=home).returncode == 0
    card = run_cli("invite", "--card", "--json", home=home, passphrase=None)
    assert card.returncode == 0, card.stderr
    token = json.loads(card.stdout)["token"]
    inspected = run_cli("inspect", token, "--json", home=home, passphrase=None)
    assert inspected.returncode == 0, inspected.stderr
    assert did in inspected.stdout
