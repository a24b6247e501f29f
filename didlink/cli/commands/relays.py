"""`didlink relays [add URL... | remove URL] [--json]`: the profile's Nostr relays
(specs/mailbox.md §11). None by default; no passphrase needed (the list is no secret)."""

from __future__ import annotations

import click

from didlink.profile.folder import Profile
from didlink.words.output import print_json, say


def _show(urls: list[str], as_json: bool) -> None:
    if as_json:
        print_json({"relays": urls})
    elif not urls:
        say("No relay configured: nothing goes through a third party (didlink relays add URL).")
    else:
        for url in urls:
            say(url)


@click.group(name="relays", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help='Print {"relays": [...]} as JSON.')
@click.pass_context
def relays_group(ctx: click.Context, as_json: bool) -> None:
    """List the Nostr relays that carry messages to offline contacts (none by default)."""
    if ctx.invoked_subcommand is not None:
        return
    from didlink.mailbox import relays  # late (didlink/cli/commands/__init__.py): the store
    from didlink.profile.settings import Settings

    profile = Profile.from_env()
    profile.did()
    with profile.open_store() as store:
        _show(relays.configured(Settings(store)), as_json)


@relays_group.command(name="add")
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option("--json", "as_json", is_flag=True, help="Print the new list as JSON.")
def relays_add(urls: tuple[str, ...], as_json: bool) -> None:
    """Add relays (wss://host[:port][/path]; ws:// only on this machine)."""
    from didlink.mailbox import relays
    from didlink.profile.settings import Settings

    checked = [relays.check_url(url) for url in urls]  # refused before the store is opened
    profile = Profile.from_env()
    profile.did()
    with profile.open_store() as store:
        _show(relays.add(Settings(store), checked), as_json)


@relays_group.command(name="remove")
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="Print the new list as JSON.")
def relays_remove(url: str, as_json: bool) -> None:
    """Remove a relay."""
    from didlink.mailbox import relays
    from didlink.profile.settings import Settings

    relays.check_url(url)
    profile = Profile.from_env()
    profile.did()
    with profile.open_store() as store:
        _show(relays.remove(Settings(store), url), as_json)


commands: list[click.Command] = [relays_group]
