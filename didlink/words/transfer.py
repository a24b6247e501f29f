"""File transfers worded for a person: sizes, progress lines, "still being sent" before a quit.

Shared by the chat screen (didlink/chat/screen.py) and the line mode (didlink/jsonl.py
`HumanSink`, didlink/cli/interrupt.py). A file's name may come from the peer: it is always shown
through `didlink.words.display.shown`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from didlink.words.display import shown

NAME_CHARS = 60
"""A file name is cut to about this many characters in a progress line or a question."""
OUT, IN = "out", "in"
"""The `direction` of a `progress` event (specs/cli-jsonl.md section 2): ours, the peer's."""


@dataclass(frozen=True)
class TransferInProgress:
    """One file being sent (`direction` "out") or received ("in"): `done` of `total` bytes;
    `id` as in its `progress` events."""

    direction: str
    name: str
    done: int
    total: int
    id: str = ""


def human_size(size: int) -> str:
    """1234567 -> '1.2 MB' (decimal units, like file managers)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def verb(direction: str) -> str:
    """'sending' for our file, 'receiving' for the peer's."""
    return "sending" if direction == OUT else "receiving"


def progress_line(direction: str, name: str, done: int, total: int) -> str:
    """'receiving photo.jpg: 37% (1.2 MB of 3.3 MB)' (the line mode's progress line)."""
    percent = 100 * done // total if total else 100
    return (
        f"{verb(direction)} {shown(name, limit=NAME_CHARS)}: {percent}%"
        f" ({human_size(done)} of {human_size(total)})"
    )


def still_running(running: Sequence[TransferInProgress]) -> str:
    """'report.pdf is still being sent (3.2 MB of 10.0 MB)', or for several
    '2 files are still being sent or received'."""
    if len(running) == 1:
        [one] = running
        how = "sent" if one.direction == OUT else "received"
        return (
            f"{shown(one.name, limit=NAME_CHARS)} is still being {how}"
            f" ({human_size(one.done)} of {human_size(one.total)})"
        )
    ways = {transfer.direction for transfer in running}
    how = "sent or received" if len(ways) > 1 else "sent" if OUT in ways else "received"
    return f"{len(running)} files are still being {how}"


RESUMES = "it resumes the next time you connect"


def queued_file_line(name: object, size: object) -> str:
    """A file of ours queued for a live session (a `queued` event's `files` entry):
    `… queued: file notes.pdf (1.2 MB)`."""
    size_words = f" ({human_size(size)})" if isinstance(size, int) and size >= 0 else ""
    return f"\u2026 queued: file {shown(str(name), limit=NAME_CHARS)}{size_words}"


def unsent_file_line(name: object, reason: object) -> str:
    """A queued file that was not sent and left the queue (`file_unsent`): one line."""
    what = (
        "changed since it was queued"
        if reason == "changed"
        else "is gone or cannot be read any more"
    )
    return (
        f"not sent: {shown(str(name), limit=NAME_CHARS)} {what}; it left the queue"
        " (send it again to send it as it is now)"
    )
