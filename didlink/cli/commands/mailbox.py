"""`didlink send CONTACT TEXT [--wait] [--json]` and `didlink receive [--json|--jsonl]`: messages
to and from contacts who may be offline, through the profile's Nostr relays (issue 25, points 3
and 4; specs/mailbox.md §10-§12).

Both need the passphrase (the sessions and the outbox are sealed) and at least one relay. They
load the Nostr parts (nostr-sdk, websockets) and never aiortc: didlink/mailbox/route.py is
imported inside the command.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

import click

from didlink.errors import UserError
from didlink.profile import own_name
from didlink.profile.folder import Profile
from didlink.words.output import print_json, say

if TYPE_CHECKING:
    from didlink.mailbox.display import Arrival
    from didlink.mailbox.requests import MessageRequests
    from didlink.mailbox.route import MailboxRoute
    from didlink.profile.store import Store

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
    """The profile's mailbox route (UserError without a relay): it listens on our relays and
    sends to each contact's (didlink/mailbox/requests.py `mailbox_relays`)."""
    from didlink.mailbox import relays
    from didlink.mailbox.requests import mailbox_relays
    from didlink.mailbox.route import MailboxRoute
    from didlink.mailbox.store import MailboxStore
    from didlink.profile.outbox import Outbox
    from didlink.profile.sealing import Sealer
    from didlink.profile.settings import Settings

    sealer = Sealer(key)
    settings = Settings(store, sealer)
    return MailboxRoute(
        MailboxStore(store, sealer),
        Outbox(store, sealer),
        settings,
        relays.configured(settings),
        peer_relays=lambda did: mailbox_relays(store, did),  # where the contact listens
    )


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
        import asyncio  # late: every other command would pay its import

        from didlink.mailbox.requests import MessageRequests
        from didlink.mailbox.store import MailboxStore
        from didlink.profile.sealing import Sealer

        requests = MessageRequests(store, key)
        if MailboxStore(store, Sealer(key)).session(peer.did) is None:
            label = own_name.default_label(profile.path, None)
            mid, accepted = asyncio.run(_request(store, key, peer.did, text, label, seconds))
            request = True
        else:
            route = _route(store, key)
            mid, accepted, delivered = asyncio.run(_send(route, peer.did, text, wait, seconds))
            request = False
        requests.answered(peer.did)
        if request and wait:
            route = _route(store, key)
            delivered = asyncio.run(_wait(route, mid, seconds))
        elif request:
            delivered = False
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
    if request:
        say(f"Sent to {peer.display_name} as a message request, by {len(accepted)} relay(s).")
    else:
        say(f"Sent to {peer.display_name} by {len(accepted)} relay(s).")
    if wait:
        say("Delivered." if delivered else "Not delivered yet: it stays in the outbox.")
    if wait and not delivered:
        raise SystemExit(1)


def _queue_file(contact: str, file_path: str, *, as_json: bool) -> None:
    """`send CONTACT --file PATH`: checked now, queued (a sealed reference, not a copy) for the
    next live session with the contact (didlink/session/queued_files.py; no relay is contacted)."""
    from pathlib import Path

    from didlink.profile.sealing import Sealer
    from didlink.session.queued_files import check_file, queue_file
    from didlink.session.resume import TransferStates

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


async def _request(
    store: Store, key: Any, peer: str, text: str, label: str | None, seconds: float
) -> tuple[bytes, tuple[str, ...]]:
    """The first text to a contact without a session: a message request (specs/first-message.md
    §5), committed, then published to the contact's relays."""
    from didlink.mailbox.requests import MessageRequests, send_request
    from didlink.mailbox.route import MailboxRoute as _loaded  # noqa: F401 - the send path
    from didlink.mailbox.store import MailboxStore
    from didlink.profile.outbox import Outbox
    from didlink.profile.sealing import Sealer
    from didlink.profile.settings import Settings
    from transport.errors import PublishFailed

    sealer = Sealer(key)
    accepted: tuple[str, ...] = ()
    try:
        import asyncio  # late (see `send`)

        async with asyncio.timeout(seconds):
            mid, accepted = await send_request(
                MessageRequests(store, key),
                MailboxStore(store, sealer),
                Outbox(store, sealer),
                Settings(store, sealer),
                peer,
                text,
                label=label,
            )
    except (PublishFailed, TimeoutError):
        accepted = ()
    if not accepted:
        raise UserError(
            "no relay accepted the message request: it waits in the outbox and leaves with the "
            "next send or receive"
        )
    return mid, accepted


async def _wait(route: MailboxRoute, mid: bytes, seconds: float) -> bool:
    async with route:
        done = await route.collect(timeout=seconds, wait_for=mid)
    return mid in done.delivered


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

        from didlink.mailbox.display import inbox_events
        from didlink.mailbox.requests import MessageRequests
        from didlink.mailbox.store import MailboxStore
        from didlink.profile.sealing import Sealer

        requests = MessageRequests(store, key)
        answered = asyncio.run(_receive(route, requests, seconds))
        box = MailboxStore(store, Sealer(key))
        contacts = store.list_contacts()
        waiting = requests.pending()
        arrived = inbox_events(box, waiting)
        names = {c.did: c.display_name for c in contacts}
        suggested = {c.did: c.suggested_name for c in contacts if c.did in waiting}
        items = [item for _, item in arrived]
        _print(items, names, suggested, as_json=as_json, as_jsonl=as_jsonl)
        box.forget_shown([seq for seq, _ in arrived])
    if not answered:
        raise UserError("no relay answered: nothing new was fetched (see `didlink relays`)")


async def _receive(route: MailboxRoute, requests: MessageRequests, seconds: float) -> bool:
    from didlink.mailbox.requests import receive_requests

    async with route:
        # What a crash or an unreachable relay left unpublished (texts, receipts) goes first;
        # bounded (a wrap is committed before it is published, so stopping loses nothing).
        with contextlib.suppress(TimeoutError):
            import asyncio  # late (see `send`)

            async with asyncio.timeout(seconds):
                await route.flush_all()
        # Requests first: the sessions they set up are listened on by the collect that follows.
        asked, started = await receive_requests(requests, route, timeout=seconds)
        done = await route.collect(timeout=seconds, started=started)
    return bool(asked.answered_by) and (bool(done.answered_by) or not done.listened)


def _print(
    items: list[Arrival],
    names: dict[str, str],
    suggested: dict[str, str | None],
    *,
    as_json: bool,
    as_jsonl: bool,
) -> None:
    """`suggested`: the names the senders of message requests not answered yet suggest."""
    from didlink.mailbox.display import item_json, show_item

    if as_json:
        print_json([item_json(item, names, suggested) for item in items])
        return
    if not items and not as_jsonl:
        say("Nothing new.")
        return
    for item in items:
        show_item(item, names, suggested, as_jsonl=as_jsonl)


commands: list[click.Command] = [send_command, receive_command]
