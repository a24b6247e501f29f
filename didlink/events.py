"""What a live session reports: one frozen class per event of specs/cli-jsonl.md section 2.

`didlink.Agent`'s sessions yield these (`Session.events()`); the `--jsonl` interface writes the
same events as JSON lines, field for field (`event_from` turns one into the other). A program
matches on the class:

    async for event in session.events():
        match event:
            case MessageReceived(sender=sender, text=text):
                print(sender, text)
            case Closed(reason=reason):
                print("closed:", reason)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from didlink.words.when import utc_time as _utc
from identity.validity import iso_time


@dataclass(frozen=True)
class TokenReady:
    """A token to hand to the other person: `kind` "invite", "reconnect" or "response"."""

    kind: str
    token: str
    relays: tuple[str, ...] | None = None
    """An invitation that carries a reach: its relays, where the response may come back."""
    sent_by_relay: tuple[str, ...] | None = None
    """A response sent by relay: the relays that took it (empty if none did); else None."""


@dataclass(frozen=True)
class SasShown:
    """The handshake is done: compare these with the other person, then confirm or reject."""

    emoji: tuple[str, ...]
    names: tuple[str, ...]
    decimal: tuple[int, ...]


@dataclass(frozen=True)
class Connected:
    """Both sides confirmed the SAS (or it was a verified contact): messages flow now."""

    peer: str
    verified: bool
    timings_ms: Mapping[str, int] = field(default_factory=dict)
    path: str | None = None
    """How the packets travel, our side's candidate of the selected pair: "host" (direct),
    "srflx" or "prflx" (direct, through a NAT), "relay" (through our TURN server)."""
    suggested_name: str | None = None
    """The name the peer suggests for itself (its label), if valid: never its name until the
    user adopts it (Agent.rename(peer) with no name)."""
    response_via: str | None = None
    """The inviter's side: where the response came from, "relay" or "paste" (else None)."""


@dataclass(frozen=True)
class MessageSent:
    """One of our messages left, encrypted, and is safe on disk until its receipt."""

    id: str
    ref: Any = None
    via: str | None = None
    """The route it left by: "live" or "mailbox" (specs/rendezvous.md)."""


@dataclass(frozen=True)
class Delivered:
    """The peer's receipt for our message `id` arrived."""

    id: str
    via: str | None = None


@dataclass(frozen=True)
class MessageReceived:
    """A message from `sender` (a DID), delivered once. `id` is 32 hex digits; an int (the
    message's sequence number) from a peer that gives its messages no ids. `sent_at`: the
    sender's clock when it was typed (UTC), if the sender said: shown as given, never trusted
    (specs/frames.md 5b)."""

    sender: str
    id: str | int
    text: str
    sent_at: datetime | None = None
    via: str | None = None
    """The route it came by: "live" or "mailbox" (specs/rendezvous.md)."""


@dataclass(frozen=True)
class QueuedMessage:
    """One of our texts waiting in the outbox: `typed_at` (UTC) when it was typed; `ref` that
    of its `send` command, if it was typed in this session."""

    id: str
    text: str
    typed_at: datetime | None = None
    ref: Any = None


@dataclass(frozen=True)
class QueuedFile:
    """One of our files queued for a live session (`Agent.send_file`, `didlink send --file`):
    it leaves once the session is verified (`Progress`, then `FileSent` with this `id`)."""

    id: str
    name: str
    size: int


@dataclass(frozen=True)
class Queued:
    """Texts for `peer` wait in the outbox until the session is verified: each is `queued`
    until its `MessageSent`, then delivered at its `Delivered`. `files`: the files queued for
    `peer`, which leave after the texts."""

    peer: str
    messages: tuple[QueuedMessage, ...]
    files: tuple[QueuedFile, ...] = ()


@dataclass(frozen=True)
class ContactOffline:
    """(`chat` / `Agent.connect` by rendezvous) the contact did not answer in time: texts go
    by mailbox (specs/rendezvous.md)."""

    peer: str
    name: str | None = None


@dataclass(frozen=True)
class Progress:
    """A file transfer reached `done` of `total` bytes: `direction` "out" (ours) or "in" (the
    peer's, whose `name` the peer chose: show it through `didlink.words.display.shown`)."""

    id: str
    done: int
    total: int
    direction: str = ""
    name: str = ""


@dataclass(frozen=True)
class FileReceived:
    """A whole file arrived from `sender`, its SHA-256 checked, saved at `path`."""

    sender: str
    id: str
    name: str
    size: int
    sha256: str
    path: Path


@dataclass(frozen=True)
class FileSent:
    """The peer acknowledged our whole file."""

    id: str
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class FileOffered:
    """(`files="ask"` only) the peer offers a file: `accept_file()` or `refuse_file()`."""

    sender: str
    id: str
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class FileRefused:
    """A file was refused: ours by the peer (`by` "peer") or theirs by us (`by` "us")."""

    sender: str
    id: str
    name: str
    size: int
    by: str


@dataclass(frozen=True)
class FileUnsent:
    """A queued file was not sent and left the queue: `reason` "changed" (its size, time or
    SHA-256 differ from when it was queued) or "unreadable" (gone, not a file, unreadable)."""

    id: str
    name: str
    path: Path
    size: int
    reason: str


@dataclass(frozen=True)
class SessionError:
    """Something went wrong; the session goes on unless `Closed` follows."""

    message: str


@dataclass(frozen=True)
class SessionWarning:
    """Something the user should know (a message left unsent, a TURN server that failed, the
    history that could not be written); the session goes on. Not a `--jsonl` event: the CLI
    writes it as one `warning:` line on stderr."""

    message: str


@dataclass(frozen=True)
class Closed:
    """The session ended (the last event); `reason` as in specs/cli-jsonl.md section 5."""

    reason: str
    exit_code: int = 0


Event = (
    TokenReady
    | SasShown
    | Connected
    | MessageSent
    | Delivered
    | MessageReceived
    | Queued
    | Progress
    | FileReceived
    | FileSent
    | FileOffered
    | FileRefused
    | FileUnsent
    | SessionError
    | SessionWarning
    | Closed
    | ContactOffline
)


def event_from(name: str, fields: Mapping[str, Any]) -> Event | None:
    """The event object for one `--jsonl` event (None for one this module does not know)."""
    if name == "token":
        relays, sent = fields.get("relays"), fields.get("sent_by_relay")
        return TokenReady(
            kind=fields["kind"],
            token=fields["token"],
            relays=None if relays is None else tuple(relays),
            sent_by_relay=None if sent is None else tuple(sent),
        )
    if name == "sas":
        return SasShown(
            emoji=tuple(fields["emoji"]),
            names=tuple(fields["names"]),
            decimal=tuple(fields["decimal"]),
        )
    if name == "connected":
        return Connected(
            peer=fields["peer"],
            verified=bool(fields["verified"]),
            timings_ms=dict(fields.get("timings_ms", {})),
            path=fields.get("path"),
            suggested_name=fields.get("suggested_name"),
            response_via=fields.get("response_via"),
        )
    if name == "sent":
        return MessageSent(id=str(fields["id"]), ref=fields.get("ref"), via=fields.get("via"))
    if name == "delivered":
        return Delivered(id=str(fields["id"]), via=fields.get("via"))
    if name == "message":
        mid = fields["id"]
        return MessageReceived(
            sender=fields["from"],
            id=mid if isinstance(mid, int) else str(mid),
            text=fields["text"],
            sent_at=_utc(fields.get("sent_at")),
            via=fields.get("via"),
        )
    if name == "queued":
        return Queued(
            peer=fields["to"],
            messages=tuple(
                QueuedMessage(
                    id=item["id"],
                    text=item["text"],
                    typed_at=_utc(item.get("typed_at")),
                    ref=item.get("ref"),
                )
                for item in fields["messages"]
            ),
            files=tuple(
                QueuedFile(id=item["id"], name=item["name"], size=item["size"])
                for item in fields.get("files", ())
            ),
        )
    if name == "offline":
        return ContactOffline(peer=fields["peer"], name=fields.get("name"))
    if name == "progress":
        return Progress(
            id=fields["id"],
            done=fields["bytes"],
            total=fields["total"],
            direction=fields.get("direction", ""),
            name=fields.get("name", ""),
        )
    if name == "file":
        return FileReceived(
            sender=fields["from"],
            id=fields["id"],
            name=fields["name"],
            size=fields["size"],
            sha256=fields["sha256"],
            path=Path(fields["path"]),
        )
    if name == "file_sent":
        return FileSent(
            id=fields["id"], name=fields["name"], size=fields["size"], sha256=fields["sha256"]
        )
    if name == "file_offer":
        return FileOffered(
            sender=fields["from"],
            id=fields["id"],
            name=fields["name"],
            size=fields["size"],
            sha256=fields["sha256"],
        )
    if name == "file_refused":
        return FileRefused(
            sender=fields.get("from", ""),
            id=fields["id"],
            name=fields["name"],
            size=fields["size"],
            by=fields["by"],
        )
    if name == "file_unsent":
        return FileUnsent(
            id=fields["id"],
            name=fields["name"],
            path=Path(fields["path"]),
            size=fields["size"],
            reason=fields["reason"],
        )
    if name == "error":
        return SessionError(message=fields["message"])
    if name == "closed":
        return Closed(reason=fields["reason"])
    return None


def event_fields(event: Event) -> tuple[str, dict[str, Any]] | None:
    """The `--jsonl` event of `event`: its name and fields, in the order specs/cli-jsonl.md
    writes them (the inverse of `event_from`). None for `SessionWarning`, which is no event
    of the JSON interface."""
    match event:
        case TokenReady():
            token: dict[str, Any] = {"kind": event.kind, "token": event.token}
            if event.relays is not None:
                token["relays"] = list(event.relays)
            if event.sent_by_relay is not None:
                token["sent_by_relay"] = list(event.sent_by_relay)
            return "token", token
        case SasShown():
            return "sas", {
                "emoji": list(event.emoji),
                "names": list(event.names),
                "decimal": list(event.decimal),
            }
        case Connected():
            connected: dict[str, Any] = {
                "peer": event.peer,
                "verified": event.verified,
                "path": event.path,
                "timings_ms": dict(event.timings_ms),
                "suggested_name": event.suggested_name,
            }
            if event.response_via is not None:
                connected["response_via"] = event.response_via
            return "connected", connected
        case MessageSent():
            sent: dict[str, Any] = {"id": event.id}
            if event.ref is not None:
                sent["ref"] = event.ref
            if event.via is not None:
                sent["via"] = event.via
            return "sent", sent
        case Delivered():
            delivered: dict[str, Any] = {"id": event.id}
            if event.via is not None:
                delivered["via"] = event.via
            return "delivered", delivered
        case MessageReceived():
            message: dict[str, Any] = {"from": event.sender, "id": event.id, "text": event.text}
            if event.sent_at is not None:
                message["sent_at"] = iso_time(int(event.sent_at.timestamp()))
            if event.via is not None:
                message["via"] = event.via
            return "message", message
        case ContactOffline():
            return "offline", {"peer": event.peer, "name": event.name, "via": "mailbox"}
        case Queued():
            items = []
            for waiting in event.messages:
                item: dict[str, Any] = {"id": waiting.id, "text": waiting.text}
                if waiting.typed_at is not None:
                    item["typed_at"] = iso_time(int(waiting.typed_at.timestamp()))
                if waiting.ref is not None:
                    item["ref"] = waiting.ref
                items.append(item)
            queued: dict[str, Any] = {"to": event.peer, "messages": items}
            if event.files:
                queued["files"] = [
                    {"id": file.id, "name": file.name, "size": file.size} for file in event.files
                ]
            return "queued", queued
        case Progress():
            fields: dict[str, Any] = {"id": event.id, "bytes": event.done, "total": event.total}
            if event.direction:
                fields.update(direction=event.direction, name=event.name)
            return "progress", fields
        case FileReceived():
            return "file", {
                "from": event.sender,
                "id": event.id,
                "name": event.name,
                "size": event.size,
                "sha256": event.sha256,
                "path": str(event.path),
            }
        case FileSent():
            return "file_sent", {
                "id": event.id,
                "name": event.name,
                "size": event.size,
                "sha256": event.sha256,
            }
        case FileOffered():
            return "file_offer", {
                "from": event.sender,
                "id": event.id,
                "name": event.name,
                "size": event.size,
                "sha256": event.sha256,
            }
        case FileUnsent():
            return "file_unsent", {
                "id": event.id,
                "name": event.name,
                "path": str(event.path),
                "size": event.size,
                "reason": event.reason,
            }
        case FileRefused():
            return "file_refused", {
                "id": event.id,
                "name": event.name,
                "size": event.size,
                "by": event.by,
                "from": event.sender,
            }
        case SessionError():
            return "error", {"message": event.message}
        case Closed():
            return "closed", {"reason": event.reason}
    return None


# --- the mailbox (issue 25; specs/mailbox.md §10): `Agent.receive()` returns these ---------


@dataclass(frozen=True)
class MailboxMessage:
    """A text that arrived by mailbox from `sender` (a DID), kept once; `sent_at` is the
    sender's clock when it was typed, `arrived_at` ours when it was fetched (both UTC)."""

    sender: str
    id: str
    text: str
    sent_at: datetime | None
    arrived_at: datetime
    request: bool = False
    """From a message request not answered yet: an unverified sender (a card holder) whose
    label is only a suggested name (specs/first-message.md §6)."""


@dataclass(frozen=True)
class MailboxDelivered:
    """`peer`'s receipt for our text `id` (sent by mailbox or live) arrived by mailbox."""

    peer: str
    id: str
    text: str
    arrived_at: datetime


@dataclass(frozen=True)
class RelayState:
    """(`Agent.serve`) the connection to relay `url` opened (`up`) or ended (`up` False: it is
    retried with a capped exponential backoff)."""

    url: str
    up: bool
