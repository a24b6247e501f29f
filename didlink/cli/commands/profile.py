"""`didlink init`, `whoami`, `passwd`, `name`: the identity in this profile (specs/keystore.md)
and the name it suggests to others (didlink/profile/own_name.py)."""

from __future__ import annotations

import sys

import click

from didlink.cli.passphrase import choose_passphrase, get_new_passphrase
from didlink.errors import UserError
from didlink.profile import own_name
from didlink.profile.folder import Profile
from didlink.words.display import shown
from didlink.words.output import print_json, print_qr, say, styled
from identity.errors import DamagedKeystore, IdentityExists, NoIdentity


def _iso(until: int) -> str:
    """Local time with its offset, to the second (e.g. 2026-12-08T09:41:00+01:00)."""
    from datetime import datetime

    return datetime.fromtimestamp(until).astimezone().isoformat(timespec="seconds")


CONFIRM_CHARS = 6
DAMAGED_CONFIRMATION = "destroy"


def _confirm_destruction(profile: Profile) -> None:
    """`init --force` over an identity: the user types the last 6 characters of its DID (or
    "destroy" for a keystore too damaged to show it), on the terminal or as a line of stdin;
    anything else changes nothing (UserError)."""
    try:
        did = profile.did()
    except NoIdentity:  # e.g. a dangling symlink: nothing to lose
        return
    except DamagedKeystore:
        did = None
    if did is None:
        expected = DAMAGED_CONFIRMATION
        question = f"The keystore in {profile.path} is damaged. Type {expected} to replace it"
    else:
        expected = did[-CONFIRM_CHARS:]
        say(
            styled("Warning: ", fg="yellow", bold=True),
            f"this destroys the identity {did} in {profile.path}: without a recovery phrase"
            " or backup it is lost for good, and your contacts cannot reach you under it.",
            err=True,
        )
        question = f"Type the last {CONFIRM_CHARS} characters of {did} to destroy it"
    if sys.stdin.isatty():
        answer = click.prompt(question, default="", show_default=False, err=True)
    else:
        say(f"{question}:", err=True)
        answer = sys.stdin.readline(64)
    if str(answer).strip() != expected:
        raise UserError("not confirmed: the identity was left as it is")


@click.command()
@click.option(
    "--force",
    is_flag=True,
    help="Replace the existing identity (it is then lost): asks for the last 6 characters of"
    " its DID, typed or as a line on stdin.",
)
@click.option(
    "--device-bound",
    is_flag=True,
    help="Also seal the keystore under a key on a PKCS#11 token (DIDLINK_PKCS11_PIN).",
)
@click.option("--token", "token_label", metavar="LABEL", help="The PKCS#11 token to bind to.")
@click.option(
    "--name",
    metavar="NAME",
    help="Your name, suggested to the people you invite or answer (change it: didlink name).",
)
def init(force: bool, device_bound: bool, token_label: str | None, name: str | None) -> None:
    """Create a new identity (a did:key) protected by a passphrase, and print its DID."""
    from identity.keys import IdentityKey  # late (didlink/cli/commands/__init__.py)
    from identity.keystore import create_keystore

    if name is not None:
        name = own_name.checked(name)  # before the passphrase is asked for
    profile = Profile.from_env()
    exists = profile.keystore_path.exists() or profile.keystore_path.is_symlink()
    if exists and not force:
        raise IdentityExists(
            f"an identity already exists in {profile.path}: "
            "use --force to replace it (the old identity is then lost)"
        )
    if token_label is not None and not device_bound:
        raise UserError("--token goes with --device-bound")
    if exists:
        _confirm_destruction(profile)
    if device_bound:
        from didlink.cli.commands.keystore import init_device_bound

        key = init_device_bound(profile, token_label=token_label, force=force)
    else:
        passphrase = choose_passphrase()
        profile.ensure()
        key = IdentityKey.generate()
        try:
            create_keystore(profile.keystore_path, key, passphrase, overwrite=force)
        except OSError as exc:
            raise UserError(f"cannot write the keystore: {exc.strerror or exc}") from exc
    if exists:
        from didlink.custody.key_agent_client import lock

        lock(profile.path)  # the old identity's key, if `didlink unlock` kept it
    profile.create_store()  # with the identity: later, a missing store is a lost one (noted)
    if name is not None:
        own_name.write(profile.path, name)
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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"did": ..., "name": ..., "unlocked_until": ...} as JSON.',
)
def whoami(as_json: bool) -> None:
    """Show this profile's DID (and a QR code of it). No passphrase needed."""
    from didlink.custody import key_agent_client as agent

    profile = Profile.from_env()
    did = profile.did()
    name = own_name.read(profile.path)
    held = agent.status(profile.path)
    until = held.until if held is not None and held.did == did else None
    if as_json:
        unlocked = None if until is None else _iso(until)
        print_json({"did": did, "name": name, "unlocked_until": unlocked})
        return
    say(did)
    print_qr(did)
    if name is not None:
        say(f'Your name (suggested to the people you invite or answer): "{shown(name)}"')
    if until is not None:
        say(f"Unlocked until {agent.until_text(until)} ('didlink lock' locks it now).", err=True)


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
    from identity.keystore import change_passphrase  # late (didlink/cli/commands/__init__.py)

    profile = Profile.from_env()
    profile.did()  # NoIdentity / DamagedKeystore before asking anything
    old, secret = profile.credentials(prompt="Current passphrase")  # + a bound one's token
    new = get_new_passphrase()
    try:
        change_passphrase(profile.keystore_path, old, new, device_secret=secret)
    except OSError as exc:
        raise UserError(f"cannot write the keystore: {exc.strerror or exc}") from exc
    say("Passphrase changed.")


commands: list[click.Command] = [init, whoami, passwd, name_command]
