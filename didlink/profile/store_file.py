"""The local store's file: created whole, checked before use, and SQLite's errors made typed.

Theory of operation (specs/store.md, "The file and its faults")
---------------------------------------------------------------
- New: a store that does not exist is built in a temporary file beside it (0600, WAL, the
  whole schema), closed, fsync'ed and linked into place only if still absent (`os.link`
  fails on an existing name, so of two processes creating a profile's store at once one wins
  and the other opens it). A store therefore never exists half made, and in particular never
  as an empty file.
- Existing: refused before SQLite touches it if it is not a regular file, shorter than
  SQLite's 100-byte header or without its magic string (zero-length, truncated to nothing,
  overwritten): such a file is never silently treated as an empty database. A store whose
  write-ahead log exists without the store itself is refused too (the store was lost; opening
  would start a new one and replay the log into it).
- Opened: `PRAGMA quick_check` reads every page before anything is written, so a damaged page
  anywhere is found at once (not by the one command that happens to read it) and the damaged
  file is left byte-identical.
- In use: the connection and its cursors are `GuardedConnection` / `GuardedCursor`, which turn
  every `sqlite3.Error`, from `execute` as from any later `fetch` (a damaged page is found when
  it is read), into a `StoreError` naming the file and what to do. The CLI prints it as one
  line (exit 2); a live session ends with it (`store error`, exit 2). A constraint violation
  stays catchable as `sqlite3.IntegrityError` (`StoreConstraint` is both).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from didlink.errors import UserError

BUSY_TIMEOUT_S = 10.0
SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100

# SQLite's primary result codes (https://sqlite.org/rescode.html)
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = (
    3, 5, 6, 8, 10, 11, 13, 14, 26,
)  # fmt: skip

_START_AFRESH = (
    "restore it from a backup, or move it away and didlink starts a new, empty store "
    "(its contacts, outbox and history are then lost)"
)


class StoreError(UserError):
    """The local store cannot be used (damaged, locked, not writable); says what to do."""


class DamagedStore(StoreError):
    """The local store is not a readable didlink database."""


class StoreBusy(StoreError):
    """Another process held the store's lock for longer than the busy timeout."""


class StoreConstraint(StoreError, sqlite3.IntegrityError):
    """A change broke one of the store's constraints (still an `sqlite3.IntegrityError`)."""


def damaged(path: Path, what: str) -> DamagedStore:
    """The error for a store file that is damaged in the way `what` says."""
    return DamagedStore(f"the local store {path} {what}: {_START_AFRESH}")


def fault(path: Path, exc: sqlite3.Error) -> StoreError:
    """The typed error for an SQLite error on the store at `path` (see the module docstring)."""
    if isinstance(exc, StoreError):
        return exc
    detail = " ".join(str(exc).split()) or type(exc).__name__
    code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreConstraint(f"the local store {path} refused a change ({detail})")
    if code in (_CORRUPT, _NOTADB) or (code < 0 and "malformed" in detail):
        return damaged(path, f"is damaged ({detail})")
    if code in (_BUSY, _LOCKED):
        return StoreBusy(
            f"the local store {path} is locked by another process (waited {BUSY_TIMEOUT_S:g} s):"
            " end the other didlink command using this profile, then try again"
        )
    if code == _FULL:
        return StoreError(f"the local store {path} cannot be written: the disk is full: free some"
                          " space, then try again")  # fmt: skip
    if code in (_READONLY, _PERM, _CANTOPEN):
        return StoreError(
            f"the local store {path} cannot be opened for writing ({detail}): check that you own"
            f" {path.parent} and the files in it, then try again"
        )
    if code == _IOERR:
        return StoreError(
            f"the local store {path} cannot be read or written ({detail}): check the disk, then"
            " try again"
        )
    return StoreError(f"the local store {path} failed ({detail}): try again; if it goes on, "
                      + _START_AFRESH)  # fmt: skip


class GuardedCursor(sqlite3.Cursor):
    """A cursor whose fetches raise `StoreError` (a damaged page is found when it is read)."""

    store_path = Path()

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise fault(self.store_path, exc) from exc

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        try:
            return super().fetchmany(self.arraysize if size is None else size)
        except sqlite3.Error as exc:
            raise fault(self.store_path, exc) from exc

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise fault(self.store_path, exc) from exc

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            raise fault(self.store_path, exc) from exc


class GuardedConnection(sqlite3.Connection):
    """A connection whose statements raise `StoreError` instead of `sqlite3.Error`."""

    store_path = Path()

    def _cursor(self) -> GuardedCursor:
        cursor = self.cursor(GuardedCursor)
        cursor.store_path = self.store_path
        return cursor

    def execute(self, sql: str, parameters: Any = (), /) -> GuardedCursor:
        cursor = self._cursor()
        try:
            cursor.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise fault(self.store_path, exc) from exc
        return cursor

    def executemany(self, sql: str, parameters: Any, /) -> GuardedCursor:
        cursor = self._cursor()
        try:
            cursor.executemany(sql, parameters)
        except sqlite3.Error as exc:
            raise fault(self.store_path, exc) from exc
        return cursor

    def close(self) -> None:
        try:
            super().close()
        except sqlite3.Error as exc:
            raise fault(self.store_path, exc) from exc


def connect(path: Path, *, named: Path | None = None) -> GuardedConnection:
    """An autocommit connection to `path` whose errors are `StoreError`s naming `named` (by
    default `path`: a store being built in a temporary file is named by its final path)."""
    try:
        db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, factory=GuardedConnection
        )
    except sqlite3.Error as exc:
        raise fault(path, exc) from exc
    assert isinstance(db, GuardedConnection)
    db.store_path = path if named is None else named
    return db


def check_existing(path: Path) -> None:
    """Refuse a store file SQLite would misread: not a file, empty, too short, no magic."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise StoreError(
            f"cannot open the local store {path}: {exc.strerror or exc}: check that you own"
            f" {path.parent} and the files in it"
        ) from exc
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise DamagedStore(
                f"cannot open the local store {path}: it is not a file: move it away"
            )
        if status.st_size == 0:
            raise damaged(path, "is empty (0 bytes: truncated or lost)")
        header = os.read(fd, HEADER_SIZE)
    finally:
        os.close(fd)
    if len(header) < HEADER_SIZE or not header.startswith(SQLITE_MAGIC):
        raise damaged(path, "is not an SQLite database (truncated or overwritten)")


def create_new(path: Path, initialize: Callable[[sqlite3.Connection], None]) -> bool:
    """Build a new store at `path` (see the module docstring); False if one appeared meanwhile.

    `initialize` runs on the new database's connection (the schema); the file is linked into
    place only once it is complete and on disk.
    """
    for suffix in ("-wal", "-journal"):
        if os.path.lexists(f"{path}{suffix}"):
            raise damaged(
                path, f"is missing while its {path.name}{suffix} is there (the store was lost)"
            )
    temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.chmod(temp, 0o600)  # whatever the umask
        db = connect(temp, named=path)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            initialize(db)
        finally:
            db.close()  # checkpoints the WAL into the file and deletes it
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: rename, if still absent
            if os.path.lexists(path):
                return False
            os.replace(temp, path)
        _fsync_dir(path.parent)
        return True
    except OSError as exc:
        raise StoreError(
            f"cannot create the local store {path}: {exc.strerror or exc}: check that you own"
            f" {path.parent}"
        ) from exc
    finally:
        for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm")):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
