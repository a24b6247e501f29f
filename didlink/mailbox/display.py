"""What arrived by mailbox, as events and as the lines `didlink receive` and `didlink daemon`
print (specs/mailbox.md §12, §16): one place, so both commands print an arrival the same way.

- `inbox_events(box)`: the inbox rows not shown yet as `MailboxMessage` / `MailboxDelivered`
  (with their row numbers, to forget once shown).
- `item_json(item, names)`: the object of `receive --json` / `--jsonl` and `daemon --jsonl`.
- `show_item(item, names)`: the lines for a person (names and DIDs, local times, the text
  escaped: didlink/words/display.py).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from didlink.events import MailboxDelivered, MailboxMessage
from didlink.mailbox.store import MailboxStore
from didlink.words.output import print_json, say

Arrival = MailboxMessage | MailboxDelivered


def inbox_events(box: MailboxStore, requests: Collection[str] = ()) -> list[tuple[int, Arrival]]:
    """(row, event) for every inbox row not shown yet, texts first in the order typed;
    `requests`: the senders of message requests not answered yet (their texts are marked)."""
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
                request=entry.peer_did in requests,
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
    """ISO 8601 in UTC with a `Z`, to the second (identity/validity.py `iso_time`)."""
    from identity.validity import iso_time

    return iso_time(int(at.timestamp()))


def local(at: datetime) -> str:
    """Local time with the zone, for a person."""
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


REQUEST_NOTE = "(unverified: compare safety numbers with `didlink safety-number`)"


def item_json(
    item: Arrival, names: dict[str, str], suggested: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """`{"type": "message", ...}` or `{"type": "delivered", ...}` (specs/mailbox.md §12);
    `suggested`: the names message requests' senders suggest for themselves."""
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
        value["request"] = item.request  # from an unverified sender not answered yet
        if item.request:
            value["suggested_name"] = (suggested or {}).get(item.sender)
    else:
        value["to"] = item.peer
        value["name"] = names.get(item.peer)
    return value


def show_item(
    item: Arrival,
    names: dict[str, str],
    suggested: dict[str, str | None] | None = None,
    *,
    as_jsonl: bool = False,
) -> None:
    """Print one arrival: a JSON line (`as_jsonl`) or the lines for a person."""
    from didlink.words.display import block, shown

    if as_jsonl:
        print_json(item_json(item, names, suggested))
        return
    if isinstance(item, MailboxMessage) and item.request:
        sent = "?" if item.sent_at is None else local(item.sent_at)
        label = (suggested or {}).get(item.sender)
        who = f"~{shown(label, limit=32)} ({item.sender})" if label else item.sender
        arrived = local(item.arrived_at)
        say(f"Message request from {who} {REQUEST_NOTE}, sent {sent}, arrived {arrived}:")
    elif isinstance(item, MailboxMessage):
        name = names.get(item.sender, item.sender)
        sent = "?" if item.sent_at is None else local(item.sent_at)
        say(f"From {name} ({item.sender}), sent {sent}, arrived {local(item.arrived_at)}:")
    else:
        name = names.get(item.peer, item.peer)
        say(f"Delivered to {name} ({local(item.arrived_at)}):")
    for line in block(item.text, first="  "):
        say(line)
