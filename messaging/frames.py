"""Application messages and the frame codec (specs/frames.md).

A frame is the plaintext of one ratchet message: a canonical CBOR array of envelopes, each a
CBOR map holding the sender's sequence number `seq` (the message id, specs/frames.md s.3), the
message `type` and that type's fields. Several messages share one frame (coalescing); the
channel pads the encoded frame (Padmé) before encrypting it.

Decoding is strict: non-canonical CBOR, unknown types, missing or extra fields, wrong field
types and oversize values all raise `FrameError` (a `RemoteProtocolError`).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from identity import canonical
from identity.errors import validation_summary
from identity.validity import MAX_TIME
from messaging.errors import RemoteProtocolError

# --- limits (specs/frames.md s.4) ----------------------------------------------------------

MAX_FRAME_PLAINTEXT = 256 * 1024  # encoded frame, before padding
MAX_MESSAGES_PER_FRAME = 1024
MAX_TEXT_BYTES = 64 * 1024  # UTF-8
MAX_NAME_BYTES = 255  # UTF-8
MAX_REASON_BYTES = 1024
MAX_CHUNK_BYTES = 64 * 1024
MAX_CHUNK_SIZE = 1024 * 1024
MAX_RECEIPT_IDS = 1024
MAX_SEQ = 2**63 - 1
MAX_FILE_SIZE = 2**63 - 1
PROTOCOL_VERSION: Literal[1] = 1

Uint = Annotated[int, Field(ge=0, le=MAX_SEQ)]
FileId = Annotated[bytes, Field(min_length=16, max_length=16)]
MessageId = Annotated[bytes, Field(min_length=16, max_length=16)]
SentAt = Annotated[int, Field(ge=0, le=MAX_TIME)]  # Unix seconds, through 9999-12-31 23:59:59Z


class FrameError(RemoteProtocolError):
    """A frame is not well-formed (bad CBOR, unknown type, bad field, over a size limit)."""


def _utf8_at_most(value: str, limit: int, what: str) -> str:
    if len(value.encode("utf-8", "surrogatepass")) > limit:
        raise ValueError(f"{what} is longer than {limit} bytes")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid Unicode") from exc
    return value


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Hello(_Message):
    """Control: the initiator's first message, so the responder can start sending."""

    type: Literal["hello"] = "hello"
    version: Literal[1] = PROTOCOL_VERSION


class Text(_Message):
    """A chat message; `mid` is its stable id across sessions (specs/frames.md s.3, s.5a).

    `mid` (16 bytes, opaque to the receiver) lets the receiver drop a message resent after a
    reconnect. It is optional on the wire (absent, never null): a text without it is delivered but
    cannot be deduplicated across sessions. `new` (true or absent) says this is the first time the
    sender sends this `mid`, so the receiver cannot have it and need not look it up. `at`
    (optional, absent never null) is the sender's clock when the text was typed, in Unix seconds:
    shown to the receiver, never trusted (not for ordering, not for deduplication).
    """

    type: Literal["text"] = "text"
    text: str
    mid: MessageId | None = None
    new: Literal[True] | None = None
    at: SentAt | None = None

    @model_validator(mode="before")
    @classmethod
    def _absent_never_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "at" in data and data["at"] is None:
                raise ValueError("at must be a time when present (absent, never null)")
            if "mid" in data and data["mid"] is None:
                raise ValueError("mid must be 16 bytes when present (absent, never null)")
            if "new" in data and data["new"] is not True:
                raise ValueError("new must be true when present (absent otherwise)")
            if "new" in data and "mid" not in data:
                raise ValueError("new comes only with a mid")
        return data

    @field_validator("text")
    @classmethod
    def _limit(cls, value: str) -> str:
        return check_text(value)


def check_text(text: str) -> str:
    """`text` if a `Text` can carry it (at most 64 KiB of UTF-8, no lone surrogates); otherwise
    ValueError with a one-line sentence."""
    return _utf8_at_most(text, MAX_TEXT_BYTES, "the text")


class Receipt(_Message):
    """Delivery receipt naming the sequence numbers (ids) of the messages delivered."""

    type: Literal["receipt"] = "receipt"
    ids: list[Uint] = Field(min_length=1, max_length=MAX_RECEIPT_IDS)


class FileOffer(_Message):
    """Announces a file: name (a bare file name, no path), size, SHA-256, chunk size."""

    type: Literal["file_offer"] = "file_offer"
    file_id: FileId
    name: str
    size: Annotated[int, Field(ge=0, le=MAX_FILE_SIZE)]
    sha256: Annotated[bytes, Field(min_length=32, max_length=32)]
    chunk_size: Annotated[int, Field(ge=1, le=MAX_CHUNK_SIZE)]

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        _utf8_at_most(value, MAX_NAME_BYTES, "the file name")
        if value in ("", ".", "..") or any(c in value for c in "/\\"):
            raise ValueError("the file name must be a bare name without path separators")
        if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in value):
            raise ValueError("the file name contains control characters")
        return value


class FileChunk(_Message):
    """Part of a file's bytes, starting at `offset`."""

    type: Literal["file_chunk"] = "file_chunk"
    file_id: FileId
    offset: Annotated[int, Field(ge=0, le=MAX_FILE_SIZE)]
    data: Annotated[bytes, Field(min_length=1, max_length=MAX_CHUNK_BYTES)]


class FileAck(_Message):
    """The receiver has every byte of the file before `next_offset`."""

    type: Literal["file_ack"] = "file_ack"
    file_id: FileId
    next_offset: Annotated[int, Field(ge=0, le=MAX_FILE_SIZE)]


class FileError(_Message):
    """The receiver will not take (`refused`) or could not take (`failed`) the file `file_id`
    the sender offered; the sender stops sending it and forgets it (specs/frames.md s.3)."""

    type: Literal["file_error"] = "file_error"
    file_id: FileId
    code: Literal["refused", "failed"]
    reason: str = ""

    @field_validator("reason")
    @classmethod
    def _limit(cls, value: str) -> str:
        return _utf8_at_most(value, MAX_REASON_BYTES, "the file error reason")


class Close(_Message):
    """The sender ends the conversation; nothing follows it."""

    type: Literal["close"] = "close"
    reason: str = ""

    @field_validator("reason")
    @classmethod
    def _limit(cls, value: str) -> str:
        return _utf8_at_most(value, MAX_REASON_BYTES, "the close reason")


class SasConfirm(_Message):
    """Control: the sender's user confirmed the SAS (specs/frames.md s.3, specs/cli-jsonl.md)."""

    type: Literal["sas_confirm"] = "sas_confirm"


Message = Hello | Text | Receipt | FileOffer | FileChunk | FileAck | FileError | Close | SasConfirm
_MESSAGE: TypeAdapter[Message] = TypeAdapter(Annotated[Message, Field(discriminator="type")])
_MODELS: dict[str, type[Message]] = {  # each `type` value -> its model
    kind.model_fields["type"].default: kind for kind in Message.__args__
}


class Envelope(NamedTuple):
    """One message in a frame with the sender's sequence number (its id). (A named tuple: the
    receiver builds one per message, and a frozen dataclass costs several times more.)"""

    seq: int
    message: Message


@functools.cache
def _envelope_keys(kind: type[_Message]) -> tuple[str, ...]:
    """An envelope's keys for this message type (its fields and `seq`), in canonical order."""
    return tuple(sorted([*kind.model_fields, "seq"], key=canonical.key_order))


def encode_envelope(envelope: Envelope) -> bytes:
    """Canonical CBOR of one envelope (a frame's array element).

    The map is built with its keys in canonical order from the message's field values (all
    plain: str, bytes, int, a list of int), so it needs neither `model_dump` nor a sort.
    """
    seq = envelope.seq
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError("sequence number out of range")
    message = envelope.message
    fields = message.__dict__
    body: dict[str, Any] = {}
    for key in _envelope_keys(type(message)):
        value = seq if key == "seq" else fields[key]
        if value is not None:  # Text.mid: absent, never null
            body[key] = value
    return canonical.encode_in_order(body)


# A text envelope with its `mid` (specs/frames.md s.5a), byte by byte in canonical CBOR:
# map(4 to 6) [, "at" uint], "mid" bstr(16) [, "new" true], "seq" uint, "text" tstr,
# "type" "text".
_TEXT_MAP = 0xA4  # map of 4: mid, seq, text, type (one more for each of at, new)
_AT_KEY = b"\x62at"
_MID_KEY = b"\x63mid\x50"
_TEXT_MAP_HEAD = b"\xa4" + _MID_KEY
_NEW_TEXT_MAP_HEAD = b"\xa5" + _MID_KEY
_NEW_TRUE = b"\x63new\xf5"
_SEQ_KEY = b"\x63seq"
_TEXT_KEY = b"\x64text"
_TYPE_TEXT = b"\x64type\x64text"


def encode_text_envelope(
    seq: int, text: str, *, mid: bytes, new: bool = False, at: int | None = None
) -> bytes:
    """`encode_envelope(Envelope(seq, Text(text=text, mid=mid, new=True if new else absent,
    at=at or absent)))` without building the model or calling cbor2 (a chat message's hot
    path): the same checks (ValueError for what `Text` refuses) and the same bytes
    (tests/test_frames_mid.py)."""
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError("sequence number out of range")
    if not isinstance(text, str):
        raise ValueError("the text must be a string")
    check_text(text)
    if not isinstance(mid, bytes) or len(mid) != 16:
        raise ValueError("mid must be 16 bytes")
    if at is not None and (type(at) is not int or not 0 <= at <= MAX_TIME):
        raise ValueError(f"at must be a time in Unix seconds, 0 to {MAX_TIME}")
    utf8 = text.encode("utf-8")
    head = (
        bytes((_TEXT_MAP + (at is not None) + bool(new),))
        + (b"" if at is None else _AT_KEY + _shortest_head(0x00, at))
        + _MID_KEY
    )
    return b"".join(  # canonical CBOR spelled out: the layout `_decode_lone_text` reads
        (
            head,
            mid,
            _NEW_TRUE if new else b"",
            _SEQ_KEY,
            _shortest_head(0x00, seq),
            _TEXT_KEY,
            _shortest_head(0x60, len(utf8)),
            utf8,
            _TYPE_TEXT,
        )
    )


def _shortest_head(major: int, argument: int) -> bytes:
    """A CBOR head (major type in the high three bits) with its argument in the shortest form
    (RFC 8949 s.3, s.4.2.1); `argument` < 2^64."""
    if argument < 24:
        return bytes((major | argument,))
    if argument < 0x100:
        return bytes((major | 24, argument))
    if argument < 0x1_0000:
        return bytes((major | 25,)) + argument.to_bytes(2, "big")
    if argument < 0x1_0000_0000:
        return bytes((major | 26,)) + argument.to_bytes(4, "big")
    return bytes((major | 27,)) + argument.to_bytes(8, "big")


def _array_header(count: int) -> bytes:
    """CBOR major type 4 header in shortest form (RFC 8949 s.3.1, s.4.2.1)."""
    if count < 24:
        return bytes([0x80 | count])
    if count < 0x100:
        return bytes([0x98, count])
    return b"\x99" + count.to_bytes(2, "big")


def encode_frame(envelopes: Sequence[Envelope]) -> bytes:
    """Encode envelopes as one frame (before padding). Raises ValueError if too big."""
    return join_frame([encode_envelope(e) for e in envelopes])


def join_frame(encoded: Sequence[bytes], *, trailer: bytes = b"") -> bytes:
    """Join already-encoded envelopes into a frame (canonical: array header + elements); no
    envelopes make the empty frame of a key announcement (specs/frames.md section 4a).

    `trailer` (the frame's padding, messaging/padding.py) is appended in the same copy.
    """
    if len(encoded) > MAX_MESSAGES_PER_FRAME:
        raise ValueError("a frame holds 0 to 1024 messages")
    frame = b"".join([_array_header(len(encoded)), *encoded, trailer])
    if len(frame) - len(trailer) > MAX_FRAME_PLAINTEXT:
        raise ValueError("the frame is over the size limit")
    return frame


def frame_size(count: int, payload: int) -> int:
    """The frame length for `count` envelopes of `payload` encoded bytes in all."""
    return len(_array_header(count)) + payload


def decode_frame(data: bytes) -> list[Envelope]:
    """Strictly decode a frame (after unpadding). Raises `FrameError`."""
    lone_text = _decode_lone_text(data)
    if lone_text is not None:
        return [lone_text]
    return _decode_any(data)


# A frame of one chat message with its `mid`: array(1), then that envelope.
_LONE_TEXT_HEAD = b"\x81" + _TEXT_MAP_HEAD
_LONE_NEW_TEXT_HEAD = b"\x81" + _NEW_TEXT_MAP_HEAD
_LONE_AT_TEXT_HEADS = (b"\x81\xa5" + _AT_KEY, b"\x81\xa6" + _AT_KEY)  # without, with `new`
_TEXT_FIELDS = frozenset({"mid", "text", "type"})  # what `Text.model_validate` would record


def _decode_lone_text(data: bytes) -> Envelope | None:
    """The envelope of a frame that is exactly one `text` with a `mid`, in canonical CBOR
    (the receiver's hot path: cbor2, the re-encoding check and pydantic touch far more code),
    or None for any other frame, valid or not, which `_decode_any` then reads.

    It accepts only what `_decode_any` accepts, as the same value (tests/test_frames_fast.py):
    the layout fixes the keys, their order and the value types; integers and lengths must be
    in their shortest form, `seq` at most MAX_SEQ, `at` at most MAX_TIME, the text valid UTF-8
    within MAX_TEXT_BYTES (its 0x7a length form, for exactly 65536 bytes, is left to
    `_decode_any`), nothing after it.
    """
    if type(data) is not bytes or len(data) < 2 or data[0] != 0x81:
        return None  # (a bytearray would give a bytearray `mid`)
    at: int | None = None
    pos = 2
    if data.startswith(_AT_KEY, 2):
        at, pos = _shortest_argument(data, 5, 0x00)
        if at is None or at > MAX_TIME:
            return None
    if not data.startswith(_MID_KEY, pos):
        return None
    mid_at = pos + 5
    pos = mid_at + 16
    new: Literal[True] | None = None
    if data.startswith(_NEW_TRUE, pos):
        pos, new = pos + 5, True
    if data[1] != _TEXT_MAP + (at is not None) + (new is not None):
        return None
    if not data.startswith(_SEQ_KEY, pos):
        return None
    seq, pos = _shortest_argument(data, pos + 4, 0x00)
    if seq is None or seq > MAX_SEQ or not data.startswith(_TEXT_KEY, pos):
        return None
    length, pos = _shortest_argument(data, pos + 5, 0x60)
    if length is None or length > MAX_TEXT_BYTES or len(data) != pos + length + len(_TYPE_TEXT):
        return None
    if not data.endswith(_TYPE_TEXT):
        return None
    try:
        text = data[pos : pos + length].decode("utf-8")  # strict: no surrogates, no overlongs
    except UnicodeDecodeError:
        return None
    return Envelope(seq, _checked_text(text, data[mid_at : mid_at + 16], new, at))


def _fields_set(new: Literal[True] | None, at: int | None) -> set[str]:
    fields = set(_TEXT_FIELDS)
    if new is not None:
        fields.add("new")
    if at is not None:
        fields.add("at")
    return fields


def _construct_text(text: str, mid: bytes, new: Literal[True] | None, at: int | None) -> Text:
    """The `Text` of fields the fast decoder checked, without validating them again."""
    return Text.model_construct(
        _fields_set(new, at), type="text", text=text, mid=mid, new=new, at=at
    )


def _text_builder() -> Callable[[str, bytes, Literal[True] | None, int | None], Text]:
    """`_construct_text`, or the same model set up directly: its five attributes, as pydantic's
    `model_construct` sets them, without its generic walk over the model's fields (which was
    two thirds of decoding a chat message when the caches are cold, as they are for a message
    after a pause: bench/README.md, latency). The direct one is used only if it builds exactly
    what `model_construct` builds, every attribute of pydantic's `BaseModel` compared."""
    new_model = object.__new__
    set_attribute = object.__setattr__

    def direct(text: str, mid: bytes, new: Literal[True] | None, at: int | None) -> Text:
        message = new_model(Text)
        set_attribute(
            message, "__dict__", {"type": "text", "text": text, "mid": mid, "new": new, "at": at}
        )
        set_attribute(message, "__pydantic_fields_set__", _fields_set(new, at))
        set_attribute(message, "__pydantic_extra__", None)
        set_attribute(message, "__pydantic_private__", None)
        return message

    try:
        cases: tuple[tuple[Literal[True] | None, int | None], ...] = (
            (True, None),
            (None, None),
            (None, 7),
            (True, 7),
        )
        for new, at in cases:
            ours = direct("x", bytes(16), new, at)
            theirs = _construct_text("x", bytes(16), new, at)
            for name in BaseModel.__slots__:
                if getattr(ours, name) != getattr(theirs, name):
                    return _construct_text
    except Exception:  # any change in pydantic's internals: build it the public way
        return _construct_text
    return direct


_checked_text = _text_builder()


def _shortest_argument(data: bytes, pos: int, major: int) -> tuple[int | None, int]:
    """The argument of the CBOR head at `pos` if it has major type `major` (its high three
    bits) and its shortest form (RFC 8949 s.4.2.1), and the position after the head; None if
    not, or if it is cut short. Arguments of up to 2 bytes for every major type, of 4 and 8
    bytes only for unsigned integers (a text of 65536 bytes or more goes to `_decode_any`)."""
    if pos >= len(data):
        return None, pos
    initial = data[pos] - major
    if 0 <= initial < 24:
        return initial, pos + 1
    if initial == 24 and pos + 1 < len(data) and data[pos + 1] >= 24:
        return data[pos + 1], pos + 2
    if initial == 25 and pos + 2 < len(data):
        value = int.from_bytes(data[pos + 1 : pos + 3], "big")
        return (value, pos + 3) if value >= 0x100 else (None, pos)
    if major == 0x00 and initial == 26 and pos + 4 < len(data):
        value = int.from_bytes(data[pos + 1 : pos + 5], "big")
        return (value, pos + 5) if value >= 0x10000 else (None, pos)
    if major == 0x00 and initial == 27 and pos + 8 < len(data):
        value = int.from_bytes(data[pos + 1 : pos + 9], "big")
        return (value, pos + 9) if value >= 0x1_0000_0000 else (None, pos)
    return None, pos


def _decode_any(data: bytes) -> list[Envelope]:
    """`decode_frame` for every frame: cbor2, the canonical check, then each type's model."""
    try:
        value = canonical.decode(data, max_size=MAX_FRAME_PLAINTEXT)
    except canonical.NonCanonicalCbor as exc:
        raise FrameError(f"the frame is not valid canonical CBOR: {exc}") from exc
    if not isinstance(value, list) or len(value) > MAX_MESSAGES_PER_FRAME:
        raise FrameError("a frame must be an array of 0 to 1024 messages")
    envelopes = []
    for item in value:
        if not isinstance(item, dict):
            raise FrameError("a frame element must be a map")
        fields = dict(item)
        seq = fields.pop("seq", None)
        if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
            raise FrameError("a message has no valid sequence number")
        # The type's own model validates (as the tagged union would, without its dispatch).
        kind = _MODELS.get(fields["type"]) if type(fields.get("type")) is str else None
        try:
            message = (
                kind.model_validate(fields)
                if kind is not None
                else _MESSAGE.validate_python(fields)
            )
        except ValidationError as exc:
            raise FrameError(f"a message is malformed: {validation_summary(exc)}") from exc
        envelopes.append(Envelope(seq=seq, message=message))
    return envelopes
