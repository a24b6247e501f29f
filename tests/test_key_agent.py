"""The key agent's protocol and process (didlink/key_agent*.py, specs/key-agent.md): requests
and replies parsed strictly, hostile requests refused, other users refused, a real agent's
socket private, and nothing heavy loaded by it."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from didlink.custody import key_agent_client as client
from didlink.custody.key_agent import Holder, serve_one
from didlink.custody.key_agent_protocol import (
    MAX_REPLY,
    MAX_REQUEST,
    AgentFolderError,
    Request,
    checked_folder,
    encode,
    parse_reply,
    parse_request,
    read_line,
    socket_path,
)
from didlink.errors import UserError
from identity.keys import IdentityKey
from tests.support.key_agents import agent_pids, alive

KEY = IdentityKey(bytes(range(32)))
SEED_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


# --- requests and replies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"v":1,"op":"status"}', Request("status")),
        (b'{"v":1,"op":"key"}', Request("key")),
        (b'{"v":1,"op":"lock"}', Request("lock")),
        (b'{"v":1,"op":"extend","until":1800000000}', Request("extend", 1800000000)),
    ],
)
def test_requests(line: bytes, expected: Request) -> None:
    assert parse_request(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"key",
        b"[]",
        b'{"op":"key"}',  # no version
        b'{"v":2,"op":"key"}',
        b'{"v":"1","op":"key"}',
        b'{"v":1,"op":"dump"}',
        b'{"v":1,"op":"key","until":1800000000}',  # a field the op does not take
        b'{"v":1,"op":"status","pad":"x"}',
        b'{"v":1,"op":"extend"}',
        b'{"v":1,"op":"extend","until":"1800000000"}',
        b'{"v":1,"op":"extend","until":1.5}',
        b'{"v":1,"op":"extend","until":true}',
        b'{"v":1,"op":"extend","until":-5}',
        b'{"v":1,"op":"extend","until":99999999999999999999}',
        '{"v":1,"op":"k\u00e9y"}'.encode(),
        b"\xff\xfe",
    ],
)
def test_bad_requests(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_request(line)


def test_replies() -> None:
    full = b'{"v":1,"ok":true,"did":"did:key:z6Mk","until":1800000000,"seed":"%s"}' % (
        SEED_B64.encode()
    )
    reply = parse_reply(full)
    assert reply is not None and reply.seed == KEY.seed and reply.until == 1800000000
    assert parse_reply(b'{"v":1,"ok":true}') is None  # lock's answer
    assert parse_reply(b'{"v":1,"ok":false,"error":"locked"}') is None


@pytest.mark.parametrize(
    "line",
    [
        b'{"v":1}',
        b'{"v":1,"ok":"yes"}',
        b'{"v":1,"ok":true,"did":"did:key:z6Mk"}',
        b'{"v":1,"ok":true,"did":"not a did","until":1800000000}',
        b'{"v":1,"ok":true,"did":5,"until":1800000000}',
        b'{"v":1,"ok":true,"did":"did:key:z6Mk","until":1800000000,"seed":"AAEC"}',
        b'{"v":1,"ok":true,"did":"did:key:z6Mk","until":1800000000,"seed":"!!!!"}',
        b'{"v":1,"ok":true,"did":"did:key:z6Mk","until":1800000000,"seed":12}',
        b'{"v":1,"ok":true,"did":"did:key:z6Mk","until":1800000000,"extra":1}',
        b'{"v":1,"ok":true,"did":"did:' + b"x" * 300 + b'","until":1800000000}',
    ],
)
def test_bad_replies(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_reply(line)


def test_read_line_is_bounded() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x" * (MAX_REQUEST + 10))
        with pytest.raises(ValueError, match="too long"):
            read_line(right, MAX_REQUEST)
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b'{"v":1,')  # and then nothing: bounded by the timeout
        with pytest.raises(ValueError, match="too slow"):
            read_line(right, MAX_REQUEST, timeout=0.2)
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"one\ntwo\n")
        with pytest.raises(ValueError, match="more than one line"):
            read_line(right, MAX_REQUEST)
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"half")
        left.shutdown(socket.SHUT_WR)
        with pytest.raises(ValueError, match="incomplete"):
            read_line(right, MAX_REQUEST)


# --- one connection to the serving side -------------------------------------------------------


def ask(holder: Holder, request: bytes) -> dict[str, object]:
    agent_side, client_side = socket.socketpair()
    with agent_side, client_side:
        client_side.sendall(request)
        serve_one(agent_side, holder)
        answer = json.loads(read_line(client_side, MAX_REPLY))
    assert isinstance(answer, dict)
    return answer


def holder(seconds: float = 60) -> Holder:
    return Holder(KEY.seed, KEY.did, time.time() + seconds)


def test_serving_each_op() -> None:
    held = holder()
    status = ask(held, b'{"v":1,"op":"status"}\n')
    assert status["did"] == KEY.did and "seed" not in status
    key = ask(held, b'{"v":1,"op":"key"}\n')
    assert key["seed"] == SEED_B64
    until = int(time.time()) + 600
    assert ask(held, encode({"op": "extend", "until": until}))["until"] == until
    assert ask(held, b'{"v":1,"op":"lock"}\n') == {"v": 1, "ok": True}
    assert held.expired()
    assert ask(held, b'{"v":1,"op":"key"}\n') == {"v": 1, "ok": False, "error": "locked"}


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"x" * (MAX_REQUEST + 1) + b"\n",
        b'{"v":1,"op":"key","pad":"' + b"x" * 1000 + b'"}\n',
        b"GET / HTTP/1.1\r\n\r\n",
        b'{"v":1,"op":"key"}',  # no newline, then the client stops writing: too slow
        b"\x00" * 64 + b"\n",
        b'{"v":1,"op":"extend","until":1}\n',  # in the past
        encode({"op": "extend", "until": 4_000_000_000}),  # far more than a week ahead
    ],
)
def test_hostile_requests_are_refused_and_reveal_nothing(request_bytes: bytes) -> None:
    held = holder()
    agent_side, client_side = socket.socketpair()
    with agent_side, client_side:
        client_side.sendall(request_bytes)
        started = time.monotonic()
        serve_one(agent_side, held)
        assert time.monotonic() - started < 10  # bounded (2 s for a silent client)
        client_side.settimeout(5)
        answer = client_side.recv(4096)
    assert json.loads(answer)["ok"] is False
    assert SEED_B64.encode() not in answer
    assert not held.expired()


def test_an_expired_holder_gives_nothing() -> None:
    answer = ask(holder(-1), b'{"v":1,"op":"key"}\n')
    assert answer == {"v": 1, "ok": False, "error": "locked"}


def test_forget_overwrites_the_seed() -> None:
    held = holder()
    held.forget()
    assert held.seed_b64() == "A" * 43 + "="


# --- the folder -------------------------------------------------------------------------------


def test_the_folder_is_made_private_and_others_are_refused(
    runtime_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = checked_folder(create=True)
    assert folder == runtime_dir / "didlink"
    os.chmod(folder, 0o755)
    checked_folder(create=False)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # ours: repaired
    elsewhere = Path(os.environ.get("TMPDIR", "/tmp"))  # without XDG_RUNTIME_DIR
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / f"didlink-{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(AgentFolderError, match="not a folder of yours"):
        checked_folder(create=True)
    assert client.status(tmp_path / "profile") is None  # quietly: no agent
    with pytest.raises(UserError):
        socket_path(tmp_path / "profile", create=True)


def test_a_too_long_socket_path_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    with pytest.raises(AgentFolderError, match="too long"):
        socket_path(tmp_path / "profile", create=True)
    assert client.status(tmp_path / "profile") is None


# --- a real agent -----------------------------------------------------------------------------


def test_a_real_agent(runtime_dir: Path, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    until = int(time.time()) + 60
    client.start(profile, KEY, until)
    path = socket_path(profile, create=False)
    assert stat.S_IMODE(path.lstat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    status = client.status(profile)
    assert status is not None and status.did == KEY.did and status.until == until
    assert client.cached_key(profile, KEY.did) == KEY
    [pid] = agent_pids(runtime_dir)
    with open(f"/proc/{pid}/status") as proc_status:  # no core dumps, no ptrace by the user
        assert "TracerPid:\t0" in proc_status.read()
    assert f"{KEY.seed.hex()}" not in Path(f"/proc/{pid}/cmdline").read_bytes().hex()
    assert b"DIDLINK_" not in Path(f"/proc/{pid}/environ").read_bytes()
    with pytest.raises(UserError, match="another 'didlink unlock'"):
        client.start(profile, KEY, until)  # the path is taken by a live agent
    assert client.lock(profile)
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid) and not path.exists()
    assert not client.lock(profile)


def test_the_agent_exits_when_its_socket_is_removed(runtime_dir: Path, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    client.start(profile, KEY, int(time.time()) + 60)
    [pid] = agent_pids(runtime_dir)
    socket_path(profile, create=False).unlink()
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_another_user_gets_no_answer(runtime_dir: Path, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    client.start(profile, KEY, int(time.time()) + 60)
    path = socket_path(profile, create=False)
    os.chmod(runtime_dir, 0o755)  # open the way on purpose: only SO_PEERCRED stands
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o666)
    code = (
        "import os, socket, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
        "try:\n"
        '    s.sendall(b\'{"v":1,"op":"key"}\\n\'); print(repr(s.recv(4096)))\n'
        "except ConnectionError:  # reset or broken pipe: closed on us\n"
        "    print(repr(b''))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "b''"  # closed without a word
    assert client.status(profile) is not None  # still serving its own user


def test_the_agent_loads_only_the_standard_library() -> None:
    code = "import sys, didlink.custody.key_agent; print(sorted(sys.modules))"
    modules = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for heavy in ("cryptography", "pydantic", "aiortc", "nacl", "click", "zxcvbn"):
        assert f"'{heavy}'" not in modules, heavy


def test_a_lone_thread_cannot_hold_the_agent(runtime_dir: Path, tmp_path: Path) -> None:
    """A client that connects and says nothing costs the agent at most its read timeout."""
    profile = tmp_path / "profile"
    client.start(profile, KEY, int(time.time()) + 60)
    path = socket_path(profile, create=False)
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(str(path))
    done = threading.Event()

    def asks() -> None:
        if client.status(profile) is not None:
            done.set()

    try:
        for _ in range(10):  # the client's own timeout is 1 s: retry until the agent is free
            thread = threading.Thread(target=asks)
            thread.start()
            thread.join(timeout=10)
            if done.is_set():
                break
        assert done.is_set()
    finally:
        silent.close()
