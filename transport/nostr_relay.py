"""A small NIP-01 client for a pool of Nostr relays: publish gift wraps, subscribe to ours.

Theory of operation (specs/mailbox.md §5):

- One `_Relay` per URL runs one task: connect (websockets), (re)send every open subscription's
  REQ, read messages until the connection ends, then wait an exponential backoff with jitter
  and connect again, until the pool is closed.
- `RelayPool.publish` sends ["EVENT", wrap] to every relay and waits (bounded) for their "OK";
  success is at least one relay that accepted it (a "duplicate:" refusal counts as accepted: the
  relay has it). OKs are matched to events by event id, so publishes may overlap:
  `PublishWindow` sends event after event without waiting for the OKs of the ones before, with
  at most `size` of them unanswered (a relay answers in its own order, or not at all: each
  event has its own timeout); once an event was accepted by no relay it sends no more.
- `RelayPool.subscribe` opens one subscription (kind 1059, `#p` = our keys, `since`) on every
  relay; events come out of it once each (deduplicated by id across relays), and only after
  the checks below.
- A relay is never trusted: each message is bounded in size (the websocket's `max_size`, no
  compression), parsed strictly, and an EVENT is handed up only if it is a gift wrap addressed
  to one of the subscription's keys, inside its `since`, not expired, with a valid id and
  signature (nostr-sdk). Garbage, events not meant for us, NOTICE and CLOSED are counted; past
  a bound, or past `max_events_before_eose` stored events, the connection is dropped and the
  relay waits out a backoff like any broken one.

- While the pool runs, `on_state` hears each relay's connection open and end, and `add` /
  `remove` change its relays (the daemon follows the profile's relay list: specs/mailbox.md §14).

Hand-written over `websockets` rather than nostr-sdk's `Client`: see specs/mailbox.md §5.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from transport.errors import (
    EnvelopeError,
    PublishFailed,
    RelayError,
    TransportTimeout,
    TransportUsageError,
)
from transport.nostr_envelope import (
    GIFT_WRAP_KIND,
    MAX_NIP44_PAYLOAD_CHARS,
    check_wrap,
    recipient_of,
)
from transport.nostr_event import NostrEvent, loads_strict, parse_event, verify_event

log = logging.getLogger(__name__)

PUBLISH_WINDOW = 64
"""How many published events may wait for their relays' OKs at once (PublishWindow)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RelayLimits:
    """Bounds on what one relay may make us do. The defaults suit real relays; tests shrink
    the timeouts."""

    max_message_bytes: int = 128 * 1024
    max_events_before_eose: int = 2000
    max_bad_messages: int = 16
    """Garbage, unverifiable events, events not meant for us, unknown or unsolicited messages,
    NOTICE and CLOSED, per connection, before we hang up."""
    open_timeout: float = 10.0
    close_timeout: float = 2.0
    publish_timeout: float = 10.0
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    max_seen_ids: int = 65_536
    queue_capacity: int = 256


@dataclass(slots=True)
class RelayCounters:
    """What one relay did to us since the pool started (for tests, logs and `status`)."""

    connects: int = 0
    failures: int = 0
    events_delivered: int = 0
    duplicates: int = 0
    bad_messages: int = 0
    hangups: int = 0


@dataclass(frozen=True, slots=True)
class PublishResult:
    accepted: tuple[str, ...]
    refused: dict[str, str]


class _Misbehaved(Exception):
    """A relay crossed one of the RelayLimits bounds: hang up."""


class _SeenIds:
    """A bounded set of event ids (oldest forgotten first)."""

    def __init__(self, capacity: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


class Subscription:
    """Gift wraps addressed to a set of keys, from every relay of a pool, each once."""

    def __init__(
        self,
        pool: RelayPool,
        *,
        recipients: frozenset[bytes],
        since: int | None,
        limits: RelayLimits,
    ) -> None:
        self.sub_id = secrets.token_hex(8)
        self.recipients = recipients
        self.since = since
        self._pool = pool
        self._queue: asyncio.Queue[NostrEvent] = asyncio.Queue(limits.queue_capacity)
        self._seen = _SeenIds(limits.max_seen_ids)
        self._max_events = limits.max_events_before_eose
        self._closed = asyncio.Event()
        self._wake = asyncio.Event()  # set when an event was queued or the subscription closed
        self._stored_from: set[str] = set()  # relays that sent EOSE (all stored events sent)
        self._stored_changed = asyncio.Event()

    def request(self) -> list[Any]:
        nostr_filter: dict[str, Any] = {
            "kinds": [GIFT_WRAP_KIND],
            "#p": sorted(key.hex() for key in self.recipients),
            "limit": self._max_events,
        }
        if self.since is not None:
            nostr_filter["since"] = self.since
        return ["REQ", self.sub_id, nostr_filter]

    def wants(self, event: NostrEvent, *, now: int) -> bool:
        """Is this verified-shape event a live gift wrap for us, inside our filter?"""
        try:
            check_wrap(event, now=now)
            recipient = recipient_of(event)
        except EnvelopeError:
            return False
        return recipient in self.recipients and (
            self.since is None or event.created_at >= self.since
        )

    def seen(self, event_id: str) -> bool:
        return event_id in self._seen

    async def deliver(self, event: NostrEvent) -> None:
        """Queue a new event; waits while the queue is full (backpressure on the relay that sent
        it) unless the subscription is closed meanwhile."""
        if self._closed.is_set():
            return
        self._seen.add(event.id)
        putter = asyncio.ensure_future(self._queue.put(event))
        closer = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({putter, closer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            putter.cancel()
            closer.cancel()
            self._wake.set()

    async def next(self, timeout: float) -> NostrEvent:  # noqa: ASYNC109 - typed timeout error
        """The next new gift wrap; TransportTimeout after `timeout` seconds, RelayError once the
        subscription (or its pool) is closed and nothing is left in it."""
        try:
            async with asyncio.timeout(timeout):
                event = await self._get()
        except TimeoutError as exc:
            raise TransportTimeout(f"no gift wrap within {timeout} s") from exc
        if event is None:
            raise RelayError("the subscription is closed")
        return event

    def queued(self, limit: int) -> list[NostrEvent]:
        """Up to `limit` new gift wraps already waiting, without waiting for more."""
        events: list[NostrEvent] = []
        while len(events) < limit and not self._queue.empty():
            events.append(self._queue.get_nowait())
        return events

    def __aiter__(self) -> AsyncIterator[NostrEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[NostrEvent]:
        while (event := await self._get()) is not None:
            yield event

    async def _get(self) -> NostrEvent | None:
        # Waiting on an Event consumes nothing: a timeout or cancellation of the reader can
        # never lose an event (a getter task could take one from the queue and then be
        # cancelled with it: a text lost until the next fetch).
        while True:
            if not self._queue.empty():
                return self._queue.get_nowait()
            if self._closed.is_set():
                return None
            self._wake.clear()
            await self._wake.wait()

    def mark_stored(self, url: str) -> None:
        """`url` sent EOSE: every stored event it had for us was handed to `deliver` before."""
        self._stored_from.add(url)
        self._stored_changed.set()

    @property
    def stored_from(self) -> frozenset[str]:
        """The relays that have sent every stored event they had for this subscription."""
        return frozenset(self._stored_from)

    async def wait_stored(self, relays: int, timeout: float) -> frozenset[str]:  # noqa: ASYNC109
        """Until `relays` relays sent EOSE, or `timeout` seconds passed; the relays that did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._stored_from) < relays and not self._closed.is_set():
            self._stored_changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._stored_changed.wait()
        return self.stored_from

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def close(self) -> None:
        """Stop this subscription on every relay; what it already queued can still be read."""
        self._closed.set()
        self._wake.set()
        await self._pool._unsubscribe(self)


@dataclass(slots=True)
class _Connection:
    """Per-connection state of one relay (reset on every reconnect)."""

    ws: Any
    bad: int = 0
    good: int = 0
    before_eose: dict[str, int] = field(default_factory=dict)
    eose: set[str] = field(default_factory=set)


class _Relay:
    def __init__(self, url: str, pool: RelayPool) -> None:
        self.url = url
        self.counters = RelayCounters()
        self._pool = pool
        self._limits = pool.limits
        self._conn: _Connection | None = None
        self._connected = asyncio.Event()
        self._pending_ok: dict[str, asyncio.Future[tuple[bool, str]]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"nostr relay {self.url}")

    async def stop(self) -> None:
        conn = self._conn
        if conn is not None:  # the websocket's closing handshake (1000), bounded
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._limits.close_timeout):
                    await conn.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def _backoff(self, attempt: int) -> float:
        growth: float = 2.0 ** min(attempt, 32)
        ceiling = min(self._limits.backoff_max, self._limits.backoff_initial * growth)
        return ceiling * (0.5 + 0.5 * self._pool.rng.random())  # "equal jitter"

    async def _run(self) -> None:
        from websockets.asyncio.client import connect  # lazy: relays only
        from websockets.exceptions import WebSocketException

        attempt = 0
        while True:
            conn: _Connection | None = None
            try:
                async with connect(
                    self.url,
                    max_size=self._limits.max_message_bytes,
                    compression=None,
                    proxy=None,
                    open_timeout=self._limits.open_timeout,
                    close_timeout=self._limits.close_timeout,
                    max_queue=16,
                    user_agent_header=None,
                ) as ws:
                    conn = _Connection(ws=ws)
                    self._conn = conn
                    self.counters.connects += 1
                    self._connected.set()
                    self._pool.relay_state(self.url, up=True)
                    for sub in list(self._pool.subscriptions.values()):
                        await ws.send(json.dumps(sub.request()))
                    try:
                        async for message in ws:
                            await self._handle(conn, message)
                    except _Misbehaved:
                        # No closing handshake with a relay that lies: its close frame may sit
                        # behind everything it flooded us with. Drop the TCP connection.
                        ws.transport.abort()
                        raise
            except asyncio.CancelledError:
                raise
            except _Misbehaved as exc:
                self.counters.hangups += 1
                log.info("relay %s: hung up: %s", self.url, exc)
            except (OSError, TimeoutError, WebSocketException) as exc:
                self.counters.failures += 1
                log.debug("relay %s: %s", self.url, exc)
            except Exception as exc:  # never let one relay's surprise end its task for good
                self.counters.failures += 1
                log.warning("relay %s: unexpected %s: %s", self.url, type(exc).__name__, exc)
            finally:
                if self._conn is not None:
                    self._pool.relay_state(self.url, up=False)
                self._conn = None
                self._connected.clear()
                for future in self._pending_ok.values():
                    if not future.done():
                        future.set_result((False, "connection lost"))
            # A relay that served us well and then closed starts its backoff afresh; one that
            # misbehaved or never answered keeps doubling.
            attempt = 0 if conn is not None and conn.good > 0 and conn.bad == 0 else attempt + 1
            await asyncio.sleep(self._backoff(attempt))

    def _bad(self, conn: _Connection, why: str) -> None:
        conn.bad += 1
        self.counters.bad_messages += 1
        log.debug("relay %s: %s", self.url, why)
        if conn.bad > self._limits.max_bad_messages:
            raise _Misbehaved(f"more than {self._limits.max_bad_messages} bad messages")

    async def _handle(self, conn: _Connection, message: str | bytes) -> None:
        if not isinstance(message, str):
            return self._bad(conn, "binary message")
        try:
            parsed = loads_strict(message)
        except EnvelopeError:
            return self._bad(conn, "not JSON")
        if not isinstance(parsed, list) or not parsed or not isinstance(parsed[0], str):
            return self._bad(conn, "not a NIP-01 message")
        verb = parsed[0]
        if verb == "EVENT" and len(parsed) == 3 and isinstance(parsed[1], str):
            await self._on_event(conn, parsed[1], parsed[2])
        elif verb == "OK" and len(parsed) == 4 and isinstance(parsed[1], str):
            self._on_ok(conn, parsed[1], parsed[2], parsed[3])
        elif verb == "EOSE" and len(parsed) == 2 and isinstance(parsed[1], str):
            conn.eose.add(parsed[1])
            conn.good += 1
            sub = self._pool.subscriptions.get(parsed[1])
            if sub is not None:
                sub.mark_stored(self.url)
        elif verb in ("NOTICE", "CLOSED", "AUTH"):
            # A CLOSED subscription is asked for again on the next connection.
            self._bad(conn, f"{verb}: {str(parsed[1:])[:200]}")
        else:
            self._bad(conn, f"unknown message {verb[:16]!r}")

    async def _on_event(self, conn: _Connection, sub_id: str, obj: object) -> None:
        sub = self._pool.subscriptions.get(sub_id)
        if sub is None:
            return self._bad(conn, "event for no open subscription")
        if sub_id not in conn.eose:
            count = conn.before_eose.get(sub_id, 0) + 1
            conn.before_eose[sub_id] = count
            if count > self._limits.max_events_before_eose:
                raise _Misbehaved(f"more than {self._limits.max_events_before_eose} stored events")
        try:
            event = parse_event(obj, max_content_chars=MAX_NIP44_PAYLOAD_CHARS)
        except EnvelopeError:
            return self._bad(conn, "malformed event")
        if sub.seen(event.id):
            self.counters.duplicates += 1
            conn.good += 1
            return None
        if not sub.wants(event, now=int(self._pool.clock())):
            return self._bad(conn, "event not meant for us")
        try:
            verify_event(event)
        except EnvelopeError:
            return self._bad(conn, "event does not verify")
        conn.good += 1
        self.counters.events_delivered += 1
        await sub.deliver(event)
        return None

    def _on_ok(self, conn: _Connection, event_id: str, accepted: object, note: object) -> None:
        future = self._pending_ok.get(event_id)
        if future is None or not isinstance(accepted, bool) or not isinstance(note, str):
            return self._bad(conn, "unexpected OK")
        conn.good += 1
        if not future.done():
            future.set_result((accepted or note.startswith("duplicate:"), note[:200]))
        return None

    async def publish(self, event: NostrEvent, timeout: float) -> tuple[bool, str]:  # noqa: ASYNC109
        existing = self._pending_ok.get(event.id)
        if existing is not None:  # the same event is already on its way: share its answer
            try:
                async with asyncio.timeout(timeout):
                    return await asyncio.shield(existing)
            except TimeoutError:
                return False, "no answer in time"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[bool, str]] = loop.create_future()
        self._pending_ok[event.id] = future
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
                conn = self._conn
                if conn is None:
                    return False, "not connected"
                await conn.ws.send(json.dumps(["EVENT", event.to_wire()]))
                return await future
        except TimeoutError:
            return False, "no answer in time"
        except Exception as exc:  # a connection that broke while we sent
            return False, f"send failed: {type(exc).__name__}"
        finally:
            if self._pending_ok.get(event.id) is future:
                del self._pending_ok[event.id]

    async def send_json(self, message: list[Any]) -> None:
        conn = self._conn
        if conn is None:
            return  # sent on the next connection (REQ) or moot (CLOSE)
        with contextlib.suppress(Exception):
            await conn.ws.send(json.dumps(message))


class PublishWindow:
    """Pipelined publishing: `await window.submit(event, answered)` sends `event` to every relay
    as soon as fewer than `size` earlier events wait for their OKs, and calls `answered(result)`
    once a relay accepted it. Once one event was accepted by no relay (all down, all refusing,
    no answer in time) `failed` holds why, and `submit` sends nothing more (returns False): the
    caller keeps the rest for later. `await window.drain()` waits for every answer.
    `async with pool.window() as window:` cancels what is in flight if the block fails."""

    def __init__(self, pool: RelayPool, *, size: int, timeout: float | None) -> None:
        if size < 1:
            raise TransportUsageError("a publish window holds at least one event")
        self._pool = pool
        self._timeout = timeout
        self._slots = asyncio.Semaphore(size)
        self._tasks: set[asyncio.Task[None]] = set()
        self.failed: PublishFailed | None = None

    async def __aenter__(self) -> PublishWindow:
        return self

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            await self.drain()
            return
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def submit(self, event: NostrEvent, answered: Callable[[PublishResult], None]) -> bool:
        """Send `event` once the window has room; False (nothing sent) after a failure."""
        await self._slots.acquire()
        if self.failed is not None:
            self._slots.release()
            return False
        task = asyncio.create_task(self._publish(event, answered))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _publish(self, event: NostrEvent, answered: Callable[[PublishResult], None]) -> None:
        try:
            result = await self._pool.publish(event, timeout=self._timeout)
        except PublishFailed as exc:
            if self.failed is None:
                self.failed = exc
            return
        finally:
            self._slots.release()
        answered(result)

    async def drain(self) -> None:
        """Until every submitted event was answered (or timed out); an error of `answered`
        comes out here."""
        while self._tasks:
            await asyncio.gather(*self._tasks)


class RelayPool:
    """A set of relays used together. Use as `async with RelayPool([...]) as pool:`."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        limits: RelayLimits | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_state: Callable[[str, bool], None] | None = None,
    ) -> None:
        """`on_state(url, up)`: called when a relay's connection opens (True) or ends (False)."""
        if not urls:
            raise TransportUsageError("a relay pool needs at least one relay URL")
        for url in urls:
            if not url.startswith(("wss://", "ws://")):
                raise TransportUsageError(f"not a websocket URL: {url[:80]!r}")
        self.limits = limits or RelayLimits()
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        self.subscriptions: dict[str, Subscription] = {}
        self._relays = {url: _Relay(url, self) for url in dict.fromkeys(urls)}
        self._started = False
        self._on_state = on_state

    def relay_state(self, url: str, *, up: bool) -> None:
        """(From a relay's task) its connection opened or ended: tell `on_state`."""
        if self._on_state is not None:
            try:
                self._on_state(url, up)
            except Exception:  # a listener's bug must not end the relay's task
                log.exception("relay state listener failed")

    async def __aenter__(self) -> RelayPool:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._started:
            raise TransportUsageError("the relay pool is already started")
        self._started = True
        for relay in self._relays.values():
            relay.start()

    async def close(self) -> None:
        """Close every subscription and every relay connection."""
        for sub in list(self.subscriptions.values()):
            await sub.close()
        await asyncio.gather(*(relay.stop() for relay in self._relays.values()))

    def add(self, url: str) -> None:
        """Use one more relay from now on (started at once if the pool is; it sends the REQ of
        every open subscription when it connects). Nothing if the pool has it already."""
        if not url.startswith(("wss://", "ws://")):
            raise TransportUsageError(f"not a websocket URL: {url[:80]!r}")
        if url in self._relays:
            return
        relay = _Relay(url, self)
        self._relays[url] = relay
        if self._started:
            relay.start()

    async def remove(self, url: str) -> None:
        """Stop using a relay (its connection is closed); nothing if the pool does not have it.
        The last relay cannot be removed (a pool needs one)."""
        relay = self._relays.get(url)
        if relay is None:
            return
        if len(self._relays) == 1:
            raise TransportUsageError("a relay pool needs at least one relay URL")
        del self._relays[url]
        await relay.stop()

    def counters(self, url: str) -> RelayCounters:
        return self._relays[url].counters

    def connected(self) -> list[str]:
        return [url for url, relay in self._relays.items() if relay.connected]

    @property
    def urls(self) -> list[str]:
        """The pool's relay URLs (each once)."""
        return list(self._relays)

    async def publish(self, event: NostrEvent, *, timeout: float | None = None) -> PublishResult:  # noqa: ASYNC109
        """Send `event` to every relay; PublishFailed unless at least one accepted it."""
        if not self._started:
            raise TransportUsageError("start the relay pool first")
        wait = self.limits.publish_timeout if timeout is None else timeout
        urls = list(self._relays)
        answers = await asyncio.gather(*(self._relays[url].publish(event, wait) for url in urls))
        accepted = tuple(url for url, (ok, _) in zip(urls, answers, strict=True) if ok)
        refused = {url: note for url, (ok, note) in zip(urls, answers, strict=True) if not ok}
        if not accepted:
            raise PublishFailed(f"no relay accepted the event: {refused}")
        return PublishResult(accepted=accepted, refused=refused)

    def window(self, *, size: int = PUBLISH_WINDOW, timeout: float | None = None) -> PublishWindow:
        """A `PublishWindow` over this pool (at most `size` events waiting for their OKs)."""
        if not self._started:
            raise TransportUsageError("start the relay pool first")
        return PublishWindow(self, size=size, timeout=timeout)

    async def subscribe(
        self, *, recipients: Collection[bytes], since: int | None = None
    ) -> Subscription:
        """Gift wraps addressed to any of `recipients` (32-byte x-only keys).

        Relays filter on the wrap's randomised created_at, up to two days before the real
        time: pass `since` two days earlier than the moment you want to catch up from.
        """
        if not self._started:
            raise TransportUsageError("start the relay pool first")
        keys = frozenset(recipients)
        if not keys or any(not isinstance(k, bytes) or len(k) != 32 for k in keys):
            raise TransportUsageError("recipients are one or more 32-byte x-only keys")
        sub = Subscription(self, recipients=keys, since=since, limits=self.limits)
        self.subscriptions[sub.sub_id] = sub
        await asyncio.gather(*(relay.send_json(sub.request()) for relay in self._relays.values()))
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        if self.subscriptions.pop(sub.sub_id, None) is not None:
            await asyncio.gather(
                *(relay.send_json(["CLOSE", sub.sub_id]) for relay in self._relays.values())
            )
