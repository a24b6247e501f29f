"""didlink transport: WebRTC data channels on aiortc, compact offers, signaling.

The only package that imports aiortc. It moves opaque bytes and exposes the DTLS certificate
fingerprints; it knows nothing of DIDs. See specs/transport.md.
"""

from transport.compact_offer import Candidate, CandidateKind, CompactOffer, SetupRole
from transport.errors import (
    CompactOfferError,
    DtlsFailed,
    FingerprintMismatch,
    IceFailed,
    PeerClosed,
    ProtocolViolation,
    SignalingError,
    TransportError,
    TransportTimeout,
    TransportUsageError,
)
from transport.flag import Flag
from transport.ice import IceConfig, IceServer
from transport.liveness import Liveness
from transport.peer import Peer
from transport.runner import run
from transport.sdp import compact_from_sdp, sdp_from_compact
from transport.signaling import LoopbackSignaling, ManualSignaling, Signaling
from transport.states import PeerState, PeerStateChanged, Role, TransportStats

__all__ = [
    "Candidate",
    "CandidateKind",
    "CompactOffer",
    "CompactOfferError",
    "DtlsFailed",
    "FingerprintMismatch",
    "Flag",
    "IceConfig",
    "IceFailed",
    "IceServer",
    "Liveness",
    "LoopbackSignaling",
    "ManualSignaling",
    "Peer",
    "PeerClosed",
    "PeerState",
    "PeerStateChanged",
    "ProtocolViolation",
    "Role",
    "SetupRole",
    "Signaling",
    "SignalingError",
    "TransportError",
    "TransportStats",
    "TransportTimeout",
    "TransportUsageError",
    "compact_from_sdp",
    "run",
    "sdp_from_compact",
]
