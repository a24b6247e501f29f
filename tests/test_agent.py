"""didlink.Agent, the public API (issue 28): two agents in one process over real WebRTC."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from didlink import (
    Agent,
    Closed,
    MessageReceived,
    SessionClosed,
    UserError,
    Verification,
)
from tests.test_cli_invite import CHEAP_KDF as CHEAP

pytestmark = pytest.mark.timeout(120)

PASSPHRASE = "agent test passphrase"


async def _pair(folder: Path) -> tuple[Agent, Agent]:
    alice = await Agent.create(folder / "alice", passphrase=PASSPHRASE, kdf=CHEAP)
    bob = await Agent.create(folder / "bob", passphrase=PASSPHRASE, kdf=CHEAP)
    return alice, bob


def test_public_names_import_without_the_transport() -> None:
    code = "import sys, didlink; assert 'aiortc' not in sys.modules; print(didlink.__all__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Agent" in result.stdout


async def test_a_text_for_an_offline_contact_waits_and_leaves_on_the_next_session(
    tmp_path: Path,
) -> None:
    alice, bob = await _pair(tmp_path)
    async with alice, bob:
        bob.accept_card(alice.card(label="Alice"))
        alice.accept_card(bob.card(label="Bob"))
        alice.rename(bob.did)
        queued = await alice.send("Bob", "written while you were away")
        assert len(queued) == 32 and alice.queued("Bob") == 1
        session = await alice.reconnect("Bob")
        answer = await bob.accept(session.token)
        session.submit_response(answer.token)
        for side in (session, answer):  # unverified contacts: the SAS is asked
            await side.sas()
            side.confirm_sas()
        async with asyncio.timeout(30):
            got = await answer.wait_for(MessageReceived)
        assert got.text == "written while you were away" and got.sender == alice.did
        live = await alice.send("Bob", "and this one live")
        async with asyncio.timeout(30):
            async for event in answer.events():
                if isinstance(event, MessageReceived) and event.id == live:
                    break
        await session.close()
        assert alice.queued("Bob") == 0
        assert alice.contact("Bob").verification is Verification.SAS


async def test_a_rejected_sas_ends_the_session_and_marks_the_peer_suspect(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    async with alice, bob:
        invitation = await alice.invite(label="Alice")
        answer = await bob.accept(invitation.token)
        invitation.submit_response(answer.token)
        await invitation.sas()
        await answer.sas()
        answer.reject_sas()
        with pytest.raises(SessionClosed):
            await invitation.connected()
        assert (await invitation.wait_closed()).reason == "sas rejected by peer"
        assert isinstance(answer.closed or await answer.wait_closed(), Closed)
        assert bob.contact(alice.did).verification is Verification.SUSPECT
        assert alice.contact(bob.did).verification is Verification.SUSPECT
        assert bob.contact(alice.did).name is None  # the label named nobody


async def test_tokens_of_the_wrong_kind_are_user_errors(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    async with alice, bob:
        card = alice.card(label="Alice")
        with pytest.raises(UserError, match="contact card"):
            await bob.accept(card)
        invitation = await alice.invite()
        with pytest.raises(UserError, match="not a contact card"):
            bob.accept_card(invitation.token)
        with pytest.raises(UserError, match="your own"):
            alice.accept_card(card)
        with pytest.raises(UserError):
            await bob.send("nobody", "hi")
        await invitation.close()


async def test_a_card_is_one_way_and_both_sides_compute_the_safety_number(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    async with alice, bob:
        contact = bob.accept_card(alice.card(label="Alice"))
        assert (contact.name, contact.suggested_name) == (None, "Alice")
        assert alice.contacts() == []  # one way: Alice does not have Bob
        # Bob by name of his contact's DID start; Alice by Bob's full DID, not a contact.
        start = alice.did.removeprefix("did:key:")[:8]
        assert bob.contact(start).did == alice.did
        assert bob.safety_number(start) == alice.safety_number(bob.did)
        with pytest.raises(UserError, match="no contact has a DID starting with"):
            alice.safety_number(bob.did[:20])  # a prefix names contacts only
        with pytest.raises(UserError, match="suggests that name"):
            bob.contact("Alice")  # a suggestion never resolves
        invitation = await alice.invite(label="Alice")
        with pytest.raises(UserError, match="control characters"):
            await bob.accept(invitation.token, label="Bob\x1b[2J")
        await invitation.close()
