"""didlink: self-sovereign identity and private, serverless messaging.

The public API is `Agent` (didlink/agent.py), its `Session`, the event classes of
didlink/events.py and the errors below:

    from didlink import Agent, MessageReceived

Names are imported on first use (PEP 562), so that `import didlink` (and every CLI command
that makes no connection) does not load the WebRTC stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Agent": "didlink.agent",
    "Session": "didlink.agent",
    "SessionClosed": "didlink.agent",
    "NoRendezvous": "didlink.agent",
    "UserError": "didlink.errors",
    "Contact": "identity.contact",
    "Verification": "identity.contact",
    "IdentityError": "identity.errors",
    "SafetyNumber": "messaging.safety_number",
    "FilePolicy": "didlink.file_policy",
    "Event": "didlink.events",
    "TokenReady": "didlink.events",
    "SasShown": "didlink.events",
    "Connected": "didlink.events",
    "MessageSent": "didlink.events",
    "Delivered": "didlink.events",
    "MessageReceived": "didlink.events",
    "Queued": "didlink.events",
    "QueuedMessage": "didlink.events",
    "Progress": "didlink.events",
    "FileReceived": "didlink.events",
    "FileSent": "didlink.events",
    "FileOffered": "didlink.events",
    "FileRefused": "didlink.events",
    "FileUnsent": "didlink.events",
    "QueuedFile": "didlink.events",
    "SessionError": "didlink.events",
    "SessionWarning": "didlink.events",
    "Closed": "didlink.events",
    "ContactOffline": "didlink.events",
    "MailboxMessage": "didlink.events",
    "MailboxDelivered": "didlink.events",
    "TokenMissing": "didlink.custody.device_token",
    "TokenPinNeeded": "didlink.custody.device_token",
    "RelayState": "didlink.events",
}

__all__ = [
    "Agent",
    "Closed",
    "Connected",
    "Contact",
    "ContactOffline",
    "Delivered",
    "Event",
    "FileOffered",
    "FilePolicy",
    "FileReceived",
    "FileRefused",
    "FileSent",
    "FileUnsent",
    "IdentityError",
    "MailboxDelivered",
    "MailboxMessage",
    "MessageReceived",
    "MessageSent",
    "NoRendezvous",
    "Progress",
    "Queued",
    "QueuedFile",
    "QueuedMessage",
    "RelayState",
    "SafetyNumber",
    "SasShown",
    "Session",
    "SessionClosed",
    "SessionError",
    "SessionWarning",
    "TokenMissing",
    "TokenPinNeeded",
    "TokenReady",
    "UserError",
    "Verification",
    "__version__",
]

if TYPE_CHECKING:
    from didlink.agent import Agent, NoRendezvous, Session, SessionClosed
    from didlink.custody.device_token import TokenMissing, TokenPinNeeded
    from didlink.errors import UserError
    from didlink.events import (
        Closed,
        Connected,
        ContactOffline,
        Delivered,
        Event,
        FileOffered,
        FileReceived,
        FileRefused,
        FileSent,
        FileUnsent,
        MailboxDelivered,
        MailboxMessage,
        MessageReceived,
        MessageSent,
        Progress,
        Queued,
        QueuedFile,
        QueuedMessage,
        RelayState,
        SasShown,
        SessionError,
        SessionWarning,
        TokenReady,
    )
    from didlink.file_policy import FilePolicy
    from identity.contact import Contact, Verification
    from identity.errors import IdentityError
    from messaging.safety_number import SafetyNumber


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'didlink' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
