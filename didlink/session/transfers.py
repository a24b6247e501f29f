"""The file transfers of one live session: the asyncio side of didlink/session/files.py.

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

Queued files (didlink/session/queued_files.py; `send_queued`, also from `start`): the files queued
for this peer while no session ran leave one after another, in the order queued, in one task:
each re-opened and re-hashed (in a thread) and compared with its row; a file changed or gone is
dropped from the queue with `file_unsent`; the others are sent as any (`_send`), their row
rewritten without its `queued` mark before the offer, so that a cut transfer resumes as below.

Resuming (with `states`, didlink/session/resume.py): every offer is answered at once with
`FileAck(next_offset = bytes already held)` (0 for a new file). The sender writes its state
before the offer leaves and forgets it at the final ack; at the next verified session
`resume_outgoing` offers each unfinished file again under its id, waits for that first ack and
sends from its `next_offset`. The receiver keeps its part file when the session ends, re-hashes
it on the re-offer, and acknowledges a file it already saved without taking it twice.

The sender sends no chunk before that first ack (the receiver may be asking its user), and
stops at a `FileError` (refused by the receiver's user or policy: `file_refused`; it could not
take the file: `error`); at most `MAX_INCOMING_FILES` of its files are offered at once, so a
batch of files does not run into the receiver's cap.

Limits on the receiving side (issue 26; didlink/session/file_limits.py): every offer is counted by
the session's `OfferRate` before anything else; at most `MAX_INCOMING_FILES` files (asked or in
progress) at once; the bytes a file still expects are reserved in the folder's `DiskSpace`; the
`--files` policy (didlink/file_policy.py) refuses, asks or accepts a new file. Whatever is refused
or fails is answered with a `FileError` and reported (`file_refused` / `error`); no OSError or
refusal ends the session. `tidy` (at the session's start and end) deletes the `in` rows and part
files older than `PARTIAL_MAX_AGE` and this peer's partial files beyond its budget
(`MAX_PARTIAL_FILES_PER_PEER`, `MAX_PARTIAL_BYTES_PER_PEER`), and keeps the rows of at most
`MAX_SAVED_ROWS_PER_PEER` saved files per peer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from didlink.errors import UserError
from didlink.file_policy import FilePolicy
from didlink.profile.store import StoreError
from didlink.session.file_limits import DiskSpace, OfferRate, space_for
from didlink.session.files import (
    PART_PREFIX,
    PART_SUFFIX,
    FileTransferError,
    IncomingFile,
    OutgoingFile,
    part_path,
)
from didlink.session.queued_files import CHANGED, UNREADABLE, unchanged
from didlink.session.resume import OutgoingState, TransferStates
from didlink.words.display import shown
from didlink.words.transfer import IN, OUT, TransferInProgress
from messaging.channel import ChannelState, SecureChannel
from messaging.errors import MessagingError
from messaging.frames import FileAck, FileChunk, FileError, FileOffer

CHUNKS_PER_ROUND = 3  # one frame: three data-channel messages (files.CHUNK_SIZE)
MAX_INCOMING_FILES = 8  # files a peer may have asked or in progress towards us at once
RESUME_TIMEOUT = 30.0  # seconds a resumed offer waits for the receiver's first ack
MAX_PARTIAL_FILES_PER_PEER = 8  # partial files kept for resume, per peer
MAX_PARTIAL_BYTES_PER_PEER = 4 * 1024**3  # their bytes on disk, per peer
MAX_SAVED_ROWS_PER_PEER = 256  # rows of saved files (to answer a re-offer), per peer
MAX_ENDED_REMEMBERED = 4096  # ids of ended incoming files whose late chunks are ignored
PARTIAL_MAX_AGE = timedelta(days=7)  # an `in` row and its part file untouched this long go

Emit = Callable[..., None]


def _now() -> datetime:
    return datetime.now(UTC)


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
        policy: FilePolicy = FilePolicy.ACCEPT,
        asking: Callable[[bool], None] | None = None,
        space: DiskSpace | None = None,
        rate: OfferRate | None = None,
        now: Callable[[], datetime] = _now,
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
        self._policy = policy
        self._asking_changed = asking
        self._space = space_for(downloads) if space is None else space
        self._rate = OfferRate(peer_did) if rate is None else rate
        self._now = now
        self._incoming: dict[bytes, IncomingFile | None] = {}  # None: finished or given up
        self._asking: dict[bytes, FileOffer] = {}  # offers waiting for our user (--files ask)
        self._offered: set[bytes] = set()  # ids the peer offered in this session
        self._ended: collections.deque[bytes] = collections.deque()  # `_over`, oldest first
        self._outgoing: dict[bytes, OutgoingFile] = {}  # sent, waiting for the peer's ack
        self._sending: dict[bytes, OutgoingFile] = {}  # from `send` to the end of its task
        self._kept: list[TransferInProgress] = []  # partial downloads `stop` kept to resume
        self._tasks: set[asyncio.Task[None]] = set()
        self._rehashing: dict[bytes, asyncio.Task[None]] = {}  # resumed part files being read
        self._offering = asyncio.Semaphore(MAX_INCOMING_FILES)  # our files offered at once
        self._queue_task: asyncio.Task[None] | None = None  # sends the queued files (in order)
        self._queue_again = False  # a file was queued while that task ran: it looks again

    @property
    def pending(self) -> bool:
        """Some file is still being sent or not yet acknowledged."""
        return bool(self._outgoing or self._tasks)

    @property
    def unacknowledged(self) -> bool:
        return bool(self._outgoing)

    def in_progress(self) -> list[TransferInProgress]:
        """The files being sent (hashed, offered, sent or not yet acknowledged) and received
        (accepted and not yet complete), with their bytes so far (a person quitting is told).
        After `stop`: the files not acknowledged and the partial downloads kept to resume."""
        sending = {**self._sending, **self._outgoing}
        running = [
            TransferInProgress(OUT, outgoing.name, outgoing.offset, outgoing.size, outgoing.id)
            for outgoing in sending.values()
        ]
        running.extend(
            TransferInProgress(IN, incoming.name, incoming.received, incoming.size, incoming.id)
            for incoming in self._incoming.values()
            if incoming is not None
        )
        return running + self._kept

    def start(self) -> None:
        """The session is verified: tidy what earlier sessions left, resume our files."""
        try:
            self.tidy()
        except (OSError, UserError) as exc:  # a damaged row: said, and the session goes on
            self._emit("error", message=f"cannot tidy the partial files: {exc}")
        self.resume_outgoing()
        self.send_queued()

    # -- sending -----------------------------------------------------------------------------

    def send(self, outgoing: OutgoingFile, *, resume: OutgoingState | None = None) -> None:
        """Start sending `outgoing` in its own task: hashed first (in a thread) if it is not
        yet; `resume`, the state a previous session saved: the file must be unchanged, and the
        task waits for the receiver's offset."""
        self._sending[outgoing.file_id] = outgoing
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
            if state.queued:  # never offered: `send_queued`
                continue
            try:
                outgoing = OutgoingFile(state.path, file_id=state.file_id, hash_now=False)
            except UserError as exc:
                self._states.forget_outgoing(state.file_id)
                self._emit("error", message=f"cannot resume sending a file: {exc}")
                continue
            self.send(outgoing, resume=state)

    def send_queued(self) -> None:
        """Send the files queued for this peer (didlink/session/queued_files.py) one after another,
        in
        the order queued, in one task; if that task runs already, it looks again at its end."""
        if self._states is None:
            return
        if self._queue_task is not None:
            self._queue_again = True
            return
        task = asyncio.create_task(self._send_queued())
        self._queue_task = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def _send_queued(self) -> None:
        assert self._states is not None
        try:
            done: set[bytes] = set()  # tried in this task (a row left only by its ack)
            self._queue_again = True
            while self._queue_again:
                self._queue_again = False
                for state in self._states.queued(self._peer_did):
                    if state.file_id in done or state.file_id in self._sending:
                        continue
                    done.add(state.file_id)
                    outgoing = await self._reopened(state)
                    if outgoing is not None:
                        self._sending[outgoing.file_id] = outgoing
                        await self._send(outgoing)  # its row loses `queued` before the offer
        except StoreError as exc:
            if self._store_failed is None:
                self._emit("error", message=str(exc))
            else:
                self._store_failed(exc)
        finally:
            self._queue_task = None

    async def _reopened(self, state: OutgoingState) -> OutgoingFile | None:
        """The queued file re-opened and hashed if it is as it was queued; else its row is
        deleted, `file_unsent` emitted, and None."""
        reason = UNREADABLE
        try:
            outgoing = OutgoingFile(state.path, file_id=state.file_id, hash_now=False)
        except UserError:
            outgoing = None
        if outgoing is not None:
            try:
                await asyncio.to_thread(outgoing.hash)
                if unchanged(outgoing, state):
                    return outgoing
                reason = CHANGED
            except UserError:
                pass
            except BaseException:  # cancelled (the session ends): it stays queued
                outgoing.close()
                raise
            outgoing.close()
        assert self._states is not None
        self._states.forget_outgoing(state.file_id)
        self._emit(
            "file_unsent",
            id=state.file_id.hex(),
            name=state.path.name,
            path=str(state.path),
            size=state.size,
            reason=reason,
        )
        return None

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
            async with self._offering:
                await self._offer_and_send(outgoing, resume=resume)
        except StoreError as exc:  # its state cannot be saved: a store fault ends the session
            self._outgoing.pop(outgoing.file_id, None)
            if self._store_failed is None:
                self._emit("error", message=str(exc))
            else:
                self._store_failed(exc)
        except (FileTransferError, UserError, MessagingError) as exc:
            self._emit("error", message=str(exc))
            self._outgoing.pop(outgoing.file_id, None)
        except TimeoutError:  # (an OSError too: before the clause below)
            self._emit("error", message=f"{outgoing.name}: the peer did not answer the resume")
            self._outgoing.pop(outgoing.file_id, None)
        except OSError as exc:  # the file could not be read any more (a disk, a network share)
            self._emit("error", message=f"cannot read {outgoing.path}: {exc.strerror or exc}")
            self._outgoing.pop(outgoing.file_id, None)
        finally:
            self._resume_points.pop(outgoing.file_id, None)
            self._sending.pop(outgoing.file_id, None)
            outgoing.close()

    async def _offer_and_send(
        self, outgoing: OutgoingFile, *, resume: OutgoingState | None
    ) -> None:
        """The offer, the receiver's first ack (where to start), then the chunks."""
        file_id = outgoing.file_id
        point: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._resume_points[file_id] = point
        self._channel.send(outgoing.offer())
        self._outgoing[file_id] = outgoing
        await self._flush()
        if resume is not None:  # the receiver answers at once (it re-reads its part file)
            async with asyncio.timeout(RESUME_TIMEOUT):
                offset = await point
        else:  # a new file: its user may be asked first (--files ask); the session bounds it
            offset = await point
        if file_id not in self._outgoing:  # the peer had it all already, or refused it
            return
        outgoing.seek(offset)
        while (
            not outgoing.done
            and self._channel.state is ChannelState.OPEN
            and file_id in self._outgoing
        ):
            for chunk in outgoing.next_chunks(CHUNKS_PER_ROUND):
                self._channel.send(chunk)
            await self._flush()
            if outgoing.size and outgoing.progress.due(outgoing.offset):
                self._emit(
                    "progress",
                    id=outgoing.id,
                    bytes=outgoing.offset,
                    total=outgoing.size,
                    direction=OUT,
                    name=outgoing.name,
                )

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
            self._states.forget_outgoing(outgoing.file_id)

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
        self._forget_state(outgoing)
        self._progressed()
        self._emit(
            "file_sent",
            id=outgoing.id,
            name=outgoing.name,
            size=outgoing.size,
            sha256=outgoing.sha256.hex(),
        )

    def on_file_error(self, message: FileError) -> None:
        """The peer refused our file, or could not take it: stop sending it and forget it."""
        outgoing = self._outgoing.pop(message.file_id, None)
        if outgoing is None:
            return  # not a file we are sending (any more)
        point = self._resume_points.pop(message.file_id, None)
        if point is not None and not point.done():
            point.set_result(0)  # the task sees the file gone and ends
        self._forget_state(outgoing)
        self._progressed()
        if message.code == "refused":
            self._emit(
                "file_refused",
                id=outgoing.id,
                name=outgoing.name,
                size=outgoing.size,
                by="peer",
                **{"from": self._peer_did},
            )
        else:
            reason = shown(message.reason) if message.reason else "no reason given"
            self._emit("error", message=f"{outgoing.name} was not received by the peer: {reason}")

    # -- receiving ---------------------------------------------------------------------------

    def on_data(self, message: FileOffer | FileChunk) -> None:
        """A received offer or chunk; a broken transfer becomes an `error` event (and the peer
        is told with a `FileError`), never the end of the session."""
        try:
            self._receive(message)
        except FileTransferError as exc:
            self._give_up(message.file_id, exc)
        except OSError as exc:  # every file operation should have said it; never the session
            failed = FileTransferError(
                f"file error: {exc.strerror or exc}", public="a disk error on the receiver"
            )
            self._give_up(message.file_id, failed)

    def _give_up(
        self, file_id: bytes, exc: FileTransferError, *, forget: bool = False, tell: bool = False
    ) -> None:
        """A broken incoming transfer: `error`, its part file deleted (its state too if it was
        open, or `forget`), the rest ignored, the peer told once (`FileError` "failed") if it
        offered this file in this session and the file was not already over (or `tell`)."""
        self._emit("error", message=str(exc))
        over = file_id in self._incoming and self._incoming[file_id] is None
        rehashing = self._rehashing.pop(file_id, None)
        if rehashing is not None and rehashing is not asyncio.current_task():
            rehashing.cancel()  # its thread ends at its next read of the closed file
        asked = self._asking.pop(file_id, None)
        if asked is not None:
            self._asked()
        previous = self._incoming.get(file_id)
        if previous is not None:
            previous.abort()
        if (previous is not None or forget) and self._states is not None:
            self._states.forget_incoming(file_id)
        if file_id in self._offered and (tell or not over or asked is not None):
            self._answer(FileError(file_id=file_id, code="failed", reason=exc.public))
        self._over(file_id)  # ignore the rest of this file

    def _over(self, file_id: bytes) -> None:
        """The incoming file `file_id` is finished or given up: its later chunks are ignored.
        Only the last MAX_ENDED_REMEMBERED such ids are remembered (a peer making offers
        without end must not grow our memory without end); an older one's chunks are then
        errors, and its re-offer a new offer."""
        self._incoming[file_id] = None
        self._ended.append(file_id)
        while len(self._ended) > MAX_ENDED_REMEMBERED:
            old = self._ended.popleft()
            if old in self._incoming and self._incoming[old] is None:
                del self._incoming[old]
                self._offered.discard(old)

    def _answer(self, message: FileAck | FileError) -> None:
        """Send an answer to the peer's offer now; a session that ended meanwhile drops it."""
        with contextlib.suppress(MessagingError):
            self._channel.send(message)
            self._kick()

    def _asked(self) -> None:
        if self._asking_changed is not None:
            self._asking_changed(bool(self._asking))

    def _in_progress(self) -> int:
        return len(self._asking) + sum(f is not None for f in self._incoming.values())

    def _receive(self, message: FileOffer | FileChunk) -> None:
        if isinstance(message, FileOffer):
            self._receive_offer(message)
            return
        if message.file_id in self._asking:
            raise FileTransferError(
                f"the peer sent a chunk of {shown(self._asking[message.file_id].name)} before "
                "it was accepted",
                public="a chunk before the file was accepted",
            )
        if message.file_id not in self._incoming:
            raise FileTransferError("the peer sent a chunk of a file it did not offer")
        if message.file_id in self._rehashing:
            raise FileTransferError(
                "the peer sent a chunk before the offset to resume from",
                public="a chunk before the offset to resume from",
            )
        found = self._incoming[message.file_id]
        if found is None:
            return  # a file we gave up on
        incoming = found
        incoming.write(message)
        if incoming.progress.due(incoming.received):
            self._emit(
                "progress",
                id=incoming.id,
                bytes=incoming.received,
                total=incoming.size,
                direction=IN,
                name=incoming.name,
            )
        if incoming.complete:
            self._finish(incoming)

    def _receive_offer(self, offer: FileOffer) -> None:
        """Count the offer, then refuse, ask about, resume or open it (module doc)."""
        file_id, name = offer.file_id, shown(offer.name)
        allowed = self._rate.allow()  # every offer counts, zero-byte ones too
        if file_id in self._incoming or file_id in self._asking:
            raise FileTransferError("the peer offered the same file twice")
        self._offered.add(file_id)
        if not allowed:
            raise FileTransferError(
                f"refused {name}: the peer offers files too fast", public="too many offers"
            )
        if self._in_progress() >= MAX_INCOMING_FILES:
            raise FileTransferError(
                f"refused {name}: the peer is already sending {MAX_INCOMING_FILES} files",
                public=f"already {MAX_INCOMING_FILES} files in progress",
            )
        known = None if self._states is None else self._states.incoming(file_id)
        if known is not None and (known.peer_did != self._peer_did or known.offer != offer):
            raise FileTransferError("the peer offered a known file id with other contents")
        if known is not None and known.saved is not None:  # it missed our last ack: again
            self._over(file_id)
            self._answer(FileAck(file_id=file_id, next_offset=offer.size))
            return
        if self._policy is FilePolicy.REFUSE:
            if known is not None:  # a part file from an earlier session: not wanted now
                self._drop_partial(file_id)
            self._refuse(offer)
            return
        if known is not None:  # accepted in an earlier session: resumed, not asked again
            self._resume_offer(offer)
            return
        if self._policy is FilePolicy.ASK:
            self._asking[file_id] = offer
            self._emit(
                "file_offer",
                **{"from": self._peer_did},
                id=file_id.hex(),
                name=offer.name,
                size=offer.size,
                sha256=offer.sha256.hex(),
            )
            self._asked()
            return
        self._open_new(offer)

    def _open_new(self, offer: FileOffer) -> None:
        incoming = IncomingFile(offer, self._downloads, space=self._space)
        self._incoming[offer.file_id] = incoming
        if self._states is not None:
            self._states.save_incoming(self._peer_did, offer)
        self._answer_offer(incoming)

    def _refuse(self, offer: FileOffer) -> None:
        """Our user (or `--files refuse`) does not want this file: the peer is told."""
        self._over(offer.file_id)
        self._answer(FileError(file_id=offer.file_id, code="refused"))
        self._emit(
            "file_refused",
            id=offer.file_id.hex(),
            name=offer.name,
            size=offer.size,
            by="us",
            **{"from": self._peer_did},
        )

    def answer(self, file_id: str | None, *, accept: bool) -> str | None:
        """Our user's answer to an offer (`file_id` in hex; None: the oldest one asked); a
        sentence if there is no such question."""
        if file_id is None:
            if not self._asking:
                return "no file offer is waiting for an answer"
            key = next(iter(self._asking))
        else:
            try:
                key = bytes.fromhex(file_id)
            except ValueError:
                return f"{shown(file_id)} is not a file id"
            if key not in self._asking:
                return f"no file offer {shown(file_id)} is waiting for an answer"
        offer = self._asking.pop(key)
        self._asked()
        if not accept:
            self._refuse(offer)
            return None
        try:
            self._open_new(offer)
        except FileTransferError as exc:
            self._give_up(key, exc)
        except OSError as exc:
            self._give_up(key, FileTransferError(f"file error: {exc.strerror or exc}"))
        return None

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
        file_id = incoming.offer.file_id
        self._over(file_id)
        try:
            path, ack = incoming.finish()
        except FileTransferError as exc:  # the part file is gone: so is its state
            self._give_up(file_id, exc, forget=True, tell=True)
            return
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

    def _resume_offer(self, offer: FileOffer) -> None:
        """A file accepted in an earlier session: its part file is re-opened and re-hashed (in a
        worker thread), then the offer is answered with the offset to resume from."""
        incoming = IncomingFile(offer, self._downloads, space=self._space, resume=True)
        self._incoming[offer.file_id] = incoming
        if self._states is not None:
            self._states.touch_incoming(offer.file_id)
        task = asyncio.create_task(self._resume_incoming(incoming))
        self._rehashing[offer.file_id] = task
        task.add_done_callback(lambda done: self._rehashing.pop(offer.file_id, None))

    # -- what is kept between sessions -------------------------------------------------------

    def _drop_partial(self, file_id: bytes) -> None:
        if self._states is not None:
            self._states.forget_incoming(file_id)
        with contextlib.suppress(OSError):
            part_path(self._downloads, file_id).unlink()

    def tidy(self) -> None:
        """Delete the `in` rows (any peer) and part files older than PARTIAL_MAX_AGE, then this
        peer's partial files beyond its budget and its oldest rows of saved files."""
        now = self._now()
        busy = {file_id for file_id, found in self._incoming.items() if found is not None}
        if self._states is not None:
            for file_id in self._states.expired(now=now, max_age=PARTIAL_MAX_AGE):
                if file_id not in busy:
                    self._drop_partial(file_id)
        self._drop_old_parts(now, busy)
        if self._states is None:
            return
        count = held = saved = 0
        for row in self._states.incoming_rows(self._peer_did):
            if row.file_id in busy:
                continue
            if row.saved:
                saved += 1
                if saved > MAX_SAVED_ROWS_PER_PEER:
                    self._states.forget_incoming(row.file_id)
                continue
            try:
                size = part_path(self._downloads, row.file_id).stat().st_size
            except OSError:
                size = 0
            if count < MAX_PARTIAL_FILES_PER_PEER and held + size <= MAX_PARTIAL_BYTES_PER_PEER:
                count, held = count + 1, held + size
            else:
                self._drop_partial(row.file_id)

    def _drop_old_parts(self, now: datetime, busy: set[bytes]) -> None:
        """Part files no row keeps (a crash, a session without a store) older than the limit."""
        cutoff = (now - PARTIAL_MAX_AGE).timestamp()
        try:
            entries = list(os.scandir(self._downloads))
        except OSError:
            return
        for entry in entries:
            name = entry.name
            if not (name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX)):
                continue
            try:
                file_id = bytes.fromhex(name[len(PART_PREFIX) : -len(PART_SUFFIX)])
                if file_id in busy or entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                if self._states is not None and self._states.incoming(file_id) is not None:
                    continue  # its row is younger: it waits to be resumed
                os.unlink(entry.path)
            except (ValueError, OSError):
                continue

    # -- the end -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop sending; keep partial downloads to resume (with `states`, within this peer's
        budget), else delete them."""
        tasks = [*self._tasks, *self._rehashing.values()]
        for task in tasks:
            task.cancel()
        self._sending.clear()
        if self._states is not None:  # their part files stay (below)
            self._kept = [found for found in self.in_progress() if found.direction == IN]
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for file_id, incoming in self._incoming.items():
            if incoming is None:
                continue
            if self._states is not None:
                incoming.close()
                with contextlib.suppress(Exception):
                    self._states.touch_incoming(file_id)
            else:
                incoming.abort()
        self._incoming = dict.fromkeys(self._incoming)
        self._asking.clear()
        with contextlib.suppress(Exception):  # never let the tidying hide the session's end
            self.tidy()
