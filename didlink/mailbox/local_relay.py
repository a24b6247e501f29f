"""A Nostr relay on this machine: the `nostr-relay` package (not written here) in its own process.

For what must run with no relay of anyone else's: the tests (tests/support/nostr_relays.py), the
mailbox bench (bench/metrics/mailbox.py) and, later, the demo. `LocalRelay(folder)` writes its
own config and SQLite database in `folder`, binds 127.0.0.1 on a free port, and `start`s,
`wait_ready`s (bounded) and `stop`s the process. `nostr-relay` is a development dependency
(`pip install -e '.[dev]'`): `installed()` says whether it is there.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 30.0


class RelayNotReady(RuntimeError):
    """The relay process is not installed, or did not come up in time."""


_CONFIG = """\
DEBUG: false
relay_name: didlink local relay
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


def executable() -> Path:
    """The `nostr-relay` script beside this interpreter."""
    return Path(sys.executable).parent / "nostr-relay"


def installed() -> bool:
    return executable().exists()


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
        if not installed():
            raise RelayNotReady("nostr-relay is not installed (pip install -e '.[dev]')")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "config.yaml"
        config.write_text(_CONFIG.format(db=self.database, port=self.port), encoding="utf-8")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own arguments)
                [str(executable()), "-c", str(config), "serve", "--use-uvicorn"],
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, deadline: float) -> None:
        """Until the relay accepts TCP connections (RelayNotReady, with its log's end, if it
        has not by `deadline`, a `time.monotonic()` value, or if its process ended)."""
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
        raise RelayNotReady(f"nostr-relay on port {self.port} did not come up: {tail}")

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
