"""What the profile keeps about file transfers so that they resume after a reconnect.

Theory of operation (specs/cli-jsonl.md section 5, specs/store.md table `transfers`)
-----------------------------------------------------------------------------------
One row per file id, sealed (didlink/profile/sealing.py, context "transfers\\0" + file id): only the
file id, the peer's DID, the direction and a time are in clear.

- Sending (`out`): the absolute path, name, size and SHA-256 of a file we started to send. The
  row is written before the offer leaves and deleted when the peer's `file_ack` covers the whole
  file. On the next verified session with that peer the file is re-opened and re-hashed (a file
  that changed meanwhile is not resumed) and offered again under the same id.
- Receiving (`in`): the offer (name, size, SHA-256, chunk size) of a file being received into
  `downloads/.didlink-<id>.part`, and, once it arrived complete, where it was saved (`path`).
  A re-offer of a known id resumes from the bytes in the part file (re-hashed: the hash of those
  bytes is the starting state of the final SHA-256 check); a re-offer of a file already saved
  is acknowledged at once, so a sender that missed our last ack does not send it twice.

A row is keyed by (direction, file id) (schema 3): an offer from the peer that reuses the id of
a file we send touches only the `in` row of that id, never our `out` row (issue 26).

Limits on what a peer leaves behind (specs/store.md "Transfers kept"): `incoming_rows` lists a
peer's `in` rows (newest first) so that the session keeps at most a budget of partial files per
peer (count and bytes) and a bounded number of rows of saved files; `expired` lists the `in`
rows of every peer not updated since a time, which the session deletes with their part files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from didlink.profile.sealing import Sealer
from didlink.profile.store import DamagedStore, Store
from identity import canonical
from messaging.frames import FileOffer

_CONTEXT = b"transfers\x00"


@dataclass(frozen=True)
class OutgoingState:
    """A file we started to send to `peer_did` and that is not yet acknowledged."""

    file_id: bytes
    peer_did: str
    path: Path
    size: int
    sha256: bytes
    queued: bool = False
    """Queued for the next live session (`didlink send --file`), not offered yet."""
    mtime_ns: int | None = None
    """(queued) the file's modification time when it was queued, in nanoseconds."""


@dataclass(frozen=True)
class IncomingState:
    """A file `peer_did` offered us: its offer, and where it was saved once complete."""

    peer_did: str
    offer: FileOffer
    saved: str | None  # the saved path once the file arrived complete


@dataclass(frozen=True)
class IncomingRow:
    """One `in` row as the limits see it: its id, when it was last updated, whether saved."""

    file_id: bytes
    updated_at: str
    saved: bool


class TransferStates:
    """The `transfers` table of one profile, sealed."""

    def __init__(self, store: Store, sealer: Sealer) -> None:
        self._db = store.connection
        self._sealer = sealer

    def _put(self, file_id: bytes, peer_did: str, direction: str, value: dict[str, object]) -> None:
        sealed = self._sealer.seal(canonical.encode(value), context=_CONTEXT + file_id)
        self._db.execute(
            "INSERT OR REPLACE INTO transfers (file_id, peer_did, direction, updated_at, sealed)"
            " VALUES (?, ?, ?, ?, ?)",
            (file_id, peer_did, direction, _stamp(datetime.now(UTC)), sealed),
        )

    def _get(self, file_id: bytes, direction: str) -> tuple[str, dict[str, object]] | None:
        row = self._db.execute(
            "SELECT peer_did, sealed FROM transfers WHERE file_id = ? AND direction = ?",
            (file_id, direction),
        ).fetchone()
        if row is None:
            return None
        return str(row[0]), self._open(file_id, bytes(row[1]), str(row[0]))

    def _open(self, file_id: bytes, sealed: bytes, peer_did: str) -> dict[str, object]:
        value = canonical.decode(self._sealer.open(sealed, context=_CONTEXT + file_id))
        if not isinstance(value, dict) or value.get("peer") != peer_did:
            raise DamagedStore("a file transfer record does not belong where it is stored")
        return value

    def forget_outgoing(self, file_id: bytes) -> None:
        self._forget("out", file_id)

    def forget_incoming(self, file_id: bytes) -> None:
        self._forget("in", file_id)

    def _forget(self, direction: str, file_id: bytes) -> None:
        self._db.execute(
            "DELETE FROM transfers WHERE direction = ? AND file_id = ?", (direction, file_id)
        )

    # -- sending -----------------------------------------------------------------------------

    def save_outgoing(self, state: OutgoingState) -> None:
        self._put(
            state.file_id,
            state.peer_did,
            "out",
            {
                "peer": state.peer_did,
                "path": str(state.path),
                "size": state.size,
                "sha256": state.sha256,
            },
        )

    def queue_outgoing(self, state: OutgoingState) -> None:
        """Queue a file for the next live session with `state.peer_did`
        (didlink/session/queued_files.py):
        a row like `save_outgoing`'s, marked `queued`, with the file's modification time. The
        offer replaces it with a plain `save_outgoing` row (from then on it resumes as any)."""
        value: dict[str, object] = {
            "peer": state.peer_did,
            "path": str(state.path),
            "size": state.size,
            "sha256": state.sha256,
            "queued": True,
        }
        if state.mtime_ns is not None:
            value["mtime_ns"] = state.mtime_ns
        self._put(state.file_id, state.peer_did, "out", value)

    def outgoing(self, peer_did: str) -> list[OutgoingState]:
        """Files to `peer_did` not yet acknowledged (started or queued), oldest first."""
        rows = self._db.execute(
            "SELECT file_id, sealed FROM transfers WHERE peer_did = ? AND direction = 'out'"
            " ORDER BY updated_at, rowid",
            (peer_did,),
        ).fetchall()
        states = []
        for file_id, sealed in rows:
            value = self._open(bytes(file_id), bytes(sealed), peer_did)
            path, size, sha256 = value.get("path"), value.get("size"), value.get("sha256")
            if not (isinstance(path, str) and isinstance(size, int) and isinstance(sha256, bytes)):
                raise DamagedStore("a file transfer record is incomplete")
            queued, mtime_ns = value.get("queued", False), value.get("mtime_ns")
            if not isinstance(queued, bool) or not (mtime_ns is None or isinstance(mtime_ns, int)):
                raise DamagedStore("a file transfer record is incomplete")
            states.append(
                OutgoingState(bytes(file_id), peer_did, Path(path), size, sha256, queued, mtime_ns)
            )
        return states

    def queued(self, peer_did: str) -> list[OutgoingState]:
        """The files queued for `peer_did` and not offered yet, in the order queued."""
        return [state for state in self.outgoing(peer_did) if state.queued]

    # -- receiving ---------------------------------------------------------------------------

    def save_incoming(self, peer_did: str, offer: FileOffer, *, saved: str | None = None) -> None:
        value: dict[str, object] = {"peer": peer_did, "offer": offer.model_dump()}
        if saved is not None:
            value["saved"] = saved
        self._put(offer.file_id, peer_did, "in", value)

    def incoming(self, file_id: bytes) -> IncomingState | None:
        found = self._get(file_id, "in")
        if found is None:
            return None
        peer_did, value = found
        saved = value.get("saved")
        try:
            offer = FileOffer.model_validate(value.get("offer"))
        except ValueError:
            raise DamagedStore("a file transfer record is incomplete") from None
        return IncomingState(peer_did, offer, saved if isinstance(saved, str) else None)

    def touch_incoming(self, file_id: bytes, *, now: datetime | None = None) -> None:
        """The incoming transfer was active at `now`: its age limit counts from then."""
        self._db.execute(
            "UPDATE transfers SET updated_at = ? WHERE direction = 'in' AND file_id = ?",
            (_stamp(now or datetime.now(UTC)), file_id),
        )

    def incoming_rows(self, peer_did: str) -> list[IncomingRow]:
        """The `in` rows of `peer_did`, the most recently updated first."""
        rows = self._db.execute(
            "SELECT file_id, updated_at, sealed FROM transfers"
            " WHERE peer_did = ? AND direction = 'in' ORDER BY updated_at DESC",
            (peer_did,),
        ).fetchall()
        found = []
        for file_id, updated_at, sealed in rows:
            value = self._open(bytes(file_id), bytes(sealed), peer_did)
            found.append(IncomingRow(bytes(file_id), str(updated_at), "saved" in value))
        return found

    def expired(self, *, now: datetime, max_age: timedelta) -> list[bytes]:
        """The ids of the `in` rows (any peer) not updated since `now - max_age`."""
        rows = self._db.execute(
            "SELECT file_id FROM transfers WHERE direction = 'in' AND updated_at < ?",
            (_stamp(now - max_age),),
        ).fetchall()
        return [bytes(row[0]) for row in rows]


def _stamp(when: datetime) -> str:
    """A row's time: UTC, ISO 8601 to the microsecond (so that text order is time order)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")
