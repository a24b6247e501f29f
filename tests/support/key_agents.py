"""Key agents in tests: a private runtime folder per test, and every agent in it killed after.

`didlink unlock` starts a background process (didlink/custody/key_agent.py) that outlives the
command; the suite must never leave one behind nor use the user's real $XDG_RUNTIME_DIR. The folder
is made under /tmp, not tmp_path: a Unix socket path holds at most 107 bytes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from didlink.custody.key_agent_protocol import peer_credentials

KILL_WAIT = 10.0


def agent_pids(runtime: Path) -> list[int]:
    """The pids of the agents listening in `runtime`/didlink (asked with SO_PEERCRED)."""
    pids = []
    for path in sorted((runtime / "didlink").glob("*.sock")):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            try:
                sock.connect(str(path))
            except OSError:
                continue
            creds = peer_credentials(sock)
            if creds is not None:
                pids.append(creds.pid)
    return pids


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an agent's parent is init, which may be slow
    to reap it, or in a container not reap it at all)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def kill_agents(runtime: Path) -> None:
    """SIGKILL every agent of `runtime` and wait (bounded) until each is gone."""
    pids = agent_pids(runtime)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


@contextlib.contextmanager
def private_runtime() -> Iterator[Path]:
    """A fresh 0700 folder for XDG_RUNTIME_DIR; its agents killed and the folder removed after."""
    runtime = Path(tempfile.mkdtemp(prefix="dlrt-", dir="/tmp"))
    try:
        yield runtime
    finally:
        kill_agents(runtime)
        shutil.rmtree(runtime, ignore_errors=True)
