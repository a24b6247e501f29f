"""`didlink unlock [--for 8h]` and `didlink lock`: the passphrase asked once for a while.

`unlock` opens the keystore once and leaves the identity seed with the profile's key agent
(didlink/custody/key_agent.py, specs/key-agent.md), which every command that needs the identity asks
first, as ssh does ssh-agent; `lock` makes it forget. Both start fast: no cryptography loads
unless the passphrase is asked.
"""

from __future__ import annotations

import re
import time

import click

from didlink.errors import UserError
from didlink.profile.folder import Profile
from didlink.words.output import say

DEFAULT_DURATION = "8h"
DURATION = re.compile(r"([1-9][0-9]{0,5})([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION_TEXT = "7d"


def parse_duration(text: str) -> int:
    """Seconds of '90s', '30m', '8h' or '1d' (at most 7 days); UserError otherwise."""
    from didlink.custody.key_agent_protocol import MAX_LIFETIME

    match = DURATION.fullmatch(text.strip()) if len(text) <= 16 else None
    if match is None:
        raise UserError(
            "--for takes a number and a unit: s, m, h or d (e.g. 30m, 8h, 1d);"
            f" at most {MAX_DURATION_TEXT}"
        )
    seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if seconds > MAX_LIFETIME:
        raise UserError(f"--for is at most {MAX_DURATION_TEXT}")
    return seconds


@click.command()
@click.option(
    "--for",
    "duration",
    default=DEFAULT_DURATION,
    show_default=True,
    metavar="DURATION",
    help="How long the key stays unlocked: 30m, 8h, 1d (at most 7d).",
)
def unlock(duration: str) -> None:
    """Ask for the passphrase once; commands in this profile then need none until 'didlink
    lock', the end of DURATION or a reboot. The key waits in a background process that only
    your user can ask (a 0600 socket, like ssh-agent)."""
    from didlink.custody import key_agent_client as agent

    seconds = parse_duration(duration)
    profile = Profile.from_env()
    did = profile.did()  # NoIdentity / DamagedKeystore first
    held = agent.status(profile.path)
    if held is not None and held.did == did:
        extended = agent.extend(profile.path, int(time.time()) + seconds)
        if extended is not None:
            say(f"Already unlocked: now until {agent.until_text(extended.until)}.")
            return
    if held is not None:
        agent.lock(profile.path)
    key = profile.unlock(use_agent=False)
    until = int(time.time()) + seconds
    agent.start(profile.path, key, until)
    say(
        f"Unlocked until {agent.until_text(until)}: didlink will not ask for the passphrase"
        " in this profile until then ('didlink lock' locks it now)."
    )


@click.command()
def lock() -> None:
    """Forget the key that 'didlink unlock' keeps: the next command asks for the passphrase."""
    from didlink.custody import key_agent_client as agent

    profile = Profile.from_env()
    if agent.lock(profile.path):
        say("Locked: the next command will ask for the passphrase.")
    else:
        say("Not unlocked: nothing to lock.")


commands: list[click.Command] = [unlock, lock]
