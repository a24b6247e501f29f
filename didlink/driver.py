"""Drive real `didlink` processes, as a person at a terminal would, from Python.

Used by `didlink demo`: each actor is a separate profile folder and every step is a separate
`didlink` process, so the demo exercises exactly what a user runs. Long-running commands are
driven through `--jsonl` (events out on stdout, commands in on stdin; specs/cli-jsonl.md).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from didlink.errors import UserError

STEP_TIMEOUT = 120.0


@dataclass(frozen=True)
class Actor:
    """One person: a name and a profile folder, with the passphrase given through the env."""

    name: str
    home: Path
    passphrase: str

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
        env.update(DIDLINK_HOME=str(self.home), DIDLINK_PASSPHRASE=self.passphrase)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "didlink", *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one `didlink` command to completion; UserError naming the step if it fails."""
        result = subprocess.run(  # noqa: S603 - our own CLI, arguments are ours
            self.command(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            detail = result.stderr.strip().splitlines()[-1:] or ["no message"]
            raise UserError(f"{self.name}: `didlink {' '.join(args)}` failed: {detail[0]}")
        return result

    def run_init(self) -> str:
        """`didlink init`: the new DID."""
        return self.run("init").stdout.strip()

    def run_json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)

    def spawn(self, *args: str) -> JsonlProcess:
        """Start a long-running `didlink ... --jsonl` command."""
        return JsonlProcess(self, list(args))


@dataclass
class JsonlProcess:
    """A `didlink --jsonl` process: send commands, wait for events, always cleaned up."""

    actor: Actor
    args: list[str]
    events: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    seen: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    stderr_lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
            self.actor.command(*self.args, "--jsonl"),
            env=self.actor.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except json.JSONDecodeError:
                self.events.put({"event": "garbage", "line": line.rstrip()})
        self.events.put({"event": "eof"})

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip())

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def expect(self, name: str, *, timeout: float = STEP_TIMEOUT) -> dict[str, Any]:
        """The first event called `name` not yet taken; other events wait their turn."""
        for index, event in enumerate(self.pending):
            if event.get("event") == name:
                return self.pending.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UserError(f"{self.actor.name}: no {name!r} event within {timeout:.0f} s")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(event)
            if event.get("event") == name:
                return event
            if event.get("event") == "eof":
                why = (self.stderr_lines[-1:] or ["it exited"])[0]
                raise UserError(f"{self.actor.name}: waiting for {name!r}: {why}")
            self.pending.append(event)

    def wait(self, *, timeout: float = STEP_TIMEOUT) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
