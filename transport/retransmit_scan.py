"""The SCTP transmit step walks the sent queue only when a chunk may await retransmission
(specs/transport.md §6.9).

aiortc's transmit step (`RTCSctpTransport._transmit`, 1.16) runs after every SACK and every
send. It first walks the whole sent queue for chunks marked for retransmission, then sends new
chunks while the congestion window allows. In a bulk transfer with the receive window of §6.7
about 700 full chunks are outstanding, so each SACK cost the sender a walk of 700 chunks in
Python that found nothing: 14 % of a sending node's busy samples in a 64 MiB transfer (py-spy).

aiortc marks chunks for retransmission in two places only: its SACK handler, when a SACK
reports gaps (a chunk reported missing three times, RFC 4960 §7.2.4), and the T3 timer's
expiry (§6.3.3). `RetransmitScan.install(sctp)` wraps those two so that they note that a mark
may exist, and the transmit step:

- while a mark may exist, aiortc's own step runs, walk included; then whether any chunk is
  still marked (a full window can leave some) is noted;
- otherwise the walk is left out, and the step sends a pending FORWARD TSN and new chunks as
  aiortc's own does when nothing is marked: there its walk sends nothing and changes nothing.

The packets and the state are those of aiortc's step (tests/test_transport_retransmit_scan.py
drives a stock and a wrapped SCTP through the same sends, SACKs and timer expiries and compares
every packet). Nothing changes on the wire.

It relies on aiortc's private transmit step and the state it reads. `install` checks, once per
process, that aiortc's `_transmit` is the one reviewed here (a fingerprint of its source) and
that chunks are marked in its two wrapped methods and nowhere else in its module; otherwise it
changes nothing and returns None, and aiortc walks its queue as before.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import time
from typing import Any

from aiortc.rtcsctptransport import USERDATA_MAX_LENGTH

REVIEWED_TRANSMIT = "aa8941d5f8f020e8b4e438e02084533dd78399da498638a013025252e5fe8115"
"""SHA-256 of the source of aiortc's `RTCSctpTransport._transmit` that the step without the
walk reproduces (aiortc 1.16). Another aiortc's step may do more: it is then left alone."""
MARKING_METHODS = ("_receive_sack_chunk", "_t3_expired")
"""aiortc's methods that mark chunks for retransmission: the ones `install` wraps to note it."""
_MARK = "._retransmit = True"
_WRAPPED = ("_transmit", *MARKING_METHODS)


def transmit_fingerprint(sctp_class: type) -> str | None:
    """The SHA-256 of the source of `sctp_class._transmit`, or None if it cannot be read."""
    try:
        source = inspect.getsource(sctp_class._transmit)  # type: ignore[attr-defined]
    except (AttributeError, OSError, TypeError):
        return None
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def marks_only_where_wrapped(sctp_class: type) -> bool:
    """Whether `sctp_class`'s module marks chunks for retransmission exactly once in each of
    `MARKING_METHODS` and nowhere else (so the wrapped methods see every mark)."""
    try:
        module = inspect.getsource(inspect.getmodule(sctp_class))  # type: ignore[arg-type]
        marking = [inspect.getsource(getattr(sctp_class, name)) for name in MARKING_METHODS]
    except (AttributeError, OSError, TypeError):
        return False
    return module.count(_MARK) == len(MARKING_METHODS) and all(
        source.count(_MARK) == 1 for source in marking
    )


@functools.cache
def reviewed(sctp_class: Any) -> bool:
    """Whether `install` may wrap an SCTP transport of `sctp_class` (read once per class: the
    sources take a few milliseconds to read)."""
    return transmit_fingerprint(sctp_class) == REVIEWED_TRANSMIT and marks_only_where_wrapped(
        sctp_class
    )


class RetransmitScan:
    """The transmit step of one SCTP association; `install` puts it in place."""

    __slots__ = ("_receive_sack_now", "_sctp", "_t3_expired_now", "_transmit_now", "may_be_marked")

    def __init__(self, sctp: Any) -> None:
        self._sctp = sctp
        self._transmit_now = sctp._transmit
        self._receive_sack_now = sctp._receive_sack_chunk
        self._t3_expired_now = sctp._t3_expired
        self.may_be_marked = True
        """False only when no chunk of the sent queue is marked for retransmission."""

    @classmethod
    def install(cls, sctp: Any) -> RetransmitScan | None:
        """Wrap `sctp`'s transmit step, SACK handler and T3 expiry; None (and nothing changed)
        if aiortc is not the one reviewed."""
        if not all(callable(getattr(sctp, name, None)) for name in _WRAPPED):
            return None
        if not reviewed(sctp.__class__):
            return None
        scan = cls(sctp)
        sctp._transmit = scan._transmit
        sctp._receive_sack_chunk = scan._on_sack
        sctp._t3_expired = scan._on_t3_expired
        return scan

    async def _on_sack(self, chunk: Any) -> None:
        """A SACK with gap reports may mark chunks (the strike rule): note it, then let aiortc
        handle the SACK (which ends with a transmit step)."""
        if chunk.gaps:
            self.may_be_marked = True
        await self._receive_sack_now(chunk)

    def _on_t3_expired(self) -> None:
        """T3 expired: aiortc marks every outstanding chunk and schedules a transmit step."""
        self.may_be_marked = True
        self._t3_expired_now()

    async def _transmit(self) -> None:
        sctp = self._sctp
        if self.may_be_marked:
            await self._transmit_now()
            self.may_be_marked = any(chunk._retransmit for chunk in sctp._sent_queue)
            return
        # aiortc's step when no chunk is marked: a pending FORWARD TSN, then new chunks.
        if sctp._forward_tsn_chunk is not None:
            await sctp._send_chunk(sctp._forward_tsn_chunk)
            sctp._forward_tsn_chunk = None
            if not sctp._t3_handle:
                sctp._t3_start()
        burst = (2 if sctp._fast_recovery_exit is not None else 4) * USERDATA_MAX_LENGTH
        cwnd = min(sctp._flight_size + burst, sctp._cwnd)
        outbound, sent = sctp._outbound_queue, sctp._sent_queue
        while outbound and sctp._flight_size < cwnd:
            chunk = outbound.popleft()
            sent.append(chunk)
            sctp._flight_size_increase(chunk)
            chunk._sent_count += 1
            chunk._sent_time = time.time()
            await sctp._send_chunk(chunk)
            if not sctp._t3_handle:
                sctp._t3_start()
