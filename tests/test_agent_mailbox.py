"""`didlink.Agent` and the mailbox (issue 25): `send` to a contact who is not connected goes by
mailbox when relays are configured; `receive` returns what arrived, once. Two real relays on
loopback (tests/support/nostr_relays.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink import Agent, MailboxDelivered, MailboxMessage
from didlink.mailbox import relays as relay_settings
from didlink.mailbox.store import MailboxStore
from didlink.profile.outbox import Outbox
from didlink.profile.sealing import Sealer
from didlink.profile.settings import Settings
from messaging.mailbox import new_session_state
from tests.support.mailbox_pair import handshake_pair
from tests.support.nostr_relays import LocalRelay, local_relays
from tests.test_cli_invite import CHEAP_KDF as CHEAP

PASSPHRASE = "correct horse battery staple"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[LocalRelay]]:
    with local_relays(tmp_path / "relays", 2) as started:
        yield started


async def test_send_goes_by_mailbox_and_receive_returns_it_once(
    tmp_path: Path, relays: list[LocalRelay]
) -> None:
    alice = await Agent.create(tmp_path / "alice", passphrase=PASSPHRASE, kdf=CHEAP)
    bob = await Agent.create(tmp_path / "bob", passphrase=PASSPHRASE, kdf=CHEAP)
    async with alice, bob:
        initiator, responder = handshake_pair(b"agent")
        for me, other, result in ((alice, bob, initiator), (bob, alice, responder)):
            me.store.add_contact(other.did, now=NOW)
            MailboxStore(me.store, Sealer(me.key)).install_session(
                other.did, new_session_state(result), now=NOW
            )
        # no relay: queued only, as before
        queued = await alice.send(bob.did, "before any relay")
        assert alice.queued(bob.did) == 1
        assert await bob.receive() == []
        for agent in (alice, bob):
            relay_settings.add(Settings(agent.store), [relay.url for relay in relays])
        mid = await alice.send(bob.did, "by mailbox")  # also wraps the one queued before
        got = await bob.receive()
        assert [(m.sender, m.text) for m in got if isinstance(m, MailboxMessage)] == [
            (alice.did, "before any relay"),
            (alice.did, "by mailbox"),
        ]
        assert [m.id for m in got] == [queued, mid]
        assert all(m.sent_at is not None for m in got if isinstance(m, MailboxMessage))
        assert await bob.receive() == []
        delivered = await alice.receive()
        assert sorted(d.id for d in delivered if isinstance(d, MailboxDelivered)) == sorted(
            [queued, mid]
        )
        assert Outbox(alice.store, Sealer(alice.key)).count(bob.did) == 0
