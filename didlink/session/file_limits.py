"""What a peer may make us store: disk space reserved for files in progress, offers per time.

Theory of operation (specs/cli-jsonl.md section 5, specs/threat-model.md section 6)
-----------------------------------------------------------------------------------
- `DiskSpace` is the one account of the bytes still to come for every incoming file in
  progress into one downloads folder, in this process (`space_for(folder)`; every session of a
  process shares it). A file in progress holds a `Reservation` of its declared size minus the
  bytes already written. A new reservation is granted only if all of them together, this one
  included, fit in the free space minus `DISK_RESERVE`; each file re-checks the same rule after
  every `RECHECK_BYTES` it writes (another program, or another process of ours, may fill the
  disk meanwhile), so that only that file fails, with a clear error. Without the shared
  account eight offers that each fitted alone could together fill the disk (issue 26).
- `OfferRate` counts every offer a peer makes, zero-byte files included: a token bucket per
  session and one per peer DID (process-wide, like `DiskSpace`). An offer over either rate is
  refused, whatever it holds.

Time (`now`) and the free-space function are parameters, so tests pin them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from didlink.session.files import FileTransferError

MAX_QUEUED_FILE_BYTES = 4 * 1024**3
"""A file queued for a contact (`didlink send --file`, didlink/session/queued_files.py) is at most
this:
the partial-file budget a receiver keeps per peer to resume (didlink/session/transfers.py
MAX_PARTIAL_BYTES_PER_PEER), so that a queued file cut off can always resume."""
MAX_QUEUED_FILES = 256
"""Files queued for one contact at once (rows in the store, each re-hashed when it leaves)."""
DISK_RESERVE = 64 * 1024 * 1024
"""Free space left untouched by files in progress ("no size limit but disk, with a margin")."""
RECHECK_BYTES = 8 * 1024 * 1024
"""A file in progress re-checks the free space after each of these many bytes it wrote."""

OFFER_BURST_PER_SESSION = 64
OFFERS_PER_SECOND_PER_SESSION = 1.0
OFFER_BURST_PER_PEER = 256
OFFERS_PER_SECOND_PER_PEER = 1.0

FreeSpace = Callable[[Path], int]


def free_bytes(folder: Path) -> int:
    """Bytes free for us in `folder`'s file system."""
    return shutil.disk_usage(folder).free


class DiskSpace:
    """Reservations of bytes still to come, checked against the free space of one folder."""

    def __init__(
        self,
        folder: Path,
        *,
        free: FreeSpace = free_bytes,
        margin: int = DISK_RESERVE,
        recheck: int = RECHECK_BYTES,
    ) -> None:
        self.folder = folder
        self._free = free
        self.margin = margin
        self.recheck = recheck
        self._held: set[Reservation] = set()

    @property
    def reserved(self) -> int:
        """Bytes still to come, summed over every file in progress."""
        return sum(held.remaining for held in self._held)

    def reserve(self, need: int, *, name: str) -> Reservation:
        """Room for `need` more bytes of the file `name`, or FileTransferError (nothing held)."""
        free = self._free(self.folder)
        reserved = self.reserved
        if reserved + need > free - self.margin:
            others = f", {reserved} already promised to files in progress" if reserved else ""
            raise FileTransferError(
                f"refused {name}: {need} bytes do not fit on the disk "
                f"({free} bytes free{others}, {self.margin} kept free)",
                public="no room for it on the disk",
            )
        held = Reservation(self, name, need)
        self._held.add(held)
        return held

    def check(self, held: Reservation) -> None:
        """FileTransferError if the files in progress no longer fit (the rule of `reserve`)."""
        free = self._free(self.folder)
        reserved = self.reserved
        if reserved > free - self.margin:
            raise FileTransferError(
                f"{held.name}: the disk is filling up ({free} bytes free, {reserved} still to "
                f"come, {self.margin} kept free): this file is not received",
                public="no more room on the disk",
            )

    def release(self, held: Reservation) -> None:
        self._held.discard(held)


@dataclass(eq=False)
class Reservation:
    """One file's claim on a `DiskSpace`: the bytes it still expects."""

    space: DiskSpace
    name: str
    remaining: int
    _unchecked: int = field(default=0, init=False)

    def expect(self, remaining: int) -> None:
        """The file now expects `remaining` more bytes (a resumed part file was re-read)."""
        self.remaining = max(0, remaining)

    def written(self, count: int) -> None:
        """`count` more bytes were written; every `recheck` bytes the free space is re-checked
        (FileTransferError if the files in progress no longer fit)."""
        self.remaining = max(0, self.remaining - count)
        self._unchecked += count
        if self._unchecked >= self.space.recheck:
            self._unchecked = 0
            self.space.check(self)

    def release(self) -> None:
        self.space.release(self)


_SPACES: dict[str, DiskSpace] = {}


def space_for(folder: Path) -> DiskSpace:
    """The process's one `DiskSpace` for `folder` (shared by all its sessions)."""
    key = str(folder.resolve())
    found = _SPACES.get(key)
    if found is None:
        found = _SPACES[key] = DiskSpace(folder)
    return found


@dataclass
class TokenBucket:
    """At most `burst` events at once, then `rate` per second."""

    burst: int
    rate: float
    _tokens: float = field(default=-1.0, init=False)
    _at: float = field(default=0.0, init=False)

    def take(self, now: float) -> bool:
        if self._tokens < 0:
            self._tokens, self._at = float(self.burst), now
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


_PEER_BUCKETS: dict[str, TokenBucket] = {}


class OfferRate:
    """Every offer of one session's peer, counted per session and per peer (module doc)."""

    def __init__(
        self,
        peer_did: str,
        *,
        session: TokenBucket | None = None,
        peer: TokenBucket | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session or TokenBucket(
            OFFER_BURST_PER_SESSION, OFFERS_PER_SECOND_PER_SESSION
        )
        if peer is None:
            peer = _PEER_BUCKETS.setdefault(
                peer_did, TokenBucket(OFFER_BURST_PER_PEER, OFFERS_PER_SECOND_PER_PEER)
            )
        self._peer = peer
        self._clock = clock

    def allow(self) -> bool:
        """Count one offer; False if it is over the session's or the peer's rate."""
        now = self._clock()
        session_ok = self._session.take(now)
        return self._peer.take(now) and session_ok
