"""Pipelined publishing (transport/nostr_relay.py `PublishWindow`, specs/mailbox.md §5): events
go out without waiting for each one's OK, at most `size` unanswered, OKs matched by event id,
against fake relays on loopback that answer out of order, drop an answer, or refuse.

Every wait is bounded; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from transport.errors import TransportUsageError
from transport.nostr_envelope import seal_wrap
from transport.nostr_event import NostrEvent, public_key_of
from transport.nostr_relay import PublishResult, RelayLimits, RelayPool

ALICE = bytes.fromhex("41" * 32)
BOB_PUB = public_key_of(bytes.fromhex("42" * 32))
FAST = RelayLimits(open_timeout=3.0, publish_timeout=3.0, backoff_initial=0.05, backoff_max=0.4)


def _wraps(count: int) -> list[NostrEvent]:
    return [
        seal_wrap(b"frame %d" % n, sender_secret=ALICE, recipient=BOB_PUB) for n in range(count)
    ]


@dataclass
class Relay:
    """What a scripted relay saw: event ids in arrival order, and the most unanswered at once."""

    url: str = ""
    received: list[str] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)
    most_unanswered: int = 0


Answer = Callable[[ServerConnection, Relay, str], Awaitable[None]]


@asynccontextmanager
async def scripted_relay(answer: Answer) -> AsyncIterator[Relay]:
    """A relay that records each EVENT and hands it to `answer(ws, relay, event_id)` (which may
    answer later, in another order, or never)."""
    relay = Relay()

    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                message = json.loads(raw)
                if message[0] == "EVENT":
                    relay.received.append(message[1]["id"])
                    unanswered = len(relay.received) - len(relay.answered)
                    relay.most_unanswered = max(relay.most_unanswered, unanswered)
                    await answer(ws, relay, message[1]["id"])

    async with serve(handler, "127.0.0.1", 0) as server:
        relay.url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
        yield relay


async def _ok(ws: ServerConnection, relay: Relay, event_id: str, ok: bool = True) -> None:
    relay.answered.add(event_id)
    await ws.send(json.dumps(["OK", event_id, ok, "" if ok else "blocked: not here"]))


async def _publish(
    urls: list[str], events: list[NostrEvent], *, size: int, wait: float = 3.0
) -> tuple[dict[str, PublishResult], list[bool], Exception | None]:
    """Submit every event through one window; (results by event id, what submit said, the
    window's failure)."""
    results: dict[str, PublishResult] = {}
    said = []
    async with RelayPool(urls, limits=FAST) as pool:
        async with asyncio.timeout(30), pool.window(size=size, timeout=wait) as window:
            for event in events:

                def take(result: PublishResult, event_id: str = event.id) -> None:
                    assert event_id not in results  # each answer once
                    results[event_id] = result

                said.append(await window.submit(event, take))
        return results, said, window.failed


async def test_oks_in_reverse_order_are_matched_by_event_id() -> None:
    events = _wraps(8)
    held: list[str] = []

    async def reverse(ws: ServerConnection, relay: Relay, event_id: str) -> None:
        held.append(event_id)
        if len(held) == len(events):  # every event arrived before any OK: pipelined
            for waiting in reversed(held):
                await _ok(ws, relay, waiting)

    async with scripted_relay(reverse) as relay:
        results, said, failed = await _publish([relay.url], events, size=8)
    assert said == [True] * 8 and failed is None
    assert relay.received == [event.id for event in events]  # sent in order
    assert set(results) == {event.id for event in events}
    assert all(result.accepted == (relay.url,) for result in results.values())


async def test_at_most_size_events_wait_for_their_ok() -> None:
    events = _wraps(12)

    async def slowly(ws: ServerConnection, relay: Relay, event_id: str) -> None:
        async def later() -> None:
            await asyncio.sleep(0.05)
            await _ok(ws, relay, event_id)

        asyncio.get_running_loop().create_task(later())

    async with scripted_relay(slowly) as relay:
        results, _said, failed = await _publish([relay.url], events, size=3)
    assert failed is None and len(results) == 12
    assert relay.most_unanswered <= 3
    assert relay.received == [event.id for event in events]


async def test_a_dropped_ok_fails_that_event_only() -> None:
    events = _wraps(6)
    dropped = events[2].id

    async def drop_one(ws: ServerConnection, relay: Relay, event_id: str) -> None:
        if event_id != dropped:
            await _ok(ws, relay, event_id)

    async with scripted_relay(drop_one) as relay:
        # the others keep flowing through the window's other slot while that one waits
        results, said, failed = await _publish([relay.url], events, size=2, wait=1.0)
        assert failed is not None and "no answer" in str(failed)
        assert said == [True] * 6
        assert set(results) == {event.id for event in events} - {dropped}
        # with one slot, nothing more is sent once it failed
        results, said, failed = await _publish(
            [relay.url], _wraps(3)[:1] + events, size=1, wait=1.0
        )
    assert failed is not None
    assert said == [True, True, True, True, False, False, False]


async def test_a_refusal_fails_that_event_only_when_no_relay_took_it() -> None:
    events = _wraps(4)
    refused = events[1].id

    async def refuse_one(ws: ServerConnection, relay: Relay, event_id: str) -> None:
        await _ok(ws, relay, event_id, ok=event_id != refused)

    async def accept(ws: ServerConnection, relay: Relay, event_id: str) -> None:
        await _ok(ws, relay, event_id)

    async with scripted_relay(refuse_one) as picky:
        results, said, failed = await _publish([picky.url], events, size=1)
        assert failed is not None and "blocked" in str(failed)
        assert refused not in results and events[0].id in results
        assert said == [True, True, False, False]
        async with scripted_relay(accept) as other:
            results, said, failed = await _publish([picky.url, other.url], events, size=4)
    assert failed is None and said == [True] * 4
    assert results[refused].accepted == (other.url,)
    assert results[refused].refused == {picky.url: "blocked: not here"}
    assert results[events[0].id].accepted == (picky.url, other.url)


async def test_an_ok_for_an_event_never_sent_is_a_bad_message() -> None:
    events = _wraps(2)

    async def stray_then_ok(ws: ServerConnection, relay: Relay, event_id: str) -> None:
        await ws.send(json.dumps(["OK", "ab" * 32, True, ""]))
        await _ok(ws, relay, event_id)

    async with scripted_relay(stray_then_ok) as relay, RelayPool([relay.url], limits=FAST) as pool:
        async with asyncio.timeout(30), pool.window(size=2) as window:
            for event in events:
                assert await window.submit(event, lambda _result: None)
        assert window.failed is None
        assert pool.counters(relay.url).bad_messages == 2


async def test_window_usage_errors() -> None:
    pool = RelayPool(["ws://127.0.0.1:9"], limits=FAST)
    with pytest.raises(TransportUsageError):
        pool.window()
    async with pool:
        with pytest.raises(TransportUsageError):
            pool.window(size=0)
