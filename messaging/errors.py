"""Every error the messaging package raises derives from `MessagingError`.

`LocalProtocolError`: this side misused the API (a bug in the caller).
`RemoteProtocolError`: the peer sent something that breaks the protocol.
`CryptoFailure`: a cryptographic check failed; deliberately opaque, it never says which one.
"""

from __future__ import annotations


class MessagingError(Exception):
    """Base class of every messaging error."""


class LocalProtocolError(MessagingError):
    """The caller used the API in a way the protocol does not allow."""


class RemoteProtocolError(MessagingError):
    """The peer sent something the protocol does not allow."""


class CryptoFailure(RemoteProtocolError):
    """A message failed authentication (tampered, replayed, or from the wrong key)."""

    def __init__(self, message: str = "message failed authentication") -> None:
        super().__init__(message)
