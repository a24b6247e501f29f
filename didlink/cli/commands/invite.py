"""`didlink invite`, `inspect`, `accept`: signed invitation tokens (specs/invitation.md).

Thin glue: the token format and every check live in identity.invitation / identity.token; this
module reads the clock, the profile and the store, and prints.
"""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from didlink.cli.history_flag import history_option
from didlink.errors import UserError
from didlink.file_policy import files_option
from didlink.profile import own_name
from didlink.profile.folder import Profile
from didlink.words.display import shown
from didlink.words.output import print_json, say
from didlink.words.qr import print_token, qr_option
from didlink.words.when import local_time
from identity.errors import AlreadyUsed, IdentityError, InvitationError
from identity.validity import check_not_future, check_window, iso_time

if TYPE_CHECKING:
    from identity.invitation import Invitation, Response

DEFAULT_EXPIRY = "30d"
DEFAULT_LIVE_EXPIRY = "15m"
MAX_LIFETIME = 3650 * 86400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d{1,9})([smhdw])")
NO_LIVE_ACCEPT = (
    "this is a live invitation, which needs the transport (not yet available): ask for a card"
)


def parse_duration(text: str) -> int:
    """Seconds in a duration such as 90s, 15m, 2h, 30d or 1w; UserError if it is not one."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise UserError(f"{text!r} is not a duration: write e.g. 90s, 15m, 2h, 30d or 1w")
    seconds = int(match[1]) * _UNITS[match[2]]
    if not 0 < seconds <= MAX_LIFETIME:
        raise UserError("the expiry must be more than zero and at most 3650 days")
    return seconds


def _now() -> int:
    return int(time.time())


@click.command()
@click.option("--card", is_flag=True, help="A contact card: no live connection, just your DID.")
@click.option(
    "--label",
    help="A name to suggest to whoever accepts it (at most 64 characters; default: your name).",
)
@click.option(
    "--expires", help=f"Lifetime: 15m, 2h, 30d, 1w... [default: {DEFAULT_EXPIRY}, live: 15m]"
)
@click.option("--multi-use", is_flag=True, help="Let any number of people accept it.")
@click.option("--json", "as_json", is_flag=True, help='Print {"token": ...} only.')
@click.option("--jsonl", is_flag=True, help="Live: JSON events out, JSON commands in.")
@history_option
@files_option
@qr_option
def invite(
    card: bool, label: str | None, expires: str | None, multi_use: bool, as_json: bool, jsonl: bool
) -> None:
    """Invite someone to a live chat, or make a contact --card.

    Live (the default): give the token it prints to your contact; they run didlink accept and
    paste it, and give you back a response token to paste here. You then compare a short code
    (the SAS: emoji and numbers) by voice or in person, and chat. The invitation works once,
    for 15 minutes.

    With --card: a signed card with your DID, for someone to save you as a contact (no
    connection is made).
    """
    label = own_name.default_label(Profile.from_env().path, label)
    if not card:
        from didlink.cli import (
            session as cli_session,  # late: the transport loads only when we connect
        )

        lifetime = parse_duration(DEFAULT_LIVE_EXPIRY if expires is None else expires)
        cli_session.exit_with(
            cli_session.invite_live(
                label=label, lifetime=lifetime, multi_use=multi_use, jsonl=jsonl
            )
        )
        return
    from identity.invitation import Invitation, label_problem  # late (commands/__init__.py)
    from identity.token import encode_token

    lifetime = parse_duration(DEFAULT_EXPIRY if expires is None else expires)
    problem = None if label is None else label_problem(label)
    if problem:  # before the passphrase is asked for (or the keystore re-sealed)
        raise UserError(f"cannot make the card: label: {problem}")
    from didlink.mailbox.reach import own_relays, reach_for
    from didlink.profile.settings import Settings
    from messaging.alias import CARD_REACH_CONTEXT

    profile = Profile.from_env()
    key = profile.unlock()
    relays: tuple[str, ...] = ()  # carried by the card: where to reach us (none: no store)
    if profile.store_path.exists():
        with profile.open_store() as store:
            relays = own_relays(Settings(store))
    try:
        invitation = Invitation.create(
            key,
            now=_now(),
            lifetime=lifetime,
            label=label,
            multi_use=multi_use,
            reach=reach_for(key, relays, context=CARD_REACH_CONTEXT),
        )
    except ValueError as exc:
        raise UserError(f"cannot make the card: {exc}") from exc
    token = encode_token(invitation)
    if as_json:
        print_json({"token": token})
        return
    use = "by any number of people" if multi_use else "once"
    intro = (
        f"A contact card for {invitation.inviter}.",
        f"It can be accepted {use}, until {local_time(invitation.expires)}.",
        "Give it to whoever should have it: they paste it into didlink accept.",
    )
    print_token(intro, token, below=1)  # the token last: right above the shell's prompt


_VERDICT_TEXT = {
    "valid": "valid now",
    "expired": "but EXPIRED",
    "notYetValid": "but NOT YET VALID (check the clocks)",
}


def _verdict(token: Invitation | Response, now: int) -> str:
    """'valid', or the code of the time check that fails (inspect shows, it does not refuse)."""
    from identity.invitation import Invitation

    try:
        if isinstance(token, Invitation):
            check_window(created=token.created, expires=token.expires, now=now)
        else:
            check_not_future(created=token.created, now=now)
    except InvitationError as exc:
        return exc.code
    return "valid"


def _describe(token: Invitation | Response, now: int) -> dict[str, Any]:
    from identity.invitation import Response

    if isinstance(token, Response):
        return {
            "type": "response",
            "responder": token.responder,
            "invitation_id": token.invitation_id.hex(),
            "label": token.label,
            "created": iso_time(token.created),
            "connect_bytes": len(token.connect),
            "relays": list(token.relays or ()),
            "signature": "valid",
            "verdict": _verdict(token, now),
        }
    return {
        "type": "invitation",
        "kind": token.kind.label,
        "inviter": token.inviter,
        "label": token.label,
        "created": iso_time(token.created),
        "expires": iso_time(token.expires),
        "use": token.use.label,
        "id": token.id.hex(),
        "connect_bytes": len(token.connect),
        "relays": [] if token.reach is None else list(token.reach.relays),
        "signature": "valid",
        "verdict": _verdict(token, now),
    }


@click.command()
@click.argument("token")
@click.option("--json", "as_json", is_flag=True, help="Print the contents as one JSON object.")
def inspect(token: str, as_json: bool) -> None:
    """Check a didlink token's signature and show what it says (no identity needed).

    A malformed or forged token is an error (exit 2); an authentic token that is expired or not
    yet valid is shown with that verdict.
    """
    from identity.invitation import Response
    from identity.token import decode_token

    decoded = decode_token(token)
    description = _describe(decoded, _now())
    if as_json:
        print_json(description)
        return
    title = "response" if isinstance(decoded, Response) else decoded.kind.label
    say(f"didlink {title}: authentic, {_VERDICT_TEXT[description['verdict']]}")
    for name, value in _human_fields(decoded):
        say(f"  {name + ':':<15}{value}")
    if isinstance(decoded, Response):
        say("Next: only the inviter who made the invitation can use it, at their prompt.")
    elif description["verdict"] == "valid":
        say("Next: to accept it, didlink accept and paste it.")


_CONNECTS = {
    "card": "no: a contact card (accepting it saves a contact)",
    "invite": "yes: a live invitation (accepting it connects to the inviter)",
    "reconnect": "yes: a reconnect token (for one of the inviter's contacts)",
}


def _human_fields(token: Invitation | Response) -> list[tuple[str, str]]:
    """What `inspect` shows a person: times in local time, no field that says nothing."""
    from identity.invitation import Response

    if isinstance(token, Response):
        return [
            ("from", shown(token.responder)),
            ("answers", f"invitation {token.invitation_id.hex()}"),
            ("created", local_time(token.created)),
            *[("relay", shown(url)) for url in token.relays or ()],
        ]
    fields = [("from", shown(token.inviter))]
    if token.label is not None:
        fields.append(("suggests name", shown(token.label)))
    fields += [
        ("created", local_time(token.created)),
        ("expires", local_time(token.expires)),
        ("use", "by any number of people" if token.multi_use else "once"),
        ("connects", _CONNECTS.get(token.kind.label, shown(token.kind.label))),
        ("id", token.id.hex()),
    ]
    if token.reach is not None:
        fields += [("relay", shown(url)) for url in token.reach.relays]
    return fields


PASTE_PROMPT = "Paste the invitation token, then press Enter: "
MORE_PROMPT = "(more of it? paste the rest, or press Enter on an empty line) "


def read_token(*, interactive: bool) -> str:
    """The token of `didlink accept` with no TOKEN: asked for on a terminal, else all of stdin.

    Spaces and line breaks are dropped (a token wrapped by a chat app arrives in pieces); on a
    terminal, lines are read until they make a whole token, an empty line, or the end of input.
    """
    from identity.token import MAX_TOKEN_CHARS  # late (didlink/cli/commands/__init__.py)

    if not interactive:
        return "".join(sys.stdin.read(MAX_TOKEN_CHARS * 2).split())
    click.echo(PASTE_PROMPT, nl=False, err=True)
    pieces: list[str] = []
    while True:
        line = sys.stdin.readline()
        piece = "".join(line.split())
        if not piece:
            if pieces or not line:  # an empty line after a piece, or the end of input
                break
            click.echo(PASTE_PROMPT, nl=False, err=True)
            continue
        pieces.append(piece)
        text = "".join(pieces)
        if _whole(text):
            break
        click.echo(MORE_PROMPT, nl=False, err=True)
    return "".join(pieces)


def _whole(text: str) -> bool:
    """Reading may stop: `text` is a token, or too long to be one, or not cut short."""
    from identity.token import MAX_TOKEN_CHARS, decode_token, looks_incomplete

    if len(text) > MAX_TOKEN_CHARS or not looks_incomplete(text, expected="invitation"):
        return True
    try:
        decode_token(text)
    except IdentityError:
        return False
    return True


@click.command()
@click.argument("token", required=False)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"did", "name", "suggested_name", "new"} as JSON.',
)
@click.option(
    "--label",
    help="Live: a name to suggest to the inviter in your response (default: your name).",
)
@click.option("--jsonl", is_flag=True, help="Live: JSON events out, JSON commands in.")
@click.option(
    "--no-relay",
    is_flag=True,
    help="Live: do not send the response by relay (give the token back by hand).",
)
@history_option
@files_option
@qr_option
def accept(
    token: str | None, as_json: bool, label: str | None, jsonl: bool, no_relay: bool
) -> None:
    """Accept an invitation: a card saves a contact; a live or reconnect one connects.

    Without TOKEN it is asked for (pasted; spaces and line breaks do not matter), or read
    from stdin when that is not a terminal.
    """
    from identity.invitation import InvitationKind, Response, verify_invitation
    from identity.token import decode_token

    if token is None:
        if jsonl:
            raise UserError("with --jsonl, give the token as an argument: stdin is for commands")
        token = read_token(interactive=sys.stdin.isatty())
        if not token:
            raise UserError("no token was given: paste the invitation token, or give it as TOKEN")
    decoded = decode_token(token, expected="invitation")
    if isinstance(decoded, Response):
        raise UserError("this is a response token: only the inviter who asked for it can use it")
    if decoded.kind in (InvitationKind.INVITE, InvitationKind.RECONNECT):
        from didlink.cli import (
            session as cli_session,  # late: the transport loads only when we connect
        )

        label = own_name.default_label(Profile.from_env().path, label)
        cli_session.exit_with(
            cli_session.accept_live(decoded, jsonl=jsonl, label=label, no_relay=no_relay)
        )
        return
    if decoded.kind is not InvitationKind.CARD:
        raise UserError(NO_LIVE_ACCEPT)
    if label is not None:
        raise UserError(
            "a card is accepted without answering it, so --label goes nowhere: to give them"
            " your name, send them your own card (didlink invite --card)"
        )
    profile = Profile.from_env()
    own_did = profile.did()
    now = _now()
    stamp = datetime.fromtimestamp(now, UTC)
    with profile.open_store() as store:
        verify_invitation(decoded, now=now, already_used=store.is_invitation_used(decoded.id))
        if decoded.inviter == own_did:
            raise UserError("this is your own card: give it to someone else to accept")
        if not decoded.multi_use and not store.mark_invitation_used(decoded.id, now=stamp):
            raise AlreadyUsed("This single-use invitation was already accepted.")
        new = store.get_contact(decoded.inviter) is None
        contact = store.add_contact(decoded.inviter, suggested_name=decoded.label, now=stamp)
        if decoded.reach is not None:  # where they read their mailbox (`send` goes there)
            store.set_contact_relays(decoded.inviter, decoded.reach.relays, now=stamp)
        from didlink.mailbox.requests import keep_card_reach  # (a request can go at once)

        keep_card_reach(store, decoded, now=stamp)
    if as_json:
        print_json(
            {
                "did": contact.did,
                "name": contact.name,
                "suggested_name": contact.suggested_name,
                "new": new,
            }
        )
        return
    who = shown(contact.display_name)
    if new:
        say(f"Added {contact.did}: an unverified contact.")
        if contact.suggested_name:
            who = f'"{shown(contact.suggested_name)}"'
            say(f"They suggest the name {who}. To use it: didlink contacts rename {contact.did}")
    else:  # (from an earlier card or session: whether they have us is not known here)
        say(f"{who} ({contact.did}) was already a contact.")
        say("Compare safety numbers or a SAS with them to verify it.")
        say("Next: to chat with them, run didlink invite and give them its token.")
        return
    say(
        f"{who} does not have you as a contact yet: a card works one way. To be in their"
        " contacts too, send them your card (didlink invite --card) or connect live"
        " (didlink invite)."
    )
    say(
        f"To verify each other, compare safety numbers: didlink safety-number {contact.did}"
        f" here, and didlink safety-number {own_did} on their side (it works before they"
        " have you)."
    )
    say("Next: to chat with them, run didlink invite and give them its token.")


commands: list[click.Command] = [invite, inspect, accept]
