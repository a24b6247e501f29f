"""Optional message history (`--history`): each message of a session, sealed in the store.

Theory of operation (specs/history.md)
--------------------------------------
History is off unless the user passes `--history` to a live command (`invite`, `accept`,
`chat`): then every text message sent and received in that session is appended to the store's
`history` table (schema 2, specs/store.md). Only the peer's DID, the direction and the time
are in clear; the message (its id as in the session's events and its text, canonical CBOR)
is sealed under the profile's store key (didlink/profile/sealing.py) with the context

    b"history\\x00" || seq (8 bytes, big endian) || peer DID (UTF-8) || b"\\x00" || direction

so a sealed value copied to another row, or a row relabelled with another peer or direction,
does not open. The row's `seq` is only known once the row exists, so `append` inserts a
placeholder and seals it in the same IMMEDIATE transaction: nobody ever sees the placeholder.

`history_option` is the click decorator every live command applies; it puts the flag in the
click context, where `history_requested()` finds it (so the session glue needs no new
parameters). Both live in didlink/cli/history_flag.py (declaring the commands must stay light) and
are re-exported here.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from didlink.cli.history_flag import history_option as history_option  # re-exported
from didlink.cli.history_flag import history_requested as history_requested  # re-exported
from didlink.errors import UserError
from didlink.profile.folder import Profile
from didlink.profile.sealing import Sealer
from didlink.profile.store import DamagedStore, Store
from identity import canonical
from identity.keys import IdentityKey

HISTORY_CONTEXT = b"history\x00"
PLAINTEXT_VERSION = 1


class Direction(enum.StrEnum):
    """Who wrote the message: the peer (`in`) or us (`out`)."""

    IN = "in"
    OUT = "out"


class _SealedMessage(BaseModel):
    """The plaintext of a history row's `sealed` column (canonical CBOR map)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: StrictInt
    id: StrictInt | StrictStr
    text: StrictStr


@dataclass(frozen=True)
class HistoryEntry:
    """One stored message, unsealed."""

    seq: int
    peer_did: str
    direction: Direction
    at: datetime
    message_id: int | str
    text: str


def history_context(seq: int, peer_did: str, direction: Direction) -> bytes:
    """The associated data that binds a sealed message to its row (see the module docstring)."""
    return (
        HISTORY_CONTEXT
        + seq.to_bytes(8, "big")
        + peer_did.encode("utf-8")
        + b"\x00"
        + direction.value.encode("ascii")
    )


def append(
    store: Store,
    sealer: Sealer,
    *,
    peer_did: str,
    direction: Direction,
    message_id: int | str,
    text: str,
    now: datetime,
) -> int:
    """Append one message (sealed) to the history; its `seq`."""
    if now.tzinfo is None:
        raise ValueError("history times must be timezone-aware datetimes")
    plaintext = canonical.encode({"v": PLAINTEXT_VERSION, "id": message_id, "text": text})
    db = store.connection
    with store.transaction():
        cursor = db.execute(
            "INSERT INTO history (peer_did, direction, at, sealed) VALUES (?, ?, ?, X'')",
            (peer_did, direction.value, now.astimezone(UTC).isoformat(timespec="microseconds")),
        )
        seq = cursor.lastrowid
        assert seq is not None
        sealed = sealer.seal(plaintext, context=history_context(seq, peer_did, direction))
        db.execute("UPDATE history SET sealed = ? WHERE seq = ?", (sealed, seq))
    return seq


def _unseal(sealer: Sealer, row: tuple[int, str, str, str, bytes]) -> HistoryEntry:
    seq, peer_did, direction_text, at, sealed = row
    direction = Direction(direction_text)
    plaintext = sealer.open(sealed, context=history_context(seq, peer_did, direction))
    try:
        message = _SealedMessage.model_validate(canonical.decode(plaintext))
    except (ValueError, ValidationError):
        raise DamagedStore("a history entry in the local store is not readable") from None
    if message.v != PLAINTEXT_VERSION:
        raise DamagedStore(f"a history entry has an unknown version {message.v}")
    return HistoryEntry(
        seq=seq,
        peer_did=peer_did,
        direction=direction,
        at=datetime.fromisoformat(at),
        message_id=message.id,
        text=message.text,
    )


def read(
    store: Store, sealer: Sealer, peer_did: str, *, limit: int | None = None
) -> list[HistoryEntry]:
    """The conversation with `peer_did`, oldest first; only the last `limit` if given."""
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    rows = store.connection.execute(
        "SELECT seq, peer_did, direction, at, sealed FROM history WHERE peer_did = ?"
        " ORDER BY seq DESC LIMIT ?",
        (peer_did, -1 if limit is None else limit),
    ).fetchall()
    return [_unseal(sealer, row) for row in reversed(rows)]


def count(store: Store, peer_did: str) -> int:
    """How many messages with `peer_did` are stored (no passphrase needed)."""
    row = store.connection.execute(
        "SELECT count(*) FROM history WHERE peer_did = ?", (peer_did,)
    ).fetchone()
    return int(row[0])


def clear(store: Store, peer_did: str) -> int:
    """Delete the conversation with `peer_did`; how many messages were deleted."""
    cursor = store.connection.execute("DELETE FROM history WHERE peer_did = ?", (peer_did,))
    return cursor.rowcount


class HistoryLog:
    """A live session's recorder: `record()` appends one message; failures are reported once.

    It opens the store on the first message and keeps that connection until `close()` (or the
    process ends: every append is its own committed transaction, so nothing is lost). A storage
    problem never ends the conversation.
    """

    def __init__(
        self,
        *,
        profile: Profile,
        key: IdentityKey,
        on_error: Callable[[str], None],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._profile = profile
        self._sealer = Sealer(key)
        self._on_error = on_error
        self._now = now
        self._failed = False
        self._store: Store | None = None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def record(self, peer_did: str, direction: Direction, message_id: int | str, text: str) -> None:
        try:
            if self._store is None:
                self._store = self._profile.open_store(check=False)  # (the session's was)
            append(
                self._store,
                self._sealer,
                peer_did=peer_did,
                direction=direction,
                message_id=message_id,
                text=text,
                now=self._now(),
            )
        except (UserError, sqlite3.Error, OSError) as exc:
            if not self._failed:
                self._failed = True
                self._on_error(f"the message history could not be saved: {exc}")
