"""Invitations and responses: known answers, schema, verification order, time edges.

The known answers below are derived by hand from specs/invitation.md §2-§4 (not produced by the
code under test), and signatures are checked with PyNaCl (libsodium) as an independent Ed25519.
"""

from __future__ import annotations

from typing import Any

import base58
import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey, VerifyKey
from pydantic import ValidationError

from identity.errors import (
    AlreadyUsed,
    BadSignature,
    BadTokenDid,
    Expired,
    InvitationError,
    MalformedToken,
    NotYetValid,
    ResponseMismatch,
    UnsupportedVersion,
)
from identity.invitation import (
    INVITATION_DOMAIN,
    RESPONSE_DOMAIN,
    Invitation,
    InvitationKind,
    Response,
    UsePolicy,
    label_problem,
    verify_invitation,
    verify_response,
)
from identity.keys import IdentityKey
from identity.token import decode_token, encode_token
from identity.validity import CLOCK_SKEW, MAX_TIME, iso_time
from tests.support.tokens import OTHER_SEED, SEED, T0, card_map, forge, public_key, response_map

KEY = IdentityKey(SEED)
OTHER = IdentityKey(OTHER_SEED)
ID = bytes(range(0xA0, 0xB0))
PK_HEX = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
OTHER_PK_HEX = "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"

# Card by seed 00..1f, id a0..af, created 1700000000 (0x6553f100), 30 days (expires 0x657b7e00),
# single-use, label "Alice", empty connect: map of 9 pairs, keys in numeric order.
CARD_BODY_HEX = (
    "a9"
    "0001"  # 0: version 1
    "0100"  # 1: kind card
    "0250a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  # 2: id, bstr(16)
    "035820"
    + PK_HEX  # 3: inviter key, bstr(32)
    + "041a6553f100"  # 4: created, uint32
    "051a657b7e00"  # 5: expires, uint32
    "0600"  # 6: single-use
    "0765416c696365"  # 7: label "Alice", tstr(5)
    "0840"  # 8: connect, empty bstr
)
# Live invitation: kind 1, multi-use, no label, connect 010203, commitment 32 x 0x55, 15 min.
INVITE_BODY_HEX = (
    "a9"
    "0001"
    "0101"  # 1: kind invite
    "0250a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
    "035820" + PK_HEX + "041a6553f100"
    "051a6553f484"  # 5: expires = created + 900
    "0601"  # 6: multi-use
    "0843010203"  # 8: connect, bstr(3)
    "095820" + "55" * 32  # 9: commitment, bstr(32)
)
# Response by seed 20..3f to the card above, made 60 s later, empty connect: 5 pairs.
RESPONSE_BODY_HEX = (
    "a5"
    "0001"
    "0150a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  # 1: invitation id
    "025820" + OTHER_PK_HEX + "031a6553f13c"  # 3: created = T0 + 60
    "0440"  # 4: connect, empty
)


def card(**options: Any) -> Invitation:
    fields: dict[str, Any] = {"now": T0, "lifetime": 30 * 86400, "label": "Alice", "id": ID}
    fields.update(options)
    return Invitation.create(KEY, **fields)


# --- known answers (spec §2-§4) ---------------------------------------------------------


@pytest.mark.vectors
def test_public_keys_match_libsodium() -> None:
    assert KEY.public_key.hex() == PK_HEX == public_key().hex()
    assert OTHER.public_key.hex() == OTHER_PK_HEX


@pytest.mark.vectors
def test_card_known_answer() -> None:
    invitation = card()
    assert invitation.body().hex() == CARD_BODY_HEX
    message = bytes.fromhex("6469646c696e6b2f763120696e7669746174696f6e00") + bytes.fromhex(
        CARD_BODY_HEX
    )
    assert invitation.signed_message() == message
    VerifyKey(bytes.fromhex(PK_HEX)).verify(message, invitation.signature)  # raises if bad
    assert invitation.signature == SigningKey(SEED).sign(message).signature  # deterministic
    expected_did = "did:key:z" + base58.b58encode(b"\xed\x01" + bytes.fromhex(PK_HEX)).decode()
    assert invitation.inviter == expected_did == KEY.did


@pytest.mark.vectors
def test_live_invitation_known_answer() -> None:
    invitation = Invitation.create(
        KEY,
        now=T0,
        lifetime=900,
        kind=InvitationKind.INVITE,
        multi_use=True,
        connect=b"\x01\x02\x03",
        commitment=b"\x55" * 32,
        id=ID,
    )
    assert invitation.body().hex() == INVITE_BODY_HEX
    VerifyKey(KEY.public_key).verify(
        INVITATION_DOMAIN + bytes.fromhex(INVITE_BODY_HEX), invitation.signature
    )


@pytest.mark.vectors
def test_response_known_answer() -> None:
    response = Response.create(OTHER, invitation=card(), now=T0 + 60)
    assert response.body().hex() == RESPONSE_BODY_HEX
    message = b"didlink/v1 response\x00" + bytes.fromhex(RESPONSE_BODY_HEX)
    assert response.signed_message() == message
    VerifyKey(bytes.fromhex(OTHER_PK_HEX)).verify(message, response.signature)


def test_domains_are_distinct_and_exact() -> None:
    assert INVITATION_DOMAIN == b"didlink/v1 invitation\x00"
    assert RESPONSE_DOMAIN == b"didlink/v1 response\x00"


def test_forged_by_hand_equals_created() -> None:
    """An independent encoder (cbor2 + PyNaCl, tests/support/tokens.py) gives the same token."""
    assert encode_token(card()) == forge(card_map())


# --- round trips (Hypothesis) -----------------------------------------------------------

labels = st.none() | st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=32
)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    now=st.integers(min_value=0, max_value=MAX_TIME - 10 * 86400),
    lifetime=st.integers(min_value=1, max_value=10 * 86400),
    label=labels,
    multi_use=st.booleans(),
    kind=st.sampled_from(InvitationKind),
    connect=st.binary(max_size=1024),
    commitment=st.none() | st.binary(min_size=1, max_size=64),
)
def test_invitation_round_trip(
    seed: bytes,
    now: int,
    lifetime: int,
    label: str | None,
    multi_use: bool,
    kind: InvitationKind,
    connect: bytes,
    commitment: bytes | None,
) -> None:
    if kind is InvitationKind.CARD:
        connect, commitment = b"", None
    key = IdentityKey(seed)
    invitation = Invitation.create(
        key,
        now=now,
        lifetime=lifetime,
        label=label,
        multi_use=multi_use,
        kind=kind,
        connect=connect,
        commitment=commitment,
    )
    decoded = decode_token(encode_token(invitation))
    assert decoded == invitation
    assert isinstance(decoded, Invitation)
    assert decoded.inviter == key.did
    assert decoded.use is (UsePolicy.MULTI if multi_use else UsePolicy.SINGLE)
    verify_invitation(decoded, now=now, already_used=False)
    VerifyKey(key.public_key).verify(decoded.signed_message(), decoded.signature)


@settings(max_examples=100, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    delay=st.integers(min_value=0, max_value=30 * 86400),
    connect=st.binary(max_size=1024),
)
def test_response_round_trip(seed: bytes, delay: int, connect: bytes) -> None:
    invitation = card()
    key = IdentityKey(seed)
    response = Response.create(key, invitation=invitation, now=T0 + delay)
    response2 = Response.create(key, invitation=invitation, now=T0 + delay, connect=connect)
    for item in (response, response2):
        decoded = decode_token(encode_token(item))
        assert decoded == item
        assert isinstance(decoded, Response)
        verify_response(decoded, invitation=invitation, now=T0 + delay)


# --- schema (check 1-2: encoding, version, schema) -------------------------------------


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"k7": ""}, "label"),  # empty label must be absent instead
        ({"k7": "x" * 65}, "label"),
        ({"k7": "é" * 65}, "label"),
        ({"k7": "😀" * 33}, "label"),  # 33 chars but 132 bytes
        ({"k7": "a\x1b[31mred"}, "label"),  # ANSI escape
        ({"k7": "a\u202eb"}, "label"),  # bidi override
        ({"k7": b"Alice"}, "label"),  # bstr instead of tstr
        ({"k2": bytes(15)}, "id"),
        ({"k2": bytes(17)}, "id"),
        ({"k2": "0" * 16}, "id"),
        ({"k3": bytes(31)}, "inviter"),
        ({"k3": bytes(33)}, "inviter"),
        ({"k4": -1}, "created"),
        ({"k4": MAX_TIME + 1, "k5": MAX_TIME + 2}, "created"),
        ({"k5": T0}, "expires"),  # expires == created
        ({"k5": T0 - 1}, "expires"),
        ({"k4": 1.0e9}, "float"),  # refused by the canonical decoder before the schema
        ({"k1": 3}, "kind"),
        ({"k1": True}, "kind"),  # bool is not an integer
        ({"k6": 2}, "use"),
        ({"k6": False}, "use"),
        ({"k8": b"x"}, "card"),  # a card has no connect
        ({"k9": b"c"}, "card"),  # nor a commitment
        ({"k8": None}, "lacks"),  # connect is required
        ({"k2": None}, "lacks"),
        ({"k10": 0}, "unknown"),
        ({"k9": b""}, "commitment"),  # absent, never empty
    ],
)
def test_schema_violations_are_malformed(changes: dict[str, Any], needle: str) -> None:
    token = forge(card_map(**changes))
    with pytest.raises(MalformedToken) as info:
        decode_token(token)
    assert needle in str(info.value).lower() or needle in repr(info.value.__cause__).lower()


def test_oversized_connect_is_malformed() -> None:
    body = card_map(k1=1, k8=bytes(1025))
    with pytest.raises(MalformedToken):
        decode_token(forge(body))
    decode_token(forge(card_map(k1=1, k8=bytes(1024))))  # the limit itself is fine


def test_text_key_and_bool_key_are_malformed() -> None:
    body = card_map()
    body["label"] = body.pop(7)
    with pytest.raises(MalformedToken, match="integer keys"):
        decode_token(forge(body))
    body = card_map(k1=None)
    body[True] = 0  # cbor2 writes `true` as the key; True == 1 in a Python dict
    with pytest.raises(MalformedToken):
        decode_token(forge(body))


def test_non_canonical_cbor_is_malformed() -> None:
    canonical_body = bytes.fromhex(CARD_BODY_HEX)
    longer_int = canonical_body.replace(bytes.fromhex("0001"), bytes.fromhex("001801"), 1)
    indefinite = bytes.fromhex("bf") + canonical_body[1:] + bytes.fromhex("ff")
    trailing = canonical_body + b"\x00"
    unsorted = cbor2.dumps(dict(reversed(list(card_map().items()))))
    assert unsorted != canonical_body
    for body in (longer_int, indefinite, trailing, unsorted):
        with pytest.raises(MalformedToken):
            decode_token(forge(body))  # validly signed over the non-canonical bytes


def test_not_a_map_is_malformed() -> None:
    for value in ([1, 2, 3], 1, b"", "didlink", None):
        with pytest.raises(MalformedToken):
            decode_token(forge(cbor2.dumps(value, canonical=True)))


def test_version() -> None:
    with pytest.raises(UnsupportedVersion, match="version 3"):
        decode_token(forge(card_map(k0=3)))
    # another version's schema is unknown: its fields do not make it "malformed"
    with pytest.raises(UnsupportedVersion):
        decode_token(forge({0: 3, 99: "future"}))
    # version 2 is the one with `reach` (tests/test_invitation_reach.py): without it, malformed
    with pytest.raises(MalformedToken):
        decode_token(forge(card_map(k0=2)))
    for bad in ("1", True, 1.0, b"\x01"):
        with pytest.raises(MalformedToken):
            decode_token(forge(card_map(k0=bad)))
    with pytest.raises(UnsupportedVersion):
        decode_token(forge(card_map(k0=-1)))
    with pytest.raises(MalformedToken, match="version number"):
        decode_token(forge(card_map(k0=None)))


# --- checks 3-6 and their order ----------------------------------------------------------

SMALL_ORDER_KEY = bytes(32)  # y = 0: a point of order 4
NOT_ON_CURVE = bytes.fromhex("02" + "00" * 31)  # y = 2 has no x on edwards25519


def test_bad_did() -> None:
    for bad_key in (SMALL_ORDER_KEY, NOT_ON_CURVE):
        with pytest.raises(BadTokenDid):
            decode_token(forge(card_map(k3=bad_key)))


def test_bad_signature() -> None:
    with pytest.raises(BadSignature):
        decode_token(forge(card_map(), seed=OTHER_SEED))  # signed by someone else
    with pytest.raises(BadSignature):
        decode_token(forge(card_map(), domain=RESPONSE_DOMAIN))  # wrong domain
    with pytest.raises(BadSignature):
        decode_token(forge(card_map(), domain=b""))  # no domain at all
    with pytest.raises(BadSignature):
        decode_token(forge(card_map(), signature=bytes(64)))


def test_error_order() -> None:
    """Each token has two faults; the earlier check in spec §5 is the one reported."""
    expired_at = T0 + 30 * 86400 + CLOCK_SKEW + 1
    unsigned = card_map(k5=T0 + 60)
    cases: list[tuple[str, type[InvitationError]]] = [
        # malformed and unsupported version: the version comes first (see spec §5 check 2)
        (forge(card_map(k0=3, k2=b"short")), UnsupportedVersion),
        # malformed schema and bad DID
        (forge(card_map(k3=SMALL_ORDER_KEY, k2=b"short")), MalformedToken),
        # unsupported version and bad signature
        (forge(card_map(k0=7), seed=OTHER_SEED), UnsupportedVersion),
        # bad DID and bad signature
        (forge(card_map(k3=SMALL_ORDER_KEY), seed=OTHER_SEED), BadTokenDid),
        # bad signature and expired
        (forge(unsigned, seed=OTHER_SEED), BadSignature),
    ]
    for token, error in cases:
        with pytest.raises(error):
            invitation = decode_token(token)
            assert isinstance(invitation, Invitation)
            verify_invitation(invitation, now=expired_at, already_used=True)
    # expired and already used: expired first
    with pytest.raises(Expired):
        verify_invitation(card(), now=expired_at, already_used=True)


def test_verify_invitation_rechecks_signature_of_in_memory_objects() -> None:
    tampered = card().model_copy(update={"label": "Mallory"})
    with pytest.raises(BadSignature):
        verify_invitation(tampered, now=T0, already_used=False)
    bad_did = card().model_copy(update={"inviter_key": SMALL_ORDER_KEY})
    with pytest.raises(BadTokenDid):
        verify_invitation(bad_did, now=T0, already_used=False)


def test_clock_skew_edges() -> None:
    invitation = card(lifetime=3600)
    expires = T0 + 3600
    verify_invitation(invitation, now=T0 - CLOCK_SKEW, already_used=False)  # created = now + S
    with pytest.raises(NotYetValid):
        verify_invitation(invitation, now=T0 - CLOCK_SKEW - 1, already_used=False)
    verify_invitation(invitation, now=expires + CLOCK_SKEW, already_used=False)  # now = exp + S
    with pytest.raises(Expired):
        verify_invitation(invitation, now=expires + CLOCK_SKEW + 1, already_used=False)
    assert CLOCK_SKEW == 120


def test_single_use_and_multi_use() -> None:
    with pytest.raises(AlreadyUsed):
        verify_invitation(card(), now=T0, already_used=True)
    verify_invitation(card(), now=T0, already_used=False)
    verify_invitation(card(multi_use=True), now=T0, already_used=True)


# --- responses ---------------------------------------------------------------------------


def test_response_checks() -> None:
    invitation = card(lifetime=3600)
    response = Response.create(OTHER, invitation=invitation, now=T0 + 60)
    verify_response(response, invitation=invitation, now=T0 + 60)
    other_invitation = card(id=bytes(16))
    with pytest.raises(ResponseMismatch, match="another invitation"):
        verify_response(response, invitation=other_invitation, now=T0 + 60)
    own = Response.create(KEY, invitation=invitation, now=T0 + 60)
    with pytest.raises(ResponseMismatch, match="inviter"):
        verify_response(own, invitation=invitation, now=T0 + 60)
    early = Response.create(OTHER, invitation=invitation, now=T0 - CLOCK_SKEW - 1)
    with pytest.raises(ResponseMismatch, match="older"):
        verify_response(early, invitation=invitation, now=T0 + 60)
    verify_response(
        Response.create(OTHER, invitation=invitation, now=T0 - CLOCK_SKEW),
        invitation=invitation,
        now=T0,
    )
    with pytest.raises(NotYetValid):
        verify_response(response, invitation=invitation, now=T0 + 60 - CLOCK_SKEW - 1)
    with pytest.raises(Expired):
        verify_response(response, invitation=invitation, now=T0 + 3600 + CLOCK_SKEW + 1)
    tampered = response.model_copy(update={"connect": b"evil"})
    with pytest.raises(BadSignature):
        verify_response(tampered, invitation=invitation, now=T0 + 60)


def test_response_decoding_errors() -> None:
    assert decode_token(forge(response_map(), tag=2, seed=OTHER_SEED)) == Response.create(
        OTHER, invitation=card(), now=T0 + 60
    )
    with pytest.raises(BadSignature):
        decode_token(forge(response_map(), tag=2, seed=OTHER_SEED, domain=INVITATION_DOMAIN))
    with pytest.raises(MalformedToken):
        decode_token(forge(response_map(k1=bytes(8)), tag=2, seed=OTHER_SEED))
    with pytest.raises(MalformedToken):
        decode_token(forge(response_map(k5=b""), tag=2, seed=OTHER_SEED))
    with pytest.raises(UnsupportedVersion, match="reads version 1, 2 and 3"):
        decode_token(forge(response_map(k0=4), tag=2, seed=OTHER_SEED))
    with pytest.raises(BadTokenDid):
        decode_token(forge(response_map(k2=SMALL_ORDER_KEY), tag=2, seed=OTHER_SEED))
    # an invitation body under the response tag (and the other way round) never verifies
    with pytest.raises(MalformedToken):
        decode_token(forge(card_map(), tag=2))
    with pytest.raises(MalformedToken):
        decode_token(forge(response_map(), tag=1, seed=OTHER_SEED))


# --- the response's label (spec §3: version 2) ----------------------------------------------

# The response above with the label "Bob" (key 5), so version 2: 6 pairs.
LABELLED_RESPONSE_BODY_HEX = (
    "a6"
    "0002"  # 0: version 2
    "0150a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
    "025820" + OTHER_PK_HEX + "031a6553f13c"
    "0440"
    "0563426f62"  # 5: label "Bob", tstr(3)
)


def test_labelled_response_known_answer() -> None:
    response = Response.create(OTHER, invitation=card(), now=T0 + 60, label="Bob")
    assert response.version == 2
    assert response.body().hex() == LABELLED_RESPONSE_BODY_HEX
    VerifyKey(OTHER.public_key).verify(
        RESPONSE_DOMAIN + bytes.fromhex(LABELLED_RESPONSE_BODY_HEX), response.signature
    )
    decoded = decode_token(encode_token(response))
    assert isinstance(decoded, Response)
    assert decoded.label == "Bob"
    verify_response(decoded, invitation=card(), now=T0 + 60)


def test_unlabelled_response_stays_version_1() -> None:
    """A response without a label is the version-1 token older didlinks read."""
    response = Response.create(OTHER, invitation=card(), now=T0 + 60)
    assert response.version == 1 and response.label is None
    assert response.body().hex() == RESPONSE_BODY_HEX
    assert decode_token(forge(response_map(), tag=2, seed=OTHER_SEED)) == response


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"k0": 2}, "lacks"),  # version 2 without its label
        ({"k5": "Bob"}, "unknown"),  # a label in version 1
        ({"k0": 2, "k5": ""}, "label"),  # empty: absent instead (version 1)
        ({"k0": 2, "k5": "x" * 65}, "label"),  # oversize (characters)
        ({"k0": 2, "k5": "😀" * 33}, "label"),  # oversize (132 UTF-8 bytes)
        ({"k0": 2, "k5": "Bob\x1b[2J"}, "label"),  # a terminal escape
        ({"k0": 2, "k5": "Bob\u202e"}, "label"),  # a bidi override
        ({"k0": 2, "k5": "Bob\n"}, "label"),  # a line break
        ({"k0": 2, "k5": b"Bob"}, "label"),  # bstr instead of tstr
        ({"k0": 2, "k5": 7}, "label"),  # an integer
        ({"k0": 2, "k5": ["Bob"]}, "label"),  # an array
        ({"k0": 2, "k5": "Bob", "k6": "x"}, "unknown"),  # still a closed schema
    ],
)
def test_response_label_violations_are_malformed(changes: dict[str, Any], needle: str) -> None:
    token = forge(response_map(**changes), tag=2, seed=OTHER_SEED)
    with pytest.raises(MalformedToken) as info:
        decode_token(token)
    assert needle in str(info.value).lower() or needle in repr(info.value.__cause__).lower()


def test_response_label_is_signed() -> None:
    response = Response.create(OTHER, invitation=card(), now=T0 + 60, label="Bob")
    renamed = response.model_copy(update={"label": "Alice"})
    with pytest.raises(BadSignature):
        verify_response(renamed, invitation=card(), now=T0 + 60)
    # the same body with another label, under the original signature: refused on decoding
    forged = forge(response_map(k0=2, k5="Eve"), tag=2, signature=response.signature)
    with pytest.raises(BadSignature):
        decode_token(forged)


@pytest.mark.parametrize("label", ["", "x" * 65, "bell\x07", "a\u2066b"])
def test_response_create_refuses_bad_labels(label: str) -> None:
    with pytest.raises(ValueError) as info:
        Response.create(OTHER, invitation=card(), now=T0 + 60, label=label)
    assert "\n" not in str(info.value)


@settings(max_examples=100, deadline=None)
@given(
    label=st.text(min_size=1, max_size=64).filter(lambda t: label_problem(t) is None),
    connect=st.binary(max_size=1024),
)
def test_labelled_response_round_trip(label: str, connect: bytes) -> None:
    response = Response.create(OTHER, invitation=card(), now=T0 + 60, connect=connect, label=label)
    decoded = decode_token(encode_token(response))
    assert decoded == response
    assert isinstance(decoded, Response) and decoded.label == label
    verify_response(decoded, invitation=card(), now=T0 + 60)


# --- creating ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"label": ""},
        {"label": "x" * 65},
        {"label": "bell\x07"},
        {"lifetime": 0},
        {"lifetime": -5},
        {"connect": b"offer"},  # a card carries no connect
        {"commitment": b"c"},
        {"kind": InvitationKind.INVITE, "connect": bytes(1025)},
        {"id": bytes(15)},
        {"now": MAX_TIME, "lifetime": 1},
        {"now": -1},
    ],
)
def test_create_refuses_bad_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as info:
        card(**options)
    assert "\n" not in str(info.value)


def test_create_draws_random_ids() -> None:
    first = Invitation.create(KEY, now=T0, lifetime=60)
    second = Invitation.create(KEY, now=T0, lifetime=60)
    assert len(first.id) == 16
    assert first.id != second.id
    assert first.label is None
    assert first.kind is InvitationKind.CARD
    assert not first.multi_use


def test_models_are_frozen() -> None:
    invitation = card()
    with pytest.raises(ValidationError, match="frozen"):
        invitation.label = "Mallory"


def test_iso_time() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00Z"
    assert iso_time(T0) == "2023-11-14T22:13:20Z"
    assert iso_time(MAX_TIME) == "9999-12-31T23:59:59Z"
    assert "Unix seconds" in iso_time(MAX_TIME + 1)
    assert "Unix seconds" in iso_time(-1)
