"""A recording EventSink for tests that drive a Node or a Delivery without a terminal."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Recorded:
    """One event as the node emitted it (monotonic time since the sink was made)."""

    event: str
    fields: dict[str, Any]
    at: float


class RecordingSink:
    """An EventSink keeping every event and warning; `until()` waits (bounded) for a condition."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[Recorded] = []
        self.warnings: list[str] = []
        self._t0 = time.monotonic()
        self._changed = asyncio.Event()

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append(Recorded(event, fields, time.monotonic() - self._t0))
        self._changed.set()

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self._changed.set()

    def of(self, event: str) -> list[dict[str, Any]]:
        """The fields of every `event` so far, in emission order."""
        return [r.fields for r in self.events if r.event == event]

    def count(self, event: str) -> int:
        return sum(1 for r in self.events if r.event == event)

    async def until(self, condition: Any, *, timeout: float, what: str) -> None:  # noqa: ASYNC109
        """Wait until `condition()` holds; AssertionError on timeout or an early `closed`."""
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    closed = self.of("closed")
                    if closed:
                        raise AssertionError(
                            f"{self.name}: session closed ({closed[0]}) while waiting for {what};"
                            f" errors: {self.of('error')}"
                        )
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: not within {timeout:g} s: {what}; errors: {self.of('error')}"
            ) from None
