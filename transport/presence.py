"""Is the other side still there? Probes while the answerer waits for the connection (§6.11).

The answerer (`didlink accept`) has applied the offer and handed back its answer; the channel
opens only once the offerer applies that answer. If the offerer gave up meanwhile (Ctrl-C at
its paste prompt) or before the invitation was even accepted, nothing on the ICE path says so:
the answerer's connectivity checks simply go unanswered, and it would wait out its whole
connect timeout (60 s) for a side that no longer exists.

`watch_presence` asks the offer's candidate addresses directly, from a fresh *connected* UDP
socket each: one STUN Binding request without credentials every `interval` seconds. A live ICE
agent answers it (an error response: it has no MESSAGE-INTEGRITY), which is all we need to
know. A port nobody listens on any more answers with ICMP port unreachable, which the kernel
reports on a connected socket as ECONNREFUSED. Silence (a firewall, a NAT, an unreachable
address) says nothing. The other side is taken to be gone only on positive evidence: every
address refused, and none answered, in `rounds` rounds in a row. A host or a NAT that drops
the probe keeps the wait as it was (the connect timeout).

Nothing here touches aiortc or aioice: the probes leave from their own sockets, and a live ICE
agent only answers them (it neither records nor pairs an unauthenticated request).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Sequence

STUN_BINDING_REQUEST = 0x0001
STUN_MAGIC_COOKIE = 0x2112A442
PROBE_INTERVAL = 1.0  # seconds between rounds
PROBE_WAIT = 0.5  # seconds a round waits for answers
GONE_ROUNDS = 2  # rounds in a row in which every address refused


def binding_request() -> bytes:
    """A STUN Binding request (RFC 8489 §5) with no attributes and a random transaction id."""
    return (
        STUN_BINDING_REQUEST.to_bytes(2, "big")
        + (0).to_bytes(2, "big")
        + STUN_MAGIC_COOKIE.to_bytes(4, "big")
        + os.urandom(12)
    )


class _Probe(asyncio.DatagramProtocol):
    """One probe's socket: did anything answer, did the port refuse?"""

    def __init__(self) -> None:
        self.answered = False
        self.refused = False

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.answered = True

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.refused = True


async def probe_round(addresses: Sequence[tuple[str, int]], *, wait: float = PROBE_WAIT) -> str:
    """One round: "answered" if any address answered, "refused" if every one refused, else
    "unknown"."""
    loop = asyncio.get_running_loop()
    probes: list[tuple[asyncio.DatagramTransport, _Probe]] = []
    try:
        for host, port in addresses:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with contextlib.suppress(OSError):  # no route, no such interface: not an answer
                transport, probe = await loop.create_datagram_endpoint(
                    _Probe, remote_addr=(host, port), family=family
                )
                probes.append((transport, probe))
                transport.sendto(binding_request())
        if not probes:
            return "unknown"
        await asyncio.sleep(wait)
        if any(probe.answered for _, probe in probes):
            return "answered"
        if len(probes) == len(addresses) and all(probe.refused for _, probe in probes):
            return "refused"
        return "unknown"
    finally:
        for transport, _ in probes:
            transport.close()


async def watch_presence(
    addresses: Sequence[tuple[str, int]],
    *,
    waiting: Callable[[], bool],
    interval: float = PROBE_INTERVAL,
    rounds: int = GONE_ROUNDS,
) -> bool:
    """Probe `addresses` while `waiting()`; True once the other side is gone (every address
    refused in `rounds` rounds in a row), False when the wait ended first."""
    refused = 0
    while waiting():
        verdict = await probe_round(addresses)
        refused = refused + 1 if verdict == "refused" else 0
        if refused >= rounds:
            return waiting()
        await asyncio.sleep(interval)
    return False
