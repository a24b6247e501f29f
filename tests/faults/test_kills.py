"""SIGKILL at random instants while the keystore and the store are written (issue 7 §3).

`make test` kills each writer DIDLINK_KILLS times (default 30); `make reliability` runs these
again with hundreds (tests/reliability/test_long_faults.py). The instants come from a seeded
generator (printed on failure), spread over the first 40 ms after the writer starts, which
covers many write cycles: with the tiny Argon2 parameters a passphrase change takes ~1 ms, a
store transaction well under that. After every kill the profile must open with the old or the
new state: never damaged, never neither.

The real `didlink passwd` (full Argon2id, ~1-2 s) is killed too, fewer times (a sixth, at least 4),
at instants from half to 1.5 times its measured run time (the first half is start-up and
unlocking the old file; a run that finished before the kill must have changed the file).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from didlink.profile.outbox import Outbox
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store
from identity.errors import WrongPassphrase
from identity.keys import IdentityKey
from identity.keystore import create_keystore, unlock
from tests.faults.writer import FAST, PEER, PHRASES, STORE_KEY, message_id
from tests.support.cli import run_cli

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("DIDLINK_KILLS", "30"))
CLI_KILLS = max(4, KILLS // 6)
SEED = int(os.environ.get("DIDLINK_KILL_SEED", "20261125"))
KEY = IdentityKey(bytes.fromhex("5e" * 32))
WINDOW = 0.040


def kill_writer_after(args: list[str], delay: float) -> None:
    """Start `python -m tests.faults.writer ARGS`, wait for "started", sleep, SIGKILL."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.writer", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == b"started\n", (line, child.stderr.read() if child.stderr else b"")
        time.sleep(delay)
        assert child.poll() is None, "the writer stopped by itself"
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL


def opening_phrases(path: Path) -> list[str]:
    """Which of "a" / "b" unlock the keystore (each must yield KEY)."""
    opened = []
    for phrase in PHRASES:
        with contextlib.suppress(WrongPassphrase):
            assert unlock(path, phrase) == KEY
            opened.append(phrase)
    return opened


def test_passwd_killed_at_random_instants(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    create_keystore(path, KEY, "a", params=FAST)
    rng = random.Random(SEED)
    current, outcomes = "a", Counter[str]()
    for kill in range(KILLS):
        kill_writer_after(["passwd", str(path), current], rng.uniform(0, WINDOW))
        opened = opening_phrases(path)
        assert len(opened) == 1, f"kill {kill} (seed {SEED}): opened with {opened}"
        outcomes["changed" if opened[0] != current else "unchanged"] += 1
        current = opened[0]
        others = {p.name for p in tmp_path.iterdir()} - {"keystore.json"}
        assert all(n.endswith(".tmp") for n in others), others  # at most leftovers, unread
    print(f"\npasswd: {KILLS} kills: {dict(outcomes)}")
    # The kills landed at different points: the loop changed the file many times in between.
    assert sum(outcomes.values()) == KILLS


def check_store(profile: Path) -> int:
    """The store opens, is intact, and holds exactly the state after some whole transaction."""
    db = sqlite3.connect(profile / "store.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()
    with Store(profile / "store.sqlite3") as store:
        pending = Outbox(store, Sealer(STORE_KEY)).pending(PEER)  # every value opens
    numbers = [int(p.text[1:]) for p in pending]
    assert [p.message_id for p in pending] == [message_id(n) for n in numbers]
    if not numbers:
        return -1
    last = numbers[-1]
    assert numbers == list(range(max(0, last - 1), last + 1)), numbers
    return last


def test_store_killed_at_random_instants(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    profile.mkdir()
    rng = random.Random(SEED + 1)
    last, advanced = -1, 0
    for kill in range(KILLS):
        kill_writer_after(["store", str(profile)], rng.uniform(0, WINDOW))
        now = check_store(profile)
        assert now >= last, f"kill {kill} (seed {SEED}): committed messages went missing"
        advanced += now > last
        last = now
    print(f"\nstore: {KILLS} kills, {last + 1} transactions committed, progress in {advanced}")
    assert advanced > KILLS // 2  # the kills interrupted a writer that was really writing


def test_real_didlink_passwd_killed_at_random_instants(tmp_path: Path) -> None:
    home = tmp_path / "profile"
    assert run_cli("init", home=home, passphrase="a").returncode == 0
    did = run_cli("whoami", home=home).stdout.splitlines()[0]
    started = time.monotonic()
    result = run_cli("passwd", home=home, passphrase="a", env={"DIDLINK_NEW_PASSPHRASE": "b"})
    assert result.returncode == 0, result.stderr
    duration = time.monotonic() - started
    rng = random.Random(SEED + 2)
    current, outcomes = "b", Counter[str]()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    for kill in range(CLI_KILLS):
        other = "a" if current == "b" else "b"
        child = subprocess.Popen(
            [sys.executable, "-m", "didlink", "passwd"],
            cwd=ROOT,
            env={
                **env,
                "DIDLINK_HOME": str(home),
                "DIDLINK_PASSPHRASE": current,
                "DIDLINK_NEW_PASSPHRASE": other,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # The first half is start-up and unlocking; the writes come at the end.
            time.sleep(rng.uniform(duration / 2, duration * 1.5))
        finally:
            finished = child.poll() is not None
            child.kill()
            child.wait(timeout=10)
        opened = []
        for phrase in PHRASES:
            check = run_cli("whoami", home=home, passphrase=phrase)
            assert check.returncode == 0 and check.stdout.splitlines()[0] == did
            with contextlib.suppress(WrongPassphrase):
                assert unlock(home / "keystore.json", phrase).did == did
                opened.append(phrase)
        assert len(opened) == 1, f"kill {kill} (seed {SEED}): opened with {opened}"
        changed = opened[0] != current
        assert changed or not finished, "a finished `didlink passwd` did not change the file"
        outcomes["finished" if finished else "changed" if changed else "unchanged"] += 1
        current = opened[0]
    print(f"\ndidlink passwd (run {duration:.2f} s): {CLI_KILLS} kills: {dict(outcomes)}")
