"""Talking to the key agent of a profile (didlink/custody/key_agent.py, specs/key-agent.md).

Every question is best effort and quiet: no folder, no socket, an agent that does not answer
within `CONNECT_TIMEOUT`, one of another uid or one that says something malformed all mean "no
agent", and the caller asks for the passphrase as before. A socket nobody listens on any more
(the agent was killed) is removed. Standard library only, but for the key itself
(`cached_key`), which the caller is about to use anyway.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from didlink.custody.key_agent_protocol import (
    MAX_REPLY,
    AgentFolderError,
    Reply,
    encode,
    parse_reply,
    read_line,
    same_user,
    socket_path,
)
from didlink.errors import UserError
from didlink.words.output import say

if TYPE_CHECKING:
    from identity.keys import IdentityKey

CONNECT_TIMEOUT = 1.0
START_TIMEOUT = 15.0
"""Seconds for a new agent to say it is ready."""


def _existing_socket(profile: Path) -> Path | None:
    try:
        path = socket_path(profile, create=False)
    except (AgentFolderError, OSError):
        return None
    return path if os.path.lexists(path) else None


def _remove_stale(path: Path) -> None:
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


def _exchange(profile: Path, message: dict[str, Any]) -> tuple[bool, Reply | None]:
    """(answered, reply) for one request to the profile's agent; (False, None): no agent."""
    path = _existing_socket(profile)
    if path is None:
        return False, None
    import socket  # late: no agent, no socket module (`whoami` starts fast)

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(str(path))
        except ConnectionRefusedError:
            _remove_stale(path)
            return False, None
        except OSError:
            return False, None
        if not same_user(sock):
            return False, None
        try:
            sock.sendall(encode(message))
            return True, parse_reply(read_line(sock, MAX_REPLY, timeout=CONNECT_TIMEOUT))
        except (OSError, ValueError):
            return False, None


def status(profile: Path) -> Reply | None:
    """What the profile's agent holds (DID and until when), or None: no agent."""
    return _exchange(profile, {"op": "status"})[1]


def lock(profile: Path) -> bool:
    """Tell the profile's agent to forget the key and exit; False: there was none."""
    answered, _ = _exchange(profile, {"op": "lock"})
    return answered


def extend(profile: Path, until: int) -> Reply | None:
    """Make the agent hold the key until `until` (Unix seconds); None: no agent."""
    return _exchange(profile, {"op": "extend", "until": until})[1]


def cached_key(profile: Path, did: str) -> IdentityKey | None:
    """The identity key held by the profile's agent if it opens `did`; an agent that holds
    another identity's key (the profile's identity was replaced since) is locked."""
    reply = _exchange(profile, {"op": "key"})[1]
    if reply is None or reply.seed is None:
        return None
    from identity.keys import IdentityKey

    key = IdentityKey(reply.seed)
    if reply.did != did or key.did != did:
        lock(profile)
        say("note: the unlocked key was another identity's: it was locked", err=True)
        return None
    return key


def start(profile: Path, key: IdentityKey, until: int) -> None:
    """Start the profile's agent holding `key` until `until`; UserError if it does not start
    (or could not tell who asks it: without SO_PEERCRED it would answer nobody)."""
    import select  # late, as below: `whoami` only asks for the status
    import socket
    import subprocess

    if not hasattr(socket, "SO_PEERCRED"):
        raise UserError("didlink unlock needs SO_PEERCRED (Linux) to check who asks for the key")
    path = socket_path(profile, create=True)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [
            sys.executable,
            "-m",
            "didlink.custody.key_agent",
            "--socket",
            str(path),
            "--until",
            str(until),
            "--did",
            key.did,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=environment,
        cwd="/",
        start_new_session=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(key.seed)
        process.stdin.close()
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
        said = process.stdout.readline(16) if ready else b""
    except OSError:
        said = b""
    finally:
        process.stdout.close()
    try:
        process.wait(timeout=START_TIMEOUT)  # the agent forks at once: its child serves
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=START_TIMEOUT)
    if said == b"ready\n":
        return
    if said == b"busy\n":
        raise UserError("another 'didlink unlock' of this profile is running")
    raise UserError("the key agent did not start")


def until_text(until: float) -> str:
    """e.g. '14:05 CET', or 'Wed 09 Dec 14:05 CET' when it is not today (local time)."""
    from datetime import datetime

    moment = datetime.fromtimestamp(until).astimezone()
    today = datetime.fromtimestamp(time.time()).astimezone().date()
    form = "%H:%M %Z" if moment.date() == today else "%a %d %b %H:%M %Z"
    return moment.strftime(form)
