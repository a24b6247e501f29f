"""The network-fault scenario shared by the bounded test (make test) and the long run.

`exchange_under(impairment, messages=, file_size=)`: two peers connect through the impairing
relay, handshake, then both send `messages` texts at once (each side's texts must arrive
complete, in order, exactly once, and every one must be acknowledged by a receipt), then Alice
sends a file of `file_size` random bytes (it must arrive complete, in order, exactly once, with
the right SHA-256). Returns the figures for the report.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from dataclasses import dataclass

from messaging.frames import Text
from tests.faults.stack import CHUNK, SecureEnd, open_session_pair
from tests.support.impair import Impairment


@dataclass(frozen=True)
class ExchangeReport:
    connect_s: float
    messages_s: float
    file_s: float
    frames_sent: int
    observed_loss: float
    dropped: int


def texts_for(name: str, count: int) -> list[str]:
    return [f"{name} message {i:05d}" for i in range(count)]


async def _send_texts(end: SecureEnd, texts: list[str]) -> list[int]:
    seqs = []
    for index, text in enumerate(texts):
        seqs.append(end.send(Text(text=text, mid=os.urandom(16))))
        if index % 10 == 9:
            await asyncio.sleep(0)  # let the writer run: many frames, not one
    return seqs


async def exchange_under(
    impairment: Impairment, *, messages: int, file_size: int, time_limit: float
) -> ExchangeReport:
    """Run the scenario; AssertionError naming what went wrong (each wait <= time_limit)."""
    timeout = time_limit
    started = time.monotonic()
    async with open_session_pair(impairment=impairment, time_limit=timeout) as (alice, bob, relay):
        assert relay is not None
        connected = time.monotonic()
        alice_texts, bob_texts = texts_for("alice", messages), texts_for("bob", messages)
        alice_seqs, bob_seqs = await asyncio.gather(
            _send_texts(alice, alice_texts), _send_texts(bob, bob_texts)
        )
        await bob.until(lambda: len(bob.texts) >= messages, timeout=timeout, what="alice's texts")
        await alice.until(lambda: len(alice.texts) >= messages, timeout=timeout, what="bob's")
        await alice.until(lambda: set(alice_seqs) <= alice.acked, timeout=timeout, what="acks")
        await bob.until(lambda: set(bob_seqs) <= bob.acked, timeout=timeout, what="bob's acks")
        assert bob.texts == alice_texts, "alice's texts: not complete, in order, exactly once"
        assert alice.texts == bob_texts, "bob's texts: not complete, in order, exactly once"
        assert bob.text_seqs == alice_seqs and alice.text_seqs == bob_seqs
        texts_done = time.monotonic()

        data = os.urandom(file_size)
        file_id = await alice.send_file(data, name="payload.bin", timeout=timeout)

        def file_complete() -> bool:
            incoming = bob.files.get(file_id)
            return incoming is not None and incoming.received >= file_size

        await bob.until(file_complete, timeout=timeout, what="the file")
        incoming = bob.files[file_id]
        assert incoming.received == file_size
        assert incoming.out_of_order == 0
        assert incoming.chunks == -(-file_size // CHUNK)
        assert incoming.digest.digest() == hashlib.sha256(data).digest()
        assert list(bob.files) == [file_id]
        done = time.monotonic()
        # The traffic really went through the relay, and the relay really dropped datagrams.
        assert relay.a_to_b.bytes_forwarded > file_size
        dropped = relay.a_to_b.dropped + relay.b_to_a.dropped
        total = dropped + relay.a_to_b.forwarded + relay.b_to_a.forwarded
        if impairment.loss:
            assert dropped > 0
        assert relay.ignored == 0
        assert alice.failure is None and bob.failure is None
        return ExchangeReport(
            connect_s=connected - started,
            messages_s=texts_done - connected,
            file_s=done - texts_done,
            frames_sent=alice.frames_sent + bob.frames_sent,
            observed_loss=dropped / total if total else 0.0,
            dropped=dropped,
        )
