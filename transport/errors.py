"""Every error the transport package raises derives from `TransportError`."""

from __future__ import annotations


class TransportError(Exception):
    """Base class of every transport error."""
