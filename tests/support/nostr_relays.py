"""Real Nostr relays on loopback for the tests: the `nostr-relay` package (not written here).

`local_relays(tmp_path, 2)` starts separate `nostr-relay serve` processes
(didlink/mailbox/local_relay.py),
each with its own config file and SQLite database in a temp folder, bound to 127.0.0.1 on a free
port, waits (bounded) until each accepts TCP connections, and stops them afterwards. A relay that
is not installed or does not come up skips the test locally and fails it under CI=true
(tests/support/require.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from didlink.mailbox.local_relay import (
    START_TIMEOUT,
    LocalRelay,
    RelayNotReady,
    free_port,
    installed,
)
from tests.support.require import require

__all__ = ["LocalRelay", "free_port", "local_relays"]


@contextlib.contextmanager
def local_relays(folder: Path, count: int = 2) -> Iterator[list[LocalRelay]]:
    require(installed(), "nostr-relay is not installed (pip install -e '.[dev]')")
    relays = [LocalRelay(folder / f"relay{index}") for index in range(count)]
    try:
        for relay in relays:
            relay.start()
        deadline = time.monotonic() + START_TIMEOUT
        for relay in relays:
            try:
                relay.wait_ready(deadline)
            except RelayNotReady as exc:
                require(False, str(exc))
        yield relays
    finally:
        for relay in relays:
            relay.stop()
