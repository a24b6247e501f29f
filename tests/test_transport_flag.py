"""transport/flag.py: `Flag` behaves as `asyncio.Event` does (both run the same scripts)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from transport.flag import Flag

KINDS = [Flag, asyncio.Event]


@pytest.mark.parametrize("kind", KINDS)
async def test_wait_returns_at_once_when_set_and_waits_when_clear(kind: type[Flag]) -> None:
    flag = kind()
    assert not flag.is_set()
    flag.set()
    assert flag.is_set() and await asyncio.wait_for(flag.wait(), 1) is True
    flag.clear()
    assert not flag.is_set()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flag.wait(), 0.01)


@pytest.mark.parametrize("kind", KINDS)
async def test_set_wakes_every_waiter_even_if_cleared_before_they_run(kind: type[Flag]) -> None:
    flag = kind()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    flag.clear()  # too late: they were woken
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
    assert not flag.is_set()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_cancelled_waiter_leaves_no_trace(kind: type[Flag]) -> None:
    flag = kind()
    cancelled = asyncio.ensure_future(flag.wait())
    kept = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    flag.set()
    assert await asyncio.wait_for(kept, 1) is True
    if isinstance(flag, Flag):
        assert flag._waiters == []


@pytest.mark.parametrize("kind", KINDS)
async def test_setting_twice_is_setting_once(kind: type[Flag]) -> None:
    flag = kind()
    waiter = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    flag.set()
    flag.set()
    assert await asyncio.wait_for(waiter, 1) is True


def test_a_flag_is_much_smaller_than_an_event() -> None:
    """What it is for: slots, and no waiter list until someone waits."""
    flag = Flag()
    assert not hasattr(flag, "__dict__")
    assert sys.getsizeof(flag) < 100
