"""The receiver's fast path for a frame of one chat message (`frames._decode_lone_text`).

It must accept only what the general decoder (`frames._decode_any`: cbor2, the canonical
re-encoding check, pydantic) accepts, as the same value, and leave everything else to it. The
general decoder is the oracle here: valid frames of every length form, then mutated and
arbitrary bytes behind the fast path's own prefix.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from messaging import frames
from messaging.frames import Envelope, FrameError, Text


def _general(data: bytes) -> list[Envelope] | None:
    """The general decoder's result, or None where it refuses the frame."""
    try:
        return frames._decode_any(data)
    except FrameError:
        return None


def _same(fast: Envelope, general: list[Envelope]) -> bool:
    """Equal envelopes whose texts record the same fields as set (pydantic's `==` ignores it)."""
    return [fast] == general and (
        fast.message.model_fields_set == general[0].message.model_fields_set
    )


def _text_frame(seq: int, text: str, mid: bytes, new: bool, at: int | None = None) -> bytes:
    return frames.join_frame([frames.encode_text_envelope(seq, text, mid=mid, new=new, at=at)])


_SEQS = st.sampled_from(
    [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, frames.MAX_SEQ]
) | st.integers(0, frames.MAX_SEQ)
_ATS = (
    st.none()
    | st.sampled_from([0, 23, 24, 2**32 - 1, 2**32, frames.MAX_TIME])
    | st.integers(0, frames.MAX_TIME)
)
_TEXTS = st.text(max_size=300) | st.sampled_from(
    ["", "x" * 23, "x" * 24, "x" * 255, "x" * 256, "é" * 32767, "x" * 65535]
)


@settings(max_examples=300, deadline=None)
@given(
    seq=_SEQS,
    text=_TEXTS,
    mid=st.binary(min_size=16, max_size=16),
    new=st.booleans(),
    at=_ATS,
)
def test_every_text_frame_the_sender_makes_takes_the_fast_path(
    seq: int, text: str, mid: bytes, new: bool, at: int | None
) -> None:
    data = _text_frame(seq, text, mid, new, at)
    fast = frames._decode_lone_text(data)
    assert fast is not None
    assert _same(fast, frames._decode_any(data))
    assert frames.decode_frame(data) == [fast]


def _mutate(data: bytes, where: int, how: int, byte: int) -> bytes:
    if not data:
        return bytes([byte])
    if how == 0:  # flip bits of one byte
        where %= len(data)
        return data[:where] + bytes([data[where] ^ (byte or 1)]) + data[where + 1 :]
    where %= len(data) + 1
    if how == 1:  # insert a byte
        return data[:where] + bytes([byte]) + data[where:]
    if how == 2:  # delete a byte
        return data[:where] + data[where + 1 :]
    return data[:where]  # cut short


@settings(max_examples=1000, deadline=None)
@given(
    seq=_SEQS,
    text=st.text(max_size=40) | st.sampled_from(["x" * 24, "x" * 256]),
    mid=st.binary(min_size=16, max_size=16),
    new=st.booleans(),
    at=_ATS,
    mutations=st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 3), st.integers(0, 255)),
        min_size=1,
        max_size=3,
    ),
)
def test_a_mutated_frame_is_read_as_the_general_decoder_reads_it(
    seq: int,
    text: str,
    mid: bytes,
    new: bool,
    at: int | None,
    mutations: list[tuple[int, int, int]],
) -> None:
    data = _text_frame(seq, text, mid, new, at)
    for where, how, byte in mutations:
        data = _mutate(data, where, how, byte)
    fast, general = frames._decode_lone_text(data), _general(data)
    assert fast is None or (general is not None and _same(fast, general))


@settings(max_examples=500, deadline=None)
@given(
    head=st.sampled_from(
        [frames._LONE_TEXT_HEAD, frames._LONE_NEW_TEXT_HEAD, *frames._LONE_AT_TEXT_HEADS]
    ),
    rest=st.binary(max_size=80),
)
def test_arbitrary_bytes_behind_the_prefix(head: bytes, rest: bytes) -> None:
    data = head + rest
    fast, general = frames._decode_lone_text(data), _general(data)
    assert fast is None or (general is not None and _same(fast, general))


def _raw(seq_head: bytes, text_head: bytes, text: bytes, *, tail: bytes = b"") -> bytes:
    """A text frame spelled by hand: `mid` = 16 zero bytes, the given heads for seq and text."""
    return (
        frames._LONE_TEXT_HEAD
        + bytes(16)
        + frames._SEQ_KEY
        + seq_head
        + frames._TEXT_KEY
        + text_head
        + text
        + frames._TYPE_TEXT
        + tail
    )


def _at_raw(at_head: bytes, *, count: bytes = b"\xa5") -> bytes:
    """A text frame with `at` spelled by hand: the given head for `at`, seq 5, "hi"."""
    return (
        b"\x81"
        + count
        + frames._AT_KEY
        + at_head
        + frames._MID_KEY
        + bytes(16)
        + frames._SEQ_KEY
        + b"\x05"
        + frames._TEXT_KEY
        + b"\x62hi"
        + frames._TYPE_TEXT
    )


@pytest.mark.parametrize(
    "data",
    [
        _raw(b"\x18\x05", b"\x62", b"hi"),  # seq 5 in two bytes: not the shortest form
        _raw(b"\x19\x00\x05", b"\x62", b"hi"),
        _raw(b"\x1b" + (2**63).to_bytes(8, "big"), b"\x62", b"hi"),  # seq over MAX_SEQ
        _raw(b"\x05", b"\x78\x02", b"hi"),  # a text length not in its shortest form
        _raw(b"\x05", b"\x62", b"\xc0\xaf"),  # an overlong UTF-8 spelling
        _raw(b"\x05", b"\x63", b"\xed\xa0\x80"),  # a UTF-16 surrogate in UTF-8
        _raw(b"\x05", b"\x62", b"hi", tail=b"\x00"),  # trailing bytes
        _raw(b"\x05", b"\x63", b"hi"),  # the length runs into the next key
        frames._LONE_NEW_TEXT_HEAD + bytes(16) + b"\x63new\xf4",  # new: false
        _at_raw(b"\x18\x05"),  # at 5 in two bytes: not the shortest form
        _at_raw(b"\x1b" + (frames.MAX_TIME + 1).to_bytes(8, "big")),  # after 9999
        _at_raw(b"\x24"),  # a negative time
        _at_raw(b"\xf6"),  # null
        _at_raw(b"\xf5"),  # true
        _at_raw(b"\xfb" + bytes(8)),  # a float
        _at_raw(b"\x05", count=b"\xa6"),  # the map's count says a `new` that is not there
        _at_raw(b"\x05", count=b"\xa4"),
    ],
)
def test_what_the_general_decoder_refuses_is_left_to_it(data: bytes) -> None:
    assert frames._decode_lone_text(data) is None
    with pytest.raises(FrameError):
        frames.decode_frame(data)


@example(text="x" * frames.MAX_TEXT_BYTES)
@given(text=st.just("é" * (frames.MAX_TEXT_BYTES // 2)))
def test_the_longest_text_is_left_to_the_general_decoder(text: str) -> None:
    """Exactly 65536 bytes of text need a four-byte length head, which only the general
    decoder reads; it accepts them."""
    data = _text_frame(7, text, bytes(16), False)
    assert frames._decode_lone_text(data) is None
    [envelope] = frames.decode_frame(data)
    assert envelope == Envelope(7, Text(text=text, mid=bytes(16)))


def test_a_bytearray_is_left_to_the_general_decoder() -> None:
    data = _text_frame(1, "hi", bytes(16), True)
    assert frames._decode_lone_text(bytearray(data)) is None  # type: ignore[arg-type]
    assert frames.decode_frame(bytearray(data)) == frames.decode_frame(data)  # type: ignore[arg-type]


def test_the_fast_path_sets_up_its_texts_directly_and_exactly() -> None:
    """On this pydantic the direct set-up is the one in use (so every test above checks it
    against the general decoder), and it gives every attribute `model_validate` gives."""
    assert frames._checked_text is not frames._construct_text
    for new, at in ((True, None), (None, None), (None, 1_765_000_000), (True, 0)):
        direct = frames._checked_text("hi", bytes(range(16)), new, at)
        fields: dict[str, object] = {"type": "text", "text": "hi", "mid": bytes(range(16))}
        fields |= {"new": True} if new else {}
        fields |= {"at": at} if at is not None else {}
        validated = Text.model_validate(fields)
        assert direct == validated
        for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__"):
            assert getattr(direct, name) == getattr(validated, name)


def test_a_pydantic_with_other_model_internals_gets_the_public_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Other:
        __slots__ = ("__dict__", "__pydantic_fields_set__", "__pydantic_something_new__")

    monkeypatch.setattr(frames, "BaseModel", Other)
    assert frames._text_builder() is frames._construct_text
