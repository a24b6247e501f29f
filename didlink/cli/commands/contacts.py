"""`didlink contacts`: list, rename and remove contacts (specs/store.md).

The `contacts` group is exported so that other command modules can add subcommands to it
(e.g. `contacts verify`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from didlink.cli.commands.safety import contacts_verify
from didlink.profile.folder import Profile
from didlink.words.display import shown, width
from didlink.words.output import print_json, say
from didlink.words.when import shell_word
from identity.contact import Contact, Verification

if TYPE_CHECKING:
    from didlink.profile.store import Store


def _open_store() -> Store:
    """The store of the current profile; NoIdentity first if there is no identity yet."""
    profile = Profile.from_env()
    profile.did()
    return profile.open_store()


def contact_json(contact: Contact, relays: list[str] | None = None) -> dict[str, Any]:
    """A contact as the JSON object printed by `contacts --json` (`relays`: where the contact
    reads its mailbox, [] if unknown)."""
    return {
        "did": contact.did,
        "name": contact.name,
        "verification": contact.verification.value,
        "suggested_name": contact.suggested_name,
        "first_seen": contact.first_seen.isoformat(),
        "last_seen": contact.last_seen.isoformat(),
        "relays": relays or [],
    }


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def contacts(ctx: click.Context, as_json: bool) -> None:
    """List your contacts (DID, name, verification); subcommands change them."""
    if ctx.invoked_subcommand is not None:
        return
    from didlink.mailbox.requests import pending_requests

    with _open_store() as store:
        found = store.list_contacts()
        relays = {contact.did: store.contact_relays(contact.did) for contact in found}
        requests = pending_requests(store)  # message requests not answered yet
    if as_json:
        print_json(
            [{**contact_json(c, relays[c.did]), "request": c.did in requests} for c in found]
        )
        return
    if not found:
        say("No contacts yet. Next: didlink invite (a live chat with someone), or")
        say("didlink accept (a token someone gave you).")
        return
    names = [shown(contact.name or "-") for contact in found]
    column = max(width(name) for name in names)
    for contact, name in zip(found, names, strict=True):
        state = contact.verification.value
        if contact.verification is Verification.SUSPECT:
            state += " (a comparison failed: verify again before trusting it)"
        if contact.suggested_name:
            state += f'  suggests "{shown(contact.suggested_name)}"'
        if contact.did in requests:
            state += "  (message request: not answered yet)"
        say(f"{contact.did}  {name}{' ' * (column - width(name))}  {state}")
    if any(contact.suggested_name for contact in found):
        say("A suggested name is only used once you adopt it: didlink contacts rename CONTACT")


@contacts.command()
@click.argument("contact")
@click.argument("name", required=False)
def rename(contact: str, name: str | None) -> None:
    """Give CONTACT (a DID, a unique start of one, or a name) the petname NAME.

    Without NAME, CONTACT's suggested name (the label of its card or invitation) becomes its
    name. A name that another contact has, or that could be mistaken for another contact's
    name (look-alike letters, mixed scripts, invisible characters), is refused.
    """
    with _open_store() as store:
        found = store.find_contact(contact)
        if name is None:
            renamed = store.adopt_suggestion(found.did)
        else:
            renamed = store.rename_contact(found.did, name)
    say(f'{renamed.did} is now "{shown(renamed.name or "")}".')
    say(f"Next: didlink chat {shown(shell_word(renamed.name or renamed.did))} to chat with them.")


@contacts.command()
@click.argument("contact")
def remove(contact: str) -> None:
    """Forget CONTACT (a DID, a unique start of one, or a name) and everything kept about it:
    queued messages, received ids, file transfers (and their partial downloads), history."""
    profile = Profile.from_env()
    profile.did()
    with profile.open_store() as store:
        found = store.find_contact(contact)
        removal = store.remove_contact(found.did)
    for file_id in removal.incoming_files:
        with contextlib.suppress(FileNotFoundError):
            _part_file(profile, file_id).unlink()
    say(f"Removed {shown(found.display_name)}.")
    if not removal.scrubbed:
        say(
            "note: another didlink process has the local store open: older copies of the"
            " contact's rows stay in its write-ahead log until that process ends",
            err=True,
        )


def _part_file(profile: Profile, file_id: bytes) -> Path:
    """Where an incoming transfer keeps its partial download (didlink/session/files.py
    IncomingFile)."""
    return profile.path / "downloads" / f".didlink-{file_id.hex()}.part"


commands: list[click.Command] = [contacts]
contacts.add_command(contacts_verify, name="verify")
