"""Drive real `didlink ... --jsonl` processes: commands in, events out, always bounded.

`Cli` wraps one subprocess: a thread turns its stdout into a queue of parsed events and another
keeps its stderr; `expect(name)` waits (with a timeout) for the next event of that name and
keeps every event seen in `events`. `cli_processes()` kills whatever is still running at the
end of a test, whatever happened.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse battery staple"
EVENT_TIMEOUT = 30.0


def make_identity(home: Path) -> str:
    """`didlink init` in `home`; the new DID."""
    result = run_cli("init", home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


class Cli:
    """One running `didlink` process in `--jsonl` mode."""

    def __init__(self, *args: str, home: Path, env: dict[str, str] | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
        full_env.update(DIDLINK_HOME=str(home), DIDLINK_PASSPHRASE=PASSPHRASE, PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        self.args = args
        self.events: list[dict[str, Any]] = []  # every event, in order
        self._unclaimed: list[dict[str, Any]] = []  # read but not yet returned by expect
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "didlink", *args],
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def send(self, cmd: str, **fields: Any) -> None:
        """Write one JSON command line."""
        self.send_line(json.dumps({"cmd": cmd, **fields}))

    def send_line(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def next_event(self, timeout: float = EVENT_TIMEOUT) -> dict[str, Any]:
        """The next event line (parsed); AssertionError after `timeout` or at end of output."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"{self.args[0]}: no event within {timeout} s; stderr: {self.stderr[-2000:]}"
            ) from None
        if line is None:
            self._lines.put(None)  # stay at the end
            raise AssertionError(f"{self.args[0]}: output ended; stderr: {self.stderr[-2000:]}")
        event = json.loads(line)
        assert isinstance(event, dict) and isinstance(event.get("event"), str), line
        self.events.append(event)
        return event

    def expect(self, name: str, timeout: float = EVENT_TIMEOUT) -> dict[str, Any]:
        """The first not yet expected event named `name`, waiting up to `timeout` for it.

        Events of other names read meanwhile stay available to later `expect` calls.
        """
        for index, event in enumerate(self._unclaimed):
            if event["event"] == name:
                return self._unclaimed.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(max(0.01, deadline - time.monotonic()))
            if event["event"] == name:
                return event
            self._unclaimed.append(event)

    def seen(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]

    def rest(self, timeout: float = EVENT_TIMEOUT) -> list[dict[str, Any]]:
        """Every event not yet expected, until the output ends."""
        out, self._unclaimed = self._unclaimed, []
        deadline = time.monotonic() + timeout
        while True:
            try:
                out.append(self.next_event(max(0.01, deadline - time.monotonic())))
            except AssertionError as exc:
                if "output ended" in str(exc):
                    return out
                raise

    def wait(self, timeout: float = EVENT_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.args[0]} did not exit within {timeout} s; stderr: {self.stderr[-2000:]}"
            ) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with suppress(OSError):
                    stream.close()


@contextmanager
def cli_processes() -> Iterator[list[Cli]]:
    """A list to put `Cli`s in; all are killed at the end, whatever happens."""
    started: list[Cli] = []
    try:
        yield started
    finally:
        for cli in started:
            cli.kill()


def connect_pair(
    started: list[Cli], alice_home: Path, bob_home: Path, *, env: dict[str, str] | None = None
) -> tuple[Cli, Cli]:
    """Alice invites, Bob accepts, Alice takes the response: both reach the SAS (not confirmed)."""
    alice = Cli("invite", "--jsonl", home=alice_home, env=env)
    started.append(alice)
    token = alice.expect("token")
    assert token["kind"] == "invite"
    bob = Cli("accept", token["token"], "--jsonl", home=bob_home, env=env)
    started.append(bob)
    response = bob.expect("token")
    assert response["kind"] == "response"
    alice.send("response", token=response["token"])
    return alice, bob
