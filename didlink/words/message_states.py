"""Our messages' states, and the sending time of the peer's, as a person sees them.

Signal's marks (specs/chat-ui.md section 2e): a text waiting in the outbox for a connection is
`…` queued; once it was handed to the live channel or a relay it is `✓` sent; once the peer's
receipt came it is `✓✓` delivered. The states only move forward: queued -> sent -> delivered
(a receipt may come before `sent` was reported: delivered then). `OwnMessages` follows them from
the events of specs/cli-jsonl.md section 2 (`queued`, `sent`, `delivered`) for the chat screen
and the line mode alike; `sent_note` words the peer's sending time (a text's `at`,
specs/frames.md 5b) when it differs from the arrival.

Everything returned here is display-safe: a text (ours, but perhaps pasted from anywhere) is
cut and escaped through `didlink.words.display`, the times are ours to format.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from didlink.words.display import shown
from didlink.words.when import clock_time, utc_time

SAME_TIME = timedelta(minutes=1)
"""A sending time within this of the arrival (the same local day) is not shown."""
EXCERPT_CHARS = 40


class MessageState(enum.Enum):
    """Where one of our texts is (module docstring)."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"


MARKS = {
    MessageState.QUEUED: "\u2026",  # …
    MessageState.SENT: "\u2713",  # ✓
    MessageState.DELIVERED: "\u2713\u2713",  # ✓✓
}
LEGEND = "(\u2026 queued: it leaves once you are connected; \u2713 sent; \u2713\u2713 delivered)"


def excerpt(text: str) -> str:
    """The start of one of our texts on one display-safe line."""
    return shown(" ".join(text.split()), limit=EXCERPT_CHARS)


def state_line(state: MessageState, text: str) -> str:
    """A compact line for a text that changed state: `✓ sent: hello`."""
    return f"{MARKS[state]} {state.value}: {excerpt(text)}"


@dataclass
class _Own:
    text: str
    state: MessageState


class OwnMessages:
    """Our texts by id (the events' hex `id`) and their states: what a frontend shows."""

    def __init__(self) -> None:
        self._messages: dict[object, _Own] = {}

    def queued(self, message_id: object, text: str) -> bool:
        """A text waits in the outbox; True if it is new here (not already followed)."""
        if message_id in self._messages:
            return False
        self._messages[message_id] = _Own(text, MessageState.QUEUED)
        return True

    def sent(self, message_id: object, text: str | None = None) -> tuple[str, bool] | None:
        """`sent` for a text: (its text, whether it was shown queued before), or None for an
        unknown id (a text given without a text here) or one that is past `sent` already."""
        own = self._messages.get(message_id)
        if own is None:
            if text is None:
                return None
            self._messages[message_id] = _Own(text, MessageState.SENT)
            return text, False
        if own.state is not MessageState.QUEUED:
            return None
        own.state = MessageState.SENT
        return own.text, True

    def delivered(self, message_id: object) -> str | None:
        """The receipt came: the text (the id is forgotten), or None for an unknown id."""
        own = self._messages.pop(message_id, None)
        return None if own is None else own.text

    def count(self, state: MessageState) -> int:
        return sum(own.state is state for own in self._messages.values())

    def state(self, message_id: object) -> MessageState | None:
        own = self._messages.get(message_id)
        return None if own is None else own.state


def sent_note(sent_at: object, arrived: datetime) -> str | None:
    """`sent 14:02` (or `sent 2026-12-07 14:02`) when the peer's sending time differs from the
    arrival by more than a minute or falls on another local day; None when it does not or the
    peer gave none. The time is the peer's clock: shown as given, never trusted."""
    moment = utc_time(sent_at)
    if moment is None:
        return None
    arrived = arrived.astimezone()
    try:
        if abs(moment - arrived) <= SAME_TIME and moment.astimezone().date() == arrived.date():
            return None
        return f"sent {clock_time(moment, beside=arrived)}"
    except (OverflowError, ValueError, OSError):  # 9999-12-31 in a zone east of UTC: year 10000
        return f"sent {moment.strftime('%Y-%m-%d %H:%M')} UTC"
