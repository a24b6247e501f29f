"""Sending and receiving files over a secure channel (specs/cli-jsonl.md "Files").

Theory of operation
-------------------
The sender hashes the file (SHA-256; the session does that in a worker thread), sends a
`FileOffer` (random 16-byte id, bare name, size, hash, chunk size) and then `FileChunk`s of
`CHUNK_SIZE` bytes in order; the session feeds chunks a few at a time and waits until the
transport took them, so memory stays bounded whatever the file size (backpressure comes from
`Peer.send`). The receiver writes the chunks to a private temporary file in the downloads
folder, hashing as it goes; when `size` bytes arrived it compares the hash, moves the file to
a name that does not exist yet (`name`, `name (1)`, ..., never overwriting and never leaving
the folder) and answers `FileAck(next_offset=size)`. A hash mismatch deletes the temporary file
and sends no ack. The channel is ordered and reliable, so a chunk at any other offset than the
next expected one is a protocol violation.

This module does file I/O but no networking and no asyncio; the session (didlink/session/node.py)
drives it. Resuming after a reconnect (didlink/session/resume.py keeps the state): the sender
`seek`s to the offset the receiver holds; the receiver re-opens its part file (`resume=True`),
re-hashes the bytes already there (`rehash`) and goes on from its end.

Limits (issue 26): an incoming file holds a reservation of the bytes it still expects in the
folder's one account (didlink/session/file_limits.py `DiskSpace`), taken before its part file is
made and re-checked while it is written. A saved name, `name` or a collision name `stem (n)suffix`,
is cut so that its UTF-8 bytes fit the folder's NAME_MAX (`fitted_name`). Every OSError while the
part file is made, written, read or moved into place is a `FileTransferError`: it fails that file,
never the session.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from didlink.errors import UserError
from didlink.words.display import shown
from messaging.frames import FileAck, FileChunk, FileOffer

if TYPE_CHECKING:
    from didlink.session.file_limits import DiskSpace

CHUNK_SIZE = 64_000
"""File bytes per chunk (at most MAX_CHUNK_BYTES). A round of three chunks (transfers.py) and
their envelopes pads (Padme) to 47 x 4096 bytes, so its encrypted frame fills three 64 KiB
data-channel messages (the last not quite). 65536-byte chunks padded to 49 x 4096 and spilled
4 KiB into a fourth message: 2 % more packets, and 2 % more bytes to encrypt."""
PROGRESS_STEP = 0.05
MAX_UNIQUE_TRIES = 1000
NAME_MAX = 255
"""Bytes in one file name when the folder's file system does not say (POSIX NAME_MAX)."""
PART_PREFIX, PART_SUFFIX = ".didlink-", ".part"
_HASH_BLOCK = 1 << 20
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
)


class FileTransferError(Exception):
    """A file could not be sent or received (the peer broke the rules, or the disk failed).

    `public` is what the peer is told in a `file_error` frame (no local path, no disk figures).
    """

    def __init__(self, message: str, *, public: str = "the receiver could not take it") -> None:
        super().__init__(message)
        self.public = public


def new_file_id() -> bytes:
    return os.urandom(16)


@dataclass
class ProgressGate:
    """Says when a progress event is due: after each `step` of the total, and once at the end."""

    total: int
    step: float = PROGRESS_STEP
    _next: int = field(default=0, init=False)
    _finished: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._next = self._step_bytes()

    def _step_bytes(self) -> int:
        return max(1, int(self.total * self.step))

    def due(self, done: int) -> bool:
        if self._finished:
            return False
        if done >= self.total:
            self._finished = True
            return True
        if done >= self._next:
            self._next = done + self._step_bytes()
            return True
        return False


def _sha256_of(handle: BinaryIO) -> bytes:
    digest = hashlib.sha256()
    while block := handle.read(_HASH_BLOCK):
        digest.update(block)
    handle.seek(0)
    return digest.digest()


class OutgoingFile:
    """A file we send: opened and hashed up front, then read chunk by chunk.

    `hash_now=False` leaves the hashing (reading the whole file: seconds for gigabytes) to a
    later `hash()`, which the session runs in a thread so that its event loop goes on.
    """

    def __init__(self, path: Path, *, file_id: bytes | None = None, hash_now: bool = True) -> None:
        self.path = path
        try:
            self._handle: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        except IsADirectoryError:
            raise UserError(
                f"{path} is a folder, not a file (to send a folder, send an archive of it)"
            ) from None
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            info = os.fstat(self._handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UserError(f"{path} is not a regular file")
            self.size = info.st_size
            self.mtime_ns = info.st_mtime_ns  # when it was opened (queued files compare it)
            self._sha256: bytes | None = None
            if hash_now:
                self.hash()
        except BaseException:
            self._handle.close()
            raise
        self.file_id = new_file_id() if file_id is None else file_id
        self.name = path.name
        self.offset = 0
        self.progress = ProgressGate(self.size)

    @property
    def id(self) -> str:
        return self.file_id.hex()

    @property
    def hashed(self) -> bool:
        return self._sha256 is not None

    @property
    def sha256(self) -> bytes:
        """The file's SHA-256 (once `hash` ran)."""
        if self._sha256 is None:
            raise FileTransferError(f"{self.path} must be hashed first")
        return self._sha256

    def hash(self) -> bytes:
        """The file's SHA-256, read from the start (blocking; safe in a worker thread, as long
        as nothing else reads the file meanwhile). UserError if it cannot be read."""
        try:
            self._sha256 = _sha256_of(self._handle)
        except OSError as exc:
            raise UserError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        return self._sha256

    def check_name(self) -> None:
        """UserError now if an offer could not carry this file's name."""
        self._offer(bytes(32))

    def offer(self) -> FileOffer:
        return self._offer(self.sha256)

    def _offer(self, sha256: bytes) -> FileOffer:
        try:
            return FileOffer(
                file_id=self.file_id,
                name=self.name,
                size=self.size,
                sha256=sha256,
                chunk_size=CHUNK_SIZE,
            )
        except ValueError as exc:
            raise UserError(f"cannot send a file named {self.name!r}: {exc}") from None

    @property
    def done(self) -> bool:
        return self.offset >= self.size

    def seek(self, offset: int) -> None:
        """Continue from `offset` (a resumed transfer: the receiver holds the bytes before it)."""
        if not 0 <= offset <= self.size:
            raise FileTransferError("the peer asked to resume the file past its end")
        self._handle.seek(offset)
        self.offset = offset

    def next_chunks(self, count: int) -> list[FileChunk]:
        """Up to `count` further chunks (fewer at the end of the file)."""
        chunks = []
        for _ in range(count):
            if self.done:
                break
            data = self._handle.read(min(CHUNK_SIZE, self.size - self.offset))
            if not data:
                raise FileTransferError(f"{self.path} became shorter while it was being sent")
            chunks.append(FileChunk(file_id=self.file_id, offset=self.offset, data=data))
            self.offset += len(data)
        return chunks

    def close(self) -> None:
        self._handle.close()


def name_max(folder: Path) -> int:
    """The longest file name (bytes) `folder`'s file system takes: pathconf, else NAME_MAX."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, ValueError, OSError):
        return NAME_MAX
    return limit if limit > 0 else NAME_MAX


def _cut_utf8(text: str, limit: int) -> str:
    """The longest start of `text` whose UTF-8 takes at most `limit` bytes (whole characters)."""
    return text.encode("utf-8")[: max(0, limit)].decode("utf-8", "ignore")


def fitted_name(name: str, *, number: int = 0, limit: int = NAME_MAX) -> str:
    """`name` (number 0) or `stem (number)suffix`, cut so that its UTF-8 fits `limit` bytes.

    The stem is cut first, so the suffix and the number stay; a suffix too long to leave any
    stem is treated as part of the stem."""
    stem, suffix = Path(name).stem, Path(name).suffix
    mark = f" ({number})" if number else ""
    fixed = len(mark.encode()) + len(suffix.encode())
    if fixed >= limit or not stem:
        stem, suffix = name, ""
        fixed = len(mark.encode())
    candidate = _cut_utf8(stem, limit - fixed) + mark + suffix
    return candidate if candidate not in ("", ".", "..") else f"_{mark}"


def unique_path(folder: Path, name: str, *, limit: int | None = None) -> Path:
    """`folder/name`, or `folder/stem (n)suffix` for the first n that does not exist, each cut
    to fit the folder's NAME_MAX (`limit`, else asked of the folder)."""
    limit = name_max(folder) if limit is None else limit
    for number in range(MAX_UNIQUE_TRIES + 1):
        candidate = folder / fitted_name(name, number=number, limit=limit)
        if not os.path.lexists(candidate):
            return candidate
    raise FileTransferError(f"too many files named {name!r} in {folder}")


def checked_name(name: str) -> str:
    """A received file name that is a bare name inside the folder (FileOffer checked it too)."""
    if Path(name).name != name or name in ("", ".", "..") or "/" in name or "\\" in name:
        raise FileTransferError(f"the peer offered a file with an unsafe name {name!r}")
    return name


def part_path(downloads: Path, file_id: bytes) -> Path:
    """Where the bytes of the incoming file `file_id` wait until it is complete."""
    return downloads / f"{PART_PREFIX}{file_id.hex()}{PART_SUFFIX}"


def _reason(exc: OSError) -> str:
    return str(exc.strerror or exc)


class IncomingFile:
    """A file we receive: chunks in order to a private temporary file, checked at the end."""

    def __init__(
        self,
        offer: FileOffer,
        downloads: Path,
        *,
        space: DiskSpace | None = None,
        resume: bool = False,
    ) -> None:
        """A new part file; with `resume`, the existing one's bytes are kept (`rehash` them).
        FileTransferError if it does not fit in `space` (default: the process's account for
        `downloads`) or cannot be made (then nothing is held)."""
        if space is None:
            from didlink.session.file_limits import (
                space_for,  # late: file_limits imports this module
            )

            space = space_for(downloads)
        self.offer = offer
        self.name = checked_name(offer.name)
        self.size = offer.size
        self.received = 0
        self.progress = ProgressGate(self.size)
        self._digest = hashlib.sha256()
        self._folder = downloads
        self._tmp = part_path(downloads, offer.file_id)
        try:
            downloads.mkdir(mode=0o700, parents=True, exist_ok=True)
            have = self._tmp.stat().st_size if resume and self._tmp.exists() else 0
        except OSError as exc:
            raise FileTransferError(f"cannot write to {downloads}: {_reason(exc)}") from None
        self._space = space.reserve(max(0, offer.size - have), name=repr(self.name))
        try:
            flags = os.O_RDWR | os.O_CREAT | (0 if resume else os.O_EXCL)
            fd = os.open(self._tmp, flags, 0o600)
            try:
                self._handle: BinaryIO = os.fdopen(fd, "r+b")
            except BaseException:
                os.close(fd)
                raise
        except OSError as exc:
            self._space.release()
            raise FileTransferError(f"cannot write to {downloads}: {_reason(exc)}") from None

    @property
    def part(self) -> Path:
        return self._tmp

    def rehash(self) -> None:
        """Hash the bytes a previous session wrote (a resumed file, before any `write`); too
        many of them: start again from 0. Blocking: it reads the part file (the session runs
        it in a worker thread)."""
        try:
            while block := self._handle.read(_HASH_BLOCK):
                self._digest.update(block)
                self.received += len(block)
            if self.received > self.size:
                self._handle.seek(0)
                self._handle.truncate()
                self._digest, self.received = hashlib.sha256(), 0
        except (OSError, ValueError) as exc:  # ValueError: closed meanwhile (given up)
            with contextlib.suppress(OSError):
                self._handle.close()
            reason = _reason(exc) if isinstance(exc, OSError) else "it was closed"
            raise FileTransferError(f"cannot read the partial file: {reason}") from None
        self._space.expect(self.size - self.received)

    @property
    def id(self) -> str:
        return self.offer.file_id.hex()

    @property
    def complete(self) -> bool:
        return self.received >= self.size

    def write(self, chunk: FileChunk) -> None:
        if chunk.offset != self.received:
            raise FileTransferError(
                "the peer sent a file chunk out of order", public="a chunk out of order"
            )
        if self.received + len(chunk.data) > self.size:
            raise FileTransferError(
                "the peer sent more file data than it offered", public="more data than offered"
            )
        try:
            self._handle.write(chunk.data)
        except OSError as exc:
            raise FileTransferError(f"cannot write the file: {_reason(exc)}") from None
        self._digest.update(chunk.data)
        self.received += len(chunk.data)
        self._space.written(len(chunk.data))  # FileTransferError if the disk fills up

    def finish(self) -> tuple[Path, FileAck]:
        """Check the hash and move the file into place; the ack to send back.
        FileTransferError (the part file deleted) if it cannot be."""
        self._space.release()
        try:
            self._handle.close()
        except OSError as exc:
            self.abort()
            raise FileTransferError(f"cannot write the file: {_reason(exc)}") from None
        if self._digest.digest() != self.offer.sha256:
            self.abort()
            raise FileTransferError(
                f"{self.name!r}: the SHA-256 does not match; file discarded",
                public="the SHA-256 does not match",
            )
        try:
            target = self._move_into_place()
        except (OSError, FileTransferError) as exc:
            self.abort()
            reason = _reason(exc) if isinstance(exc, OSError) else str(exc)
            raise FileTransferError(f"cannot save {shown(self.name)}: {reason}") from None
        return target, FileAck(file_id=self.offer.file_id, next_offset=self.size)

    def _move_into_place(self) -> Path:
        """The part file under a free name (never overwriting a file made meanwhile)."""
        limit = name_max(self._folder)
        for _ in range(MAX_UNIQUE_TRIES):
            target = unique_path(self._folder, self.name, limit=limit)
            try:
                os.link(self._tmp, target)  # fails rather than overwrite a file made meanwhile
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise
                os.replace(self._tmp, target)  # no hard links here (we checked the name is free)
                return target
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            return target
        raise FileTransferError(f"cannot find a free name for {self.name}")  # pragma: no cover

    def close(self) -> None:
        """Close the part file and keep it (the transfer resumes on the next session)."""
        self._space.release()
        with contextlib.suppress(OSError):
            self._handle.close()

    def abort(self) -> None:
        """Close and delete the temporary file (an unfinished or failed transfer)."""
        self._space.release()
        with contextlib.suppress(OSError):
            self._handle.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()
