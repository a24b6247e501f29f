"""`didlink chat CONTACT`: reconnect to a known contact (specs/cli-jsonl.md section 4a).

Thin glue: the session is didlink/cli/session.py's (`chat_live`, on `Agent.reconnect`), the
token in identity/invitation.py (kind RECONNECT).
The contact accepts the printed token with `didlink accept`.
"""

from __future__ import annotations

import click

from didlink.cli.commands.invite import DEFAULT_LIVE_EXPIRY, parse_duration
from didlink.cli.history_flag import history_option
from didlink.file_policy import files_option
from didlink.words.qr import qr_option


@click.command()
@click.argument("contact")
@click.option(
    "--expires",
    default=DEFAULT_LIVE_EXPIRY,
    show_default=True,
    help="Lifetime of a token to paste (an offer through relays lives 2 minutes).",
)
@click.option("--jsonl", is_flag=True, help="JSON events out, JSON commands in.")
@click.option(
    "--no-relay",
    is_flag=True,
    help="Do not meet through the relays: print a reconnect token to paste instead.",
)
@history_option
@files_option
@qr_option
def chat(contact: str, expires: str, jsonl: bool, no_relay: bool) -> None:
    """Reconnect to CONTACT (a DID, the start of one, or a petname). With relays configured
    (`didlink relays`) and a session with them, the offer and answer go through the relays: no
    token; if they are not online, messages go by mailbox. Otherwise (or --no-relay) a
    reconnect token for them to `didlink accept`. A verified contact needs no new SAS."""
    from didlink.cli import session as cli_session  # late: the transport loads only when we connect

    lifetime = parse_duration(expires)
    cli_session.exit_with(
        cli_session.chat_live(contact, lifetime=lifetime, jsonl=jsonl, relay=not no_relay)
    )


commands: list[click.Command] = [chat]
