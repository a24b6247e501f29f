"""A path that goes silent after the channel opened surfaces as a typed error, never a hang.

The relay starts dropping every datagram once both peers are open. aioice's consent freshness
checks (RFC 7675) then fail; after CONSENT_FAILURES of them the ICE connection closes and both
`Peer`s must end in FAILED with `recv` raising PeerClosed. The consent interval is shortened
(it is 5 s in aioice) so the test takes seconds.
"""

from __future__ import annotations

import asyncio

import aioice.ice
import pytest

from tests.faults.stack import connect_peers
from tests.support.impair import Impairment
from transport import Peer, PeerClosed, PeerState, Role

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]


async def test_a_silent_path_ends_both_peers_with_a_typed_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.3)
    offerer, answerer = Peer(role=Role.OFFERER), Peer(role=Role.ANSWERER)
    impairment = Impairment(loss=0.0, delay=0.0, seed=7)
    relay = await connect_peers(offerer, answerer, impairment=impairment, time_limit=20)
    assert relay is not None
    try:
        await offerer.send(b"before")
        assert await answerer.recv(timeout=10) == b"before"
        object.__setattr__(impairment, "loss", 0.999999)  # the path goes silent
        for peer in (offerer, answerer):
            with pytest.raises(PeerClosed):
                await peer.recv(timeout=30)
            assert peer.state is PeerState.FAILED
    finally:
        relay.close()
        async with asyncio.timeout(20):
            await asyncio.gather(offerer.close(), answerer.close())
