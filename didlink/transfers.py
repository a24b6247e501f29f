"""The file transfers of one live session: the asyncio side of didlink/files.py.

Theory of operation (specs/cli-jsonl.md section 5)
--------------------------------------------------
Sending: one task per file hashes it in a worker thread if it is not yet (reading gigabytes
takes seconds; the session's loop goes on), queues its `FileOffer`, then three chunks at a
time, each time waiting (`flush`) until the session's writer handed everything queued to the
transport, so a file of any size holds at most a few frames in memory and `Peer.send`'s
backpressure paces it.
`file_sent` is emitted when the peer's `FileAck` covers the whole file.

Receiving: `FileOffer` opens an `IncomingFile`, `FileChunk`s are written in order; when the file
is complete and its SHA-256 matches, it is moved into the downloads folder, `file` is emitted
and a `FileAck` queued. A broken transfer (bad name, chunk out of order, hash mismatch, disk
error) is reported as an `error` event, its partial file deleted and its later chunks ignored;
the session goes on.

Resuming (with `states`, didlink/resume.py): every offer is answered at once with
`FileAck(next_offset = bytes already held)` (0 for a new file). The sender writes its state
before the offer leaves and forgets it at the final ack; at the next verified session
`resume_outgoing` offers each unfinished file again under its id, waits for that first ack and
sends from its `next_offset`. The receiver keeps its part file when the session ends, re-hashes
it on the re-offer, and acknowledges a file it already saved without taking it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from didlink.errors import UserError
from didlink.files import FileTransferError, IncomingFile, OutgoingFile
from didlink.resume import OutgoingState, TransferStates
from didlink.store import StoreError
from messaging.channel import ChannelState, SecureChannel
from messaging.errors import MessagingError
from messaging.frames import FileAck, FileChunk, FileOffer

CHUNKS_PER_ROUND = 3  # one frame: three data-channel messages (files.CHUNK_SIZE)
MAX_INCOMING_FILES = 8  # files a peer may have in progress towards us at once
RESUME_TIMEOUT = 30.0  # seconds a resumed offer waits for the receiver's first ack

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
        states: TransferStates | None = None,
        store_failed: Callable[[StoreError], None] | None = None,
    ) -> None:
        self._channel = channel
        self._store_failed = store_failed  # the session ends with it (else: an `error` event)
        self._states = states
        self._resume_points: dict[bytes, asyncio.Future[int]] = {}
        self._downloads = downloads
        self._peer_did = peer_did
        self._emit = emit
        self._flush = flush
        self._kick = kick
        self._progressed = progressed
        self._incoming: dict[bytes, IncomingFile | None] = {}  # None: finished or given up
        self._outgoing: dict[bytes, OutgoingFile] = {}  # sent, waiting for the peer's ack
        self._tasks: set[asyncio.Task[None]] = set()
        self._rehashing: dict[bytes, asyncio.Task[None]] = {}  # resumed part files being read

    @property
    def pending(self) -> bool:
        """Some file is still being sent or not yet acknowledged."""
        return bool(self._outgoing or self._tasks)

    @property
    def unacknowledged(self) -> bool:
        return bool(self._outgoing)

    # -- sending -----------------------------------------------------------------------------

    def send(self, outgoing: OutgoingFile, *, resume: OutgoingState | None = None) -> None:
        """Start sending `outgoing` in its own task: hashed first (in a thread) if it is not
        yet; `resume`, the state a previous session saved: the file must be unchanged, and the
        task waits for the receiver's offset."""
        task = asyncio.create_task(self._send(outgoing, resume=resume))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._progressed()

    def resume_outgoing(self) -> None:
        """Offer again every file to this peer that a previous session did not finish."""
        if self._states is None:
            return
        for state in self._states.outgoing(self._peer_did):
            try:
                outgoing = OutgoingFile(state.path, file_id=state.file_id, hash_now=False)
            except UserError as exc:
                self._states.forget(state.file_id)
                self._emit("error", message=f"cannot resume sending a file: {exc}")
                continue
            self.send(outgoing, resume=state)

    async def _send(self, outgoing: OutgoingFile, *, resume: OutgoingState | None = None) -> None:
        try:
            sha256 = await self._hashed(outgoing, resume)
            if self._states is not None:
                self._states.save_outgoing(
                    OutgoingState(
                        outgoing.file_id,
                        self._peer_did,
                        outgoing.path.resolve(),
                        outgoing.size,
                        sha256,
                    )
                )
            point: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            if resume is not None:
                self._resume_points[outgoing.file_id] = point
            self._channel.send(outgoing.offer())
            self._outgoing[outgoing.file_id] = outgoing
            if resume is not None:
                await self._flush()
                async with asyncio.timeout(RESUME_TIMEOUT):
                    offset = await point
                if outgoing.file_id not in self._outgoing:  # the peer had it all already
                    return
                outgoing.seek(offset)
            while not outgoing.done and self._channel.state is ChannelState.OPEN:
                for chunk in outgoing.next_chunks(CHUNKS_PER_ROUND):
                    self._channel.send(chunk)
                await self._flush()
                if outgoing.size and outgoing.progress.due(outgoing.offset):
                    self._emit(
                        "progress", id=outgoing.id, bytes=outgoing.offset, total=outgoing.size
                    )
        except StoreError as exc:  # its state cannot be saved: a store fault ends the session
            self._outgoing.pop(outgoing.file_id, None)
            if self._store_failed is None:
                self._emit("error", message=str(exc))
            else:
                self._store_failed(exc)
        except (FileTransferError, UserError, MessagingError) as exc:
            self._emit("error", message=str(exc))
            self._outgoing.pop(outgoing.file_id, None)
        except TimeoutError:
            self._emit("error", message=f"{outgoing.name}: the peer did not answer the resume")
            self._outgoing.pop(outgoing.file_id, None)
        finally:
            self._resume_points.pop(outgoing.file_id, None)
            outgoing.close()

    async def _hashed(self, outgoing: OutgoingFile, resume: OutgoingState | None) -> bytes:
        """The file's SHA-256, read in a thread (gigabytes take seconds; the session goes on
        meanwhile). A resumed file must be as the previous session left it: if it changed or
        cannot be read, its saved state is forgotten."""
        try:
            if not outgoing.hashed:
                await asyncio.to_thread(outgoing.hash)
        except UserError as exc:
            if resume is None:
                raise
            self._forget_state(outgoing)
            raise UserError(f"cannot resume sending a file: {exc}") from None
        if resume is not None and (outgoing.size, outgoing.sha256) != (resume.size, resume.sha256):
            self._forget_state(outgoing)
            raise FileTransferError(f"{outgoing.path} changed: its transfer is not resumed")
        return outgoing.sha256

    def _forget_state(self, outgoing: OutgoingFile) -> None:
        if self._states is not None:
            self._states.forget(outgoing.file_id)

    def on_ack(self, ack: FileAck) -> None:
        outgoing = self._outgoing.get(ack.file_id)
        if outgoing is None:
            return
        point = self._resume_points.pop(ack.file_id, None)
        if point is not None and not point.done():
            point.set_result(ack.next_offset)
        if ack.next_offset < outgoing.size:
            return
        del self._outgoing[ack.file_id]
        if self._states is not None:
            self._states.forget(ack.file_id)
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
            self._give_up(message.file_id, exc)

    def _give_up(self, file_id: bytes, exc: FileTransferError) -> None:
        """A broken incoming transfer: `error`, its part file deleted, the rest ignored."""
        self._emit("error", message=str(exc))
        rehashing = self._rehashing.pop(file_id, None)
        if rehashing is not None and rehashing is not asyncio.current_task():
            rehashing.cancel()  # its thread ends at its next read of the closed file
        previous = self._incoming.get(file_id)
        if previous is not None:
            previous.abort()
            if self._states is not None:
                self._states.forget(file_id)
        self._incoming[file_id] = None  # ignore the rest of this file

    def _receive(self, message: FileOffer | FileChunk) -> None:
        if isinstance(message, FileOffer):
            if message.file_id in self._incoming:
                raise FileTransferError("the peer offered the same file twice")
            if sum(f is not None for f in self._incoming.values()) >= MAX_INCOMING_FILES:
                raise FileTransferError(
                    f"refused {message.name!r}: the peer is already sending "
                    f"{MAX_INCOMING_FILES} files"
                )
            found_incoming = self._open_offer(message)
            if found_incoming is None:
                return
            self._answer_offer(found_incoming)
            return
        if message.file_id not in self._incoming:
            raise FileTransferError("the peer sent a chunk of a file it did not offer")
        if message.file_id in self._rehashing:
            raise FileTransferError("the peer sent a chunk before the offset to resume from")
        found = self._incoming[message.file_id]
        if found is None:
            return  # a file we gave up on
        incoming = found
        incoming.write(message)
        if incoming.progress.due(incoming.received):
            self._emit("progress", id=incoming.id, bytes=incoming.received, total=incoming.size)
        if incoming.complete:
            self._finish(incoming)

    def _answer_offer(self, incoming: IncomingFile) -> None:
        """Where to start (0: a new file, see the module doc), or the file is already whole."""
        if incoming.complete:
            self._finish(incoming)
            return
        file_id = incoming.offer.file_id
        self._channel.send(FileAck(file_id=file_id, next_offset=incoming.received))
        self._kick()

    async def _resume_incoming(self, incoming: IncomingFile) -> None:
        """Re-hash a resumed part file in a worker thread (gigabytes take seconds; the session
        goes on meanwhile), then answer the offer with the offset to resume from."""
        file_id = incoming.offer.file_id
        try:
            await asyncio.to_thread(incoming.rehash)
        except FileTransferError as exc:
            self._give_up(file_id, exc)
            return
        self._rehashing.pop(file_id, None)
        try:
            self._answer_offer(incoming)
        except FileTransferError as exc:
            self._give_up(file_id, exc)
        except MessagingError:
            pass  # the session ended meanwhile: the part file stays for the next one (`stop`)

    def _finish(self, incoming: IncomingFile) -> None:
        """All the bytes arrived: check the hash, save the file, acknowledge it, `file`."""
        self._incoming[incoming.offer.file_id] = None
        path, ack = incoming.finish()
        if self._states is not None:
            self._states.save_incoming(self._peer_did, incoming.offer, saved=str(path))
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

    def _open_offer(self, offer: FileOffer) -> IncomingFile | None:
        """A new or resumed incoming file; None if we saved this file in an earlier session."""
        known = None if self._states is None else self._states.incoming(offer.file_id)
        if known is None:
            incoming = IncomingFile(offer, self._downloads)
            if self._states is not None:
                self._states.save_incoming(self._peer_did, offer)
        elif known.peer_did != self._peer_did or known.offer != offer:
            self._incoming[offer.file_id] = None
            raise FileTransferError("the peer offered a known file id with other contents")
        elif known.saved is not None:  # the sender missed our last ack: say it again
            self._incoming[offer.file_id] = None
            self._channel.send(FileAck(file_id=offer.file_id, next_offset=offer.size))
            self._kick()
            return None
        else:  # answered once its part file is re-hashed
            incoming = IncomingFile(offer, self._downloads, resume=True)
            self._incoming[offer.file_id] = incoming
            task = asyncio.create_task(self._resume_incoming(incoming))
            self._rehashing[offer.file_id] = task
            task.add_done_callback(lambda done: self._rehashing.pop(offer.file_id, None))
            return None
        self._incoming[offer.file_id] = incoming
        return incoming

    # -- the end -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop sending; keep partial downloads to resume (with `states`), else delete them."""
        tasks = [*self._tasks, *self._rehashing.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for incoming in self._incoming.values():
            if incoming is None:
                continue
            if self._states is not None:
                incoming.close()
            else:
                incoming.abort()
