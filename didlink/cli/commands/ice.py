"""`didlink ice`: the profile's STUN and TURN servers and its ICE policy (README "Networks").

    didlink ice [--json]                       list servers (URL, user name) and the policy
    didlink ice add stun:HOST[:PORT]
    didlink ice add turn:HOST[:PORT][?transport=udp|tcp] --username NAME [--credential C]
    didlink ice add turns:HOST[:PORT] --username NAME [--credential C]
    didlink ice remove URL
    didlink ice policy relay|all

A TURN credential given without --credential comes from DIDLINK_TURN_CREDENTIAL, else from a
hidden prompt on the terminal, so that it need not land in the shell's history. It is sealed
under the store key (which needs the passphrase) and never printed. See
didlink/profile/ice_settings.py.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from didlink.errors import UserError
from didlink.profile.folder import Profile
from didlink.words.display import shown
from didlink.words.output import print_json, say

if TYPE_CHECKING:
    from didlink.profile.store import Store

TURN_CREDENTIAL_ENV = "DIDLINK_TURN_CREDENTIAL"


def _open_store() -> tuple[Profile, Store]:
    profile = Profile.from_env()
    profile.did()  # no identity: a clear error first
    return profile, profile.open_store()


def _credential(given: str | None) -> str:
    if given is not None:
        return given
    from_env = os.environ.get(TURN_CREDENTIAL_ENV)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise UserError(
            f"a TURN server needs its credential: --credential, {TURN_CREDENTIAL_ENV}, or a"
            " terminal to ask on"
        )
    return str(click.prompt("TURN credential", hide_input=True, err=True))


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the servers and policy as JSON.")
@click.pass_context
def ice(ctx: click.Context, as_json: bool) -> None:
    """Your STUN and TURN servers and the ICE policy (none and "all" by default).

    Without a server, connections use your own addresses only (a direct LAN, or a peer that
    can reach you). A STUN server tells you your public address; a TURN server relays the
    connection when no direct path works; "policy relay" sends every connection through it.
    """
    if ctx.invoked_subcommand is not None:
        return
    from didlink.profile.ice_settings import IceSettings

    _, store = _open_store()
    with store:
        settings = IceSettings(store)
        servers, policy = settings.servers(), settings.policy_name()
    if as_json:
        print_json(
            {
                "servers": [{"url": s.url, "username": s.username} for s in servers],
                "policy": policy,
            }
        )
        return
    if not servers:
        say("No STUN or TURN server: connections use your own addresses only.")
    for server in servers:
        user = f"  (user {shown(server.username)})" if server.username else ""
        say(f"{shown(server.url)}{user}")
    if policy == "relay":
        say("Policy: relay (every connection goes through the TURN server).")
    else:
        say("Policy: all (direct when possible).")


@ice.command()
@click.argument("url")
@click.option("--username", help="The TURN server's user name.")
@click.option(
    "--credential",
    help=f"The TURN credential (else {TURN_CREDENTIAL_ENV}, else asked on the terminal).",
)
def add(url: str, username: str | None, credential: str | None) -> None:
    """Add a STUN or TURN server (it replaces the one of the same kind)."""
    from didlink.profile.ice_settings import IceSettings
    from didlink.profile.sealing import Sealer
    from transport.ice import check_credential, check_username, parse_ice_url

    try:
        parsed = parse_ice_url(url)
    except ValueError as exc:
        raise UserError(f"cannot add the ICE server: {exc}") from None
    if not parsed.is_turn:
        if username is not None or credential is not None:
            raise UserError("a STUN server takes no --username or --credential")
        _, store = _open_store()
        with store:
            IceSettings(store).add(url)
        say(f"Added {shown(url)}.")
        return
    if not username:
        raise UserError("a TURN server needs --username")
    secret = _credential(credential)
    try:  # before the passphrase: a typo costs no unlock
        check_username(username)
        check_credential(secret)
    except ValueError as exc:
        raise UserError(f"cannot add the ICE server: {exc}") from None
    profile, store = _open_store()
    with store:
        key = profile.unlock()  # the credential is sealed under the store key
        IceSettings(store, Sealer(key)).add(url, username=username, credential=secret)
    say(f"Added {shown(url)} (user {shown(username)}); the credential is sealed in the profile.")


@ice.command()
@click.argument("url")
def remove(url: str) -> None:
    """Forget a STUN or TURN server (and its credential)."""
    from didlink.profile.ice_settings import IceSettings

    _, store = _open_store()
    with store:
        removed = IceSettings(store).remove(url)
    if not removed:
        raise UserError("no such ICE server in the profile: see 'didlink ice'")
    say(f"Removed {shown(url)}.")


@ice.command()
@click.argument("policy", type=click.Choice(["relay", "all"]))
def policy(policy: str) -> None:
    """relay: every connection goes through your TURN server, and the peer never learns your
    addresses; all (the default): direct when possible."""
    from didlink.profile.ice_settings import IceSettings, parse_policy

    _, store = _open_store()
    with store:
        settings = IceSettings(store)
        if policy == "relay" and not any(
            server.username is not None for server in settings.servers()
        ):
            say(
                "note: no TURN server yet: connections are refused until you add one"
                " (didlink ice add turn:HOST:PORT --username NAME)",
                err=True,
            )
        settings.set_policy(parse_policy(policy))
    say(f"ICE policy: {policy}.")


commands: list[click.Command] = [ice]
