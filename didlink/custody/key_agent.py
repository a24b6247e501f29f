"""The key agent: a small background process that holds one unlocked identity seed in memory.

`didlink unlock` starts it as `python -m didlink.custody.key_agent --socket PATH --until T --did
DID`, in a new session (detached from the terminal; it forks once more so that its launcher can reap
it), and writes the 32-byte seed on its standard input (never in its arguments or environment, which
other tools can read). The agent binds its Unix socket (0600, in the 0700 folder of
didlink/custody/key_agent_protocol.py), says `ready` on its standard output, then serves one request
per connection (specs/key-agent.md) to processes of its own uid only, until:
- `until` (Unix seconds; checked at least every `POLL` seconds, on the wall clock, so a
  machine that slept past it locks on waking), or
- a `lock` request, or SIGTERM / SIGINT / SIGHUP, or
- its socket is removed or replaced (someone deleted the folder; a newer agent took the path).
It then removes its socket (if still its own) and overwrites the seed it held.

The seed is never written anywhere. The process marks itself non-dumpable (no core file, and
other processes of the user cannot read its memory through ptrace or /proc, as ssh-agent does).
Standard library only: it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import resource
import signal
import socket
import sys
import time
from types import FrameType

from didlink.custody.key_agent_protocol import (
    MAX_DID_CHARS,
    MAX_LIFETIME,
    MAX_REQUEST,
    SEED_SIZE,
    SOCKET_MODE,
    encode,
    parse_request,
    read_line,
    same_user,
)

POLL = 1.0
"""Seconds between checks of the clock and of the socket while nobody connects."""
BACKLOG = 8
PR_SET_DUMPABLE = 4


def _harden() -> None:
    """No core dumps; not readable by ptrace or /proc/PID/mem from other processes (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


class Holder:
    """The seed, the DID it opens and the end of the unlock; `forget` overwrites the seed."""

    def __init__(self, seed: bytes, did: str, until: float) -> None:
        self._seed = bytearray(seed)
        self.did = did
        self.until = until
        self.done = False

    def expired(self) -> bool:
        return self.done or time.time() >= self.until

    def seed_b64(self) -> str:
        return base64.b64encode(bytes(self._seed)).decode("ascii")

    def forget(self) -> None:
        for i in range(len(self._seed)):
            self._seed[i] = 0
        self.done = True


def _reply(holder: Holder, line: bytes) -> bytes:
    try:
        request = parse_request(line)
    except ValueError:
        return encode({"ok": False, "error": "bad request"})
    if request.op == "lock":
        holder.forget()
        return encode({"ok": True})
    if request.op == "extend":
        assert request.until is not None
        if not time.time() < request.until <= time.time() + MAX_LIFETIME:
            return encode({"ok": False, "error": "bad time"})
        holder.until = request.until
    answer: dict[str, object] = {"ok": True, "did": holder.did, "until": int(holder.until)}
    if request.op == "key":
        answer["seed"] = holder.seed_b64()
    return encode(answer)


def serve_one(connection: socket.socket, holder: Holder) -> None:
    """One request and its reply; a peer of another uid is closed on without a word."""
    if not same_user(connection):
        return
    try:
        line = read_line(connection, MAX_REQUEST)
    except (ValueError, OSError):
        reply = encode({"ok": False, "error": "bad request"})
    else:
        reply = (
            encode({"ok": False, "error": "locked"}) if holder.expired() else _reply(holder, line)
        )
    with contextlib.suppress(OSError):
        connection.settimeout(2.0)
        connection.sendall(reply)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _bind(path: str) -> socket.socket | None:
    """The listening socket at `path` (0600); None if a live agent already answers there."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)
    try:
        try:
            server.bind(path)
        except OSError:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            probe.settimeout(1.0)
            try:
                probe.connect(path)
            except OSError:  # stale: nobody listens there any more
                os.unlink(path)
                server.bind(path)
            else:
                server.close()
                return None
            finally:
                probe.close()
    finally:
        os.umask(previous)
    os.chmod(path, SOCKET_MODE)
    server.listen(BACKLOG)
    return server


def serve(server: socket.socket, path: str, holder: Holder, ours: tuple[int, int] | None) -> None:
    """Answer until the holder expires or is locked, or the socket at `path` stops being the
    one we bound (`ours`: its device and inode, taken right after binding)."""
    try:
        while not holder.expired() and ours is not None and _identity(path) == ours:
            server.settimeout(max(0.01, min(POLL, holder.until - time.time())))
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                serve_one(connection, holder)
    finally:
        holder.forget()
        if _identity(path) == ours:
            with contextlib.suppress(OSError):
                os.unlink(path)
        server.close()


def _stop(holder: Holder) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        holder.done = True

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m didlink.custody.key_agent")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--until", required=True, type=int)
    parser.add_argument("--did", required=True)
    args = parser.parse_args(argv)
    _harden()
    seed = sys.stdin.buffer.read(SEED_SIZE + 1)
    if len(seed) != SEED_SIZE or len(args.did) > MAX_DID_CHARS:
        return 2
    if not time.time() < args.until <= time.time() + MAX_LIFETIME + 60:
        return 2
    holder = Holder(seed, args.did, args.until)
    del seed
    os.chdir("/")
    if os.fork() > 0:  # the launcher reaps this process; the child serves, reparented (and
        os._exit(0)  # binds: SO_PEERCRED names the process that listens)
    server = _bind(args.socket)
    if server is None:
        sys.stdout.write("busy\n")
        return 1
    ours = _identity(args.socket)
    _stop(holder)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    with open(os.devnull, "wb") as null:  # let the parent stop reading
        os.dup2(null.fileno(), sys.stdout.fileno())
        os.dup2(null.fileno(), sys.stdin.fileno())
    serve(server, args.socket, holder, ours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
