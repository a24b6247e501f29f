"""`Agent.send_file(who, path)` (issue 25 point 8): queued for an offline contact, it leaves on
the next session once verified; with a connected session it leaves at once. Two agents in one
process over real WebRTC (as tests/test_agent.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from didlink import Agent, FileReceived, FileSent, Queued, QueuedFile, UserError
from tests.test_cli_invite import CHEAP_KDF as CHEAP

pytestmark = pytest.mark.timeout(120)

PASSPHRASE = "agent test passphrase"


async def test_a_file_for_an_offline_contact_waits_then_leaves_and_a_live_one_at_once(
    tmp_path: Path,
) -> None:
    alice = await Agent.create(tmp_path / "alice", passphrase=PASSPHRASE, kdf=CHEAP)
    bob = await Agent.create(tmp_path / "bob", passphrase=PASSPHRASE, kdf=CHEAP)
    waiting, live = tmp_path / "waiting.bin", tmp_path / "live.bin"
    waiting.write_bytes(os.urandom(200_000))
    live.write_bytes(os.urandom(5_000))
    async with alice, bob:
        bob.accept_card(alice.card(label="Alice"))
        alice.accept_card(bob.card(label="Bob"))
        alice.rename(bob.did)
        with pytest.raises(UserError, match="is a folder"):
            await alice.send_file("Bob", tmp_path)
        with pytest.raises(UserError, match="cannot read"):
            await alice.send_file("Bob", tmp_path / "missing.bin")
        queued_id = await alice.send_file("Bob", waiting)  # Bob is offline: queued
        assert len(bytes.fromhex(queued_id)) == 16
        session = await alice.reconnect("Bob")
        answer = await bob.accept(session.token)
        session.submit_response(answer.token)
        async with asyncio.timeout(30):
            listed = await session.wait_for(Queued)
        assert listed.files == (QueuedFile(id=queued_id, name="waiting.bin", size=200_000),)
        for side in (session, answer):  # unverified contacts: the SAS is asked
            await side.sas()
            side.confirm_sas()
        async with asyncio.timeout(30):
            got = await answer.wait_for(FileReceived)
            sent = await session.wait_for(FileSent)
        assert got.id == queued_id == sent.id and got.sender == alice.did
        assert got.path.read_bytes() == waiting.read_bytes()
        live_id = await alice.send_file("Bob", live)  # connected: it leaves now
        async with asyncio.timeout(30):
            async for event in answer.events():
                if isinstance(event, FileReceived) and event.id == live_id:
                    assert event.path.read_bytes() == live.read_bytes()
                    break
        await session.close()
