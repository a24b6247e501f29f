"""`didlink init`, `whoami`, `passwd` through a real subprocess, with every error path."""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

from identity.did_key import ed25519_public_key
from identity.keystore import unlock
from tests.support.cli import assert_user_error, run_cli

PASS = "correct horse battery staple"


def init(home: Path) -> str:
    result = run_cli("init", home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_init_creates_a_private_identity(home: Path) -> None:
    did = init(home)
    ed25519_public_key(did)  # a valid Ed25519 did:key
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    keystore = home / "keystore.json"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert unlock(keystore, PASS).did == did
    # the store is made with the identity (a later missing store is a lost one, noted)
    assert sorted(p.name for p in home.iterdir()) == ["keystore.json", "store.sqlite3"]
    assert stat.S_IMODE((home / "store.sqlite3").stat().st_mode) == 0o600


def test_init_fixes_a_loose_existing_folder(home: Path) -> None:
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    init(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_init_refuses_to_replace(home: Path) -> None:
    did = init(home)
    before = (home / "keystore.json").read_bytes()
    result = run_cli("init", home=home)
    assert_user_error(result, "error: identityExists:", "--force")
    assert (home / "keystore.json").read_bytes() == before
    # --force asks for the last 6 characters of the DID it destroys (here as a line of stdin)
    refused = run_cli("init", "--force", home=home, passphrase="another one", stdin="nope\n")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: not confirmed: the identity was left as it is"
    )
    assert f"Type the last 6 characters of {did} to destroy it:" in refused.stderr
    assert (home / "keystore.json").read_bytes() == before
    no_answer = run_cli("init", "--force", home=home, passphrase="another one", stdin="")
    assert no_answer.returncode == 2 and "not confirmed" in no_answer.stderr
    assert (home / "keystore.json").read_bytes() == before
    forced = run_cli("init", "--force", home=home, passphrase="another one", stdin=did[-6:] + "\n")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() != did
    assert unlock(home / "keystore.json", "another one").did == forced.stdout.strip()


def test_init_without_passphrase_source(home: Path) -> None:
    result = run_cli("init", home=home, passphrase=None)
    assert_user_error(result, "DIDLINK_PASSPHRASE")
    assert not (home / "keystore.json").exists()


def test_init_profile_path_is_a_file(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert_user_error(run_cli("init", home=not_a_folder), "cannot use", "profile folder")


def test_init_force_over_a_damaged_keystore(home: Path) -> None:
    init(home)
    keystore = home / "keystore.json"
    keystore.write_bytes(b"{not json")
    refused = run_cli("init", "--force", home=home, stdin="abcdef\n")
    assert refused.returncode == 2 and "not confirmed" in refused.stderr
    assert "damaged. Type destroy to replace it" in refused.stderr
    assert keystore.read_bytes() == b"{not json"
    forced = run_cli("init", "--force", home=home, stdin="destroy\n")
    assert forced.returncode == 0, forced.stderr
    assert unlock(keystore, PASS).did == forced.stdout.strip()


def test_init_weak_passphrase_from_a_script_is_accepted_with_a_warning(home: Path) -> None:
    result = run_cli("init", home=home, passphrase="short")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[0] == (
        "warning: the passphrase in DIDLINK_PASSPHRASE is weak: A word by itself is easy to"
        " guess. Add another word or two. Uncommon words are better."
    )
    assert unlock(home / "keystore.json", "short").did == result.stdout.strip()
    strong = run_cli("init", home=home.parent / "strong")
    assert strong.returncode == 0 and "warning" not in strong.stderr, strong.stderr


def test_init_empty_passphrase(home: Path) -> None:
    result = run_cli("init", home=home, passphrase="")
    assert_user_error(result, "must not be empty")
    assert not (home / "keystore.json").exists()


def test_whoami(home: Path) -> None:
    did = init(home)
    as_json = run_cli("whoami", "--json", home=home, passphrase=None)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {"did": did, "name": None, "unlocked_until": None}
    plain = run_cli("whoami", home=home, passphrase=None)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0] == did
    assert len(lines) > 10 and "█" in plain.stdout  # the terminal QR code


def test_whoami_without_identity(home: Path) -> None:
    for args in (("whoami",), ("whoami", "--json")):
        assert_user_error(run_cli(*args, home=home), "error: noIdentity:", "didlink init")


def test_whoami_damaged_keystore(home: Path) -> None:
    init(home)
    keystore = home / "keystore.json"
    keystore.write_bytes(keystore.read_bytes()[:-10])
    assert_user_error(run_cli("whoami", home=home), "error: damagedKeystore:")


def test_passwd(home: Path) -> None:
    did = init(home)
    result = run_cli("passwd", home=home, env={"DIDLINK_NEW_PASSPHRASE": "new one"})
    assert result.returncode == 0, result.stderr
    assert "changed" in result.stdout
    assert unlock(home / "keystore.json", "new one").did == did
    again = run_cli("passwd", home=home, env={"DIDLINK_NEW_PASSPHRASE": "third"})
    assert_user_error(again, "error: wrongPassphrase:")
    assert stat.S_IMODE((home / "keystore.json").stat().st_mode) == 0o600


def test_passwd_wrong_passphrase(home: Path) -> None:
    init(home)
    before = (home / "keystore.json").read_bytes()
    result = run_cli("passwd", home=home, passphrase="wrong", env={"DIDLINK_NEW_PASSPHRASE": "new"})
    assert_user_error(result, "error: wrongPassphrase:", "does not open")
    assert (home / "keystore.json").read_bytes() == before


def test_passwd_without_new_passphrase_source(home: Path) -> None:
    init(home)
    assert_user_error(run_cli("passwd", home=home), "DIDLINK_NEW_PASSPHRASE")


def test_passwd_empty_new_passphrase(home: Path) -> None:
    init(home)
    result = run_cli("passwd", home=home, env={"DIDLINK_NEW_PASSPHRASE": ""})
    assert_user_error(result, "must not be empty")


def test_passwd_without_identity(home: Path) -> None:
    result = run_cli("passwd", home=home, env={"DIDLINK_NEW_PASSPHRASE": "x"})
    assert_user_error(result, "error: noIdentity:")


def test_passwd_damaged_keystore(home: Path) -> None:
    init(home)
    (home / "keystore.json").write_text('{"version": 3}')
    result = run_cli("passwd", home=home, env={"DIDLINK_NEW_PASSPHRASE": "x"})
    assert_user_error(result, "error: damagedKeystore:", "version 3")


# --- interactive prompts, on a real pseudo-terminal -------------------------------------------


def run_on_tty(args: list[str], home: Path, answers: list[str], timeout: float = 60) -> str:
    """Run didlink with a pty as its terminal; type each answer after each prompt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    env["DIDLINK_HOME"] = str(home)
    controller, terminal = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "didlink", *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    os.close(terminal)
    output = b""
    pending = list(answers)
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                # answer only a prompt printed after the previous answer (getpass flushes
                # input typed ahead of its prompt)
                if pending and output[answered:].rstrip().endswith(b":"):
                    os.write(controller, pending.pop(0).encode() + b"\n")
                    answered = len(output)
            elif child.poll() is not None:
                break
        assert child.wait(timeout=max(1.0, deadline - time.monotonic())) is not None
    finally:
        child.kill()
        child.wait(timeout=10)
        os.close(controller)
    return output.decode(errors="replace")


def test_init_prompts_twice_on_a_terminal(home: Path) -> None:
    output = run_on_tty(["init"], home, ["typed secret", "typed secret"])
    assert "typed secret" not in output  # hidden input
    did = next(line.strip() for line in output.splitlines() if line.startswith("did:key:"))
    assert unlock(home / "keystore.json", "typed secret").did == did


def test_init_mismatched_prompts(home: Path) -> None:
    answers = ["one secret here", "another secret"] * 3
    output = run_on_tty(["init"], home, answers)
    assert output.count("do not match") == 3
    assert "no new passphrase chosen after 3 tries" in output
    assert not (home / "keystore.json").exists()


def test_passwd_prompts_on_a_terminal(home: Path) -> None:
    did = init(home)
    output = run_on_tty(["passwd"], home, [PASS, "fresh secret", "fresh secret"])
    assert "Current passphrase" in output and "changed" in output
    assert PASS not in output and "fresh secret" not in output
    assert unlock(home / "keystore.json", "fresh secret").did == did
