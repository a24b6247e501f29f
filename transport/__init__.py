"""didlink transport: WebRTC data channels on aiortc, compact offers, signaling, and the Nostr
mailbox (sealed gift wraps and a relay client).

The only package that imports aiortc. It moves opaque bytes and exposes the DTLS certificate
fingerprints; it knows nothing of DIDs. See specs/transport.md and specs/mailbox.md. nostr-sdk
and websockets are imported only when a wrap is sealed or opened or a relay pool connects.
"""

from transport.compact_offer import Candidate, CandidateKind, CompactOffer, SetupRole
from transport.errors import (
    CompactOfferError,
    DtlsFailed,
    EnvelopeError,
    EnvelopeExpired,
    EnvelopeForged,
    EnvelopeMalformed,
    EnvelopeNotForUs,
    EnvelopeTooLarge,
    FingerprintMismatch,
    IceFailed,
    NostrKeyError,
    PeerClosed,
    ProtocolViolation,
    PublishFailed,
    RelayError,
    SignalingError,
    TransportError,
    TransportTimeout,
    TransportUsageError,
)
from transport.flag import Flag
from transport.ice import IceConfig, IceServer
from transport.liveness import Liveness
from transport.nostr_envelope import OpenedWrap, open_wrap, seal_wrap
from transport.nostr_event import NostrEvent, public_key_of
from transport.nostr_relay import PublishResult, RelayLimits, RelayPool, Subscription
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
    "EnvelopeError",
    "EnvelopeExpired",
    "EnvelopeForged",
    "EnvelopeMalformed",
    "EnvelopeNotForUs",
    "EnvelopeTooLarge",
    "FingerprintMismatch",
    "Flag",
    "IceConfig",
    "IceFailed",
    "IceServer",
    "Liveness",
    "LoopbackSignaling",
    "ManualSignaling",
    "NostrEvent",
    "NostrKeyError",
    "OpenedWrap",
    "Peer",
    "PeerClosed",
    "PeerState",
    "PeerStateChanged",
    "ProtocolViolation",
    "PublishFailed",
    "PublishResult",
    "RelayError",
    "RelayLimits",
    "RelayPool",
    "Role",
    "SetupRole",
    "Signaling",
    "SignalingError",
    "Subscription",
    "TransportError",
    "TransportStats",
    "TransportTimeout",
    "TransportUsageError",
    "compact_from_sdp",
    "open_wrap",
    "public_key_of",
    "run",
    "sdp_from_compact",
    "seal_wrap",
]
