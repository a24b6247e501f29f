"""The connection's larger receive buffer (transport/receive_buffer.py, specs/transport.md §6.6)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests import test_transport_peer
from transport import Peer
from transport.receive_buffer import RECEIVE_BUFFER, enlarge, nominated_sockets

pair = test_transport_peer.pair  # two open peers over loopback


def expected_grant() -> int:
    """What Linux grants for RECEIVE_BUFFER: twice the request, capped at rmem_max."""
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    return 2 * min(RECEIVE_BUFFER, rmem_max)


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 262144)  # as aioice asks
    yield sock
    sock.close()


def connection_with(*sockets: Any) -> SimpleNamespace:
    """An aioice Connection as far as `enlarge` looks: nominated pairs -> protocol -> transport."""
    pairs = {
        i: SimpleNamespace(
            protocol=SimpleNamespace(transport=SimpleNamespace(get_extra_info=lambda name, s=s: s))
        )
        for i, s in enumerate(sockets, start=1)
    }
    return SimpleNamespace(_nominated=pairs)


def test_the_nominated_socket_gets_the_larger_buffer(udp: socket.socket) -> None:
    assert enlarge(connection_with(udp)) == expected_grant()
    assert udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == expected_grant()


def test_a_larger_buffer_is_never_shrunk() -> None:
    class Big:
        set_to: int | None = None

        def getsockopt(self, level: int, option: int) -> int:
            return 8 * RECEIVE_BUFFER

        def setsockopt(self, level: int, option: int, value: int) -> None:
            self.set_to = value

    big = Big()
    assert enlarge(connection_with(big)) == 8 * RECEIVE_BUFFER
    assert big.set_to is None


def test_another_aioice_or_a_closed_socket_changes_nothing(udp: socket.socket) -> None:
    assert enlarge(SimpleNamespace()) is None  # no _nominated
    assert enlarge(SimpleNamespace(_nominated={1: SimpleNamespace()})) is None  # no protocol
    assert enlarge(connection_with(None)) is None  # the transport has no socket
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.close()
    assert enlarge(connection_with(closed)) is None
    assert enlarge(connection_with(closed, udp)) == expected_grant()  # the one that worked


def test_the_nominated_sockets_are_found_where_aioice_keeps_them(udp: socket.socket) -> None:
    assert nominated_sockets(connection_with(udp)) == [udp]
    assert nominated_sockets(connection_with(None, udp)) == [udp]  # a pair with no socket
    assert nominated_sockets(SimpleNamespace(_nominated={1: SimpleNamespace()})) == []
    assert nominated_sockets(SimpleNamespace()) is None  # another aioice


async def test_an_open_connection_has_the_larger_buffer_on_both_sides(
    pair: tuple[Peer, Peer],
) -> None:
    a, b = pair
    assert a.stats().receive_buffer == b.stats().receive_buffer == expected_grant()
