"""The `didlink:` text form (specs/invitation.md §7-§8): pasting, tampering, size limits."""

from __future__ import annotations

import string

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity.errors import InvitationError, MalformedToken
from identity.invitation import Invitation, InvitationKind, Response
from identity.keys import IdentityKey
from identity.token import (
    MAX_TOKEN_CHARS,
    _b58decode,
    decode_invitation,
    decode_response,
    decode_token,
    encode_token,
    looks_incomplete,
)
from identity.validity import MAX_TIME
from tests.support.tokens import OTHER_SEED, SEED, T0, card_map, forge, payload_of, token_of

KEY = IdentityKey(SEED)
BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
CARD = Invitation.create(
    KEY, now=T0, lifetime=30 * 86400, label="Alice", id=bytes(range(0xA0, 0xB0))
)
CARD_TOKEN = encode_token(CARD)
RESPONSE = Response.create(IdentityKey(OTHER_SEED), invitation=CARD, now=T0 + 60)
RESPONSE_TOKEN = encode_token(RESPONSE)


@pytest.mark.vectors
def test_card_token_known_answer() -> None:
    """Regression: the text of the known-answer card of test_invitation.py (tag 01 first)."""
    payload = payload_of(CARD_TOKEN)
    assert payload[0] == 0x01
    assert payload[1:-64] == CARD.body()
    assert payload[-64:] == CARD.signature
    assert CARD_TOKEN == (
        "didlink:2odAS7vCRntZjjvKj9vVyR6rKi2Ub5x3AcCAUvkmdMa4vuustFgx3EnohSjDmX4JcqVd3UzyxEJ5rL"
        "eepr5Rvo7kUXrFqKe1BzMim7kL4HtKrggBwNT2sBpoHXPvEbw9x4SZ2NHW8Ju9MsXtnygxv22BgpmeEGzH5anR"
        "r37YRU9GSxQB9bhCNDBAGBPd4fFGwJr1Txz"
    )
    assert payload_of(RESPONSE_TOKEN)[0] == 0x02


def test_encoded_part_is_only_base58() -> None:
    assert CARD_TOKEN.startswith("didlink:")
    assert set(CARD_TOKEN[len("didlink:") :]) <= set(BASE58_ALPHABET)


# --- pasting -------------------------------------------------------------------------------


def test_prefix_is_case_insensitive() -> None:
    encoded = CARD_TOKEN[len("didlink:") :]
    for prefix in ("DIDLINK:", "DidLink:", "didLINK:"):
        assert decode_token(prefix + encoded) == CARD


def test_whitespace_and_line_breaks_are_tolerated() -> None:
    wrapped = "\n".join(CARD_TOKEN[i : i + 40] for i in range(0, len(CARD_TOKEN), 40))
    for text in (
        f"  {CARD_TOKEN}\n",
        f"\t{CARD_TOKEN}\r\n",
        wrapped,
        wrapped.replace("\n", "\r\n "),
    ):
        assert decode_token(text) == CARD


def test_typed_decoders() -> None:
    assert decode_invitation(CARD_TOKEN) == CARD
    assert decode_response(RESPONSE_TOKEN) == RESPONSE
    with pytest.raises(MalformedToken, match="response"):
        decode_invitation(RESPONSE_TOKEN)
    with pytest.raises(MalformedToken, match="invitation"):
        decode_response(CARD_TOKEN)


# --- malformed text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "didlink:",
        CARD_TOKEN[len("didlink:") :],  # no prefix
        "didlink" + CARD_TOKEN[len("didlink:") :],  # no colon
        "didlink:/" + CARD_TOKEN[len("didlink:") :],
        "did:key:z6MkiU7XgHzUGUbqLrUhr7biwS1kVvfAj1xXDb1mcc9xcQ6Q",
        "https://example.com/" + CARD_TOKEN,
        CARD_TOKEN + "0",  # 0, O, I, l are not base58
        CARD_TOKEN + "O",
        CARD_TOKEN + "l",
        CARD_TOKEN.replace("2", "+", 1),
        CARD_TOKEN + "é",
        CARD_TOKEN + "\x00",
        "didlink:" + "1" * 100,  # zero bytes: tag 0
        token_of(b"\x01" + b"\x00" * 64),  # too short: no body
        token_of(b"\x03" + CARD.body() + CARD.signature),  # unknown tag
        token_of(b"\x01" + CARD.body() + CARD.signature[:-1]),  # a byte short
        token_of(b"\x01" + CARD.body() + CARD.signature + b"\x00"),  # a byte long
        token_of(b"\x02" + CARD.body() + CARD.signature),  # invitation under response tag
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(MalformedToken):
        decode_token(text)


def test_size_limit_is_checked_before_decoding() -> None:
    huge = "didlink:" + "z" * (MAX_TOKEN_CHARS - len("didlink:"))
    with pytest.raises(MalformedToken, match="unknown type"):  # at the limit: decoded
        decode_token(huge)
    with pytest.raises(MalformedToken, match="longer than 4096"):
        decode_token(huge + "z")
    with pytest.raises(MalformedToken, match="longer than 4096"):
        decode_token(CARD_TOKEN + " " * MAX_TOKEN_CHARS)
    with pytest.raises(MalformedToken, match="longer than 4096"):
        decode_token("x" * 10_000_000)  # refused at once, not base58-decoded


def test_oversized_body_is_malformed() -> None:
    body = card_map(k1=1, k8=bytes(1024), k9=bytes(64), k7="x" * 64)
    decode_token(forge(body))  # the largest valid invitation decodes
    with pytest.raises(MalformedToken):
        decode_token(forge(card_map(k1=1, k8=bytes(3000))))


# --- tampering (Hypothesis): any change is rejected, only with InvitationError ------------


def _assert_rejected(text: str) -> None:
    try:
        decode_token(text)
    except InvitationError:
        return
    raise AssertionError("a changed token was accepted")


@settings(max_examples=300, deadline=None)
@given(data=st.data(), token=st.sampled_from([CARD_TOKEN, RESPONSE_TOKEN]))
def test_any_bit_flip_is_rejected(data: st.DataObject, token: str) -> None:
    payload = bytearray(payload_of(token))
    bit = data.draw(st.integers(min_value=0, max_value=len(payload) * 8 - 1))
    payload[bit // 8] ^= 1 << (bit % 8)
    _assert_rejected(token_of(bytes(payload)))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), token=st.sampled_from([CARD_TOKEN, RESPONSE_TOKEN]))
def test_any_character_change_is_rejected(data: st.DataObject, token: str) -> None:
    start = len("didlink:")
    index = data.draw(st.integers(min_value=start, max_value=len(token) - 1))
    replacement = data.draw(
        st.sampled_from(BASE58_ALPHABET + string.punctuation + "0OIl").filter(
            lambda char: char != token[index]
        )
    )
    _assert_rejected(token[:index] + replacement + token[index + 1 :])


@settings(max_examples=150, deadline=None)
@given(data=st.data(), token=st.sampled_from([CARD_TOKEN, RESPONSE_TOKEN]))
def test_any_insertion_or_deletion_is_rejected(data: st.DataObject, token: str) -> None:
    start = len("didlink:")
    index = data.draw(st.integers(min_value=start, max_value=len(token) - 1))
    if data.draw(st.booleans()):
        changed = token[:index] + token[index + 1 :]
    else:
        changed = token[:index] + data.draw(st.sampled_from(BASE58_ALPHABET)) + token[index:]
    _assert_rejected(changed)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_arbitrary_text_only_raises_invitation_errors(text: str) -> None:
    _assert_rejected(text)
    _assert_rejected("didlink:" + text)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(min_size=1, max_size=400))
def test_arbitrary_payload_only_raises_invitation_errors(payload: bytes) -> None:
    _assert_rejected(token_of(payload))
    _assert_rejected(token_of(b"\x01" + payload))
    _assert_rejected(token_of(b"\x02" + payload))


# --- the 400-character card limit (spec §8) ------------------------------------------------


def test_card_with_64_character_label_is_under_400() -> None:
    token = encode_token(Invitation.create(KEY, now=T0, lifetime=30 * 86400, label="W" * 64))
    assert len(token) < 400
    assert decode_token(token).label == "W" * 64  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "label",
    [
        "z" * 64,
        "😀" * 32,  # 128 bytes
        "名" * 42 + "ab",  # 128 bytes
        "é" * 64,
    ],
)
def test_worst_case_card_is_under_400(label: str) -> None:
    """The largest card: a 128-byte label and times that need 8-byte integers."""
    invitation = Invitation.create(
        KEY, now=MAX_TIME - 1, lifetime=1, label=label, multi_use=True, id=b"\xff" * 16
    )
    token = encode_token(invitation)
    assert len(token) <= 388 < 400


@settings(max_examples=150, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    now=st.integers(min_value=0, max_value=MAX_TIME - 1),
    label=st.none()
    | st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=64),
    multi_use=st.booleans(),
)
def test_every_card_is_under_400(seed: bytes, now: int, label: str | None, multi_use: bool) -> None:
    try:
        invitation = Invitation.create(
            IdentityKey(seed),
            now=now,
            lifetime=1,
            label=label,
            multi_use=multi_use,
            kind=InvitationKind.CARD,
        )
    except ValueError:
        return  # a label over 128 bytes, or with bidi controls: refused, never encoded
    assert len(encode_token(invitation)) < 400


def test_base58_has_no_second_spelling() -> None:
    """Leading '1's are zero bytes, so no other text decodes to the same payload."""
    encoded = CARD_TOKEN[len("didlink:") :]
    assert base58.b58encode(base58.b58decode(encoded)).decode() == encoded
    _assert_rejected("didlink:1" + encoded)


@given(st.integers(min_value=0, max_value=4), st.binary(max_size=300))
@settings(max_examples=300)
def test_base58_decoding_agrees_with_the_library(zeros: int, data: bytes) -> None:
    """Our byte conversion of the library's integer decoding == base58.b58decode (zeros kept)."""
    payload = bytes(zeros) + data
    encoded = base58.b58encode(payload).decode("ascii")
    assert _b58decode(encoded) == base58.b58decode(encoded) == payload


# --- what a damaged paste is called (issue 27, 5) -------------------------------------------


def test_a_cut_token_is_called_incomplete_with_its_length() -> None:
    for cut in (60, 150, 183):
        with pytest.raises(MalformedToken, match=rf"looks incomplete: {cut} characters"):
            decode_token(CARD_TOKEN[:cut])
    live = encode_token(
        Invitation.create(KEY, now=T0, lifetime=900, kind=InvitationKind.INVITE, connect=bytes(98))
    )
    with pytest.raises(MalformedToken, match="invitation token looks incomplete: 250 of about 330"):
        decode_token(live[:250], expected="invitation")
    with pytest.raises(MalformedToken, match="response token looks incomplete: 250 of about 320"):
        decode_token(live[:250], expected="response")
    assert looks_incomplete(live[:250], expected="invitation")
    assert looks_incomplete("  " + live[:100] + "\n" + live[100:250], expected="invitation")
    assert not looks_incomplete(live, expected="invitation")
    assert not looks_incomplete("hello", expected="response")  # not the start of a token


def test_a_dropped_or_changed_character_is_called_altered() -> None:
    dropped = CARD_TOKEN[:40] + CARD_TOKEN[41:]
    with pytest.raises(MalformedToken, match=r"looks altered: a character may have been dropped"):
        decode_token(dropped)
    with pytest.raises(MalformedToken, match=r"\(the token has an unknown type \(\d+\)\)"):
        decode_token(dropped)  # the technical detail stays, after the words
