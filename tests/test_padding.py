"""Padmé padding: known lengths from the paper's definition, round trip, overhead, errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging import frames
from messaging.errors import RemoteProtocolError
from messaging.padding import PaddingError, pad, padding_for, padme, unpad


def padme_reference(length: int) -> int:
    """Padmé written straight from the paper with floats/logs (independent of the bit tricks)."""
    if length < 2:
        return length
    e = math.floor(math.log2(length))
    s = math.floor(math.log2(e)) + 1
    last_bits = e - s
    mask = 2**last_bits - 1
    return int((length + mask) & ~mask)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, 0), (1, 1), (2, 2), (9, 10), (17, 18), (100, 104), (1000, 1024), (1025, 1088)],
)
def test_known_lengths(length: int, expected: int) -> None:
    assert padme(length) == expected


def test_matches_reference_up_to_70000() -> None:
    for length in range(70_000):
        assert padme(length) == padme_reference(length)


@settings(max_examples=300)
@given(st.binary(max_size=5000))
def test_round_trip_and_length(data: bytes) -> None:
    padded = pad(data)
    assert len(padded) == padme(len(data) + 1)
    assert unpad(padded) == data
    assert len(padded) - (len(data) + 1) <= 0.12 * (len(data) + 1)


@settings(max_examples=200)
@given(st.integers(1, 10**7))
def test_overhead_bound(length: int) -> None:
    assert length <= padme(length) <= length * 1.12


def test_padded_lengths_collapse() -> None:
    # the point of Padmé: few distinct sizes (here for 1 KiB .. 64 KiB)
    sizes = {padme(n) for n in range(1024, 65537)}
    assert len(sizes) < 600


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x00", b"\x00\x00", b"abc", b"ab\x01", b"a\x80\x00\x00\x00\x00\x00\x00\x00"],
)
def test_malformed_padding(bad: bytes) -> None:
    with pytest.raises(PaddingError) as info:
        unpad(bad)
    assert isinstance(info.value, RemoteProtocolError)


@settings(max_examples=200)
@given(st.binary(max_size=300), st.integers(0, 299), st.integers(1, 255))
def test_mutations_never_crash(data: bytes, where: int, flip: int) -> None:
    padded = bytearray(pad(data))
    padded[where % len(padded)] ^= flip
    try:
        out = unpad(bytes(padded))
    except PaddingError:
        return
    assert len(pad(out)) == len(padded)


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=20))
def test_frame_joined_with_its_padding_is_the_padded_frame(encoded: list[bytes]) -> None:
    """The channel joins envelopes and padding in one copy; the result is `pad` of the frame."""
    size = frames.frame_size(len(encoded), sum(map(len, encoded)))
    joined = frames.join_frame(encoded, trailer=padding_for(size))
    assert joined == pad(frames.join_frame(encoded))
