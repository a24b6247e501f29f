"""List the contacts of a profile with how each one was verified.

    DIDLINK_PASSPHRASE=... python examples/list_contacts.py [PROFILE]

With a PROFILE folder that has an identity, its contacts are listed. Without one, the example
makes a temporary profile (under DIDLINK_HOME when it is set), gives it three contacts from
their signed cards, verifies one by its safety number, and lists those.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from didlink import Agent

PASSPHRASE = os.environ.get("DIDLINK_PASSPHRASE", "an example passphrase")


def show(agent: Agent) -> list[str]:
    """One line per contact: name (or suggested name), state, DID."""
    lines = []
    for contact in agent.contacts():
        name = contact.name or (f"({contact.suggested_name}?)" if contact.suggested_name else "-")
        lines.append(f"{name:<12} {contact.verification.value:<14} {contact.did}")
    return lines


async def sample(folder: Path) -> list[str]:
    me = await Agent.create(folder / "me", passphrase=PASSPHRASE)
    async with me:
        for label in ("Alice", "Bob", "Carol"):
            other = await Agent.create(folder / label.lower(), passphrase=PASSPHRASE)
            async with other:
                me.accept_card(other.card(label=label))
        me.rename(me.contacts()[0].did)  # adopt the first one's suggested name
        me.mark_verified(me.contacts()[0].did)  # after comparing the safety number in person
        return show(me)


def run(argv: list[str]) -> list[str]:
    if argv:

        async def listed() -> list[str]:
            async with await Agent.open(argv[0], passphrase=PASSPHRASE) as agent:
                return show(agent)

        lines = asyncio.run(listed())
    else:
        home = os.environ.get("DIDLINK_HOME")
        if home:
            Path(home).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="didlink-example-", dir=home) as folder:
            lines = asyncio.run(sample(Path(folder)))
    for line in lines:
        print(line)
    return lines


if __name__ == "__main__":
    run(sys.argv[1:])
