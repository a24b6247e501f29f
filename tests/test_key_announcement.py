"""Key announcements (specs/frames.md section 4a): after reading a frame with messages, a side
with nothing to send gives the peer its new ratchet key in an empty frame, so that the peer's
DH ratchet step is done before the next message arrives instead of while it waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging import ratchet
from messaging.channel import (
    ChannelState,
    Event,
    MessageReceived,
    ReceiptReceived,
    SecureChannel,
)
from messaging.frames import Receipt, Text
from tests.support.loopback import ChannelPair


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the X25519 exchanges of the ratchet (one item per exchange)."""
    calls: list[int] = []
    real = ratchet._dh

    def counted(private: ratchet.X25519PrivateKey, public: bytes) -> bytes:
        calls.append(1)
        return real(private, public)

    monkeypatch.setattr(ratchet, "_dh", counted)
    yield calls


def deliver(sender: SecureChannel, receiver: SecureChannel) -> list[Event]:
    return [event for frame in sender.data_to_send() for event in receiver.receive(frame)]


def texts(events: list[Event]) -> list[str]:
    return [
        e.message.text
        for e in events
        if isinstance(e, MessageReceived) and isinstance(e.message, Text)
    ]


def answer(channel: SecureChannel, events: list[Event]) -> bytes | None:
    """What didlink's node does once a receive step is over: a receipt for the texts, the next
    send's key work, an announcement if nothing is queued, the next receive's key work."""
    ids = [e.seq for e in events if isinstance(e, MessageReceived)]
    if ids:
        channel.send(Receipt(ids=ids))
    channel.prepare_send()
    announcement = channel.key_announcement()
    if announcement is not None:
        channel.prepare_send()
    channel.prepare_receive()
    return announcement


def ping(pair: ChannelPair, text: str) -> None:
    """a's text to b, b's receipt to a, and a's announcement (if any) to b."""
    pair.a.send(Text(text=text))
    events = deliver(pair.a, pair.b)
    assert texts(events) == [text]
    assert answer(pair.b, events) is None  # the receipt carries b's new key
    receipts = deliver(pair.b, pair.a)
    assert any(isinstance(e, ReceiptReceived) for e in receipts)
    announcement = answer(pair.a, receipts)
    if announcement is not None:
        assert pair.b.receive(announcement) == []  # no events...
        assert answer(pair.b, []) is None  # ...and never an announcement in return


def test_after_an_announcement_the_next_message_is_read_without_a_dh_step(
    exchanges: list[int],
) -> None:
    pair = ChannelPair.create()
    ping(pair, "first")
    pair.a.send(Text(text="second"))
    [frame] = pair.a.data_to_send()
    exchanges.clear()
    assert texts(pair.b.receive(frame)) == ["second"]
    assert exchanges == []  # the announcement's DH step came before


def test_without_the_announcement_the_next_message_waits_on_a_dh_step(
    exchanges: list[int],
) -> None:
    """The same exchange with the announcement dropped: the message then carries the new key."""
    pair = ChannelPair.create()
    pair.a.send(Text(text="first"))
    events = deliver(pair.a, pair.b)
    answer(pair.b, events)
    receipts = deliver(pair.b, pair.a)
    assert answer(pair.a, receipts) is not None  # dropped on the way
    pair.a.send(Text(text="second"))
    [frame] = pair.a.data_to_send()
    exchanges.clear()
    assert texts(pair.b.receive(frame)) == ["second"]
    assert len(exchanges) == 1  # the receiving half of b's DH ratchet step
    assert pair.b.session.skipped_key_count == 1  # the dropped announcement's key, kept


def test_a_conversation_with_announcements_delivers_everything_in_order() -> None:
    pair = ChannelPair.create()
    for i in range(20):
        ping(pair, f"ping {i}")
    pair.b.send(Text(text="reply"))
    assert texts(deliver(pair.b, pair.a)) == ["reply"]
    assert pair.a.session.skipped_key_count == pair.b.session.skipped_key_count == 0


def test_no_announcement_while_something_is_queued_or_after_it_was_sent() -> None:
    pair = ChannelPair.create()
    pair.a.send(Text(text="hi"))
    deliver(pair.a, pair.b)
    pair.b.send(Text(text="queued"))
    pair.b.prepare_send()
    assert pair.b.key_announcement() is None  # the queued text will carry the key
    deliver(pair.b, pair.a)
    assert pair.b.key_announcement() is None  # ...and it did


def test_at_most_one_announcement_per_frame_read() -> None:
    pair = ChannelPair.create()
    pair.a.send(Text(text="hi"))
    events = deliver(pair.a, pair.b)
    assert texts(events) == ["hi"]
    pair.b.prepare_send()
    assert pair.b.key_announcement() is not None
    assert pair.b.key_announcement() is None


def test_no_announcement_before_a_frame_with_messages_was_read() -> None:
    pair = ChannelPair.create()
    assert pair.a.key_announcement() is None  # nothing read yet
    assert pair.b.key_announcement() is None  # nor can the responder send yet
    pair.a.send(Text(text="hi"))
    deliver(pair.a, pair.b)
    announcement = pair.b.key_announcement()
    assert announcement is not None
    assert pair.a.receive(announcement) == []
    assert pair.a.key_announcement() is None  # an empty frame asks for none


def test_no_announcement_once_the_key_was_carried_on_this_chain() -> None:
    pair = ChannelPair.create()
    ping(pair, "first")
    pair.b.send(Receipt(ids=[1]))  # frames with messages that a does not answer
    [first] = pair.b.data_to_send()
    pair.b.send(Receipt(ids=[1]))
    [second] = pair.b.data_to_send()  # the same sending chain as the first
    announcement = answer(pair.a, pair.a.receive(first))
    assert announcement is not None  # a DH step for a: its new key goes out
    assert pair.b.receive(announcement) == []
    assert pair.a.receive(second)  # the same chain of b's: no DH step
    pair.a.prepare_send()
    assert pair.a.key_announcement() is None  # the announcement already carried a's key


def test_no_announcement_from_a_closed_channel() -> None:
    pair = ChannelPair.create()
    pair.a.send(Text(text="hi"))
    deliver(pair.a, pair.b)
    pair.b.close("bye")
    deliver(pair.b, pair.a)
    assert pair.b.state is ChannelState.CLOSED
    assert pair.b.key_announcement() is None
    assert pair.a.state is ChannelState.CLOSED
    assert pair.a.key_announcement() is None


# --- property: any conversation stays quiet and whole -------------------------------------

moves = st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 3)), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(moves)
def test_any_conversation_delivers_everything_and_announcements_never_bounce(
    script: list[tuple[str, int]],
) -> None:
    """Each move: one side sends `count` texts (0: nothing), then frames flow both ways, each
    receive step answered as didlink's node answers it, until nothing is left to send. Every
    text arrives once, in order; a side announces at most once per frame with messages it read;
    the pair always goes quiet."""
    pair = ChannelPair.create()
    sides = {"a": pair.a, "b": pair.b}
    sent: dict[str, list[str]] = {"a": [], "b": []}
    got: dict[str, list[str]] = {"a": [], "b": []}
    read_with_messages = {"a": 0, "b": 0}
    announced = {"a": 0, "b": 0}
    for number, (who, count) in enumerate(script):
        for i in range(count):
            text = f"{who}{number}.{i}"
            sides[who].send(Text(text=text))
            sent[who].append(text)
        for _ in range(100):
            moved = False
            for me, peer in (("a", "b"), ("b", "a")):
                outgoing = sides[me].data_to_send()
                moved = moved or bool(outgoing)
                for frame in outgoing:
                    events = sides[peer].receive(frame)
                    got[peer].extend(texts(events))
                    read_with_messages[peer] += bool(events)
                    announcement = answer(sides[peer], events)
                    if announcement is not None:
                        announced[peer] += 1
                        assert sides[me].receive(announcement) == []
                        assert answer(sides[me], []) is None
            if not moved:
                break
        else:
            raise AssertionError("the pair never went quiet")
    assert got["b"] == sent["a"]
    assert got["a"] == sent["b"]
    for side in "ab":
        assert announced[side] <= read_with_messages[side]
