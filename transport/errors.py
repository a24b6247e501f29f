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


class NoLocalCandidates(IceFailed):
    """We have no network address to offer (no usable interface, or relay-only without a relay)."""


class NoCandidatePair(IceFailed):
    """None of the peer's addresses can be paired with ours (e.g. IPv6 only against IPv4 only)."""


class ChecksFailed(IceFailed):
    """Every connectivity check failed, and neither side had a relayed (TURN) address."""


class RelayChecksFailed(IceFailed):
    """Every connectivity check failed, those through the TURN relay too."""


class TurnRefused(IceFailed):
    """The TURN server refused the credentials (user name or credential wrong or expired)."""


class TurnUnreachable(IceFailed):
    """The TURN server did not answer (wrong host or port, or blocked on the way)."""


class TurnTlsFailed(TurnUnreachable):
    """The TLS connection to the TURN server (turns:) failed: its certificate was not accepted."""


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


class NostrKeyError(TransportUsageError):
    """A Nostr key is not a valid secp256k1 key (32-byte secret in 1..n-1, x-only public key)."""


class EnvelopeError(TransportError):
    """A sealed Nostr event (gift wrap) was refused. See specs/mailbox.md §4."""


class EnvelopeMalformed(EnvelopeError):
    """The event is not a well-formed gift wrap (JSON, fields, kind or tags)."""


class EnvelopeTooLarge(EnvelopeError):
    """The event, or the bytes to seal, exceed the mailbox size limits."""


class EnvelopeExpired(EnvelopeError):
    """The gift wrap has expired (NIP-40) or was dated in the future."""


class EnvelopeNotForUs(EnvelopeError):
    """The gift wrap is addressed (`p` tag) to another key."""


class EnvelopeForged(EnvelopeError):
    """The gift wrap does not authenticate: its id, a signature, the encryption or the layers."""


class RelayError(TransportError):
    """A Nostr relay could not be used."""


class PublishFailed(RelayError):
    """No relay accepted the event."""
