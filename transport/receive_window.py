"""The SCTP receive window, advertised from the socket and honoured (specs/transport.md §6.7).

RFC 4960 lets a receiver say how much more it can take: each SACK carries its window (a_rwnd),
and §6.1 rule A forbids the sender new DATA while what it has outstanding fills that window
(one chunk may always be in flight, so a closed window is probed). aiortc (1.16) does neither
half. Its receiver advertises 1 MiB less what it holds for reassembly, however little its
socket's kernel buffer holds; its sender ignores the window and grows its congestion window
until the receiver's socket overflows. On loopback a bulk transfer then loses datagrams
whenever the receiver is busy in Python for a moment (three 64 MiB transfers lost 41-490),
and the sender retransmits and halves its window.

`ReceiveWindow.install(sctp)` wraps three of aiortc's private `RTCSctpTransport` methods:

- `_send_sack`: once `watch(sock)` gave the connection's UDP socket, a SACK advertises no more
  than that socket's receive buffer holds: three quarters of it (Linux gives a read datagram's
  memory back in batches of up to a quarter), in full datagrams (`DATAGRAM_TRUESIZE` bytes of
  kernel memory, `CHUNK_PAYLOAD` bytes of SCTP data each). What a sender may have outstanding
  then fits in the socket, however long the receiver is busy;
- `_receive_sack_chunk`: a SACK that is not older than the last one records the peer's window;
- `_transmit`: while what the peer advertised is smaller than the congestion window, aiortc's
  transmit step runs with its congestion window lowered to it (to one chunk at least), and then
  gets its own back, with whatever aiortc added to it meanwhile. The congestion window itself
  is never cut, and it only grows when it is full (RFC 4960 §7.2.1), so the peer's window costs
  no slow start.

It relies on aiortc's private `_send_sack`, `_receive_sack_chunk`, `_transmit`, `_cwnd`,
`_advertised_rwnd` and `_last_sacked_tsn`; if any is missing (another aiortc), `install`
changes nothing and returns None.
"""

from __future__ import annotations

import inspect
import logging
import socket
import struct
from typing import Any

log = logging.getLogger(__name__)

CHUNK_PAYLOAD = 1160
"""Bytes of data in a full DATA chunk (aiortc's USERDATA_MAX_LENGTH); one packet each."""
DATAGRAM_TRUESIZE = 2304
"""Kernel memory one full datagram takes in a socket's receive queue (its `truesize`: a 2 KiB
buffer and the bookkeeping). Measured with SO_MEMINFO for 1,200-1,229 byte datagrams on Linux."""
SO_MEMINFO = 55
"""Linux's socket option: the socket's memory counters (`SK_MEMINFO_*`, nine u32)."""
_MEMINFO = struct.Struct("9I")
_DROPS = 8
_REQUIRED = ("_cwnd", "_advertised_rwnd", "_last_sacked_tsn")
_WRAPPED = ("_send_sack", "_receive_sack_chunk", "_transmit")


def socket_window(receive_buffer: int) -> int:
    """The bytes of SCTP data a socket with `receive_buffer` bytes (SO_RCVBUF, as the kernel
    counts it) always has room for: three quarters of it, in full datagrams."""
    return receive_buffer * 3 // 4 // DATAGRAM_TRUESIZE * CHUNK_PAYLOAD


def serial_older(a: int, b: int) -> bool:
    """Whether TSN `a` comes before TSN `b` (RFC 1982 serial arithmetic, 32 bits)."""
    return 0 < (b - a) % (1 << 32) < (1 << 31)


class ReceiveWindow:
    """Both halves of SCTP's flow control for one association; `install` puts it in place."""

    __slots__ = (
        "_clamped",
        "_receive_sack_now",
        "_sctp",
        "_send_sack_now",
        "_socket",
        "_transmit_now",
        "peer_window",
        "window",
    )

    def __init__(self, sctp: Any) -> None:
        self._sctp = sctp
        self._send_sack_now = sctp._send_sack
        self._receive_sack_now = sctp._receive_sack_chunk
        self._transmit_now = sctp._transmit
        self._socket: socket.socket | None = None
        self._clamped = False
        self.window: int | None = None
        """The most our SACKs advertise (bytes), from the watched socket; None before."""
        self.peer_window: int | None = None
        """The window the peer's last SACK advertised (bytes); None before the first."""

    @classmethod
    def install(cls, sctp: Any) -> ReceiveWindow | None:
        """Wrap `sctp`'s SACK and transmit steps; None (and nothing changed) if aiortc is not
        as expected."""
        if not all(
            inspect.iscoroutinefunction(getattr(sctp, name, None)) for name in _WRAPPED
        ) or not all(hasattr(sctp, name) for name in _REQUIRED):
            return None
        window = cls(sctp)
        sctp._send_sack = window._send_sack
        sctp._receive_sack_chunk = window._on_sack
        sctp._transmit = window._transmit
        return window

    def watch(self, sock: socket.socket | None) -> int | None:
        """Advertise no more than `sock`'s receive buffer holds, from now on (call it once the
        buffer has its size); that window in bytes, or None (no bound) if the socket cannot be
        read."""
        if sock is None:
            return None
        try:
            buffer = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except OSError as exc:  # closed
            log.debug("the socket cannot size the window (%s): advertising aiortc's", exc)
            return None
        self._socket = sock
        self.window = socket_window(buffer)
        return self.window

    @property
    def receive_drops(self) -> int | None:
        """Datagrams the kernel dropped on the watched socket for want of room; None if none is
        watched, or where the count cannot be read (it is Linux's SO_MEMINFO)."""
        if self._socket is None:
            return None
        try:
            info = self._socket.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size)
            return int(_MEMINFO.unpack(info)[_DROPS])
        except (OSError, struct.error):  # not Linux, or the socket closed
            return None

    async def _send_sack(self) -> None:
        """aiortc builds and sends a SACK: it advertises at most what the socket holds."""
        sctp = self._sctp
        window = self.window
        held = sctp._advertised_rwnd
        if window is None or window >= held:
            await self._send_sack_now()
            return
        sctp._advertised_rwnd = window  # read as the SACK is built, before any suspension
        try:
            await self._send_sack_now()
        finally:
            # aiortc counts what it holds for reassembly in it: keep what it counted meanwhile
            sctp._advertised_rwnd += held - window

    async def _on_sack(self, chunk: Any) -> None:
        """A SACK arrived: record the peer's window (unless the SACK is older than the last,
        which aiortc ignores too), then let aiortc handle it."""
        if not serial_older(chunk.cumulative_tsn, self._sctp._last_sacked_tsn):
            self.peer_window = chunk.advertised_rwnd
        await self._receive_sack_now(chunk)

    async def _transmit(self) -> None:
        """aiortc's transmit step, with no more outstanding than the peer's window allows."""
        sctp = self._sctp
        cwnd = sctp._cwnd
        peer_window = self.peer_window
        if self._clamped or peer_window is None or cwnd <= peer_window:
            await self._transmit_now()
            return
        limit = max(peer_window, CHUNK_PAYLOAD)  # one chunk may always be in flight (rule A)
        self._clamped = True
        sctp._cwnd = limit
        try:
            await self._transmit_now()
        finally:
            self._clamped = False
            grown = sctp._cwnd - limit  # a SACK handled while a send was suspended (TURN)
            sctp._cwnd = cwnd + grown if grown >= 0 else sctp._cwnd
