"""A user-space impaired network: a UDP relay with seeded loss and a fixed delay (issue 7 §3).

Why user space: this machine's kernel has no `sch_netem` (`tc qdisc add ... netem` fails with
"Specified qdisc kind is unknown") and there is no nft/iptables, so loss and delay cannot be
put on a veth pair. Instead the relay sits between two transport `Peer`s on this machine's own
address, like a symmetric NAT that also drops and delays:

    A (offerer) <--> [to_a | relay | to_b] <--> B (answerer)

`route(offer, answer)` rewrites the compact offer so that its only candidate is the relay's
`to_b` socket (B believes that is A) and the answer so that its only candidate is `to_a` (A
believes that is B). Compact offers carry no signature at the transport level, so this is a
plain rewrite; ICE checks (USERNAME, MESSAGE-INTEGRITY) do not depend on addresses and DTLS
checks the certificate fingerprint, so the connection comes up exactly as it would directly.
Each datagram from A to `to_a` is sent on from `to_b` to B's real address and vice versa; the
real addresses start as the original candidates and follow the source of what actually
arrives (a peer may check from an address it did not advertise).

Every datagram in each direction (ICE, DTLS, SCTP alike) is dropped with probability `loss`,
decided by its own `random.Random(seed)` so a run is reproducible, and the rest are sent on
after `delay` seconds (a fixed one-way delay, like `netem delay`), keeping their order.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import random
from dataclasses import dataclass, field
from typing import cast

from transport import Candidate, CandidateKind, CompactOffer

Address = tuple[str, int]


@dataclass(frozen=True)
class Impairment:
    """What the relay does to every datagram, in each direction independently."""

    loss: float = 0.0  # probability of dropping a datagram
    delay: float = 0.0  # seconds added to every datagram that is kept (one way)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss < 1.0 or self.delay < 0.0:
            raise ValueError("loss must be in [0, 1) and delay >= 0")


@dataclass
class DirectionStats:
    """Counts for one direction of the relay."""

    forwarded: int = 0
    dropped: int = 0
    bytes_forwarded: int = 0

    @property
    def observed_loss(self) -> float:
        total = self.forwarded + self.dropped
        return self.dropped / total if total else 0.0


@dataclass
class _Side(asyncio.DatagramProtocol):
    """One relay socket; hands what it receives to the relay."""

    relay: UdpRelay
    name: str
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.relay._received(self.name, data, (str(addr[0]), int(addr[1])))


@dataclass
class UdpRelay:
    """The impairing relay; `start()` it, `route()` the offer and answer, `close()` it."""

    impairment: Impairment
    host: str
    a_to_b: DirectionStats = field(default_factory=DirectionStats)
    b_to_a: DirectionStats = field(default_factory=DirectionStats)
    ignored: int = 0  # datagrams from addresses that are neither peer (none are expected)
    _sides: dict[str, _Side] = field(default_factory=dict)
    _peer: dict[str, Address | None] = field(default_factory=dict)
    _rng: dict[str, random.Random] = field(default_factory=dict)
    _pending: set[asyncio.TimerHandle] = field(default_factory=set)

    async def start(self) -> UdpRelay:
        loop = asyncio.get_running_loop()
        for index, name in enumerate(("to_a", "to_b")):
            side = _Side(self, name)
            transport, _ = await loop.create_datagram_endpoint(
                functools.partial(_same, side), local_addr=(self.host, 0)
            )
            side.transport = transport
            self._sides[name] = side
            self._peer[name] = None
            # Independent, reproducible loss decisions per direction.
            self._rng[name] = random.Random(self.impairment.seed * 2 + index)
        return self

    def address(self, name: str) -> Address:
        """The (host, port) of the relay socket `to_a` or `to_b`."""
        transport = self._sides[name].transport
        assert transport is not None
        host, port = transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def route(self, offer: CompactOffer, answer: CompactOffer | None = None) -> CompactOffer:
        """Rewrite the offer (no answer given) or the answer so that it points at the relay."""
        if answer is None:
            self._peer["to_a"] = _first_address(offer, self.host)
            return _with_candidate(offer, self.address("to_b"))
        self._peer["to_b"] = _first_address(answer, self.host)
        return _with_candidate(answer, self.address("to_a"))

    def _received(self, side: str, data: bytes, source: Address) -> None:
        other = "to_b" if side == "to_a" else "to_a"
        # Learn the peer behind this socket from what it sends (a peer-reflexive source), but
        # not from a presence probe (transport/presence.py): a bare STUN Binding request that
        # leaves from a fresh socket of its own, which would take the peer's place here (no NAT
        # or network does that) and swallow everything sent to it afterwards.
        if not _is_presence_probe(data):
            self._peer[side] = source
        target = self._peer[other]
        if target is None:
            self.ignored += 1
            return
        stats = self.a_to_b if side == "to_a" else self.b_to_a
        if self._rng[side].random() < self.impairment.loss:
            stats.dropped += 1
            return
        stats.forwarded += 1
        stats.bytes_forwarded += len(data)
        out = self._sides[other].transport
        assert out is not None
        if self.impairment.delay == 0:
            out.sendto(data, target)
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def deliver() -> None:
            assert handle is not None
            self._pending.discard(handle)
            if not out.is_closing():
                out.sendto(data, target)

        handle = loop.call_later(self.impairment.delay, deliver)
        self._pending.add(handle)

    def close(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        for side in self._sides.values():
            if side.transport is not None:
                side.transport.close()


def _is_presence_probe(data: bytes) -> bool:
    """A STUN Binding request with no attributes: the answerer's presence probe (§6.11)."""
    return len(data) == 20 and data[:4] == b"\x00\x01\x00\x00"


def _same(side: _Side) -> _Side:
    return side


def _first_address(offer: CompactOffer, host: str) -> Address:
    """The offer's candidate in the relay's address family (the one the relay can reach)."""
    family = ipaddress.ip_address(host).version
    for candidate in offer.candidates:
        if candidate.ip.version == family:
            return str(candidate.ip), candidate.port
    raise ValueError(f"the offer has no IPv{family} candidate")


def _with_candidate(offer: CompactOffer, address: Address) -> CompactOffer:
    """The same offer with one host candidate: the relay socket."""
    candidate = Candidate(
        kind=CandidateKind.HOST, ip=ipaddress.ip_address(address[0]), port=address[1]
    )
    return offer.model_copy(update={"candidates": (candidate,)})
