"""`didlink history`: show or clear the stored conversation with one contact (specs/history.md).

Thin glue over didlink/profile/history.py: find the contact, unlock the identity (reading needs the
store key), print. Clearing needs no passphrase: it only deletes rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from didlink.errors import UserError
from didlink.profile.folder import Profile
from didlink.profile.names import BARE_DID_START, looks_like_did
from didlink.words.display import block, shown, terminal_columns
from didlink.words.output import print_json, say
from didlink.words.when import zone_note
from identity.did_key import ed25519_public_key

if TYPE_CHECKING:
    from didlink.profile.store import Store


def _peer(store: Store, target: str) -> tuple[str, str]:
    """(DID, display name) for a contact's DID or name; a full did:key of a former contact."""
    from didlink.profile import history

    try:
        contact = store.find_contact(target)
    except UserError:
        text = target.strip()
        if text.startswith(BARE_DID_START):  # a did:key written without `did:key:`
            text = "did:key:" + text
        if not looks_like_did(text) or history.count(store, text) == 0:
            raise
        ed25519_public_key(text)  # a well-formed DID whose contact was removed
        return text, text
    return contact.did, contact.display_name


def _local(at: datetime) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M")


@click.command(name="history")
@click.argument("target", metavar="DID-OR-NAME")
@click.option("--json", "as_json", is_flag=True, help="Print the messages as one JSON array.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the last N messages.")
@click.option("--clear", is_flag=True, help="Delete the stored conversation with this contact.")
def history_command(target: str, as_json: bool, limit: int | None, clear: bool) -> None:
    """Show (or --clear) the messages kept with --history for one contact."""
    from didlink.profile import (
        history,  # late (didlink/cli/commands/__init__.py): pydantic, the store
    )
    from didlink.profile.sealing import Sealer

    if clear and limit is not None:
        raise UserError("--clear deletes the whole conversation: it does not take --limit")
    profile = Profile.from_env()
    profile.did()  # no identity here: say so (and create nothing) before opening the store
    if clear:
        with profile.open_store() as store:
            did, name = _peer(store, target)
            deleted = history.clear(store, did)
        if as_json:
            print_json({"did": did, "deleted": deleted})
        else:
            say(f"Deleted {deleted} stored messages with {shown(name)}.")
        return
    with profile.open_store() as store:
        did, name = _peer(store, target)
    key = profile.unlock()
    with profile.open_store() as store:
        entries = history.read(store, Sealer(key), did, limit=limit)
    if as_json:
        print_json(
            [
                {
                    "seq": e.seq,
                    "direction": e.direction.value,
                    "at": e.at.isoformat(),
                    "id": e.message_id,
                    "text": e.text,
                }
                for e in entries
            ]
        )
        return
    if not entries:
        say(f"No stored messages with {shown(name)} (history is kept only with --history).")
    else:
        say(f"Messages with {shown(name)} (times in {zone_note()}):")
    for entry in entries:
        who = "you" if entry.direction is history.Direction.OUT else shown(name)
        for line in block(
            entry.text, first=f"[{_local(entry.at)}] {who}: ", columns=terminal_columns()
        ):
            say(line)


commands: list[click.Command] = [history_command]
