"""The file transfers of one live session: the asyncio side of didlink/files.py.

Theory of operation (specs/cli-jsonl.md section 5)
--------------------------------------------------
Sending: one task per file queues its `FileOffer`, then three chunks at a time, each time
waiting (`flush`) until the session's writer handed everything queued to the transport, so a
file of any size holds at most a few frames in memory and `Peer.send`'s backpressure paces it.
`file_sent` is emitted when the peer's `FileAck` covers the whole file.

Receiving: `FileOffer` opens an `IncomingFile`, `FileChunk`s are written in order; when the file
is complete and its SHA-256 matches, it is moved into the downloads folder, `file` is emitted
and a `FileAck` queued. A broken transfer (bad name, chunk out of order, hash mismatch, disk
error) is reported as an `error` event, its partial file deleted and its later chunks ignored;
the session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from didlink.errors import UserError
from didlink.files import FileTransferError, IncomingFile, OutgoingFile
from messaging.channel import ChannelState, SecureChannel
from messaging.errors import MessagingError
from messaging.frames import FileAck, FileChunk, FileOffer

CHUNKS_PER_ROUND = 3  # 3 x 64 KiB chunks fill one 256 KiB frame

Emit = Callable[..., None]


class Transfers:
    """Every file sent or received in one session."""

    def __init__(
        self,
        *,
        channel: SecureChannel,
        downloads: Path,
        peer_did: str,
        emit: Emit,
        flush: Callable[[], Awaitable[None]],
        kick: Callable[[], None],
        progressed: Callable[[], None],
    ) -> None:
        self._channel = channel
        self._downloads = downloads
        self._peer_did = peer_did
        self._emit = emit
        self._flush = flush
        self._kick = kick
        self._progressed = progressed
        self._incoming: dict[bytes, IncomingFile | None] = {}  # None: finished or given up
        self._outgoing: dict[bytes, OutgoingFile] = {}  # sent, waiting for the peer's ack
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> bool:
        """Some file is still being sent or not yet acknowledged."""
        return bool(self._outgoing or self._tasks)

    @property
    def unacknowledged(self) -> bool:
        return bool(self._outgoing)

    # -- sending -----------------------------------------------------------------------------

    def send(self, outgoing: OutgoingFile) -> None:
        """Start sending `outgoing` in its own task."""
        task = asyncio.create_task(self._send(outgoing))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._progressed()

    async def _send(self, outgoing: OutgoingFile) -> None:
        try:
            self._channel.send(outgoing.offer())
            self._outgoing[outgoing.file_id] = outgoing
            while not outgoing.done and self._channel.state is ChannelState.OPEN:
                for chunk in outgoing.next_chunks(CHUNKS_PER_ROUND):
                    self._channel.send(chunk)
                await self._flush()
                if outgoing.size and outgoing.progress.due(outgoing.offset):
                    self._emit(
                        "progress", id=outgoing.id, bytes=outgoing.offset, total=outgoing.size
                    )
        except (FileTransferError, UserError, MessagingError) as exc:
            self._emit("error", message=str(exc))
            self._outgoing.pop(outgoing.file_id, None)
        finally:
            outgoing.close()

    def on_ack(self, ack: FileAck) -> None:
        outgoing = self._outgoing.get(ack.file_id)
        if outgoing is None or ack.next_offset < outgoing.size:
            return
        del self._outgoing[ack.file_id]
        self._progressed()
        self._emit(
            "file_sent",
            id=outgoing.id,
            name=outgoing.name,
            size=outgoing.size,
            sha256=outgoing.sha256.hex(),
        )

    # -- receiving ---------------------------------------------------------------------------

    def on_data(self, message: FileOffer | FileChunk) -> None:
        """A received offer or chunk; a broken transfer becomes an `error` event."""
        try:
            self._receive(message)
        except FileTransferError as exc:
            self._emit("error", message=str(exc))
            previous = self._incoming.get(message.file_id)
            if previous is not None:
                previous.abort()
            self._incoming[message.file_id] = None  # ignore the rest of this file

    def _receive(self, message: FileOffer | FileChunk) -> None:
        if isinstance(message, FileOffer):
            if message.file_id in self._incoming:
                raise FileTransferError("the peer offered the same file twice")
            incoming = IncomingFile(message, self._downloads)
            self._incoming[message.file_id] = incoming
        else:
            if message.file_id not in self._incoming:
                raise FileTransferError("the peer sent a chunk of a file it did not offer")
            found = self._incoming[message.file_id]
            if found is None:
                return  # a file we gave up on
            incoming = found
            incoming.write(message)
            if incoming.progress.due(incoming.received):
                self._emit("progress", id=incoming.id, bytes=incoming.received, total=incoming.size)
        if incoming.complete:
            self._incoming[message.file_id] = None
            path, ack = incoming.finish()
            self._channel.send(ack)
            self._kick()
            fields: dict[str, Any] = {"from": self._peer_did}
            self._emit(
                "file",
                **fields,
                id=incoming.id,
                name=incoming.name,
                size=incoming.size,
                sha256=incoming.offer.sha256.hex(),
                path=str(path),
            )

    # -- the end -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop sending, delete partial downloads."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for incoming in self._incoming.values():
            if incoming is not None:
                incoming.abort()
