"""The mailbox route (didlink/mailbox/route.py, didlink/mailbox/store.py; specs/mailbox.md §10)
in one process: two profiles' stores, two real relays (the nostr-relay package on loopback)
and a relay that lies, plus the commit-then-send storage step under simulated crashes.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from didlink.mailbox.route import MailboxRoute
from didlink.mailbox.store import MailboxStore
from didlink.profile.outbox import Outbox, new_message_id
from didlink.profile.sealing import Sealer
from didlink.profile.settings import Settings
from didlink.profile.store import Store
from identity.keys import IdentityKey
from messaging.alias import epoch_at
from messaging.mailbox import MailboxText, new_session_state
from messaging.ratchet import HEADER_LEN
from tests.support.mailbox_pair import handshake_pair
from tests.support.nostr_relays import LocalRelay, local_relays
from transport.nostr_envelope import open_wrap, seal_wrap
from transport.nostr_event import public_key_of
from transport.nostr_relay import RelayLimits

FAST = RelayLimits(open_timeout=3.0, publish_timeout=3.0, backoff_initial=0.05, backoff_max=0.4)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass
class Side:
    key: IdentityKey
    store: Store
    sealer: Sealer

    @property
    def did(self) -> str:
        return self.key.did

    @property
    def box(self) -> MailboxStore:
        return MailboxStore(self.store, self.sealer)

    def route(self, urls: list[str], limits: RelayLimits = FAST) -> MailboxRoute:
        return MailboxRoute(
            self.box,
            Outbox(self.store, self.sealer),
            Settings(self.store, self.sealer),
            urls,
            limits=limits,
        )


def _pair(tmp_path: Path, seed: bytes = b"route") -> tuple[Side, Side]:
    """Alice (initiator) and Bob (responder), contacts of each other with a session."""
    sides = []
    for name in ("alice", "bob"):
        key = IdentityKey.generate()
        sides.append(Side(key, Store(tmp_path / f"{name}.sqlite3"), Sealer(key)))
    alice, bob = sides
    initiator, responder = handshake_pair(seed)
    alice.store.add_contact(bob.did, name="Bob", now=NOW)
    bob.store.add_contact(alice.did, name="Alice", now=NOW)
    alice.box.install_session(bob.did, new_session_state(initiator), now=NOW)
    bob.box.install_session(alice.did, new_session_state(responder), now=NOW)
    return alice, bob


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[LocalRelay]]:
    with local_relays(tmp_path / "relays", 2) as started:
        yield started


@asynccontextmanager
async def lying_relay(forged: list[dict[str, Any]]) -> AsyncIterator[str]:
    """Says OK to every publish and keeps nothing... except to replay it: on every REQ it
    sends garbage, each wrap it was given (twice), the `forged` events, then EOSE."""
    kept: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await serve_one(ws)

    async def serve_one(ws: ServerConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message[0] == "EVENT":
                kept.append(message[1])
                await ws.send(json.dumps(["OK", message[1]["id"], True, ""]))
            elif message[0] == "REQ":
                sub = message[1]
                await ws.send("garbage, not JSON")
                await ws.send(json.dumps(["NOTICE", "hello"]))
                for event in [*kept, *kept, *forged]:
                    await ws.send(json.dumps(["EVENT", sub, event]))
                await ws.send(json.dumps(["EOSE", sub]))

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def _texts(side: Side) -> list[str]:
    return [entry.text for entry in side.box.inbox() if entry.kind == "text"]


async def test_lying_relays_lose_nothing_and_deliver_nothing_twice(
    tmp_path: Path, relays: list[LocalRelay]
) -> None:
    alice, bob = _pair(tmp_path)
    # A wrap to Bob's receiving alias sealed by a stranger, and one to a key of nobody here.
    epoch = epoch_at(NOW.timestamp())
    bob_in = bob.box.session(alice.did)
    assert bob_in is not None
    stranger = seal_wrap(
        b"\x01" * 100,
        sender_secret=b"\x07" * 32,
        recipient=bob_in.receiving_aliases(epoch).to_public,
    )
    elsewhere = seal_wrap(b"x", sender_secret=b"\x07" * 32, recipient=public_key_of(b"\x08" * 32))
    forged = [stranger.to_wire(), elsewhere.to_wire()]
    limits = RelayLimits(
        open_timeout=3.0,
        publish_timeout=3.0,
        backoff_initial=0.05,
        backoff_max=0.4,
        max_bad_messages=64,
    )
    async with lying_relay(forged) as liar:
        urls = [relays[0].url, relays[1].url, liar]
        async with alice.route(urls, limits) as route:
            sent = [await route.post(bob.did, f"text {n}") for n in range(3)]
        assert all(accepted for _mid, accepted in sent)
        async with bob.route(urls, limits) as route:
            first = await route.collect(timeout=20)
            # the stranger's wrap is refused (the pool already dropped the copies and the wrap
            # to nobody here)
            assert first.texts == 3 and first.refused >= 1
            again = await route.collect(timeout=20)  # everything replayed: nothing new
            assert again.texts == 0 and again.duplicates >= 3
        assert _texts(bob) == ["text 0", "text 1", "text 2"]
        async with alice.route(urls, limits) as route:
            done = await route.collect(timeout=20)
        assert done.delivered == {mid for mid, _ in sent}
        assert Outbox(alice.store, alice.sealer).count(bob.did) == 0
        # one real relay down: still delivered, once
        relays[0].stop()
        async with alice.route(urls, limits) as route:
            await route.post(bob.did, "text 3")
        async with bob.route(urls, limits) as route:
            late = await route.collect(timeout=20)
        assert late.texts == 1
        assert _texts(bob) == ["text 0", "text 1", "text 2", "text 3"]


async def test_a_text_already_delivered_live_is_not_shown_again(
    tmp_path: Path, relays: list[LocalRelay]
) -> None:
    """The live route and the mailbox share the `received` ids: a text Bob got live is
    receipted by mailbox but not kept twice."""
    alice, bob = _pair(tmp_path)
    urls = [relay.url for relay in relays]
    async with alice.route(urls) as route:
        mid, _ = await route.post(bob.did, "both routes")
    Outbox(bob.store, bob.sealer).remember(alice.did, mid)  # as the live session does
    async with bob.route(urls) as route:
        done = await route.collect(timeout=20)
    assert done.texts == 0 and _texts(bob) == []
    async with alice.route(urls) as route:
        assert (await route.collect(timeout=20)).delivered == {mid}
    # the other way round: Alice's text confirmed by the live route; its wrap is dropped
    async with alice.route(urls) as route:
        other, _ = await route.post(bob.did, "live first")
        assert [w.message_id for w in alice.box.wraps(bob.did)] == [other]
        Outbox(alice.store, alice.sealer).acknowledge(other)  # the live receipt
        await route.flush(bob.did)
    assert alice.box.wraps(bob.did) == []


def _headers(side: Side, peer: str, events: list[str]) -> list[bytes]:
    """The ratchet headers of the frames inside `events` (wraps `side` sent to `peer`)."""
    session = side.box.session(peer)
    assert session is not None
    out = []
    for raw in events:
        event = json.loads(raw)
        [p] = [tag[1] for tag in event["tags"] if tag[0] == "p"]
        for epoch in range(
            epoch_at(NOW.timestamp()) - 1, epoch_at(datetime.now(UTC).timestamp()) + 2
        ):
            pair = session.sending_aliases(epoch)
            if pair.to_public.hex() == p:
                opened = open_wrap(raw, recipient_secret=pair.to_secret, now=int(time.time()))
                out.append(opened.payload[:HEADER_LEN])
    return out


class Crash(Exception):
    pass


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=12))
def test_a_crash_at_any_step_never_reuses_a_key_nor_loses_a_text(
    tmp_path_factory: pytest.TempPathFactory, plan: list[int]
) -> None:
    """The storage step of sending, with a crash (the process gone, its memory lost) before the
    commit (0), after the commit before the publish (1), after the publish (2), or none (3), then
    a restart from the store: every frame that ever left has its own message key (ratchet
    header), and every text reaches the receiver once."""
    tmp_path = tmp_path_factory.mktemp("crash")
    alice, bob = _pair(tmp_path, seed=b"crash")
    left: list[str] = []  # every wrap that reached a relay, in order
    texts = [f"message {n}" for n in range(len(plan))]

    def publish_stored() -> None:
        for wrap in alice.box.wraps(bob.did):
            if not wrap.published:
                left.append(wrap.event_json)
                alice.box.mark_published(wrap.event_id, now=NOW, receipt=wrap.message_id is None)

    for text, crash in zip(texts, plan, strict=True):
        route = alice.route(["ws://127.0.0.1:9"])
        mid = Outbox(alice.store, alice.sealer).add(bob.did, text)
        item = MailboxText(mid=mid, at=0, text=text)
        if crash == 0:
            session = alice.box.session(bob.did)
            assert session is not None
            session.seal(item)  # the frame is made, the process dies before the commit
        else:
            route._wrap(bob.did, item)
            if crash >= 2:
                publish_stored()
        # restart: whatever was not published goes now, from the store (never re-encrypted)
        publish_stored()
        for mid_, text_ in alice.box.unwrapped_texts(
            bob.did, expiring_before=0, published_before=NOW
        ):
            alice.route(["ws://127.0.0.1:9"])._wrap(
                bob.did, MailboxText(mid=mid_, at=0, text=text_)
            )
        publish_stored()
    headers = _headers(alice, bob.did, left)
    assert len(headers) == len(left) and len(set(headers)) == len(headers)
    receiver = bob.box.session(alice.did)
    assert receiver is not None
    got = []
    epoch = epoch_at(datetime.now(UTC).timestamp())
    rng = random.Random(len(plan))
    rng.shuffle(left)
    for raw in left:
        event = json.loads(raw)
        for e in (epoch - 1, epoch, epoch + 1):
            pair = receiver.receiving_aliases(e)
            if any(tag == ["p", pair.to_public.hex()] for tag in event["tags"]):
                opened = open_wrap(raw, recipient_secret=pair.to_secret, now=int(time.time()))
                item = receiver.open(opened.payload)
                assert isinstance(item, MailboxText)
                got.append(item.text)
    assert set(got) == set(texts)  # a text sent again (a new frame) is dropped by its mid


def test_two_processes_sealing_from_one_profile_never_share_a_key(tmp_path: Path) -> None:
    """Two connections to one store (two `send`s, or a `send --wait` sending receipts while
    another `send` runs), in two threads: while A holds the session (sealed, not yet
    committed), B's seal waits for the write lock and then reads A's committed state, so no two
    frames are sealed from the same state."""
    alice, bob = _pair(tmp_path, seed=b"two")
    path = alice.store.path
    inside, b_started = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def a() -> None:
        try:
            side = Side(alice.key, Store(path), alice.sealer)
            item = MailboxText(mid=bytes(16), at=0, text="from A")
            with side.box.updating(bob.did, now=NOW) as session:
                pair = session.sending_aliases(epoch_at(time.time()))
                event = seal_wrap(
                    session.seal(item), sender_secret=pair.from_secret, recipient=pair.to_public
                )
                inside.set()
                b_started.wait(10)
                time.sleep(0.3)  # B is now waiting for the lock (or would read a stale state)
                side.box.add_wrap(
                    bob.did,
                    event_id=bytes.fromhex(event.id),
                    event_json=event.to_json(),
                    expiration=int(time.time()) + 86400,
                    message_id=item.mid,
                    now=NOW,
                )
            side.store.close()
        except BaseException as exc:
            errors.append(exc)

    def b() -> None:
        try:
            inside.wait(10)
            side = Side(alice.key, Store(path), alice.sealer)
            b_started.set()
            side.route(["ws://127.0.0.1:9"])._wrap(
                bob.did, MailboxText(mid=bytes([1]) * 16, at=0, text="from B")
            )
            side.store.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    wraps = [wrap.event_json for wrap in alice.box.wraps(bob.did)]
    headers = _headers(alice, bob.did, wraps)
    assert len(headers) == 2 and len(set(headers)) == 2
    receiver = bob.box.session(alice.did)
    assert receiver is not None
    pair = receiver.receiving_aliases(epoch_at(time.time()))
    texts = []
    for raw in wraps:
        opened = open_wrap(raw, recipient_secret=pair.to_secret, now=int(time.time()))
        item = receiver.open(opened.payload)
        assert isinstance(item, MailboxText)
        texts.append(item.text)
    assert sorted(texts) == ["from A", "from B"]


async def test_a_burst_is_pipelined_and_kept_in_order(
    tmp_path: Path, relays: list[LocalRelay]
) -> None:
    """`post_many`: every text reaches the receiver once, in order, through both relays."""
    alice, bob = _pair(tmp_path, seed=b"burst")
    urls = [relay.url for relay in relays]
    texts = [f"burst {n}" for n in range(70)]  # more than one batch of seals
    async with alice.route(urls) as route:
        sent = await route.post_many(bob.did, texts)
    assert [set(accepted) for _mid, accepted in sent] == [set(urls)] * len(texts)
    assert alice.box.wraps(bob.did, unpublished=True) == []
    async with bob.route(urls) as route:
        done = await route.collect(timeout=30, until=lambda got: got.texts >= len(texts))
    assert done.texts == len(texts)
    assert _texts(bob) == texts


@asynccontextmanager
async def committed_first_relay(store_path: Path) -> AsyncIterator[list[str]]:
    """Answers OKs in reverse order, four at a time; and for every EVENT that arrives, checks
    (through its own connection to the sender's store) that its wrap was committed before."""
    import sqlite3

    arrived: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        held: list[str] = []
        with contextlib.suppress(ConnectionClosed), sqlite3.connect(store_path) as db:
            async for raw in ws:
                message = json.loads(raw)
                if message[0] != "EVENT":
                    continue
                event_id = message[1]["id"]
                row = db.execute(
                    "SELECT 1 FROM wraps WHERE event_id = ?", (bytes.fromhex(event_id),)
                ).fetchone()
                arrived.append(event_id if row is not None else "NOT COMMITTED")
                held.append(event_id)
                if len(held) == 4:
                    for waiting in reversed(held):
                        await ws.send(json.dumps(["OK", waiting, True, ""]))
                    held.clear()

    async with serve(handler, "127.0.0.1", 0) as server:
        arrived_url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
        arrived.append(arrived_url)
        yield arrived


async def test_a_burst_commits_every_wrap_before_it_leaves(tmp_path: Path) -> None:
    alice, bob = _pair(tmp_path, seed=b"commit")
    async with committed_first_relay(alice.store.path) as arrived:
        url = arrived.pop(0)
        async with alice.route([url]) as route:
            sent = await route.post_many(bob.did, [f"text {n}" for n in range(40)])
    assert len(arrived) == 40 and "NOT COMMITTED" not in arrived
    assert all(accepted == (url,) for _mid, accepted in sent)
    stored = {wrap.event_id.hex(): wrap for wrap in alice.box.wraps(bob.did)}
    assert set(arrived) == set(stored) and all(wrap.published for wrap in stored.values())


def test_a_receive_batch_keeps_the_good_and_skips_copies_and_forgeries(tmp_path: Path) -> None:
    """Wraps already queued are kept in one transaction: a copy, a wrap sealed by a stranger
    and a wrap to nobody here inside the batch change nothing and stop nothing."""
    from collections import defaultdict

    from didlink.mailbox.route import Collected

    alice, bob = _pair(tmp_path, seed=b"batch")
    sender = alice.route(["ws://127.0.0.1:9"])
    receiver = bob.route(["ws://127.0.0.1:9"])
    texts = [f"t{n}" for n in range(4)]
    outbox = Outbox(alice.store, alice.sealer)
    mids = [
        outbox.add(bob.did, text, message_id=mid)
        for mid, text in zip(sorted(new_message_id() for _ in texts), texts, strict=True)
    ]
    items = [MailboxText(mid=mid, at=0, text=text) for mid, text in zip(mids, texts, strict=True)]
    good = sender._wrap_batch(bob.did, items)
    keys = receiver._listening(bob.box.sessions())
    bob_in = bob.box.session(alice.did)
    assert bob_in is not None
    to_bob = bob_in.receiving_aliases(epoch_at(time.time())).to_public
    stranger = seal_wrap(b"\x01" * 100, sender_secret=b"\x07" * 32, recipient=to_bob)
    nobody = seal_wrap(b"x", sender_secret=b"\x07" * 32, recipient=public_key_of(b"\x08" * 32))
    done = Collected()
    receipts: dict[str, list[bytes]] = defaultdict(list)
    batch = [good[1], good[0], good[1], stranger, nobody, good[3], good[2]]
    receiver._take(batch, keys, receipts, done)
    assert done.texts == 4 and done.duplicates == 1 and done.refused == 2
    assert _texts(bob) == texts  # shown by mid: the order they were typed
    assert receipts[alice.did].count(mids[1]) == 1
    again = Collected()
    receiver._take(good, keys, receipts, again)  # all copies now: nothing new, nothing lost
    assert again.texts == 0 and again.duplicates == 4
