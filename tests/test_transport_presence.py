"""transport/presence.py: is the offerer still there while the answerer waits (§6.11)?"""

from __future__ import annotations

import asyncio
import socket
from typing import cast

import pytest

from transport.presence import STUN_MAGIC_COOKIE, binding_request, probe_round, watch_presence


def test_the_probe_is_a_stun_binding_request() -> None:
    request = binding_request()
    assert len(request) == 20
    assert request[:4] == b"\x00\x01\x00\x00"  # Binding request, no attributes
    assert int.from_bytes(request[4:8], "big") == STUN_MAGIC_COOKIE
    assert binding_request()[8:] != request[8:]  # a fresh transaction id each time


class _Answerer(asyncio.DatagramProtocol):
    """A stand-in for a live ICE agent: it answers whatever arrives."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.transport.sendto(b"\x01\x11" + data[2:], addr)  # a Binding error response


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nobody listens there


@pytest.mark.timeout(20)
async def test_a_live_agent_answers_and_a_closed_port_refuses() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Answerer, local_addr=("127.0.0.1", 0))
    try:
        live = transport.get_extra_info("sockname")[1]
        closed = _closed_port()
        assert await probe_round([("127.0.0.1", live)]) == "answered"
        assert await probe_round([("127.0.0.1", closed)]) == "refused"
        # one live address is enough: the other side is there
        assert await probe_round([("127.0.0.1", closed), ("127.0.0.1", live)]) == "answered"
        # an address that neither answers nor refuses (a firewall, a NAT) says nothing
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            quiet = ("127.0.0.1", silent.getsockname()[1])
            assert await probe_round([("127.0.0.1", closed), quiet]) == "unknown"
        gone = await asyncio.wait_for(
            watch_presence([("127.0.0.1", closed)], waiting=lambda: True, interval=0.05), 10
        )
        assert gone is True
        there = asyncio.create_task(
            watch_presence([("127.0.0.1", live)], waiting=lambda: True, interval=0.05)
        )
        await asyncio.sleep(1.5)
        assert not there.done()  # it keeps watching while the other side answers
        there.cancel()
        assert await watch_presence([("127.0.0.1", closed)], waiting=lambda: False) is False
    finally:
        transport.close()
