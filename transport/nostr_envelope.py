"""The mailbox envelope: opaque bytes sealed for one x-only key as a NIP-59 gift wrap.

Theory of operation (specs/mailbox.md §2 gives the exact layering):

    rumor  (unsigned, kind RUMOR_KIND, by the sender's alias key, created_at 0, no tags,
            content = base64 of the opaque bytes: the ratchet frame, nothing else)
    seal   (kind 13, signed by the sender's alias key, no tags, created_at randomised,
            content = NIP-44 v2 of the rumor, sender alias -> recipient)
    wrap   (kind 1059, signed by a fresh random key, created_at randomised,
            tags = [["p", recipient], ["expiration", created_at + expires_in]],
            content = NIP-44 v2 of the seal, random key -> recipient)

`seal_wrap` builds it as NIP-59 says (a fresh key per wrap, created_at uniformly random in
the two days before now, NIP-40 expiration anchored to the wrap's created_at), with
transport/nip44.py and transport/nostr_event.py `sign_event` (libsecp256k1 and OpenSSL: the
nostr-sdk binding it used before cost more in copying strings than in cryptography, issue 25;
nostr-sdk opens what we seal, and we open what it seals, in the tests). `open_wrap` walks the
layers back, with every check that NIP-59 asks and a few it leaves to the reader (the seal has
no tags, the rumor is unsigned and by the seal's key), cheapest first: size, shape, kind,
addressee, expiry, then id and signature, only then decryption. Every cryptographic failure is
one opaque `EnvelopeForged`.

Sans-network: bytes and keys in, events out; `now` is a parameter where a check depends on it.
Keys are raw bytes (32-byte secrets, 32-byte x-only public keys); nothing here knows a DID.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from dataclasses import dataclass

from transport import nip44
from transport.errors import (
    EnvelopeExpired,
    EnvelopeForged,
    EnvelopeMalformed,
    EnvelopeNotForUs,
    EnvelopeTooLarge,
    NostrKeyError,
    TransportUsageError,
)
from transport.nostr_event import (
    MAX_EVENT_JSON_BYTES,
    NostrEvent,
    event_id,
    loads_strict,
    parse_event,
    public_key_of,
    sign_event,
    verify_event,
)
from transport.schnorr import SigningKey

GIFT_WRAP_KIND = 1059  # NIP-59
SEAL_KIND = 13  # NIP-59
RUMOR_KIND = 1401
"""didlink's private kind for the innermost (never published) event: one mailbox payload."""

MAX_PAYLOAD_BYTES = 24 * 1024
"""The largest opaque payload one wrap carries. Its base64 rumor, NIP-44-padded, sealed, then
NIP-44-encrypted again must fit NIP-44's 65,535-byte plaintext limit (specs/mailbox.md §3)."""
MAX_NIP44_PAYLOAD_CHARS = 87_472  # NIP-44 v2: the base64 payload of a 65,535-byte plaintext
TIMESTAMP_TWEAK = 2 * 24 * 3600  # NIP-59: created_at up to two days in the past
MAX_CLOCK_SKEW = 15 * 60  # a wrap or seal dated further in the future than this is refused
DEFAULT_EXPIRES_IN = 30 * 24 * 3600
MIN_EXPIRES_IN = 3 * 24 * 3600  # more than the tweak, so a wrap is never born expired
MAX_EXPIRES_IN = 366 * 24 * 3600

_DECIMAL = re.compile(r"[0-9]{1,12}")
_RUMOR_FIELDS = frozenset({"id", "pubkey", "created_at", "kind", "tags", "content"})


@dataclass(frozen=True, slots=True)
class OpenedWrap:
    """What a gift wrap carried, once every check passed."""

    payload: bytes
    sender: bytes
    """The seal's signer: the sender's 32-byte x-only (alias) key."""
    recipient: bytes
    """Our 32-byte x-only key that the wrap was addressed to."""
    wrap_id: str
    """The gift wrap's event id (64 hex): what relays and the receiver dedupe on."""
    expiration: int


def seal_wrap(
    payload: bytes,
    *,
    sender_secret: bytes,
    recipient: bytes,
    expires_in: int = DEFAULT_EXPIRES_IN,
    expires_at: int | None = None,
) -> NostrEvent:
    """Seal `payload` from the sender's alias key for `recipient` (x-only) as a gift wrap.

    `expires_at` (unix seconds, instead of `expires_in`): a fixed NIP-40 expiration, for what
    is worth nothing after a known time (a response to an invitation: its expiry); it must be
    in the future, at most MAX_EXPIRES_IN away. It is not anchored to the randomised
    created_at, so it tells a relay that time (specs/mailbox.md §2)."""
    if not isinstance(payload, bytes) or not 1 <= len(payload) <= MAX_PAYLOAD_BYTES:
        raise EnvelopeTooLarge(f"a payload is 1..{MAX_PAYLOAD_BYTES} bytes")
    if expires_at is not None:
        moment = int(time.time())
        if type(expires_at) is not int or not moment < expires_at <= moment + MAX_EXPIRES_IN:
            raise TransportUsageError("expires_at is in the future, at most 366 days away")
    elif type(expires_in) is not int or not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN:
        raise TransportUsageError(
            f"expires_in is {MIN_EXPIRES_IN}..{MAX_EXPIRES_IN} seconds (the wrap's created_at "
            "is up to two days in the past)"
        )
    sender = SigningKey(sender_secret)  # NostrKeyError for a bad key, before any work
    nip44.check_public(recipient)
    sender_hex = sender.public.hex()
    content = base64.b64encode(payload).decode("ascii")
    rumor = {
        "id": event_id(sender_hex, 0, RUMOR_KIND, [], content),
        "pubkey": sender_hex,
        "created_at": 0,
        "kind": RUMOR_KIND,
        "tags": [],
        "content": content,
    }
    now = int(time.time())
    seal = sign_event(
        sender,
        created_at=_tweaked(now),
        kind=SEAL_KIND,
        tags=[],
        content=nip44.encrypt(
            nip44.conversation_key(sender_secret, recipient), _compact(rumor).encode()
        ),
    )
    wrap_secret = _fresh_secret()
    created_at = _tweaked(now)
    expiration = created_at + expires_in if expires_at is None else expires_at
    return sign_event(
        wrap_secret,
        created_at=created_at,
        kind=GIFT_WRAP_KIND,
        tags=[["p", recipient.hex()], ["expiration", str(expiration)]],
        content=nip44.encrypt(
            nip44.conversation_key(wrap_secret, recipient), seal.to_json().encode()
        ),
        check=False,  # a key used once: nothing for a fault to leak
    )


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _tweaked(now: int) -> int:
    """NIP-59: a created_at uniformly random in the two days before `now`."""
    return now - secrets.randbelow(TIMESTAMP_TWEAK + 1)


def _fresh_secret() -> bytes:
    """A random secp256k1 secret key (1 <= k < n; a draw outside is astronomically rare)."""
    while True:
        secret = secrets.token_bytes(32)
        if 0 < int.from_bytes(secret, "big") < nip44.ORDER:
            return secret


def recipient_of(event: NostrEvent) -> bytes:
    """The x-only key a gift wrap is addressed to (its single `p` tag)."""
    if event.kind != GIFT_WRAP_KIND:
        raise EnvelopeMalformed(f"kind {event.kind} is not a gift wrap ({GIFT_WRAP_KIND})")
    recipients = event.tag_values("p")
    if len(recipients) != 1 or not _is_hex64(recipients[0]):
        raise EnvelopeMalformed("a gift wrap has exactly one `p` tag with a 64-hex key")
    return bytes.fromhex(recipients[0])


def expiration_of(event: NostrEvent) -> int:
    """The NIP-40 expiration of a wrap (a single `expiration` tag is required here)."""
    values = event.tag_values("expiration")
    if len(values) != 1 or not _DECIMAL.fullmatch(values[0]):
        raise EnvelopeMalformed("a gift wrap has exactly one decimal `expiration` tag")
    return int(values[0])


def check_wrap(event: NostrEvent, *, now: int) -> None:
    """The checks on a wrap that need no key: kind, tags, dates. Raises or returns None."""
    recipient_of(event)
    expiration = expiration_of(event)
    if {tag[0] for tag in event.tags} != {"p", "expiration"} or len(event.tags) != 2:
        raise EnvelopeMalformed("a gift wrap carries only its `p` and `expiration` tags")
    if event.created_at > now + MAX_CLOCK_SKEW:
        raise EnvelopeExpired("the gift wrap is dated in the future")
    if expiration <= now:
        raise EnvelopeExpired("the gift wrap has expired")


def open_wrap(wrap: str | bytes | NostrEvent, *, recipient_secret: bytes, now: int) -> OpenedWrap:
    """Check and open a gift wrap addressed to `recipient_secret`'s key.

    `wrap` is the event's JSON text (as a relay sent it) or an already parsed event; it is
    verified here in either case.
    """
    if isinstance(wrap, NostrEvent):
        event = wrap
    else:
        size = len(wrap.encode() if isinstance(wrap, str) else wrap)
        if size > MAX_EVENT_JSON_BYTES:
            raise EnvelopeTooLarge(f"event of {size} bytes")
        event = parse_event(loads_strict(wrap), max_content_chars=MAX_NIP44_PAYLOAD_CHARS)
    check_wrap(event, now=now)
    our_key = public_key_of(recipient_secret)
    if recipient_of(event) != our_key:
        raise EnvelopeNotForUs("the gift wrap is addressed to another key")
    verify_event(event)  # (the relay client checked it already: the signature is not rechecked)

    seal_json = _decrypt(recipient_secret, event.pubkey, event.content)
    seal = parse_event(loads_strict(seal_json), max_content_chars=MAX_NIP44_PAYLOAD_CHARS)
    if seal.kind != SEAL_KIND:
        raise EnvelopeMalformed(f"the seal's kind is {seal.kind}, not {SEAL_KIND}")
    if seal.tags:
        raise EnvelopeMalformed("a seal has no tags (NIP-59)")
    if seal.created_at > now + MAX_CLOCK_SKEW:
        raise EnvelopeExpired("the seal is dated in the future")
    verify_event(seal)

    rumor_json = _decrypt(recipient_secret, seal.pubkey, seal.content)
    rumor = loads_strict(rumor_json)
    if not isinstance(rumor, dict) or set(rumor) != _RUMOR_FIELDS:
        raise EnvelopeMalformed("a rumor is an unsigned event with exactly the NIP-01 fields")
    if rumor["pubkey"] != seal.pubkey:
        raise EnvelopeForged("the rumor's author is not the seal's signer")
    if rumor["kind"] != RUMOR_KIND or type(rumor["kind"]) is not int:
        raise EnvelopeMalformed(f"the rumor's kind is not {RUMOR_KIND}")
    if rumor["tags"] != [] or rumor["created_at"] != 0 or type(rumor["created_at"]) is not int:
        raise EnvelopeMalformed("a rumor has no tags and created_at 0")
    payload = _strict_b64(rumor["content"])
    if rumor["id"] != event_id(seal.pubkey, 0, RUMOR_KIND, [], rumor["content"]):
        raise EnvelopeForged("the rumor's id does not match its fields")
    return OpenedWrap(
        payload=payload,
        sender=bytes.fromhex(seal.pubkey),
        recipient=our_key,
        wrap_id=event.id,
        expiration=expiration_of(event),
    )


def _decrypt(our_secret: bytes, their_public_hex: str, content: str) -> str:
    try:
        conv = nip44.conversation_key(our_secret, bytes.fromhex(their_public_hex))
        return nip44.decrypt(conv, content).decode("utf-8")
    except (nip44.Nip44Error, NostrKeyError, UnicodeDecodeError) as exc:
        raise EnvelopeForged("the gift wrap does not decrypt") from exc


def _strict_b64(text: object) -> bytes:
    if not isinstance(text, str) or not 0 < len(text) <= 4 * ((MAX_PAYLOAD_BYTES + 2) // 3):
        raise EnvelopeTooLarge(f"a payload is 1..{MAX_PAYLOAD_BYTES} bytes")
    try:
        payload = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise EnvelopeMalformed("the rumor's content is not base64") from exc
    if base64.b64encode(payload).decode("ascii") != text or not payload:
        raise EnvelopeMalformed("the rumor's content is not canonical base64")
    return payload


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
