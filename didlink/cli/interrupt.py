"""Ctrl-C in the line mode while a file is being sent or received: a second one quits.

Theory of operation (specs/cli-jsonl.md section 3)
--------------------------------------------------
A person in the line mode (`invite`, `accept`, `chat` on a pipe or with TERM=dumb, no
`--jsonl`) who presses Ctrl-C in the middle of a transfer is told what is still running and
that a second Ctrl-C within `WINDOW` seconds quits; the session goes on. Any other Ctrl-C (no
transfer, or the second one in time) does what Ctrl-C always did: it is handed to the handler
that was in place before (asyncio's, which cancels the session and ends the process with
"interrupted", exit 130). The chat screen asks in its own prompt (didlink/chat/screen.py), and
`--jsonl` keeps the plain signal: neither installs this.

The handler runs in the event loop (`loop.add_signal_handler`), so it may look at the node.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from didlink.words.transfer import RESUMES, TransferInProgress, still_running

WINDOW = 5.0
"""Seconds within which a second Ctrl-C quits."""


class InterruptGuard:
    """SIGINT while `running()` names a transfer: warn (`tell`) once, quit on a second one."""

    def __init__(
        self,
        *,
        running: Callable[[], Sequence[TransferInProgress]],
        tell: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._running = running
        self._tell = tell
        self._clock = clock
        self._warned_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None

    def install(self) -> None:
        """Take SIGINT in the running loop (main thread only; elsewhere nothing changes)."""
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGINT)
        try:
            loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            return
        self._loop, self._previous = loop, previous

    def remove(self) -> None:
        """Give SIGINT back to the handler that was there before `install`."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.remove_signal_handler(signal.SIGINT)
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _on_interrupt(self) -> None:
        now = self._clock()
        recent = self._warned_at is not None and now - self._warned_at <= WINDOW
        running = self._running()
        if running and not recent:
            self._warned_at = now
            self._tell(
                f"{still_running(running)}: press Ctrl-C again within {WINDOW:g} seconds to"
                f" quit anyway ({RESUMES})."
            )
            return
        previous = self._previous
        self.remove()
        if previous is signal.SIG_IGN:
            return
        if callable(previous):
            frame: FrameType | None = None
            previous(signal.SIGINT, frame)  # asyncio's: cancel the session, then exit 130
        else:  # SIG_DFL / SIG_IGN were in place: Python's own behaviour
            raise KeyboardInterrupt
