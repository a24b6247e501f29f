"""`Agent.connect` and `Agent.answer_rendezvous` (specs/rendezvous.md): a connection with no
token, the offer and the answer through two real relays on loopback
(tests/support/nostr_relays.py). The two sides hold a persistent session and know each other as
verified contacts (so no SAS), as after a first contact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink import Agent, MessageReceived, UserError
from didlink.agent import NoRendezvous
from didlink.jsonl import HumanSink
from didlink.mailbox import relays as relay_settings
from didlink.mailbox.store import MailboxStore
from didlink.profile.folder import Profile
from didlink.profile.sealing import Sealer
from didlink.profile.settings import Settings
from didlink.session.rendezvous import (
    OFFER_LIFETIME,
    WAIT_ENV,
    check_offer,
    offer_wins,
    wait_from_env,
)
from identity.contact import Verification
from identity.errors import AlreadyUsed, IdentityError
from identity.invitation import Invitation, InvitationKind, Response
from identity.keys import IdentityKey
from identity.token import decode_invitation, encode_token
from messaging.mailbox import new_session_state
from tests.support.cli import assert_user_error, run_cli
from tests.support.mailbox_pair import handshake_pair
from tests.support.nostr_relays import LocalRelay, local_relays
from tests.test_cli_invite import CHEAP_KDF as CHEAP

PASSPHRASE = "correct horse battery staple"
NOW = datetime(2026, 12, 1, tzinfo=UTC)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[LocalRelay]]:
    with local_relays(tmp_path / "relays", 2) as started:
        yield started


@pytest.fixture
async def pair(tmp_path: Path, relays: list[LocalRelay]) -> AsyncIterator[tuple[Agent, Agent]]:
    alice = await Agent.create(tmp_path / "alice", passphrase=PASSPHRASE, kdf=CHEAP)
    bob = await Agent.create(tmp_path / "bob", passphrase=PASSPHRASE, kdf=CHEAP)
    async with alice, bob:
        initiator, responder = handshake_pair(b"rendezvous")
        for me, other, result in ((alice, bob, initiator), (bob, alice, responder)):
            me.store.add_contact(other.did, now=NOW)
            me.store.set_verification(other.did, Verification.SAFETY_NUMBER)
            MailboxStore(me.store, Sealer(me.key)).install_session(
                other.did, new_session_state(result), now=NOW
            )
            relay_settings.add(Settings(me.store), [relay.url for relay in relays])
        yield alice, bob


async def _offers(agent: Agent, *, rounds: int = 20) -> list[tuple[str, str]]:
    """Rendezvous tokens the relays hand `agent` (fetching until one came)."""
    got: list[tuple[str, str]] = []
    for _ in range(rounds):
        await agent.receive(
            timeout=2.0, on_rendezvous=lambda peer, token: got.append((peer, token))
        )
        if got:
            return got
    return got


async def test_connect_is_answered_by_the_listening_side(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    connecting = asyncio.create_task(alice.connect(bob.did, timeout=30))
    offers = await _offers(bob)
    assert len(offers) == 1 and offers[0][0] == alice.did
    offer = decode_invitation(offers[0][1])
    assert offer.kind is InvitationKind.RECONNECT and offer.inviter == alice.did
    assert offer.expires - offer.created == OFFER_LIFETIME
    answering = await bob.answer_rendezvous(alice.did, offers[0][1])
    session = await connecting
    assert session is not None
    assert (await session.connected()).peer == bob.did
    assert (await answering.connected()).peer == alice.did
    await session.send("hello with no token")
    got = await answering.wait_for(MessageReceived)
    assert got.text == "hello with no token" and got.via == "live"
    # single use: the same offer again is refused, nothing started
    with pytest.raises(IdentityError):
        await bob.answer_rendezvous(alice.did, offers[0][1])
    await session.close()
    await answering.wait_closed()
    # the relays still hold the offer's wrap: fetched again, it does not open (its ratchet key
    # is spent), so it is not handed over a second time
    assert await _offers(bob, rounds=1) == []


async def test_connect_returns_none_when_nobody_answers(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    assert await alice.connect(bob.did, timeout=1.5) is None
    # the offer is there for Bob, who was not listening; answering it now is still valid
    offers = await _offers(bob)
    assert [peer for peer, _ in offers] == [alice.did]


async def test_an_offer_opened_by_receive_is_kept_for_the_next_chat(
    pair: tuple[Agent, Agent],
) -> None:
    alice, bob = pair
    assert await alice.connect(bob.did, timeout=1.0) is None
    assert await bob.receive(timeout=3.0) == []  # opens the offer (its ratchet key is spent)
    route = bob._mailbox(alice.did)
    assert route is not None
    kept = route.take_rendezvous(alice.did)
    assert kept is not None and decode_invitation(kept).inviter == alice.did
    assert route.take_rendezvous(alice.did) is None  # taken once


async def test_offers_that_are_not_from_the_contact_are_refused(
    pair: tuple[Agent, Agent],
) -> None:
    alice, bob = pair
    stranger = IdentityKey.generate()
    now = int(datetime.now(UTC).timestamp())
    assert await alice.connect(bob.did, timeout=1.0) is None
    [(_peer, real)] = await _offers(bob)
    connect = decode_invitation(real).connect  # a real compact offer

    def offer(key: IdentityKey, **changes: object) -> str:
        invitation = Invitation.create(
            key, now=now, lifetime=60, kind=InvitationKind.RECONNECT, connect=connect
        )
        return encode_token(invitation.model_copy(update=changes))

    alice_key = decode_invitation(offer(alice.key)).inviter_key
    refused = [
        offer(stranger),  # signed by someone else
        offer(alice.key, kind=InvitationKind.INVITE),  # a first-contact invitation is no offer
        offer(stranger, inviter_key=alice_key),  # claims Alice, signed by a stranger
        "didlink:garbage",
    ]
    for token in refused:
        with pytest.raises((UserError, IdentityError)):
            check_offer(token, store=bob.store, own_did=bob.did, contact=alice.did)
        with pytest.raises((UserError, IdentityError)):
            await bob.answer_rendezvous(alice.did, token)
    expired = Invitation.create(
        alice.key, now=now - 3600, lifetime=60, kind=InvitationKind.RECONNECT, connect=connect
    )
    with pytest.raises(IdentityError):
        check_offer(encode_token(expired), store=bob.store, own_did=bob.did, contact=alice.did)
    response = Response.create(alice.key, invitation=expired, now=now - 3590)
    with pytest.raises(UserError):
        check_offer(encode_token(response), store=bob.store, own_did=bob.did, contact=alice.did)
    used = decode_invitation(real)
    bob.store.mark_invitation_used(used.id, now=datetime.now(UTC))
    with pytest.raises(AlreadyUsed):
        check_offer(real, store=bob.store, own_did=bob.did, contact=alice.did)
    assert encode_token(used) == real


async def test_no_rendezvous_without_relays_or_session(tmp_path: Path) -> None:
    alice = await Agent.create(tmp_path / "a", passphrase=PASSPHRASE, kdf=CHEAP)
    async with alice:
        other = IdentityKey.generate().did
        alice.store.add_contact(other, now=NOW)
        with pytest.raises(NoRendezvous):
            await alice.connect(other)
        relay_settings.add(Settings(alice.store), ["ws://127.0.0.1:9"])
        with pytest.raises(NoRendezvous):  # relays, but no session with them
            await alice.connect(other)


def test_tie_break_is_one_sided_and_the_wait_setting_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = sorted(IdentityKey.generate().did for _ in range(2))
    assert offer_wins(a, b) and not offer_wins(b, a)
    monkeypatch.setenv("DIDLINK_RENDEZVOUS_TIMEOUT", "3.5")
    assert wait_from_env() == 3.5
    for bad in ("soon", "0", "-1", "99999", "nan"):
        monkeypatch.setenv("DIDLINK_RENDEZVOUS_TIMEOUT", bad)
        with pytest.raises(UserError):
            wait_from_env()


def test_chat_refuses_a_bad_rendezvous_timeout_before_anything(tmp_path: Path) -> None:
    home = tmp_path / "p"
    assert run_cli("init", home=home).returncode == 0
    peer = IdentityKey.generate().did
    with Profile(home).open_store() as store:
        store.add_contact(peer, name="Bob", now=NOW)
    for bad in ("soon", "0", "1e9"):
        result = run_cli("chat", "Bob", "--jsonl", home=home, env={WAIT_ENV: bad})
        assert_user_error(result, WAIT_ENV)
        assert result.stdout == ""


def test_the_offline_line_escapes_what_a_name_holds(capsys: pytest.CaptureFixture[str]) -> None:
    HumanSink().emit("offline", peer="did:key:z6Mkx", name="Bob\x1b[2J", via="mailbox")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "is not online: messages go by mailbox" in out
