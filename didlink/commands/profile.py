"""`didlink init`, `whoami`, `passwd`: the identity in this profile (specs/keystore.md)."""

from __future__ import annotations

import click

from didlink.display import shown
from didlink.errors import UserError
from didlink.output import print_json, print_qr, say
from didlink.passphrase import get_new_passphrase, get_passphrase
from didlink.profile import Profile
from identity.errors import IdentityExists


@click.command()
@click.option("--force", is_flag=True, help="Replace the existing identity (it is then lost).")
def init(force: bool) -> None:
    """Create a new identity (a did:key) protected by a passphrase, and print its DID."""
    from identity.keys import IdentityKey  # late (didlink/commands/__init__.py)
    from identity.keystore import create_keystore

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
    say(key.did)
    after_init(profile)


def after_init(profile: Profile) -> None:
    """What a person needs to know once the identity exists, on stderr (stdout is the DID
    alone, for scripts): where the key lives, that a lost passphrase is lost, what next."""
    for line in (
        "This is your new identity: the DID above is how others know you.",
        "Its key is kept here, sealed under your passphrase:",
        f"  {shown(profile.keystore_path)}",
        "A lost passphrase cannot be recovered. Keep a way back now:",
        "  didlink backup phrase         24 words to write down on paper",
        "  didlink backup export FILE    a backup file, sealed under a passphrase",
        "Next: didlink invite to chat with someone, or didlink invite --card to make a",
        "contact card to share.",
    ):
        say(line, err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"did": ...} as JSON.')
def whoami(as_json: bool) -> None:
    """Show this profile's DID (and a QR code of it). No passphrase needed."""
    did = Profile.from_env().did()
    if as_json:
        print_json({"did": did})
        return
    say(did)
    print_qr(did)


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


commands: list[click.Command] = [init, whoami, passwd]
