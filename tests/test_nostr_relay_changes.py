"""The relay pool while it runs (specs/mailbox.md §5, §14): `on_state` reports each relay's
connection opening and ending; `add` brings a relay in (it sends the open subscriptions' REQ
when it connects, so a wrap published only there arrives); `remove` closes one. Two real relays
on loopback (tests/support/nostr_relays.py); every wait bounded."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from tests.support.nostr_relays import local_relays
from transport.errors import TransportUsageError
from transport.nostr_envelope import seal_wrap
from transport.nostr_event import public_key_of
from transport.nostr_relay import RelayLimits, RelayPool

ALICE = bytes.fromhex("41" * 32)
BOB_PUB = public_key_of(bytes.fromhex("42" * 32))
FAST = RelayLimits(open_timeout=3.0, publish_timeout=3.0, backoff_initial=0.05, backoff_max=0.4)
SINCE = int(time.time()) - 3 * 86400


async def test_state_changes_and_relays_added_and_removed_while_running(tmp_path: Path) -> None:
    with local_relays(tmp_path, 2) as relays:
        first, second = (relay.url for relay in relays)
        states: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()

        def on_state(url: str, up: bool) -> None:
            states.put_nowait((url, up))

        async with asyncio.timeout(60):
            async with RelayPool([first], limits=FAST, on_state=on_state) as bob:
                assert await states.get() == (first, True)
                inbox = await bob.subscribe(recipients=[BOB_PUB], since=SINCE)
                bob.add(second)
                bob.add(second)  # once
                assert bob.urls == [first, second]
                assert await states.get() == (second, True)
                # A wrap published to the added relay only reaches the open subscription.
                wrap = seal_wrap(b"late relay", sender_secret=ALICE, recipient=BOB_PUB)
                async with RelayPool([second], limits=FAST) as alice:
                    await alice.publish(wrap)
                assert (await inbox.next(timeout=30)).id == wrap.id
                await bob.remove(first)
                assert await states.get() == (first, False)
                assert bob.urls == [second]
                with pytest.raises(TransportUsageError):
                    await bob.remove(second)  # a pool keeps one relay
                await bob.remove("wss://not.in.the.pool")  # nothing
                with pytest.raises(TransportUsageError):
                    bob.add("https://not.a.websocket")
                relays[1].stop()
                assert await states.get() == (second, False)


async def test_a_failing_state_listener_does_not_stop_the_relay(tmp_path: Path) -> None:
    with local_relays(tmp_path, 1) as relays:
        calls: list[bool] = []

        def on_state(url: str, up: bool) -> None:
            calls.append(up)
            raise RuntimeError("listener bug")

        async with (
            asyncio.timeout(60),
            RelayPool([relays[0].url], limits=FAST, on_state=on_state) as pool,
        ):
            while not calls:  # noqa: ASYNC110 - bounded by the timeout above
                await asyncio.sleep(0.02)
            wrap = seal_wrap(b"still works", sender_secret=ALICE, recipient=BOB_PUB)
            result = await pool.publish(wrap)
            assert result.accepted == (relays[0].url,)


async def test_an_event_delivered_as_the_reader_times_out_is_not_lost() -> None:
    """The reader's timeout fires in the same turn of the loop as the delivery (the loop was
    blocked past the deadline, as by a slow signature check): the event waits for the next
    read instead of vanishing with the cancelled one."""
    from transport.errors import TransportTimeout
    from transport.nostr_relay import Subscription

    pool = RelayPool(["ws://127.0.0.1:9"], limits=FAST)
    sub = Subscription(pool, recipients=frozenset({BOB_PUB}), since=None, limits=FAST)
    wrap = seal_wrap(b"just in time", sender_secret=ALICE, recipient=BOB_PUB)

    async def late() -> None:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # noqa: ASYNC251 - the loop blocked past the reader's deadline
        await sub.deliver(wrap)

    async with asyncio.timeout(10):
        delivering = asyncio.create_task(late())
        with pytest.raises(TransportTimeout):
            await sub.next(timeout=0.1)
        await delivering
        assert (await sub.next(timeout=1)).id == wrap.id


async def test_closing_the_pool_closes_each_connection_cleanly() -> None:
    """`close` ends every connection with the websocket closing handshake (1000), not a
    dropped task's 1011 (a daemon stopped by SIGTERM leaves its relays cleanly)."""
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    codes: list[int | None] = []
    connected = asyncio.Event()

    async def relay(ws: ServerConnection) -> None:
        connected.set()
        with contextlib.suppress(ConnectionClosed):  # (an abrupt end: its code is recorded)
            async for _message in ws:
                pass
        codes.append(ws.close_code)

    async with asyncio.timeout(20), serve(relay, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        pool = RelayPool([f"ws://127.0.0.1:{port}"], limits=FAST)
        pool.start()
        await connected.wait()
        while not pool.connected():  # noqa: ASYNC110 - (the client's side of the handshake)
            await asyncio.sleep(0.01)
        await pool.close()
        while not codes:  # noqa: ASYNC110 - bounded by the timeout above
            await asyncio.sleep(0.01)
    assert codes == [1000]
