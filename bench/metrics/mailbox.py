"""The mailbox through a local Nostr relay (issue 25): delivery time and throughput.

mailbox_delivery    one text, `MailboxRoute.post` (outbox, ratchet, NIP-59 wrap, commit, publish)
                    until an online receiver (`MailboxRoute.collect(until=...)`, subscribed
                    beforehand) has kept it (opened, ratchet, committed), against a raw
                    publish -> subscribe of one event on the same relay: `seal_wrap` of a
                    payload of the same size, `RelayPool.publish`, the subscriber's `next` and
                    `open_wrap`. Median of 10 samples of each per repetition (3 in --quick).
mailbox_throughput  1,000 texts (100 in --quick) posted one after the other (each waits for the
                    relay's OK, as `send` does) and all kept by the online receiver, against the
                    same count of raw events published one after the other and all received and
                    opened.

Both systems use the same relay process (`nostr-relay`, the tests' relay: bench/nostr_relay.py)
and the same relay client; each sample uses a fresh pair of persistent sessions (fresh alias
keys), so no sample reads another's events. Receipts are not counted (they go after the text
was kept).
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

from bench.nostr_relay import LocalRelay
from bench.suite import Metric, Probe, Samples, System

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
    "texts sent one after the other and kept by an online receiver",
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
        from didlink.mailbox import MailboxStore
        from didlink.mailbox_route import MailboxRoute
        from didlink.outbox import Outbox
        from didlink.sealing import Sealer
        from didlink.settings import Settings
        from didlink.store import Store
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
            for _ in range(count):
                _mid, accepted = await alice.post(pair.dids[1], TEXT)
                if not accepted:
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


async def _baseline(url: str, count: int) -> float:
    """Seconds from the first publish until `count` raw wraps were received and opened."""
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


def _measure(system: System, quick: bool) -> Samples:
    assert _relay is not None and _folder is not None
    url = _relay.url
    count = QUICK_COUNT if quick else COUNT
    samples = QUICK_SAMPLES if quick else SAMPLES
    delivery: list[float] = []
    for _ in range(samples):
        if system == "didlink":
            folder = Path(tempfile.mkdtemp(dir=_folder)) / "pair"
            delivery.append(asyncio.run(_didlink(url, folder, 1)))
        else:
            delivery.append(asyncio.run(_baseline(url, 1)))
    if system == "didlink":
        folder = Path(tempfile.mkdtemp(dir=_folder)) / "pair"
        bulk = asyncio.run(_didlink(url, folder, count))
    else:
        bulk = asyncio.run(_baseline(url, count))
    delivery.sort()
    return {DELIVERY.name: delivery[len(delivery) // 2] * 1000, THROUGHPUT.name: count / bulk}


PROBE = Probe("mailbox", (DELIVERY, THROUGHPUT), _measure, _setup, _teardown)
