"""A real TURN server on loopback for the tests: coturn's `turnserver` (not written here).

`turn_server(tmp_path)` starts `turnserver` bound to 127.0.0.1 on a free port, with the
long-term credential mechanism and one static user (`USER` / `PASSWORD`), no TLS, no CLI, and
`--allow-loopback-peers` (coturn refuses to relay to 127.0.0.0/8 by default, and both peers of a
test are on loopback). It waits (bounded) until the server answers a STUN Binding request and
stops it afterwards. A missing `turnserver`, or one that does not come up, skips the test
locally and fails it under CI=true (tests/support/require.py); `.ci/run` installs coturn.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.require import require
from transport.presence import binding_request

START_TIMEOUT = 20.0
USER = "didlink"
PASSWORD = "turn-secret-1234"  # a test server's static user
REALM = "didlink.test"


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


@dataclass
class TurnServer:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}"

    @property
    def tcp_url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=tcp"

    @property
    def stun_url(self) -> str:
        return f"stun:127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        try:
            sock.sendto(binding_request(), ("127.0.0.1", port))
            sock.recvfrom(2048)
        except OSError:
            return False
        return True


@contextlib.contextmanager
def turn_server(folder: Path) -> Iterator[TurnServer]:
    """A running coturn on 127.0.0.1 (see the module docstring)."""
    executable = shutil.which("turnserver")
    require(executable is not None, "coturn (turnserver) is not installed: apt-get install coturn")
    assert executable is not None
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "turnserver.conf"
    config.write_text("", encoding="utf-8")  # not /etc/turnserver.conf
    port = _free_port()
    server = TurnServer(port=port, log=folder / "turnserver.log")
    process = subprocess.Popen(
        [
            executable,
            "-c",
            str(config),
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            "--lt-cred-mech",
            f"--user={USER}:{PASSWORD}",
            f"--realm={REALM}",
            "--fingerprint",
            "--allow-loopback-peers",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--no-stdout-log",
            "--simple-log",
            f"--log-file={server.log}",
            f"--pidfile={folder / 'turnserver.pid'}",
            f"--userdb={folder / 'turndb.sqlite'}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                require(False, f"turnserver did not come up: {server.log_text()[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
