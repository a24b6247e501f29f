"""DID documents of did:key DIDs (w3c-ccg did-method-key "Resolve"; specs/identity.md §4).

A did:key's document is generated from the key alone; nothing is fetched. Two representations
of the verification methods are supported, both with published known answers
(tests/vectors/did-key/):

- `PublicKeyFormat.JWK` (the default): every method is a `JsonWebKey2020` with `publicKeyJwk`
  under the jws-2020 context. It is the one representation with a known answer for every key
  type we support, and any JOSE library can read it.
- `PublicKeyFormat.BASE58`: the per-curve 2018/2019 suites with `publicKeyBase58`
  (Ed25519VerificationKey2018, X25519KeyAgreementKey2019, EcdsaSecp256k1VerificationKey2019,
  P256Key2021 / P384Key2021 / P521Key2021).

The verification method of the DID's own key has the id `<did>#<fingerprint>`. An Ed25519 DID
also gets a second method for its X25519 twin (libsodium's Ed25519 -> X25519 map), with id
`<did>#<fingerprint of the X25519 did:key>` (`#z6LS...`), used only for keyAgreement.
"""

from __future__ import annotations

import base64
from enum import Enum
from typing import Any

import base58
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from identity.did_key import DidKey, KeyType, encode_did_key, parse_did_key
from identity.keys import x25519_public_from_ed25519

DID_CONTEXT = "https://www.w3.org/ns/did/v1"
JWS_2020_CONTEXT = "https://w3id.org/security/suites/jws-2020/v1"
ED25519_2018_CONTEXT = "https://w3id.org/security/suites/ed25519-2018/v1"
X25519_2019_CONTEXT = "https://w3id.org/security/suites/x25519-2019/v1"
SECP256K1_2019_CONTEXT = "https://w3id.org/security/suites/secp256k1-2019/v1"
MULTIKEY_2021_CONTEXT = "https://w3id.org/security/suites/multikey-2021/v1"

# (verification method type, suite context) of each key type in the BASE58 representation.
_BASE58_SUITES: dict[KeyType, tuple[str, str]] = {
    KeyType.ED25519: ("Ed25519VerificationKey2018", ED25519_2018_CONTEXT),
    KeyType.X25519: ("X25519KeyAgreementKey2019", X25519_2019_CONTEXT),
    KeyType.SECP256K1: ("EcdsaSecp256k1VerificationKey2019", SECP256K1_2019_CONTEXT),
    KeyType.P256: ("P256Key2021", MULTIKEY_2021_CONTEXT),
    KeyType.P384: ("P384Key2021", MULTIKEY_2021_CONTEXT),
    KeyType.P521: ("P521Key2021", MULTIKEY_2021_CONTEXT),
}


class PublicKeyFormat(Enum):
    """How verification methods carry their key (the spec's `publicKeyFormat` option)."""

    JWK = "jwk"
    BASE58 = "base58"


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class PublicKeyJwk(_Model):
    """A public JWK (RFC 7517/7518/8037): OKP keys have `x`; EC keys have `x` and `y`."""

    kty: str
    crv: str
    x: str
    y: str | None = None


class VerificationMethod(_Model):
    """One verification method: exactly one of publicKeyJwk / publicKeyBase58 is set."""

    id: str
    type: str
    controller: str
    public_key_jwk: PublicKeyJwk | None = None
    public_key_base58: str | None = None


class DidDocument(_Model):
    """A did:key DID document; relationships a key type does not have are left out (None)."""

    context: list[str] = Field(alias="@context")
    id: str
    verification_method: list[VerificationMethod]
    authentication: list[str] | None = None
    assertion_method: list[str] | None = None
    capability_delegation: list[str] | None = None
    capability_invocation: list[str] | None = None
    key_agreement: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        """The document as JSON-ready data with the spec's member names."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def resolve(did: str, *, key_format: PublicKeyFormat = PublicKeyFormat.JWK) -> DidDocument:
    """Resolve a did:key to its DID document (raises the DidError subclasses of parse_did_key)."""
    return document_for(parse_did_key(did), key_format=key_format)


def document_for(key: DidKey, *, key_format: PublicKeyFormat = PublicKeyFormat.JWK) -> DidDocument:
    """The DID document of an already parsed did:key."""
    own = _method(key.did, key.key_type, key.public_key, key_format)
    methods = [own]
    if key.key_type is KeyType.X25519:
        signing: list[str] | None = None
        agreement = [own.id]
    elif key.key_type is KeyType.ED25519:
        twin = _method(
            key.did, KeyType.X25519, x25519_public_from_ed25519(key.public_key), key_format
        )
        methods.append(twin)
        signing, agreement = [own.id], [twin.id]
    else:  # EC curves: ECDH and signatures with the same key, as the spec's vectors list it
        signing, agreement = [own.id], [own.id]
    return DidDocument(
        context=_contexts(key.key_type, key_format),
        id=key.did,
        verification_method=methods,
        authentication=signing,
        assertion_method=signing,
        capability_delegation=signing,
        capability_invocation=signing,
        key_agreement=agreement,
    )


def public_key_jwk(key_type: KeyType, public_key: bytes) -> PublicKeyJwk:
    """The JWK of a did:key public key (EC points decompressed with pyca/cryptography)."""
    curve = key_type.curve
    if curve is None:
        return PublicKeyJwk(kty="OKP", crv=key_type.label, x=_b64url(public_key))
    numbers = ec.EllipticCurvePublicKey.from_encoded_point(curve, public_key).public_numbers()
    size = (curve.key_size + 7) // 8
    return PublicKeyJwk(
        kty="EC",
        crv=key_type.label,
        x=_b64url(numbers.x.to_bytes(size, "big")),
        y=_b64url(numbers.y.to_bytes(size, "big")),
    )


def _method(
    did: str, key_type: KeyType, public_key: bytes, key_format: PublicKeyFormat
) -> VerificationMethod:
    fingerprint = encode_did_key(key_type, public_key).removeprefix("did:key:")
    method_id = f"{did}#{fingerprint}"
    if key_format is PublicKeyFormat.JWK:
        return VerificationMethod(
            id=method_id,
            type="JsonWebKey2020",
            controller=did,
            public_key_jwk=public_key_jwk(key_type, public_key),
        )
    return VerificationMethod(
        id=method_id,
        type=_BASE58_SUITES[key_type][0],
        controller=did,
        public_key_base58=base58.b58encode(public_key).decode("ascii"),
    )


def _contexts(key_type: KeyType, key_format: PublicKeyFormat) -> list[str]:
    if key_format is PublicKeyFormat.JWK:
        return [DID_CONTEXT, JWS_2020_CONTEXT]
    contexts = [DID_CONTEXT, _BASE58_SUITES[key_type][1]]
    if key_type is KeyType.ED25519:
        contexts.append(X25519_2019_CONTEXT)
    return contexts


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
