"""What arrived by mailbox, as events and as the lines `didlink receive` and `didlink daemon`
print (specs/mailbox.md §12, §14): one place, so both commands print an arrival the same way.

- `inbox_events(box)`: the inbox rows not shown yet as `MailboxMessage` / `MailboxDelivered`
  (with their row numbers, to forget once shown).
- `item_json(item, names)`: the object of `receive --json` / `--jsonl` and `daemon --jsonl`.
- `show_item(item, names)`: the lines for a person (names and DIDs, local times, the text
  escaped: didlink/display.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from didlink.events import MailboxDelivered, MailboxMessage
from didlink.mailbox import MailboxStore
from didlink.output import print_json, say

Arrival = MailboxMessage | MailboxDelivered


def inbox_events(box: MailboxStore) -> list[tuple[int, Arrival]]:
    """(row, event) for every inbox row not shown yet, texts first in the order typed."""
    out: list[tuple[int, Arrival]] = []
    for entry in box.inbox():
        item: Arrival
        if entry.kind == "text":
            item = MailboxMessage(
                sender=entry.peer_did,
                id=entry.message_id.hex(),
                text=entry.text,
                sent_at=entry.sent_at,
                arrived_at=entry.arrived_at,
            )
        else:
            item = MailboxDelivered(
                peer=entry.peer_did,
                id=entry.message_id.hex(),
                text=entry.text,
                arrived_at=entry.arrived_at,
            )
        out.append((entry.seq, item))
    return out


def iso(at: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, to the second."""
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def local(at: datetime) -> str:
    """Local time with the zone, for a person."""
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def item_json(item: Arrival, names: dict[str, str]) -> dict[str, Any]:
    """`{"type": "message", ...}` or `{"type": "delivered", ...}` (specs/mailbox.md §12)."""
    value: dict[str, Any] = {
        "type": "message" if isinstance(item, MailboxMessage) else "delivered",
        "mid": item.id,
        "arrived_at": iso(item.arrived_at),
        "text": item.text,
    }
    if isinstance(item, MailboxMessage):
        value["from"] = item.sender
        value["name"] = names.get(item.sender)
        value["sent_at"] = None if item.sent_at is None else iso(item.sent_at)
    else:
        value["to"] = item.peer
        value["name"] = names.get(item.peer)
    return value


def show_item(item: Arrival, names: dict[str, str], *, as_jsonl: bool = False) -> None:
    """Print one arrival: a JSON line (`as_jsonl`) or the lines for a person."""
    from didlink.display import block

    if as_jsonl:
        print_json(item_json(item, names))
        return
    if isinstance(item, MailboxMessage):
        name = names.get(item.sender, item.sender)
        sent = "?" if item.sent_at is None else local(item.sent_at)
        say(f"From {name} ({item.sender}), sent {sent}, arrived {local(item.arrived_at)}:")
    else:
        name = names.get(item.peer, item.peer)
        say(f"Delivered to {name} ({local(item.arrived_at)}):")
    for line in block(item.text, first="  "):
        say(line)
