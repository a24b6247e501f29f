"""didlink transport: WebRTC data channels on aiortc, compact offers, signaling, and the Nostr
mailbox (sealed gift wraps and a relay client).

The only package that imports aiortc. It moves opaque bytes and exposes the DTLS certificate
fingerprints; it knows nothing of DIDs. See specs/transport.md and specs/mailbox.md. nostr-sdk
and websockets are imported only when a wrap is sealed or opened or a relay pool connects.

The names below are loaded on first use (PEP 562): `import transport.nostr_relay` (the
mailbox commands) loads the Nostr modules without aiortc, which only `Peer` and its
neighbours pull in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE: dict[str, str] = {
    "Candidate": "transport.compact_offer",
    "CandidateKind": "transport.compact_offer",
    "CompactOffer": "transport.compact_offer",
    "CompactOfferError": "transport.errors",
    "DtlsFailed": "transport.errors",
    "EnvelopeError": "transport.errors",
    "EnvelopeExpired": "transport.errors",
    "EnvelopeForged": "transport.errors",
    "EnvelopeMalformed": "transport.errors",
    "EnvelopeNotForUs": "transport.errors",
    "EnvelopeTooLarge": "transport.errors",
    "FingerprintMismatch": "transport.errors",
    "Flag": "transport.flag",
    "IceConfig": "transport.ice",
    "IceFailed": "transport.errors",
    "IceServer": "transport.ice",
    "Liveness": "transport.liveness",
    "LoopbackSignaling": "transport.signaling",
    "ManualSignaling": "transport.signaling",
    "NostrEvent": "transport.nostr_event",
    "NostrKeyError": "transport.errors",
    "OpenedWrap": "transport.nostr_envelope",
    "Peer": "transport.peer",
    "PeerClosed": "transport.errors",
    "PeerState": "transport.states",
    "PeerStateChanged": "transport.states",
    "ProtocolViolation": "transport.errors",
    "PublishFailed": "transport.errors",
    "PublishResult": "transport.nostr_relay",
    "RelayError": "transport.errors",
    "RelayLimits": "transport.nostr_relay",
    "RelayPool": "transport.nostr_relay",
    "Role": "transport.states",
    "SetupRole": "transport.compact_offer",
    "Signaling": "transport.signaling",
    "SignalingError": "transport.errors",
    "Subscription": "transport.nostr_relay",
    "TransportError": "transport.errors",
    "TransportStats": "transport.states",
    "TransportTimeout": "transport.errors",
    "TransportUsageError": "transport.errors",
    "compact_from_sdp": "transport.sdp",
    "open_wrap": "transport.nostr_envelope",
    "public_key_of": "transport.nostr_event",
    "run": "transport.runner",
    "sdp_from_compact": "transport.sdp",
    "seal_wrap": "transport.nostr_envelope",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'transport' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
