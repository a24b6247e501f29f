"""What a user asks of a live session, and where a session reports what happens.

The machinery's side of a session's interface (didlink/session/node.py and its helpers): the
commands a frontend hands to a session (small frozen classes), what a typed line means right now
(`Expecting`), and the `EventSink` protocol the node reports its events through. The frontends spell
them: didlink/jsonl.py (JSON lines, the line mode), didlink/chat/screen.py (the chat screen),
didlink/agent.py (event objects). Nothing here prints or parses.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass
from typing import Any, Protocol

# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitResponse:
    """The invitee's response token, pasted back to the inviter."""

    token: str


@dataclass(frozen=True)
class ConfirmSas:
    """The user saw the same SAS as their contact."""


@dataclass(frozen=True)
class RejectSas:
    """The SAS differs (or the user does not want to confirm it)."""


@dataclass(frozen=True)
class SendText:
    """A chat message; `ref` is any JSON value echoed back in the `sent` event."""

    text: str
    ref: Any = None


@dataclass(frozen=True)
class SendFile:
    """Send the file at `path`."""

    path: str


@dataclass(frozen=True)
class Quit:
    """Flush, close, exit. `wait_for_files` False: do not wait for the files being sent (the
    person chose to quit during a transfer; it resumes in a later session)."""

    wait_for_files: bool = True


@dataclass(frozen=True)
class AcceptFile:
    """Receive the file the peer offered (`--files ask`); `id` None: the oldest one asked."""

    id: str | None = None


@dataclass(frozen=True)
class RefuseFile:
    """Refuse the file the peer offered (`--files ask`); `id` None: the oldest one asked."""

    id: str | None = None


Command = (
    SubmitResponse | ConfirmSas | RejectSas | SendText | SendFile | Quit | AcceptFile | RefuseFile
)


class Expecting(enum.Enum):
    """What a typed line means right now (the line-based human mode)."""

    RESPONSE = "response"  # the inviter waits for the pasted response token
    SAS = "sas"  # a y/N answer to "do the SAS match?"
    CHAT = "chat"  # a message, or /send PATH, /quit
    FILE = "file"  # a y/N answer to "Receive file NAME (SIZE) from PEER?" (--files ask)


# --- events ----------------------------------------------------------------------------------


class EventSink(Protocol):
    """Where a session reports what happens."""

    def emit(self, event: str, **fields: Any) -> None: ...

    def warn(self, text: str) -> None: ...


def held(sink: EventSink) -> contextlib.AbstractContextManager[None]:
    """`sink.held()` where the sink batches its output (JSON lines: the events of one received
    frame written together); other sinks show each event at once, as a person expects."""
    batch = getattr(sink, "held", None)
    return batch() if callable(batch) else contextlib.nullcontext()
