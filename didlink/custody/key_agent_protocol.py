"""The key agent's place and wire format (specs/key-agent.md), shared by the agent and its clients.

`didlink unlock` leaves the unlocked identity seed with a small background process, the key
agent (didlink/custody/key_agent.py), which serves it over a Unix socket until `didlink lock` or
the end of the chosen time. The socket lives in a private folder: `$XDG_RUNTIME_DIR/didlink` (a
tmpfs that the login session owns and that does not survive a reboot), else `<tmp>/didlink-<uid>`;
the folder must be a real folder of ours with no group or other rights (a loose mode of ours is
repaired; anything else is refused: another user may have made it). One agent per profile: the
socket's name is a hash of the profile's resolved path.

One connection carries one request and one reply, each one line of compact JSON, bounded in
size and time; the agent answers only a peer of its own uid (SO_PEERCRED), and the client talks
only to an agent of its own uid. Standard library only, and little of it (`socket` is imported
when there is a socket; NamedTuples, not dataclasses): `whoami` asks for the status at almost
no cost, and `didlink lock` and the agent start fast.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from didlink.errors import UserError

if TYPE_CHECKING:
    import socket

VERSION = 1
MAX_REQUEST = 256
"""Bytes of one request line, its newline included."""
MAX_REPLY = 1024
"""Bytes of one reply line, its newline included."""
IO_TIMEOUT = 2.0
"""Seconds for one whole request or reply to arrive."""
MAX_LIFETIME = 7 * 24 * 3600
"""The longest an agent may hold a key (seconds): a week."""
MAX_DID_CHARS = 256
SEED_SIZE = 32
OPS = ("status", "key", "extend", "lock")
FOLDER_MODE = 0o700
SOCKET_MODE = 0o600
MAX_SOCKET_PATH = 107
"""sun_path holds 108 bytes, the terminating NUL included (Linux)."""


class AgentFolderError(UserError):
    """The key agent's folder is missing, not private, or not ours."""


def agent_folder() -> Path:
    """Where the sockets live: $XDG_RUNTIME_DIR/didlink, else <tmp>/didlink-<uid> (not created)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / "didlink"
    import tempfile  # late: rarely needed, and slow to import for `whoami`

    return Path(tempfile.gettempdir()) / f"didlink-{os.getuid()}"


def checked_folder(*, create: bool) -> Path:
    """The agent folder, made private (0700) if it is ours; AgentFolderError if it is missing
    (and not `create`), is not a real folder, or belongs to someone else."""
    folder = agent_folder()
    if create:
        try:
            folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
        except OSError as exc:
            raise AgentFolderError(f"cannot make {folder}: {exc.strerror or exc}") from exc
    try:
        info = folder.lstat()
    except FileNotFoundError:
        raise AgentFolderError(f"there is no {folder}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise AgentFolderError(f"{folder} is not a folder of yours: the key agent will not use it")
    if stat.S_IMODE(info.st_mode) != FOLDER_MODE:
        os.chmod(folder, FOLDER_MODE)
    return folder


def socket_name(profile: Path) -> str:
    """`agent-<16 hex of SHA-256 of the resolved profile path>.sock`."""
    digest = hashlib.sha256(os.fsencode(Path(profile).resolve())).hexdigest()
    return f"agent-{digest[:16]}.sock"


def socket_path(profile: Path, *, create: bool) -> Path:
    """The socket of `profile`'s agent (AgentFolderError when it cannot be used)."""
    path = checked_folder(create=create) / socket_name(profile)
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise AgentFolderError(
            f"the key agent's socket path is too long ({path}): set XDG_RUNTIME_DIR to a"
            " shorter folder"
        )
    return path


class Credentials(NamedTuple):
    pid: int
    uid: int


def peer_credentials(sock: socket.socket) -> Credentials | None:
    """The pid and uid of the process at the other end (SO_PEERCRED; None where it is missing)."""
    import socket  # late: `whoami` with no agent never needs it

    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    size = struct.calcsize("3i")
    pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, size))
    return Credentials(pid=pid, uid=uid)


def same_user(sock: socket.socket) -> bool:
    creds = peer_credentials(sock)
    return creds is not None and creds.uid == os.getuid()


def encode(message: dict[str, Any]) -> bytes:
    """One line of compact JSON (ASCII), with the version."""
    return json.dumps({"v": VERSION, **message}, separators=(",", ":")).encode("ascii") + b"\n"


def read_line(sock: socket.socket, limit: int, *, timeout: float = IO_TIMEOUT) -> bytes:
    """One line of at most `limit` bytes (newline included) arriving within `timeout`;
    ValueError if it is longer, incomplete or late."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ValueError("too slow")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(limit + 1 - len(data))
        except TimeoutError:  # (socket.timeout is TimeoutError since Python 3.10)
            raise ValueError("too slow") from None
        if not chunk:
            raise ValueError("incomplete line")
        data += chunk
        if len(data) > limit:
            raise ValueError("line too long")
    line, _, rest = data.partition(b"\n")
    if rest:
        raise ValueError("more than one line")
    return line


def _object(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not JSON") from None
    if not isinstance(value, dict) or value.get("v") != VERSION:
        raise ValueError("not a version 1 object")
    return value


def _integer(value: Any) -> int:
    if type(value) is not int or not 0 < value < 2**40:
        raise ValueError("not a time")
    return value


class Request(NamedTuple):
    op: str
    until: int | None = None


def parse_request(line: bytes) -> Request:
    """A request: {"v":1,"op":"status"|"key"|"lock"} or {"v":1,"op":"extend","until":T}."""
    value = _object(line)
    op = value.get("op")
    if op not in OPS:
        raise ValueError("unknown op")
    allowed = {"v", "op", "until"} if op == "extend" else {"v", "op"}
    if set(value) != allowed:
        raise ValueError("unexpected fields")
    return Request(op=op, until=_integer(value["until"]) if op == "extend" else None)


class Reply(NamedTuple):
    """What the agent holds: the DID, until when (Unix seconds), and the seed for "key"."""

    did: str
    until: int
    seed: bytes | None = None


def parse_reply(line: bytes) -> Reply | None:
    """A reply: {"v":1,"ok":true,"did":D,"until":T[,"seed":B64]}; None for {"ok":false,...}
    (and for "lock"'s {"v":1,"ok":true}); ValueError for anything else."""
    value = _object(line)
    if value.get("ok") is False:
        return None
    if value.get("ok") is not True:
        raise ValueError("no ok")
    if set(value) == {"v", "ok"}:
        return None
    if not set(value) <= {"v", "ok", "did", "until", "seed"}:
        raise ValueError("unexpected fields")
    did = value.get("did")
    if not isinstance(did, str) or not did.startswith("did:") or len(did) > MAX_DID_CHARS:
        raise ValueError("bad did")
    seed = None
    if "seed" in value:
        if not isinstance(value["seed"], str):
            raise ValueError("bad seed")
        try:
            seed = base64.b64decode(value["seed"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("bad seed") from None
        if len(seed) != SEED_SIZE:
            raise ValueError("bad seed")
    return Reply(did=did, until=_integer(value.get("until")), seed=seed)
