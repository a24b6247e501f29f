"""Two profiles that share a persistent session and relays, and a running `didlink daemon`.

`mailbox_profiles(folder, urls)` makes Alice and Bob (cheap key derivation), each the other's
named contact, with the two sides of one persistent session (tests/support/mailbox_pair.py:
no live first contact needed) and the relays configured. `DaemonProcess` runs the real
`didlink daemon --jsonl` as a separate process and reads its lines (bounded waits).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from didlink.agent import Agent
from didlink.mailbox import relays as relay_settings
from didlink.mailbox.store import MailboxStore
from didlink.profile.sealing import Sealer
from didlink.profile.settings import Settings
from identity.keystore import KdfParams
from messaging.mailbox import new_session_state
from tests.support.mailbox_pair import handshake_pair

PASSPHRASE = "correct horse battery staple"
CHEAP_KDF = KdfParams(memory_cost=8, iterations=1, lanes=1)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
WAIT = 60.0


@dataclass(frozen=True)
class Person:
    home: Path
    did: str


def mailbox_profiles(folder: Path, urls: list[str]) -> tuple[Person, Person]:
    """(Alice, Bob): contacts named "Alice" and "Bob", one persistent session, `urls`."""
    return asyncio.run(make_profiles(folder, urls))


async def make_profiles(folder: Path, urls: list[str]) -> tuple[Person, Person]:
    """`mailbox_profiles` inside a running event loop."""
    alice = await Agent.create(folder / "alice", passphrase=PASSPHRASE, kdf=CHEAP_KDF)
    bob = await Agent.create(folder / "bob", passphrase=PASSPHRASE, kdf=CHEAP_KDF)
    async with alice, bob:
        initiator, responder = handshake_pair(folder.name.encode())
        for me, other, name, result in (
            (alice, bob, "Bob", initiator),
            (bob, alice, "Alice", responder),
        ):
            me.store.add_contact(other.did, name=name, now=NOW)
            MailboxStore(me.store, Sealer(me.key)).install_session(
                other.did, new_session_state(result), now=NOW
            )
            if urls:
                relay_settings.add(Settings(me.store), urls)
        return Person(alice.profile.path, alice.did), Person(bob.profile.path, bob.did)


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    env.update(DIDLINK_HOME=str(home), DIDLINK_PASSPHRASE=PASSPHRASE, PYTHONUNBUFFERED="1")
    return env


class DaemonProcess:
    """`didlink daemon [ARGS]` for the profile `home`; `expect` reads its JSON lines."""

    def __init__(self, home: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "didlink", "daemon", *args],
            env=cli_env(home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []  # every stdout line, in order
        self.stderr_lines: list[str] = []
        self._unclaimed: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.seen.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def expect(self, **fields: Any) -> dict[str, Any]:
        """The first JSON object not yet returned whose fields include `fields` (others read
        meanwhile stay for later calls); AssertionError after WAIT s or at the end of output."""
        for index, kept in enumerate(self._unclaimed):
            if all(kept.get(k) == v for k, v in fields.items()):
                return self._unclaimed.pop(index)
        deadline = time.monotonic() + WAIT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {fields} within {WAIT} s: {self.stderr_lines}") from None
            if line is None:
                self.lines.put(None)
                raise AssertionError(f"output ended waiting for {fields}: {self.stderr_lines}")
            value = json.loads(line)
            assert isinstance(value, dict), line
            if all(value.get(k) == v for k, v in fields.items()):
                return value
            self._unclaimed.append(value)

    def objects(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.seen]

    def terminate(self) -> int:
        """SIGTERM, then the exit code (bounded)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=WAIT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=WAIT)
