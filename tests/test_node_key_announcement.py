"""The node announces its new ratchet key after a receive step that leaves nothing to send
(didlink/session/node.py `_after_frames`, specs/frames.md section 4a): two real nodes over real
WebRTC on this machine (tests/faults/node_pair.py, through a relay that changes nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from didlink.jsonl import SendText
from messaging.ratchet import RatchetSession
from tests.faults.node_pair import Side, VerifiedPair, verified_pair
from tests.support.impair import Impairment

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[VerifiedPair]:
    async with verified_pair(Impairment(), home=tmp_path, time_limit=20) as verified:
        yield verified


def _session(side: Side) -> RatchetSession:
    channel = side.node._channel
    assert channel is not None
    return channel.session


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} within 5 s")


async def test_the_peer_holds_our_next_key_before_we_type_again(pair: VerifiedPair) -> None:
    """After alice's text and bob's receipt, bob has done the DH step for alice's next sending
    key before she types again: her next text is read without one."""
    alice, bob = pair.alice, pair.bob
    for round_, text in enumerate(["one", "two", "three"], start=1):
        alice.node.handle(SendText(text))
        await alice.sink.until(
            lambda n=round_: alice.sink.count("delivered") >= n, timeout=10, what="delivered"
        )
        await _until(  # alice's new key made, sent (announced) and taken in by bob
            lambda: (
                not _session(alice).ratchet_key_unsent
                and _session(bob)._dhr == _session(alice)._dhs_pub
            ),
            f"bob did not get alice's new key after {text!r}",
        )
    assert [m["text"] for m in bob.sink.of("message")] == ["one", "two", "three"]
