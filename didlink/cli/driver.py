"""Drive real `didlink` processes, as a person at a terminal would, from Python.

The one process driver of the project: `didlink demo`, the benchmarks (bench/metrics/session.py)
and the end-to-end tests (through the thin layer tests/e2e/driver.py) all use it, so what they
exercise is exactly what a user runs. An `Actor` is one person: a profile folder, a passphrase
given through the environment, and optionally a command prefix (for example
`ip netns exec NS`, to start inside a network namespace). Short commands run to completion with
`Actor.run`; long-running ones are driven through `--jsonl` (events out on stdout, commands in
on stdin; specs/cli-jsonl.md) by a `JsonlProcess`.

Theory of operation of a `JsonlProcess`: one thread reads stdout line by line into a queue
(ending with None at end of output) and another keeps every stderr line. The caller's thread
alone parses lines, so `events` (every event read, in order) needs no lock. `expect(name)`
returns the first event of that name not yet returned, waiting up to a timeout; events of other
names read meanwhile stay for later `expect` calls. Every wait is bounded, and every failure is
a `DriverError` whose message is one line (the CLI prints it as such) and whose note holds the
recent stderr and events (pytest shows it).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from didlink.errors import UserError

STEP_TIMEOUT = 120.0
KILL_TIMEOUT = 10.0
STDERR_GRACE = 2.0  # seconds to let stderr reach its end once stdout has (failure paths only)
TAIL_LINES = 30  # stderr lines kept in a failure note
TAIL_EVENTS = 8  # events kept in a failure note
EVENT_CHARS = 300  # each event cut to this length in a failure note


class DriverError(UserError):
    """A driven `didlink` process failed, or did not do what was expected in time."""


class _TimedOut(Exception):
    """Internal: no line arrived before the deadline."""


def _failure(
    message: str, *, stderr: Sequence[str], events: Sequence[dict[str, Any]] = ()
) -> DriverError:
    """A DriverError with a one-line message and the recent output attached as a note."""
    error = DriverError(message)
    tail = [line.rstrip("\n") for line in stderr[-TAIL_LINES:]]
    note = ["stderr (last lines):", *(f"  {line}" for line in tail)] if tail else ["no stderr"]
    if events:
        note.append("events (last):")
        note.extend(f"  {json.dumps(event)[:EVENT_CHARS]}" for event in events[-TAIL_EVENTS:])
    error.add_note("\n".join(note))
    return error


def _last_line(stderr: Sequence[str], default: str) -> str:
    lines = [line.strip() for line in stderr if line.strip()]
    return lines[-1] if lines else default


@dataclass(frozen=True)
class Actor:
    """One person: a name, a profile folder and a passphrase, given through the environment.

    `extra_env` is added to the environment last; `prefix` goes before the command (e.g.
    `("ip", "netns", "exec", "ns1")`); `cwd` is where the processes start (inherited if None).
    """

    name: str
    home: Path
    passphrase: str
    _: KW_ONLY
    extra_env: Mapping[str, str] = field(default_factory=dict)
    prefix: tuple[str, ...] = ()
    cwd: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        """This process's environment without any DIDLINK_ variable, then this actor's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
        env.update(DIDLINK_HOME=str(self.home), DIDLINK_PASSPHRASE=self.passphrase)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def command(self, *args: str) -> list[str]:
        """The command line that runs `didlink ARGS` for this actor."""
        return [*self.prefix, sys.executable, "-m", "didlink", *args]

    def run(
        self,
        *args: str,
        check: bool = True,
        stdin: str | None = None,
        timeout: float = STEP_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run one `didlink` command to completion; DriverError naming the step if it fails."""
        try:
            result = subprocess.run(  # noqa: S603 - our own CLI, arguments are ours
                self.command(*args),
                env=self.env,
                cwd=self.cwd,
                input=stdin,
                capture_output=True,
                text=True,
                encoding="utf-8",
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
            raise _failure(
                f"{self.name}: `didlink {' '.join(args)}` did not finish within {timeout:g} s",
                stderr=stderr.splitlines(),
            ) from None
        if check and result.returncode != 0:
            lines = result.stderr.splitlines()
            raise _failure(
                f"{self.name}: `didlink {' '.join(args)}` failed (exit {result.returncode}): "
                + _last_line(lines, "no message"),
                stderr=lines,
            )
        return result

    def run_init(self) -> str:
        """`didlink init`: the new DID."""
        return self.run("init").stdout.strip()

    def run_json(self, *args: str) -> Any:
        """Run a command that prints JSON (give it `--json`); the parsed output."""
        return json.loads(self.run(*args).stdout)

    def spawn(self, *args: str, timeout: float = STEP_TIMEOUT) -> JsonlProcess:
        """Start a long-running `didlink ARGS --jsonl` command."""
        return JsonlProcess(self, [*args, "--jsonl"], timeout=timeout)


class JsonlProcess:
    """A running `didlink ... --jsonl` process: commands in, events out, always bounded.

    `args` are given as is (include `--jsonl`; `Actor.spawn` adds it). `timeout` is the default
    for every wait. Use it as a context manager, or call `kill()` in a `finally`.
    """

    def __init__(self, actor: Actor, args: Sequence[str], *, timeout: float = STEP_TIMEOUT) -> None:
        self.actor = actor
        self.args = list(args)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []  # every event read, in order
        self.stderr_lines: list[str] = []  # every stderr line, without its newline
        self._unclaimed: list[dict[str, Any]] = []  # read, not yet returned by expect
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, arguments are ours
            actor.command(*self.args),
            env=actor.env,
            cwd=actor.cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    # --- reader threads ----------------------------------------------------------------------

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        with suppress(ValueError, OSError):  # the stream closed by kill()
            for line in self.proc.stdout:
                self._on_line(line)
        self._lines.put(None)

    def _on_line(self, line: str) -> None:
        """Called in the reader thread for each stdout line; subclasses may count lines here."""
        self._lines.put(line)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        with suppress(ValueError, OSError):
            for line in self.proc.stderr:
                self.stderr_lines.append(line.rstrip("\n"))

    # --- the caller's side -------------------------------------------------------------------

    @property
    def label(self) -> str:
        """Who and what, for messages: `Alice (didlink invite)`."""
        return f"{self.actor.name} (didlink {self.args[0] if self.args else ''})"

    @property
    def stderr(self) -> str:
        """Everything written to stderr so far."""
        return "".join(line + "\n" for line in self.stderr_lines)

    def fail(self, message: str) -> DriverError:
        """A DriverError about this process, with its recent stderr and events attached."""
        return _failure(f"{self.label}: {message}", stderr=self.stderr_lines, events=self.events)

    def send(self, cmd: str, **fields: Any) -> None:
        """Write one JSON command line: `{"cmd": cmd, **fields}`."""
        self.send_line(json.dumps({"cmd": cmd, **fields}))

    def send_line(self, line: str) -> None:
        """Write one raw line (tests use it to send malformed input)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise self.fail("it no longer reads its input (it has exited)") from None

    def _next(self, deadline: float) -> dict[str, Any] | None:
        """The next event, or None at the end of the output; _TimedOut after `deadline`."""
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise _TimedOut from None
        if line is None:
            self._lines.put(None)  # stay at the end
            return None
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            raise self.fail(f"printed a line that is not a JSON event: {line.strip()[:200]!r}")
        self.events.append(event)
        return event

    def _why(self, *, ended: bool = False) -> str:
        """The last stderr line. When stdout `ended`, stderr is read to its end first (bounded):
        a process that prints its error and exits closes both, in either order."""
        if ended:
            self._stderr_reader.join(STDERR_GRACE)
        return _last_line(self.stderr_lines, "nothing on stderr")

    def next_event(self, *, timeout: float | None = None) -> dict[str, Any]:
        """The next event line, parsed; DriverError after `timeout` or at the end of output."""
        limit = self.timeout if timeout is None else timeout
        try:
            event = self._next(time.monotonic() + limit)
        except _TimedOut:
            raise self.fail(f"no event within {limit:g} s (stderr: {self._why()})") from None
        if event is None:
            raise self.fail(f"its output ended (stderr: {self._why(ended=True)})")
        return event

    def expect(self, name: str, *, timeout: float | None = None) -> dict[str, Any]:
        """The first event called `name` not yet returned, waiting up to `timeout` for it.

        Events of other names read meanwhile stay available to later `expect` calls.
        """
        for index, kept in enumerate(self._unclaimed):
            if kept["event"] == name:
                return self._unclaimed.pop(index)
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            try:
                event = self._next(deadline)
            except _TimedOut:
                message = f"no {name!r} event within {limit:g} s (stderr: {self._why()})"
                raise self.fail(message) from None
            if event is None:
                why = self._why(ended=True)
                raise self.fail(f"output ended while waiting for {name!r} (stderr: {why})")
            if event["event"] == name:
                return event
            self._unclaimed.append(event)

    def seen(self, name: str) -> list[dict[str, Any]]:
        """Every event called `name` read so far (returned by `expect` or not)."""
        return [event for event in self.events if event["event"] == name]

    def rest(self, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """Every event not yet returned, until the output ends (within `timeout`)."""
        out, self._unclaimed = self._unclaimed, []
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        try:
            while (event := self._next(deadline)) is not None:
                out.append(event)
        except _TimedOut:
            raise self.fail(f"output did not end within {limit:g} s") from None
        return out

    def wait(self, *, timeout: float | None = None) -> int:
        """The exit code, once the process has exited; DriverError after `timeout`."""
        limit = self.timeout if timeout is None else timeout
        try:
            return self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            raise self.fail(f"did not exit within {limit:g} s") from None

    def kill(self) -> None:
        """Kill the process if it still runs, reap it and close its pipes (safe to repeat)."""
        if self.proc.poll() is None:
            self.proc.kill()
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=KILL_TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with suppress(OSError, ValueError):
                    stream.close()

    def __enter__(self) -> JsonlProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.kill()
