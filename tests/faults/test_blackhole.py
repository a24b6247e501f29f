"""Liveness (specs/transport.md §6.4): a dead path ends both peers with a typed error, never a
hang, and a slow or quiet path that still works is never mistaken for a dead one.

Every case runs two real `Peer`s through the user-space relay of tests/support/impair.py, with
the liveness timers shortened (defaults: keepalive 5 s, idle 60 s, consent 5 s / 30 s) so each
takes seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aioice.ice
import pytest

from tests.faults.stack import connect_peers
from tests.support.impair import Impairment, UdpRelay
from transport import Liveness, Peer, PeerClosed, PeerState, Role
from transport.liveness import ConsentFreshness

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]

NEVER = 1000.0  # a timer that cannot fire during a test


MakePair = Callable[..., Awaitable["Pair"]]


class Pair:
    """Two open peers through a relay whose impairment a test can change mid-way."""

    def __init__(self, liveness: Liveness, impairment: Impairment) -> None:
        self.offerer = Peer(role=Role.OFFERER, liveness=liveness)
        self.answerer = Peer(role=Role.ANSWERER, liveness=liveness)
        self.impairment = impairment
        self.relay: UdpRelay | None = None

    def go_silent(self) -> None:
        object.__setattr__(self.impairment, "loss", 0.999999)

    async def both_end_with_peer_closed(self, within: float) -> None:
        for peer in (self.offerer, self.answerer):
            with pytest.raises(PeerClosed):
                await peer.recv(timeout=within)
            assert peer.state is PeerState.FAILED


@pytest.fixture
async def make_pair() -> AsyncIterator[MakePair]:
    pairs: list[Pair] = []

    async def make(liveness: Liveness, impairment: Impairment | None = None) -> Pair:
        pair = Pair(liveness, impairment or Impairment(seed=7))
        pairs.append(pair)
        pair.relay = await connect_peers(
            pair.offerer, pair.answerer, impairment=pair.impairment, time_limit=30
        )
        await pair.offerer.send(b"before")
        assert await pair.answerer.recv(timeout=10) == b"before"
        return pair

    yield make
    for pair in pairs:
        if pair.relay is not None:
            pair.relay.close()
        async with asyncio.timeout(20):
            await asyncio.gather(pair.offerer.close(), pair.answerer.close())


async def test_a_silent_path_loses_consent_on_both_sides(make_pair: MakePair) -> None:
    liveness = Liveness(
        consent_interval=0.3, consent_timeout=2.0, keepalive=1.0, idle_timeout=NEVER
    )
    pair = await make_pair(liveness)
    pair.go_silent()
    started = time.monotonic()
    await pair.both_end_with_peer_closed(within=20)
    assert time.monotonic() - started < 15


async def test_a_silent_path_that_ice_never_reports_ends_by_the_idle_timeout(
    make_pair: MakePair,
) -> None:
    """Consent cannot fire here (as in the 20 % loss run where no failure ever reached us)."""
    liveness = Liveness(
        consent_interval=NEVER / 2, consent_timeout=NEVER, keepalive=0.2, idle_timeout=1.5
    )
    pair = await make_pair(liveness)
    pair.go_silent()
    started = time.monotonic()
    await pair.both_end_with_peer_closed(within=20)
    assert time.monotonic() - started < 10


async def test_a_quiet_healthy_connection_stays_open(make_pair: MakePair) -> None:
    """Nobody sends for several idle timeouts: keepalives and consent keep the session."""
    liveness = Liveness(consent_interval=0.3, consent_timeout=1.5, keepalive=0.2, idle_timeout=1.0)
    pair = await make_pair(liveness)
    await asyncio.sleep(4.0)
    assert pair.offerer.state is PeerState.OPEN and pair.answerer.state is PeerState.OPEN
    await pair.answerer.send(b"after")
    assert await pair.offerer.recv(timeout=5) == b"after"


async def test_slow_consent_responses_keep_consent(make_pair: MakePair) -> None:
    """A 0.8 s round trip: each response comes after aioice's 0.5 s but well within RFC 7675's
    30 s, so our consent holds where aioice's own checks would close the connection."""
    liveness = Liveness(
        consent_interval=0.3, consent_timeout=3.0, keepalive=0.5, idle_timeout=NEVER
    )
    pair = await make_pair(liveness, Impairment(delay=0.4, seed=7))
    await asyncio.sleep(6.0)
    assert pair.offerer.state is PeerState.OPEN and pair.answerer.state is PeerState.OPEN


async def test_aioice_alone_drops_the_same_slow_path(
    make_pair: MakePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the test above: with aioice's consent checks left in place, the same
    path loses consent (so that test shows our checks, not a lenient relay)."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.3)
    monkeypatch.setattr(
        ConsentFreshness, "attach", classmethod(lambda cls, connection, liveness: None)
    )
    liveness = Liveness(keepalive=0.5, idle_timeout=NEVER)
    pair = await make_pair(liveness, Impairment(delay=0.4, seed=7))
    await pair.both_end_with_peer_closed(within=20)
