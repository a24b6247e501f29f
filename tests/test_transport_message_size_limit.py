"""SCTP reassembly bounded while it happens (transport/message_size_limit.py, §6.10).

At the SCTP level, a stock and a wrapped aiortc `RTCSctpTransport` take the same fabricated
DATA chunks: under the bounds, in any fragmentation and any order of arrival (Hypothesis), the
wrapped one delivers exactly what stock aiortc delivers, and counts what aiortc holds; over
them it aborts (an ABORT on the wire, the association closed) before the chunk that breaks a
bound reaches aiortc. Then over real WebRTC on this machine's address: a raw aiortc peer whose
own send-side limit is bypassed sends our `Peer` one 4 MiB message, a never-finished one, and
unfinished ones spread over many streams; our side aborts with a `ProtocolViolation`, hands
nothing up, and never holds more than the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdatachannel import RTCDataChannel
from aiortc.rtcsctptransport import (
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    SCTP_DATA_UNORDERED,
    WEBRTC_BINARY,
    AbortChunk,
    DataChunk,
    ForwardTsnChunk,
    RTCSctpTransport,
    parse_packet,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from transport import Peer, PeerState, ProtocolViolation, Role
from transport.message_size_limit import (
    MAX_FRAGMENTS,
    MAX_HELD_BYTES,
    PROTOCOL_VIOLATION,
    MessageSizeLimit,
)
from transport.sdp import SDP_MAX_MESSAGE_SIZE, compact_from_sdp, sdp_from_compact

pytestmark = pytest.mark.timeout(120)

FIRST_TSN = 1000
SMALL = {  # bounds small enough for Hypothesis to reach
    "max_message_size": 3000,
    "max_fragments": 40,
    "max_held_bytes": 20_000,
    "max_held_chunks": 200,
    "reorder_window": 150,
}


class RecordingDtls:
    """What aiortc's SCTP needs of its DTLS transport here: a state and a send."""

    state = "connected"

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    async def _send_data(self, data: bytes) -> None:
        self.packets.append(data)


class Receiver:
    """An established association's receiving side; records what it delivers."""

    def __init__(self, *, limits: dict[str, int] | None) -> None:
        self.dtls = RecordingDtls()
        self.sctp: Any = RTCSctpTransport(self.dtls)  # type: ignore[arg-type]
        self.sctp._association_state = RTCSctpTransport.State.ESTABLISHED
        self.sctp._remote_port = 5000
        self.sctp._remote_verification_tag = 0x01020304
        self.sctp._last_received_tsn = FIRST_TSN - 1
        self.delivered: list[tuple[int, int, bytes]] = []
        self.violations: list[str] = []
        self.sctp._receive = self._deliver  # instead of the data channels
        self.limit = (
            MessageSizeLimit.install(self.sctp, on_violation=self.violations.append, **limits)
            if limits is not None
            else None
        )
        assert self.limit is not None or limits is None

    async def _deliver(self, stream_id: int, pp_id: int, data: bytes) -> None:
        self.delivered.append((stream_id, pp_id, data))

    async def feed(self, chunk: DataChunk) -> None:
        await self.sctp._receive_chunk(copy(chunk))

    def held(self) -> tuple[int, int]:
        """Chunks and bytes aiortc holds for reassembly, over all streams."""
        chunks = [c for s in self.sctp._inbound_streams.values() for c in s.reassembly]
        return len(chunks), sum(len(c.user_data) for c in chunks)

    def aborts(self) -> list[AbortChunk]:
        return [
            chunk
            for packet in self.dtls.packets
            for chunk in parse_packet(packet)[3]
            if isinstance(chunk, AbortChunk)
        ]


def copy(chunk: DataChunk) -> DataChunk:
    """The chunk as the wire would give it (each receiver gets its own)."""
    return DataChunk(chunk.flags, bytes(chunk)[4 : 16 + len(chunk.user_data)])


def data_chunk(tsn: int, flags: int, data: bytes, *, stream: int = 0, seq: int = 0) -> DataChunk:
    chunk = DataChunk()
    chunk.flags, chunk.tsn, chunk.stream_id, chunk.stream_seq = flags, tsn, stream, seq
    chunk.protocol, chunk.user_data = WEBRTC_BINARY, data
    return chunk


def fragments(
    data: bytes, cuts: list[int], *, tsn: int, stream: int, seq: int, ordered: bool, last: bool
) -> list[DataChunk]:
    """`data` cut at `cuts` into DATA chunks with consecutive TSNs from `tsn` (the last one
    without its end flag unless `last`)."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    chunks = []
    for i, (start, end) in enumerate(itertools.pairwise(bounds)):
        flags = 0 if ordered else SCTP_DATA_UNORDERED
        flags |= SCTP_DATA_FIRST_FRAG if i == 0 else 0
        flags |= SCTP_DATA_LAST_FRAG if end == len(data) and last else 0
        chunks.append(data_chunk(tsn + i, flags, data[start:end], stream=stream, seq=seq))
    return chunks


def messages_to_chunks(messages: list[tuple[int, bool, bytes, list[int]]]) -> list[DataChunk]:
    tsn, seqs, chunks = FIRST_TSN, dict[int, int](), []
    for stream, ordered, data, cuts in messages:
        seq = seqs.get(stream, 0) if ordered else 0
        if ordered:
            seqs[stream] = seq + 1
        part = fragments(data, cuts, tsn=tsn, stream=stream, seq=seq, ordered=ordered, last=True)
        chunks += part
        tsn += len(part)
    return chunks


# -- the SCTP level -------------------------------------------------------------------------

message = st.tuples(
    st.integers(0, 2),  # stream
    st.booleans(),  # ordered
    st.binary(min_size=1, max_size=SMALL["max_message_size"]),
    st.lists(st.integers(1, SMALL["max_message_size"]), max_size=SMALL["max_fragments"] - 1),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(message, min_size=1, max_size=6), st.randoms(use_true_random=False), st.data())
def test_under_the_bounds_it_reassembles_as_aiortc_does(
    messages: list[tuple[int, bool, bytes, list[int]]], order: random.Random, data: st.DataObject
) -> None:
    """Any fragmentation, any arrival order, duplicates: what stock aiortc delivers, in the
    same order, and what it holds is what the limit counts."""
    chunks = messages_to_chunks(messages)
    sent = sum(len(c.user_data) for c in chunks)
    assume(sent <= SMALL["max_held_bytes"])  # else some order could break a held bound
    assume(len(chunks) <= min(SMALL["max_held_chunks"], SMALL["reorder_window"]))
    arrivals = chunks[:]
    order.shuffle(arrivals)
    arrivals += data.draw(st.lists(st.sampled_from(chunks), max_size=5))  # duplicates

    async def run() -> None:
        stock, ours = Receiver(limits=None), Receiver(limits=SMALL)
        assert ours.limit is not None
        for chunk in arrivals:
            await stock.feed(chunk)
            await ours.feed(chunk)
            assert ours.delivered == stock.delivered
            assert ours.held() == stock.held() == (ours.limit.held_chunks, ours.limit.held_bytes)
        assert sorted(ours.delivered) == sorted((s, WEBRTC_BINARY, d) for s, _, d, _ in messages)
        assert ours.violations == [] and ours.aborts() == []

    asyncio.run(run())


junk_chunk = st.builds(
    lambda tsn, flags, stream, seq, size: data_chunk(
        FIRST_TSN + tsn, flags, bytes(size), stream=stream, seq=seq
    ),
    st.integers(0, 60),
    st.sampled_from(
        [0, SCTP_DATA_FIRST_FRAG, SCTP_DATA_LAST_FRAG, SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG]
    ).flatmap(lambda f: st.sampled_from([f, f | SCTP_DATA_UNORDERED])),
    st.integers(0, 2),
    st.integers(0, 3),
    st.integers(1, 50),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(junk_chunk, max_size=80))
def test_any_chunks_within_the_bounds_are_handled_as_aiortc_does(chunks: list[DataChunk]) -> None:
    """Chunks no sender would send (flags, sequence numbers and TSNs at random, repeats):
    what aiortc delivers and holds is unchanged, and the count follows what it holds."""

    async def run() -> None:
        stock, ours = Receiver(limits=None), Receiver(limits={})
        assert ours.limit is not None
        for chunk in chunks:
            await stock.feed(chunk)
            await ours.feed(chunk)
            assert ours.delivered == stock.delivered
            assert ours.held() == stock.held() == (ours.limit.held_chunks, ours.limit.held_bytes)
        assert ours.violations == []

    asyncio.run(run())


@settings(max_examples=200, deadline=None)
@given(
    st.integers(SMALL["max_message_size"] + 1, 3 * SMALL["max_message_size"]),
    st.lists(st.integers(1, 3 * SMALL["max_message_size"]), max_size=30),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_a_message_over_the_limit_aborts_in_any_order(
    size: int, cuts: list[int], ordered: bool, order: random.Random
) -> None:
    """Whatever the fragments and their order, the message is never delivered, and the
    association is aborted with a Protocol Violation (in order, at the limit)."""
    chunks = fragments(
        bytes(size), cuts, tsn=FIRST_TSN, stream=1, seq=0, ordered=ordered, last=True
    )
    order.shuffle(chunks)

    async def run() -> None:
        ours = Receiver(limits=SMALL)
        assert ours.limit is not None
        for chunk in chunks:
            await ours.feed(chunk)
        assert ours.delivered == []
        assert len(ours.violations) == 1 and "3000-byte limit" in ours.violations[0]
        assert ours.limit.peak_held_bytes <= size - 1  # refused before it was whole
        assert ours.sctp._association_state is RTCSctpTransport.State.CLOSED
        (abort,) = ours.aborts()
        assert abort.params[0][0] == PROTOCOL_VIOLATION

    asyncio.run(run())


def test_the_default_bound_is_the_advertised_size_exactly() -> None:
    """262,144 bytes in aiortc's fragments reassemble; one byte more aborts."""

    async def run(size: int) -> Receiver:
        ours = Receiver(limits={})
        cuts = list(range(1160, size, 1160))
        for chunk in fragments(
            bytes(size), cuts, tsn=FIRST_TSN, stream=0, seq=0, ordered=True, last=True
        ):
            await ours.feed(chunk)
        return ours

    fits = asyncio.run(run(SDP_MAX_MESSAGE_SIZE))
    assert fits.delivered == [(0, WEBRTC_BINARY, bytes(SDP_MAX_MESSAGE_SIZE))]
    assert fits.violations == [] and fits.held() == (0, 0)
    over = asyncio.run(run(SDP_MAX_MESSAGE_SIZE + 1))
    assert over.delivered == [] and len(over.violations) == 1
    assert over.limit is not None and over.limit.peak_held_bytes <= SDP_MAX_MESSAGE_SIZE


def test_too_many_fragments_abort() -> None:
    """A small message in tiny fragments is refused at the fragment bound (the walk)."""

    async def run() -> Receiver:
        ours = Receiver(limits={})
        size = MAX_FRAGMENTS + 1
        for chunk in fragments(
            bytes(size), list(range(size)), tsn=FIRST_TSN, stream=0, seq=0, ordered=True, last=True
        ):
            await ours.feed(chunk)
        return ours

    ours = asyncio.run(run())
    assert ours.delivered == [] and len(ours.violations) == 1
    assert f"over {MAX_FRAGMENTS} fragments" in ours.violations[0]
    assert ours.held()[0] == MAX_FRAGMENTS  # aiortc got no more than the bound


def test_unfinished_messages_spread_over_streams_abort_at_the_held_bound() -> None:
    """Messages each under the limit, never finished, on many streams: the held bytes bound."""

    async def run() -> Receiver:
        ours = Receiver(limits=SMALL)
        tsn = FIRST_TSN
        for stream in range(20):
            part = fragments(
                bytes(2500), [1000, 2000], tsn=tsn, stream=stream, seq=0, ordered=True, last=False
            )
            for chunk in part:
                await ours.feed(chunk)
            tsn += len(part)
        return ours

    ours = asyncio.run(run())
    assert ours.delivered == []
    assert len(ours.violations) == 1 and "unfinished" in ours.violations[0]
    assert ours.limit is not None and ours.limit.peak_held_bytes <= SMALL["max_held_bytes"]
    assert ours.held()[1] <= SMALL["max_held_bytes"]


def test_parked_chunks_abort_at_the_held_chunks_bound() -> None:
    """Complete ordered messages behind a stream sequence number never sent: held forever by
    aiortc, so bounded in number too."""

    async def run() -> Receiver:
        ours = Receiver(limits=SMALL)
        for i in range(SMALL["max_held_chunks"] + 5):
            flags = SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG
            await ours.feed(data_chunk(FIRST_TSN + i, flags, b"x", stream=3, seq=i + 1))
        return ours

    ours = asyncio.run(run())
    assert ours.delivered == []
    assert len(ours.violations) == 1 and "fragments" in ours.violations[0]
    assert ours.held()[0] == SMALL["max_held_chunks"]


def test_a_chunk_beyond_the_reordering_window_is_dropped_then_taken_again() -> None:
    async def run() -> Receiver:
        ours = Receiver(limits=SMALL)
        window = SMALL["reorder_window"]
        flags = SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG | SCTP_DATA_UNORDERED
        far = data_chunk(FIRST_TSN + window - 1, flags, b"far")
        await ours.feed(far)  # `window` TSNs ahead of the cumulative one: taken
        beyond = data_chunk(FIRST_TSN + window, flags, b"beyond")
        await ours.feed(beyond)
        assert ours.limit is not None and ours.limit.dropped == 1
        assert ours.delivered == [(0, WEBRTC_BINARY, b"far")]
        for i in range(window - 1):  # the gap filled: the cumulative TSN moves on
            await ours.feed(data_chunk(FIRST_TSN + i, flags, b"."))
        await ours.feed(beyond)  # the retransmission
        return ours

    ours = asyncio.run(run())
    assert ours.delivered[-1] == (0, WEBRTC_BINARY, b"beyond")
    assert ours.violations == [] and ours.held() == (0, 0)


def test_a_forward_tsn_that_prunes_is_counted() -> None:
    """Partial reliability (RFC 3758): pruned fragments are no longer counted as held."""

    async def run() -> Receiver:
        ours = Receiver(limits=SMALL)
        for chunk in fragments(
            bytes(2000), [1000], tsn=FIRST_TSN, stream=0, seq=0, ordered=True, last=False
        ):
            await ours.feed(chunk)
        assert ours.limit is not None and ours.limit.held_bytes == 2000
        forward = ForwardTsnChunk()
        forward.cumulative_tsn = FIRST_TSN + 2  # the message is abandoned with its next TSN
        forward.streams = [(0, 0)]
        await ours.sctp._receive_chunk(forward)
        return ours

    ours = asyncio.run(run())
    assert ours.limit is not None
    assert ours.held() == (0, 0) == (ours.limit.held_chunks, ours.limit.held_bytes)


def test_install_leaves_another_aiortc_alone() -> None:
    class Other:
        async def _receive_data_chunk(self, chunk: object) -> None: ...

    assert MessageSizeLimit.install(Other()) is None


# -- a raw SCTP peer over real WebRTC ----------------------------------------------------------


class RawPeer:
    """Plain aiortc on the other end, with its send-side message size limit bypassed."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel: RTCDataChannel = self.pc.createDataChannel(
            "didlink", negotiated=True, id=0, ordered=True
        )
        self.opened, self.closed = asyncio.Event(), asyncio.Event()
        self.channel.on("open", self.opened.set)
        self.channel.on("close", self.closed.set)

    @property
    def sctp(self) -> Any:
        return self.pc.sctp

    async def send_unfinished(self, size: int, *, stream: int = 0) -> None:
        """The fragments of one `size`-byte message but its last, as aiortc's `_send` makes
        them (aiortc has no way to send a message it does not finish)."""
        sctp = self.sctp
        step = 1160
        for offset in range(0, size, step):
            chunk = data_chunk(
                sctp._local_tsn,
                SCTP_DATA_FIRST_FRAG if offset == 0 else 0,
                bytes(min(step, size - offset)),
                stream=stream,
            )
            chunk._abandoned = chunk._acked = chunk._in_flight = chunk._retransmit = False
            chunk._book_size, chunk._expiry, chunk._max_retransmits = (
                len(chunk.user_data),
                None,
                None,
            )
            chunk._misses = chunk._sent_count = 0
            chunk._sent_time = None
            sctp._local_tsn = (sctp._local_tsn + 1) % (1 << 32)
            sctp._outbound_queue.append(chunk)
        await sctp._transmit()

    async def aborted(self) -> None:
        """Until our side's ABORT closed this association (10 s at most)."""
        await asyncio.wait_for(self.closed.wait(), timeout=10)  # aiortc closes its channels
        assert self.sctp.state == "closed"


@pytest.fixture
async def raw_and_ours() -> AsyncIterator[tuple[RawPeer, Peer, list[bytes]]]:
    """Our offering `Peer` connected to a raw aiortc answerer; what ours hands up is listed."""
    ours, raw = Peer(role=Role.OFFERER), RawPeer()
    received: list[bytes] = []
    try:
        sdp, kind = sdp_from_compact(await ours.create_offer())
        await raw.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        await raw.pc.setLocalDescription(await raw.pc.createAnswer())
        await ours.accept_answer(compact_from_sdp(raw.pc.localDescription.sdp))
        await ours.wait_open(10)
        await asyncio.wait_for(raw.opened.wait(), timeout=10)
        ours.deliver_to(received.append)
        assert ours.stats().reassembly_limit
        raw.sctp._remote_max_message_size = 0  # "any size": aiortc's own check is bypassed
        yield raw, ours, received
    finally:
        await ours.close(linger=0)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await raw.pc.close()


async def refused(ours: Peer, match: str) -> None:
    """Our side failed with a ProtocolViolation saying `match` (10 s at most)."""
    with pytest.raises(ProtocolViolation, match=match):
        await ours.recv(timeout=10)
    assert ours.state is PeerState.FAILED


async def test_one_four_mebibyte_message_is_refused_while_reassembled(
    raw_and_ours: tuple[RawPeer, Peer, list[bytes]],
) -> None:
    raw, ours, received = raw_and_ours
    raw.channel.send(b"\x01" + bytes(4 << 20))  # a valid END chunk of our framing, were it whole
    await refused(ours, "over the 262144-byte limit")
    await raw.aborted()  # the ABORT reached the raw peer
    stats = ours.stats()
    assert received == []
    assert stats.reassembly_peak is not None and 0 < stats.reassembly_peak <= SDP_MAX_MESSAGE_SIZE


async def test_a_never_finished_message_is_refused(
    raw_and_ours: tuple[RawPeer, Peer, list[bytes]],
) -> None:
    raw, ours, received = raw_and_ours
    await raw.send_unfinished(1 << 20)
    await refused(ours, "over the 262144-byte limit")
    await raw.aborted()
    peak = ours.stats().reassembly_peak
    assert received == [] and peak is not None and peak <= SDP_MAX_MESSAGE_SIZE


async def test_unfinished_messages_on_many_streams_are_refused(
    raw_and_ours: tuple[RawPeer, Peer, list[bytes]],
) -> None:
    """Each under the message limit, none finished: the held bound ends it."""
    raw, ours, received = raw_and_ours
    each = SDP_MAX_MESSAGE_SIZE - 2000
    for stream in range(2, 2 + MAX_HELD_BYTES // each + 2):
        await raw.send_unfinished(each, stream=stream)
    await refused(ours, "unfinished")
    await raw.aborted()
    peak = ours.stats().reassembly_peak
    assert received == [] and peak is not None and peak <= MAX_HELD_BYTES
