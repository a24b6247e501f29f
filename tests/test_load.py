"""Load (issue 7 §4): 20 concurrent secure sessions in one process, exchanging messages.

Each session is a real pair of transport `Peer`s on this machine's address (WebRTC, DTLS,
SCTP) with the didlink handshake and a `SecureChannel` on each side (tests/faults/stack.py).
All sessions connect, then for DIDLINK_LOAD_SECONDS (15 in `make test`, 120 in `make
reliability`) both sides of every session send a burst of texts every tick. At the end every
text must have arrived, in order, exactly once, and been acknowledged; no end may have seen an
error; and the process's resident memory (VmRSS from /proc/self/status, sampled every 0.5 s)
must be flat after the warm-up (the first third of the run): the highest sample after the
warm-up at most 10 % above the first one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from messaging.frames import Text
from tests.faults.stack import SecureEnd, open_session_pair

SESSIONS = 20
SECONDS = float(os.environ.get("DIDLINK_LOAD_SECONDS", "15"))
BURST = 10  # texts per side per tick
TICK = 0.1
RSS_TOLERANCE = 0.10

pytestmark = [pytest.mark.faults, pytest.mark.timeout(int(SECONDS) + 180)]


def rss_kib() -> int:
    """This process's resident set size in KiB (Linux /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@dataclass
class Sent:
    """What one side sent, in constant memory: count, digest, last seq."""

    count: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    last_seq: int = -1


async def _talk(end: SecureEnd, name: str, stop_at: float) -> Sent:
    sent = Sent()
    while time.monotonic() < stop_at:
        for _ in range(BURST):
            text = f"{name} {sent.count}"
            sent.count += 1
            sent.digest.update(text.encode() + b"\0")
            sent.last_seq = end.send(Text(text=text))
        await asyncio.sleep(TICK)
    return sent


async def _session(index: int, connected: asyncio.Barrier, totals: list[int]) -> None:
    async with open_session_pair(time_limit=60, keep_history=False) as (alice, bob, _relay):
        await connected.wait()  # every session is up before the clock starts
        stop_at = time.monotonic() + SECONDS
        a_sent, b_sent = await asyncio.gather(
            _talk(alice, f"a{index}", stop_at), _talk(bob, f"b{index}", stop_at)
        )
        await bob.until(lambda: bob.text_count >= a_sent.count, timeout=60, what="a's texts")
        await alice.until(lambda: alice.text_count >= b_sent.count, timeout=60, what="b's")
        await alice.until(lambda: alice.last_acked >= a_sent.last_seq, timeout=60, what="acks")
        await bob.until(lambda: bob.last_acked >= b_sent.last_seq, timeout=60, what="acks")
        # Same count and same digest of the sequence: complete, in order, exactly once.
        assert (bob.text_count, bob.text_digest.digest()) == (a_sent.count, a_sent.digest.digest())
        assert (alice.text_count, alice.text_digest.digest()) == (
            b_sent.count,
            b_sent.digest.digest(),
        )
        assert alice.acked_count == a_sent.count and bob.acked_count == b_sent.count
        assert alice.failure is None and bob.failure is None
        totals.append(a_sent.count + b_sent.count)


async def test_twenty_sessions_no_loss_no_error_flat_memory() -> None:
    totals: list[int] = []
    samples: list[tuple[float, int]] = []
    connected = asyncio.Barrier(SESSIONS + 1)
    async with asyncio.TaskGroup() as group:
        for index in range(SESSIONS):
            group.create_task(_session(index, connected, totals))
        async with asyncio.timeout(120):
            await connected.wait()
        start = time.monotonic()
        while time.monotonic() < start + SECONDS:
            samples.append((time.monotonic() - start, rss_kib()))
            await asyncio.sleep(0.5)
    assert len(totals) == SESSIONS
    after_warmup = [rss for t, rss in samples if t >= SECONDS / 3]
    baseline, peak = after_warmup[0], max(after_warmup)
    growth = peak / baseline - 1
    print(
        f"\nload: {SESSIONS} sessions, {SECONDS:g} s, {sum(totals)} texts delivered and "
        f"acknowledged ({sum(totals) / SECONDS:.0f}/s); RSS after warm-up {baseline} KiB, "
        f"peak {peak} KiB (+{growth:.1%}); first sample {samples[0][1]} KiB"
    )
    assert growth <= RSS_TOLERANCE, f"RSS grew {growth:.1%} after warm-up: {samples}"
