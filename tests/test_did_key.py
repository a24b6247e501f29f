"""did:key parsing and encoding (specs/identity.md §1-§3).

Known answers: every DID in tests/vectors/did-key/*.json (w3c-ccg/did-method-key test vectors);
the expected key bytes are taken from the vectors' own key material (publicKeyBase58 or the
JWK coordinates, recompressed with pyca/cryptography), the private keys are turned into public
keys with pyca/cryptography or libsodium, never with the code under test.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any

import base58
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from identity.did_key import (
    MAX_DID_LENGTH,
    DidKey,
    KeyType,
    ed25519_did,
    ed25519_public_key,
    encode_did_key,
    parse_did_key,
)
from identity.errors import (
    DidError,
    IdentityError,
    InvalidDid,
    InvalidPublicKey,
    InvalidPublicKeyLength,
    UnsupportedPublicKeyType,
)
from identity.keys import IdentityKey, did_x25519_public
from tests.support.vectors import load_json

FILES = ("ed25519-x25519.json", "x25519.json", "nist-curves.json", "secp256k1.json")
CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
CURVES["secp256k1"] = ec.SECP256K1()


def _entries() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name in FILES:
        data = load_json(f"did-key/{name}")
        entries = data["didDocument"] if name == "x25519.json" else data
        for did, entry in entries.items():
            yield name, did, entry


ENTRIES = list(_entries())
IDS = [did[8:24] for _, did, _ in ENTRIES]


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key_from_method(method: dict[str, Any]) -> bytes:
    """The did:key key bytes of a vector's verification method, decoded independently."""
    if "publicKeyBase58" in method:
        return bytes(base58.b58decode(method["publicKeyBase58"]))
    jwk = method["publicKeyJwk"]
    if jwk["kty"] == "OKP":
        return _b64(jwk["x"])
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_b64(jwk["x"]), "big"),
        int.from_bytes(_b64(jwk["y"]), "big"),
        CURVES[jwk["crv"]],
    )
    return numbers.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def _compressed(private_value: bytes, curve: ec.EllipticCurve) -> bytes:
    key = ec.derive_private_key(int.from_bytes(private_value, "big"), curve)
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def _did(payload: bytes) -> str:
    return "did:key:z" + base58.b58encode(payload).decode()


EXPECTED_TYPE = {"z6Mk": KeyType.ED25519, "z6LS": KeyType.X25519, "zDna": KeyType.P256}
EXPECTED_TYPE |= {"z82L": KeyType.P384, "z2J9": KeyType.P521, "zQ3s": KeyType.SECP256K1}


# --- known answers --------------------------------------------------------------------------


def test_every_vector_file_is_used() -> None:
    assert len(ENTRIES) == 22
    assert {parse_did_key(did).key_type for _, did, _ in ENTRIES} == set(KeyType)


@pytest.mark.vectors
@pytest.mark.parametrize(("name", "did", "entry"), ENTRIES, ids=IDS)
def test_vector_did_to_key_and_back(name: str, did: str, entry: dict[str, Any]) -> None:
    document = entry.get("didDocument", entry)
    own = document["verificationMethod"][0]
    parsed = parse_did_key(did)
    assert parsed == DidKey(
        did=did, key_type=EXPECTED_TYPE[did[8:12]], public_key=_key_from_method(own)
    )
    assert parsed.fingerprint == did.removeprefix("did:key:")
    assert own["id"] == f"{did}#{parsed.fingerprint}"
    assert encode_did_key(parsed.key_type, parsed.public_key) == did


@pytest.mark.vectors
@pytest.mark.parametrize(
    ("name", "did", "entry"), [e for e in ENTRIES if e[0] == "ed25519-x25519.json"], ids=IDS[:5]
)
def test_vector_ed25519_seed_and_key_agreement(name: str, did: str, entry: dict[str, Any]) -> None:
    seed = bytes.fromhex(entry["seed"])
    identity = IdentityKey(seed)
    assert identity.did == did
    assert ed25519_did(identity.public_key) == did
    assert ed25519_public_key(did) == identity.public_key
    signing = entry["verificationKeyPair"]
    assert signing["id"] in (f"#{did[8:]}", f"{did}#{did[8:]}")
    assert _key_from_method(signing) == identity.public_key
    if "privateKeyJwk" in signing:
        assert _b64(signing["privateKeyJwk"]["d"]) == seed

    agreement = entry["keyAgreementKeyPair"]
    x25519_public = _key_from_method(agreement)
    assert identity.x25519_public == x25519_public == did_x25519_public(did)
    fragment = agreement["id"].partition("#")[2]
    assert fragment == encode_did_key(KeyType.X25519, x25519_public)[8:]
    assert fragment.startswith("z6LS")
    private = (
        base58.b58decode(agreement["privateKeyBase58"])
        if "privateKeyBase58" in agreement
        else _b64(agreement["privateKeyJwk"]["d"])
    )
    assert identity.x25519_private == private


@pytest.mark.vectors
@pytest.mark.parametrize(
    ("name", "did", "entry"),
    [e for e in ENTRIES if e[0] in ("nist-curves.json", "secp256k1.json")],
    ids=IDS[9:],
)
def test_vector_ec_private_key_gives_the_did(name: str, did: str, entry: dict[str, Any]) -> None:
    pair = entry.get("verificationKeyPair") or entry["verificationMethod"]
    assert pair["id"] in (f"#{did[8:]}", f"{did}#{did[8:]}")
    key_type = parse_did_key(did).key_type
    curve = key_type.curve
    assert curve is not None
    if "privateKeyJwk" in pair:
        private = _b64(pair["privateKeyJwk"]["d"])
    else:
        private = bytes(base58.b58decode(pair["privateKeyBase58"]))
    if "seed" in entry:
        assert bytes.fromhex(entry["seed"]) == private
    assert encode_did_key(key_type, _compressed(private, curve)) == did


@pytest.mark.vectors
@pytest.mark.parametrize(
    "did",
    [
        "did:key:tKwz7Ge1Yxzr4JHavN33wiwa8y81QdcMRLXQsrH9T53b",
        "did:key:z6MkNCwzLDQsNSw3LDcsNSw1LDAsMyw0LDUsMCwzLDQsMywxLDMsNCw1LDAsMyw0LDUsMCwzLDQsNSw3LDAsMCwxMDA=",
    ],
)
def test_negative_vectors_from_the_test_suite(did: str) -> None:
    with pytest.raises(InvalidDid) as info:
        parse_did_key(did)
    assert info.value.code == "invalidDid"


# --- negative cases, one group per error name -----------------------------------------------

GOOD = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
ED_KEY = bytes(base58.b58decode("4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS"))


@pytest.mark.parametrize(
    "did",
    [
        "",
        "did",
        "did:key:",
        "did:key:z",
        "did:web:example.com",
        "DID:KEY:" + GOOD[8:],
        "did:key" + GOOD[7:].replace(":", ";"),
        " " + GOOD,
        GOOD + "\n",
        GOOD[:20] + " " + GOOD[20:],
        GOOD + "#" + GOOD[8:],
        GOOD + "?service=x",
        GOOD + "/path",
        "did:key:1:" + GOOD[8:],
        "did:key:" + "m" + base64.b64encode(b"\xed\x01" + ED_KEY).decode(),
        GOOD.replace("i", "l"),
        GOOD.replace("T", "0"),
        GOOD[:-1] + "é",
        "did:key:z" + "1" * (MAX_DID_LENGTH - 8),
        _did(b""),
        _did(b"\x80"),
        _did(b"\xed\x81\x00" + ED_KEY),
    ],
    ids=lambda d: repr(d[:30]),
)
def test_invalid_did(did: str) -> None:
    with pytest.raises(InvalidDid) as info:
        parse_did_key(did)
    assert info.value.code == "invalidDid"
    assert str(info.value)


def test_not_a_string_is_invalid_did() -> None:
    with pytest.raises(InvalidDid):
        parse_did_key(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00" + ED_KEY,  # identity codec
        b"\xe8\x01" + bytes(48),  # bls12_381-g1-pub
        b"\x85\x24" + bytes(40),  # rsa-pub (checked before the length)
        b"\x80\x80\x04" + ED_KEY,  # 0x10000: not a key codec
    ],
)
def test_unsupported_public_key_type(payload: bytes) -> None:
    with pytest.raises(UnsupportedPublicKeyType) as info:
        parse_did_key(_did(payload))
    assert info.value.code == "unsupportedPublicKeyType"


def test_ed25519_helpers_refuse_other_key_types() -> None:
    x25519 = "did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F"
    with pytest.raises(UnsupportedPublicKeyType):
        ed25519_public_key(x25519)
    with pytest.raises(UnsupportedPublicKeyType):
        did_x25519_public(x25519)


P256_POINT = bytes(base58.b58decode("23youFZZdHMVdpv28DRSWP2zJbTJ8KHBeSKUX3qVqqnmp"))


@pytest.mark.parametrize(
    "payload",
    [
        b"\xed\x01",
        b"\xed\x01" + ED_KEY[:31],
        b"\xed\x01" + ED_KEY + b"\x00",
        b"\xec\x01" + bytes(31),
        b"\xe7\x01" + bytes(32),
        b"\x80\x24" + b"\x04" + bytes(64),  # an uncompressed P-256 point is not accepted
        b"\x81\x24" + P256_POINT,  # a P-256 point under the P-384 codec
        b"\x82\x24" + bytes(66),
    ],
)
def test_invalid_public_key_length(payload: bytes) -> None:
    with pytest.raises(InvalidPublicKeyLength) as info:
        parse_did_key(_did(payload))
    assert info.value.code == "invalidPublicKeyLength"


@pytest.mark.parametrize(
    "payload",
    [
        b"\xed\x01" + (2).to_bytes(32, "little"),  # y = 2: (y²-1)/(dy²+1) is no square mod p
        b"\xed\x01" + bytes(32),  # y = 0: a point of order 4
        b"\xed\x01" + (1).to_bytes(32, "little"),  # the neutral element
        b"\x80\x24" + b"\x02" + (1).to_bytes(32, "big"),  # x = 1: x³-3x+b is no square mod p
        b"\x80\x24" + b"\x04" + P256_POINT[1:],  # wrong SEC1 tag for a 33-byte point
        b"\x80\x24" + b"\x02" + b"\xff" * 32,  # x >= p
        b"\xe7\x01" + b"\x03" + bytes(32),  # secp256k1: x = 0 gives y² = 7, no square
    ],
)
def test_invalid_public_key(payload: bytes) -> None:
    with pytest.raises(InvalidPublicKey) as info:
        parse_did_key(_did(payload))
    assert info.value.code == "invalidPublicKey"


def test_encode_checks_the_key_like_a_parse() -> None:
    with pytest.raises(InvalidPublicKeyLength):
        encode_did_key(KeyType.P256, b"\x04" + bytes(64))
    with pytest.raises(InvalidPublicKey):
        encode_did_key(KeyType.ED25519, bytes(32))
    with pytest.raises(InvalidPublicKeyLength):
        ed25519_did(bytes(31))


def test_error_names_and_hierarchy() -> None:
    for cls, code in [
        (InvalidDid, "invalidDid"),
        (InvalidPublicKeyLength, "invalidPublicKeyLength"),
        (InvalidPublicKey, "invalidPublicKey"),
        (UnsupportedPublicKeyType, "unsupportedPublicKeyType"),
    ]:
        assert cls.code == code
        assert issubclass(cls, DidError)
        assert issubclass(cls, IdentityError)


def test_the_longest_vector_did_is_well_under_the_limit() -> None:
    longest = max((did for _, did, _ in ENTRIES), key=len)
    assert parse_did_key(longest).key_type is KeyType.P521
    assert len(longest) < MAX_DID_LENGTH * 0.6


# --- properties -----------------------------------------------------------------------------


@st.composite
def _public_keys(draw: st.DrawFn) -> tuple[KeyType, bytes]:
    key_type = draw(st.sampled_from(list(KeyType)))
    if key_type is KeyType.ED25519:
        seed = draw(st.binary(min_size=32, max_size=32))
        public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
        return key_type, public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if key_type is KeyType.X25519:
        return key_type, draw(st.binary(min_size=32, max_size=32))
    curve = key_type.curve
    assert curve is not None
    scalar = draw(st.integers(min_value=1, max_value=2 ** (curve.key_size - 1)))  # < order
    size = (curve.key_size + 7) // 8
    return key_type, _compressed(scalar.to_bytes(size, "big"), curve)


@settings(max_examples=150, deadline=None)
@given(_public_keys())
def test_round_trip_every_key_type(key: tuple[KeyType, bytes]) -> None:
    key_type, public = key
    did = encode_did_key(key_type, public)
    assert did.startswith("did:key:z")
    assert parse_did_key(did) == DidKey(did=did, key_type=key_type, public_key=public)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=220) | st.text(max_size=120).map(lambda s: "did:key:" + s))
def test_random_text_only_raises_did_errors(text: str) -> None:
    with contextlib.suppress(DidError):
        parse_did_key(text)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [b"", b"\xed\x01", b"\xec\x01", b"\xe7\x01", b"\x80\x24", b"\x81\x24", b"\x82\x24"]
    ),
    st.binary(max_size=80),
)
def test_random_payloads_only_raise_did_errors(prefix: bytes, body: bytes) -> None:
    did = _did(prefix + body)
    try:
        parsed = parse_did_key(did)
    except DidError:
        return
    assert _did(varint_of(parsed.key_type) + parsed.public_key) == did


def varint_of(key_type: KeyType) -> bytes:
    """The unsigned varint of a codec, written out by hand as an independent check."""
    value, out = key_type.codec, bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_each_codec_prefix_is_its_two_byte_minimal_varint(key_type: KeyType) -> None:
    """parse_did_key looks the codec up by the first two bytes (issue 28, point 4): that is
    exact only if every supported codec's varint is two bytes, as multiformats encodes it."""
    from multiformats import varint

    assert key_type.codec_prefix == varint_of(key_type) == varint.encode(key_type.codec)
    assert len(key_type.codec_prefix) == 2
    assert varint.decode_raw(key_type.codec_prefix + b"\x00")[:2] == (key_type.codec, 2)
