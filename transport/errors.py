"""Every error the transport package raises derives from `TransportError`.

Each class's docstring is the sentence a person sees; callers may add detail in the message.
"Local" errors (you misused the API) and "remote" errors (the peer or the network failed us) are
kept apart, as in h11. See specs/transport.md §7.
"""

from __future__ import annotations


class TransportError(Exception):
    """Base class of every transport error."""


class TransportUsageError(TransportError):
    """The transport API was called in a state that does not allow it (a local bug)."""


class CompactOfferError(TransportError):
    """A compact offer (or the SDP it came from) is malformed or unsupported."""


class IceFailed(TransportError):
    """No network path to the peer was found (ICE failed)."""


class DtlsFailed(TransportError):
    """The encrypted DTLS channel to the peer could not be set up."""


class FingerprintMismatch(DtlsFailed):
    """The peer's DTLS certificate does not match the fingerprint in its offer."""


class PeerClosed(TransportError):
    """The connection to the peer is closed."""


class TransportTimeout(TransportError):
    """The peer did not answer in time."""


class ProtocolViolation(TransportError):
    """The peer broke the chunking or flow-control rules of specs/transport.md §5."""


class SignalingError(TransportError):
    """An offer or answer could not be exchanged with the peer."""
