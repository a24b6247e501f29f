"""`python -m didlink ARGS` on a new pseudo-terminal, and the loop that reads what it shows.

The one way the pty tests start a process (tests/support/pty_cli.py `PtyCli`,
tests/support/screen.py `PtyScreen`, tests/e2e/test_chat_ui.py `Terminal`): its stdin, stdout
and stderr are the slave side, sized when asked, in a session of its own; the test keeps the
master side. Each caller builds the environment and handles what is read its own way.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
from collections.abc import Callable, Mapping
from pathlib import Path


def environment(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any DIDLINK_* variable, with DIDLINK_HOME and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    env.update(DIDLINK_HOME=str(home), **extra)
    return env


def spawn(
    args: tuple[str, ...],
    *,
    env: Mapping[str, str],
    size: tuple[int, int] | None = None,
    cwd: Path | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """The process and the pty's master side; `size` is (columns, rows)."""
    master, slave = os.openpty()
    if size is not None:
        columns, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "didlink", *args],
        cwd=cwd,
        env=dict(env),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    return proc, master


def read_until_closed(master: int, on_chunk: Callable[[bytes], None]) -> None:
    """Hand every chunk the process writes to `on_chunk` until it closes the terminal."""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return
        if not chunk:
            return
        on_chunk(chunk)
