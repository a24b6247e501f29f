"""Chunking and credit flow control (transport/framing.py, specs/transport.md §5), sans-IO."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport.errors import ProtocolViolation, TransportUsageError
from transport.framing import KEEPALIVE_MESSAGE, ChannelFraming, credit_message, split_message


def test_one_megabyte_is_split_into_bounded_chunks() -> None:
    data = os.urandom(1_000_000)
    chunks = list(split_message(data))
    assert len(chunks) == -(-1_000_000 // 65535)  # ceil: 65535 payload bytes per chunk
    assert all(len(c) <= 65536 for c in chunks)
    assert [c[0] for c in chunks] == [0] * (len(chunks) - 1) + [1]
    assert b"".join(c[1:] for c in chunks) == data


def test_exact_multiple_and_empty_message() -> None:
    assert list(split_message(b"ab", chunk_size=3)) == [b"\x01ab"]
    assert list(split_message(b"abc", chunk_size=3)) == [b"\x00ab", b"\x01c"]
    assert list(split_message(b"")) == [b"\x01"]


def test_credit_message_bytes() -> None:
    assert credit_message(0x01020304) == b"\x02\x01\x02\x03\x04"
    with pytest.raises(TransportUsageError):
        credit_message(0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(2, 40))
def test_reassembly_round_trip(messages: list[bytes], chunk_size: int) -> None:
    sender = ChannelFraming(window=1 << 20, chunk_size=chunk_size)
    receiver = ChannelFraming(window=1 << 20, chunk_size=chunk_size)
    out = []
    for message in messages:
        for chunk in sender.chunks(message):
            got = receiver.receive(chunk)
            if got is not None:
                out.append(got)
    assert out == messages


def test_credit_blocks_sender_and_consumption_releases_it() -> None:
    sender = ChannelFraming(window=100)
    receiver = ChannelFraming(window=100)
    inbox = []
    for _ in range(2):
        assert sender.can_start_message()
        inbox += [m for c in sender.chunks(b"x" * 60) if (m := receiver.receive(c)) is not None]
    assert sender.send_credit == 100 - 2 * 61
    assert not sender.can_start_message()
    # Starting a third message anyway is a protocol violation the receiver detects.
    with pytest.raises(ProtocolViolation, match="without flow-control credit"):
        receiver.receive(b"\x01z")
    # The reader takes one message: 61 >= 100 // 4, so the credit is due at once.
    credit = receiver.consumed(len(inbox.pop(0)), queue_empty=False)
    assert credit == credit_message(61)
    assert sender.receive(credit) is None  # a credit is not an application message
    assert sender.send_credit == 100 - 61
    assert sender.can_start_message()


def _deliver(sender: ChannelFraming, receiver: ChannelFraming, size: int) -> bytes:
    """One message of `size` bytes from `sender` through `receiver`'s reassembly."""
    out = [m for c in sender.chunks(b"m" * size) if (m := receiver.receive(c)) is not None]
    assert out == [b"m" * size]
    return out[0]


def test_a_quarter_of_the_window_consumed_goes_back_at_once() -> None:
    sender, receiver = ChannelFraming(window=400), ChannelFraming(window=400)
    sizes = [20] * 5  # costs 21 each: 84 after four, then 105 >= 400 // 4
    for size in sizes:
        _deliver(sender, receiver, size)
    answers = [receiver.consumed(size, queue_empty=False) for size in sizes]
    assert answers == [None] * 4 + [credit_message(105)]


def test_an_idle_reader_keeps_small_credit_while_the_sender_has_plenty() -> None:
    """A chat message costs no CREDIT of its own: 379 of 400 are left, as the receiver counts."""
    sender, receiver = ChannelFraming(window=400), ChannelFraming(window=400)
    _deliver(sender, receiver, 20)
    assert receiver.consumed(20, queue_empty=True) is None
    assert receiver.return_pending() is None


def test_an_idle_reader_returns_all_pending_credit_when_the_sender_may_be_short() -> None:
    sender, receiver = ChannelFraming(window=400), ChannelFraming(window=400)
    assert receiver.return_pending() is None  # nothing consumed: no CREDIT of 0
    for _ in range(50):  # 50 x 4 = 200: exactly half the window left, not yet short
        _deliver(sender, receiver, 3)
    assert all(receiver.consumed(3, queue_empty=False) is None for _ in range(20))
    assert receiver.return_pending() is None
    _deliver(sender, receiver, 3)  # 196 left: under half
    assert receiver.consumed(3, queue_empty=False) is None  # 84 pending, more queued
    credit = receiver.return_pending()  # idle
    assert credit == credit_message(84)
    assert sender.receive(credit) is None and sender.send_credit == 400 - 204 + 84
    assert receiver.return_pending() is None
    # 280 left as the receiver counts now: an emptied queue keeps the next 4 for later.
    assert receiver.consumed(3, queue_empty=True) is None


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(8, 2000),
    sizes=st.lists(st.integers(0, 700), min_size=1, max_size=60),
    reads=st.lists(st.integers(1, 5), min_size=1, max_size=60),
)
def test_a_blocked_sender_is_always_released_once_its_messages_are_read(
    window: int, sizes: list[int], reads: list[int]
) -> None:
    """Whatever the message sizes and however the reader batches its reads, the sender never
    waits for credit once everything it sent has been read and the reader went idle."""
    sender = ChannelFraming(window=window, max_message_size=700)
    receiver = ChannelFraming(window=window, max_message_size=700)
    queue: list[bytes] = []
    todo = list(sizes)
    batches = iter(reads * (len(sizes) + 1))
    while todo or queue:
        while todo and sender.can_start_message():
            queue.append(_deliver(sender, receiver, todo.pop(0)))
        for _ in range(min(next(batches), len(queue))):
            credit = receiver.consumed(len(queue.pop(0)), queue_empty=not queue)
            if credit is not None:
                sender.receive(credit)
        if not queue:
            credit = receiver.return_pending()
            if credit is not None:
                sender.receive(credit)
            assert not todo or sender.can_start_message()  # else: stuck for ever
    assert sender.send_credit <= window


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"", "empty data-channel"),
        (b"\x07abc", "unknown chunk type"),
        (b"\x00", "empty continuation"),
        (b"\x02\x00\x00\x01", "wrong length"),
        (b"\x02\x00\x00\x00\x00", "more credit"),
        (b"\x02\x00\x00\x00\x01", "more credit"),  # the window is already full
        (b"\x03\x00", "keepalive with a body"),
    ],
)
def test_receive_negative(raw: bytes, needle: str) -> None:
    with pytest.raises(ProtocolViolation, match=needle):
        ChannelFraming(window=100).receive(raw)


def test_oversized_message_is_rejected_on_both_sides() -> None:
    framing = ChannelFraming(window=100, max_message_size=10, chunk_size=4)
    with pytest.raises(TransportUsageError):
        framing.chunks(b"x" * 11)
    for _ in range(3):
        framing.receive(b"\x00abc")
    with pytest.raises(ProtocolViolation, match="10-byte limit"):
        framing.receive(b"\x00abc")


def test_keepalive_is_one_byte_and_changes_nothing() -> None:
    """0x03 alone (specs/transport.md §5.1), even between two chunks of a message."""
    assert KEEPALIVE_MESSAGE == b"\x03"
    framing = ChannelFraming(window=100, chunk_size=4)
    assert framing.receive(b"\x00abc") is None
    assert framing.receive(KEEPALIVE_MESSAGE) is None
    assert framing.receive(b"\x01de") == b"abcde"
    assert framing.send_credit == 100


def test_liveness_timers_are_checked() -> None:
    from transport import Liveness

    for bad in (
        {"keepalive": 0.0},
        {"keepalive": 60.0, "idle_timeout": 60.0},
        {"consent_interval": 30.0},
        {"consent_retransmissions": -1},
    ):
        with pytest.raises(ValueError):
            Liveness(**bad)
