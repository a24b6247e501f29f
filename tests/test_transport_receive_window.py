"""The SCTP receive window, advertised and honoured (transport/receive_window.py, §6.7).

The window is checked against a real UDP socket (what the kernel takes before it drops), each
half against a stand-in for aiortc's SCTP transport: what a SACK advertises, which SACKs set
the peer's window, and the congestion window aiortc's transmit step sees and keeps. Then on a
real connection over loopback: a receiver that advertises a small window holds the sender to
it, and the data still arrives whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import sys
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from aiortc.rtcsctptransport import USERDATA_MAX_LENGTH
from hypothesis import given
from hypothesis import strategies as st

from tests import test_transport_peer
from tests.test_transport_peer import transfer_whole
from transport import Peer
from transport.receive_window import (
    CHUNK_PAYLOAD,
    DATAGRAM_TRUESIZE,
    SO_MEMINFO,
    ReceiveWindow,
    serial_older,
    socket_window,
)

pytestmark = pytest.mark.timeout(60)
linux = pytest.mark.skipif(sys.platform != "linux", reason="SO_MEMINFO is Linux's")

pair = test_transport_peer.pair  # two open peers over loopback
HELD = 1 << 20  # aiortc's window with nothing held for reassembly


class FakeSctp:
    """What the window reads and wraps of aiortc's RTCSctpTransport, with a log of each call."""

    def __init__(self) -> None:
        self._cwnd = 100 * CHUNK_PAYLOAD
        self._advertised_rwnd = HELD
        self._last_sacked_tsn = 1000
        self.advertised: list[int] = []  # the window each SACK carried
        self.sacks_handled: list[int] = []
        self.cwnd_seen: list[int] = []  # the congestion window each transmit step saw
        self.suspend: asyncio.Event | None = None  # a send that waits (a TURN channel bind)
        self.window: ReceiveWindow | None = None  # what `install` returned

    async def _send_sack(self) -> None:
        self.advertised.append(max(0, self._advertised_rwnd))
        if self.suspend is not None:
            await self.suspend.wait()

    async def _receive_sack_chunk(self, chunk: SimpleNamespace) -> None:
        self.sacks_handled.append(chunk.cumulative_tsn)
        self._last_sacked_tsn = chunk.cumulative_tsn
        await self._transmit()

    async def _transmit(self) -> None:
        self.cwnd_seen.append(self._cwnd)
        if self.suspend is not None:
            await self.suspend.wait()


def sack(tsn: int, window: int) -> SimpleNamespace:
    return SimpleNamespace(cumulative_tsn=tsn, advertised_rwnd=window)


@pytest.fixture
def fake() -> FakeSctp:
    sctp = FakeSctp()
    sctp.window = ReceiveWindow.install(sctp)
    assert sctp.window is not None
    return sctp


def window_of(sctp: FakeSctp) -> ReceiveWindow:
    assert sctp.window is not None
    return sctp.window


@pytest.fixture
def udp() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A receiving socket with a small buffer (128 KiB granted), and a socket sending to it."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield receiver, sender
    receiver.close()
    sender.close()


def test_the_constants_match_aiortc() -> None:
    assert CHUNK_PAYLOAD == USERDATA_MAX_LENGTH


@linux
def test_a_full_datagram_costs_the_kernel_about_what_is_assumed(
    udp: tuple[socket.socket, socket.socket],
) -> None:
    """DATAGRAM_TRUESIZE is what this kernel charges; a kernel that charged much more would
    make the window advertised too large (datagrams would be lost, as without it)."""
    receiver, sender = udp
    for _ in range(10):
        sender.sendto(os.urandom(1229), receiver.getsockname())  # DTLS record of a full chunk
    used = int.from_bytes(receiver.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 36)[:4], "little")
    assert DATAGRAM_TRUESIZE // 2 <= used / 10 <= DATAGRAM_TRUESIZE * 5 // 4


@linux
def test_the_window_fits_in_the_socket_however_it_is_read(
    udp: tuple[socket.socket, socket.socket],
) -> None:
    """With no more than the window unread, the kernel drops nothing, even though it gives
    read datagrams' memory back in batches; and the window is not far below what fits."""
    receiver, sender = udp
    receiver.settimeout(5)  # a datagram the kernel dropped never comes: a failure, not a hang
    window = ReceiveWindow(FakeSctp())
    size = window.watch(receiver)
    assert size == socket_window(receiver.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    most = size // CHUNK_PAYLOAD  # full datagrams a sender may have outstanding
    rng = random.Random(7)
    unread = 0
    for _ in range(300):
        while unread < most:
            sender.sendto(os.urandom(1229), receiver.getsockname())  # a full chunk in DTLS
            unread += 1
        for _ in range(rng.randint(1, most)):
            receiver.recv(2048)
            unread -= 1
    assert window.receive_drops == 0
    receiver.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            receiver.recv(2048)
    unread = 0
    while window.receive_drops == 0 and unread <= 4 * most:
        sender.sendto(os.urandom(1229), receiver.getsockname())
        unread += 1
    assert most < unread <= 2 * most


async def test_a_sack_advertises_at_most_the_socket_window(
    fake: FakeSctp, udp: tuple[socket.socket, socket.socket]
) -> None:
    receiver, _ = udp
    window = window_of(fake)
    await fake._send_sack()
    assert fake.advertised == [HELD]  # no socket watched yet: aiortc's own window
    size = window.watch(receiver)
    assert (
        size
        == window.window
        == socket_window(receiver.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    )
    await fake._send_sack()
    assert fake.advertised[-1] == size < HELD
    assert fake._advertised_rwnd == HELD  # aiortc's count is its own again
    fake._advertised_rwnd = 3 * CHUNK_PAYLOAD  # aiortc holds most of its 1 MiB for reassembly
    await fake._send_sack()
    assert fake.advertised[-1] == 3 * CHUNK_PAYLOAD


def test_the_socket_window_known_answers() -> None:
    assert socket_window(2 << 20) == 682 * CHUNK_PAYLOAD  # 1 MiB asked for where rmem_max allows
    assert socket_window(425_984) == 138 * CHUNK_PAYLOAD  # aioice's 256 KiB on a stock Linux
    assert socket_window(DATAGRAM_TRUESIZE) == 0


async def test_what_aiortc_counts_during_a_suspended_sack_is_kept(
    fake: FakeSctp, udp: tuple[socket.socket, socket.socket]
) -> None:
    assert window_of(fake).watch(udp[0])
    fake.suspend = asyncio.Event()
    sending = asyncio.create_task(fake._send_sack())
    await asyncio.sleep(0)
    assert fake.advertised[-1] < HELD
    fake._advertised_rwnd -= 5000  # a message's fragments arrive for reassembly meanwhile
    fake.suspend.set()
    await sending
    assert fake._advertised_rwnd == HELD - 5000


async def test_no_socket_leaves_aiortc_s_window(fake: FakeSctp) -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.close()
    window = window_of(fake)
    assert window.watch(closed) is None
    assert window.watch(None) is None
    assert window.window is None
    assert window.receive_drops is None
    await fake._send_sack()
    assert fake.advertised == [HELD]


async def test_the_peer_s_window_comes_from_sacks_not_older_than_the_last(
    fake: FakeSctp,
) -> None:
    window = window_of(fake)
    assert window.peer_window is None
    await fake._receive_sack_chunk(sack(1000, 50_000))  # the same cumulative TSN: a new report
    assert window.peer_window == 50_000
    await fake._receive_sack_chunk(sack(1010, 20_000))
    assert window.peer_window == 20_000
    await fake._receive_sack_chunk(sack(1005, 90_000))  # reordered: older than the last
    assert window.peer_window == 20_000
    assert fake.sacks_handled == [1000, 1010, 1005]  # aiortc still sees each (and drops it)


def test_tsn_order_wraps_around() -> None:
    assert serial_older(0xFFFF_FFFF, 0)
    assert serial_older(0xFFFF_FFF0, 5)
    assert not serial_older(5, 0xFFFF_FFF0)
    assert not serial_older(7, 7)
    assert serial_older(1, 2) and not serial_older(2, 1)


async def test_the_transmit_step_sees_the_peer_s_window_and_cwnd_is_kept(fake: FakeSctp) -> None:
    cwnd = fake._cwnd
    await fake._transmit()
    assert fake.cwnd_seen == [cwnd]  # no SACK yet: aiortc's congestion window alone
    await fake._receive_sack_chunk(sack(1001, 10 * CHUNK_PAYLOAD))
    assert fake.cwnd_seen[-1] == 10 * CHUNK_PAYLOAD
    assert fake._cwnd == cwnd
    await fake._receive_sack_chunk(sack(1002, 0))  # a closed window: one chunk, a probe
    assert fake.cwnd_seen[-1] == CHUNK_PAYLOAD
    await fake._receive_sack_chunk(sack(1003, 2 * cwnd))  # the congestion window is smaller
    assert fake.cwnd_seen[-1] == cwnd
    assert fake._cwnd == cwnd


@given(
    cwnd=st.integers(1, 4 << 20),
    peer_window=st.integers(0, 4 << 20),
    change=st.integers(-(4 << 20), 4 << 20),
)
def test_aiortc_s_congestion_window_survives_a_suspended_transmit(
    cwnd: int, peer_window: int, change: int
) -> None:
    """Whatever aiortc does to its window while a send is suspended is kept: growth adds to
    its own window, a cut (loss, timeout) stands as aiortc set it."""

    async def scenario() -> None:
        sctp = FakeSctp()
        sctp._cwnd = cwnd
        window = ReceiveWindow.install(sctp)
        assert window is not None
        window.peer_window = peer_window
        sctp.suspend = asyncio.Event()
        step = asyncio.create_task(sctp._transmit())
        await asyncio.sleep(0)
        seen = sctp.cwnd_seen[-1]
        assert seen == (cwnd if cwnd <= peer_window else max(peer_window, CHUNK_PAYLOAD))
        nested = asyncio.create_task(sctp._transmit())  # a SACK's step during the suspension
        await asyncio.sleep(0)
        assert sctp.cwnd_seen[-1] == seen  # still the window the first step runs with
        after = max(1, seen + change)
        sctp._cwnd = after
        sctp.suspend.set()
        await asyncio.gather(step, nested)
        assert sctp._cwnd == (cwnd + after - seen if after >= seen else after)

    asyncio.run(scenario())


def test_an_unexpected_aiortc_is_left_alone() -> None:
    class OtherSctp:
        def _transmit(self) -> None:  # not a coroutine function: some other version
            pass

    other = OtherSctp()
    method = other._transmit
    assert ReceiveWindow.install(other) is None
    assert other._transmit == method
    without = FakeSctp()
    del without._last_sacked_tsn
    sack_step = without._send_sack
    assert ReceiveWindow.install(without) is None
    assert without._send_sack == sack_step


async def test_a_real_receiver_s_window_holds_the_sender_to_it(pair: tuple[Peer, Peer]) -> None:
    small = 8 * CHUNK_PAYLOAD
    a, b = pair
    for peer in (a, b):
        assert peer._window is not None
        peer._window.window = small
    sctp = a._pc.sctp
    flights: list[int] = []
    transmit = sctp._transmit

    async def recording() -> None:
        await transmit()
        flights.append(sctp._flight_size)

    sctp._transmit = recording
    await transfer_whole(a, b, 2 << 20)
    assert a.stats().peer_window == small
    assert len(flights) > 100
    # new data only while less than the window is outstanding: at most a chunk beyond it
    assert max(flights) <= small + CHUNK_PAYLOAD
    assert sctp._cwnd > small  # the congestion window is aiortc's, never cut to the window


async def test_a_real_connection_sizes_its_window_by_its_socket(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    await transfer_whole(a, b, 1 << 20)
    for peer in (a, b):
        stats = peer.stats()
        assert stats.receive_buffer is not None
        assert stats.receive_window == socket_window(stats.receive_buffer)
        if sys.platform == "linux":
            assert stats.receive_drops is not None
    assert a.stats().peer_window == b.stats().receive_window  # nothing held for reassembly
