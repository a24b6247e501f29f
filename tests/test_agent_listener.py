"""The Agent API a frontend renders from (issue 28 point 2): a listener instead of `events()`,
fire-and-forget sends with a `ref`, quitting without waiting, warnings as `SessionWarning`,
an agent on a store that is already open. Two agents in one process over real WebRTC."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from didlink import (
    Agent,
    Closed,
    MessageReceived,
    MessageSent,
    SessionWarning,
    TokenReady,
)
from didlink.agent import Expecting
from didlink.events import Event
from identity.invitation import Invitation
from identity.token import decode_token
from tests.test_agent import _pair

pytestmark = pytest.mark.timeout(120)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.batches = 0
        self.changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self.batches += 1
        yield

    async def until(self, kind: type[Event]) -> Event:
        async with asyncio.timeout(30):
            while True:
                for event in self.events:
                    if isinstance(event, kind):
                        return event
                self.changed.clear()
                await self.changed.wait()


async def test_a_listener_gets_every_event_as_it_happens(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    seen = Recorder()
    async with alice, bob:
        session = await alice.invite(label="Alice", on_event=seen, batch=seen.batch)
        token = await seen.until(TokenReady)  # returned at once: the token comes as an event
        assert isinstance(token, TokenReady) and session.token == token.token
        assert session.expecting in (Expecting.RESPONSE,)  # (no narrowing: it changes)
        invitation = decode_token(token.token)
        assert isinstance(invitation, Invitation)
        answer = await bob.accept(invitation)  # an Invitation, already decoded
        session.submit_response(answer.token)
        await session.sas()
        await answer.sas()
        session.confirm_sas()
        answer.confirm_sas()
        await session.connected()
        assert session.expecting in (Expecting.CHAT,)
        session.post("hello", ref={"mine": 1})
        sent = await seen.until(MessageSent)
        assert isinstance(sent, MessageSent) and sent.ref == {"mine": 1}
        async with asyncio.timeout(30):
            got = await answer.wait_for(MessageReceived)
        assert got.text == "hello" and got.id == sent.id
        answer.post("back")
        await seen.until(MessageReceived)
        assert seen.batches >= 1  # the received frame's events came in one batch
        session.quit()
        closed = await session.wait_closed()
        assert closed.reason == "quit" and session.exit_code == 0
        assert isinstance(seen.events[-1], Closed)
        assert session._queue.empty()  # events() is not fed: the listener had them all


async def test_a_warning_is_a_session_warning_not_an_error(tmp_path: Path) -> None:
    alice, _bob = await _pair(tmp_path)
    seen = Recorder()
    async with alice:
        session = await alice.invite(on_event=seen)
        await seen.until(TokenReady)
        session.post("never sent: nobody answered")
        session.quit()
        await session.wait_closed()
    warnings = [event for event in seen.events if isinstance(event, SessionWarning)]
    assert warnings and "not sent" in warnings[0].message
    assert isinstance(seen.events[-1], Closed)


async def test_an_agent_on_an_open_store_leaves_it_open(tmp_path: Path) -> None:
    alice, _bob = await _pair(tmp_path)
    await alice.close()
    with alice.profile.open_store() as store:
        shared = Agent(profile=alice.profile, key=alice.key, store=store)
        assert shared.store is store
        await shared.close()
        assert store.list_contacts() == []  # still usable: the agent did not close it
