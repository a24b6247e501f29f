"""identity/base58btc.py against the `base58` package, the reference it stands in for."""

from __future__ import annotations

import os

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity import base58btc
from identity.token import _b58decode

DIGITS = base58btc.ALPHABET.decode()


@pytest.mark.parametrize("size", range(1, 401))
def test_every_length_decodes_as_the_package_does(size: int) -> None:
    data = os.urandom(size)
    text = base58.b58encode(data).decode().lstrip("1")
    if text:  # all zero bytes leave no digits
        assert base58btc.decode_int(text) == base58.b58decode_int(text)


@given(st.text(alphabet=DIGITS, min_size=1, max_size=700))
def test_any_digits_decode_as_the_package_does(text: str) -> None:
    assert base58btc.decode_int(text) == base58.b58decode_int(text)


@given(st.binary(max_size=300))
def test_token_bytes_round_trip_with_leading_zeros(data: bytes) -> None:
    assert _b58decode(base58.b58encode(data).decode()) == data


@pytest.mark.parametrize("edge", ["1", "z", "zzzzzzzzzz", "2" * 255, "2" * 256, "2" * 257])
def test_lane_edges(edge: str) -> None:
    assert base58btc.decode_int(edge) == base58.b58decode_int(edge)


@pytest.mark.parametrize("bad", ["", "0", "O", "I", "l", "abc+", "ab c", "é", "z\x00", "\u0661"])
def test_anything_else_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        base58btc.decode_int(bad)
