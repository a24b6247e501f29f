"""The raw Nostr baselines of the mailbox figures (issue 25, "Bench"): a relay used directly.

What didlink's mailbox is compared with, on the same local relay in the same run:

- `publish_to_subscriber`: one gift wrap published by one websocket client and received by
  another that subscribed to its `p` tag beforehand (both connected, the subscription
  answered with EOSE, before the clock starts): the relay's own publish -> subscribe latency,
  the floor of "one text sent -> received by an online receiver" (mailbox_delivery).
- `throughput`: N wraps published back to back on one connection, counted by the subscriber
  on the other: events per second through the relay (mailbox_throughput's baseline).
- `round_trip`: the same as `publish_to_subscriber`; rendezvous_connect's baseline is a raw
  aiortc channel open plus two of them (offer there, answer back).

The wraps are real ones (transport/nostr_envelope.py `seal_wrap`, a payload of the size of one
short text frame) made before the clock starts, so the baseline pays the relay and the network
path only: a client that sends ready-made JSON. Raw `websockets`, no client library: the least
any client can cost.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence

import websockets

from transport.nostr_envelope import seal_wrap
from transport.nostr_event import NostrEvent, public_key_of

TIMEOUT = 30.0
PAYLOAD_BYTES = 120
"""About one short text in a ratchet frame (header, padding, MAC)."""


def make_wraps(count: int) -> tuple[str, list[NostrEvent]]:
    """`count` wraps to one fresh recipient key, and that key (hex): sealed now, sent later."""
    sender, recipient = os.urandom(32), os.urandom(32)
    public = public_key_of(recipient)
    wraps = [
        seal_wrap(os.urandom(PAYLOAD_BYTES), sender_secret=sender, recipient=public)
        for _ in range(count)
    ]
    return public.hex(), wraps


async def _subscribe(url: str, recipient_hex: str) -> websockets.ClientConnection:
    """A connection whose subscription to `recipient_hex` has been answered (EOSE)."""
    connection = await websockets.connect(url, max_size=1 << 20, compression=None)
    await connection.send(json.dumps(["REQ", "bench", {"kinds": [1059], "#p": [recipient_hex]}]))
    while True:
        message = json.loads(await asyncio.wait_for(connection.recv(), TIMEOUT))
        if message[0] == "EOSE":
            return connection


async def _receive(connection: websockets.ClientConnection, ids: set[str]) -> None:
    """Until every event of `ids` arrived on the subscription."""
    while ids:
        message = json.loads(await connection.recv())
        if message[0] == "EVENT" and message[2]["id"] in ids:
            ids.discard(message[2]["id"])


async def _drain_oks(connection: websockets.ClientConnection, count: int) -> None:
    for _ in range(count):
        await connection.recv()


async def publish_and_count(url: str, recipient_hex: str, wraps: Sequence[NostrEvent]) -> float:
    """Seconds from the first publish until the subscriber has every wrap."""
    listener = await _subscribe(url, recipient_hex)
    publisher = await websockets.connect(url, max_size=1 << 20, compression=None)
    messages = [json.dumps(["EVENT", wrap.to_wire()]) for wrap in wraps]
    try:
        started = time.perf_counter()
        receiving = asyncio.ensure_future(_receive(listener, {wrap.id for wrap in wraps}))
        oks = asyncio.ensure_future(_drain_oks(publisher, len(messages)))
        for message in messages:
            await publisher.send(message)
        await asyncio.wait_for(receiving, TIMEOUT)
        elapsed = time.perf_counter() - started
        await asyncio.wait_for(oks, TIMEOUT)
        return elapsed
    finally:
        await publisher.close()
        await listener.close()


def publish_to_subscriber(url: str) -> float:
    """Milliseconds for one wrap from a publisher to a subscriber through the relay at `url`."""
    recipient, wraps = make_wraps(1)
    return asyncio.run(publish_and_count(url, recipient, wraps)) * 1000


round_trip = publish_to_subscriber


def throughput(url: str, count: int) -> float:
    """Wraps per second through the relay at `url`, `count` of them back to back."""
    recipient, wraps = make_wraps(count)
    return count / asyncio.run(publish_and_count(url, recipient, wraps))
