"""What a live session waits for: every wait races the user's quit and the session's end.

`race` is the one way a session waits (specs/cli-jsonl.md section 6): the awaited result, or
`QuitRequested` / `SessionEnded` / `PhaseTimeout` (didlink/session/outcome.py) if the user quits,
the session ends or the phase's time runs out first. Two of the things waited for are the
user's answers, given by commands at any time:

- `ResponseTokens`: the inviter's inbox for the response token, open while the inviter waits
  for one, shut for good once a valid one was taken (an invitation connects only once);
- `SasDecision`: the user's confirmation or rejection of the SAS shown after the handshake
  (section 4), or a confirmation on the user's behalf for a verified contact (section 4a).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from didlink.session.commands import EventSink
from didlink.session.outcome import PhaseTimeout, QuitRequested, SessionEnded
from messaging.sas import ShortAuthString
from transport import Flag

T = TypeVar("T")


async def race(
    awaitable: Awaitable[T],
    limit: float | None,
    what: str,
    *,
    quit_: Flag,
    ended: Flag,
) -> T:
    """`awaitable`'s result; QuitRequested, SessionEnded or PhaseTimeout(what) first."""
    main = asyncio.ensure_future(awaitable)
    quitting = asyncio.ensure_future(quit_.wait())
    ending = asyncio.ensure_future(ended.wait())
    try:
        done, _ = await asyncio.wait(
            {main, quitting, ending}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (quitting, ending):
            task.cancel()
    if main in done:
        return main.result()
    main.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await main
    if quitting in done:
        raise QuitRequested()
    if ending in done:
        raise SessionEnded()
    raise PhaseTimeout(f"{what} took longer than {limit or 0:g} s")


class ResponseTokens:
    """The inviter's inbox for response tokens: opened by the first wait, shut when answered."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] | None = None
        self._answered = False

    def open(self) -> asyncio.Queue[str]:
        """The queue the inviter waits on (made by the first wait, kept until `stop`)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
        return self._queue

    def submit(self, token: str) -> str | None:
        """Hand a token the user gave to the waiting inviter; else why it is refused."""
        if self._queue is not None:
            self._queue.put_nowait(token)
            return None
        if self._answered:
            return "this invitation was already answered: it connects only once"
        return "no response token is expected now"

    def stop(self) -> None:
        """A valid response was taken: any further one is refused (single use)."""
        self._queue = None
        self._answered = True


class SasDecision:
    """The user's answer to the SAS of the session: asked once, answered once."""

    def __init__(self, *, sink: EventSink) -> None:
        self._sink = sink
        self._answer: asyncio.Future[bool] | None = None

    def ask(self, handshake_hash: bytes, *, known_verified: bool) -> asyncio.Future[bool]:
        """Show the SAS (`sas` event) and return the future answer; for a contact verified
        before, the answer is yes at once and nothing is shown."""
        self._answer = asyncio.get_running_loop().create_future()
        if known_verified:  # verified before: the Noise KK handshake authenticated the DID
            self._answer.set_result(True)
        else:
            sas = ShortAuthString.from_handshake_hash(handshake_hash)
            self._sink.emit(
                "sas",
                emoji=[e.emoji for e in sas.emoji],
                names=list(sas.names()),
                decimal=list(sas.decimal),
            )
        return self._answer

    def answer(self, confirmed: bool) -> str | None:
        """The user confirmed (or rejected) the SAS; else why this answer is refused."""
        if self._answer is None or self._answer.done():
            return "there is no SAS waiting for a decision now"
        self._answer.set_result(confirmed)
        return None
