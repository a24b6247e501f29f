"""`didlink send CONTACT TEXT [--wait] [--json]` and `didlink receive [--json|--jsonl]`: messages
to and from contacts who may be offline, through the profile's Nostr relays (issue 25, points 3
and 4; specs/mailbox.md §10-§12).

Both need the passphrase (the sessions and the outbox are sealed) and at least one relay. They
load the Nostr parts (nostr-sdk, websockets) and never aiortc: didlink/mailbox_route.py is
imported inside the command.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from didlink.errors import UserError
from didlink.output import print_json, say
from didlink.profile import Profile

if TYPE_CHECKING:
    from didlink.mailbox import InboxEntry
    from didlink.mailbox_route import MailboxRoute
    from didlink.store import Store

TIMEOUT_ENV = "DIDLINK_RELAY_TIMEOUT"
DEFAULT_TIMEOUT = 10.0
DEFAULT_WAIT = 60.0


def _timeout(value: float | None, default: float) -> float:
    """`--timeout`, else DIDLINK_RELAY_TIMEOUT, else `default`; 0 < t <= 3600."""
    if value is None:
        raw = os.environ.get(TIMEOUT_ENV)
        if raw is None:
            return default
        try:
            value = float(raw[:32])
        except ValueError:
            raise UserError(f"{TIMEOUT_ENV} is a number of seconds") from None
    if not 0 < value <= 3600:
        raise UserError("a relay timeout is more than 0 and at most 3600 seconds")
    return value


def _route(store: Store, key: Any) -> MailboxRoute:
    """The profile's mailbox route (UserError without a relay)."""
    from didlink import relays
    from didlink.mailbox import MailboxStore
    from didlink.mailbox_route import MailboxRoute
    from didlink.outbox import Outbox
    from didlink.sealing import Sealer
    from didlink.settings import Settings

    sealer = Sealer(key)
    settings = Settings(store, sealer)
    return MailboxRoute(
        MailboxStore(store, sealer), Outbox(store, sealer), settings, relays.configured(settings)
    )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _local(at: datetime) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


@click.command(name="send")
@click.argument("contact", metavar="CONTACT")
@click.argument("text", required=False)
@click.option(
    "--file",
    "file_path",
    metavar="PATH",
    default=None,
    help="Queue a file instead: it leaves on the next live connection with the contact.",
)
@click.option("--wait", is_flag=True, help="Wait for the delivery receipt.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the message (or queued file) id as JSON."
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help=f"Seconds to wait for relays (and with --wait the receipt); or {TIMEOUT_ENV}.",
)
def send_command(
    contact: str,
    text: str | None,
    file_path: str | None,
    wait: bool,
    as_json: bool,
    timeout: float | None,
) -> None:
    """Send a text to a contact, online or not, through your relays (sealed, queued in order);
    or, with --file, queue a file for the next live connection with them."""
    if (text is None) == (file_path is None):
        raise UserError("give either a TEXT or --file PATH (exactly one)")
    if file_path is not None:
        if wait:
            raise UserError("--wait is for texts: a file leaves on the next live connection")
        _queue_file(contact, file_path, as_json=as_json)
        return
    assert text is not None
    from messaging.mailbox import check_mailbox_text

    seconds = _timeout(timeout, DEFAULT_WAIT if wait else DEFAULT_TIMEOUT)
    try:
        check_mailbox_text(text)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    profile = Profile.from_env()
    profile.did()
    with profile.open_store() as store:
        peer = store.find_contact(contact)
        key = profile.unlock()
        route = _route(store, key)
        import asyncio  # late: every other command would pay its import

        mid, accepted, delivered = asyncio.run(_send(route, peer.did, text, wait, seconds))
    if as_json:
        value: dict[str, Any] = {
            "mid": mid.hex(),
            "to": peer.did,
            "relays": list(accepted),
            "status": "delivered" if delivered else "sent",
        }
        print_json(value)
        if wait and not delivered:
            raise SystemExit(1)
        return
    say(f"Sent to {peer.display_name} by {len(accepted)} relay(s).")
    if wait:
        say("Delivered." if delivered else "Not delivered yet: it stays in the outbox.")
    if wait and not delivered:
        raise SystemExit(1)


def _queue_file(contact: str, file_path: str, *, as_json: bool) -> None:
    """`send CONTACT --file PATH`: checked now, queued (a sealed reference, not a copy) for the
    next live session with the contact (didlink/queued_files.py; no relay is contacted)."""
    from pathlib import Path

    from didlink.queued_files import check_file, queue_file
    from didlink.resume import TransferStates
    from didlink.sealing import Sealer

    profile = Profile.from_env()
    profile.did()
    with profile.open_store() as store:
        peer = store.find_contact(contact)
        checked = check_file(Path(file_path))  # before the passphrase: a typo is said at once
        try:
            key = profile.unlock()
        except BaseException:
            checked.close()
            raise
        queued = queue_file(TransferStates(store, Sealer(key)), peer.did, checked)
    if as_json:
        print_json(
            {
                "id": queued.id,
                "to": peer.did,
                "name": queued.name,
                "size": queued.size,
                "status": "queued",
            }
        )
        return
    say(f"queued: leaves on the next live connection with {peer.display_name}")


async def _send(
    route: MailboxRoute, peer: str, text: str, wait: bool, seconds: float
) -> tuple[bytes, tuple[str, ...], bool]:
    from transport.errors import PublishFailed

    async with route:
        try:
            import asyncio  # late (see `send`)

            async with asyncio.timeout(seconds):
                mid, accepted = await route.post(peer, text)
        except (PublishFailed, TimeoutError):
            accepted = ()
        if not accepted:
            raise UserError(
                "no relay accepted the message: it waits in the outbox and leaves with the "
                "next send or receive"
            )
        delivered = False
        if wait:
            done = await route.collect(timeout=seconds, wait_for=mid)
            delivered = mid in done.delivered
    return mid, accepted, delivered


@click.command(name="receive")
@click.option("--json", "as_json", is_flag=True, help="Print what arrived as one JSON array.")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print one JSON object per line.")
@click.option(
    "--timeout",
    type=float,
    default=None,
    help=f"Seconds to wait for the relays (default 10; or {TIMEOUT_ENV}).",
)
def receive_command(as_json: bool, as_jsonl: bool, timeout: float | None) -> None:
    """Fetch the messages (and delivery receipts) that arrived since last time, each once."""
    if as_json and as_jsonl:
        raise UserError("--json and --jsonl: choose one")
    seconds = _timeout(timeout, DEFAULT_TIMEOUT)
    profile = Profile.from_env()
    profile.did()
    with profile.open_store() as store:
        key = profile.unlock()
        route = _route(store, key)
        import asyncio  # late, as in `send`

        answered = asyncio.run(_receive(route, seconds))
        from didlink.mailbox import MailboxStore
        from didlink.sealing import Sealer

        box = MailboxStore(store, Sealer(key))
        entries = box.inbox()
        names = {c.did: c.display_name for c in store.list_contacts()}
        _print(entries, names, as_json=as_json, as_jsonl=as_jsonl)
        box.forget_shown([entry.seq for entry in entries])
    if not answered:
        raise UserError("no relay answered: nothing new was fetched (see `didlink relays`)")


async def _receive(route: MailboxRoute, seconds: float) -> bool:
    async with route:
        # What a crash or an unreachable relay left unpublished (texts, receipts) goes first;
        # bounded (a wrap is committed before it is published, so stopping loses nothing).
        with contextlib.suppress(TimeoutError):
            import asyncio  # late (see `send`)

            async with asyncio.timeout(seconds):
                await route.flush_all()
        done = await route.collect(timeout=seconds)
    return bool(done.answered_by) or not done.listened


def _entry_json(entry: InboxEntry, names: dict[str, str]) -> dict[str, Any]:
    value: dict[str, Any] = {
        "type": "message" if entry.kind == "text" else "delivered",
        "mid": entry.message_id.hex(),
        "arrived_at": _iso(entry.arrived_at),
        "text": entry.text,
    }
    if entry.kind == "text":
        value["from"] = entry.peer_did
        value["name"] = names.get(entry.peer_did)
        value["sent_at"] = None if entry.sent_at is None else _iso(entry.sent_at)
    else:
        value["to"] = entry.peer_did
        value["name"] = names.get(entry.peer_did)
    return value


def _print(
    entries: list[InboxEntry], names: dict[str, str], *, as_json: bool, as_jsonl: bool
) -> None:
    from didlink.display import block

    if as_json:
        print_json([_entry_json(entry, names) for entry in entries])
        return
    if as_jsonl:
        for entry in entries:
            print_json(_entry_json(entry, names))
        return
    if not entries:
        say("Nothing new.")
        return
    for entry in entries:
        name = names.get(entry.peer_did, entry.peer_did)
        if entry.kind == "text":
            sent = "?" if entry.sent_at is None else _local(entry.sent_at)
            say(f"From {name} ({entry.peer_did}), sent {sent}, arrived {_local(entry.arrived_at)}:")
            for line in block(entry.text, first="  "):
                say(line)
        else:
            say(f"Delivered to {name} ({_local(entry.arrived_at)}):")
            for line in block(entry.text, first="  "):
                say(line)


commands: list[click.Command] = [send_command, receive_command]
