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
from typing import TYPE_CHECKING, Any

import click

from didlink.errors import UserError
from didlink.output import print_json, say
from didlink.profile import Profile

if TYPE_CHECKING:
    from didlink.mailbox_display import Arrival
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


@click.command(name="send")
@click.argument("contact", metavar="CONTACT")
@click.argument("text")
@click.option("--wait", is_flag=True, help="Wait for the delivery receipt.")
@click.option("--json", "as_json", is_flag=True, help="Print the message id (and relays) as JSON.")
@click.option(
    "--timeout",
    type=float,
    default=None,
    help=f"Seconds to wait for relays (and with --wait the receipt); or {TIMEOUT_ENV}.",
)
def send_command(contact: str, text: str, wait: bool, as_json: bool, timeout: float | None) -> None:
    """Send a text to a contact, online or not, through your relays (sealed, queued in order)."""
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
        from didlink.mailbox_display import inbox_events
        from didlink.sealing import Sealer

        box = MailboxStore(store, Sealer(key))
        arrived = inbox_events(box)
        names = {c.did: c.display_name for c in store.list_contacts()}
        _print([item for _, item in arrived], names, as_json=as_json, as_jsonl=as_jsonl)
        box.forget_shown([seq for seq, _ in arrived])
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


def _print(items: list[Arrival], names: dict[str, str], *, as_json: bool, as_jsonl: bool) -> None:
    from didlink.mailbox_display import item_json, show_item

    if as_json:
        print_json([item_json(item, names) for item in items])
        return
    if not items and not as_jsonl:
        say("Nothing new.")
        return
    for item in items:
        show_item(item, names, as_jsonl=as_jsonl)


commands: list[click.Command] = [send_command, receive_command]
