"""Delayed SCTP acknowledgements: one SACK for every second packet (specs/transport.md §6.5).

aiortc (1.16) answers every packet that carries DATA with a SACK of its own. RFC 4960 §6.2 asks
for less: a SACK for at least every second such packet, and within 200 ms of any DATA not yet
acknowledged, but at once when the packet shows a gap or a duplicate (the sender's fast
retransmit counts those reports). Browsers' SCTP (usrsctp) does so. The sender pays for every
SACK it gets (DTLS decryption, parsing, bookkeeping, then a transmit step): about a third of
its time in a bulk transfer (a profile of raw aiortc's sender), so halving them saves it about
a sixth, and the receiver the SACKs it no longer sends.

`DelayedSack.install(sctp)` wraps aiortc's `RTCSctpTransport._send_sack`, the one call its
receive step (`_handle_data`) makes after a packet with DATA:

- a gap (TSNs received out of order), the packet that fills it, or a duplicate: the SACK goes
  at once, as before, and so it does for the next `QUICK_ACKS` packets, and for the first ones
  of the association (the sender's slow start counts SACKs, not bytes);
- otherwise every second packet sends it; after the first, a SACK is due at the end of the
  event-loop turn (`call_soon`), so a lone packet is acknowledged as soon as the packets that
  arrived with it have been handled: well within the 200 ms, and without a timer.

It relies on aiortc's private attributes (`_send_sack`, `_sack_needed`, `_sack_misordered`,
`_sack_duplicates`, `_association_state`). If any is missing (another aiortc), `install` changes
nothing and returns None: the transport then acknowledges every packet, as aiortc does.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

SACK_EVERY = 2
"""Packets with DATA per SACK when nothing is missing (RFC 4960 §6.2: at least every second)."""
QUICK_ACKS = 16
"""Packets acknowledged one by one at the start and after a gap or a duplicate (quick acks, as
Linux TCP does): the sender's slow start grows its window by at most one packet per SACK, so
delayed SACKs would slow its recovery after a loss."""
_REQUIRED = ("_sack_needed", "_sack_misordered", "_sack_duplicates", "_association_state")


class DelayedSack:
    """The SACK policy of one SCTP association; `install` puts it in place."""

    __slots__ = (
        "_flush_due",
        "_flushes",
        "_quick",
        "_sctp",
        "_send_now",
        "_unacknowledged",
        "packets",
        "sacks",
    )

    def __init__(self, sctp: Any, send_now: Callable[[], Awaitable[None]]) -> None:
        self._sctp = sctp
        self._send_now = send_now
        self._unacknowledged = 0
        self._flush_due = False
        self._quick = QUICK_ACKS  # packets still to acknowledge one by one
        self._flushes: set[asyncio.Task[None]] = set()
        self.packets = 0
        """Packets with DATA that asked for a SACK."""
        self.sacks = 0
        """SACKs sent."""

    @classmethod
    def install(cls, sctp: Any) -> DelayedSack | None:
        """Wrap `sctp`'s SACK sending; None (and nothing changed) if aiortc is not as expected."""
        send_now = getattr(sctp, "_send_sack", None)
        if not inspect.iscoroutinefunction(send_now) or not all(
            hasattr(sctp, name) for name in _REQUIRED
        ):
            return None
        assert send_now is not None
        policy = cls(sctp, send_now)
        sctp._send_sack = policy._on_packet
        return policy

    async def _on_packet(self) -> None:
        """aiortc's receive step handled a packet with DATA (or FORWARD TSN)."""
        self.packets += 1
        self._unacknowledged += 1
        sctp = self._sctp
        if sctp._sack_misordered or sctp._sack_duplicates:
            self._quick = QUICK_ACKS  # so also the packet that fills the gap, and those after
        if self._quick or self._unacknowledged >= SACK_EVERY:
            self._quick = max(0, self._quick - 1)
            await self._send()
        elif not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def _send(self) -> None:
        self._unacknowledged = 0
        self.sacks += 1
        await self._send_now()

    def _flush(self) -> None:
        """The end of the turn: a SACK for what is still unacknowledged."""
        self._flush_due = False
        if not self._sctp._sack_needed or self._closed():
            return
        task = asyncio.get_running_loop().create_task(self._send_if_needed())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _send_if_needed(self) -> None:
        if not self._sctp._sack_needed or self._closed():
            return  # a packet in the meantime sent it, or the association ended
        with contextlib.suppress(ConnectionError):  # DTLS closed under us: nothing to acknowledge
            await self._send()

    def _closed(self) -> bool:
        state = self._sctp._association_state
        return getattr(state, "name", "") == "CLOSED"
