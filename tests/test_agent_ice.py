"""didlink.Agent uses the profile's ICE servers and policy (issue 29): relay-only through a
real coturn (tests/support/turn_server.py), and relay-only without TURN refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from didlink import Agent, Connected, UserError
from tests.support.turn_server import PASSWORD, USER, TurnServer, turn_server
from tests.test_cli_invite import CHEAP_KDF as CHEAP
from transport.ice import IcePolicy

pytestmark = pytest.mark.timeout(90)

PASSPHRASE = "agent test passphrase"


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[TurnServer]:
    with turn_server(tmp_path / "coturn") as server:
        yield server


async def test_an_agent_connects_through_the_profiles_turn_server(
    tmp_path: Path, turn: TurnServer
) -> None:
    alice = await Agent.create(tmp_path / "alice", passphrase=PASSPHRASE, kdf=CHEAP)
    bob = await Agent.create(tmp_path / "bob", passphrase=PASSPHRASE, kdf=CHEAP)
    async with alice, bob:
        alice.ice_settings.add(turn.url, username=USER, credential=PASSWORD)
        alice.ice_settings.set_policy(IcePolicy.RELAY)
        assert [s.url for s in alice.ice_settings.servers()] == [turn.url]
        session = await alice.invite(label="Alice")
        answer = await bob.accept(session.token)
        session.submit_response(answer.token)
        for side in (session, answer):
            await side.sas()
            side.confirm_sas()
        async with asyncio.timeout(30):
            ours, theirs = await session.wait_for(Connected), await answer.wait_for(Connected)
        assert ours.path == "relay"
        assert theirs.path == "host"  # Bob has no server: direct to the relay
        await session.close()


async def test_relay_only_without_turn_is_refused(tmp_path: Path) -> None:
    alice = await Agent.create(tmp_path / "alice", passphrase=PASSPHRASE, kdf=CHEAP)
    async with alice:
        alice.ice_settings.set_policy(IcePolicy.RELAY)
        with pytest.raises(UserError, match="relay-only mode needs a TURN server"):
            await alice.invite()
