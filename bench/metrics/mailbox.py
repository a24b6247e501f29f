"""The mailbox through a local Nostr relay (issue 25): delivery time and throughput.

mailbox_delivery    one text, `MailboxRoute.post` (outbox, ratchet, NIP-59 wrap, commit, publish)
                    until an online receiver (`MailboxRoute.collect(until=...)`, subscribed
                    beforehand) has kept it (opened, ratchet, committed), against a raw
                    publish -> subscribe of one event on the same relay: a gift wrap made
                    before the clock starts, sent as ready-made JSON on one websocket and
                    received on another that subscribed beforehand (bench/relay_baseline.py:
                    the relay and the network path alone). Median of 10 samples of each per
                    repetition (3 in --quick).
mailbox_throughput  1,000 texts (100 in --quick) sent as one burst (`MailboxRoute.post_many`:
                    the outbox rows in one transaction, sealed in batches of one transaction
                    each, every batch committed before it leaves, published without waiting
                    for each OK in turn) and all kept by the online receiver, against raw
                    event throughput: as many ready-made wraps sent back to back on one
                    websocket and all received on the other. (Until issue 25's bench work the
                    texts were posted one at a time, each waiting for the relay's OK.)
mailbox_delivery_wrap_alike, mailbox_throughput_wrap_alike
                    for comparison, no target: the same didlink figures against a client that
                    pays the envelope too: `seal_wrap` of a payload of a didlink frame's size in
                    the timed window, `RelayPool.publish` (waiting for each OK), the subscriber's
                    `next` and `open_wrap`. What is left of the ratio is didlink's own work (the
                    outbox, the ratchet, the store's transactions, the alias keys).

Both systems use the same relay process (`nostr-relay`, the tests' relay: bench/nostr_relay.py);
each didlink sample uses a fresh pair of persistent sessions (fresh alias keys), and each
baseline sample a fresh recipient key, so no sample reads another's events. Receipts are not
counted (they go after the text was kept).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench import relay_baseline
from bench.suite import Metric, Probe, Samples, System
from didlink.mailbox.local_relay import LocalRelay

DELIVERY = Metric(
    "mailbox_delivery",
    "ms",
    "raw publish -> subscribe of one event",
    "<= 2.0",
    "one text sent -> kept by an online receiver through a local relay",
)
THROUGHPUT = Metric(
    "mailbox_throughput",
    "texts/s",
    "raw event throughput",
    ">= 0.5",
    "a burst of texts sent (pipelined) and kept by an online receiver",
)
DELIVERY_ALIKE = Metric(
    "mailbox_delivery_wrap_alike",
    "ms",
    "seal -> publish -> subscribe -> open of one gift wrap",
    "",
)
THROUGHPUT_ALIKE = Metric(
    "mailbox_throughput_wrap_alike",
    "texts/s",
    "gift wraps sealed, published one after the other, received and opened",
    "",
)
TEXT = "x" * 100
SAMPLES = 10
QUICK_SAMPLES = 3
COUNT = 1000
QUICK_COUNT = 100
WAIT = 120.0

_relay: LocalRelay | None = None
_folder: Path | None = None


def _setup(quick: bool) -> None:
    global _relay, _folder
    _folder = Path(tempfile.mkdtemp(prefix="didlink-bench-mailbox-"))
    _relay = LocalRelay(_folder / "relay")
    _relay.start()
    _relay.wait_ready(time.monotonic() + 30)


def _teardown() -> None:
    global _relay, _folder
    if _relay is not None:
        _relay.stop()
    if _folder is not None:
        shutil.rmtree(_folder, ignore_errors=True)
    _relay, _folder = None, None


class _Pair:
    """Alice and Bob: stores with each other's contact and a fresh persistent session."""

    def __init__(self, folder: Path, url: str) -> None:
        from didlink.mailbox.route import MailboxRoute
        from didlink.mailbox.store import MailboxStore
        from didlink.profile.outbox import Outbox
        from didlink.profile.sealing import Sealer
        from didlink.profile.settings import Settings
        from didlink.profile.store import Store
        from identity.keys import IdentityKey
        from messaging.mailbox import new_session_state
        from transport.nostr_relay import RelayLimits

        folder.mkdir(parents=True)
        now = datetime.now(UTC)
        keys = [IdentityKey.generate(), IdentityKey.generate()]
        seed = os.urandom(32)
        bob_ratchet = X25519PrivateKey.generate()
        results = [
            _Result(seed, bob_ratchet.public_key().public_bytes_raw(), None),
            _Result(seed, None, bob_ratchet.private_bytes_raw()),
        ]
        self.routes: list[MailboxRoute] = []
        self.stores: list[Store] = []
        self.dids = [key.did for key in keys]
        limits = RelayLimits(publish_timeout=30.0, max_events_before_eose=5000)
        for index, key in enumerate(keys):
            store = Store(folder / f"{index}.sqlite3")
            sealer = Sealer(key)
            other = self.dids[1 - index]
            store.add_contact(other, now=now)
            box = MailboxStore(store, sealer)
            box.install_session(other, new_session_state(results[index]), now=now)
            settings = Settings(store, sealer)
            self.stores.append(store)
            self.routes.append(
                MailboxRoute(box, Outbox(store, sealer), settings, [url], limits=limits)
            )

    def close(self) -> None:
        for store in self.stores:
            store.close()


class _Result:
    def __init__(self, seed: bytes, peer: bytes | None, own: bytes | None) -> None:
        self.handshake_hash = hashlib.sha256(seed + b"h").digest()
        self.ratchet_seed = hashlib.sha256(seed + b"sk").digest()
        self.peer_ratchet_public = peer
        self.own_ratchet_private = own


async def _didlink(url: str, folder: Path, count: int) -> float:
    """Seconds from the first post until the receiver kept `count` texts."""
    pair = _Pair(folder, url)
    alice, bob = pair.routes
    kept_at: list[float] = []

    def until(done: object) -> bool:
        texts = getattr(done, "texts", 0)
        if texts >= count and not kept_at:
            kept_at.append(time.perf_counter())
        return texts >= count

    try:
        async with alice, bob:
            receiver = asyncio.create_task(bob.collect(timeout=WAIT, until=until))
            await _subscribed(bob)
            started = time.perf_counter()
            if count == 1:
                posted = [await alice.post(pair.dids[1], TEXT)]
            else:
                posted = await alice.post_many(pair.dids[1], [TEXT] * count)
            if not all(accepted for _mid, accepted in posted):
                raise RuntimeError("the relay did not accept a text")
            await receiver
    finally:
        pair.close()
    if not kept_at:
        raise RuntimeError("the receiver did not keep every text in time")
    return kept_at[0] - started


async def _subscribed(route: object) -> None:
    """Until the route's subscription has had the relay's EOSE (it is live from then on)."""
    pool = route._pool  # type: ignore[attr-defined]
    async with asyncio.timeout(WAIT):
        while not any(sub.stored_from for sub in pool.subscriptions.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.001)


async def _wrap_alike(url: str, count: int) -> float:
    """Seconds from the first seal until `count` wraps were published, received and opened."""
    from transport.nostr_envelope import open_wrap, seal_wrap
    from transport.nostr_event import public_key_of
    from transport.nostr_relay import RelayLimits, RelayPool

    sender, recipient = os.urandom(32), os.urandom(32)
    recipient_pub = public_key_of(recipient)
    payload = os.urandom(265)  # the size of a didlink frame of a 100-byte text
    limits = RelayLimits(publish_timeout=30.0, max_events_before_eose=5000)
    async with RelayPool([url], limits=limits) as alice, RelayPool([url], limits=limits) as bob:
        since = int(time.time()) - 3 * 86400
        inbox = await bob.subscribe(recipients=[recipient_pub], since=since)
        async with asyncio.timeout(WAIT):
            while not inbox.stored_from:  # noqa: ASYNC110
                await asyncio.sleep(0.001)

        async def receive() -> None:
            for _ in range(count):
                event = await inbox.next(WAIT)
                open_wrap(event, recipient_secret=recipient, now=int(time.time()))

        receiver = asyncio.create_task(receive())
        started = time.perf_counter()
        for _ in range(count):
            await alice.publish(seal_wrap(payload, sender_secret=sender, recipient=recipient_pub))
        await receiver
        return time.perf_counter() - started


def _raw(url: str, count: int) -> float:
    """Seconds for `count` ready-made wraps from one raw websocket to another (relay_baseline)."""
    recipient, wraps = relay_baseline.make_wraps(count)
    return asyncio.run(relay_baseline.publish_and_count(url, recipient, wraps))


def _didlink_sample(url: str, count: int) -> float:
    assert _folder is not None
    folder = Path(tempfile.mkdtemp(dir=_folder)) / "pair"
    return asyncio.run(_didlink(url, folder, count))


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _measure(system: System, quick: bool) -> Samples:
    assert _relay is not None and _folder is not None
    url = _relay.url
    count = QUICK_COUNT if quick else COUNT
    samples = QUICK_SAMPLES if quick else SAMPLES
    if system == "didlink":
        delivery = _median([_didlink_sample(url, 1) for _ in range(samples)]) * 1000
        throughput = count / _didlink_sample(url, count)
        return {
            DELIVERY.name: delivery,
            THROUGHPUT.name: throughput,
            DELIVERY_ALIKE.name: delivery,
            THROUGHPUT_ALIKE.name: throughput,
        }
    return {
        DELIVERY.name: _median([_raw(url, 1) for _ in range(samples)]) * 1000,
        THROUGHPUT.name: count / _raw(url, count),
        DELIVERY_ALIKE.name: _median([asyncio.run(_wrap_alike(url, 1)) for _ in range(samples)])
        * 1000,
        THROUGHPUT_ALIKE.name: count / asyncio.run(_wrap_alike(url, count)),
    }


PROBE = Probe(
    "mailbox",
    (DELIVERY, THROUGHPUT, DELIVERY_ALIKE, THROUGHPUT_ALIKE),
    _measure,
    _setup,
    _teardown,
)
