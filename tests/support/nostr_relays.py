"""Real Nostr relays on loopback for the tests: the `nostr-relay` package (not written here).

`local_relays(tmp_path, 2)` starts separate `nostr-relay serve` processes, each with its own
config file and SQLite database in a temp folder, bound to 127.0.0.1 on a free port, waits
(bounded) until each accepts TCP connections, and stops them afterwards. A relay that is not
installed or does not come up skips the test locally and fails it under CI=true
(tests/support/require.py).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.require import require

START_TIMEOUT = 30.0

_CONFIG = """\
DEBUG: false
relay_name: didlink test relay
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{db}
  num_concurrent_reqs: 4
  num_concurrent_adds: 1
  validators:
    - nostr_relay.validators.is_not_too_large
    - nostr_relay.validators.is_signed
    - nostr_relay.validators.is_recent
verification:
  nip05_verification: disabled
gunicorn:
  bind: 127.0.0.1:{port}
  workers: 1
  loglevel: warning
  reload: false
authentication:
  enabled: false
max_event_size: 131072
message_timeout: 1800
subscription_limit: 32
max_limit: 6000
logging:
  version: 1
  root: {{level: WARNING}}
"""


def _executable() -> Path:
    return Path(sys.executable).parent / "nostr-relay"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalRelay:
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.folder / "relay.sqlite3"

    @property
    def log(self) -> Path:
        return self.folder / "relay.log"

    def start(self) -> None:
        """Start the process (again, on the same port and database after `stop`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "config.yaml"
        config.write_text(_CONFIG.format(db=self.database, port=self.port), encoding="utf-8")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(_executable()), "-c", str(config), "serve", "--use-uvicorn"],
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.5),
            ):
                return
            time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        require(False, f"nostr-relay on port {self.port} did not come up: {tail}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def database_bytes(self) -> bytes:
        """Everything the relay has on disk (the database and any journal beside it)."""
        return b"".join(
            path.read_bytes()
            for path in sorted(self.folder.glob("relay.sqlite3*"))
            if path.is_file()
        )


@contextlib.contextmanager
def local_relays(folder: Path, count: int = 2) -> Iterator[list[LocalRelay]]:
    require(_executable().exists(), "nostr-relay is not installed (pip install -e '.[dev]')")
    relays = [LocalRelay(folder / f"relay{index}") for index in range(count)]
    try:
        for relay in relays:
            relay.start()
        deadline = time.monotonic() + START_TIMEOUT
        for relay in relays:
            relay.wait_ready(deadline)
        yield relays
    finally:
        for relay in relays:
            relay.stop()
