"""A local Nostr relay for the mailbox bench: the `nostr-relay` package (the tests' relay, not
written here) in its own process on 127.0.0.1, with its own config and SQLite database."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_CONFIG = """\
DEBUG: false
relay_name: didlink bench relay
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalRelay:
    folder: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        executable = Path(sys.executable).parent / "nostr-relay"
        if not executable.exists():
            raise RuntimeError("nostr-relay is not installed (pip install -e '.[dev]')")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "config.yaml"
        db = self.folder / "relay.sqlite3"
        config.write_text(_CONFIG.format(db=db, port=self.port), encoding="utf-8")
        with (self.folder / "relay.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(executable), "-c", str(config), "serve", "--use-uvicorn"],
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
        raise RuntimeError(f"nostr-relay on port {self.port} did not come up")

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
