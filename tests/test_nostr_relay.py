"""The relay client (specs/mailbox.md §5) against two real relays on loopback (the nostr-relay
package, tests/support/nostr_relays.py) and against small fake relays that lie.

Every wait is bounded; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.support import nostr_forge as forge
from tests.support.nostr_relays import LocalRelay, local_relays
from transport.errors import PublishFailed, RelayError, TransportTimeout, TransportUsageError
from transport.nostr_envelope import open_wrap, seal_wrap
from transport.nostr_event import NostrEvent, public_key_of
from transport.nostr_relay import RelayLimits, RelayPool

ALICE = bytes.fromhex("41" * 32)
BOB = bytes.fromhex("42" * 32)
CAROL = bytes.fromhex("43" * 32)
BOB_PUB = public_key_of(BOB)
FAST = RelayLimits(open_timeout=3.0, publish_timeout=3.0, backoff_initial=0.05, backoff_max=0.4)
SINCE = int(time.time()) - 3 * 86400  # wraps are dated up to two days back (NIP-59)


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[LocalRelay]]:
    with local_relays(tmp_path, 2) as started:
        yield started


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Poll `condition` (counters and connection state have no event to wait on), bounded."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def _wrap(payload: bytes = b"frame", recipient: bytes = BOB_PUB) -> NostrEvent:
    return seal_wrap(payload, sender_secret=ALICE, recipient=recipient)


# --- real relays ---------------------------------------------------------------------------


async def test_publish_to_both_receive_once(relays: list[LocalRelay]) -> None:
    urls = [relay.url for relay in relays]
    async with RelayPool(urls, limits=FAST) as bob, RelayPool(urls, limits=FAST) as alice:
        inbox = await bob.subscribe(recipients=[BOB_PUB], since=SINCE)
        await _until(lambda: len(bob.connected()) == 2)
        wrap = _wrap(b"hello bob")
        result = await alice.publish(wrap)
        assert set(result.accepted) == set(urls)
        received = await inbox.next(10)
        assert received.id == wrap.id
        assert (
            open_wrap(received, recipient_secret=BOB, now=int(time.time())).payload == b"hello bob"
        )
        # the second relay's copy arrives and is dropped as a duplicate
        await _until(lambda: sum(bob.counters(url).duplicates for url in urls) >= 1)
        with pytest.raises(TransportTimeout):
            await inbox.next(0.5)
        # publishing the same event again is harmless ("duplicate:" counts as accepted)
        assert set((await alice.publish(wrap)).accepted) == set(urls)
        with pytest.raises(TransportTimeout):
            await inbox.next(0.5)


async def test_stored_wraps_reach_a_late_subscriber(relays: list[LocalRelay]) -> None:
    urls = [relay.url for relay in relays]
    async with RelayPool(urls, limits=FAST) as alice:
        sent = [_wrap(f"message {i}".encode()) for i in range(3)]
        for wrap in sent:
            await alice.publish(wrap)
    async with RelayPool(urls, limits=FAST) as bob:
        inbox = await bob.subscribe(recipients=[BOB_PUB], since=SINCE)
        got = {(await inbox.next(10)).id for _ in sent}
        assert got == {wrap.id for wrap in sent}
        with pytest.raises(TransportTimeout):
            await inbox.next(0.5)
        # a subscription for another key sees none of them
        other = await bob.subscribe(recipients=[public_key_of(CAROL)], since=SINCE)
        with pytest.raises(TransportTimeout):
            await other.next(0.5)


async def test_one_relay_down(relays: list[LocalRelay]) -> None:
    up, down = relays
    down.stop()
    urls = [up.url, down.url]
    async with RelayPool(urls, limits=FAST) as bob, RelayPool(urls, limits=FAST) as alice:
        inbox = await bob.subscribe(recipients=[BOB_PUB], since=SINCE)
        result = await alice.publish(_wrap(b"via the other relay"), timeout=2.0)
        assert result.accepted == (up.url,)
        assert down.url in result.refused
        received = await inbox.next(10)
        assert open_wrap(received, recipient_secret=BOB, now=int(time.time())).payload == (
            b"via the other relay"
        )
        assert bob.counters(down.url).failures >= 1


async def test_reconnects_and_resubscribes(relays: list[LocalRelay]) -> None:
    relay = relays[0]
    relay.stop()
    async with RelayPool([relay.url], limits=FAST) as bob:
        inbox = await bob.subscribe(recipients=[BOB_PUB], since=SINCE)
        await _until(lambda: bob.counters(relay.url).failures >= 2)
        relay.start()
        relay.wait_ready(time.monotonic() + 30)
        await _until(lambda: relay.url in bob.connected(), within=15)
        async with RelayPool([relay.url], limits=FAST) as alice:
            wrap = _wrap(b"after the outage")
            await alice.publish(wrap)
        assert (await inbox.next(10)).id == wrap.id


async def test_publish_fails_when_no_relay_is_up(relays: list[LocalRelay]) -> None:
    for relay in relays:
        relay.stop()
    async with RelayPool([r.url for r in relays], limits=FAST) as alice:
        with pytest.raises(PublishFailed):
            await alice.publish(_wrap(), timeout=1.0)


async def test_relay_databases_hold_no_plaintext_and_no_sender_key(
    relays: list[LocalRelay],
) -> None:
    """After a conversation (Alice <-> Bob, and Carol who only ever sends), each relay's whole
    database holds the wraps but none of the texts (raw, base64 or hex) and no sender's key:
    Carol's key appears nowhere, and Alice's and Bob's only as the addressee of wraps to them."""
    urls = [relay.url for relay in relays]
    texts = [f"secret message number {i} about the plan".encode() for i in range(4)]
    sent: list[NostrEvent] = []
    async with RelayPool(urls, limits=FAST) as pool:
        for text in texts:
            for sender, recipient in ((ALICE, BOB), (BOB, ALICE), (CAROL, BOB)):
                wrap = seal_wrap(text, sender_secret=sender, recipient=public_key_of(recipient))
                await pool.publish(wrap)
                sent.append(wrap)
    for relay in relays:
        relay.stop()  # everything the relay kept is now in its files
        disk = relay.database_bytes()
        # not vacuous: the relay stored every wrap
        assert all(w.id.encode() in disk or bytes.fromhex(w.id) in disk for w in sent)
        for text in texts:
            for form in (text, base64.b64encode(text), text.hex().encode()):
                assert form not in disk
        carol = public_key_of(CAROL)
        assert carol.hex().encode() not in disk
        assert carol not in disk
        assert base64.b64encode(carol) not in disk
        # each wrap is signed by its own fresh key: no author repeats
        assert len({w.pubkey for w in sent}) == len(sent)


# --- fake relays that lie ------------------------------------------------------------------

Script = Callable[[ServerConnection, str], Awaitable[None]]


@asynccontextmanager
async def fake_relay(on_req: Script, *, ok: bool | None = True) -> AsyncIterator[str]:
    """A websocket server that runs `on_req(ws, sub_id)` for each REQ and answers EVENTs with
    OK (`ok`) or never (`ok=None`)."""
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        async for raw in ws:
            message = json.loads(raw)
            if message[0] == "REQ":
                await on_req(ws, message[1])
            elif message[0] == "EVENT" and ok is not None:
                await ws.send(json.dumps(["OK", message[1]["id"], ok, "" if ok else "blocked: no"]))

    async with serve(handler, "127.0.0.1", 0, max_size=2**22) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def _expired() -> dict[str, Any]:
    return forge.wrap(sender_secret=ALICE, recipient=BOB_PUB, expiration=int(time.time()) - 10)


async def test_garbage_and_events_not_for_us_are_dropped() -> None:
    good = _wrap(b"the one real message")
    bad_sig = {**_wrap().to_wire()}
    bad_sig["sig"] = "0" * 128
    bad_id = {**_wrap().to_wire(), "content": _wrap().content}
    lies: list[Any] = [
        "this is not json",
        b"\x00\x01binary",
        json.dumps({"not": "a list"}),
        json.dumps(["EVENT"]),
        json.dumps(["EVENT", "wrong-sub", good.to_wire()]),
        json.dumps(["WHAT", 1]),
        json.dumps(["NOTICE", "you are being rate limited"]),
        json.dumps(["CLOSED", "some-sub", "error: shutting down"]),
        json.dumps(["AUTH", "challenge"]),
        json.dumps(["OK", "00" * 32, True, ""]),  # for nothing we published
        "SUB:EVENT:"
        + json.dumps(  # older than the subscription's `since`
            forge.wrap(
                sender_secret=ALICE,
                recipient=BOB_PUB,
                created_at=SINCE - 100,
                expiration=int(time.time()) + 86400,
            )
        ),
        "SUB:EVENT:" + json.dumps({"kind": 1059}),
        "SUB:EVENT:" + json.dumps(_wrap(recipient=public_key_of(CAROL)).to_wire()),  # not ours
        "SUB:EVENT:" + json.dumps(bad_sig),
        "SUB:EVENT:" + json.dumps(bad_id),
        "SUB:EVENT:" + json.dumps(_expired()),
        "SUB:EVENT:" + json.dumps({**good.to_wire(), "kind": 1}),
        "SUB:EVENT:" + json.dumps(good.to_wire()),
        "SUB:EVENT:" + json.dumps(good.to_wire()),  # a replay
        "SUB:EOSE",
    ]

    async def on_req(ws: ServerConnection, sub_id: str) -> None:
        for lie in lies:
            if isinstance(lie, str) and lie.startswith("SUB:EVENT:"):
                await ws.send(json.dumps(["EVENT", sub_id, json.loads(lie[10:])]))
            elif lie == "SUB:EOSE":
                await ws.send(json.dumps(["EOSE", sub_id]))
            else:
                await ws.send(lie)

    limits = RelayLimits(open_timeout=3.0, max_bad_messages=len(lies))
    async with fake_relay(on_req) as url, RelayPool([url], limits=limits) as bob:
        inbox = await bob.subscribe(recipients=[BOB_PUB], since=SINCE)
        assert (await inbox.next(5)).id == good.id
        with pytest.raises(TransportTimeout):
            await inbox.next(0.5)
        counters = bob.counters(url)
        assert counters.events_delivered == 1
        assert counters.duplicates == 1
        assert counters.bad_messages == len(lies) - 3  # all but the good one, its replay, EOSE
        assert counters.hangups == 0


async def test_a_relay_that_keeps_lying_is_hung_up_on_and_retried_later() -> None:
    async def on_req(ws: ServerConnection, sub_id: str) -> None:
        for _ in range(50):
            await ws.send("garbage")

    limits = RelayLimits(
        open_timeout=3.0, backoff_initial=0.05, backoff_max=0.2, max_bad_messages=4
    )
    async with fake_relay(on_req) as url, RelayPool([url], limits=limits) as bob:
        await bob.subscribe(recipients=[BOB_PUB], since=SINCE)
        await _until(lambda: bob.counters(url).hangups >= 2)
        assert bob.counters(url).connects >= 2
        assert bob.counters(url).bad_messages <= 5 * bob.counters(url).connects


async def test_too_many_stored_events_before_eose() -> None:
    wraps = [_wrap(f"{i}".encode()) for i in range(10)]

    async def on_req(ws: ServerConnection, sub_id: str) -> None:
        for wrap in wraps:
            await ws.send(json.dumps(["EVENT", sub_id, wrap.to_wire()]))
        await ws.send(json.dumps(["EOSE", sub_id]))

    limits = RelayLimits(
        open_timeout=3.0, backoff_initial=5.0, backoff_max=5.0, max_events_before_eose=4
    )
    async with fake_relay(on_req) as url, RelayPool([url], limits=limits) as bob:
        inbox = await bob.subscribe(recipients=[BOB_PUB], since=SINCE)
        await _until(lambda: bob.counters(url).hangups >= 1)
        got = []
        with pytest.raises(TransportTimeout):
            while True:
                got.append(await inbox.next(0.3))
        assert len(got) == 4


async def test_an_oversized_message_closes_the_connection() -> None:
    async def on_req(ws: ServerConnection, sub_id: str) -> None:
        await ws.send(json.dumps(["NOTICE", "x" * 300_000]))

    async with fake_relay(on_req) as url, RelayPool([url], limits=FAST) as bob:
        await bob.subscribe(recipients=[BOB_PUB], since=SINCE)
        await _until(lambda: bob.counters(url).failures >= 1 and bob.counters(url).connects >= 2)
        assert bob.counters(url).bad_messages == 0  # never parsed


async def _nothing(ws: ServerConnection, sub_id: str) -> None:
    return None


async def test_publish_refused_or_unanswered() -> None:
    async with (
        fake_relay(_nothing, ok=False) as refusing,
        fake_relay(_nothing, ok=None) as silent,
        fake_relay(_nothing, ok=True) as accepting,
    ):
        async with RelayPool([refusing, silent], limits=FAST) as pool:
            with pytest.raises(PublishFailed, match="blocked"):
                await pool.publish(_wrap(), timeout=1.0)
        async with RelayPool([refusing, silent, accepting], limits=FAST) as pool:
            result = await pool.publish(_wrap(), timeout=1.0)
            assert result.accepted == (accepting,)
            assert set(result.refused) == {refusing, silent}
            assert "no answer" in result.refused[silent]


async def test_closing_ends_waiting_and_iteration() -> None:
    good = _wrap(b"one")
    requests: list[str] = []

    async def on_req(ws: ServerConnection, sub_id: str) -> None:
        requests.append(sub_id)
        if len(requests) == 1:  # the second subscription gets nothing
            await ws.send(json.dumps(["EVENT", sub_id, good.to_wire()]))
        await ws.send(json.dumps(["EOSE", sub_id]))

    async with fake_relay(on_req) as url:
        pool = RelayPool([url], limits=FAST)
        async with pool:
            inbox = await pool.subscribe(recipients=[BOB_PUB], since=SINCE)
            await _until(lambda: pool.counters(url).events_delivered == 1)
            waiting = asyncio.create_task(_drain(inbox))
            await asyncio.sleep(0.1)
            assert not waiting.done()
            await inbox.close()
            assert await asyncio.wait_for(waiting, 5) == [good.id]  # queued before close
            with pytest.raises(RelayError):
                await inbox.next(1)
            other = await pool.subscribe(recipients=[BOB_PUB], since=SINCE)
            pending = asyncio.create_task(other.next(30))
            await _until(lambda: len(requests) == 2)
            await asyncio.sleep(0.1)
            assert not pending.done()
        # closing the pool closes its subscriptions: a waiter wakes with RelayError
        with pytest.raises(RelayError):
            await asyncio.wait_for(pending, 5)


async def _drain(inbox: Any) -> list[str]:
    return [event.id async for event in inbox]


def test_backoff_grows_with_jitter_up_to_a_ceiling() -> None:
    import random

    pool = RelayPool(
        ["ws://127.0.0.1:9"],
        limits=RelayLimits(backoff_initial=0.5, backoff_max=60.0),
        rng=random.Random(7),
    )
    relay = next(iter(pool._relays.values()))
    for attempt in range(12):
        ceiling = min(60.0, 0.5 * 2**attempt)
        delays = [relay._backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 40  # jittered
    assert relay._backoff(10_000) <= 60.0


async def test_pool_usage_errors() -> None:
    with pytest.raises(TransportUsageError):
        RelayPool([])
    with pytest.raises(TransportUsageError):
        RelayPool(["http://127.0.0.1:1"])
    pool = RelayPool(["ws://127.0.0.1:9"], limits=FAST)
    with pytest.raises(TransportUsageError):
        await pool.publish(_wrap())
    async with pool:
        with pytest.raises(TransportUsageError):
            await pool.subscribe(recipients=[])
        with pytest.raises(TransportUsageError):
            await pool.subscribe(recipients=[b"short"])


async def test_a_reader_cancelled_as_an_event_arrives_loses_nothing() -> None:
    """A `next` whose timeout (or cancellation) lands in the loop turn in which an event was
    queued for it leaves that event for the next reader (once a getter task took it with it)."""
    from transport.nostr_relay import Subscription

    pool = RelayPool(["ws://127.0.0.1:9"], limits=FAST)
    events = [_wrap(b"%d" % n) for n in range(20)]
    for event in events:
        sub = Subscription(pool, recipients=frozenset({BOB_PUB}), since=None, limits=FAST)
        reader = asyncio.create_task(sub.next(30))
        await asyncio.sleep(0)  # the reader waits on the empty queue
        await sub.deliver(event)
        reader.cancel()
        got = None
        with contextlib.suppress(asyncio.CancelledError):
            got = await reader
        if got is None:  # cancelled before it read: the event waits in the subscription
            got = await sub.next(1)
        assert got.id == event.id
