"""`didlink daemon [--jsonl]`: stay online on the profile's relays (issue 25, point 6;
specs/mailbox.md §16). A thin frontend of `Agent.serve()` (didlink/mailbox/daemon.py does the work).

Order of the checks: a relay configured (exit 2 naming `didlink relays add URL`), the profile's
lock (exit 2 naming the running daemon's pid), then the passphrase (or the key agent), once.
SIGTERM and SIGINT close the relays and exit 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from didlink.errors import UserError
from didlink.profile.folder import Profile
from didlink.words.output import print_json, say

if TYPE_CHECKING:
    from didlink.agent import Agent
    from didlink.events import RelayState
    from didlink.profile.store import Store


@click.command(name="daemon")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print one JSON object per line.")
def daemon_command(as_jsonl: bool) -> None:
    """Stay online: receive messages, send what waits, until stopped."""
    from didlink.mailbox.daemon import DaemonLock

    profile = Profile.from_env()
    profile.did()
    with profile.open_store() as store:
        _check_relays(store)
    with DaemonLock(profile.path):
        key = profile.unlock()
        from didlink.agent import Agent

        agent = Agent(profile=profile, key=key)
        import asyncio  # late: every other command would pay its import

        try:
            asyncio.run(_serve(agent, as_jsonl=as_jsonl))
        finally:
            agent.store.close()


def _check_relays(store: Store) -> None:
    from didlink.mailbox import relays
    from didlink.profile.settings import Settings

    if not relays.configured(Settings(store)):
        raise UserError("no relay is configured: add one with `didlink relays add URL`")


async def _serve(agent: Agent, *, as_jsonl: bool) -> None:
    import asyncio
    import contextlib
    import signal

    from didlink.events import RelayState
    from didlink.mailbox.display import show_item

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)

    async def consume() -> None:
        async with contextlib.aclosing(agent.serve()) as events:
            urls = _urls(agent)
            if as_jsonl:
                print_json({"type": "ready", "did": agent.did, "relays": urls})
            else:
                say(f"Online on {len(urls)} relay(s); stop with Ctrl-C.", err=True)
            async for event in events:
                if isinstance(event, RelayState):
                    _show_relay(event, as_jsonl=as_jsonl)
                    continue
                contacts = agent.store.list_contacts()
                names = {c.did: c.display_name for c in contacts}
                suggested = {c.did: c.suggested_name for c in contacts}  # (a request's only)
                show_item(event, names, suggested, as_jsonl=as_jsonl)

    serving = asyncio.create_task(consume())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()  # the service's error (UserError: one line, exit 2)
    finally:
        stopping.cancel()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving  # its generator closes: the relays are closed cleanly
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(number)


def _urls(agent: Agent) -> list[str]:
    from didlink.mailbox import relays
    from didlink.profile.settings import Settings

    return relays.configured(Settings(agent.store))


def _show_relay(event: RelayState, *, as_jsonl: bool) -> None:
    if as_jsonl:
        print_json({"type": "relay", "url": event.url, "state": "up" if event.up else "down"})
    elif event.up:
        say(f"Relay {event.url}: connected.", err=True)
    else:
        say(f"Relay {event.url}: disconnected; trying again.", err=True)


commands: list[click.Command] = [daemon_command]
