"""ICE completion noticed at once (transport/prompt_ice.py, specs/transport.md 6.8).

Two kinds of test: a pair of real aioice connections on this machine's own addresses (the
check list completes with the first nominated check, and `connect()` returns without waiting out
aioice's pacing tick), and a stand-in with aioice's `connect()` structure whose tick never ends,
for each outcome: cut short, failure, cancellation, completion aioice notices itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aioice
import pytest
from aioice import ice as aioice_ice

from transport.prompt_ice import PromptIce

pytestmark = pytest.mark.asyncio

TIMEOUT = 10.0


async def _real_pair() -> tuple[aioice.Connection, aioice.Connection]:
    """A controlling and a controlled aioice connection with each other's host candidates."""
    a = aioice.Connection(ice_controlling=True, components=1, use_ipv6=False)
    b = aioice.Connection(ice_controlling=False, components=1, use_ipv6=False)
    await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    for local, remote in ((a, b), (b, a)):
        for candidate in remote.local_candidates:
            await local.add_remote_candidate(candidate)
        await local.add_remote_candidate(None)
        local.remote_username, local.remote_password = remote.local_username, remote.local_password
    return a, b


async def test_real_ice_returns_when_the_check_list_completes() -> None:
    """Both sides connect and carry data; consent checks run as aioice starts them; and on a
    connect whose check completed inside aioice's 20 ms tick (the usual case here: three tries
    so that a slow moment of the machine cannot fail the test) `connect()` returned at once."""
    cut_short = []
    for _ in range(3):
        a, b = await _real_pair()
        prompts = [PromptIce.install(a), PromptIce.install(b)]
        assert None not in prompts
        try:
            async with asyncio.timeout(TIMEOUT):
                await asyncio.gather(a.connect(), b.connect())
                await a.send(b"ping")
                assert await b.recv() == b"ping"
                await b.send(b"pong")
                assert await a.recv() == b"pong"
            for connection in (a, b):
                consent = connection._query_consent_task
                assert isinstance(consent, asyncio.Task) and not consent.done()
                assert all(pair.task is None or pair.task.done() for pair in connection._check_list)
            cut_short.append(any(p.cut_short for p in prompts if p is not None))
        finally:
            await asyncio.gather(a.close(), b.close())
        if cut_short[-1]:
            break
    assert any(cut_short)


class PacedConnection:
    """aioice 0.13's `connect()` in outline, with a pacing tick that never ends on its own."""

    def __init__(self, *, fail: bool = False) -> None:
        self._check_list_state: asyncio.Queue[int] = asyncio.Queue()
        self._check_list: list[Any] = []
        self._check_list_done = False
        self._query_consent_task: asyncio.Task[None] | None = None
        self.fail = fail
        self.ticks = 0
        self.nominated = False
        self.sleeping: asyncio.Future[None] | None = None
        self.paced = asyncio.Event()  # connect() sleeps out a tick
        self.running: asyncio.Task[Any] | None = None  # the task running aioice's connect()

    def _check_periodic(self) -> bool:
        if self._check_list_done:
            return False
        self.ticks += 1
        return True

    def _check_list_maybe_complete(self) -> bool:
        if not self.nominated:
            return False
        if not self._check_list_done:
            self._check_list_state.put_nowait(aioice_ice.ICE_COMPLETED)
            self._check_list_done = True
        return True

    def nominate(self) -> bool:
        """What a check task does when its nominated check succeeds."""
        self.nominated = True
        return self._check_list_maybe_complete()

    async def connect(self) -> None:
        self.running = asyncio.current_task()
        while True:
            if not self._check_periodic():
                break
            self.sleeping = asyncio.get_running_loop().create_future()
            self.paced.set()
            await self.sleeping  # the pacing tick: only a test ends it
        result = await self._check_list_state.get()
        for pair in self._check_list:
            if pair.task:
                pair.task.cancel()
        if result != aioice_ice.ICE_COMPLETED or self.fail:
            raise ConnectionError("ICE negotiation failed")
        self._query_consent_task = asyncio.create_task(self.query_consent())

    async def query_consent(self) -> None:
        await asyncio.sleep(3600)


class Pair:
    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = asyncio.create_task(asyncio.sleep(3600))


async def _started(connection: PacedConnection) -> asyncio.Task[None]:
    task = asyncio.create_task(connection.connect())
    await connection.paced.wait()
    return task


async def test_a_completion_during_the_tick_cuts_it_short() -> None:
    connection = PacedConnection()
    pending = Pair()
    connection._check_list.append(pending)
    prompt = PromptIce.install(connection)
    assert prompt is not None
    task = await _started(connection)
    assert connection.nominate()  # a check task's success, while connect() sleeps
    async with asyncio.timeout(TIMEOUT):  # the tick never ends: only the cut returns
        await task
    assert prompt.cut_short
    assert connection.ticks == 1
    assert connection._query_consent_task is not None
    assert not connection._query_consent_task.done()
    await asyncio.sleep(0)
    assert pending.task is not None and pending.task.cancelled()  # the checks still running
    connection._query_consent_task.cancel()


async def test_a_completion_aioice_sees_itself_is_aioice_s() -> None:
    """Completed before `connect()` paced anything (early checks): no tick to cut."""
    connection = PacedConnection()
    prompt = PromptIce.install(connection)
    assert prompt is not None
    connection.nominate()
    async with asyncio.timeout(TIMEOUT):
        await connection.connect()
    assert not prompt.cut_short
    assert connection.ticks == 0
    assert connection._query_consent_task is not None
    connection._query_consent_task.cancel()


async def test_a_failure_is_raised_as_aioice_raises_it() -> None:
    connection = PacedConnection(fail=True)
    prompt = PromptIce.install(connection)
    assert prompt is not None
    connection.nominate()  # aioice completes, then fails (as after close())
    with pytest.raises(ConnectionError):
        await connection.connect()
    assert not prompt.cut_short


async def test_a_failed_state_after_the_cut_is_a_connection_error() -> None:
    """Whatever the check list state says after the cut is believed: failed means failed."""
    connection = PacedConnection()
    prompt = PromptIce.install(connection)
    assert prompt is not None
    task = await _started(connection)
    connection._check_list_state.put_nowait(aioice_ice.ICE_FAILED)  # e.g. closed
    connection._check_list_done = True
    connection.nominated = True
    connection._check_list_maybe_complete()
    with pytest.raises(ConnectionError):
        async with asyncio.timeout(TIMEOUT):
            await task
    assert connection._query_consent_task is None


async def test_cancelling_connect_cancels_aioice_s() -> None:
    connection = PacedConnection()
    assert PromptIce.install(connection) is not None
    task = await _started(connection)
    inner = connection.running
    assert inner is not None and inner is not task
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert inner.cancelled()


async def test_other_internals_are_left_alone() -> None:
    assert PromptIce.install(None) is None
    assert PromptIce.install(object()) is None
    connection = PacedConnection()
    connection._check_list_state = None  # type: ignore[assignment]
    original = connection.connect
    assert PromptIce.install(connection) is None
    assert connection.connect == original
