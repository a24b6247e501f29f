"""Files that wait for a live connection (issue 25 point 8): `didlink send CONTACT --file PATH`,
`Agent.send_file` to a contact with no live session.

Theory of operation (specs/store.md "Queued files", specs/cli-jsonl.md sections 2 and 5)
---------------------------------------------------------------------------------------
Files go over a live connection only (a relay carries texts, never files). `queue_file` checks
the file now (it exists, is a regular file we can read, its name fits an offer, it is at most
`MAX_QUEUED_FILE_BYTES`; at most `MAX_QUEUED_FILES` wait per contact), hashes it and writes an
`out` row of the `transfers` table (didlink/session/resume.py), sealed, marked `queued`, holding the
absolute path, size, modification time and SHA-256: a reference to the file, not a copy (a copy
would double the disk a large file takes, and put a file the user may delete later into the
store, which a backup carries). So the file must still be there, unchanged, when it leaves.

On the next verified session with the contact (didlink/session/transfers.py `send_queued`) the
queued files leave one after another, in the order queued, after the outbox's texts: each is
re-opened and `unchanged` checks its size, modification time and SHA-256 against the row. A file
changed or gone is not sent: its row is deleted and the session reports it (`file_unsent`). A file
that is offered becomes an ordinary transfer (its row loses `queued`): it resumes as any after a
cut, and leaves the table at the peer's final ack (`file_sent`) or its refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from didlink.errors import UserError
from didlink.session.file_limits import MAX_QUEUED_FILE_BYTES, MAX_QUEUED_FILES
from didlink.session.files import OutgoingFile, new_file_id
from didlink.session.resume import OutgoingState, TransferStates

CHANGED = "changed"
"""`file_unsent` reason: the file's size, modification time or SHA-256 differ from the row's."""
UNREADABLE = "unreadable"
"""`file_unsent` reason: the file is gone, is no longer a regular file, or cannot be read."""


@dataclass(frozen=True)
class QueuedFile:
    """A file queued for a contact: what `queue_file` wrote."""

    file_id: bytes
    path: Path
    name: str
    size: int

    @property
    def id(self) -> str:
        return self.file_id.hex()


def check_file(path: Path) -> OutgoingFile:
    """The file opened and hashed (the caller closes it); UserError (one line) if it cannot be
    sent: missing, a folder, not a regular file, unreadable, a name an offer cannot carry, or
    larger than `MAX_QUEUED_FILE_BYTES`."""
    outgoing = OutgoingFile(path.expanduser().absolute(), hash_now=False)
    try:
        outgoing.check_name()
        if outgoing.size > MAX_QUEUED_FILE_BYTES:
            raise UserError(
                f"{outgoing.name} is {outgoing.size} bytes: a file queued for a contact is at "
                f"most {MAX_QUEUED_FILE_BYTES} bytes (send a larger one in a live chat)"
            )
        outgoing.hash()
        return outgoing
    except BaseException:
        outgoing.close()
        raise


def queue_file(states: TransferStates, peer_did: str, checked: OutgoingFile) -> QueuedFile:
    """Queue the file `check_file` opened for `peer_did`, and close it (module docstring)."""
    try:
        if len(states.queued(peer_did)) >= MAX_QUEUED_FILES:
            raise UserError(
                f"{MAX_QUEUED_FILES} files already wait for this contact: they leave on the "
                "next live connection"
            )
        state = OutgoingState(
            file_id=new_file_id(),
            peer_did=peer_did,
            path=checked.path,
            size=checked.size,
            sha256=checked.sha256,
            queued=True,
            mtime_ns=checked.mtime_ns,
        )
        states.queue_outgoing(state)
        return QueuedFile(state.file_id, state.path, checked.name, checked.size)
    finally:
        checked.close()


def unchanged(outgoing: OutgoingFile, state: OutgoingState) -> bool:
    """Whether the re-opened, hashed file is the one queued: same size, modification time and
    SHA-256."""
    return (
        outgoing.size == state.size
        and (state.mtime_ns is None or outgoing.mtime_ns == state.mtime_ns)
        and outgoing.sha256 == state.sha256
    )
