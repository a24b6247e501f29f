"""`didlink.Agent` and message requests (issue 25 point 7) over two real relays on loopback:
Alice accepts Bob's card (with reach) and sends at once; Bob's `receive` returns a request;
his reply goes through the new session; Alice sees it and the receipt."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink import Agent, MailboxDelivered, MailboxMessage
from didlink.mailbox import relays as relay_settings
from didlink.mailbox.requests import MessageRequests
from didlink.profile.settings import Settings
from identity.invitation import Invitation, Reach
from identity.token import encode_token
from tests.support.nostr_relays import LocalRelay, local_relays
from tests.test_cli_invite import CHEAP_KDF as CHEAP

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[LocalRelay]]:
    with local_relays(tmp_path / "relays", 2) as started:
        yield started


def card_with_reach(agent: Agent, urls: list[str], *, label: str = "Bob") -> str:
    """The agent's card carrying its relays and its request key (specs/invitation.md key 10)."""
    key = MessageRequests(agent.store, agent.key).request_key
    invitation = Invitation.create(
        agent.key,
        now=int(datetime.now(UTC).timestamp()),
        lifetime=3600,
        label=label,
        reach=Reach(relays=tuple(urls), key=key),
    )
    return encode_token(invitation)


async def test_a_card_contact_is_messaged_at_once(tmp_path: Path, relays: list[LocalRelay]) -> None:
    alice = await Agent.create(tmp_path / "alice", passphrase=PASSPHRASE, kdf=CHEAP)
    bob = await Agent.create(tmp_path / "bob", passphrase=PASSPHRASE, kdf=CHEAP)
    urls = [relay.url for relay in relays]
    async with alice, bob:
        relay_settings.add(Settings(alice.store), urls)
        plain = bob.card(label="Bob")  # Bob has no relays yet: no reach, no request can go
        relay_settings.add(Settings(bob.store), urls)
        alice.accept_card(plain)
        await alice.send(bob.did, "queued")  # no session, no reach: it waits for a live one
        assert alice.queued(bob.did) == 1
        assert await bob.receive() == []
        alice.remove(bob.did)
        contact = alice.accept_card(card_with_reach(bob, urls))
        first = await alice.send(contact.did, "hello Bob")
        second = await alice.send(contact.did, "are you there?")  # the same session
        got = await bob.receive()
        texts = [(m.sender, m.text, m.request) for m in got if isinstance(m, MailboxMessage)]
        assert texts == [(alice.did, "hello Bob", True), (alice.did, "are you there?", True)]
        assert [m.id for m in got] == [first, second]
        assert await bob.receive() == []
        asker = bob.contact(alice.did)
        assert asker.name is None and not asker.is_verified
        reply = await bob.send(alice.did, "hi Alice")
        got = await alice.receive()
        assert [(m.sender, m.text) for m in got if isinstance(m, MailboxMessage)] == [
            (bob.did, "hi Alice")
        ]
        delivered = {m.id for m in got if isinstance(m, MailboxDelivered)}
        assert delivered == {first, second}
        got = await bob.receive()
        assert {m.id for m in got if isinstance(m, MailboxDelivered)} == {reply}
        assert alice.safety_number(bob.did) == bob.safety_number(alice.did)
        later = await alice.send(bob.did, "after the reply")
        got = await bob.receive()
        assert [(m.text, m.request) for m in got if isinstance(m, MailboxMessage)] == [
            ("after the reply", False)
        ]
        assert later


async def test_garbage_and_foreign_requests_to_the_request_key_change_nothing(
    tmp_path: Path, relays: list[LocalRelay]
) -> None:
    """Wraps to Bob's request key that are not requests for him (random bytes, a well-formed
    request for someone else, an oversized payload, a request whose frame was swapped) are
    refused on a real fetch: no contact, no session, nothing shown."""
    import os

    from identity.keys import IdentityKey
    from messaging.message_request import RequestItem, decode_request, encode_request, write_request
    from transport.nostr_envelope import seal_wrap
    from transport.nostr_relay import RelayPool

    bob = await Agent.create(tmp_path / "bob", passphrase=PASSPHRASE, kdf=CHEAP)
    urls = [relay.url for relay in relays]
    async with bob:
        relay_settings.add(Settings(bob.store), urls)
        key = MessageRequests(bob.store, bob.key).request_key
        carol, dave = IdentityKey.generate(), IdentityKey.generate()

        def item() -> RequestItem:
            return RequestItem(mid=os.urandom(16), at=1, text="hi", label="Carol")

        for_dave = write_request(carol, dave.did, item()).payload
        first, _ = decode_request(write_request(carol, bob.did, item()).payload)
        _, other_frame = decode_request(write_request(carol, bob.did, item()).payload)
        payloads = [
            os.urandom(500),
            for_dave,
            encode_request(first, other_frame),
            b"\x00" * (24 * 1024),
        ]
        async with RelayPool(urls) as pool:
            for payload in payloads:
                secret = os.urandom(32)
                await pool.publish(seal_wrap(payload, sender_secret=secret, recipient=key))
        assert await bob.receive() == []
        assert bob.contacts() == []
        count = bob.store.connection.execute("SELECT count(*) FROM sessions").fetchone()
        assert count == (0,)
        # The same fetch again, counted: each of the four was read and refused.
        route = bob._mailbox()
        assert route is not None
        async with route:
            done = await MessageRequests(bob.store, bob.key).collect(route, since=None, timeout=10)
        assert (done.refused, done.duplicates, done.accepted) == (4, 0, {})
        assert bob.contacts() == []
