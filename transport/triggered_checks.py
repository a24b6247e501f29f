"""A check from the peer on a pair we are still checking starts our check again (§6.13).

RFC 8445 §7.3.1.4: when a connectivity check arrives on a pair whose own check is In-Progress,
the agent cancels that transaction's retransmissions and enqueues a triggered check of the pair.
aioice 0.13 (`Connection.check_incoming`) triggers checks only on Frozen, Waiting or Failed pairs
and leaves an In-Progress one to its retransmission schedule (RTO 0.5 s, doubling).

That costs half a second whenever our first check was lost on the way, and across NATs and
TURN servers it is lost every time: the answerer starts checking as soon as it has the offer,
before the offerer has the answer. Through TURN its first check reaches the offerer's relayed
address before the offerer's allocation has a permission for it (RFC 8656 §9), and coturn
drops it. The offerer's own check then gets through (the answerer's allocation has its
permission by then) but the answerer, whose pair is In-Progress, waits out the retransmission:
through the NAT lab's TURN server, 0.5-0.6 s to connect instead of 40 ms (bench/:
turn_connect_time). Across two NATs it is the same: the answerer's first check to the
offerer's public address finds no mapping there yet (the offerer has not sent anything towards
the answerer) and the router drops it.

`TriggeredChecks.install(connection)` wraps `check_incoming` of one aioice `Connection`: after
aioice has handled the incoming check (peer-reflexive candidate, pair, nomination flag), if the
pair's own check is still In-Progress, that check's task is cancelled (its transaction goes
with it: a late answer to it is ignored, as the RFC allows) and a new check of the pair starts
at once, the triggered check. Once per pair: a peer that retransmits its check does not restart
ours again. Everything else is aioice's. With other aioice internals `install` leaves the
connection alone and returns None.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from aioice.ice import CandidatePair

log = logging.getLogger(__name__)


def _same_host(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


class TriggeredChecks:
    """`check_incoming` of one aioice `Connection` with RFC 8445's triggered check (module doc)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._aioice_check_incoming = connection.check_incoming
        self._restarted: set[int] = set()  # id() of the pairs whose check was started again
        self.triggered = 0  # checks started again (for the tests)

    @classmethod
    def install(cls, connection: Any) -> TriggeredChecks | None:
        """Wrap `connection` (an aioice Connection); None if its internals are not as expected."""
        methods = ("check_incoming", "_find_pair", "check_state", "check_start_task")
        if not (
            all(callable(getattr(connection, m, None)) for m in methods)
            and isinstance(getattr(connection, "_remote_candidates", None), list)
            and hasattr(CandidatePair, "State")
        ):
            log.debug("aioice internals changed: keeping aioice's own triggered checks")
            return None
        triggered = cls(connection)
        connection.check_incoming = triggered._check_incoming
        return triggered

    def _check_incoming(self, message: Any, addr: tuple[str, int], protocol: Any) -> None:
        self._aioice_check_incoming(message, addr, protocol)
        pair = self._pair(addr, protocol)
        if pair is None or pair.state != CandidatePair.State.IN_PROGRESS:
            return
        if id(pair) in self._restarted:
            return
        task = pair.task
        if task is None or task.done():
            return
        self._restarted.add(id(pair))
        self.triggered += 1
        task.cancel()
        pair.task = None
        self._connection.check_state(pair, CandidatePair.State.WAITING)
        self._connection.check_start_task(pair)

    def _pair(self, addr: tuple[str, int], protocol: Any) -> Any:
        """The pair of the check that just came in (found as aioice found it)."""
        for candidate in self._connection._remote_candidates:
            if candidate.port == addr[1] and _same_host(candidate.host, addr[0]):
                return self._connection._find_pair(protocol, candidate)
        return None
