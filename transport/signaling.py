"""Signaling: how compact offers and answers reach the other peer (specs/transport.md §9).

One small interface, `Signaling`, moves opaque blobs (the layer above decides what they are:
a bare compact offer, or an invitation carrying one). Two backends for now:

- `LoopbackSignaling.pair()`: two ends joined by bounded in-process queues (tests, demo).
- `ManualSignaling`: the application supplies `deliver` (show a token to the user, print it on
  stdout, write it to a pipe) and `obtain` (ask the user to paste the peer's token); helpers turn
  blobs into text with base64url so they survive copy and paste.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from typing import Protocol

from transport.errors import SignalingError, TransportTimeout

MAX_BLOB_BYTES = 64 * 1024
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


class Signaling(Protocol):
    """Exchange opaque blobs with the other peer."""

    async def send(self, blob: bytes) -> None:
        """Deliver one blob to the peer."""
        ...

    async def receive(self, timeout: float) -> bytes:  # noqa: ASYNC109 - typed timeout error
        """The peer's next blob; TransportTimeout after `timeout` seconds."""
        ...


def _check_blob(blob: bytes) -> bytes:
    if not isinstance(blob, bytes):
        raise SignalingError("A signaling blob must be bytes.")
    if len(blob) > MAX_BLOB_BYTES:
        raise SignalingError(f"A signaling blob is at most {MAX_BLOB_BYTES} bytes.")
    return blob


class LoopbackSignaling:
    """One end of an in-process pair; what one end sends the other receives."""

    def __init__(self, inbox: asyncio.Queue[bytes], outbox: asyncio.Queue[bytes]) -> None:
        self._inbox = inbox
        self._outbox = outbox

    @classmethod
    def pair(cls, *, capacity: int = 8) -> tuple[LoopbackSignaling, LoopbackSignaling]:
        """Two connected ends (bounded queues of `capacity` blobs each way)."""
        a_to_b: asyncio.Queue[bytes] = asyncio.Queue(capacity)
        b_to_a: asyncio.Queue[bytes] = asyncio.Queue(capacity)
        return cls(b_to_a, a_to_b), cls(a_to_b, b_to_a)

    async def send(self, blob: bytes) -> None:
        """Queue the blob for the other end; SignalingError if it is not being read."""
        try:
            self._outbox.put_nowait(_check_blob(blob))
        except asyncio.QueueFull:
            raise SignalingError("The other end is not reading signaling messages.") from None

    async def receive(self, timeout: float) -> bytes:  # noqa: ASYNC109 - typed timeout error
        """The other end's next blob."""
        try:
            async with asyncio.timeout(timeout):
                return await self._inbox.get()
        except TimeoutError:
            raise TransportTimeout(f"No signaling message arrived within {timeout:g} s.") from None


class ManualSignaling:
    """Signaling through the application: `deliver` shows a blob, `obtain` fetches the peer's."""

    def __init__(
        self,
        *,
        deliver: Callable[[bytes], Awaitable[None]],
        obtain: Callable[[], Awaitable[bytes]],
    ) -> None:
        self._deliver = deliver
        self._obtain = obtain

    async def send(self, blob: bytes) -> None:
        """Hand the blob to the application's `deliver`."""
        await self._deliver(_check_blob(blob))

    async def receive(self, timeout: float) -> bytes:  # noqa: ASYNC109 - typed timeout error
        """Wait (bounded) for the application's `obtain` to return the peer's blob."""
        try:
            async with asyncio.timeout(timeout):
                return _check_blob(await self._obtain())
        except TimeoutError:
            raise TransportTimeout(f"No signaling message arrived within {timeout:g} s.") from None


def blob_to_text(blob: bytes) -> str:
    """base64url without padding: a token that survives copy and paste."""
    return base64.urlsafe_b64encode(_check_blob(blob)).rstrip(b"=").decode("ascii")


def text_to_blob(text: str) -> bytes:
    """Inverse of `blob_to_text`; whitespace around the token is ignored."""
    token = text.strip()
    if not token or len(token) > MAX_BLOB_BYTES * 2 or not _TOKEN.fullmatch(token):
        raise SignalingError("The pasted token is empty, too long or not base64url.")
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise SignalingError("The pasted token is not valid base64url.") from None
