"""DID documents of did:key DIDs (specs/identity.md §4).

Every document in tests/vectors/did-key/*.json (w3c-ccg/did-method-key) is compared whole with
what `resolve` produces in the representation that vector uses (JsonWebKey2020 when its second
context is jws-2020, else the base58 2018/2019 suites).
"""

from __future__ import annotations

import base64
from typing import Any

import base58
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from identity.did_document import (
    DID_CONTEXT,
    JWS_2020_CONTEXT,
    DidDocument,
    PublicKeyFormat,
    resolve,
)
from identity.did_key import KeyType, encode_did_key, parse_did_key
from identity.errors import InvalidDid, InvalidPublicKey, UnsupportedPublicKeyType
from identity.keys import IdentityKey
from tests.support.vectors import load_json

FILES = ("ed25519-x25519.json", "x25519.json", "nist-curves.json", "secp256k1.json")


def _documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name in FILES:
        data = load_json(f"did-key/{name}")
        if name == "x25519.json":
            out += list(data["didDocument"].items())
        else:
            out += [(did, entry["didDocument"]) for did, entry in data.items()]
    return out


DOCUMENTS = _documents()
IDS = [did[8:24] for did, _ in DOCUMENTS]
RELATIONSHIPS = (
    "authentication",
    "assertionMethod",
    "capabilityDelegation",
    "capabilityInvocation",
    "keyAgreement",
)


def _format_of(document: dict[str, Any]) -> PublicKeyFormat:
    return (
        PublicKeyFormat.JWK
        if document["@context"][1] == JWS_2020_CONTEXT
        else PublicKeyFormat.BASE58
    )


def test_both_representations_have_vectors() -> None:
    assert len(DOCUMENTS) == 22
    formats = {(parse_did_key(did).key_type, _format_of(doc)) for did, doc in DOCUMENTS}
    assert {key_type for key_type, fmt in formats if fmt is PublicKeyFormat.JWK} == set(KeyType)
    assert {key_type for key_type, fmt in formats if fmt is PublicKeyFormat.BASE58} == {
        KeyType.ED25519,
        KeyType.X25519,
        KeyType.SECP256K1,
        KeyType.P256,
    }


@pytest.mark.vectors
@pytest.mark.parametrize(("did", "expected"), DOCUMENTS, ids=IDS)
def test_vector_document(did: str, expected: dict[str, Any]) -> None:
    document = resolve(did, key_format=_format_of(expected))
    assert document.to_json() == expected


@pytest.mark.vectors
@pytest.mark.parametrize(("did", "expected"), DOCUMENTS, ids=IDS)
def test_vector_document_parses_into_the_model(did: str, expected: dict[str, Any]) -> None:
    model = DidDocument.model_validate(expected)
    assert model.to_json() == expected
    assert model == resolve(did, key_format=_format_of(expected))


@pytest.mark.vectors
@pytest.mark.parametrize(("did", "expected"), DOCUMENTS, ids=IDS)
def test_vector_relationships(did: str, expected: dict[str, Any]) -> None:
    """Relationships name methods of the document, as the did:key spec lays them out."""
    method_ids = [m["id"] for m in expected["verificationMethod"]]
    key_type = parse_did_key(did).key_type
    own = f"{did}#{did[8:]}"
    assert method_ids[0] == own
    document = resolve(did, key_format=_format_of(expected)).to_json()
    for name in RELATIONSHIPS:
        assert document.get(name) == expected.get(name), name
        for ref in document.get(name, []):
            assert ref in method_ids
    if key_type is KeyType.X25519:
        assert [name for name in RELATIONSHIPS if name in document] == ["keyAgreement"]
    elif key_type is KeyType.ED25519:
        assert document["keyAgreement"] == [method_ids[1]]
        assert method_ids[1].partition("#")[2].startswith("z6LS")
    else:
        assert all(document[name] == [own] for name in RELATIONSHIPS)


def test_default_format_is_jwk() -> None:
    did = "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"
    document = resolve(did)
    assert document.context == [DID_CONTEXT, JWS_2020_CONTEXT]
    assert [m.type for m in document.verification_method] == ["JsonWebKey2020"]
    assert document == resolve(did, key_format=PublicKeyFormat.JWK)


@pytest.mark.parametrize("key_type", [KeyType.P384, KeyType.P521])
def test_base58_form_of_the_curves_without_vectors(key_type: KeyType) -> None:
    dids = [did for did, _ in DOCUMENTS if parse_did_key(did).key_type is key_type]
    for did in dids:
        document = resolve(did, key_format=PublicKeyFormat.BASE58)
        (method,) = document.verification_method
        assert method.type == f"P{key_type.label[2:]}Key2021"
        assert method.public_key_base58 is not None
        point = base58.b58decode(method.public_key_base58)
        assert len(point) == key_type.key_length and point[0] in (2, 3)
        assert document.context[1] == "https://w3id.org/security/suites/multikey-2021/v1"


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.sampled_from(list(PublicKeyFormat)))
def test_ed25519_key_agreement_is_the_libsodium_twin(seed: bytes, fmt: PublicKeyFormat) -> None:
    identity = IdentityKey(seed)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    assert identity.public_key == public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    document = resolve(identity.did, key_format=fmt)
    assert document.key_agreement is not None
    (agreement_id,) = document.key_agreement
    assert (
        agreement_id
        == f"{identity.did}#{encode_did_key(KeyType.X25519, identity.x25519_public)[8:]}"
    )
    twin = document.verification_method[1]
    assert twin.id == agreement_id
    if fmt is PublicKeyFormat.JWK:
        assert twin.public_key_jwk is not None
        x = twin.public_key_jwk.x
        assert base64.urlsafe_b64decode(x + "=") == identity.x25519_public
    else:
        assert twin.public_key_base58 == base58.b58encode(identity.x25519_public).decode()


def test_resolve_raises_the_parse_errors() -> None:
    with pytest.raises(InvalidDid):
        resolve("did:key:tKwz7Ge1Yxzr4JHavN33wiwa8y81QdcMRLXQsrH9T53b")
    with pytest.raises(UnsupportedPublicKeyType):
        resolve("did:key:z" + base58.b58encode(b"\xe8\x01" + bytes(48)).decode())
    with pytest.raises(InvalidPublicKey):
        resolve("did:key:z" + base58.b58encode(b"\xed\x01" + bytes(32)).decode())


def test_model_rejects_unknown_members() -> None:
    _, expected = DOCUMENTS[0]
    with pytest.raises(ValidationError):
        DidDocument.model_validate({**expected, "service": []})
