"""did:key encoding and decoding (w3c-ccg did-method-key; specs/identity.md §1-§3).

A did:key is `did:key:` + multibase base58btc (`z` prefix) of the unsigned-varint multicodec of
the key type followed by the raw public key bytes. Parsing checks, in this order (specs §3):

1. shape: a string of at most 200 characters, `did:key:` prefix, no whitespace, no DID URL
   parts (`#fragment`, `?query`, `/path`), a method-specific id of `z` + base58btc letters;
2. base58btc decodes; the multicodec varint is complete and minimally encoded;
3. the codec is one we support (unsupportedPublicKeyType);
4. the key has the right length for its type (invalidPublicKeyLength);
5. the key is a valid key for its type (invalidPublicKey): a point on the curve for the EC
   curves (pyca/cryptography), and for Ed25519 libsodium's Ed25519 -> X25519 conversion must
   succeed (it refuses non-points and small-order points).

`ed25519_did`, `ed25519_public_key` and `PREFIX` are the narrow helpers identity.keys uses.

Every supported codec's varint is two bytes, so step 2's varint is a lookup of the first two
bytes; only a DID that fails it is decoded by multiformats, to name what is wrong. That and the
EC curves (pyca's `ec`) load only when needed: reading a DID is on the path of commands that must
start quickly (`didlink whoami`, issue 28 point 4), and multiformats alone takes about 30 ms to
import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, NoReturn

import base58
import nacl.bindings

from identity.errors import (
    InvalidDid,
    InvalidPublicKey,
    InvalidPublicKeyLength,
    UnsupportedPublicKeyType,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

PREFIX = "did:key:"
ED25519_CODEC = b"\xed\x01"
MAX_DID_LENGTH = 200
"""Longer strings are refused before any decoding (the longest supported DID, P-521, is 104)."""

_BASE58BTC = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_METHOD_ID = re.compile(f"z[{_BASE58BTC}]+")


def _varint(value: int) -> bytes:
    """The unsigned varint (multiformats) of `value`: 7 bits a byte, lowest first."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class KeyType(Enum):
    """A public key type a did:key can hold: (multicodec code, key length, display name)."""

    ED25519 = (0xED, 32, "Ed25519")
    X25519 = (0xEC, 32, "X25519")
    SECP256K1 = (0xE7, 33, "secp256k1")
    P256 = (0x1200, 33, "P-256")
    P384 = (0x1201, 49, "P-384")
    P521 = (0x1202, 67, "P-521")

    def __init__(self, codec: int, key_length: int, label: str) -> None:
        self.codec = codec
        self.key_length = key_length
        self.label = label
        self.codec_prefix = _varint(codec)

    @property
    def curve(self) -> ec.EllipticCurve | None:
        """The pyca/cryptography curve of an EC key type (compressed SEC1 points), else None."""
        if self in (KeyType.ED25519, KeyType.X25519):
            return None
        from cryptography.hazmat.primitives.asymmetric import ec  # late: only EC keys need it

        curves: dict[KeyType, ec.EllipticCurve] = {
            KeyType.SECP256K1: ec.SECP256K1(),
            KeyType.P256: ec.SECP256R1(),
            KeyType.P384: ec.SECP384R1(),
            KeyType.P521: ec.SECP521R1(),
        }
        return curves.get(self)


_BY_CODEC_PREFIX = {key_type.codec_prefix: key_type for key_type in KeyType}
_CODEC_PREFIX_LENGTH = 2
"""Every supported codec's varint is two bytes (checked in tests/test_did_key.py)."""


@dataclass(frozen=True)
class DidKey:
    """A parsed did:key: the DID string, its key type and the raw public key bytes.

    EC keys are 33/49/67-byte compressed SEC1 points; Ed25519 and X25519 keys are 32 raw bytes.
    """

    did: str
    key_type: KeyType
    public_key: bytes

    @property
    def fingerprint(self) -> str:
        """The method-specific id (`z...`), also the fragment of the key's verification method."""
        return self.did[len(PREFIX) :]


def encode_did_key(key_type: KeyType, public_key: bytes) -> str:
    """The did:key of `public_key` of type `key_type`, after checking the key like a parse."""
    _check_key(key_type, public_key)
    return _encode(key_type, public_key)


def parse_did_key(did: str) -> DidKey:
    """Parse and validate a did:key (checks in the order of the module docstring).

    Raises InvalidDid, UnsupportedPublicKeyType, InvalidPublicKeyLength or InvalidPublicKey.
    """
    method_id = _check_shape(did)
    try:
        raw = base58.b58decode(method_id[1:])
    except Exception as exc:  # never let a decoder's own error leak
        raise InvalidDid("the did:key is not valid base58btc") from exc
    key_type = _BY_CODEC_PREFIX.get(raw[:_CODEC_PREFIX_LENGTH])
    if key_type is None:
        _refuse_codec(raw)
    public_key = raw[_CODEC_PREFIX_LENGTH:]
    _check_key(key_type, public_key)
    if _encode(key_type, public_key) != did:  # cannot happen: base58 and minimal varints are 1:1
        raise InvalidDid("the did:key is not in its canonical encoding")
    return DidKey(did=did, key_type=key_type, public_key=public_key)


def ed25519_did(public_key: bytes) -> str:
    """The did:key of a 32-byte Ed25519 public key."""
    if len(public_key) != KeyType.ED25519.key_length:
        raise InvalidPublicKeyLength("an Ed25519 public key is 32 bytes")
    return _encode(KeyType.ED25519, public_key)


def ed25519_public_key(did: str) -> bytes:
    """The 32-byte Ed25519 public key inside an Ed25519 did:key (fully validated)."""
    parsed = parse_did_key(did)
    if parsed.key_type is not KeyType.ED25519:
        raise UnsupportedPublicKeyType(
            f"expected an Ed25519 did:key, got a {parsed.key_type.label} one"
        )
    return parsed.public_key


def _refuse_codec(raw: bytes) -> NoReturn:
    """Step 2 or 3's error for bytes that start with no supported codec's varint.

    decode_raw refuses a varint that is incomplete, longer than 9 bytes or not minimally
    encoded, so a varint it accepts is not one of the supported codecs' (the lookup found none).
    """
    from multiformats import varint  # late: only a DID that is refused needs it

    try:
        codec, _, _ = varint.decode_raw(raw)
    except ValueError as exc:
        raise InvalidDid("the did:key does not start with a valid multicodec varint") from exc
    raise UnsupportedPublicKeyType(f"did:key multicodec 0x{codec:x} is not a supported key type")


def _encode(key_type: KeyType, public_key: bytes) -> str:
    payload = key_type.codec_prefix + public_key
    return PREFIX + "z" + base58.b58encode(payload).decode("ascii")


def _check_shape(did: str) -> str:
    """Step 1: the textual checks; returns the method-specific id."""
    if not isinstance(did, str):
        raise InvalidDid("a DID must be text")
    if len(did) > MAX_DID_LENGTH:
        raise InvalidDid(f"the DID is longer than {MAX_DID_LENGTH} characters")
    if any(ch.isspace() for ch in did):
        raise InvalidDid("the DID contains whitespace")
    if not did.startswith(PREFIX):
        raise InvalidDid("not a did:key (it must start with 'did:key:')")
    method_id = did[len(PREFIX) :]
    if any(ch in method_id for ch in "#?/"):
        raise InvalidDid("a DID URL (with '#', '?' or '/') is not accepted; give the bare DID")
    if not method_id.startswith("z"):
        raise InvalidDid("the did:key is not multibase base58btc (it must start with 'z')")
    if _METHOD_ID.fullmatch(method_id) is None:
        raise InvalidDid("the did:key is not valid base58btc")
    return method_id


def _check_key(key_type: KeyType, public_key: bytes) -> None:
    """Steps 4 and 5: length, then validity of the key for its type."""
    if len(public_key) != key_type.key_length:
        raise InvalidPublicKeyLength(
            f"a {key_type.label} public key in a did:key is {key_type.key_length} bytes,"
            f" this one is {len(public_key)}"
        )
    curve = key_type.curve
    if curve is not None:
        from cryptography.hazmat.primitives.asymmetric import ec

        if public_key[0] not in (2, 3):
            raise InvalidPublicKey(f"the {key_type.label} key is not a compressed point")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(curve, public_key)
        except ValueError as exc:
            raise InvalidPublicKey(f"the {key_type.label} key is not a point on the curve") from exc
    elif key_type is KeyType.ED25519:
        try:
            nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(public_key)
        except Exception as exc:  # nacl raises RuntimeError for bad points
            raise InvalidPublicKey("the Ed25519 key is not a valid curve point") from exc
