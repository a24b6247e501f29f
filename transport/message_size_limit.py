"""SCTP reassembly bounded while it happens: the advertised message size and what may be held
(specs/transport.md §6.10).

Our SDP advertises `a=max-message-size:262144` (RFC 8841: a peer must not send more in one
message), but aiortc (1.16) does not enforce it on receipt: `RTCSctpTransport` keeps every
fragment of a user message in its inbound stream (`InboundStream.reassembly`) until the last
one arrives, however many there are, and after each fragment its `pop_messages` walks the
fragments of the message in progress again from its first one. So a message of n fragments
costs n²/2 steps of that walk (the join at the end is done once): 4 MiB, 3,616 fragments, took
0.71-0.78 s of one core here; the review measured 15.7 s for 16 MiB, and 256 MiB kept a core
busy until the idle timeout. Out-of-order chunks cost too: each one ahead of a gap sorts and
filters the set of TSNs received out of order (`_mark_received`), and each one inserted among
held ones scans the stream's list. The bound of §5 (framing) applies only to what got through.

`MessageSizeLimit.install(sctp, on_violation=...)` wraps aiortc's DATA and FORWARD TSN handlers
and its delivery step (`_receive`). Before a new DATA chunk reaches aiortc it is counted where
aiortc will put it:

- a *run* is what aiortc could join into one message: held chunks of one stream with
  consecutive TSNs, split only after a chunk that ends a message (aiortc joins from a first
  fragment through consecutive TSNs to the next last fragment; RFC 9260 §6.9). A run over
  `max_message_size` bytes or `max_fragments` chunks is a message over the limit;
- all streams together may hold `max_held_bytes` bytes and `max_held_chunks` chunks;
- a chunk that would break one of these bounds never reaches aiortc: the association is aborted
  (an ABORT with a Protocol Violation cause, RFC 9260 §3.3.10.13, then aiortc's CLOSED state,
  which closes the data channels), `on_violation` is told why, once, and later chunks are
  dropped;
- a chunk more than `reorder_window` TSNs ahead of the cumulative TSN is dropped (RFC 9260 §6.2
  lets a receiver drop what it has no room for): the sender sends it again once the gap before
  it is filled. This bounds the set aiortc sorts for each chunk.

A chunk costs a few dictionary operations. What aiortc delivers leaves its list whole messages
at a time, each the end of a run, and is taken out of the count by its bytes and the list's new
length; the runs it leaves behind are swept with a recount of the stream from aiortc's list
once they outnumber what the stream holds (O(1) per message). FORWARD TSN (which prunes) and a
stream reset are recounted too. aiortc's own work per chunk stays what it is, but over bounded
lists: at most `max_held_chunks` held (0.39 ms a chunk here with 4,095 held and a walk over all
of them), at most `reorder_window` TSNs sorted. Nothing changes on the wire within the bounds
(tests/test_transport_message_size_limit.py compares with stock aiortc).

It relies on aiortc's private `_receive_data_chunk`, `_receive_forward_tsn_chunk`, `_receive`,
`_inbound_streams` (whose values keep `reassembly`, a list of DATA chunks in TSN order),
`_last_received_tsn`, `_sack_misordered`, `_sack_needed`, `_send_chunk` and `_set_state`; if any
is missing (another aiortc), `install` changes nothing, logs a warning and returns None.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

from aiortc.rtcsctptransport import (
    SCTP_DATA_LAST_FRAG,
    AbortChunk,
    InboundStream,
    RTCSctpTransport,
)

from transport.sdp import SDP_MAX_MESSAGE_SIZE

log = logging.getLogger(__name__)

MAX_FRAGMENTS = 1024
"""Chunks one message may come in: 256 bytes each on average for a 256 KiB message. Every SCTP
fragments at its path MTU (aiortc 1,160 bytes, browsers about as much; at IPv4's minimum MTU of
576 bytes about 480), so a real message comes in at most about 550; more only lengthens the
walk (1,024 fragments: about 75 ms of walking for the whole message)."""
MAX_HELD_BYTES = 4 << 20
"""Bytes all streams may hold for reassembly. Whatever a sender does about windows, chunks ahead
of a gap fit the reordering window (2,048 full chunks, 2.4 MB) and the one message in progress
at the cumulative TSN 256 KiB: 2.6 MB at most without an attack, so there is room to spare."""
MAX_HELD_CHUNKS = 4096
"""Chunks all streams may hold, by the same count: 2,048 ahead of a gap and at most 1,024 of a
message in progress. aiortc walks and scans what one stream holds for each chunk, so this bounds
its work per chunk (0.39 ms at the bound here)."""
REORDER_WINDOW = 2048
"""TSNs ahead of the cumulative TSN that are taken: 2.4 MB of full chunks, three times the most
the window of §6.7 lets a sender have outstanding. A chunk beyond it is dropped, not an error."""
PROTOCOL_VIOLATION = 13
"""The ABORT's error cause (RFC 9260 §3.3.10.13)."""
_SERIAL = 1 << 32
_REQUIRED = (
    "_inbound_streams",
    "_last_received_tsn",
    "_sack_misordered",
    "_sack_needed",
    "_send_chunk",
    "_set_state",
)
_WRAPPED = ("_receive_data_chunk", "_receive_forward_tsn_chunk", "_receive")


class _Run:
    """Held chunks of one stream with consecutive TSNs that aiortc could join into a message."""

    __slots__ = ("chunks", "ended", "first", "last", "size")

    def __init__(self, tsn: int, size: int, *, ended: bool) -> None:
        self.first = self.last = tsn
        self.size = size
        self.chunks = 1
        self.ended = ended
        """Its last chunk ends a message (aiortc joins nothing after it)."""


class _Held:
    """What one inbound stream holds for reassembly, as runs indexed by their ends."""

    __slots__ = ("chunks", "inbound", "open_ends", "size", "starts")

    def __init__(self, inbound: InboundStream | None) -> None:
        self.inbound = inbound
        self.starts: dict[int, _Run] = {}
        """Each run by the TSN of its first chunk."""
        self.open_ends: dict[int, _Run] = {}
        """Each run not ended, by the TSN that would continue it."""
        self.size = 0
        self.chunks = 0


class MessageSizeLimit:
    """The reassembly bounds of one SCTP association; `install` puts them in place."""

    __slots__ = (
        "_deliver_now",
        "_delivered",
        "_forward_tsn_now",
        "_held",
        "_max_fragments",
        "_max_held_bytes",
        "_max_held_chunks",
        "_max_message_size",
        "_on_violation",
        "_receive_data_now",
        "_reorder_window",
        "_sctp",
        "dropped",
        "held_bytes",
        "held_chunks",
        "peak_held_bytes",
        "violation",
    )

    def __init__(
        self,
        sctp: Any,
        *,
        on_violation: Callable[[str], None] | None,
        max_message_size: int,
        max_fragments: int,
        max_held_bytes: int,
        max_held_chunks: int,
        reorder_window: int,
    ) -> None:
        self._sctp = sctp
        self._receive_data_now = sctp._receive_data_chunk
        self._forward_tsn_now = sctp._receive_forward_tsn_chunk
        self._deliver_now = sctp._receive
        self._delivered = 0  # bytes aiortc delivered during its handling of one chunk
        self._on_violation = on_violation
        self._max_message_size = max_message_size
        self._max_fragments = max_fragments
        self._max_held_bytes = max_held_bytes
        self._max_held_chunks = max_held_chunks
        self._reorder_window = reorder_window
        self._held: dict[int, _Held] = {}
        self.held_bytes = 0
        """Bytes of user data all streams hold for reassembly now."""
        self.held_chunks = 0
        """Chunks all streams hold for reassembly now."""
        self.peak_held_bytes = 0
        """The most `held_bytes` has been."""
        self.dropped = 0
        """Chunks dropped beyond the reordering window."""
        self.violation: str | None = None
        """Why the association was aborted; None while it was not."""

    @classmethod
    def install(
        cls,
        sctp: Any,
        *,
        on_violation: Callable[[str], None] | None = None,
        max_message_size: int = SDP_MAX_MESSAGE_SIZE,
        max_fragments: int = MAX_FRAGMENTS,
        max_held_bytes: int = MAX_HELD_BYTES,
        max_held_chunks: int = MAX_HELD_CHUNKS,
        reorder_window: int = REORDER_WINDOW,
    ) -> MessageSizeLimit | None:
        """Wrap `sctp`'s DATA and FORWARD TSN handlers and its delivery step; None (and nothing
        changed) if aiortc is not as expected. `on_violation` gets the reason when a bound is
        broken, before the ABORT is sent."""
        if (
            not all(inspect.iscoroutinefunction(getattr(sctp, name, None)) for name in _WRAPPED)
            or not all(hasattr(sctp, name) for name in _REQUIRED)
            or not isinstance(getattr(InboundStream(), "reassembly", None), list)
        ):
            log.warning("this aiortc's SCTP is not as expected: its reassembly is not bounded")
            return None
        limit = cls(
            sctp,
            on_violation=on_violation,
            max_message_size=max_message_size,
            max_fragments=max_fragments,
            max_held_bytes=max_held_bytes,
            max_held_chunks=max_held_chunks,
            reorder_window=reorder_window,
        )
        sctp._receive_data_chunk = limit._on_data
        sctp._receive_forward_tsn_chunk = limit._on_forward_tsn
        sctp._receive = limit._on_message
        return limit

    # -- aiortc's handlers, wrapped -----------------------------------------------------------

    async def _on_data(self, chunk: Any) -> None:
        """A DATA chunk: counted, then aiortc's, or the association aborted, or dropped."""
        if self.violation is not None:
            return
        sctp = self._sctp
        cumulative, tsn = sctp._last_received_tsn, chunk.tsn
        ahead = (tsn - cumulative) % _SERIAL if cumulative is not None else 0
        if ahead == 0 or ahead > _SERIAL // 2 or tsn in sctp._sack_misordered:
            await self._receive_data_now(chunk)  # a duplicate (as aiortc's serial test has it)
            return
        if ahead > self._reorder_window:
            self.dropped += 1
            sctp._sack_needed = True  # a SACK shows the sender what arrived
            return
        stream = chunk.stream_id
        held = self._sync(stream)
        reason = self._admit(held, chunk)
        if reason is not None:
            await self._abort(reason)
            return
        self._delivered = 0
        await self._receive_data_now(chunk)
        self._after(stream, held)

    async def _on_message(self, stream_id: int, pp_id: int, data: bytes) -> None:
        """aiortc delivers a message it joined (and took out of its list)."""
        self._delivered += len(data)
        await self._deliver_now(stream_id, pp_id, data)

    async def _on_forward_tsn(self, chunk: Any) -> None:
        """A FORWARD TSN moves the cumulative TSN and prunes what was held: count again."""
        if self.violation is not None:
            return
        await self._forward_tsn_now(chunk)
        self._sync_all()

    # -- counting ---------------------------------------------------------------------------

    def _admit(self, held: _Held, chunk: Any) -> str | None:
        """Count `chunk` into `held`'s runs; the reason instead if a bound would break."""
        tsn, size = chunk.tsn, len(chunk.user_data)
        if (
            self.held_bytes + size > self._max_held_bytes
            or self.held_chunks + 1 > self._max_held_chunks
        ):
            self._sync_all()  # a stream reset may have dropped what was counted
            if self.held_bytes + size > self._max_held_bytes:
                return (
                    f"The peer left over {self._max_held_bytes} bytes of data-channel messages"
                    " unfinished or out of order; the connection is aborted."
                )
            if self.held_chunks + 1 > self._max_held_chunks:
                return (
                    f"The peer left over {self._max_held_chunks} fragments of data-channel"
                    " messages unfinished or out of order; the connection is aborted."
                )
        ends = bool(chunk.flags & SCTP_DATA_LAST_FRAG)
        left = held.open_ends.get(tsn)
        right = None if ends else held.starts.get((tsn + 1) % _SERIAL)
        message = size + (left.size if left else 0) + (right.size if right else 0)
        fragments = 1 + (left.chunks if left else 0) + (right.chunks if right else 0)
        if message > self._max_message_size:
            return (
                f"The peer sent a data-channel message over the {self._max_message_size}-byte"
                " limit; the connection is aborted."
            )
        if fragments > self._max_fragments:
            return (
                f"The peer sent a data-channel message in over {self._max_fragments} fragments;"
                " the connection is aborted."
            )
        if left is not None:
            del held.open_ends[tsn]
            run = left
        else:
            run = held.starts[tsn] = _Run(tsn, size, ended=ends)
        run.last, run.ended = tsn, ends
        if right is not None:
            del held.starts[right.first]
            run.last, run.ended = right.last, right.ended
        if not run.ended:
            held.open_ends[(run.last + 1) % _SERIAL] = run
        run.size, run.chunks = message, fragments
        held.size += size
        held.chunks += 1
        self.held_bytes += size
        self.held_chunks += 1
        self.peak_held_bytes = max(self.peak_held_bytes, self.held_bytes)
        return None

    def _after(self, stream: int, held: _Held) -> None:
        """aiortc handled a chunk counted in `held`: take out what it delivered.

        Delivered messages were whole runs' ends (a run splits after a last fragment), so the
        runs left behind for them can only join runs a sender that keeps to RFC 9260 never
        sends (a fragment before a first one that is not a last one); they are swept out with
        a recount once they outnumber what is held, so that costs O(1) per message.
        """
        inbound = self._sctp._inbound_streams.get(stream)
        remaining = len(inbound.reassembly) if inbound is not None else 0
        if held.inbound is not inbound or self._delivered > held.size:
            self._recount(held, inbound)  # reset, or not as counted: from aiortc's list
        elif remaining != held.chunks:
            self.held_chunks -= held.chunks - remaining
            self.held_bytes -= self._delivered
            held.chunks, held.size = remaining, held.size - self._delivered
            if len(held.starts) > 2 * remaining + 16:
                self._recount(held, inbound)
        if not held.chunks:
            del self._held[stream]  # nothing held: no entry (aiortc keeps one per stream)

    def _sync(self, stream: int) -> _Held:
        """`stream`'s count, counted again from aiortc's list if that changed otherwise than
        by the chunks counted (a message delivered, chunks pruned, the stream reset)."""
        inbound = self._sctp._inbound_streams.get(stream)
        held = self._held.get(stream)
        if held is None:
            held = self._held[stream] = _Held(inbound)
        if held.inbound is not inbound or held.chunks != (
            len(inbound.reassembly) if inbound is not None else 0
        ):
            self._recount(held, inbound)  # reset or pruned since
        return held

    def _sync_all(self) -> None:
        for stream in list(self._held):
            self._sync(stream)

    def _recount(self, held: _Held, inbound: InboundStream | None) -> None:
        """`held` counted from aiortc's list, which is in TSN order."""
        self.held_bytes -= held.size
        self.held_chunks -= held.chunks
        held.inbound = inbound
        held.starts, held.open_ends, held.size, held.chunks = {}, {}, 0, 0
        run: _Run | None = None
        for chunk in inbound.reassembly if inbound is not None else ():
            size = len(chunk.user_data)
            ends = bool(chunk.flags & SCTP_DATA_LAST_FRAG)
            if run is not None and not run.ended and chunk.tsn == (run.last + 1) % _SERIAL:
                run.last, run.ended = chunk.tsn, ends
                run.size += size
                run.chunks += 1
            else:
                run = held.starts[chunk.tsn] = _Run(chunk.tsn, size, ended=ends)
            held.size += size
            held.chunks += 1
        held.open_ends = {(r.last + 1) % _SERIAL: r for r in held.starts.values() if not r.ended}
        self.held_bytes += held.size
        self.held_chunks += held.chunks

    # -- the end ----------------------------------------------------------------------------

    async def _abort(self, reason: str) -> None:
        """Abort the association: tell the layer above, send ABORT, close as aiortc does."""
        self.violation = reason
        log.warning("SCTP association aborted: %s", reason)
        if self._on_violation is not None:
            self._on_violation(reason)
        sctp = self._sctp
        abort = AbortChunk()
        abort.params = [(PROTOCOL_VIOLATION, reason.encode("utf-8"))]
        with contextlib.suppress(ConnectionError):  # DTLS gone already: nobody to tell
            await sctp._send_chunk(abort)
        sctp._set_state(RTCSctpTransport.State.CLOSED)
