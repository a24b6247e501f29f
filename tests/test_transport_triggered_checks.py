"""A check from the peer restarts our own check of that pair (transport/triggered_checks.py,
specs/transport.md 6.13, RFC 8445 section 7.3.1.4).

A real aioice `Connection` with a stand-in socket (`_Socket`) whose requests never get an
answer, as when the first check was dropped on the way (by a TURN server without permission
yet: tests/e2e/test_nat_lab.py, bench/metrics/nat.py): the pair is In-Progress. An incoming check
on that pair must start a new check at once (the old one cancelled), once per pair, whatever
the candidates' types; pairs in other states are aioice's own business.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aioice
from aioice import stun
from aioice.ice import CandidatePair

from transport.triggered_checks import TriggeredChecks

PEER = ("203.0.113.7", 40000)


class _Socket:
    """A stand-in for aioice's StunProtocol: records requests, answers none, sends nothing."""

    def __init__(self) -> None:
        self.local_candidate = aioice.Candidate(
            foundation="a", component=1, transport="udp", priority=1, host="192.0.2.1",
            port=5000, type="host",
        )  # fmt: skip
        self.requests: list[stun.Message] = []
        self.sent: list[stun.Message] = []

    async def request(self, request: stun.Message, addr: Any, **_: Any) -> Any:
        self.requests.append(request)
        await asyncio.Event().wait()  # lost: never answered

    def send_stun(self, message: stun.Message, addr: Any) -> None:
        self.sent.append(message)


def _connection(remote_type: str = "relay") -> tuple[aioice.Connection, _Socket, CandidatePair]:
    connection = aioice.Connection(ice_controlling=False, components=1, use_ipv6=False)
    connection.remote_username, connection.remote_password = "abcd", "p" * 22
    socket = _Socket()
    remote = aioice.Candidate(
        foundation="b", component=1, transport="udp", priority=1, host=PEER[0], port=PEER[1],
        type=remote_type,
    )  # fmt: skip
    connection._remote_candidates.append(remote)
    pair = CandidatePair(socket, remote)
    connection._check_list.append(pair)
    return connection, socket, pair


def _check_from_peer() -> stun.Message:
    return stun.Message(
        message_method=stun.Method.BINDING,
        message_class=stun.Class.REQUEST,
        attributes={"PRIORITY": 1, "ICE-CONTROLLING": 1},
    )


async def _in_progress(connection: aioice.Connection, pair: CandidatePair) -> asyncio.Task[None]:
    connection.check_state(pair, CandidatePair.State.WAITING)
    connection.check_start_task(pair)
    await asyncio.sleep(0)
    assert pair.state == CandidatePair.State.IN_PROGRESS
    assert pair.task is not None
    return pair.task


async def test_an_incoming_check_restarts_our_check_in_progress_once() -> None:
    connection, socket, pair = _connection()
    triggered = TriggeredChecks.install(connection)
    assert triggered is not None
    first = await _in_progress(connection, pair)
    assert len(socket.requests) == 1
    try:
        connection.check_incoming(_check_from_peer(), PEER, socket)
        await asyncio.sleep(0)
        assert first.cancelled()  # the lost transaction is given up ...
        assert pair.task is not None and pair.task is not first  # ... and a new check runs
        assert pair.state == CandidatePair.State.IN_PROGRESS
        assert len(socket.requests) == 2 and triggered.triggered == 1
        second = pair.task
        # The peer retransmits its check: ours is not restarted again.
        connection.check_incoming(_check_from_peer(), PEER, socket)
        await asyncio.sleep(0)
        assert pair.task is second and not second.done()
        assert len(socket.requests) == 2 and triggered.triggered == 1
    finally:
        await connection.close()


async def test_without_the_wrapper_aioice_waits_for_its_retransmission() -> None:
    """What the wrapper changes: stock aioice leaves the In-Progress check alone."""
    connection, socket, pair = _connection()
    first = await _in_progress(connection, pair)
    try:
        connection.check_incoming(_check_from_peer(), PEER, socket)
        await asyncio.sleep(0)
        assert pair.task is first and not first.done()
        assert len(socket.requests) == 1
    finally:
        await connection.close()


async def test_a_pair_not_in_progress_is_left_to_aioice() -> None:
    """A Frozen pair gets aioice's own triggered check; nothing is cancelled or counted."""
    connection, socket, pair = _connection()
    triggered = TriggeredChecks.install(connection)
    assert triggered is not None
    try:
        connection.check_incoming(_check_from_peer(), PEER, socket)
        await asyncio.sleep(0)
        assert pair.state == CandidatePair.State.IN_PROGRESS  # aioice started it
        assert len(socket.requests) == 1 and triggered.triggered == 0
        # A check from an address that is no candidate (peer-reflexive) is aioice's too.
        connection.check_incoming(_check_from_peer(), ("198.51.100.9", 1), socket)
        await asyncio.sleep(0)
        assert triggered.triggered == 0
    finally:
        await connection.close()


async def test_a_direct_pair_in_progress_is_restarted_too() -> None:
    """A host or server-reflexive pair loses its first check across two NATs as a relayed one
    does through TURN (the offerer's router has no mapping for it yet): restarted alike."""
    connection, socket, pair = _connection(remote_type="srflx")
    triggered = TriggeredChecks.install(connection)
    assert triggered is not None
    first = await _in_progress(connection, pair)
    try:
        connection.check_incoming(_check_from_peer(), PEER, socket)
        await asyncio.sleep(0)
        assert first.cancelled() and pair.task is not first
        assert len(socket.requests) == 2 and triggered.triggered == 1
    finally:
        await connection.close()


def test_other_internals_are_left_alone() -> None:
    class NotAioice:
        def check_incoming(self, *args: Any) -> None: ...

    stranger = NotAioice()
    assert TriggeredChecks.install(stranger) is None
    assert stranger.check_incoming.__func__ is NotAioice.check_incoming  # type: ignore[attr-defined]
