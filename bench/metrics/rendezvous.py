"""Rendezvous through a local Nostr relay (issue 25 point 5; specs/rendezvous.md §7).

rendezvous_connect_time   `Agent.connect` (our offer sealed in the persistent session and
                          published) until both sides' sessions are connected (verified
                          contacts: no SAS), the other side answering from a subscription
                          opened beforehand (`collect(on_item=)` then `answer_rendezvous`).
                          Baseline: two raw relay crossings, i.e. a ready-made event published
                          on one websocket and received on another that subscribed beforehand,
                          twice (bench/relay_baseline.py) - the offer's and the answer's trips
                          through the relay alone. The ratio is what the rendezvous adds to
                          them: ICE, DTLS and SCTP, the Noise KK handshake, sealing and opening
                          two ratchet frames, the store. Median of 5 samples per repetition
                          (2 in --quick); no target (a new figure: compare runs).

Each didlink sample uses two fresh profiles (a cheap KDF: unlocking is not measured) with a fresh
persistent session between them, on the same relay process as the baseline.
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

CONNECT = Metric(
    "rendezvous_connect_time",
    "ms",
    "two raw publish -> subscribe crossings",
    "",
    "chat CONTACT with no token: offer and answer through a local relay -> both connected",
)
SAMPLES = 5
QUICK_SAMPLES = 2
WAIT = 60.0
PASSPHRASE = "bench rendezvous passphrase"

_relay: LocalRelay | None = None
_folder: Path | None = None


def _setup(quick: bool) -> None:
    global _relay, _folder
    _folder = Path(tempfile.mkdtemp(prefix="didlink-bench-rendezvous-"))
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


async def _didlink(url: str, folder: Path) -> float:
    """Seconds from `connect` until both sessions are connected."""
    from didlink import Agent
    from didlink.mailbox import relays as relay_settings
    from didlink.mailbox.store import MailboxStore
    from didlink.profile.sealing import Sealer
    from didlink.profile.settings import Settings
    from identity.contact import Verification
    from identity.keystore import KdfParams
    from messaging.mailbox import MailboxItem, MailboxRendezvous, new_session_state

    cheap = KdfParams(memory_cost=8, iterations=1, lanes=1)
    alice = await Agent.create(folder / "alice", passphrase=PASSPHRASE, kdf=cheap)
    bob = await Agent.create(folder / "bob", passphrase=PASSPHRASE, kdf=cheap)
    now = datetime.now(UTC)
    async with alice, bob:
        initiator, responder = _handshake_pair()
        for me, other, result in ((alice, bob, initiator), (bob, alice, responder)):
            me.store.add_contact(other.did, now=now)
            me.store.set_verification(other.did, Verification.SAFETY_NUMBER)
            MailboxStore(me.store, Sealer(me.key)).install_session(
                other.did, new_session_state(result), now=now
            )
            relay_settings.add(Settings(me.store), [url])
        offers: list[str] = []

        def on_item(_peer: str, item: MailboxItem, _new: list[bytes]) -> None:
            if isinstance(item, MailboxRendezvous):
                offers.append(item.token)

        route = bob._mailbox()
        assert route is not None
        async with route:
            listening = asyncio.create_task(
                route.collect(timeout=WAIT, until=lambda _d: bool(offers), on_item=on_item)
            )
            await _subscribed(route)
            started = time.perf_counter()
            connecting = asyncio.create_task(alice.connect(bob.did, timeout=WAIT))
            await listening
            answering = await bob.answer_rendezvous(alice.did, offers[0])
            session = await connecting
            assert session is not None
            await asyncio.gather(session.connected(), answering.connected())
            elapsed = time.perf_counter() - started
        await session.close()
        await answering.wait_closed()
    return elapsed


class _Result:
    """What a finished first-contact handshake hands one side (new_session_state reads it)."""

    def __init__(self, seed: bytes, peer: bytes | None, own: bytes | None) -> None:
        self.handshake_hash = hashlib.sha256(seed + b"h").digest()
        self.ratchet_seed = hashlib.sha256(seed + b"sk").digest()
        self.peer_ratchet_public = peer
        self.own_ratchet_private = own


def _handshake_pair() -> tuple[_Result, _Result]:
    seed = os.urandom(32)
    bob = X25519PrivateKey.generate()
    return (
        _Result(seed, bob.public_key().public_bytes_raw(), None),
        _Result(seed, None, bob.private_bytes_raw()),
    )


async def _subscribed(route: object) -> None:
    pool = route._pool  # type: ignore[attr-defined]
    async with asyncio.timeout(WAIT):
        while not any(sub.stored_from for sub in pool.subscriptions.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.001)


def _raw(url: str) -> float:
    """Two relay crossings of one ready-made wrap each (relay_baseline)."""
    total = 0.0
    for _ in range(2):
        recipient, wraps = relay_baseline.make_wraps(1)
        total += asyncio.run(relay_baseline.publish_and_count(url, recipient, wraps))
    return total


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _measure(system: System, quick: bool) -> Samples:
    assert _relay is not None and _folder is not None
    url = _relay.url
    samples = QUICK_SAMPLES if quick else SAMPLES
    if system == "didlink":
        values = []
        for _ in range(samples):
            folder = Path(tempfile.mkdtemp(dir=_folder))
            values.append(asyncio.run(_didlink(url, folder)))
        return {CONNECT.name: _median(values) * 1000}
    return {CONNECT.name: _median([_raw(url) for _ in range(samples)]) * 1000}


PROBE = Probe("rendezvous", (CONNECT,), _measure, _setup, _teardown)
