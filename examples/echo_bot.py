"""A bot that echoes every message it receives, until it has answered `count` of them.

    DIDLINK_PASSPHRASE=... python examples/echo_bot.py [COUNT]

`echo(session, count)` is the bot: give it any connected session. Run as a script, the example
makes a temporary bot and a temporary visitor in this process, connects them (the visitor
invites, the bot accepts, both confirm the SAS), and the visitor talks to the bot.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from didlink import Agent, Closed, MessageReceived, Session

PASSPHRASE = os.environ.get("DIDLINK_PASSPHRASE", "an example passphrase")


async def echo(session: Session, count: int) -> int:
    """Answer each message with its echo until `count` were answered or the session closed."""
    answered = 0
    async for event in session.events():
        if isinstance(event, MessageReceived):
            await session.send(f"echo: {event.text}")
            answered += 1
            if answered == count:
                break
        elif isinstance(event, Closed):
            break
    return answered


async def visit(visitor: Agent, bot: Agent, count: int) -> list[str]:
    """The other side: connect to the bot, send `count` messages, collect the echoes."""
    invitation = await visitor.invite(label="Visitor")
    at_bot = await bot.accept(invitation.token)
    invitation.submit_response(at_bot.token)
    for session in (invitation, at_bot):
        await session.sas()  # a bot cannot compare by voice: its owner verifies it later
        session.confirm_sas()
    await invitation.connected()
    serving = asyncio.create_task(echo(at_bot, count))
    echoes: list[str] = []
    events = invitation.events()
    for number in range(count):
        await invitation.send(f"message {number + 1}")
        async for event in events:
            if isinstance(event, MessageReceived):
                echoes.append(event.text)
                break
    assert await serving == count
    await invitation.close()
    return echoes


async def main(folder: Path, count: int = 3) -> list[str]:
    bot = await Agent.create(folder / "bot", passphrase=PASSPHRASE)
    visitor = await Agent.create(folder / "visitor", passphrase=PASSPHRASE)
    async with bot, visitor:
        echoes = await visit(visitor, bot, count)
    for text in echoes:
        print(text)
    return echoes


def run(count: int = 3) -> list[str]:
    home = os.environ.get("DIDLINK_HOME")
    if home:
        Path(home).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="didlink-example-", dir=home) as folder:
        return asyncio.run(main(Path(folder), count))


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
