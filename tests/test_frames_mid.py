"""Text.mid, the stable message id (specs/frames.md sections 3 and 5a)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity import canonical
from messaging.frames import (
    Envelope,
    FrameError,
    Text,
    decode_frame,
    encode_envelope,
    encode_frame,
    encode_text_envelope,
)

# Hand-written from specs/frames.md s.5a: seq 5, "hi", mid = 16 zero bytes; keys in canonical
# order mid, seq, text, type.
WITH_MID = bytes.fromhex(
    "81 a4 63 6d6964 50" + "00" * 16 + "63 736571 05 64 74657874 62 6869 64 74797065 64 74657874"
)
WITHOUT_MID = bytes.fromhex("81 a3 63 736571 05 64 74657874 62 6869 64 74797065 64 74657874")
# The same text on its first transmission: `new` (true) sorts between mid and seq.
NEW = bytes.fromhex(
    "81 a5 63 6d6964 50"
    + "00" * 16
    + "63 6e6577 f5 63 736571 05 64 74657874 62 6869 64 74797065 64 74657874"
)


def test_known_answers() -> None:
    assert encode_frame([Envelope(5, Text(text="hi", mid=bytes(16)))]) == WITH_MID
    assert decode_frame(WITH_MID) == [Envelope(5, Text(text="hi", mid=bytes(16)))]
    assert encode_frame([Envelope(5, Text(text="hi"))]) == WITHOUT_MID  # absent, not null
    assert decode_frame(WITHOUT_MID) == [Envelope(5, Text(text="hi"))]
    assert encode_frame([Envelope(5, Text(text="hi", mid=bytes(16), new=True))]) == NEW
    assert decode_frame(NEW) == [Envelope(5, Text(text="hi", mid=bytes(16), new=True))]


@pytest.mark.parametrize(
    "fields",
    [
        {"mid": bytes(16), "new": False},
        {"mid": bytes(16), "new": None},
        {"mid": bytes(16), "new": 1},
        {"mid": bytes(16), "new": "true"},
        {"new": True},
    ],
    ids=["false", "null", "int", "text", "without mid"],
)
def test_new_is_true_with_a_mid_or_absent(fields: dict[str, object]) -> None:
    frame = canonical.encode([{"seq": 5, "type": "text", "text": "hi", **fields}])
    with pytest.raises(FrameError, match="new"):
        decode_frame(frame)
    with pytest.raises(ValueError):
        Text(text="hi", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "mid",
    [None, b"", bytes(15), bytes(17), "00" * 16, 0],
    ids=["null", "empty", "15 bytes", "17 bytes", "text", "int"],
)
def test_bad_mids_are_frame_errors(mid: object) -> None:
    frame = canonical.encode([{"seq": 5, "type": "text", "text": "hi", "mid": mid}])
    with pytest.raises(FrameError):
        decode_frame(frame)


def test_bad_mids_are_refused_locally() -> None:
    with pytest.raises(ValueError):
        Text(text="hi", mid=bytes(8))
    with pytest.raises(ValueError):
        Text(text="hi", mid=None)


@given(
    seq=st.integers(-1, 2**63)
    | st.sampled_from([23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32]),  # each head's length
    text=st.one_of(
        st.text(st.characters(codec=None), max_size=20),  # lone surrogates too
        st.sampled_from(["x" * 23, "x" * 24, "x" * 255, "x" * 256, "x" * 65535]),
        st.just("é" * 32768),  # 65536 bytes: the limit
        st.just("é" * 32768 + "x"),
    ),
    mid=st.one_of(st.binary(min_size=15, max_size=17), st.just(bytearray(16))),
    new=st.booleans(),
)
def test_the_text_fast_path_is_the_model(seq: int, text: str, mid: bytes, new: bool) -> None:
    """encode_text_envelope (the sender's hot path) gives the bytes encode_envelope gives for
    the model, and refuses what the model and the envelope refuse."""
    try:
        model = Text(text=text, mid=mid, new=True) if new else Text(text=text, mid=mid)
        expected: bytes | None = encode_envelope(Envelope(seq, model))
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            encode_text_envelope(seq, text, mid=mid, new=new)
    else:
        assert encode_text_envelope(seq, text, mid=mid, new=new) == expected


@pytest.mark.parametrize("seq", [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1])
@pytest.mark.parametrize("length", [0, 23, 24, 255, 256, 65535, 65536])
def test_the_text_fast_path_at_every_head_length(seq: int, length: int) -> None:
    """Both sides of each CBOR head size (1, 2, 3, 5 and 9 bytes) for `seq` and the text's
    length: the bytes of the model's encoding, which the receiver's fast path reads back."""
    for new in (False, True):
        text = "x" * length
        model = Text(text=text, mid=bytes(16), new=True) if new else Text(text=text, mid=bytes(16))
        encoded = encode_text_envelope(seq, text, mid=bytes(16), new=new)
        assert encoded == encode_envelope(Envelope(seq, model))
        assert decode_frame(b"\x81" + encoded) == [Envelope(seq, model)]
