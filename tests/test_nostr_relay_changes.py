"""The relay pool while it runs (specs/mailbox.md §5, §14): `on_state` reports each relay's
connection opening and ending; `add` brings a relay in (it sends the open subscriptions' REQ
when it connects, so a wrap published only there arrives); `remove` closes one. Two real relays
on loopback (tests/support/nostr_relays.py); every wait bounded."""

from __future__ import annotations

import asyncio
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
