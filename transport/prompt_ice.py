"""ICE that is done when its check list is, not at aioice's next pacing tick (§6.8).

aioice 0.13's `Connection.connect()` paces the connectivity checks with the Ta timer of RFC 8445
§6.1.4.2: it starts a check, sleeps 20 ms, and only after the sleep looks whether the check list
has completed. On a LAN (and on loopback) the first nominated check succeeds within a
millisecond or two, and the DTLS handshake, the SCTP association and everything above them wait
out the rest of the 20 ms: about 20 of the 28 ms raw aiortc needs to open a channel on the
development machine (bench/README.md).

`PromptIce.install(connection)` wraps three methods of one aioice `Connection` (instance
attributes; aiortc's `RTCIceTransport.start` awaits `connection.connect()`):

- `_check_periodic`, the pacing step, records whether `connect()` is about to sleep out a tick;
- `_check_list_maybe_complete` sets an event when it completes the check list (every component
  has a nominated pair: RFC 8445 §8.1.2);
- `connect` runs aioice's own `connect()` as a task and waits for it or for that event. If the
  check list completed while `connect()` sleeps out a tick, the sleep is cancelled and the rest
  of `connect()` is done at once, as aioice does it: take the completed state, cancel the checks
  still running, start the consent freshness task (RFC 7675). Every other outcome (a failure, a
  completion aioice notices itself) is aioice's own.

Nothing changes on the wire: the checks, their pacing and the nomination are aioice's; only the
moment `connect()` returns moves. With other aioice internals `install` leaves the connection
alone and returns None.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aioice import ice as aioice_ice

log = logging.getLogger(__name__)


class PromptIce:
    """`connect()` of one aioice `Connection`, returning as soon as its check list completes."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._aioice_connect = connection.connect
        self._aioice_check_periodic = connection._check_periodic
        self._aioice_maybe_complete = connection._check_list_maybe_complete
        self._pacing = False  # aioice's connect() sleeps out a pacing tick
        self._completed = asyncio.Event()
        self.cut_short = False  # the last connect() returned before aioice's next tick

    @classmethod
    def install(cls, connection: Any) -> PromptIce | None:
        """Wrap `connection` (an aioice Connection); None if its internals are not as expected."""
        methods = ("connect", "_check_periodic", "_check_list_maybe_complete", "query_consent")
        if not (
            all(callable(getattr(connection, m, None)) for m in methods)
            and isinstance(getattr(connection, "_check_list_state", None), asyncio.Queue)
            and isinstance(getattr(aioice_ice, "ICE_COMPLETED", None), int)
        ):
            log.debug("aioice internals changed: keeping aioice's own ICE completion")
            return None
        prompt = cls(connection)
        connection._check_periodic = prompt._check_periodic
        connection._check_list_maybe_complete = prompt._check_list_maybe_complete
        connection.connect = prompt.connect
        return prompt

    def _check_periodic(self) -> bool:
        self._pacing = self._aioice_check_periodic()
        return self._pacing

    def _check_list_maybe_complete(self) -> bool:
        completed: bool = self._aioice_maybe_complete()
        if completed:
            self._completed.set()
        return completed

    async def connect(self) -> None:
        """aioice's `connect()`, cut short once the check list is complete (module docstring)."""
        self.cut_short = False
        self._completed.clear()
        aioice = asyncio.ensure_future(self._aioice_connect())
        completed = asyncio.ensure_future(self._completed.wait())
        try:
            await asyncio.wait((aioice, completed), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            aioice.cancel()
            raise
        finally:
            completed.cancel()
        if aioice.done() or not self._pacing:
            await aioice  # done, or past its pacing loop: the completed state wakes it
            return
        aioice.cancel()  # asleep in its pacing loop, with nothing left to do there
        await asyncio.wait((aioice,))
        await self._finish()
        self.cut_short = True

    async def _finish(self) -> None:
        """The rest of aioice's `connect()` after its pacing loop, as aioice 0.13 does it."""
        connection = self._connection
        if await connection._check_list_state.get() != aioice_ice.ICE_COMPLETED:
            raise ConnectionError("ICE negotiation failed")
        for check in connection._check_list:
            if check.task:
                check.task.cancel()
        connection._query_consent_task = asyncio.create_task(connection.query_consent())
