"""A message request: the first message to a contact known only from their card, carrying the
persistent session's setup and its first text (specs/first-message.md §5; issue 25, point 7).

Theory of operation
-------------------
The sender (Alice) holds Bob's card: his DID and his request key (the card's `reach` key). She
has no session with him and he may be offline, so she writes, in one go:

    FIRST  = write_first_message(alice, bob_did)     one-way Noise_X to Bob's DID key
    state  = new_session_state(Noise's HandshakeResult)   the persistent session, exactly as
                                                     after a live first contact (alice: initiator)
    frame  = that session's first ratchet frame of RequestItem {mid, at, text, label, reach}
    REQUEST = canonical CBOR {0: FIRST, 1: frame}    the payload of a gift wrap to Bob's request key

Bob reads FIRST (the sender's DID, authenticated by `ss`), derives the same session as the
responder, opens the frame with it (its first decryption replaces his identity key in the
ratchet with a fresh one: the stored session never holds it), and from then on both sides hold
an ordinary persistent session (messaging/mailbox.py): Alice's following texts and Bob's reply
go by their alias keys as between any two contacts. The request item is inside the ratchet
frame, so everything in it (the text, the sender's label and reach) is authenticated as the
sender's; only the recipient can open it.

Sans-IO: bytes in, bytes and states out. Errors: `RemoteProtocolError` (malformed, before any
cryptographic work where the size or shape is wrong), `CryptoFailure` (a check failed).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from identity import canonical
from identity.errors import IdentityError
from identity.invitation import Label, Reach
from identity.keys import IdentityKey
from messaging.errors import RemoteProtocolError
from messaging.first_message import MAX_FIRST_MESSAGE, read_first_message, write_first_message
from messaging.mailbox import (
    MAX_TIME,
    MID_SIZE,
    MailboxFrameError,
    MailboxSession,
    SessionState,
    check_mailbox_text,
    new_session_state,
)

MAX_REQUEST = 24 * 1024
"""A REQUEST is a gift wrap's whole payload (transport/nostr_envelope.py MAX_PAYLOAD_BYTES)."""
MAX_REQUEST_PLAINTEXT = 20 * 1024


class MessageRequestError(RemoteProtocolError):
    """A message request is malformed."""


class RequestItem(BaseModel):
    """What the first frame of a request carries: the text (as a mailbox text: its `mid`, the
    sender's clock when it was typed, the text), the sender's label (only ever a suggested name)
    and its reach."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    t: Literal["request"] = "request"
    mid: bytes = Field(min_length=MID_SIZE, max_length=MID_SIZE)
    at: int = Field(ge=0, le=MAX_TIME)
    text: str
    label: Label | None = None
    reach: Reach | None = None
    """The sender's own reach, as a card's (specs/invitation.md §2 key 10): its relays and its
    request key."""

    @field_validator("text")
    @classmethod
    def _limit(cls, value: str) -> str:
        return check_mailbox_text(value)


def encode_request_item(item: RequestItem) -> bytes:
    """A canonical CBOR map with text keys (as the mailbox items); `reach` in its wire form, a
    label or reach that is absent left out."""
    value = item.model_dump(exclude={"reach"}, exclude_none=True)
    if item.reach is not None:
        value["reach"] = item.reach.wire()
    return canonical.encode(value)


def decode_request_item(data: bytes) -> RequestItem:
    """The request item of canonical CBOR; MessageRequestError for anything else."""
    try:
        value = canonical.decode(data, max_size=MAX_REQUEST_PLAINTEXT)
        if not isinstance(value, dict) or value.get("t") != "request":
            raise MessageRequestError("a request's frame does not carry a request")
        if "reach" in value:
            value["reach"] = Reach.from_wire(value["reach"])
        item = RequestItem.model_validate(value)
        if encode_request_item(item) != data:
            raise MessageRequestError("a request's frame is not in its one encoding")
        return item
    except (ValidationError, ValueError, IdentityError) as exc:
        raise MessageRequestError("a request's frame is malformed") from exc


def encode_request(first: bytes, frame: bytes) -> bytes:
    """REQUEST = canonical CBOR {0: FIRST, 1: frame}."""
    return canonical.encode({0: first, 1: frame})


def decode_request(data: bytes) -> tuple[bytes, bytes]:
    """(FIRST, frame) of a REQUEST; MessageRequestError (before any cryptography) if the size,
    the encoding or a field is wrong."""
    if not isinstance(data, bytes) or not 1 <= len(data) <= MAX_REQUEST:
        raise MessageRequestError(f"a message request is 1..{MAX_REQUEST} bytes")
    try:
        value = canonical.decode(data, max_size=MAX_REQUEST)
    except ValueError as exc:
        raise MessageRequestError("a message request is not canonical CBOR") from exc
    if not isinstance(value, dict) or set(value) != {0, 1}:
        raise MessageRequestError("a message request is the map {0: first, 1: frame}")
    first, frame = value[0], value[1]
    if not isinstance(first, bytes) or not 1 <= len(first) <= MAX_FIRST_MESSAGE:
        raise MessageRequestError(f"a request's first message is 1..{MAX_FIRST_MESSAGE} bytes")
    if not isinstance(frame, bytes) or not frame:
        raise MessageRequestError("a request's frame is bytes")
    return first, frame


@dataclass(frozen=True)
class WrittenRequest:
    payload: bytes
    """REQUEST: the gift wrap's payload."""
    state: SessionState
    """The sender's persistent session, after its first frame: commit it before the payload
    leaves."""


@dataclass(frozen=True)
class OpenedRequest:
    sender: str
    """The sender's DID (authenticated: the Noise static key is that DID's key)."""
    item: RequestItem
    state: SessionState
    """The recipient's persistent session after the first frame (its identity key gone from
    the ratchet)."""
    handshake_hash: bytes
    """Unique per request: the recipient keeps it to refuse a replay."""


def write_request(
    sender: IdentityKey,
    recipient_did: str,
    item: RequestItem,
    *,
    rng: Callable[[int], bytes] = os.urandom,
) -> WrittenRequest:
    """A request to `recipient_did` carrying `item`, and the sender's new session."""
    first, result = write_first_message(sender, recipient_did, rng=rng)
    session = MailboxSession(new_session_state(result, rng=rng), rng=rng)
    frame = session.seal_bytes(encode_request_item(item))
    payload = encode_request(first, frame)
    if len(payload) > MAX_REQUEST:
        raise MessageRequestError("the text is too long for a message request")
    return WrittenRequest(payload=payload, state=session.to_state())


def read_request(recipient: IdentityKey, payload: bytes) -> OpenedRequest:
    """Open a REQUEST sent to us: MessageRequestError / RemoteProtocolError if malformed,
    CryptoFailure if not authentic (wrong recipient, altered, a DID that is not the signer's)."""
    first, frame = decode_request(payload)
    result = read_first_message(recipient, first)
    session = MailboxSession(new_session_state(result))
    try:
        item = decode_request_item(session.open_bytes(frame))
    except MailboxFrameError as exc:
        raise MessageRequestError("a request's frame is malformed") from exc
    return OpenedRequest(
        sender=result.peer_did,
        item=item,
        state=session.to_state(),
        handshake_hash=result.handshake_hash,
    )
