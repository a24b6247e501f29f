"""Crash-safe file replacement: a reader sees the old file or the new one, never a mix.

Theory of operation (specs/keystore.md, "Atomic write"): the new bytes go to a temporary file in
the *same* directory (so the rename cannot cross file systems), created with the final mode
(0600 by default) so that the secret is never readable by others even for an instant. The data
is flushed and fsync'ed, then `os.replace` swaps it in atomically (POSIX rename(2)), then the
directory is fsync'ed so that the rename itself survives a power cut. If anything fails before
the rename, the temporary file is removed and the old file is untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def _fsync_dir(directory: Path) -> None:
    """fsync a directory so that a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data` atomically and durably; the file ends with `mode`."""
    path = Path(path)
    directory = path.parent
    temp = directory / f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temp, flags, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have removed bits we asked for
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(directory)
