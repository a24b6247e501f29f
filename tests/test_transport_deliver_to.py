"""`Peer.deliver_to`: messages handed to a synchronous reader as they complete (§6.1)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest

from tests import test_transport_peer
from tests.test_transport_peer import connect
from transport import Peer, PeerClosed, PeerState, Role, TransportUsageError
from transport.framing import CHUNK_MESSAGE_SIZE

pytestmark = pytest.mark.timeout(60)

pair = test_transport_peer.pair  # the same fixture: two open peers over loopback


async def until(condition: Callable[[], bool], *, within: float = 15.0) -> None:
    """Poll `condition` (the transport has no event for it) until it holds; fail after `within`."""
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not reached within {within:g} s")


async def test_queued_messages_first_then_each_as_it_completes(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    big = os.urandom(3 * CHUNK_MESSAGE_SIZE + 5)  # reassembled from four chunks
    await a.send(b"one")
    await a.send(b"")
    await until(lambda: b.stats().receive_queue_messages == 2)
    got: list[bytes] = []
    b.deliver_to(got.append)
    assert got == [b"one", b""]  # the queue is handed over at once, in order
    assert b.stats().receive_queue_messages == b.stats().receive_queue_bytes == 0
    for message in (b"two", big, b"three"):
        await a.send(message)
    await until(lambda: len(got) == 5)
    assert got == [b"one", b"", b"two", big, b"three"]
    assert b.stats().receive_queue_messages == 0  # nothing is queued for recv
    with pytest.raises(TransportUsageError, match="already set"):
        b.deliver_to(got.append)


async def test_recv_only_reports_the_end(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    got: list[bytes] = []
    b.deliver_to(got.append)
    reader = asyncio.create_task(b.recv())
    await a.send(b"last words")
    await a.close()  # lingers until acknowledged: the receiver has them by now
    with pytest.raises(PeerClosed):
        await asyncio.wait_for(reader, timeout=10)
    assert got == [b"last words"]


async def test_credit_goes_back_so_a_small_window_does_not_stall() -> None:
    window = 128 << 10  # two 64 KiB messages: without returned credit the sender stops at 3
    a, b = Peer(role=Role.OFFERER, window=window), Peer(role=Role.ANSWERER, window=window)
    try:
        await connect(a, b)
        message = os.urandom(64 << 10)
        got: list[bytes] = []
        b.deliver_to(got.append)
        async with asyncio.timeout(20):
            for _ in range(40):  # 2.5 MiB through a 128 KiB window
                await a.send(message)
        smalls = [b"small %d" % i for i in range(5)]
        for small in smalls:  # below W/4, and the sender has plenty left: no CREDIT of their own
            await a.send(small)
        await until(lambda: len(got) == 45)
        assert got == [message] * 40 + smalls
        # Every big message was credited back; the small ones' cost is kept for later.
        await until(lambda: a.stats().send_credit == window - sum(len(m) + 1 for m in smalls))
    finally:
        await a.close()
        await b.close()


async def test_a_failing_receiver_fails_the_connection(pair: tuple[Peer, Peer]) -> None:
    a, b = pair

    def broken(message: bytes) -> None:
        raise ValueError("a bug above the transport")

    b.deliver_to(broken)
    await a.send(b"boom")
    with pytest.raises(TransportUsageError, match="receiver failed"):
        await b.recv(timeout=10)
    assert b.state is PeerState.FAILED


async def test_messages_queued_before_the_end_are_still_handed_over(
    pair: tuple[Peer, Peer],
) -> None:
    a, b = pair
    await a.send(b"before close")
    await a.close()
    await until(lambda: b.state is not PeerState.OPEN)
    got: list[bytes] = []
    b.deliver_to(got.append)
    assert got == [b"before close"]
    with pytest.raises(PeerClosed):
        await b.recv(timeout=5)
