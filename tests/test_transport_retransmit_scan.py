"""The SCTP transmit step without the walk of the sent queue (transport/retransmit_scan.py, §6.9).

aiortc's own transmit step is the oracle: a stock and a wrapped `RTCSctpTransport`, each on a
stand-in DTLS transport that records the packets, go through the same sends, SACKs (with gap
reports, so chunks are struck and marked), T3 expiries and abandoned chunks (Hypothesis); every
packet and the sending state must be the same. Then: the walk really is left out when nothing
is marked, `install` leaves another aiortc alone, and real peers have it in place.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from aiortc.rtcsctptransport import USERDATA_MAX_LENGTH, RTCSctpTransport, SackChunk
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import test_transport_peer
from tests.test_transport_peer import transfer_whole
from transport import Peer
from transport.retransmit_scan import (
    REVIEWED_TRANSMIT,
    RetransmitScan,
    marks_only_where_wrapped,
    reviewed,
    transmit_fingerprint,
)

pytestmark = pytest.mark.timeout(120)

pair = test_transport_peer.pair  # two open peers over loopback
FIRST_TSN = 1000


class RecordingDtls:
    """What aiortc's SCTP needs of its DTLS transport here: a state and a send."""

    state = "connected"

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    async def _send_data(self, data: bytes) -> None:
        self.packets.append(data)


def sender(*, wrapped: bool) -> tuple[Any, RecordingDtls, RetransmitScan | None]:
    """An established association's sending side (no peer: the test plays its SACKs)."""
    dtls = RecordingDtls()
    sctp: Any = RTCSctpTransport(dtls)  # type: ignore[arg-type]
    sctp._association_state = RTCSctpTransport.State.ESTABLISHED
    sctp._remote_port = 5000
    sctp._remote_verification_tag = 0x01020304
    sctp._local_tsn = FIRST_TSN
    sctp._last_sacked_tsn = FIRST_TSN - 1
    sctp._advanced_peer_ack_tsn = FIRST_TSN - 1
    sctp._ssthresh = 1 << 20  # the peer's INIT would set it to its window
    scan = RetransmitScan.install(sctp) if wrapped else None
    assert scan is not None or not wrapped
    return sctp, dtls, scan


def sending_state(sctp: Any) -> tuple[Any, ...]:
    """Everything the transmit step reads or writes, but the timers' values."""
    chunks = [
        (c.tsn, c._retransmit, c._acked, c._abandoned, c._in_flight, c._sent_count, c._misses)
        for c in sctp._sent_queue
    ]
    forward = sctp._forward_tsn_chunk
    return (
        chunks,
        [c.tsn for c in sctp._outbound_queue],
        sctp._flight_size,
        sctp._cwnd,
        sctp._ssthresh,
        sctp._partial_bytes_acked,
        sctp._fast_recovery_exit,
        sctp._fast_recovery_transmit,
        sctp._last_sacked_tsn,
        sctp._advanced_peer_ack_tsn,
        None if forward is None else bytes(forward),
        sctp._t3_handle is None,
    )


def sack_for(sctp: Any, acked: int, reported: list[bool]) -> SackChunk:
    """A SACK acknowledging the first `acked` outstanding chunks cumulatively and reporting
    those after them whose `reported` flag is set as received (gap blocks)."""
    outstanding = [chunk.tsn for chunk in sctp._sent_queue]
    acked = min(acked, len(outstanding))
    cumulative = outstanding[acked - 1] if acked else sctp._last_sacked_tsn
    offsets = [
        (tsn - cumulative) % (1 << 32)
        for tsn, seen in zip(outstanding[acked:], reported, strict=False)
        if seen
    ]
    gaps: list[tuple[int, int]] = []
    for offset in offsets:
        if gaps and gaps[-1][1] + 1 == offset:
            gaps[-1] = (gaps[-1][0], offset)
        else:
            gaps.append((offset, offset))
    chunk = SackChunk()
    chunk.cumulative_tsn = cumulative
    chunk.advertised_rwnd = 1 << 20
    chunk.gaps = gaps
    return chunk


def loss_for(sctp: Any, more: int) -> SackChunk:
    """A SACK that reports the first chunk not yet reported missing, and `more` chunks after
    it received (besides those reported before): three in a row strike it (RFC 4960 §7.2.4)."""
    reported = [chunk._acked for chunk in sctp._sent_queue]
    hole = reported.index(False) if False in reported else len(reported)
    for index in range(hole + 1, len(reported)):
        if more and not reported[index]:
            reported[index], more = True, more - 1
    return sack_for(sctp, 0, reported)


async def settle() -> None:
    """Let a transmit step scheduled by a T3 expiry run."""
    for _ in range(3):
        await asyncio.sleep(0)


send_op = st.tuples(
    st.just("send"), st.integers(1, 120), st.sampled_from([None, 0, 1]), st.booleans()
)
sack_op = st.tuples(
    st.just("sack"), st.integers(0, 50), st.lists(st.booleans(), max_size=60), st.just(None)
)
loss_op = st.tuples(st.just("loss"), st.integers(1, 4), st.integers(1, 4), st.just(None))
t3_op = st.tuples(st.just("t3"), st.just(0), st.just(None), st.just(None))
cwnd_op = st.tuples(st.just("cwnd"), st.integers(1, 200), st.just(None), st.just(None))
operations = st.lists(
    st.one_of(send_op, send_op, sack_op, sack_op, loss_op, loss_op, t3_op, cwnd_op), max_size=40
)


async def replay(ops: list[tuple[str, Any, Any, Any]]) -> None:
    stock, stock_dtls, _ = sender(wrapped=False)
    ours, our_dtls, scan = sender(wrapped=True)
    assert scan is not None
    steps = [step for op in ops for step in ([op] * op[2] if op[0] == "loss" else [op])]
    try:
        for op, number, option, flag in steps:
            sack = (
                sack_for(stock, number, option)
                if op == "sack"
                else loss_for(stock, number)
                if op == "loss"
                else None
            )
            for sctp in (stock, ours):
                if op == "send":  # max_retransmits 0/1: chunks get abandoned (RFC 3758)
                    size = number * USERDATA_MAX_LENGTH - (7 if flag else 0)
                    await sctp._send(1, 51, bytes(size), max_retransmits=option)
                elif sack is not None:
                    await sctp._receive_sack_chunk(sack)
                elif op == "cwnd":  # as slow start would have grown it
                    sctp._cwnd = number * USERDATA_MAX_LENGTH
                else:
                    if sctp._t3_handle is not None:
                        sctp._t3_handle.cancel()
                    sctp._t3_expired()
                    await settle()
            assert our_dtls.packets == stock_dtls.packets
            assert sending_state(ours) == sending_state(stock)
            marked = any(chunk._retransmit for chunk in ours._sent_queue)
            assert scan.may_be_marked or not marked
    finally:
        for sctp in (stock, ours):
            if sctp._t3_handle is not None:
                sctp._t3_handle.cancel()


@settings(max_examples=300, deadline=None)
@given(operations)
def test_the_packets_and_the_state_are_those_of_aiortcs_own_step(
    ops: list[tuple[str, Any, Any, Any]],
) -> None:
    asyncio.run(replay(ops))


def test_a_loss_is_retransmitted_as_aiortc_does() -> None:
    """The strike rule marks a chunk on its third miss report; it goes out again at once."""
    ops: list[tuple[str, Any, Any, Any]] = [("send", 40, None, False)]
    ops += [("sack", 0, [False] + [True] * k, None) for k in range(1, 5)]
    ops += [("sack", 30, [], None), ("t3", 0, None, None), ("sack", 40, [], None)]
    asyncio.run(replay(ops))

    async def retransmissions() -> int:
        ours, _, _ = sender(wrapped=True)
        await ours._send(1, 51, bytes(40 * USERDATA_MAX_LENGTH))
        for k in range(1, 5):
            await ours._receive_sack_chunk(sack_for(ours, 0, [False] + [True] * k))
        if ours._t3_handle is not None:
            ours._t3_handle.cancel()
        return sum(chunk._sent_count > 1 for chunk in ours._sent_queue)

    assert asyncio.run(retransmissions()) == 1


class CountingDeque(deque[Any]):
    """A sent queue that counts the walks over it."""

    walks = 0

    def __iter__(self) -> Any:
        CountingDeque.walks += 1
        return super().__iter__()


async def walks_of(sctp: Any, ops: list[SackChunk | None]) -> int:
    sctp._sent_queue = CountingDeque(sctp._sent_queue)
    CountingDeque.walks = 0
    for sack in ops:
        if sack is None:
            await sctp._transmit()
        else:
            await sctp._receive_sack_chunk(sack)
    if sctp._t3_handle is not None:
        sctp._t3_handle.cancel()
    return CountingDeque.walks


async def test_a_step_with_nothing_marked_does_not_walk_the_sent_queue() -> None:
    results = {}
    for wrapped in (False, True):
        sctp, _, scan = sender(wrapped=wrapped)
        await sctp._send(1, 51, bytes(200 * USERDATA_MAX_LENGTH))
        if scan is not None:
            assert not scan.may_be_marked  # the first step walked once and found nothing
        steps: list[SackChunk | None] = [None] * 5
        steps += [sack_for(sctp, n, []) for n in (1, 2, 3)]  # cumulative SACKs: no gaps
        results[wrapped] = await walks_of(sctp, steps)
    assert results[False] >= 8  # aiortc: one walk per step
    assert results[True] == 0


async def test_a_sack_with_gaps_and_a_t3_expiry_bring_the_walk_back() -> None:
    sctp, _, scan = sender(wrapped=True)
    assert scan is not None
    await sctp._send(1, 51, bytes(10 * USERDATA_MAX_LENGTH))
    assert await walks_of(sctp, [sack_for(sctp, 0, [False, True])]) >= 1
    assert not scan.may_be_marked  # one report of a miss marks nothing yet
    sctp._t3_expired()
    assert scan.may_be_marked
    await settle()  # T3 cut the window to one chunk: the first goes out again, the rest wait
    counts = [chunk._sent_count for chunk in sctp._sent_queue]
    assert counts[0] == 2 and counts[1:] == [1] * (len(counts) - 1) and len(counts) > 1
    assert scan.may_be_marked
    await sctp._receive_sack_chunk(sack_for(sctp, len(counts), []))  # they arrived after all
    assert not any(chunk._retransmit for chunk in sctp._sent_queue)
    assert not scan.may_be_marked
    if sctp._t3_handle is not None:
        sctp._t3_handle.cancel()


def test_this_aiortc_is_the_one_reviewed() -> None:
    assert transmit_fingerprint(RTCSctpTransport) == REVIEWED_TRANSMIT
    assert marks_only_where_wrapped(RTCSctpTransport)
    assert reviewed(RTCSctpTransport)


_MARKING_MODULE = """
class Sctp:
    async def _receive_sack_chunk(self, chunk):
        for sent in self._sent_queue:
            sent._retransmit = True

    def _t3_expired(self):
        for sent in self._sent_queue:
            sent._retransmit = True
"""
_ALSO_ELSEWHERE = """
def abandon_all(sctp):
    for sent in sctp._sent_queue:
        sent._retransmit = True
"""
_TWICE_IN_ONE = """
class Sctp:
    async def _receive_sack_chunk(self, chunk):
        for sent in self._sent_queue:
            sent._retransmit = True
        self._sent_queue[0]._retransmit = True

    def _t3_expired(self):
        pass
"""


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (_MARKING_MODULE, True),  # a mark in each wrapped method and nowhere else
        (_MARKING_MODULE + _ALSO_ELSEWHERE, False),  # a module-level helper marks too
        (_TWICE_IN_ONE, False),  # two marks, but not one in each wrapped method
    ],
)
def test_marks_are_counted_over_the_whole_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, expected: bool
) -> None:
    path = tmp_path / "fake_sctp.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("fake_sctp", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "fake_sctp", module)
    spec.loader.exec_module(module)
    assert marks_only_where_wrapped(module.Sctp) is expected


class MarksElsewhere(RTCSctpTransport):
    def _abandon_all(self) -> None:
        for chunk in self._sent_queue:
            chunk._retransmit = True  # a third place: the wrappers would not see it


async def test_an_aiortc_that_marks_elsewhere_is_left_alone() -> None:
    assert transmit_fingerprint(MarksElsewhere) == REVIEWED_TRANSMIT  # the same step
    assert not marks_only_where_wrapped(MarksElsewhere)
    sctp: Any = MarksElsewhere(RecordingDtls())  # type: ignore[arg-type]
    assert RetransmitScan.install(sctp) is None
    assert "_transmit" not in vars(sctp)


def test_another_aiortc_is_left_alone() -> None:

    class Other:
        async def _transmit(self) -> None:
            pass  # a different step

        async def _receive_sack_chunk(self, chunk: Any) -> None:
            pass

        def _t3_expired(self) -> None:
            pass

    other = Other()
    method = other._transmit
    assert RetransmitScan.install(other) is None
    assert other._transmit == method
    assert transmit_fingerprint(object) is None
    assert not marks_only_where_wrapped(object)


async def test_real_peers_have_it_and_still_deliver(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    await transfer_whole(a, b, 4 << 20)
    assert a.stats().retransmit_scan and b.stats().retransmit_scan
