"""What the profile keeps about file transfers so that they resume after a reconnect.

Theory of operation (specs/cli-jsonl.md section 5, specs/store.md table `transfers`)
-----------------------------------------------------------------------------------
One row per file id, sealed (didlink/sealing.py, context "transfers\\0" + file id): only the
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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from didlink.sealing import Sealer
from didlink.store import DamagedStore, Store
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


@dataclass(frozen=True)
class IncomingState:
    """A file `peer_did` offered us: its offer, and where it was saved once complete."""

    peer_did: str
    offer: FileOffer
    saved: str | None  # the saved path once the file arrived complete


class TransferStates:
    """The `transfers` table of one profile, sealed."""

    def __init__(self, store: Store, sealer: Sealer) -> None:
        self._db = store.connection
        self._sealer = sealer

    def _put(self, file_id: bytes, peer_did: str, direction: str, value: dict[str, object]) -> None:
        sealed = self._sealer.seal(canonical.encode(value), context=_CONTEXT + file_id)
        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        self._db.execute(
            "INSERT OR REPLACE INTO transfers (file_id, peer_did, direction, updated_at, sealed)"
            " VALUES (?, ?, ?, ?, ?)",
            (file_id, peer_did, direction, stamp, sealed),
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

    def forget(self, file_id: bytes) -> None:
        self._db.execute("DELETE FROM transfers WHERE file_id = ?", (file_id,))

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

    def outgoing(self, peer_did: str) -> list[OutgoingState]:
        """Files to `peer_did` not yet acknowledged, oldest first."""
        rows = self._db.execute(
            "SELECT file_id, sealed FROM transfers WHERE peer_did = ? AND direction = 'out'"
            " ORDER BY updated_at",
            (peer_did,),
        ).fetchall()
        states = []
        for file_id, sealed in rows:
            value = self._open(bytes(file_id), bytes(sealed), peer_did)
            path, size, sha256 = value.get("path"), value.get("size"), value.get("sha256")
            if not (isinstance(path, str) and isinstance(size, int) and isinstance(sha256, bytes)):
                raise DamagedStore("a file transfer record is incomplete")
            states.append(OutgoingState(bytes(file_id), peer_did, Path(path), size, sha256))
        return states

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
