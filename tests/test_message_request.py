"""Message requests (issue 25 point 7; specs/first-message.md §5-§7): the REQUEST codec and its
negative cases, a Hypothesis round trip, and what the recipient's store keeps or refuses
(replays, a sender who already has a session, both sending at once, the pending cap, garbage),
without relays: `MessageRequests.take` is what `receive` calls for each wrap's payload."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from didlink.mailbox import requests as mr
from didlink.mailbox.requests import MessageRequests, Outcome
from didlink.mailbox.store import MailboxStore
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store
from identity import canonical
from identity.contact import Verification
from identity.invitation import Reach
from identity.keys import IdentityKey
from messaging.alias import CARD_REACH_CONTEXT, alias_public, reach_secret
from messaging.errors import CryptoFailure, RemoteProtocolError
from messaging.first_message import MAX_FIRST_MESSAGE
from messaging.mailbox import MailboxSession, MailboxText
from messaging.message_request import (
    MAX_REQUEST,
    MessageRequestError,
    RequestItem,
    decode_request,
    decode_request_item,
    encode_request,
    encode_request_item,
    read_request,
    write_request,
)

NOW = datetime(2026, 12, 8, 5, 0, tzinfo=UTC)
ALICE = IdentityKey(bytes([1]) * 32)
BOB = IdentityKey(bytes([2]) * 32)
CAROL = IdentityKey(bytes([3]) * 32)
RELAYS = ("ws://127.0.0.1:7001", "wss://relay.example.org")
REACH = Reach(relays=RELAYS, key=alias_public(reach_secret(ALICE.seed, CARD_REACH_CONTEXT)))


def _item(text: str = "hello Bob", *, label: str | None = "Alice") -> RequestItem:
    mid = os.urandom(16)
    return RequestItem(mid=mid, at=int(NOW.timestamp()), text=text, label=label, reach=REACH)


# --- the codec ------------------------------------------------------------------------------


def test_a_request_opens_for_its_recipient_only() -> None:
    item = _item()
    written = write_request(ALICE, BOB.did, item)
    opened = read_request(BOB, written.payload)
    assert opened.sender == ALICE.did and opened.item == item
    with pytest.raises(CryptoFailure):
        read_request(CAROL, written.payload)
    # both ends now hold the two sides of one persistent session
    alice, bob = MailboxSession(written.state), MailboxSession(opened.state)
    later = MailboxText(mid=os.urandom(16), at=1, text="a second text before any reply")
    assert bob.open(alice.seal(later)) == later
    reply = MailboxText(mid=os.urandom(16), at=2, text="hi Alice")
    assert alice.open(bob.seal(reply)) == reply
    assert alice.sending_aliases(7).to_public == bob.receiving_aliases(7).to_public


def test_the_stored_session_never_holds_the_recipients_identity_key() -> None:
    written = write_request(ALICE, BOB.did, _item())
    opened = read_request(BOB, written.payload)
    assert opened.state.ratchet.dhs_private != BOB.x25519_private


def test_every_changed_byte_is_refused() -> None:
    payload = write_request(ALICE, BOB.did, _item("x")).payload
    for index in range(0, len(payload), 7):
        changed = bytearray(payload)
        changed[index] ^= 0x01
        with pytest.raises((RemoteProtocolError, CryptoFailure)):
            read_request(BOB, bytes(changed))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00",
        b"\xff" * 64,
        canonical.encode([b"a", b"b"]),
        canonical.encode({0: b"a"}),
        canonical.encode({0: b"a", 1: b"b", 2: b"c"}),
        canonical.encode({0: "text", 1: b"b"}),
        canonical.encode({0: b"a", 1: 5}),
        canonical.encode({0: b"a", 1: b""}),
        canonical.encode({0: b"a" * (MAX_FIRST_MESSAGE + 1), 1: b"b"}),
        canonical.encode({0: b"", 1: b"b"}),
        b"\x00" * (MAX_REQUEST + 1),
    ],
)
def test_malformed_requests_are_refused_before_any_cryptography(payload: bytes) -> None:
    with pytest.raises(MessageRequestError):
        decode_request(payload)


def test_a_first_message_from_another_sender_with_a_copied_frame_is_refused() -> None:
    theirs = write_request(ALICE, BOB.did, _item())
    mine = write_request(CAROL, BOB.did, _item())
    first, _frame = decode_request(mine.payload)
    _first, frame = decode_request(theirs.payload)
    with pytest.raises(CryptoFailure):  # the frame belongs to another session
        read_request(BOB, encode_request(first, frame))


@pytest.mark.parametrize(
    "value",
    [
        {"t": "text", "mid": bytes(16), "at": 1, "text": "x"},
        {"t": "request", "mid": bytes(15), "at": 1, "text": "x"},
        {"t": "request", "mid": bytes(16), "at": -1, "text": "x"},
        {"t": "request", "mid": bytes(16), "at": 1, "text": "x", "extra": 1},
        {"t": "request", "mid": bytes(16), "at": 1, "text": "x" * 17000},
        {"t": "request", "mid": bytes(16), "at": 1, "text": "x", "label": "a\u202eb"},
        {"t": "request", "mid": bytes(16), "at": 1, "text": "x", "label": None},
        {"t": "request", "mid": bytes(16), "at": 1, "text": "x", "reach": {0: [], 1: bytes(32)}},
        {"t": "request", "mid": bytes(16), "at": 1, "text": "x", "reach": {0: ["http://a"]}},
        {
            "t": "request",
            "mid": bytes(16),
            "at": 1,
            "text": "x",
            "reach": {0: ["ws://203.0.113.1"], 1: REACH.key},
        },
        {
            "t": "request",
            "mid": bytes(16),
            "at": 1,
            "text": "x",
            "reach": {0: ["wss://a.example"] * 5, 1: REACH.key},
        },
        {
            "t": "request",
            "mid": bytes(16),
            "at": 1,
            "text": "x",
            "reach": {0: ["wss://a.example"], 1: bytes(32)},  # not on the curve
        },
        ["request"],
    ],
)
def test_malformed_request_items_are_refused(value: object) -> None:
    with pytest.raises(MessageRequestError):
        decode_request_item(canonical.encode(value))


_labels = st.none() | st.text(
    alphabet=st.characters(categories=("L", "N", "Zs")), min_size=1, max_size=20
).filter(lambda s: s.strip() == s and s.strip() != "")
_urls = st.lists(
    st.sampled_from(["ws://127.0.0.1:7001", "wss://relay.example.org", "wss://r.example/x"]),
    min_size=1,
    max_size=3,
    unique=True,
)


@settings(max_examples=40, deadline=None)
@given(
    mid=st.binary(min_size=16, max_size=16),
    at=st.integers(min_value=0, max_value=2**40),
    text=st.text(max_size=200).filter(lambda s: "\x00" not in s),
    label=_labels,
    urls=st.none() | _urls,
)
def test_request_items_round_trip(
    mid: bytes, at: int, text: str, label: str | None, urls: list[str] | None
) -> None:
    try:
        item = RequestItem(
            mid=mid,
            at=at,
            text=text,
            label=label,
            reach=None if urls is None else Reach(relays=tuple(urls), key=REACH.key),
        )
    except ValueError:
        return  # (a text or label that the models refuse: not an item)
    data = encode_request_item(item)
    assert decode_request_item(data) == item
    payload = encode_request(b"f" * 100, b"frame")
    assert decode_request(payload) == (b"f" * 100, b"frame")


# --- the recipient's store ------------------------------------------------------------------


@pytest.fixture
def bob(tmp_path: Path) -> Iterator[MessageRequests]:
    with Store(tmp_path / "bob.sqlite3") as store:
        yield MessageRequests(store, BOB)


def _store(requests: MessageRequests) -> Store:
    return requests._store


def _counts(store: Store) -> tuple[int, ...]:
    tables = ("contacts", "sessions", "inbox", "message_requests", "first_messages")
    return tuple(
        store.connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables
    )


def test_a_request_makes_an_unverified_contact_with_a_suggested_name(
    bob: MessageRequests,
) -> None:
    item = _item("hello Bob")
    taken = bob.take(write_request(ALICE, BOB.did, item).payload, now=NOW)
    assert taken.outcome is Outcome.ACCEPTED and taken.sender == ALICE.did
    contact = _store(bob).get_contact(ALICE.did)
    assert contact is not None
    assert contact.name is None and contact.suggested_name == "Alice"
    assert contact.verification is Verification.UNVERIFIED
    assert bob.pending() == {ALICE.did}
    reach = bob.reach(ALICE.did)
    assert reach is not None and reach.relays == RELAYS and reach.key == REACH.key
    box = MailboxStore(_store(bob), Sealer(BOB))
    [entry] = box.inbox()
    assert (entry.peer_did, entry.text, entry.message_id) == (ALICE.did, "hello Bob", item.mid)
    bob.answered(ALICE.did)
    assert bob.pending() == set()


def test_a_replayed_request_changes_nothing(bob: MessageRequests) -> None:
    payload = write_request(ALICE, BOB.did, _item()).payload
    assert bob.take(payload, now=NOW).outcome is Outcome.ACCEPTED
    before = _counts(_store(bob))
    session = MailboxStore(_store(bob), Sealer(BOB)).session(ALICE.did)
    assert session is not None
    assert bob.take(payload, now=NOW).outcome is Outcome.DUPLICATE
    assert _counts(_store(bob)) == before
    after = MailboxStore(_store(bob), Sealer(BOB)).session(ALICE.did)
    assert after is not None and after.to_state() == session.to_state()


def test_a_new_request_from_a_sender_with_a_session_is_refused(bob: MessageRequests) -> None:
    assert bob.take(write_request(ALICE, BOB.did, _item()).payload, now=NOW).outcome is (
        Outcome.ACCEPTED
    )
    state = MailboxStore(_store(bob), Sealer(BOB)).session(ALICE.did)
    assert state is not None
    before = _counts(_store(bob))
    again = bob.take(write_request(ALICE, BOB.did, _item("again")).payload, now=NOW)
    assert again.outcome is Outcome.REFUSED and "session" in again.why
    assert _counts(_store(bob)) == before
    kept = MailboxStore(_store(bob), Sealer(BOB)).session(ALICE.did)
    assert kept is not None and kept.to_state() == state.to_state()


@pytest.mark.parametrize(
    "payload",
    [b"", b"garbage", os.urandom(300), canonical.encode({0: os.urandom(200), 1: os.urandom(90)})],
)
def test_garbage_changes_nothing(bob: MessageRequests, payload: bytes) -> None:
    before = _counts(_store(bob))
    assert bob.take(payload, now=NOW).outcome is Outcome.REFUSED
    assert _counts(_store(bob)) == before


def test_a_request_for_someone_else_changes_nothing(bob: MessageRequests) -> None:
    before = _counts(_store(bob))
    taken = bob.take(write_request(ALICE, CAROL.did, _item()).payload, now=NOW)
    assert taken.outcome is Outcome.REFUSED
    assert _counts(_store(bob)) == before


def test_a_suspect_sender_is_refused(bob: MessageRequests) -> None:
    _store(bob).record_session(ALICE.did, verified=False, now=NOW)
    before = _counts(_store(bob))
    taken = bob.take(write_request(ALICE, BOB.did, _item()).payload, now=NOW)
    assert taken.outcome is Outcome.REFUSED
    assert _counts(_store(bob)) == before


def test_pending_requests_are_capped(bob: MessageRequests, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mr, "MAX_PENDING", 3)
    senders = [IdentityKey(bytes([10 + i]) * 32) for i in range(5)]
    outcomes = [
        bob.take(write_request(s, BOB.did, _item()).payload, now=NOW).outcome for s in senders
    ]
    assert outcomes == [Outcome.ACCEPTED] * 3 + [Outcome.REFUSED] * 2
    assert len(bob.pending()) == 3
    bob.answered(senders[0].did)  # answering one makes room for one more
    late = bob.take(write_request(senders[3], BOB.did, _item()).payload, now=NOW)
    assert late.outcome is Outcome.ACCEPTED


def test_a_known_contact_without_a_session_is_not_a_request(bob: MessageRequests) -> None:
    _store(bob).add_contact(ALICE.did, name="Alice", now=NOW)
    taken = bob.take(write_request(ALICE, BOB.did, _item(label="Mallory")).payload, now=NOW)
    assert taken.outcome is Outcome.ACCEPTED
    contact = _store(bob).get_contact(ALICE.did)
    assert contact is not None and contact.name == "Alice" and contact.suggested_name is None
    assert bob.pending() == set()


def test_both_sending_a_request_at_once_agree_on_one_session(tmp_path: Path) -> None:
    """Alice and Bob hold each other's cards and each sends a request before either fetched:
    the request with the smaller handshake hash wins on both sides, so they end with the two
    halves of one session (and the loser's text, still in its outbox, is wrapped again)."""
    with Store(tmp_path / "a.sqlite3") as a_store, Store(tmp_path / "b.sqlite3") as b_store:
        alice, bob = MessageRequests(a_store, ALICE), MessageRequests(b_store, BOB)
        a_store.add_contact(BOB.did, now=NOW)
        b_store.add_contact(ALICE.did, now=NOW)
        bob_key = alias_public(reach_secret(BOB.seed, CARD_REACH_CONTEXT))
        alice.set_reach(BOB.did, RELAYS, bob_key, now=NOW)
        bob.set_reach(ALICE.did, RELAYS, REACH.key, now=NOW)
        a_mid = alice.prepare(
            BOB.did,
            "from Alice",
            label=None,
            own_relays=list(RELAYS),
            expires_in=30 * 86400,
            now=NOW,
        )
        b_mid = bob.prepare(
            ALICE.did,
            "from Bob",
            label=None,
            own_relays=list(RELAYS),
            expires_in=30 * 86400,
            now=NOW,
        )
        assert a_mid and b_mid
        a_box, b_box = MailboxStore(a_store, Sealer(ALICE)), MailboxStore(b_store, Sealer(BOB))
        a_payload = _request_payload(a_box, BOB.did, bob_key, b_store, BOB)
        b_payload = _request_payload(b_box, ALICE.did, REACH.key, a_store, ALICE)
        got_a = bob.take(a_payload, now=NOW)
        got_b = alice.take(b_payload, now=NOW)
        assert {got_a.outcome, got_b.outcome} == {Outcome.ACCEPTED, Outcome.REFUSED}
        a_session, b_session = a_box.session(BOB.did), b_box.session(ALICE.did)
        assert a_session is not None and b_session is not None
        assert a_session.to_state().handshake_hash == b_session.to_state().handshake_hash
        assert a_session.initiator != b_session.initiator
        text = MailboxText(mid=os.urandom(16), at=1, text="works")
        assert b_session.open(a_session.seal(text)) == text


def _request_payload(
    box: MailboxStore,
    peer: str,
    recipient_key: bytes,
    recipient_store: Store,
    recipient: IdentityKey,
) -> bytes:
    """The payload of the request wrap `box` keeps for `peer`, opened as the recipient would."""
    from transport.nostr_envelope import open_wrap
    from transport.nostr_event import loads_strict, parse_event

    [wrap] = box.wraps(peer)
    event = parse_event(loads_strict(wrap.event_json), max_content_chars=100_000)
    secret = reach_secret(recipient.seed, CARD_REACH_CONTEXT)
    assert alias_public(secret) == recipient_key
    # The wrap was sealed at the real time (its created_at drawn from the two days before):
    # opened at the real time too, not at the test's fixed NOW (a seal made after NOW + 60 s
    # would read as dated in the future).
    return open_wrap(event, recipient_secret=secret, now=int(time.time())).payload
