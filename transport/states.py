"""Peer roles, states, events and the mapping of aiortc failures to typed errors (spec §6-7)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from transport.errors import (
    DtlsFailed,
    FingerprintMismatch,
    IceFailed,
    PeerClosed,
    TransportError,
)


class Role(enum.Enum):
    """Which side of the offer/answer exchange this peer plays."""

    OFFERER = "offerer"
    ANSWERER = "answerer"


class PeerState(enum.Enum):
    """Connection state; FAILED and CLOSED are final."""

    NEW = "new"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(frozen=True)
class PeerStateChanged:
    """Event passed to `on_state` listeners."""

    state: PeerState
    error: TransportError | None = None


@dataclass(frozen=True)
class TransportStats:
    """A snapshot of the bounded buffers (for tests and diagnostics)."""

    state: PeerState
    buffered_amount: int
    send_credit: int
    receive_queue_bytes: int
    receive_queue_messages: int
    delayed_sack: bool
    """SCTP acknowledges every second packet (specs/transport.md §6.5), not every one."""
    data_packets_received: int
    """Packets with DATA received (counted where delayed_sack is on)."""
    sacks_sent: int
    """SACKs that answered them."""
    receive_buffer: int | None = None
    """Bytes the kernel grants the connection's socket for received datagrams, once open
    (specs/transport.md §6.6); None before, or if it could not be reached."""
    receive_window: int | None = None
    """The most our SACKs advertise, in bytes: what the socket's buffer holds (§6.7); None
    before the channel opens, or if the socket could not be reached."""
    peer_window: int | None = None
    """The window the peer's last SACK advertised, in bytes; None before the first."""
    receive_drops: int | None = None
    """Datagrams the kernel dropped on the connection's socket for want of room (Linux); None
    before the channel opens, or where it cannot be read."""
    retransmit_scan: bool = False
    """SCTP's transmit step walks its sent queue only when a chunk may await retransmission
    (specs/transport.md §6.9), not at every step."""
    reassembly_limit: bool = False
    """SCTP's reassembly is bounded while it happens (specs/transport.md §6.10)."""
    reassembly_held: int | None = None
    """Bytes SCTP holds for reassembly now (fragments of unfinished or undelivered messages)."""
    reassembly_peak: int | None = None
    """The most SCTP has held for reassembly on this connection."""


def classify_failure(
    *, ice_state: str, dtls_state: str, fingerprint_matches: bool | None
) -> TransportError:
    """Turn aiortc's transport states into one typed error (spec §7)."""
    if ice_state == "failed":
        return IceFailed("No network path to the peer was found (ICE failed).")
    if fingerprint_matches is False:
        return FingerprintMismatch(
            "The peer's DTLS certificate does not match the fingerprint in its offer."
        )
    if dtls_state == "failed":
        return DtlsFailed("The encrypted DTLS channel to the peer could not be set up.")
    return PeerClosed("The connection to the peer failed.")
