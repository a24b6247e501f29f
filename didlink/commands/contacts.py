"""`didlink contacts`: list, rename and remove contacts (specs/store.md).

The `contacts` group is exported so that other command modules can add subcommands to it
(e.g. `contacts verify`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from didlink.commands.safety import contacts_verify
from didlink.output import print_json
from didlink.profile import Profile
from didlink.store import Store
from identity.contact import Contact


def _open_store() -> Store:
    """The store of the current profile; NoIdentity first if there is no identity yet."""
    profile = Profile.from_env()
    profile.did()
    return profile.open_store()


def contact_json(contact: Contact) -> dict[str, Any]:
    """A contact as the JSON object printed by `contacts --json`."""
    return {
        "did": contact.did,
        "name": contact.name,
        "verification": contact.verification.value,
        "first_seen": contact.first_seen.isoformat(),
        "last_seen": contact.last_seen.isoformat(),
    }


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def contacts(ctx: click.Context, as_json: bool) -> None:
    """List your contacts (DID, name, verification); subcommands change them."""
    if ctx.invoked_subcommand is not None:
        return
    with _open_store() as store:
        found = store.list_contacts()
    if as_json:
        print_json([contact_json(contact) for contact in found])
        return
    if not found:
        click.echo("No contacts yet.")
        return
    width = max(len(contact.name or "-") for contact in found)
    for contact in found:
        click.echo(f"{contact.did}  {(contact.name or '-'):<{width}}  {contact.verification}")


@contacts.command()
@click.argument("contact")
@click.argument("name")
def rename(contact: str, name: str) -> None:
    """Give CONTACT (a DID, a unique start of one, or a name) the petname NAME."""
    with _open_store() as store:
        found = store.find_contact(contact)
        renamed = store.rename_contact(found.did, name)
    click.echo(f"{renamed.did} is now {renamed.name!r}.")


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
    click.echo(f"Removed {found.display_name}.")
    if not removal.scrubbed:
        click.echo(
            "note: another didlink process has the local store open: older copies of the"
            " contact's rows stay in its write-ahead log until that process ends",
            err=True,
        )


def _part_file(profile: Profile, file_id: bytes) -> Path:
    """Where an incoming transfer keeps its partial download (didlink/files.py IncomingFile)."""
    return profile.path / "downloads" / f".didlink-{file_id.hex()}.part"


commands: list[click.Command] = [contacts]
contacts.add_command(contacts_verify, name="verify")
