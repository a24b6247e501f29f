"""`didlink init`, `whoami`, `passwd`: the identity in this profile (specs/keystore.md)."""

from __future__ import annotations

import click

from didlink.errors import UserError
from didlink.output import print_json, print_qr, say
from didlink.passphrase import get_new_passphrase, get_passphrase
from didlink.profile import Profile
from identity.errors import IdentityExists


@click.command()
@click.option("--force", is_flag=True, help="Replace the existing identity (it is then lost).")
@click.option(
    "--device-bound",
    is_flag=True,
    help="Also seal the keystore under a key on a PKCS#11 token (DIDLINK_PKCS11_PIN).",
)
@click.option("--token", "token_label", metavar="LABEL", help="The PKCS#11 token to bind to.")
def init(force: bool, device_bound: bool, token_label: str | None) -> None:
    """Create a new identity (a did:key) protected by a passphrase, and print its DID."""
    from identity.keys import IdentityKey  # late (didlink/commands/__init__.py)
    from identity.keystore import create_keystore

    profile = Profile.from_env()
    if not force and (profile.keystore_path.exists() or profile.keystore_path.is_symlink()):
        raise IdentityExists(
            f"an identity already exists in {profile.path}: "
            "use --force to replace it (the old identity is then lost)"
        )
    if token_label is not None and not device_bound:
        raise UserError("--token goes with --device-bound")
    if device_bound:
        from didlink.commands.keystore import init_device_bound

        key = init_device_bound(profile, token_label=token_label, force=force)
    else:
        passphrase = get_passphrase(confirm=True, prompt="New passphrase")
        profile.ensure()
        key = IdentityKey.generate()
        try:
            create_keystore(profile.keystore_path, key, passphrase, overwrite=force)
        except OSError as exc:
            raise UserError(f"cannot write the keystore: {exc.strerror or exc}") from exc
    profile.create_store()  # with the identity: later, a missing store is a lost one (noted)
    say(key.did)


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
    old, secret = profile.credentials(prompt="Current passphrase")  # + a bound one's token
    unlock(profile.keystore_path, old, device_secret=secret)  # WrongPassphrase before the new
    new = get_new_passphrase()
    try:
        change_passphrase(profile.keystore_path, old, new, device_secret=secret)
    except OSError as exc:
        raise UserError(f"cannot write the keystore: {exc.strerror or exc}") from exc
    say("Passphrase changed.")


commands: list[click.Command] = [init, whoami, passwd]
