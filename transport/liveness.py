"""Knowing the peer is still there: consent freshness and data-channel keepalives (§6.4).

Two independent checks end an open `Peer` whose path or peer went away, so a user never
watches a "connected" session that can no longer carry anything:

1. Consent freshness (RFC 7675 §5.1), path level. aioice 0.13 checks consent with one 0.5 s STUN
   transaction every 4-6 s, never retransmitted, and closes the ICE connection after 6 failed
   checks in a row. A response that needs more than 0.5 s (100 ms of delay plus the queue of a
   file transfer) counts as a failure there, and at 20 % loss a check fails 36 % of the time, so a
   slow but working path lost consent within minutes in our fault runs. `ConsentFreshness`
   replaces aioice's task on the same connection with the RFC's rule: a Binding request every
   4-6 s, each its own transaction retransmitted on the RFC 5389 schedule (RTO 0.5 s, doubling),
   and consent expires when no authenticated response arrived for `consent_timeout` (30 s). On
   expiry it closes the ICE connection exactly as aioice would, and the failure reaches `Peer`
   through aiortc's usual path.
2. Keepalives, data level (`Peer`): each side sends a KEEPALIVE chunk (framing.py) when it sent
   nothing for `keepalive` seconds, and fails the connection with PeerClosed when it heard
   nothing for `idle_timeout` seconds. This also ends a connection whose lower layers failed
   without telling aiortc, or whose peer process is alive but stuck.

aioice keeps the pieces we need private (`Connection._nominated`, `_query_consent_task`);
`ConsentFreshness.attach` checks they exist and otherwise leaves aioice's own checks running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any

from aioice import stun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Liveness:
    """Timers of both checks, in seconds (defaults: RFC 7675 and specs/transport.md §6.4)."""

    keepalive: float = 5.0
    idle_timeout: float = 60.0
    consent_interval: float = 5.0
    consent_timeout: float = 30.0
    consent_retransmissions: int = 4  # 0.5 + 1 + 2 + 4 + 8 s: a transaction gives up after 15.5 s

    def __post_init__(self) -> None:
        if not 0 < self.keepalive < self.idle_timeout:
            raise ValueError("keepalive must be positive and below idle_timeout")
        if not 0 < self.consent_interval < self.consent_timeout:
            raise ValueError("consent_interval must be positive and below consent_timeout")
        if self.consent_retransmissions < 0:
            raise ValueError("consent_retransmissions cannot be negative")


class ConsentFreshness:
    """RFC 7675 consent checks for one aioice `Connection` (see the module docstring)."""

    def __init__(self, connection: Any, liveness: Liveness) -> None:
        self._connection = connection
        self._liveness = liveness
        self._loop = asyncio.get_running_loop()
        self._last_response = self._loop.time()
        self._checks: set[asyncio.Task[None]] = set()

    @classmethod
    def attach(cls, connection: Any, liveness: Liveness) -> ConsentFreshness | None:
        """Replace the connection's running consent task with ours; None if we cannot."""
        running = getattr(connection, "_query_consent_task", None)
        if not isinstance(running, asyncio.Task) or not hasattr(connection, "_nominated"):
            log.debug("aioice internals changed: keeping aioice's own consent checks")
            return None
        consent = cls(connection, liveness)
        running.cancel()
        # Stored where aioice keeps its own task, so Connection.close() cancels ours.
        connection._query_consent_task = consent._loop.create_task(consent.run())
        return consent

    async def run(self) -> None:
        """Check every 4-6 s until consent expires (then close the connection) or cancelled."""
        try:
            while True:
                interval = self._liveness.consent_interval
                await asyncio.sleep(interval * (0.8 + 0.4 * random.random()))  # noqa: S311 - jitter
                if self._loop.time() - self._last_response > self._liveness.consent_timeout:
                    break
                for pair in list(self._connection._nominated.values()):
                    task = self._loop.create_task(self._check(pair))
                    self._checks.add(task)
                    task.add_done_callback(self._checks.discard)
        finally:
            for task in list(self._checks):
                task.cancel()
        log.info("consent to send expired: no STUN response for %g s", self._elapsed())
        self._connection._query_consent_task = None  # close() must not await this very task
        await self._connection.close()

    async def _check(self, pair: Any) -> None:
        connection = self._connection
        password = connection.remote_password
        if password is None:
            return
        request = connection.build_request(pair, nominate=False)
        with contextlib.suppress(stun.TransactionError, ConnectionError, OSError):
            await pair.protocol.request(
                request,
                pair.remote_addr,
                integrity_key=password.encode("utf8"),
                retransmissions=self._liveness.consent_retransmissions,
            )
            self._last_response = self._loop.time()

    def _elapsed(self) -> float:
        return round(self._loop.time() - self._last_response, 1)
