"""`didlink ARGS` on a real pseudo-terminal, driven like a person: wait for a prompt, type.

Unlike tests/e2e/test_chat_ui.py's Terminal (made for the chat screen), nothing is set in the
environment but DIDLINK_HOME and what the test gives: no DIDLINK_PASSPHRASE, so every
passphrase is asked on the terminal. Every wait is bounded.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from tests.support import pty_spawn

WAIT = 60.0
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


class PtyCli:
    """One `didlink` process whose stdin, stdout and stderr are a pty's slave side."""

    def __init__(self, *args: str, home: Path, env: dict[str, str] | None = None) -> None:
        environment = pty_spawn.environment(home, TERM="dumb", PYTHONUNBUFFERED="1")
        environment.update(env or {})
        self.proc, self._master = pty_spawn.spawn(args, env=environment)
        self._raw = bytearray()
        self._lock = threading.Lock()
        self._mark = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        pty_spawn.read_until_closed(self._master, self._keep)

    def _keep(self, chunk: bytes) -> None:
        with self._lock:
            self._raw += chunk

    @property
    def text(self) -> str:
        """Everything shown so far, colours removed."""
        with self._lock:
            text = self._raw.decode("utf-8", "replace")
        return ANSI.sub("", text).replace("\r\n", "\n")

    def expect(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        """The first match of `pattern` after the previous match; then waits there."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = compiled.search(self.text, self._mark)
            if match is not None:
                self._mark = match.end()
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not shown; output: {self.text[-2000:]!r}")
            time.sleep(0.02)

    def answer(self, prompt: str, line: str) -> None:
        """Wait for `prompt` (a regex), then type `line` and Enter. getpass discards what was
        typed before its prompt, so answering only after it is shown is required."""
        self.expect(prompt)
        time.sleep(0.1)  # the prompt is written before the terminal is switched to no-echo
        os.write(self._master, line.encode("utf-8") + b"\n")

    def wait(self, timeout: float = WAIT) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        os.close(self._master)
