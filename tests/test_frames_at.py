"""Text.at, the sender's clock when a text was typed (specs/frames.md sections 3 and 5b)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity import canonical
from messaging.frames import (
    MAX_TIME,
    Envelope,
    FrameError,
    Text,
    decode_frame,
    encode_envelope,
    encode_frame,
    encode_text_envelope,
)

# Hand-written from specs/frames.md s.5b: seq 5, "hi", mid = 16 zero bytes, at = 1765000000
# (0x6933_c340, a four-byte uint); "at" sorts first (shorter keys first).
AT = bytes.fromhex(
    "81 a5 62 6174 1a 6933c340 63 6d6964 50"
    + "00" * 16
    + "63 736571 05 64 74657874 62 6869 64 74797065 64 74657874"
)
AT_NEW = bytes.fromhex(
    "81 a6 62 6174 1a 6933c340 63 6d6964 50"
    + "00" * 16
    + "63 6e6577 f5 63 736571 05 64 74657874 62 6869 64 74797065 64 74657874"
)


def test_known_answers() -> None:
    model = Text(text="hi", mid=bytes(16), at=1_765_000_000)
    assert encode_frame([Envelope(5, model)]) == AT
    assert decode_frame(AT) == [Envelope(5, model)]
    assert decode_frame(AT)[0].message.at == 1_765_000_000
    assert b"\x81" + encode_text_envelope(5, "hi", mid=bytes(16), at=1_765_000_000) == AT
    new = Text(text="hi", mid=bytes(16), new=True, at=1_765_000_000)
    assert encode_frame([Envelope(5, new)]) == AT_NEW
    assert decode_frame(AT_NEW) == [Envelope(5, new)]
    assert b"\x81" + encode_text_envelope(5, "hi", mid=bytes(16), new=True, at=1_765_000_000) == (
        AT_NEW
    )


def test_a_text_without_at_still_parses() -> None:
    old = bytes.fromhex(
        "81 a4 63 6d6964 50"
        + "00" * 16
        + "63 736571 05 64 74657874 62 6869 64 74797065 64 74657874"
    )
    [envelope] = decode_frame(old)
    assert isinstance(envelope.message, Text) and envelope.message.at is None
    # and without a mid (the general decoder)
    frame = canonical.encode([{"seq": 5, "type": "text", "text": "hi", "at": 0}])
    [envelope] = decode_frame(frame)
    assert isinstance(envelope.message, Text) and envelope.message.at == 0


@pytest.mark.parametrize(
    "at",
    [None, -1, MAX_TIME + 1, 2**64 - 1, 1.5, True, "1765000000", b"\x00"],
    ids=["null", "negative", "after 9999", "huge", "float", "bool", "text", "bytes"],
)
def test_bad_times_are_frame_errors(at: object) -> None:
    frame = canonical.encode([{"seq": 5, "type": "text", "text": "hi", "mid": bytes(16), "at": at}])
    with pytest.raises(FrameError):
        decode_frame(frame)
    with pytest.raises(ValueError):
        Text(text="hi", mid=bytes(16), at=at)  # type: ignore[arg-type]
    if at is not None:  # (None is "absent" for the fast encoder)
        with pytest.raises(ValueError):
            encode_text_envelope(5, "hi", mid=bytes(16), at=at)  # type: ignore[arg-type]


def test_far_times_are_carried_as_given() -> None:
    """A time far in the past or the future is not refused (the peer's clock may be wrong);
    the receiver shows it and never orders by it."""
    for at in (0, MAX_TIME):
        [envelope] = decode_frame(b"\x81" + encode_text_envelope(1, "x", mid=bytes(16), at=at))
        assert isinstance(envelope.message, Text) and envelope.message.at == at


@given(
    seq=st.integers(0, 2**63 - 1),
    text=st.text(max_size=50),
    mid=st.binary(min_size=16, max_size=16),
    new=st.booleans(),
    at=st.none() | st.integers(0, MAX_TIME),
)
def test_round_trip(seq: int, text: str, mid: bytes, new: bool, at: int | None) -> None:
    fields: dict[str, object] = {"text": text, "mid": mid}
    fields |= {"new": True} if new else {}
    fields |= {"at": at} if at is not None else {}
    model = Text.model_validate(fields)
    encoded = encode_text_envelope(seq, text, mid=mid, new=new, at=at)
    assert encoded == encode_envelope(Envelope(seq, model))
    assert decode_frame(b"\x81" + encoded) == [Envelope(seq, model)]
