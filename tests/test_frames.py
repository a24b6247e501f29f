"""Frame codec: known bytes, round trips (Hypothesis), strict decoding of bad input."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from didlink.words.display import is_unsafe
from messaging import frames
from messaging.errors import RemoteProtocolError
from messaging.frames import (
    Close,
    Envelope,
    FileAck,
    FileChunk,
    FileError,
    FileOffer,
    FrameError,
    Hello,
    Receipt,
    Text,
    decode_frame,
    encode_frame,
)
from tests.support.hostile_text import HOSTILE_TEXTS

FILE_ID = bytes(range(16))

# --- known bytes (hand-assembled from RFC 8949; independent of cbor2) ----------------------


def test_text_frame_known_bytes() -> None:
    frame = encode_frame([Envelope(seq=5, message=Text(text="hi"))])
    expected = bytes.fromhex(
        "81"  # array(1)
        " a3"  # map(3), keys in length-then-bytewise order: seq, text, type
        " 63736571 05"  # "seq": 5
        " 6474657874 626869"  # "text": "hi"
        " 6474797065 6474657874"  # "type": "text"
    )
    assert frame == expected
    assert decode_frame(expected) == [Envelope(5, Text(text="hi"))]


def test_hello_and_receipt_known_bytes() -> None:
    frame = encode_frame([Envelope(0, Hello()), Envelope(1, Receipt(ids=[3, 24]))])
    expected = bytes.fromhex(
        "82"
        " a3 63736571 00 6474797065 6568656c6c6f 6776657273696f6e 01"
        " a3 63696473 82031818 63736571 01 6474797065 6772656365697074"
    )
    assert frame == expected


def test_the_empty_frame_of_a_key_announcement_is_one_byte() -> None:
    """A frame of no messages (specs/frames.md section 4a) is the empty array, 0x80."""
    assert encode_frame([]) == b"\x80"
    assert decode_frame(b"\x80") == []


# --- round trips ----------------------------------------------------------------------------

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs"), blacklist_characters="/\\"),
    min_size=1,
    max_size=60,
).filter(lambda n: n not in (".", ".."))
file_ids = st.binary(min_size=16, max_size=16)
offsets = st.integers(0, 2**63 - 1)
messages = st.one_of(
    st.builds(Hello),
    st.builds(Text, text=st.text(max_size=200)),
    st.builds(Text, text=st.text(max_size=200), mid=st.binary(min_size=16, max_size=16)),
    st.builds(Receipt, ids=st.lists(offsets, min_size=1, max_size=20)),
    st.builds(
        FileOffer,
        file_id=file_ids,
        name=names,
        size=offsets,
        sha256=st.binary(min_size=32, max_size=32),
        chunk_size=st.integers(1, 1024 * 1024),
    ),
    st.builds(
        FileChunk, file_id=file_ids, offset=offsets, data=st.binary(min_size=1, max_size=300)
    ),
    st.builds(FileAck, file_id=file_ids, next_offset=offsets),
    st.builds(
        FileError,
        file_id=file_ids,
        code=st.sampled_from(["refused", "failed"]),
        reason=st.text(max_size=50),
    ),
    st.builds(Close, reason=st.text(max_size=50)),
)
envelope_lists = st.lists(
    st.builds(Envelope, seq=st.integers(0, 2**63 - 1), message=messages), max_size=30
)


@settings(max_examples=200, deadline=None)
@given(envelope_lists)
def test_round_trip(envelopes: list[Envelope]) -> None:
    data = encode_frame(envelopes)
    assert decode_frame(data) == envelopes
    assert data == cbor2.dumps(cbor2.loads(data), canonical=True)  # canonical on the wire


@settings(max_examples=200, deadline=None)
@given(envelope_lists)
def test_an_envelope_is_the_canonical_cbor_of_its_fields_and_seq(envelopes: list[Envelope]) -> None:
    """encode_envelope builds the map in canonical key order itself (no model_dump, no sort)."""
    for envelope in envelopes:
        body = {**envelope.message.model_dump(exclude_none=True), "seq": envelope.seq}
        assert frames.encode_envelope(envelope) == cbor2.dumps(body, canonical=True)


@settings(max_examples=300, deadline=None)
@given(envelope_lists, st.data())
def test_mutated_bytes_give_typed_error_or_valid_frame(
    envelopes: list[Envelope], data: st.DataObject
) -> None:
    encoded = bytearray(encode_frame(envelopes))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(encoded) - 1))
        encoded[i] ^= data.draw(st.integers(1, 255))
    try:
        decoded = decode_frame(bytes(encoded))
    except FrameError:
        return
    assert encode_frame(decoded) == bytes(encoded)


def test_every_truncation_is_rejected() -> None:
    data = encode_frame(
        [Envelope(1, Text(text="hello")), Envelope(2, FileAck(file_id=FILE_ID, next_offset=9))]
    )
    for cut in range(len(data)):
        with pytest.raises(FrameError):
            decode_frame(data[:cut])


# --- strict decoding ------------------------------------------------------------------------


def frame_of(*items: Any) -> bytes:
    return cbor2.dumps(list(items), canonical=True)


TEXT = {"seq": 0, "type": "text", "text": "hi"}
OFFER = {
    "seq": 0,
    "type": "file_offer",
    "file_id": FILE_ID,
    "name": "a.txt",
    "size": 3,
    "sha256": bytes(32),
    "chunk_size": 1024,
}

BAD_FRAMES = {
    "not cbor": b"\xff\x00",
    "trailing bytes": frame_of(TEXT) + b"\x00",
    "non-canonical int": bytes.fromhex(
        "81 a3 63736571 1800 6474657874 626869 6474797065 6474657874"
    ),
    "unsorted keys": bytes.fromhex("81 a3 6474657874 626869 63736571 00 6474797065 6474657874"),
    "indefinite array": bytes.fromhex(
        "9f a3 63736571 00 6474657874 626869 6474797065 6474657874 ff"
    ),
    "not an array": cbor2.dumps(TEXT, canonical=True),
    "empty indefinite array": bytes.fromhex("9f ff"),
    "empty array, trailing bytes": frame_of() + b"\x80",
    "element not a map": frame_of([1, 2]),
    "no seq": frame_of({"type": "text", "text": "hi"}),
    "negative seq": frame_of({**TEXT, "seq": -1}),
    "bool seq": frame_of({**TEXT, "seq": True}),
    "huge seq": frame_of({**TEXT, "seq": 2**63}),
    "unknown type": frame_of({**TEXT, "type": "video"}),
    "no type": frame_of({"seq": 0, "text": "hi"}),
    "extra field": frame_of({**TEXT, "extra": 1}),
    "text as bytes": frame_of({**TEXT, "text": b"hi"}),
    "text too long": frame_of({**TEXT, "text": "é" * (frames.MAX_TEXT_BYTES // 2 + 1)}),
    "hello v2": frame_of({"seq": 0, "type": "hello", "version": 2}),
    "receipt empty": frame_of({"seq": 0, "type": "receipt", "ids": []}),
    "receipt negative": frame_of({"seq": 0, "type": "receipt", "ids": [-1]}),
    "name with slash": frame_of({**OFFER, "name": "../etc/passwd"}),
    "name with backslash": frame_of({**OFFER, "name": "a\\b"}),
    "name dotdot": frame_of({**OFFER, "name": ".."}),
    "name empty": frame_of({**OFFER, "name": ""}),
    "name control char": frame_of({**OFFER, "name": "a\nb"}),
    "name bidi override": frame_of({**OFFER, "name": "a\u202eb"}),
    "name too long": frame_of({**OFFER, "name": "a" * 256}),
    "short file id": frame_of({**OFFER, "file_id": bytes(15)}),
    "short sha256": frame_of({**OFFER, "sha256": bytes(31)}),
    "zero chunk size": frame_of({**OFFER, "chunk_size": 0}),
    "size as float": frame_of({**OFFER, "size": 3.0}),
    "empty chunk": frame_of(
        {"seq": 0, "type": "file_chunk", "file_id": FILE_ID, "offset": 0, "data": b""}
    ),
    "chunk too big": frame_of(
        {"seq": 0, "type": "file_chunk", "file_id": FILE_ID, "offset": 0, "data": bytes(65537)}
    ),
    "oversize frame": frame_of(*[{**TEXT, "seq": i, "text": "x" * 60000} for i in range(5)]),
    "too many messages": frame_of(*[{**TEXT, "seq": i} for i in range(1025)]),
}


@pytest.mark.parametrize("data", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_bad_frames_rejected(data: bytes) -> None:
    with pytest.raises(FrameError) as info:
        decode_frame(data)
    assert isinstance(info.value, RemoteProtocolError)


def test_hand_built_text_is_accepted() -> None:
    # the same frame as "unsorted keys", in canonical order: proves those negatives fail only
    # for the reason they name
    data = bytes.fromhex("81 a3 63736571 00 6474657874 626869 6474797065 6474657874")
    assert decode_frame(data) == [Envelope(0, Text(text="hi"))]


def test_valid_offer_accepted() -> None:
    [envelope] = decode_frame(frame_of(OFFER))
    assert envelope.message == FileOffer(
        file_id=FILE_ID, name="a.txt", size=3, sha256=bytes(32), chunk_size=1024
    )


def test_local_construction_is_validated_too() -> None:
    with pytest.raises(ValidationError):
        Text(text="x" * (frames.MAX_TEXT_BYTES + 1))
    with pytest.raises(ValidationError):
        FileOffer(file_id=FILE_ID, name="a/b", size=1, sha256=bytes(32), chunk_size=1)
    with pytest.raises(ValueError):
        encode_frame(
            [Envelope(i, Receipt(ids=[i])) for i in range(frames.MAX_MESSAGES_PER_FRAME + 1)]
        )


def test_large_frame_headers() -> None:
    # array headers of 24..255 and 256+ elements use the 1- and 2-byte length forms
    for count in (23, 24, 255, 256, 1024):
        envelopes = [Envelope(i, Receipt(ids=[i])) for i in range(count)]
        data = encode_frame(envelopes)
        assert cbor2.loads(data)[-1]["seq"] == count - 1
        assert decode_frame(data) == envelopes


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_errors_never_quote_what_the_peer_sent(text: str) -> None:
    """A frame's type string, field names or values chosen by the peer never come back in the
    error message (it reaches a screen before the SAS: issue 26, class 1)."""
    cases = [
        frame_of({"seq": 1, "type": text}),
        frame_of({"seq": 1, "type": "text", "text": "hi", "mid": b"m" * 16, text: 1}),
        frame_of({"seq": 1, "type": "close", "reason": 7, text: text}),
    ]
    for data in cases:
        with pytest.raises(FrameError) as caught:
            decode_frame(data)
        message = str(caught.value)
        assert not any(is_unsafe(ch) for ch in message), message
        assert text not in message and "\x1b" not in message


def test_an_unknown_type_is_named_without_the_tag() -> None:
    with pytest.raises(FrameError, match="unknown type"):
        decode_frame(frame_of({"seq": 1, "type": "\x1b]0;TITLE\x07"}))
