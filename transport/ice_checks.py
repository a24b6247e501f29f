"""Connectivity checks that give up in 15.5 s, and which path the selected pair takes (§6.12).

aioice 0.13 retransmits a connectivity check on RFC 5389's default schedule: 7 sends, RTO
0.5 s doubling, 63.5 s before a check to an address that never answers fails. ICE fails only
once every check has, so a peer behind a symmetric NAT or a firewall was reported only after
the 60 s connect timeout, as a timeout. `IceChecks.install(connection)` gives each check aioice
starts without an explicit count `CHECK_RETRANSMISSIONS` retransmissions (5 sends: 0.5 + 1 + 2
+ 4 + 8 = 15.5 s), the schedule the consent checks already use (liveness.py) and about what
browsers allow a pair (libwebrtc declares a connection dead after 5 unanswered pings, 15 s).

It also keeps the XOR-MAPPED-ADDRESS of each check's success response: the address the peer saw
our check come from. aioice pairs a server-reflexive candidate through its base (the host
candidate, RFC 8445 §6.1.2.4) and drops that address, so without it the selected pair's local
candidate is "host" even behind a NAT. `path(connection)` says what our side of the nominated
pair is: "relay" (through the TURN server), "host" (the peer saw our own address), "srflx" (the
address a STUN server saw: our NAT's mapping) or "prflx" (another NAT mapping, learned from the
check only: RFC 8445 §7.2.5.3.1).

aioice keeps what this needs private: the connection's gathered sockets (`_protocols`, wrapped
once gathering is done) and its nominated pairs (`_nominated`, as liveness.py and
receive_buffer.py read them). With other internals `install` leaves the connection alone
(aioice's own timing) and `path` returns None.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

log = logging.getLogger(__name__)

CHECK_RETRANSMISSIONS = 4
PATHS = ("host", "srflx", "prflx", "relay")


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    try:
        return ipaddress.ip_address(a[0]) == ipaddress.ip_address(b[0]) and a[1] == b[1]
    except (ValueError, IndexError, TypeError):
        return False


class IceChecks:
    """Bounded connectivity checks and the mapped addresses of their answers (module doc)."""

    def __init__(self, connection: Any, retransmissions: int) -> None:
        self._connection = connection
        self._retransmissions = retransmissions
        self._mapped: dict[tuple[int, tuple[Any, ...]], tuple[Any, ...]] = {}
        self._aioice_gather = connection.gather_candidates

    @classmethod
    def install(
        cls, connection: Any, *, retransmissions: int = CHECK_RETRANSMISSIONS
    ) -> IceChecks | None:
        """Wrap `connection` (an aioice Connection); None if its internals are not as expected."""
        if not (
            callable(getattr(connection, "gather_candidates", None))
            and isinstance(getattr(connection, "_protocols", None), list)
            and isinstance(getattr(connection, "_nominated", None), dict)
        ):
            log.debug("aioice internals changed: keeping aioice's own check timing")
            return None
        checks = cls(connection, retransmissions)
        connection.gather_candidates = checks._gather_candidates
        return checks

    async def _gather_candidates(self) -> None:
        await self._aioice_gather()
        for protocol in list(self._connection._protocols):
            self._wrap(protocol)

    def _wrap(self, protocol: Any) -> None:
        aioice_request = getattr(protocol, "request", None)
        if not callable(aioice_request):
            return
        mapped = self._mapped
        limit = self._retransmissions

        async def request(
            request: Any,
            addr: tuple[Any, ...],
            integrity_key: bytes | None = None,
            retransmissions: int | None = None,
        ) -> Any:
            result = await aioice_request(
                request,
                addr,
                integrity_key=integrity_key,
                retransmissions=limit if retransmissions is None else retransmissions,
            )
            response = result[0]
            seen = getattr(response, "attributes", {}).get("XOR-MAPPED-ADDRESS")
            if isinstance(seen, tuple) and len(seen) == 2:
                mapped[(id(protocol), tuple(addr))] = seen
            return result

        protocol.request = request

    def path(self) -> str | None:
        """Our side of the nominated pair: "host", "srflx", "prflx" or "relay"; None if none."""
        connection = self._connection
        pair = next(iter(getattr(connection, "_nominated", {}).values()), None)
        local = getattr(getattr(pair, "protocol", None), "local_candidate", None)
        if pair is None or local is None:
            return None
        if local.type == "relay":
            return "relay"
        seen = self._mapped.get((id(pair.protocol), tuple(pair.remote_addr)))
        if seen is None or _same(seen, (local.host, local.port)):
            return "host"
        for candidate in connection.local_candidates:
            if candidate.type == "srflx" and _same(seen, (candidate.host, candidate.port)):
                return "srflx"
        return "prflx"
