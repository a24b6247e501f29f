"""`didlink init`, `whoami`, `passwd`, `name`: the identity in this profile (specs/keystore.md)
and the name it suggests to others (didlink/own_name.py)."""

from __future__ import annotations

import click

from didlink import own_name
from didlink.display import shown
from didlink.errors import UserError
from didlink.output import print_json, print_qr, say
from didlink.passphrase import get_new_passphrase, get_passphrase
from didlink.profile import Profile
from identity.errors import IdentityExists


@click.command()
@click.option("--force", is_flag=True, help="Replace the existing identity (it is then lost).")
@click.option(
    "--name",
    metavar="NAME",
    help="Your name, suggested to the people you invite or answer (change it: didlink name).",
)
def init(force: bool, name: str | None) -> None:
    """Create a new identity (a did:key) protected by a passphrase, and print its DID."""
    from identity.keys import IdentityKey  # late (didlink/commands/__init__.py)
    from identity.keystore import create_keystore

    if name is not None:
        name = own_name.checked(name)  # before the passphrase is asked for
    profile = Profile.from_env()
    if not force and (profile.keystore_path.exists() or profile.keystore_path.is_symlink()):
        raise IdentityExists(
            f"an identity already exists in {profile.path}: "
            "use --force to replace it (the old identity is then lost)"
        )
    passphrase = get_passphrase(confirm=True, prompt="New passphrase")
    profile.ensure()
    key = IdentityKey.generate()
    try:
        create_keystore(profile.keystore_path, key, passphrase, overwrite=force)
    except OSError as exc:
        raise UserError(f"cannot write the keystore: {exc.strerror or exc}") from exc
    profile.create_store()  # with the identity: later, a missing store is a lost one (noted)
    if name is not None:
        own_name.write(profile.path, name)
    say(key.did)


@click.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"did": ..., "name": ...} as JSON.')
def whoami(as_json: bool) -> None:
    """Show this profile's DID (and a QR code of it). No passphrase needed."""
    profile = Profile.from_env()
    did = profile.did()
    name = own_name.read(profile.path)
    if as_json:
        print_json({"did": did, "name": name})
        return
    say(did)
    print_qr(did)
    if name is not None:
        say(f'Your name (suggested to the people you invite or answer): "{shown(name)}"')


@click.command(name="name")
@click.argument("name", required=False)
@click.option("--clear", is_flag=True, help="Suggest no name any more.")
def name_command(name: str | None, clear: bool) -> None:
    """Show or set NAME, the name you suggest to the people you invite or answer.

    It goes into your cards, invitations and responses as their label (`--label` overrides it
    for one token). The other side sees it only as a suggestion, which they may adopt.
    """
    if clear and name is not None:
        raise UserError("give a NAME or --clear, not both")
    profile = Profile.from_env()
    profile.did()  # no identity here: say so, and write nothing
    if name is None and not clear:
        current = own_name.read(profile.path)
        if current is None:
            say("You suggest no name. Set one: didlink name NAME")
        else:
            say(f'Your name: "{shown(current)}"')
        return
    profile.ensure()
    stored = own_name.write(profile.path, None if clear else name)
    if stored is None:
        say("You suggest no name any more.")
    else:
        say(f'Your name is now "{shown(stored)}": new cards, invitations and responses carry it.')


@click.command()
def passwd() -> None:
    """Change the passphrase that protects the identity (DIDLINK_NEW_PASSPHRASE for scripts)."""
    from identity.keystore import change_passphrase, unlock  # late (didlink/commands/__init__.py)

    profile = Profile.from_env()
    profile.did()  # NoIdentity / DamagedKeystore before asking anything
    old = get_passphrase(prompt="Current passphrase")
    unlock(profile.keystore_path, old)  # WrongPassphrase before asking for the new one
    new = get_new_passphrase()
    try:
        change_passphrase(profile.keystore_path, old, new)
    except OSError as exc:
        raise UserError(f"cannot write the keystore: {exc.strerror or exc}") from exc
    say("Passphrase changed.")


commands: list[click.Command] = [init, whoami, passwd, name_command]
