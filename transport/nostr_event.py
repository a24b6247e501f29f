"""NIP-01 events, parsed strictly and verified before anything uses them.

Theory of operation: a relay (or a peer) hands us JSON. `load_event` bounds its size, parses it
with duplicate keys refused, checks every field's type and shape (`parse_event`), then
recomputes the id and checks the BIP-340 signature over the fields *we* parsed (`verify_event`,
libsecp256k1 through coincurve): what is verified is exactly what is used. `sign_event` makes
one. Nothing here knows what an event means; see nostr_envelope.py for gift wraps and
specs/mailbox.md §3 for the limits.

coincurve, and nostr-sdk (the rust-nostr bindings: `secret_key` / `public_key`, which the tests
use as an oracle), are imported lazily: importing transport must not pay for them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from transport import schnorr
from transport.errors import EnvelopeForged, EnvelopeMalformed, EnvelopeTooLarge, NostrKeyError

MAX_EVENT_JSON_BYTES = 96 * 1024
"""The largest event (as JSON text, UTF-8) accepted from anyone; a gift wrap of the largest
mailbox payload is well below it (specs/mailbox.md §3)."""
MAX_TAGS = 8
MAX_TAG_ITEMS = 4
MAX_TAG_ITEM_CHARS = 128
MAX_TIMESTAMP = 2**40  # about 36,000 years: refuse nonsense before any arithmetic

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_HEX128 = re.compile(r"[0-9a-f]{128}\Z")
_FIELDS = frozenset({"id", "pubkey", "created_at", "kind", "tags", "content", "sig"})


def nostr_sdk() -> ModuleType:
    """Import nostr-sdk on first use (it loads a native library of several MB)."""
    import nostr_sdk as sdk  # lazy on purpose

    module: ModuleType = sdk
    return module


@dataclass(frozen=True, slots=True)
class NostrEvent:
    """A signed NIP-01 event whose fields have been checked for shape (and, once it comes out of
    `load_event`, whose id and signature have been verified)."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: tuple[tuple[str, ...], ...]
    content: str
    sig: str

    def to_wire(self) -> dict[str, Any]:
        """The event as the JSON object NIP-01 puts on the wire."""
        return {
            "id": self.id,
            "pubkey": self.pubkey,
            "created_at": self.created_at,
            "kind": self.kind,
            "tags": [list(tag) for tag in self.tags],
            "content": self.content,
            "sig": self.sig,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_wire(), separators=(",", ":"), ensure_ascii=False)

    def tag_values(self, name: str) -> list[str]:
        """The first value of every tag called `name`, in order."""
        return [tag[1] for tag in self.tags if len(tag) >= 2 and tag[0] == name]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise EnvelopeMalformed(f"duplicate JSON key {key[:32]!r}")
        result[key] = value
    return result


def loads_strict(text: str | bytes) -> Any:
    """json.loads with duplicate keys refused and NaN/Infinity refused."""

    def no_constants(name: str) -> Any:
        raise EnvelopeMalformed(f"JSON constant {name} is not allowed")

    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        raise EnvelopeMalformed("not valid JSON") from exc


def _int(value: object, name: str) -> int:
    if type(value) is not int or not 0 <= value < MAX_TIMESTAMP:
        raise EnvelopeMalformed(f"{name} is not a non-negative integer")
    return value


def parse_event(obj: object, *, max_content_chars: int) -> NostrEvent:
    """Check the shape of a NIP-01 event object (no signature check)."""
    if not isinstance(obj, Mapping) or set(obj) != _FIELDS:
        raise EnvelopeMalformed("an event is a JSON object with exactly the NIP-01 fields")
    event_id, pubkey, sig = obj["id"], obj["pubkey"], obj["sig"]
    if not (isinstance(event_id, str) and _HEX64.match(event_id)):
        raise EnvelopeMalformed("id is not 64 lowercase hex digits")
    if not (isinstance(pubkey, str) and _HEX64.match(pubkey)):
        raise EnvelopeMalformed("pubkey is not 64 lowercase hex digits")
    if not (isinstance(sig, str) and _HEX128.match(sig)):
        raise EnvelopeMalformed("sig is not 128 lowercase hex digits")
    created_at = _int(obj["created_at"], "created_at")
    kind = obj["kind"]
    if type(kind) is not int or not 0 <= kind <= 65535:
        raise EnvelopeMalformed("kind is not an integer in 0..65535")
    content = obj["content"]
    if not isinstance(content, str):
        raise EnvelopeMalformed("content is not a string")
    if len(content) > max_content_chars:
        raise EnvelopeTooLarge(f"content of {len(content)} characters")
    raw_tags = obj["tags"]
    if not isinstance(raw_tags, list) or len(raw_tags) > MAX_TAGS:
        raise EnvelopeMalformed(f"tags is not a list of at most {MAX_TAGS}")
    tags: list[tuple[str, ...]] = []
    for tag in raw_tags:
        if (
            not isinstance(tag, list)
            or not 1 <= len(tag) <= MAX_TAG_ITEMS
            or not all(isinstance(item, str) and len(item) <= MAX_TAG_ITEM_CHARS for item in tag)
        ):
            raise EnvelopeMalformed("a tag is not a short list of short strings")
        tags.append(tuple(tag))
    return NostrEvent(
        id=event_id,
        pubkey=pubkey,
        created_at=created_at,
        kind=kind,
        tags=tuple(tags),
        content=content,
        sig=sig,
    )


def event_id(pubkey: str, created_at: int, kind: int, tags: object, content: str) -> str:
    """NIP-01's id: sha256 of [0, pubkey, created_at, kind, tags, content] as compact JSON
    (UTF-8, no whitespace, only the escapes JSON requires: what serde_json, and so nostr-sdk,
    writes). EnvelopeForged for text that has no UTF-8 form (a lone surrogate)."""
    serialised = json.dumps(
        [0, pubkey, created_at, kind, tags, content], separators=(",", ":"), ensure_ascii=False
    )
    try:
        return hashlib.sha256(serialised.encode("utf-8")).hexdigest()
    except UnicodeEncodeError as exc:
        raise EnvelopeForged("event does not verify") from exc


class _GoodSignatures:
    """The (id, pubkey, sig) triples whose BIP-340 check passed lately. A signature check is a
    pure function of those three, and the id is recomputed from the fields every time, so the
    relay client and the envelope that opens the event after it check its signature once."""

    def __init__(self, capacity: int) -> None:
        self._triples: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, triple: tuple[str, str, str]) -> bool:
        return triple in self._triples

    def add(self, triple: tuple[str, str, str]) -> None:
        self._triples[triple] = None
        if len(self._triples) > self._capacity:
            self._triples.popitem(last=False)


_good_signatures = _GoodSignatures(4096)


def verify_event(event: NostrEvent) -> None:
    """Recompute the id and check the BIP-340 signature (libsecp256k1); raise EnvelopeForged if
    either fails. Returns None on success (never a bool to forget)."""
    tags = [list(tag) for tag in event.tags]
    if event_id(event.pubkey, event.created_at, event.kind, tags, event.content) != event.id:
        raise EnvelopeForged("event does not verify")
    triple = (event.id, event.pubkey, event.sig)
    if triple in _good_signatures:
        return
    if not schnorr.verify(
        bytes.fromhex(event.pubkey), bytes.fromhex(event.sig), bytes.fromhex(event.id)
    ):
        raise EnvelopeForged("event does not verify")
    _good_signatures.add(triple)


def sign_event(
    signer: bytes | schnorr.SigningKey,
    *,
    created_at: int,
    kind: int,
    tags: Sequence[Sequence[str]],
    content: str,
    check: bool = True,
) -> NostrEvent:
    """A NIP-01 event signed (BIP-340, fresh auxiliary randomness) by `signer` (a secret key);
    `check=False` skips verifying the new signature (for a key used once)."""
    key = signer if isinstance(signer, schnorr.SigningKey) else schnorr.SigningKey(signer)
    pubkey = key.public.hex()
    tag_lists = [list(tag) for tag in tags]
    the_id = event_id(pubkey, created_at, kind, tag_lists, content)
    sig = key.sign(bytes.fromhex(the_id), check=check).hex()
    return NostrEvent(
        id=the_id,
        pubkey=pubkey,
        created_at=created_at,
        kind=kind,
        tags=tuple(tuple(tag) for tag in tag_lists),
        content=content,
        sig=sig,
    )


def load_event(text: str | bytes, *, max_content_chars: int) -> NostrEvent:
    """Bound, parse, shape-check and verify one event given as JSON text."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_EVENT_JSON_BYTES:
        raise EnvelopeTooLarge(f"event of {size} bytes")
    event = parse_event(loads_strict(text), max_content_chars=max_content_chars)
    verify_event(event)
    return event


def secret_key(secret: bytes) -> Any:
    """nostr-sdk `SecretKey` from 32 raw bytes, refused unless 1 <= secret < n."""
    if not isinstance(secret, bytes) or len(secret) != 32:
        raise NostrKeyError("a secret key is 32 bytes")
    sdk = nostr_sdk()
    try:
        return sdk.SecretKey.from_bytes(secret)
    except sdk.NostrSdkError as exc:
        raise NostrKeyError("not a secp256k1 secret key") from exc


def public_key(public: bytes) -> Any:
    """nostr-sdk `PublicKey` from a 32-byte x-only key, refused unless it is on the curve."""
    if not isinstance(public, bytes) or len(public) != 32:
        raise NostrKeyError("a public key is 32 bytes (x-only)")
    # nostr-sdk parses any 32 bytes here and refuses a point off the curve only when it is
    # used; lift it now (BIP-340: the point with an even y) so a bad key fails where it enters.
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), b"\x02" + public)
    except ValueError as exc:
        raise NostrKeyError("not a secp256k1 x-only public key") from exc
    sdk = nostr_sdk()
    try:
        return sdk.PublicKey.from_bytes(public)
    except sdk.NostrSdkError as exc:
        raise NostrKeyError("not a secp256k1 x-only public key") from exc


def public_key_of(secret: bytes) -> bytes:
    """The 32-byte x-only public key of a secret key (NostrKeyError unless 1 <= secret < n)."""
    return schnorr.x_only_public(secret)
