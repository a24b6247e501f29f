"""didlink/mailbox/reach.py against a real relay (tests/support/nostr_relays.py): the response wrap
the
invitee publishes, and the inviter's listener, which hands up only token texts from wraps to
its reach key and drops everything else (specs/mailbox.md §14)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from didlink.mailbox.reach import ResponseListener, reach_for, send_response
from identity.invitation import Invitation, InvitationKind, Response
from identity.keys import IdentityKey
from identity.token import encode_token
from messaging.alias import SECP256K1_ORDER, alias_public, reach_secret
from tests.support.nostr_relays import LocalRelay, local_relays
from transport.nostr_envelope import expiration_of, open_wrap, seal_wrap
from transport.nostr_relay import RelayPool

ALICE = IdentityKey(bytes([1]) * 32)
BOB = IdentityKey(bytes([2]) * 32)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[LocalRelay]:
    with local_relays(tmp_path, 1) as started:
        yield started[0]


def _invitation(url: str) -> Invitation:
    invitation_id = os.urandom(16)
    return Invitation.create(
        ALICE,
        now=int(time.time()),
        lifetime=900,
        kind=InvitationKind.INVITE,
        connect=b"\x01",
        reach=reach_for(ALICE, (url,), context=invitation_id),
        id=invitation_id,
    )


def _secret() -> bytes:
    while True:
        secret = os.urandom(32)
        if 0 < int.from_bytes(secret, "big") < SECP256K1_ORDER:
            return secret


async def _next(listener: ResponseListener, within: float = 20) -> str:
    async with asyncio.timeout(within):
        return await listener.texts.get()


async def test_the_response_wrap_reaches_the_listener_and_nothing_else_does(
    relay: LocalRelay,
) -> None:
    invitation = _invitation(relay.url)
    assert invitation.reach is not None
    assert invitation.reach.key == alias_public(reach_secret(ALICE.seed, invitation.id))
    token = encode_token(Response.create(BOB, invitation=invitation, now=int(time.time())))
    async with ResponseListener(invitation, ALICE) as listener:
        # garbage first: not ASCII, a wrap to another key, a wrap that is no gift wrap at all
        async with RelayPool([relay.url]) as pool:
            for payload in (b"\xff\x00 not text", b"x" * 5000):
                await pool.publish(
                    seal_wrap(payload, sender_secret=_secret(), recipient=invitation.reach.key),
                    timeout=20,
                )
            other = alias_public(_secret())
            await pool.publish(
                seal_wrap(b"didlink:x", sender_secret=_secret(), recipient=other), timeout=20
            )
        sent = await send_response(token, invitation, timeout=20)
        assert sent == (relay.url,)
        assert await _next(listener) == token  # the only text handed up
        async with asyncio.timeout(20):  # (a relay may send stored events in any order)
            while listener.dropped < 2:  # noqa: ASYNC110 - a counter has no event to wait on
                await asyncio.sleep(0.02)
        assert listener.dropped == 2  # the two garbage payloads; the other key's never came
        assert listener.texts.empty()


async def test_the_response_wrap_expires_with_the_invitation_and_hides_the_sender(
    relay: LocalRelay,
) -> None:
    invitation = _invitation(relay.url)
    assert invitation.reach is not None
    token = encode_token(Response.create(BOB, invitation=invitation, now=int(time.time())))
    async with RelayPool([relay.url]) as pool:
        sub = await pool.subscribe(recipients=[invitation.reach.key])
        assert await send_response(token, invitation, timeout=20) == (relay.url,)
        event = await sub.next(timeout=20)
    assert expiration_of(event) == invitation.expires
    opened = open_wrap(
        event, recipient_secret=reach_secret(ALICE.seed, invitation.id), now=int(time.time())
    )
    assert opened.payload == token.encode("ascii")
    assert opened.sender not in (alias_public(reach_secret(BOB.seed, b"card")),)
    assert BOB.public_key.hex() not in event.to_json()


async def test_nothing_is_sent_without_a_reach_or_after_expiry() -> None:
    plain = Invitation.create(ALICE, now=int(time.time()), lifetime=900)
    token = encode_token(Response.create(BOB, invitation=plain, now=int(time.time())))
    assert await send_response(token, plain, timeout=1) == ()
    old = Invitation.create(
        ALICE,
        now=int(time.time()) - 1000,
        lifetime=900,
        reach=reach_for(ALICE, ("ws://127.0.0.1:9",), context=bytes(16)),
        id=bytes(16),
    )
    assert await send_response(token, old, timeout=1) == ()  # expired: no relay is contacted


async def test_an_unreachable_relay_is_no_error() -> None:
    invitation = _invitation("ws://127.0.0.1:9")  # nothing listens on the discard port
    token = encode_token(Response.create(BOB, invitation=invitation, now=int(time.time())))
    assert await send_response(token, invitation, timeout=1) == ()
