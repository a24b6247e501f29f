"""Signed invitations and responses: the wire models and their verification (specs/invitation.md).

Theory of operation. An `Invitation` is made and signed by the inviter (`Invitation.create`);
its unsigned fields are a canonical CBOR map with small integer keys (spec §2), and the Ed25519
signature covers a domain label followed by exactly those bytes (spec §4). A `Response` is the
invitee's signed answer naming the invitation's id (spec §3). `identity.token` turns either into
the `didlink:` text form and back.

Receiving is a fixed sequence of checks, each with its own error (spec §5):
  1. encoding   `MalformedToken`      (token.py: prefix, base58, tag; here: canonical CBOR, keys)
  2. version    `UnsupportedVersion`  (checked before the v1 schema: other versions' are unknown)
     schema     `MalformedToken`      (v1 keys, types, sizes, invariants)
  3. DID        `BadTokenDid`         (the key is an Ed25519 point with an X25519 twin)
  4. signature  `BadSignature`
  5. time       `NotYetValid` / `Expired` (identity.validity, skew tolerated)
  6. use        `AlreadyUsed`         (the caller says whether it saw the id before: sans-IO)
`Invitation.from_signed` / `Response.from_signed` do 1-4; `verify_invitation` /
`verify_response` repeat 3-4 (so an in-memory model is never trusted blindly) and do 5-6.
"""

from __future__ import annotations

import os
import unicodedata
import weakref
from enum import IntEnum
from typing import Annotated, Any, Final, Literal, Self, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from identity import canonical, relay_url
from identity.did_key import ed25519_did
from identity.errors import (
    AlreadyUsed,
    BadSignature,
    BadTokenDid,
    IdentityError,
    MalformedToken,
    ResponseMismatch,
    UnsupportedVersion,
    validation_summary,
)
from identity.keys import IdentityKey, verify_signature, x25519_public_from_ed25519
from identity.validity import CLOCK_SKEW, MAX_TIME, check_not_future, check_window

VERSION: Final = 1
REACH_VERSION: Final = 2
"""An invitation that carries `reach` (key 10) is version 2 (spec §2); without it, 1."""
RESPONSE_LABEL_VERSION: Final = 2
"""A response that carries its responder's label is version 2 (spec §3); without one, 1."""
RESPONSE_RELAYS_VERSION: Final = 3
"""A response that carries its responder's relays (key 6) is version 3, label or not."""
INVITATION_DOMAIN: Final = b"didlink/v1 invitation\x00"
RESPONSE_DOMAIN: Final = b"didlink/v1 response\x00"
ID_SIZE: Final = 16
KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
MAX_LABEL_CHARS: Final = 64
MAX_LABEL_BYTES: Final = 128
MAX_CONNECT: Final = 1024
MAX_COMMITMENT: Final = 64
MAX_BODY: Final = 2048
MAX_REACH_RELAYS: Final = 4
MAX_REACH_URL_BYTES: Final = 200

# Unicode bidirectional overrides and isolates: they could make a label display as another one.
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class InvitationKind(IntEnum):
    """What an invitation is for (spec §2, key 1)."""

    CARD = 0  # a contact card: no transport offer; accepting it only saves a contact
    INVITE = 1  # a live invitation: `connect` is the inviter's transport offer (issue 5)
    RECONNECT = 2  # a known contact asking to reconnect: `connect` is an offer (issue 5)

    @property
    def label(self) -> str:
        return self.name.lower()


class UsePolicy(IntEnum):
    """How many times an invitation may be accepted (spec §2, key 6)."""

    SINGLE = 0
    MULTI = 1

    @property
    def label(self) -> str:
        return "single-use" if self is UsePolicy.SINGLE else "multi-use"


def label_problem(label: str) -> str | None:
    """Why `label` cannot be an invitation label (spec §2), or None if it can."""
    if not label:
        return "the label is empty (leave it out instead)"
    if len(label) > MAX_LABEL_CHARS:
        return f"the label is longer than {MAX_LABEL_CHARS} characters"
    if len(label.encode("utf-8")) > MAX_LABEL_BYTES:
        return f"the label is longer than {MAX_LABEL_BYTES} bytes in UTF-8"
    for char in label:
        if char in _BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cs"):
            return "the label contains control characters"
    return None


Time = Annotated[int, Field(ge=0, le=MAX_TIME)]
TokenId = Annotated[bytes, Field(min_length=ID_SIZE, max_length=ID_SIZE)]
PublicKey = Annotated[bytes, Field(min_length=KEY_SIZE, max_length=KEY_SIZE)]
Signature = Annotated[bytes, Field(min_length=SIGNATURE_SIZE, max_length=SIGNATURE_SIZE)]
Connect = Annotated[bytes, Field(max_length=MAX_CONNECT)]
Commitment = Annotated[bytes, Field(min_length=1, max_length=MAX_COMMITMENT)]


def _printable_label(label: str) -> str:
    problem = label_problem(label)
    if problem:
        raise ValueError(problem)
    return label


Label = Annotated[str, AfterValidator(_printable_label)]
"""A token's label (an invitation's or a response's): refused as `label_problem` says."""

_FROZEN = ConfigDict(frozen=True, strict=True, extra="forbid")


def _reach_url(url: str) -> str:
    if len(url.encode("utf-8")) > MAX_REACH_URL_BYTES:
        raise ValueError(f"a reach relay URL is at most {MAX_REACH_URL_BYTES} bytes")
    if relay_url.normalised(url) != url:  # ValueError with its own sentence if it is refused
        raise ValueError("a reach relay URL is not in its normalised form")
    return url


def _x_only_key(key: bytes) -> bytes:
    """A BIP-340 x-only secp256k1 public key: x < p with a point on the curve (lifted, even y)."""
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), b"\x02" + key)
    except ValueError:
        raise ValueError("the reach key is not a secp256k1 x-only public key") from None
    return key


def _distinct(relays: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(relays)) != len(relays):
        raise ValueError("a relay list names each relay once")
    return relays


ReachUrl = Annotated[str, AfterValidator(_reach_url)]
RelayList = Annotated[
    tuple[ReachUrl, ...],
    Field(min_length=1, max_length=MAX_REACH_RELAYS),
    AfterValidator(_distinct),
]
"""1..4 distinct relay URLs in their normalised form, each ≤ 200 bytes (spec §2 key 10)."""
ReachKey = Annotated[PublicKey, AfterValidator(_x_only_key)]


def _relay_list(value: Any) -> tuple[str, ...]:
    """A received CBOR array of relay URLs as a tuple; MalformedToken unless all are text."""
    if type(value) is not list or not all(type(url) is str for url in value):
        raise MalformedToken("The token's relay list has the wrong type.")
    return tuple(value)


class Reach(BaseModel):
    """Where sealed replies to an invitation's owner go (spec §2 key 10): up to 4 Nostr relays
    and the x-only secp256k1 key a reply's gift wrap is addressed to (its `p` tag)."""

    model_config = _FROZEN

    relays: RelayList
    key: ReachKey

    def wire(self) -> dict[int, Any]:
        return {0: list(self.relays), 1: self.key}

    @classmethod
    def from_wire(cls, value: Any) -> Reach:
        """Key 10's value as received: exact CBOR types, then the model's rules; MalformedToken."""
        if (
            type(value) is not dict
            or {*map(type, value)} != _INT_ONLY
            or value.keys() != {0, 1}
            or type(value[1]) is not bytes
        ):
            raise MalformedToken("The token's field 'reach' has the wrong type.")
        return _validated_token(cls, {"relays": _relay_list(value[0]), "key": value[1]})


class Invitation(BaseModel):
    """A signed invitation (spec §2). `.inviter` is the inviter's did:key."""

    model_config = _FROZEN

    version: Literal[1, 2] = VERSION
    kind: InvitationKind
    id: TokenId
    inviter_key: PublicKey
    created: Time
    expires: Time
    use: UsePolicy
    label: Label | None = None
    connect: Connect = b""
    commitment: Commitment | None = None
    reach: Reach | None = None
    signature: Signature

    @model_validator(mode="after")
    def _invariants(self) -> Self:
        if self.expires <= self.created:
            raise ValueError("the invitation expires before it is created")
        if (self.reach is not None) != (self.version == REACH_VERSION):
            raise ValueError("an invitation carries a reach in version 2 and only there")
        if self.kind is InvitationKind.CARD and (self.connect or self.commitment is not None):
            raise ValueError("a card carries no connect attachment and no commitment")
        return self

    @classmethod
    def create(
        cls,
        key: IdentityKey,
        *,
        now: int,
        lifetime: int,
        label: str | None = None,
        multi_use: bool = False,
        kind: InvitationKind = InvitationKind.CARD,
        connect: bytes = b"",
        commitment: bytes | None = None,
        reach: Reach | None = None,
        id: bytes | None = None,  # random unless a test pins it
    ) -> Invitation:
        """A new invitation from `key`, valid from `now` for `lifetime` seconds, signed.

        Raises ValueError (with a sentence for a person) if an option is out of range.
        """
        if lifetime <= 0:
            raise ValueError("the lifetime must be positive")
        fields = {
            "version": VERSION if reach is None else REACH_VERSION,
            "kind": kind,
            "id": os.urandom(ID_SIZE) if id is None else id,
            "inviter_key": key.public_key,
            "created": now,
            "expires": now + lifetime,
            "use": UsePolicy.MULTI if multi_use else UsePolicy.SINGLE,
            "label": label,
            "connect": connect,
            "commitment": commitment,
            "reach": reach,
            "signature": bytes(SIGNATURE_SIZE),
        }
        unsigned = _validated(cls, fields)
        if len(unsigned.body()) > MAX_BODY:
            raise ValueError(
                f"the invitation is over {MAX_BODY} bytes (fewer relays or a shorter label)"
            )
        return unsigned.model_copy(update={"signature": key.sign(unsigned.signed_message())})

    @property
    def inviter(self) -> str:
        """The inviter's did:key."""
        return ed25519_did(self.inviter_key)

    @property
    def multi_use(self) -> bool:
        return self.use is UsePolicy.MULTI

    def wire(self) -> dict[int, Any]:
        """The unsigned fields as the CBOR map of spec §2 (absent optionals left out)."""
        fields: dict[int, Any] = {
            0: self.version,
            1: int(self.kind),
            2: self.id,
            3: self.inviter_key,
            4: self.created,
            5: self.expires,
            6: int(self.use),
            8: self.connect,
        }
        if self.label is not None:
            fields[7] = self.label
        if self.commitment is not None:
            fields[9] = self.commitment
        if self.reach is not None:
            fields[10] = self.reach.wire()
        return fields

    def body(self) -> bytes:
        """The canonical CBOR of the unsigned fields: the token's bytes before the signature."""
        return canonical.encode(self.wire())

    def signed_message(self) -> bytes:
        """The exact bytes the signature covers (spec §4)."""
        return INVITATION_DOMAIN + self.body()

    @classmethod
    def from_signed(cls, body: bytes, signature: bytes) -> Invitation:
        """Checks 1-4 of spec §5 on a token's body and signature; the invitation if they pass."""
        wire = _decode_body(body, _INVITATION_SCHEMAS)
        raw = _fields(wire, _INVITATION_SCHEMAS[wire[0]][0])
        raw["kind"] = _enum(InvitationKind, raw["kind"], "kind")
        raw["use"] = _enum(UsePolicy, raw["use"], "use policy")
        if "reach" in raw:
            raw["reach"] = Reach.from_wire(raw["reach"])
        invitation = _validated_token(cls, {**raw, "signature": signature})
        _check_canonical(invitation.wire(), wire)
        _check_did(invitation.inviter_key)
        # `body` equals the model's own encoding (just checked): sign-check it as received.
        _check_signature(invitation.inviter_key, invitation.signature, INVITATION_DOMAIN + body)
        _CHECKED[id(invitation)] = invitation
        return invitation


class Response(BaseModel):
    """The invitee's signed answer to an invitation (spec §3). `.responder` is its did:key.

    `label` is the name the responder suggests for itself (as an invitation's label: only a
    suggestion to the inviter). A response with a label is version 2, one without is version 1,
    so that each response has one encoding and an unlabelled one is read by older didlinks.
    """

    model_config = _FROZEN

    version: Literal[1, 2, 3] = VERSION
    invitation_id: TokenId
    responder_key: PublicKey
    created: Time
    connect: Connect = b""
    label: Label | None = None
    relays: RelayList | None = None
    signature: Signature

    @model_validator(mode="after")
    def _version_matches_label(self) -> Self:
        if (self.relays is not None) != (self.version == RESPONSE_RELAYS_VERSION):
            raise ValueError("a response carries relays in version 3 and only there")
        if self.version != RESPONSE_RELAYS_VERSION and (self.label is not None) != (
            self.version == RESPONSE_LABEL_VERSION
        ):
            raise ValueError("a response carries a label in version 2 (or 3) and only there")
        return self

    @classmethod
    def create(
        cls,
        key: IdentityKey,
        *,
        invitation: Invitation,
        now: int,
        connect: bytes = b"",
        label: str | None = None,
        relays: tuple[str, ...] = (),
    ) -> Response:
        """A response from `key` to `invitation`, made at `now`, carrying `connect` (and the
        responder's `label` and `relays`, if given), signed. ValueError (a sentence) if the
        label or a relay is bad."""
        if relays:
            version = RESPONSE_RELAYS_VERSION
        else:
            version = VERSION if label is None else RESPONSE_LABEL_VERSION
        fields = {
            "version": version,
            "invitation_id": invitation.id,
            "responder_key": key.public_key,
            "created": now,
            "connect": connect,
            "label": label,
            "relays": tuple(relays) or None,
            "signature": bytes(SIGNATURE_SIZE),
        }
        unsigned = _validated(cls, fields)
        return unsigned.model_copy(update={"signature": key.sign(unsigned.signed_message())})

    @property
    def responder(self) -> str:
        """The responder's did:key."""
        return ed25519_did(self.responder_key)

    def wire(self) -> dict[int, Any]:
        """The unsigned fields as the CBOR map of spec §3 (the label only in version 2)."""
        fields: dict[int, Any] = {
            0: self.version,
            1: self.invitation_id,
            2: self.responder_key,
            3: self.created,
            4: self.connect,
        }
        if self.label is not None:
            fields[5] = self.label
        if self.relays is not None:
            fields[6] = list(self.relays)
        return fields

    def body(self) -> bytes:
        return canonical.encode(self.wire())

    def signed_message(self) -> bytes:
        """The exact bytes the signature covers (spec §4)."""
        return RESPONSE_DOMAIN + self.body()

    @classmethod
    def from_signed(cls, body: bytes, signature: bytes) -> Response:
        """Checks 1-4 of spec §5 on a token's body and signature; the response if they pass."""
        wire = _decode_body(body, _RESPONSE_SCHEMAS)
        keys = _RESPONSE_SCHEMAS[wire[0]][0]
        raw = _fields(wire, keys)
        if "relays" in raw:
            raw["relays"] = _relay_list(raw["relays"])
        response = _validated_token(cls, {**raw, "signature": signature})
        _check_canonical(response.wire(), wire)
        _check_did(response.responder_key)
        _check_signature(response.responder_key, response.signature, RESPONSE_DOMAIN + body)
        _CHECKED[id(response)] = response
        return response


# Tokens whose DID and signature `from_signed` has checked (spec §5 checks 3-4), so that
# verify_invitation / verify_response do not verify the same Ed25519 signature a second time
# (it is most of their cost: bench/metrics/crypto.py). By identity: id -> the very object (a
# frozen model cannot change; a model_copy is another object), and weak, so an entry lives
# exactly as long as its token and a reused id never matches.
_CHECKED: weakref.WeakValueDictionary[int, Invitation | Response] = weakref.WeakValueDictionary()


def verify_invitation(invitation: Invitation, *, now: int, already_used: bool) -> None:
    """Checks 3-6 of spec §5; returns None or raises the first failing check's error.

    `already_used` is whether the caller's store has seen this invitation's id accepted before;
    it only matters for a single-use invitation.
    """
    if _CHECKED.get(id(invitation)) is not invitation:
        _check_did(invitation.inviter_key)
        _check_signature(invitation.inviter_key, invitation.signature, invitation.signed_message())
    check_window(created=invitation.created, expires=invitation.expires, now=now)
    if already_used and not invitation.multi_use:
        raise AlreadyUsed("This single-use invitation was already accepted.")


def verify_response(response: Response, *, invitation: Invitation, now: int) -> None:
    """Check that `response` is a valid, timely answer to `invitation` (spec §5.2)."""
    if _CHECKED.get(id(response)) is not response:
        _check_did(response.responder_key)
        _check_signature(response.responder_key, response.signature, response.signed_message())
    if response.invitation_id != invitation.id:
        raise ResponseMismatch("The response answers another invitation.")
    if response.responder_key == invitation.inviter_key:
        raise ResponseMismatch("The response comes from the inviter itself.")
    if response.created + CLOCK_SKEW < invitation.created:
        raise ResponseMismatch("The response is older than the invitation it answers.")
    check_not_future(created=response.created, now=now)
    check_window(created=invitation.created, expires=invitation.expires, now=now)


E = TypeVar("E", bound=IntEnum)
M = TypeVar("M", bound=BaseModel)


# --- decoding helpers ----------------------------------------------------------------------

# CBOR key -> (model field, exact Python type cbor2 decodes it to) (spec §2, §3)
_INVITATION_KEYS: Final[dict[int, tuple[str, type]]] = {
    0: ("version", int),
    1: ("kind", int),
    2: ("id", bytes),
    3: ("inviter_key", bytes),
    4: ("created", int),
    5: ("expires", int),
    6: ("use", int),
    7: ("label", str),
    8: ("connect", bytes),
    9: ("commitment", bytes),
}
_RESPONSE_KEYS: Final[dict[int, tuple[str, type]]] = {
    0: ("version", int),
    1: ("invitation_id", bytes),
    2: ("responder_key", bytes),
    3: ("created", int),
    4: ("connect", bytes),
}
_Schema = tuple[dict[int, tuple[str, type]], frozenset[int]]  # (keys, the optional ones)
_INVITATION_SCHEMAS: Final[dict[int, _Schema]] = {
    VERSION: (_INVITATION_KEYS, frozenset({7, 9})),
    REACH_VERSION: ({**_INVITATION_KEYS, 10: ("reach", dict)}, frozenset({7, 9})),
}
_RESPONSE_SCHEMAS: Final[dict[int, _Schema]] = {
    VERSION: (_RESPONSE_KEYS, frozenset()),
    RESPONSE_LABEL_VERSION: ({**_RESPONSE_KEYS, 5: ("label", str)}, frozenset()),
    RESPONSE_RELAYS_VERSION: (
        {**_RESPONSE_KEYS, 5: ("label", str), 6: ("relays", list)},
        frozenset({5}),
    ),
}


_INT_ONLY: Final = frozenset({int})


def _decode_body(body: bytes, schemas: dict[int, _Schema]) -> dict[int, Any]:
    """Canonical CBOR map, checked: 1 (encoding), 2 (version: a key of `schemas`), the keys
    of that version's schema and their value types."""
    try:
        value = canonical.decode(body, max_size=MAX_BODY)
    except canonical.NonCanonicalCbor as exc:
        raise MalformedToken(f"The token's contents are not valid: {exc}.") from exc
    # Exact types on purpose: bool is a subclass of int, and True == 1 as a dict key.
    if type(value) is not dict or not {*map(type, value)} <= _INT_ONLY:
        raise MalformedToken("The token's contents are not a map with integer keys.")
    version = value.get(0)
    if type(version) is not int:
        raise MalformedToken("The token has no valid version number.")
    if version not in schemas:
        *earlier, last = (str(v) for v in sorted(schemas))
        known = f"{', '.join(earlier)} and {last}" if earlier else last
        raise UnsupportedVersion(
            f"The token has format version {version}; this didlink reads version {known}."
        )
    keys, optional = schemas[version]
    if not (value.keys() <= keys.keys() and keys.keys() - optional <= value.keys()):
        unknown = sorted(set(value) - set(keys))
        missing = sorted(set(keys) - optional - set(value))
        raise MalformedToken(f"The token has unknown fields {unknown} or lacks fields {missing}.")
    for key, item in value.items():
        name, expected = keys[key]
        if type(item) is not expected:
            raise MalformedToken(f"The token's field {name!r} has the wrong type.")
    return value


def _fields(wire: dict[int, Any], keys: dict[int, tuple[str, type]]) -> dict[str, Any]:
    """{CBOR key: value} -> {model field: value}."""
    return {keys[key][0]: item for key, item in wire.items()}


def _enum(enum: type[E], value: int, what: str) -> E:
    try:
        return enum(value)
    except ValueError as exc:
        raise MalformedToken(f"The token has an unknown {what} ({value}).") from exc


def _validated(model: type[M], fields: dict[str, Any]) -> M:
    """`model` from in-process values; ValueError with one readable sentence if they are bad."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise ValueError(validation_summary(exc)) from None


def _validated_token(model: type[M], fields: dict[str, Any]) -> M:
    """`model` from received values; MalformedToken if they break the schema."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise MalformedToken(f"The token is not valid ({validation_summary(exc)}).") from None


def _check_canonical(model_wire: dict[int, Any], received: dict[int, Any]) -> None:
    """Defence in depth: the model's wire map is exactly the received one (one spelling).

    The received bytes are the canonical encoding of `received` (canonical.decode re-encoded
    them), and both maps hold only exact ints, bytes and strs, so equal maps mean the model
    encodes to exactly the received bytes; comparing saves encoding them a second time.
    """
    if model_wire != received:
        raise MalformedToken("The token's contents are not in their one canonical form.")


def _check_did(public_key: bytes) -> None:
    """Check 3: a usable Ed25519 did:key (on the curve, not of small order, with an X25519 twin)."""
    try:  # the length (32) is the schema's; building the did:key string would add nothing
        x25519_public_from_ed25519(public_key)
    except IdentityError as exc:
        raise BadTokenDid("The DID inside the token is not a valid Ed25519 did:key.") from exc


def _check_signature(public_key: bytes, signature: bytes, message: bytes) -> None:
    """Check 4: the Ed25519 signature over the domain-separated body."""
    if not verify_signature(public_key, signature, message):
        raise BadSignature("The token's signature does not verify: it was altered or forged.")
