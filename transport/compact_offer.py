"""The compact offer: the few SDP fields that matter, as canonical CBOR (specs/transport.md §3).

A WebRTC data-channel SDP is ~1 KB; almost all of it is fixed by our profile (one bundled
m=application section, sctp-port 5000, mid "0"). What actually differs per connection is the ICE
username fragment and password, the sha-256 fingerprint of the DTLS certificate, the candidates
and the DTLS setup role. `CompactOffer` holds exactly those; `to_cbor` packs them into a CBOR map
with small integer keys and one byte string per candidate, so that an offer with two host
candidates is about 100 bytes and an invitation carrying it fits a QR code.

`from_cbor` is strict: size cap first, then decoding, then the exact key set and types, then the
model's own validation, and finally a re-encoding check so that only the canonical form is accepted
(one offer has exactly one encoding, which matters because the invitation layer signs it).
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Annotated, Any

import cbor2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from transport.errors import CompactOfferError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_COMPACT_OFFER_BYTES = 512
MAX_CANDIDATES = 8
ICE_CHARS = r"^[A-Za-z0-9+/]+$"  # RFC 8839 §5.4 ice-char

# CBOR map keys (specs/transport.md §3.1).
KEY_SETUP = 1
KEY_UFRAG = 2
KEY_PWD = 3
KEY_FINGERPRINT = 4
KEY_CANDIDATES = 5

# Candidate flag byte (specs/transport.md §3.2).
_KIND_MASK = 0b0000_0011
_FLAG_IPV6 = 0b0000_0100
_FLAG_RELATED = 0b0000_1000
_FLAG_RELATED_IPV6 = 0b0001_0000
_RESERVED = 0b1110_0000


class SetupRole(enum.IntEnum):
    """The DTLS setup role (RFC 8842 §5): who starts the DTLS handshake."""

    ACTPASS = 0  # an offer: the answerer chooses
    ACTIVE = 1  # an answer: this side is the DTLS client
    PASSIVE = 2  # an answer: this side is the DTLS server


class CandidateKind(enum.IntEnum):
    """ICE candidate type (RFC 8445 §5.1.1)."""

    HOST = 0
    SRFLX = 1
    PRFLX = 2
    RELAY = 3


class Candidate(BaseModel):
    """One UDP ICE candidate for component 1 (RTP/RTCP mux and BUNDLE leave only one)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    kind: CandidateKind
    ip: IPAddress
    port: Annotated[int, Field(ge=1, le=65535)]
    related_ip: IPAddress | None = None
    related_port: Annotated[int, Field(ge=0, le=65535)] | None = None

    @model_validator(mode="after")
    def _check_related(self) -> Candidate:
        if (self.related_ip is None) != (self.related_port is None):
            raise ValueError("related address and port must be given together")
        if self.kind is CandidateKind.HOST and self.related_ip is not None:
            raise ValueError("a host candidate has no related address")
        return self

    def pack(self) -> bytes:
        """flags(1) | ip(4 or 16) | port(2) [| related ip(4 or 16) | related port(2)]."""
        flags = int(self.kind)
        if self.ip.version == 6:
            flags |= _FLAG_IPV6
        out = self.ip.packed + self.port.to_bytes(2, "big")
        if self.related_ip is not None and self.related_port is not None:
            flags |= _FLAG_RELATED
            if self.related_ip.version == 6:
                flags |= _FLAG_RELATED_IPV6
            out += self.related_ip.packed + self.related_port.to_bytes(2, "big")
        return bytes([flags]) + out

    @classmethod
    def unpack(cls, raw: bytes) -> Candidate:
        """Strict inverse of `pack`: exact length, no reserved bits."""
        if not raw:
            raise CompactOfferError("A candidate is empty.")
        flags = raw[0]
        if flags & _RESERVED:
            raise CompactOfferError("A candidate uses reserved flag bits.")
        if not flags & _FLAG_RELATED and flags & _FLAG_RELATED_IPV6:
            raise CompactOfferError("A candidate flags a related IPv6 address but has none.")
        ip_len = 16 if flags & _FLAG_IPV6 else 4
        rel_len = (16 if flags & _FLAG_RELATED_IPV6 else 4) + 2 if flags & _FLAG_RELATED else 0
        if len(raw) != 1 + ip_len + 2 + rel_len:
            raise CompactOfferError("A candidate has the wrong length for its flags.")
        ip = ipaddress.ip_address(raw[1 : 1 + ip_len])
        port = int.from_bytes(raw[1 + ip_len : 3 + ip_len], "big")
        related_ip: IPAddress | None = None
        related_port: int | None = None
        if rel_len:
            rest = raw[3 + ip_len :]
            related_ip = ipaddress.ip_address(rest[:-2])
            related_port = int.from_bytes(rest[-2:], "big")
        try:
            return cls(
                kind=CandidateKind(flags & _KIND_MASK),
                ip=ip,
                port=port,
                related_ip=related_ip,
                related_port=related_port,
            )
        except ValidationError as exc:
            raise CompactOfferError(f"A candidate is invalid: {_first_error(exc)}") from None


class CompactOffer(BaseModel):
    """An offer or answer reduced to what differs per connection (specs/transport.md §3)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    setup: SetupRole
    ufrag: Annotated[str, Field(min_length=4, max_length=32, pattern=ICE_CHARS)]
    pwd: Annotated[str, Field(min_length=22, max_length=64, pattern=ICE_CHARS)]
    fingerprint: Annotated[bytes, Field(min_length=32, max_length=32)]
    candidates: Annotated[tuple[Candidate, ...], Field(min_length=1, max_length=MAX_CANDIDATES)]

    @property
    def is_offer(self) -> bool:
        """An offer leaves the DTLS role open (actpass); an answer picks one."""
        return self.setup is SetupRole.ACTPASS

    @property
    def fingerprint_hex(self) -> str:
        """The fingerprint as SDP writes it: upper-case hex pairs joined by colons."""
        return format_fingerprint(self.fingerprint)

    def to_cbor(self) -> bytes:
        """Canonical CBOR (RFC 8949 §4.2.1) of the integer-keyed map of §3.1."""
        return cbor2.dumps(
            {
                KEY_SETUP: int(self.setup),
                KEY_UFRAG: self.ufrag,
                KEY_PWD: self.pwd,
                KEY_FINGERPRINT: self.fingerprint,
                KEY_CANDIDATES: [c.pack() for c in self.candidates],
            },
            canonical=True,
        )

    @classmethod
    def from_cbor(cls, data: bytes) -> CompactOffer:
        """Parse and validate; raises CompactOfferError for anything but a canonical offer."""
        if not isinstance(data, bytes):
            raise CompactOfferError("A compact offer must be bytes.")
        if len(data) > MAX_COMPACT_OFFER_BYTES:
            raise CompactOfferError(
                f"A compact offer is at most {MAX_COMPACT_OFFER_BYTES} bytes, got {len(data)}."
            )
        try:
            decoded = cbor2.loads(data)
        except Exception as exc:  # cbor2 raises several types for malformed input
            raise CompactOfferError(f"A compact offer is not valid CBOR ({exc}).") from None
        offer = cls._from_map(decoded)
        if offer.to_cbor() != data:
            raise CompactOfferError("A compact offer is not in canonical CBOR form.")
        return offer

    @classmethod
    def _from_map(cls, decoded: Any) -> CompactOffer:
        expected = {KEY_SETUP, KEY_UFRAG, KEY_PWD, KEY_FINGERPRINT, KEY_CANDIDATES}
        if not isinstance(decoded, dict) or set(decoded) != expected:
            raise CompactOfferError("A compact offer must be a map with keys 1 to 5.")
        setup, cands = decoded[KEY_SETUP], decoded[KEY_CANDIDATES]
        if type(setup) is not int or setup not in {r.value for r in SetupRole}:
            raise CompactOfferError("A compact offer has an unknown DTLS setup role.")
        if not isinstance(cands, list) or not all(type(c) is bytes for c in cands):
            raise CompactOfferError("A compact offer's candidates must be a list of byte strings.")
        if len(cands) > MAX_CANDIDATES:
            raise CompactOfferError(f"A compact offer has more than {MAX_CANDIDATES} candidates.")
        candidates = tuple(Candidate.unpack(c) for c in cands)
        try:
            return cls(
                setup=SetupRole(setup),
                ufrag=decoded[KEY_UFRAG],
                pwd=decoded[KEY_PWD],
                fingerprint=decoded[KEY_FINGERPRINT],
                candidates=candidates,
            )
        except ValidationError as exc:
            raise CompactOfferError(f"A compact offer is invalid: {_first_error(exc)}") from None


def format_fingerprint(raw: bytes) -> str:
    """32 raw bytes -> "AB:CD:..." (RFC 8122 §5)."""
    return ":".join(f"{b:02X}" for b in raw)


def parse_fingerprint(text: str) -> bytes:
    """ "AB:CD:..." (either case) -> 32 raw bytes; CompactOfferError if it is not sha-256 sized."""
    parts = text.strip().split(":")
    if len(parts) != 32 or not all(len(p) == 2 for p in parts):
        raise CompactOfferError("A sha-256 fingerprint must be 32 colon-separated hex bytes.")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise CompactOfferError("A sha-256 fingerprint must be hexadecimal.") from None


def _location_part(part: object) -> str:
    """A location part: an index, or a field name of ours (short ASCII identifiers), else ?.

    The rule of identity/errors.py `validation_summary`, which transport/ may not import."""
    text = str(part)
    if isinstance(part, int) or (text.isascii() and text.isidentifier() and len(text) <= 32):
        return text
    return "?"


def _first_error(exc: ValidationError) -> str:
    """The first schema error, without the input or its keys (a peer chose them)."""
    err = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(_location_part(p) for p in err["loc"])
    message = "unexpected field" if err["type"] == "extra_forbidden" else str(err["msg"])
    return f"{where}: {message}" if where else message
