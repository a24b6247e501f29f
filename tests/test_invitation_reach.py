"""The `reach` field of invitations (specs/invitation.md §2 key 10) and the reach keys
(messaging/alias.py `reach_secret`): known answers, round trips, every way to break it.

The known answers are computed independently of the code under test: HKDF with the standard
library's hmac, the public keys with nostr-sdk (rust-secp256k1), the CBOR by hand.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from nacl.signing import VerifyKey

from identity.errors import BadSignature, MalformedToken, UnsupportedVersion
from identity.invitation import (
    INVITATION_DOMAIN,
    MAX_BODY,
    Invitation,
    InvitationKind,
    Reach,
    Response,
    verify_invitation,
)
from identity.keys import IdentityKey
from identity.token import MAX_TOKEN_CHARS, decode_token, encode_token
from messaging.alias import CARD_REACH_CONTEXT, alias_public, reach_secret
from messaging.errors import LocalProtocolError
from tests.support.tokens import SEED, T0, card_map, forge, public_key

KEY = IdentityKey(SEED)
ID = bytes(range(0xA0, 0xB0))

# HKDF-SHA256(ikm = seed 00..1f, salt = empty, info = "didlink/v1 reach" 00 context 00), L = 32:
# both first candidates are below secp256k1's order, so counter 0 is the answer.
LIVE_SECRET_HEX = "dccc5581ddb295dccf38c2acdca9dc1b7ca06388fffbcafebdfb2d5032e3a5f0"
CARD_SECRET_HEX = "cae1c25f68dfc3f73013d0037e43fcd7a57602227645d920e489e44a65932568"


def _hkdf(ikm: bytes, info: bytes) -> bytes:
    """RFC 5869 with one output block, from the standard library (independent of pyca)."""
    prk = hmac.new(b"", ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def _x_only(secret: bytes) -> bytes:
    nostr_sdk = pytest.importorskip("nostr_sdk")
    keys = nostr_sdk.Keys(nostr_sdk.SecretKey.parse(secret.hex()))
    return bytes.fromhex(keys.public_key().to_hex())


REACH_KEY = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
"""secp256k1's generator's x: a valid x-only key whatever the code under test computes."""


def reach(**changes: Any) -> Reach:
    fields: dict[str, Any] = {"relays": ("wss://relay.example",), "key": REACH_KEY}
    fields.update(changes)
    return Reach(**fields)


def reach_card_map(**changes: Any) -> dict[Any, Any]:
    """A valid version-2 card map: the card of tests/support/tokens.py with key 10."""
    base: dict[str, Any] = {"k0": 2, "k10": {0: ["wss://relay.example"], 1: REACH_KEY}}
    base.update(changes)
    return card_map(**base)


# --- reach_secret -------------------------------------------------------------------------


@pytest.mark.vectors
def test_reach_secret_known_answers() -> None:
    assert _hkdf(SEED, b"didlink/v1 reach\x00" + ID + b"\x00").hex() == LIVE_SECRET_HEX
    assert _hkdf(SEED, b"didlink/v1 reach\x00card\x00").hex() == CARD_SECRET_HEX
    assert reach_secret(SEED, ID).hex() == LIVE_SECRET_HEX
    assert reach_secret(SEED, CARD_REACH_CONTEXT).hex() == CARD_SECRET_HEX
    for secret in (LIVE_SECRET_HEX, CARD_SECRET_HEX):
        assert alias_public(bytes.fromhex(secret)) == _x_only(bytes.fromhex(secret))


def test_reach_secret_separates_contexts_and_identities() -> None:
    secrets = {
        reach_secret(SEED, ID),
        reach_secret(SEED, bytes(16)),
        reach_secret(SEED, CARD_REACH_CONTEXT),
        reach_secret(bytes(32), ID),
    }
    assert len(secrets) == 4


@pytest.mark.parametrize(
    ("seed", "context"),
    [(SEED, b""), (SEED, bytes(15)), (SEED, bytes(17)), (SEED, b"CARD"), (bytes(31), ID)],
)
def test_reach_secret_refuses_bad_input(seed: bytes, context: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        reach_secret(seed, context)


# --- the field ----------------------------------------------------------------------------


@pytest.mark.vectors
def test_card_with_reach_known_answer() -> None:
    invitation = Invitation.create(
        KEY, now=T0, lifetime=30 * 86400, label="Alice", id=ID, reach=reach()
    )
    assert invitation.version == 2
    expected = bytes.fromhex(
        "aa"  # 10 pairs
        "0002"  # 0: version 2
        "0100"
        "0250" + ID.hex() + "035820" + public_key().hex() + "041a6553f100"
        "051a657b7e00"
        "0600"
        "0765416c696365"
        "0840"
        "0a"  # 10: reach
        "a2"  # map of 2
        "00"
        "81"  # 0: array of 1
        "73" + b"wss://relay.example".hex() + "015820" + REACH_KEY.hex()  # tstr(19)  # 1: bstr(32)
    )
    assert invitation.body() == expected
    VerifyKey(KEY.public_key).verify(INVITATION_DOMAIN + expected, invitation.signature)
    assert forge(reach_card_map()) == encode_token(invitation)


@pytest.mark.parametrize("kind", list(InvitationKind))
def test_round_trip_every_kind(kind: InvitationKind) -> None:
    connect = b"" if kind is InvitationKind.CARD else b"\x01\x02"
    relays = ("wss://a.example", "wss://b.example:4443/nostr", "ws://127.0.0.1:7000", "ws://[::1]")
    invitation = Invitation.create(
        KEY,
        now=T0,
        lifetime=900,
        kind=kind,
        connect=connect,
        reach=reach(relays=relays, key=alias_public(reach_secret(SEED, ID))),
    )
    decoded = decode_token(encode_token(invitation))
    assert decoded == invitation
    assert isinstance(decoded, Invitation) and decoded.reach is not None
    assert decoded.reach.relays == relays
    verify_invitation(decoded, now=T0, already_used=False)


def test_without_reach_stays_version_1() -> None:
    invitation = Invitation.create(KEY, now=T0, lifetime=900)
    assert invitation.version == 1 and invitation.reach is None
    assert 10 not in invitation.wire()


def test_reach_is_signed() -> None:
    invitation = Invitation.create(KEY, now=T0, lifetime=900, reach=reach())
    other = reach(relays=("wss://evil.example",))
    tampered = invitation.model_copy(update={"reach": other})
    with pytest.raises(BadSignature):
        verify_invitation(tampered, now=T0, already_used=False)


def test_worst_case_card_fits() -> None:
    """Spec §8: a card with the longest label and 4 relays of 200 bytes is under the limits."""
    host = "wss://" + "a" * 63 + "." + "b" * 63 + "." + "c" * 60
    relays = tuple(f"{host}/{i}{'p' * (200 - len(host) - 2)}" for i in range(4))
    assert all(len(url) == 200 for url in relays)
    invitation = Invitation.create(
        KEY, now=T0, lifetime=3650 * 86400, label="😀" * 32, reach=reach(relays=relays)
    )
    token = encode_token(invitation)
    assert len(invitation.body()) <= MAX_BODY and len(token) <= 1560 < MAX_TOKEN_CHARS
    assert decode_token(token) == invitation


def test_create_refuses_an_oversized_body() -> None:
    host = "wss://" + "a" * 63 + "." + "b" * 63 + "." + "c" * 60
    relays = tuple(f"{host}/{i}{'p' * (200 - len(host) - 2)}" for i in range(4))
    with pytest.raises(ValueError, match="over 2048 bytes"):
        Invitation.create(
            KEY,
            now=T0,
            lifetime=900,
            label="😀" * 32,
            kind=InvitationKind.INVITE,
            connect=bytes(1024),
            commitment=bytes(64),
            reach=reach(relays=relays),
        )


# --- negative cases -----------------------------------------------------------------------

LONG_URL = "wss://relay.example/" + "p" * 181  # 201 bytes
NOT_ON_CURVE = (5).to_bytes(32, "big")  # 5^3 + 7 = 132 is not a square mod p
ABOVE_P = bytes.fromhex("ff" * 32)


@pytest.mark.parametrize(
    "value",
    [
        None,  # dropped: version 2 without key 10
        0,
        b"",
        [["wss://relay.example"], REACH_KEY],
        {},
        {0: ["wss://relay.example"]},
        {1: REACH_KEY},
        {0: ["wss://relay.example"], 1: REACH_KEY, 2: 0},
        {0: "wss://relay.example", 1: REACH_KEY},  # not an array
        {0: [b"wss://relay.example"], 1: REACH_KEY},  # bstr URL
        {0: [], 1: REACH_KEY},  # no relay
        {0: [f"wss://r{i}.example" for i in range(5)], 1: REACH_KEY},  # 5 relays
        {0: ["wss://a.example", "wss://a.example"], 1: REACH_KEY},  # duplicate
        {0: [LONG_URL], 1: REACH_KEY},
        {0: ["https://relay.example"], 1: REACH_KEY},  # bad scheme
        {0: ["ws://relay.example"], 1: REACH_KEY},  # ws:// beyond loopback
        {0: ["ws://10.0.0.1"], 1: REACH_KEY},
        {0: ["wss://user@relay.example"], 1: REACH_KEY},
        {0: ["wss://relay.example/?q=1"], 1: REACH_KEY},
        {0: ["WSS://Relay.Example"], 1: REACH_KEY},  # not normalised
        {0: ["wss://relay.example/"], 1: REACH_KEY},  # not normalised
        {0: ["wss://relay.example\n"], 1: REACH_KEY},
        {0: ["wss://relay.example"], 1: REACH_KEY[:31]},
        {0: ["wss://relay.example"], 1: REACH_KEY + b"\x00"},
        {0: ["wss://relay.example"], 1: "79be"},
        {0: ["wss://relay.example"], 1: NOT_ON_CURVE},
        {0: ["wss://relay.example"], 1: ABOVE_P},
        {0: ["wss://relay.example"], 1: bytes(32)},
        {0: ["wss://relay.example"], True: REACH_KEY},  # a bool key
        {"0": ["wss://relay.example"], 1: REACH_KEY},
    ],
)
def test_bad_reach_is_malformed(value: Any) -> None:
    with pytest.raises(MalformedToken):
        decode_token(forge(reach_card_map(k10=value)))


def test_version_1_with_reach_is_malformed() -> None:
    with pytest.raises(MalformedToken):
        decode_token(forge(reach_card_map(k0=1)))
    with pytest.raises(UnsupportedVersion):
        decode_token(forge(reach_card_map(k0=3)))


def test_models_refuse_bad_reach() -> None:
    for bad in (
        {"relays": ()},
        {"relays": ("wss://a.example",) * 2},
        {"relays": tuple(f"wss://r{i}.example" for i in range(5))},
        {"relays": (LONG_URL,)},
        {"key": NOT_ON_CURVE},
    ):
        with pytest.raises(ValueError):
            reach(**bad)
    plain = dict(Invitation.create(KEY, now=T0, lifetime=60))
    with pytest.raises(ValueError, match="reach in version 2"):
        Invitation.model_validate({**plain, "version": 2})
    with pytest.raises(ValueError, match="reach in version 2"):
        Invitation.model_validate({**plain, "reach": reach()})


def test_responses_are_unchanged() -> None:
    invitation = Invitation.create(KEY, now=T0, lifetime=900, reach=reach())
    response = Response.create(IdentityKey(bytes(32)), invitation=invitation, now=T0)
    assert decode_token(encode_token(response)) == response


# --- the response's relays (spec §3: version 3) ---------------------------------------------

RELAYS = ("wss://b.example", "ws://127.0.0.1:7000")


def test_response_with_relays_round_trip_and_known_answer() -> None:
    invitation = Invitation.create(KEY, now=T0, lifetime=900, reach=reach(), id=ID)
    other = IdentityKey(bytes(range(32, 64)))
    for label in (None, "Bob"):
        response = Response.create(other, invitation=invitation, now=T0, relays=RELAYS, label=label)
        assert response.version == 3
        assert decode_token(encode_token(response)) == response
    unlabelled = Response.create(other, invitation=invitation, now=T0, relays=RELAYS[:1])
    expected = (
        "a6"  # 6 pairs
        "0003"
        "0150" + ID.hex() + "025820" + public_key(bytes(range(32, 64))).hex() + "031a6553f100"
        "0440"
        "06"
        "81"
        "6f" + b"wss://b.example".hex()  # 6: array of 1, tstr(15)
    )
    assert unlabelled.body().hex() == expected


@pytest.mark.parametrize(
    "changes",
    [
        {"k0": 3},  # version 3 without relays
        {"k0": 3, "k5": "Bob"},
        {"k6": ["wss://b.example"]},  # relays in version 1
        {"k0": 2, "k5": "Bob", "k6": ["wss://b.example"]},  # relays in version 2
        {"k0": 3, "k6": []},
        {"k0": 3, "k6": [f"wss://r{i}.example" for i in range(5)]},
        {"k0": 3, "k6": ["wss://b.example", "wss://b.example"]},
        {"k0": 3, "k6": ["https://b.example"]},
        {"k0": 3, "k6": ["ws://b.example"]},
        {"k0": 3, "k6": [LONG_URL]},
        {"k0": 3, "k6": ["wss://B.example"]},
        {"k0": 3, "k6": [b"wss://b.example"]},
        {"k0": 3, "k6": "wss://b.example"},
        {"k0": 3, "k6": ["wss://b.example"], "k5": ""},
    ],
)
def test_bad_response_relays_are_malformed(changes: dict[str, Any]) -> None:
    from tests.support.tokens import OTHER_SEED, response_map

    with pytest.raises(MalformedToken):
        decode_token(forge(response_map(**changes), tag=2, seed=OTHER_SEED))
