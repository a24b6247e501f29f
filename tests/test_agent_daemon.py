"""`Agent.serve()` in-process (specs/mailbox.md §16): the mailbox served continuously - a text
arrives once and is receipted, a relay's state is reported, and a `WrapHandler` receives the
wraps addressed to its keys (the hook for rendezvous offers). One real relay on loopback
(tests/support/nostr_relays.py)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Collection
from pathlib import Path

import pytest

from didlink import Agent, MailboxDelivered, MailboxMessage, RelayState
from didlink.errors import UserError
from tests.support.daemon_pair import PASSPHRASE, make_profiles
from tests.support.nostr_relays import local_relays
from transport.nostr_envelope import seal_wrap
from transport.nostr_event import NostrEvent
from transport.nostr_relay import RelayPool

WAIT = 60.0


class Collector:
    """A WrapHandler that keeps what it is handed."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.got: asyncio.Queue[NostrEvent] = asyncio.Queue()

    def recipients(self) -> Collection[bytes]:
        return [self.key]

    async def handle(self, event: NostrEvent) -> None:
        await self.got.put(event)


def _x_only(secret: bytes) -> bytes:
    from transport.nostr_event import public_key_of

    return public_key_of(secret)


async def test_serve_yields_texts_once_receipts_them_and_feeds_wrap_handlers(
    tmp_path: Path,
) -> None:
    with local_relays(tmp_path / "relays", 1) as relays:
        url = relays[0].url
        alice_p, bob_p = await make_profiles(tmp_path, [url])
        handler_secret = secrets.token_bytes(32)
        handler = Collector(_x_only(handler_secret))
        alice = await Agent.open(alice_p.home, passphrase=PASSPHRASE)
        bob = await Agent.open(bob_p.home, passphrase=PASSPHRASE)
        async with alice, bob:
            async with (
                asyncio.timeout(WAIT),
                contextlib.aclosing(bob.serve(handlers=[handler])) as events,
            ):
                first = await anext(events)
                assert first == RelayState(url=url, up=True)
                mid = await alice.send("Bob", "served")
                got = await anext(events)
                assert isinstance(got, MailboxMessage)
                assert (got.sender, got.id, got.text) == (alice.did, mid, "served")
                # Bob's receipt went out at once: Alice's fetch finds it.
                for _ in range(20):
                    back = await alice.receive(timeout=5)
                    if any(isinstance(b, MailboxDelivered) and b.id == mid for b in back):
                        break
                else:
                    pytest.fail("no receipt from the served side")
                # A wrap to the handler's key goes to the handler, not to the mailbox.
                wrap = seal_wrap(
                    b"an offer", sender_secret=secrets.token_bytes(32), recipient=handler.key
                )
                async with RelayPool([url]) as pool:
                    await pool.publish(wrap)
                handed = await handler.got.get()
                assert handed.id == wrap.id
            assert await bob.receive(timeout=5) == []  # nothing shown twice


async def test_serve_without_relays_is_a_user_error(tmp_path: Path) -> None:
    _alice, bob_p = await make_profiles(tmp_path, [])
    bob = await Agent.open(bob_p.home, passphrase=PASSPHRASE)
    async with bob:
        with pytest.raises(UserError, match="relays add"):
            await anext(bob.serve())


async def test_serve_takes_message_requests_as_they_come(tmp_path: Path) -> None:
    """A card holder's first message (specs/first-message.md §6) reaches a serving profile at
    once: shown as a request, receipted (the sender sees it delivered), and the reply goes by
    the session it set up."""
    from didlink.mailbox import relays as relay_settings
    from didlink.profile.settings import Settings
    from tests.test_cli_invite import CHEAP_KDF as cheap

    with local_relays(tmp_path / "relays", 1) as relays:
        url = relays[0].url
        alice = await Agent.create(tmp_path / "alice", passphrase=PASSPHRASE, kdf=cheap)
        bob = await Agent.create(tmp_path / "bob", passphrase=PASSPHRASE, kdf=cheap)
        async with alice, bob:
            for agent in (alice, bob):
                relay_settings.add(Settings(agent.store), [url])
            card = bob.card(label="Bob")  # with relays configured: it carries Bob's reach
            alice.accept_card(card)
            async with (
                asyncio.timeout(WAIT),
                contextlib.aclosing(bob.serve()) as events,
            ):
                assert await anext(events) == RelayState(url=url, up=True)
                mid = await alice.send(bob.did, "hello from a card holder")
                got = await anext(events)
                while isinstance(got, RelayState):
                    got = await anext(events)
                assert isinstance(got, MailboxMessage)
                assert (got.sender, got.id, got.text) == (
                    alice.did,
                    mid,
                    "hello from a card holder",
                )
                assert got.request is True
                for _ in range(20):
                    back = await alice.receive(timeout=5)
                    if any(isinstance(b, MailboxDelivered) and b.id == mid for b in back):
                        break
                else:
                    pytest.fail("no receipt for the request from the serving side")
            reply = await bob.send(alice.did, "hi, who is this?")
            back = await alice.receive(timeout=10)
            assert [(m.id, m.text) for m in back if isinstance(m, MailboxMessage)] == [
                (reply, "hi, who is this?")
            ]
