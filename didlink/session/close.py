"""How a live session ends: the outcome of a failure, the wait at quit, the Close, the warnings.

The node (didlink/session/node.py) decides when a session ends; this module holds the steps of the
end that do not depend on the node's state (specs/cli-jsonl.md section 6):

- a failure (timeout, handshake, protocol, transport, local store) becomes one `Outcome` and
  one error line;
- at quit, a verified session gives receipts and file acks up to `Timeouts.flush` seconds;
- `send_close` puts a `Close` on the wire if the channel is still open: a responder that has
  not received the initiator's Hello cannot send yet, so it waits `HELLO_GRACE` seconds for it
  so that the peer learns why; then the writer gets `CLOSE_FLUSH` seconds to send it;
- after a rejected SAS the user is told that the connection may have been intercepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from didlink.profile.store_file import StoreError
from didlink.session.commands import EventSink
from didlink.session.outcome import (
    EXIT_FAILED,
    EXIT_STORE,
    STORE_ERROR,
    HandshakeFailed,
    Outcome,
    PhaseTimeout,
)
from messaging.channel import SecureChannel
from messaging.errors import MessagingError
from transport import Flag

SAS_REJECTED = "sas rejected"  # the `closed` reason (and the Close's) when our user rejected
SAS_REJECTED_BY_PEER = "sas rejected by peer"
HELLO_GRACE = 2.0  # closing before the Hello: seconds to wait so that the Close can be sent
CLOSE_FLUSH = 5.0  # seconds the writer may take to send the Close


def failure_outcome(exc: Exception) -> tuple[Outcome, str]:
    """The outcome of a session that failed with `exc` (PhaseTimeout, HandshakeFailed,
    MessagingError or TransportError), and the error line to report."""
    if isinstance(exc, PhaseTimeout):
        return Outcome("timeout", EXIT_FAILED), str(exc)
    if isinstance(exc, HandshakeFailed):
        return (
            Outcome("handshake failed", EXIT_FAILED),
            f"the secure handshake failed ({exc.__cause__})",
        )
    if isinstance(exc, MessagingError):
        return Outcome("protocol error", EXIT_FAILED), f"the secure session failed ({exc})"
    if isinstance(exc, StoreError):  # names the file and what to do
        return Outcome(STORE_ERROR, EXIT_STORE), str(exc)
    return Outcome("connection lost", EXIT_FAILED), str(exc)


def sas_rejected(reason: str) -> bool:
    """The session ended because either user rejected the SAS."""
    return reason in (SAS_REJECTED, SAS_REJECTED_BY_PEER)


def warn_rejected(sink: EventSink, reason: str, peer_did: str) -> None:
    """After a rejected SAS: the connection may have been intercepted; nothing was sent."""
    if reason == SAS_REJECTED:
        sink.warn(
            "You rejected the SAS: this connection may have been intercepted. Nothing was"
            f" sent and {peer_did} stays unverified."
        )
    elif reason == SAS_REJECTED_BY_PEER:
        sink.warn(
            f"The other side ({peer_did}) rejected the SAS: this connection may have been"
            " intercepted. Nothing was sent and they stay unverified."
        )


async def wait_acknowledged(
    *,
    busy: Callable[[], bool],
    progressed: Flag,
    ended: Flag,
    limit: float,
) -> None:
    """At quit: until nothing is `busy` (unacknowledged), the session ended or `limit` s passed.

    `progressed` is set on every receipt, file ack and end of a file task.
    """
    deadline = time.monotonic() + limit
    while busy() and not (ended.is_set() or time.monotonic() > deadline):
        progressed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline - time.monotonic()):
                await progressed.wait()


async def send_close(
    channel: SecureChannel,
    reason: str,
    *,
    hello: Flag,
    kick_writer: Callable[[], None],
    writer_idle: Flag,
) -> None:
    """Queue a `Close` on the open channel and give the writer a few seconds to send it."""
    with contextlib.suppress(MessagingError, TimeoutError):
        channel.close(reason)
        if not channel.session.can_send:  # the responder before the Hello: wait a bit,
            async with asyncio.timeout(HELLO_GRACE):  # so the peer learns why
                await hello.wait()
    with contextlib.suppress(TimeoutError):
        kick_writer()
        async with asyncio.timeout(CLOSE_FLUSH):
            await writer_idle.wait()


async def stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the session's tasks and wait until each has ended."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
