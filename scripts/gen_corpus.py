"""Generate tests/corpus/: malformed and hostile inputs for every didlink parser (issue 7 §1).

What it writes: one folder per parser (the names of tests.support.hostile.TARGETS), each with a
`cases.json` list of inputs and, for inputs too large to keep readable in JSON, `.bin` files it
names. A case is {"name", one of "hex" (bytes) / "text" (a str) / "json" (any JSON value, for
wrong types) / "file" (bytes in that file), optional "expect" (the error class name it must
raise)}.

How they are made: authentic inputs (a signed invitation and response, the three handshake
messages, ratchet frames, a keystore file, a compact offer) are built from the fixed seeds of
tests/support/hostile.py; each is then broken in every way issue 7 lists: truncated, oversized,
wrong types, deep nesting (10000 levels), huge declared lengths (2^63), invalid UTF-8, and each
kind of non-canonical CBOR (non-shortest integers, unsorted and duplicate map keys, indefinite
lengths, floats and bools where integers belong, tags), NaN, empty input. Token bodies are
re-signed with the real key, so it is the content check that must refuse them, not the
signature; channel frames are encrypted with the real session, so the frame parser behind the
decryption is reached.

Deterministic: running it twice gives the same bytes; tests/test_corpus.py checks that the
files on disk are exactly what this script makes. Run after changing it:

    .venv/bin/python scripts/gen_corpus.py
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import base58
import cbor2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from identity.invitation import (  # noqa: E402
    INVITATION_DOMAIN,
    RESPONSE_DOMAIN,
    Invitation,
    Response,
)
from identity.keys import IdentityKey  # noqa: E402
from identity.token import encode_token  # noqa: E402
from messaging.padding import pad, padme  # noqa: E402
from tests.support import hostile  # noqa: E402
from transport.compact_offer import CompactOffer  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"
T0 = 1_700_000_000
DEPTH = 10_000
HUGE = 2**63
INLINE_LIMIT = 4096  # bytes; larger inputs go to .bin files

# --- a tiny CBOR encoder that can also write what canonical encoders refuse to -----------------


@dataclass(frozen=True)
class Raw:
    """Bytes inserted verbatim where a value belongs."""

    data: bytes


@dataclass(frozen=True)
class Pairs:
    """A map written with exactly these pairs, in this order (duplicates allowed)."""

    items: tuple[tuple[Any, Any], ...]


@dataclass(frozen=True)
class Style:
    wide_ints: bool = False  # every integer in its 8-byte form
    unsorted: bool = False  # map keys in reverse canonical order
    indefinite: bool = False  # arrays, maps, byte and text strings with indefinite length


def head(major: int, value: int, *, wide: bool = False) -> bytes:
    if wide:
        return bytes([major << 5 | 27]) + value.to_bytes(8, "big")
    if value < 24:
        return bytes([major << 5 | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([major << 5 | info]) + value.to_bytes(size, "big")
    raise ValueError("too large for a CBOR head")


def enc(value: Any, style: Style = Style()) -> bytes:
    if isinstance(value, Raw):
        return value.data
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if value is None:
        return b"\xf6"
    if isinstance(value, int):
        if not -(2**64) <= value < 2**64:  # a bignum (RFC 8949 section 3.4.3), as cbor2 does
            return cbor2.dumps(value, canonical=True)
        if value >= 0:
            return head(0, value, wide=style.wide_ints)
        return head(1, -1 - value, wide=style.wide_ints)
    if isinstance(value, float):
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, bytes):
        if style.indefinite:
            return b"\x5f" + head(2, len(value)) + value + b"\xff"
        return head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        if style.indefinite:
            return b"\x7f" + head(3, len(raw)) + raw + b"\xff"
        return head(3, len(raw)) + raw
    if isinstance(value, list | tuple):
        body = b"".join(enc(item, style) for item in value)
        return (b"\x9f" + body + b"\xff") if style.indefinite else head(4, len(value)) + body
    if isinstance(value, dict | Pairs):
        items = list(value.items) if isinstance(value, Pairs) else list(value.items())
        encoded = [(enc(k, style), enc(v, style)) for k, v in items]
        if isinstance(value, dict):
            encoded.sort(key=lambda kv: (len(kv[0]), kv[0]), reverse=style.unsorted)
        body = b"".join(k + v for k, v in encoded)
        return (b"\xbf" + body + b"\xff") if style.indefinite else head(5, len(encoded)) + body
    raise TypeError(type(value))


# --- generic hostile CBOR ----------------------------------------------------------------------

STRUCTURAL: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("break-alone", b"\xff"),
    ("reserved-additional-info-28", b"\x1c"),
    ("reserved-additional-info-31-int", b"\x1f"),
    ("undefined", b"\xf7"),
    ("simple-value-16", b"\xf0"),
    ("null", b"\xf6"),
    ("true", b"\xf5"),
    ("zero", b"\x00"),
    ("negative", b"\x20"),
    ("nan-half", b"\xf9\x7e\x00"),
    ("nan-double-payload", b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x01"),
    ("infinity", b"\xf9\x7c\x00"),
    ("text", b"\x63abc"),
    ("bytes", b"\x43abc"),
    ("deep-array-10000", b"\x81" * DEPTH + b"\x00"),
    ("deep-map-10000", b"\xa1\x00" * DEPTH + b"\x00"),
    ("deep-tag-10000", b"\xc6" * DEPTH + b"\x00"),
    ("deep-indefinite-array-10000", b"\x9f" * DEPTH + b"\xff" * DEPTH),
    ("huge-bytes-2^63", b"\x5b" + HUGE.to_bytes(8, "big")),
    ("huge-text-2^63", b"\x7b" + HUGE.to_bytes(8, "big")),
    ("huge-array-2^63", b"\x9b" + HUGE.to_bytes(8, "big")),
    ("huge-map-2^63", b"\xbb" + HUGE.to_bytes(8, "big")),
    ("huge-bytes-2^32-1", b"\x5a\xff\xff\xff\xff" + b"\x00" * 16),
    ("huge-array-2^32-1-short", b"\x9a\xff\xff\xff\xff\x00\x00"),
    ("indefinite-bytes-unterminated", b"\x5f\x41\x00"),
    ("shared-reference-cycle", b"\xd8\x1c\x81\xd8\x1d\x00"),
    ("string-reference", b"\xd9\x01\x00\x82\x63abc\xd8\x19\x00"),
    ("invalid-utf8-text", b"\x62\xc3\x28"),
    ("bignum-tag", b"\xc2\x49\x01" + bytes(8)),
    ("date-tag", b"\xc1\x1a\x65\x53\xf1\x00"),
]


def generic(base: bytes) -> Iterator[tuple[str, bytes]]:
    """Variants of an authentic CBOR encoding that no strict parser may accept."""
    yield from STRUCTURAL
    for cut in sorted({1, 2, len(base) // 2, len(base) - 1}):
        yield f"truncated-to-{cut}", base[:cut]
    yield "trailing-zero-byte", base + b"\x00"
    yield "trailing-break", base + b"\xff"
    yield "twice", base + base
    yield "self-describe-tag-55799", b"\xd9\xd9\xf7" + base
    yield "tag-24-embedded-cbor", b"\xd8\x18" + head(2, len(base)) + base
    yield "tag-6-unassigned", b"\xc6" + base
    yield "wrapped-in-array", b"\x81" + base
    yield "as-byte-string", head(2, len(base)) + base


def field_variants(
    fields: dict[Any, Any], *, optional: frozenset[Any] = frozenset(), sized: bool = True
) -> Iterator[tuple[str, Any]]:
    """Variants of a map's fields as values for `enc`: wrong types, non-canonical forms.

    `optional` fields are not removed; byte strings are made one byte longer only if `sized`
    (every byte field of the map has a fixed length).
    """
    keys = list(fields)
    yield "wide-ints", (fields, Style(wide_ints=True))
    yield "unsorted-keys", (fields, Style(unsorted=True))
    yield "indefinite-lengths", (fields, Style(indefinite=True))
    first = keys[0]
    items = tuple(fields.items())
    yield "duplicate-key-same-value", Pairs((*items, (first, fields[first])))
    yield "duplicate-key-first", Pairs(((first, fields[first]), *items))
    yield "extra-key-99", {**fields, 99: 0}
    yield "extra-key-text", {**fields, "x": 0}
    yield "empty-map", {}
    for key in keys:
        name = f"field-{key}"
        value = fields[key]
        rest = {k: v for k, v in fields.items() if k != key}
        if key not in optional:
            yield f"{name}-missing", rest
        yield f"{name}-null", {**rest, key: None}
        if isinstance(key, int):
            yield f"{name}-key-as-text", {**rest, str(key): value}
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            yield f"{name}-non-shortest", {**rest, key: Raw(head(0, value, wide=True))}
            yield f"{name}-float64", {**rest, key: Raw(b"\xfb" + struct.pack(">d", float(value)))}
            if value < 2048:
                yield f"{name}-float16", {**rest, key: Raw(b"\xf9" + struct.pack(">e", value))}
            yield f"{name}-nan", {**rest, key: Raw(b"\xf9\x7e\x00")}
            yield f"{name}-bool", {**rest, key: bool(value)}
            yield f"{name}-bignum-tag", {**rest, key: Raw(b"\xc2" + head(2, 8) + value.to_bytes(8))}
            yield f"{name}-negative", {**rest, key: -1 - value}
            yield f"{name}-2^64", {**rest, key: 2**64 - 1}
            yield f"{name}-as-text", {**rest, key: str(value)}
        elif isinstance(value, bytes):
            yield f"{name}-as-text", {**rest, key: value.hex()}
            if sized and value:
                yield f"{name}-one-byte-longer", {**rest, key: value + b"\x00"}
                yield f"{name}-one-byte-shorter", {**rest, key: value[:-1]}
            yield f"{name}-as-array", {**rest, key: list(value[:4])}
            yield f"{name}-indefinite", {**rest, key: Raw(enc(value, Style(indefinite=True)))}
            yield f"{name}-tag-0", {**rest, key: Raw(b"\xc0" + enc(value))}
        elif isinstance(value, str):
            for label, bad in (
                ("invalid-utf8", b"\xff"),
                ("overlong-nul", b"\xc0\x80"),
                ("surrogate", b"\xed\xa0\x80"),
                ("truncated-multibyte", b"\xe2\x82"),
            ):
                yield f"{name}-{label}", {**rest, key: Raw(head(3, len(bad)) + bad)}
            yield f"{name}-as-bytes", {**rest, key: value.encode()}
            yield f"{name}-indefinite", {**rest, key: Raw(enc(value, Style(indefinite=True)))}


def encode_variant(value: Any) -> bytes:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Style):
        return enc(value[0], value[1])
    return enc(value)


# --- the cases ---------------------------------------------------------------------------------


class Corpus:
    """Cases of one parser, with unique names."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.cases: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self._names: set[str] = set()

    def add(self, name: str, data: bytes | str | Any, **extra: Any) -> None:
        if name in self._names:
            raise ValueError(f"duplicate case {self.target}/{name}")
        self._names.add(name)
        case: dict[str, Any] = {"name": name}
        if isinstance(data, bytes):
            if len(data) > INLINE_LIMIT:
                file = f"{name}.bin"
                self.files[file] = data
                case["file"] = file
            else:
                case["hex"] = data.hex()
        elif isinstance(data, str):
            case["text"] = data
        else:
            case["json"] = data
        case.update(extra)
        self.cases.append(case)


_REACH_KEY = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
"""secp256k1's generator's x: a valid x-only key for an invitation's reach."""


def _sign_token(key: IdentityKey, tag: int, body: bytes) -> str:
    domain = INVITATION_DOMAIN if tag == 1 else RESPONSE_DOMAIN
    payload = bytes([tag]) + body + key.sign(domain + body)
    return "didlink:" + base58.b58encode(payload).decode("ascii")


def base_invitation() -> Invitation:
    return Invitation.create(
        hostile.ALICE,
        now=T0,
        lifetime=30 * 86400,
        label="Alice",
        id=hostile.INVITATION_ID,
    )


def base_response() -> Response:
    return Response.create(hostile.BOB, invitation=base_invitation(), now=T0 + 60)


SMALL_ORDER_ED25519 = [
    bytes(32),  # y = 0: a point of order 4
    b"\x01" + bytes(31),  # the identity (y = 1)
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # y = -1
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),  # order 8
]
NOT_ON_CURVE_ED25519 = bytes.fromhex(
    "0200000000000000000000000000000000000000000000000000000000000000"
)


def token_corpus() -> Corpus:
    corpus = Corpus("token")
    invitation, response = base_invitation(), base_response()
    good_inv, good_resp = encode_token(invitation), encode_token(response)
    compact = good_inv[len("didlink:") :]
    # text level
    for name, text in [
        ("empty", ""),
        ("prefix-only", "didlink:"),
        ("no-prefix", compact),
        ("other-scheme", "https:" + compact),
        ("prefix-no-colon", "didlink" + compact),
        ("non-base58-zero", "didlink:0" + compact),
        ("non-base58-O-I-l", "didlink:OIl" + compact),
        ("base64-chars", "didlink:" + compact + "+/="),
        ("zero-width-space", good_inv[:20] + "\u200b" + good_inv[20:]),
        ("nul-inside", good_inv[:20] + "\x00" + good_inv[20:]),
        ("fullwidth-letters", "didlink:" + "\uff41" * 10),
        ("arabic-digits", "didlink:" + "\u0663" * 10),
        ("lone-surrogate", "didlink:\ud800" + compact),
        ("uri-query", good_inv + "?x=1"),
        ("uri-fragment", good_inv + "#f"),
        ("percent-encoded", "didlink:%7A" + compact),
        ("over-4096-chars", "didlink:" + "z" * 4089),
        ("4096-spaces-then-token", " " * 4096 + good_inv),
        ("short-payload-65-bytes", "didlink:" + base58.b58encode(b"\x01" + bytes(64)).decode()),
        ("one-byte", "didlink:2"),
        ("leading-zero-bytes", "didlink:111" + compact),
        ("tag-0", "didlink:" + base58.b58encode(b"\x00" + _payload(good_inv)[1:]).decode()),
        ("tag-3", "didlink:" + base58.b58encode(b"\x03" + _payload(good_inv)[1:]).decode()),
        ("tag-255", "didlink:" + base58.b58encode(b"\xff" + _payload(good_inv)[1:]).decode()),
        ("invitation-tagged-as-response", _retag(good_inv, 2)),
        ("response-tagged-as-invitation", _retag(good_resp, 1)),
        ("signature-truncated", _edit(good_inv, lambda p: p[:-1])),
        ("signature-extended", _edit(good_inv, lambda p: p + b"\x00")),
        ("signature-zero", _edit(good_inv, lambda p: p[:-64] + bytes(64))),
        ("signature-of-response-domain", _cross_domain(invitation)),
        ("body-truncated-signature-kept", _edit(good_inv, lambda p: p[:10] + p[-64:])),
    ]:
        corpus.add(name, text)
    # body level: re-signed with the inviter's / responder's real key
    for kind, tag, key, model in (
        ("invitation", 1, hostile.ALICE, invitation),
        ("response", 2, hostile.BOB, response),
    ):
        body = model.body()
        for name, data in generic(body):
            corpus.add(f"{kind}-{name}", _sign_token(key, tag, data))
        for name, value in field_variants(model.wire(), optional=frozenset({7, 9}), sized=False):
            data = encode_variant(value)
            corpus.add(f"{kind}-{name}", _sign_token(key, tag, data))
        # an invitation with reach is version 2; a response with a label 2, with relays 3
        future = 3 if kind == "invitation" else 4
        corpus.add(
            f"{kind}-version-{future}",
            _sign_token(key, tag, enc({**model.wire(), 0: future})),
            expect="UnsupportedVersion",
        )
        corpus.add(
            f"{kind}-version-0-unknown-fields",
            _sign_token(key, tag, enc({0: 0, 42: "?"})),
            expect="UnsupportedVersion",
        )
        key_field = 3 if kind == "invitation" else 2
        for index, point in enumerate(SMALL_ORDER_ED25519):
            corpus.add(
                f"{kind}-small-order-key-{index}",
                _sign_token(key, tag, enc({**model.wire(), key_field: point})),
                expect="BadTokenDid",
            )
        corpus.add(
            f"{kind}-key-not-on-curve",
            _sign_token(key, tag, enc({**model.wire(), key_field: NOT_ON_CURVE_ED25519})),
            expect="BadTokenDid",
        )
        corpus.add(
            f"{kind}-signed-by-someone-else",
            _sign_token(hostile.MALLORY, tag, body),
            expect="BadSignature",
        )
        # a bignum version: canonical CBOR (tag 2), > 4300 decimal digits, inside MAX_BODY
        corpus.add(
            f"{kind}-version-bignum-4800-digits",
            _sign_token(key, tag, cbor2.dumps({0: 1 << 16000}, canonical=True)),
            expect="MalformedToken",
        )
    inv = invitation.wire()
    for number, field in ((1, "kind"), (6, "use")):
        corpus.add(
            f"invitation-{field}-bignum-4336-digits",
            _sign_token(hostile.ALICE, 1, enc({**inv, number: 1 << 14400})),
            expect="MalformedToken",
        )
    for name, changes in [
        ("kind-3", {1: 3}),
        ("use-2", {6: 2}),
        ("expires-before-created", {5: T0 - 1}),
        ("expires-equals-created", {5: T0}),
        ("time-beyond-9999", {5: 253_402_300_800}),
        ("label-empty", {7: ""}),
        ("label-65-chars", {7: "a" * 65}),
        ("label-129-bytes", {7: "\u00e9" * 64 + "a"}),
        ("label-control-char", {7: "a\x1bb"}),
        ("label-nul", {7: "a\x00b"}),
        ("label-bidi-override", {7: "a\u202eb"}),
        ("label-lone-surrogate-bytes", {7: Raw(b"\x63\xed\xb0\x80")}),
        ("connect-1025-bytes", {8: bytes(1025)}),
        ("card-with-connect", {8: b"offer"}),
        ("card-with-commitment", {9: b"c"}),
        ("commitment-empty", {1: 1, 9: b""}),
        ("commitment-65-bytes", {1: 1, 9: bytes(65)}),
        ("id-15-bytes", {2: bytes(15)}),
        ("body-over-2048-bytes", {1: 1, 8: bytes(1024), 9: bytes(64), 7: "é" * 64, 10: bytes(900)}),
        # reach (version 2 only, and there required: specs/invitation.md section 2 key 10)
        ("version-2-without-reach", {0: 2}),
        ("reach-in-version-1", {10: {0: ["wss://r.example"], 1: _REACH_KEY}}),
        ("reach-not-a-map", {0: 2, 10: [["wss://r.example"], _REACH_KEY]}),
        ("reach-no-relay", {0: 2, 10: {0: [], 1: _REACH_KEY}}),
        (
            "reach-5-relays",
            {0: 2, 10: {0: [f"wss://r{i}.example" for i in range(5)], 1: _REACH_KEY}},
        ),
        ("reach-url-201-bytes", {0: 2, 10: {0: ["wss://r.example/" + "p" * 185], 1: _REACH_KEY}}),
        ("reach-url-http", {0: 2, 10: {0: ["http://r.example"], 1: _REACH_KEY}}),
        ("reach-url-ws-remote", {0: 2, 10: {0: ["ws://r.example"], 1: _REACH_KEY}}),
        ("reach-url-escape", {0: 2, 10: {0: ["wss://r.example/\x1b[2J"], 1: _REACH_KEY}}),
        ("reach-url-bstr", {0: 2, 10: {0: [b"wss://r.example"], 1: _REACH_KEY}}),
        ("reach-key-31-bytes", {0: 2, 10: {0: ["wss://r.example"], 1: _REACH_KEY[:31]}}),
        (
            "reach-key-not-on-curve",
            {0: 2, 10: {0: ["wss://r.example"], 1: (5).to_bytes(32, "big")}},
        ),
        ("reach-extra-key", {0: 2, 10: {0: ["wss://r.example"], 1: _REACH_KEY, 2: 0}}),
    ]:
        fields = {**inv, **cast(dict[Any, Any], changes)}
        corpus.add(f"invitation-{name}", _sign_token(hostile.ALICE, 1, enc(fields)))
    resp = response.wire()
    for name, changes in [
        ("invitation-id-17-bytes", {1: bytes(17)}),
        ("connect-1025-bytes", {4: bytes(1025)}),
        ("created-negative", {3: -1}),
        ("key-31-bytes", {2: bytes(31)}),
        # the label (version 2 only, and there required: specs/invitation.md section 3)
        ("version-2-without-label", {0: 2}),
        ("label-in-version-1", {5: "Bob"}),
        ("label-empty", {0: 2, 5: ""}),
        ("label-65-chars", {0: 2, 5: "x" * 65}),
        ("label-132-bytes", {0: 2, 5: "\U0001f600" * 33}),
        ("label-terminal-escape", {0: 2, 5: "Bob\x1b[2J"}),
        ("label-bidi-override", {0: 2, 5: "Bob\u202e"}),
        ("label-bstr", {0: 2, 5: b"Bob"}),
        ("label-int", {0: 2, 5: 7}),
        # the relays (version 3 only, and there required: specs/invitation.md section 3)
        ("version-3-without-relays", {0: 3, 5: "Bob"}),
        ("relays-in-version-1", {6: ["wss://r.example"]}),
        ("relays-in-version-2", {0: 2, 5: "Bob", 6: ["wss://r.example"]}),
        ("relays-empty", {0: 3, 6: []}),
        ("relays-5", {0: 3, 6: [f"wss://r{i}.example" for i in range(5)]}),
        ("relays-duplicate", {0: 3, 6: ["wss://r.example", "wss://r.example"]}),
        ("relays-http", {0: 3, 6: ["http://r.example"]}),
        ("relays-not-normalised", {0: 3, 6: ["wss://R.example/"]}),
        ("relays-bstr", {0: 3, 6: [b"wss://r.example"]}),
        ("relays-text", {0: 3, 6: "wss://r.example"}),
    ]:
        corpus.add(
            f"response-{name}",
            _sign_token(hostile.BOB, 2, enc({**resp, **cast(dict[Any, Any], changes)})),
        )
    return corpus


def _payload(token: str) -> bytes:
    return base58.b58decode(token[len("didlink:") :])


def _edit(token: str, change: Any) -> str:
    return "didlink:" + base58.b58encode(change(_payload(token))).decode("ascii")


def _retag(token: str, tag: int) -> str:
    return _edit(token, lambda p: bytes([tag]) + p[1:])


def _cross_domain(invitation: Invitation) -> str:
    """An invitation body signed under the response domain: a signature for another purpose."""
    body = invitation.body()
    payload = b"\x01" + body + hostile.ALICE.sign(RESPONSE_DOMAIN + body)
    return "didlink:" + base58.b58encode(payload).decode("ascii")


def did_corpus() -> Corpus:
    corpus = Corpus("did")
    good = hostile.ALICE.did
    method = good[len("did:key:") :]
    raw = base58.b58decode(method[1:])

    def did_of(payload: bytes) -> str:
        return "did:key:z" + base58.b58encode(payload).decode("ascii")

    for name, text in [
        ("empty", ""),
        ("prefix-only", "did:key:"),
        ("multibase-only", "did:key:z"),
        ("upper-case-method", "DID:KEY:" + method),
        ("other-method", "did:web:" + method),
        ("no-did-prefix", method),
        ("leading-space", " " + good),
        ("trailing-newline", good + "\n"),
        ("tab-inside", good[:12] + "\t" + good[12:]),
        ("nbsp-inside", good[:12] + "\u00a0" + good[12:]),
        ("zero-width-space", good[:12] + "\u200b" + good[12:]),
        ("nul-inside", good[:12] + "\x00" + good[12:]),
        ("fragment", good + "#" + method),
        ("query", good + "?service=x"),
        ("path", good + "/path"),
        ("base58-zero", good[:-1] + "0"),
        ("base58-O", good[:-1] + "O"),
        ("base58-I", good[:-1] + "I"),
        ("base58-l", good[:-1] + "l"),
        ("multibase-base16", "did:key:f" + raw.hex()),
        ("multibase-base64url", "did:key:u7QE"),
        ("multibase-uppercase-Z", "did:key:Z" + method[1:]),
        ("201-chars", "did:key:z" + "1" * 192),
        ("10000-chars", "did:key:z" + "2" * 10_000),
        ("lone-surrogate", "did:key:z\ud800"),
        ("fullwidth-z", "did:key:\uff5a" + method[1:]),
        ("arabic-digit", "did:key:z\u0663" + method[2:]),
        ("ed25519-31-bytes", did_of(raw[:-1])),
        ("ed25519-33-bytes", did_of(raw + b"\x00")),
        ("ed25519-not-on-curve", did_of(b"\xed\x01" + NOT_ON_CURVE_ED25519)),
        ("codec-only", did_of(b"\xed\x01")),
        ("varint-truncated", did_of(b"\xed")),
        ("varint-non-minimal", did_of(b"\xed\x81\x00" + raw[2:])),
        ("varint-10-bytes", did_of(b"\xff" * 9 + b"\x01" + raw[2:])),
        ("codec-zero", did_of(b"\x00" + raw[2:])),
        ("codec-sha256-multihash", did_of(b"\x12\x20" + bytes(32))),
        ("codec-rsa", did_of(b"\x85\x24" + bytes(270))),
        ("x25519-31-bytes", did_of(b"\xec\x01" + bytes(31))),
        ("p256-uncompressed-prefix", did_of(b"\x80\x24\x04" + bytes(32))),
        ("p256-not-on-curve", did_of(b"\x80\x24\x02" + b"\xff" * 32)),
        ("secp256k1-not-on-curve", did_of(b"\xe7\x01\x02" + bytes(32))),
        ("p384-wrong-length", did_of(b"\x81\x24\x02" + bytes(47))),
        ("p521-prefix-05", did_of(b"\x82\x24\x05" + bytes(66))),
    ]:
        corpus.add(name, text)
    for index, point in enumerate(SMALL_ORDER_ED25519):
        corpus.add(f"ed25519-small-order-{index}", did_of(b"\xed\x01" + point))
    for name, value in [("int", 1), ("null", None), ("list", [good]), ("object", {"id": good})]:
        corpus.add(f"wrong-type-{name}", value)
    corpus.add("bytes-instead-of-text", good.encode())
    return corpus


def keystore_corpus() -> Corpus:
    corpus = Corpus("keystore")
    good = hostile.sealed_keystore()
    doc = json.loads(good)

    def dump(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def with_field(path: tuple[str, ...], value: Any, *, drop: bool = False) -> bytes:
        copy = json.loads(good)
        node = copy
        for part in path[:-1]:
            node = node[part]
        if drop:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return dump(copy)

    for name, data in [
        ("empty", b""),
        ("whitespace", b"   \n"),
        ("not-json", b"keystore"),
        ("json-null", b"null"),
        ("json-array", b"[]"),
        ("json-string", b'"keystore"'),
        ("json-number", b"1"),
        ("truncated-half", good[: len(good) // 2]),
        ("truncated-last-byte", good[:-1]),
        ("trailing-garbage", good + b"x"),
        ("two-documents", good + good),
        ("invalid-utf8", good.replace(b'"did"', b'"d\xffd"')),
        ("utf16", good.decode().encode("utf-16")),
        ("nul-bytes", bytes(64)),
        ("deep-array-10000", b"[" * DEPTH + b"]" * DEPTH),
        ("deep-object-10000", b'{"a":' * DEPTH + b"1" + b"}" * DEPTH),
        ("int-5000-digits", b'{"version":' + b"1" * 5000 + b"}"),
        ("nan-memory", good.replace(b'"memory_cost":8', b'"memory_cost":NaN')),
        ("infinity-memory", good.replace(b'"memory_cost":8', b'"memory_cost":Infinity')),
        ("over-16-KiB", good[:-1] + b"," + b'"pad":"' + b"x" * 16384 + b'"}'),
        ("16-KiB-of-spaces-first", b" " * 16384 + good),
    ]:
        corpus.add(name, data)
    fields: list[tuple[str, tuple[str, ...], Any]] = [
        ("version-missing", ("version",), None),
        ("version-2", ("version",), 2),
        ("version-0", ("version",), 0),
        ("version-true", ("version",), True),
        ("version-float", ("version",), 1.0),
        ("version-text", ("version",), "1"),
        ("did-x25519", ("did",), "did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F"),
        ("did-invalid", ("did",), "did:key:z6Mk"),
        ("did-number", ("did",), 5),
        ("did-other-identity", ("did",), hostile.ALICE.did),
        ("algorithm-argon2i", ("kdf", "algorithm"), "argon2i"),
        ("algorithm-missing", ("kdf", "algorithm"), None),
        ("salt-15-bytes", ("kdf", "salt"), "AAECAwQFBgcICQoLDA0O"),
        ("salt-65-bytes", ("kdf", "salt"), "A" * 88),
        ("salt-not-base64", ("kdf", "salt"), "!!!!"),
        ("salt-unpadded", ("kdf", "salt"), doc["kdf"]["salt"].rstrip("=")),
        ("salt-non-ascii", ("kdf", "salt"), "\u00e9" * 24),
        ("salt-bytes-array", ("kdf", "salt"), list(range(16))),
        ("memory-0", ("kdf", "memory_cost"), 0),
        ("memory-7", ("kdf", "memory_cost"), 7),
        ("memory-4-GiB-plus-1", ("kdf", "memory_cost"), 4 * 1024 * 1024 + 1),
        ("memory-2^64", ("kdf", "memory_cost"), 2**64),
        ("memory-float", ("kdf", "memory_cost"), 8.0),
        ("memory-bool", ("kdf", "memory_cost"), True),
        ("memory-text", ("kdf", "memory_cost"), "8"),
        ("memory-below-8-per-lane", ("kdf", "lanes"), 2),
        ("iterations-0", ("kdf", "iterations"), 0),
        ("iterations-65", ("kdf", "iterations"), 65),
        ("iterations-negative", ("kdf", "iterations"), -1),
        ("lanes-0", ("kdf", "lanes"), 0),
        ("lanes-17", ("kdf", "lanes"), 17),
        ("kdf-extra-field", ("kdf", "pepper"), "x"),
        ("kdf-not-object", ("kdf",), "argon2id"),
        ("cipher-chacha", ("cipher",), "chacha20-poly1305"),
        ("cipher-missing", ("cipher",), None),
        ("nonce-11-bytes", ("nonce",), "AAECAwQFBgcICQo="),
        ("nonce-13-bytes", ("nonce",), "AAECAwQFBgcICQoLDA=="),
        ("salt-bad-padding-bits", ("kdf", "salt"), doc["kdf"]["salt"][:-3] + "x=="),
        ("ciphertext-47-bytes", ("ciphertext",), doc["ciphertext"][:60] + "AA=="),
        ("ciphertext-empty", ("ciphertext",), ""),
        ("ciphertext-null", ("ciphertext",), None),
        ("extra-top-level-field", ("comment",), "hello"),
    ]
    for name, path, value in fields:
        drop = value is None and name.endswith("missing")
        corpus.add(name, with_field(path, value, drop=drop))
    # structurally valid, cryptographically wrong: only the AEAD can tell
    flipped = bytearray(good)
    index = good.index(b'"ciphertext":"') + len('"ciphertext":"') + 4
    flipped[index] = ord("A") if flipped[index] != ord("A") else ord("B")
    corpus.add("ciphertext-changed", bytes(flipped), expect="WrongPassphrase")
    corpus.add(
        "did-swapped-for-alices",
        with_field(("did",), hostile.ALICE.did),
        expect="WrongPassphrase",
    )
    corpus.add("salt-changed", with_field(("kdf", "salt"), "AAAAAAAAAAAAAAAAAAAAAA=="))
    corpus.add("memory-changed", with_field(("kdf", "memory_cost"), 9), expect="WrongPassphrase")
    return corpus


def handshake_corpora() -> list[Corpus]:
    commitment, initiation, response = hostile.handshake_messages()
    other = hostile.handshake_messages(invitation_id=bytes(16))  # another invitation
    real = {"commitment": commitment, "initiation": initiation, "response": response}
    sizes = {1: 34, 2: 50, 3: 82}
    corpora = []
    for step, expected_type in (("commitment", 1), ("initiation", 2), ("response", 3)):
        corpus = Corpus(f"handshake_{step}")
        corpus.add("empty", b"")
        corpus.add("one-byte", bytes([expected_type]))
        corpus.add("header-only", bytes([expected_type, 1]))
        for kind in (0x00, 0x04, 0x7F, 0xFF):
            corpus.add(
                f"unknown-type-{kind:#04x}", bytes([kind, 1]) + bytes(sizes[expected_type] - 2)
            )
        for version in (0, 2, 255):
            corpus.add(f"version-{version}", bytes([expected_type, version]) + real[step][2:])
        corpus.add("one-byte-short", real[step][:-1])
        corpus.add("one-byte-long", real[step] + b"\x00")
        corpus.add("doubled", real[step] * 2)
        corpus.add("64-KiB", real[step] + bytes(65536))
        for other_step, message in real.items():
            if other_step != step:
                corpus.add(f"the-{other_step}-message", message)
        if step != "commitment":  # any 32 bytes are a commitment; these are cryptographic
            corpus.add("from-another-invitation", other[expected_type - 1])
            corpus.add("all-zero-body", bytes([expected_type, 1]) + bytes(sizes[expected_type] - 2))
            corpus.add(
                "all-ff-body", bytes([expected_type, 1]) + b"\xff" * (sizes[expected_type] - 2)
            )
            body = real[step][2:]
            for index, point in enumerate(SMALL_ORDER_X25519):
                corpus.add(f"small-order-ephemeral-{index}", real[step][:2] + point + body[32:])
            corpus.add("tag-zeroed", real[step][:-16] + bytes(16))
        corpora.append(corpus)
    return corpora


SMALL_ORDER_X25519 = [
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


def frame_corpus() -> Corpus:
    corpus = Corpus("frame")
    text = {"seq": 0, "type": "text", "text": "hi"}
    offer = {
        "seq": 1,
        "type": "file_offer",
        "file_id": bytes(16),
        "name": "notes.txt",
        "size": 5,
        "sha256": bytes(32),
        "chunk_size": 16384,
    }
    base = enc([text, offer])
    assert base == cbor2.dumps([text, offer], canonical=True)
    for name, data in generic(base):
        corpus.add(name, data)
    for name, value in field_variants(text):
        corpus.add(f"text-{name}", enc([Raw(encode_variant(value))]))
    for name, value in field_variants(offer):
        corpus.add(f"offer-{name}", enc([Raw(encode_variant(value))]))
    corpus.add("empty-indefinite-array", b"\x9f\xff")  # (the empty array: a key announcement)
    corpus.add("array-of-ints", enc([1, 2, 3]))
    corpus.add("indefinite-outer-array", b"\x9f" + enc(text) + b"\xff")
    for name, message in [
        ("unknown-type", {"seq": 0, "type": "video"}),
        ("type-as-int", {"seq": 0, "type": 1}),
        ("hello-version-2", {"seq": 0, "type": "hello", "version": 2}),
        ("text-64KiB-plus-1", {"seq": 0, "type": "text", "text": "a" * 65537}),
        ("receipt-empty", {"seq": 0, "type": "receipt", "ids": []}),
        ("receipt-1025-ids", {"seq": 0, "type": "receipt", "ids": list(range(1025))}),
        ("receipt-negative-id", {"seq": 0, "type": "receipt", "ids": [-1]}),
        ("receipt-id-2^63", {"seq": 0, "type": "receipt", "ids": [2**63]}),
        ("seq-2^63", {**text, "seq": 2**63}),
        ("seq-2^64-1", {**text, "seq": 2**64 - 1}),
        ("seq-bignum-2^70", {**text, "seq": 2**70}),
        ("file-name-slash", {**offer, "name": "../etc/passwd"}),
        ("file-name-backslash", {**offer, "name": "..\\boot.ini"}),
        ("file-name-dotdot", {**offer, "name": ".."}),
        ("file-name-empty", {**offer, "name": ""}),
        ("file-name-rtl-override", {**offer, "name": "txt.\u202eexe"}),
        ("file-name-256-bytes", {**offer, "name": "a" * 256}),
        ("file-name-newline", {**offer, "name": "a\nb"}),
        ("file-name-nul", {**offer, "name": "a\x00b"}),
        ("file-size-negative", {**offer, "size": -1}),
        ("file-size-2^63", {**offer, "size": 2**63}),
        ("chunk-size-0", {**offer, "chunk_size": 0}),
        ("chunk-size-1MiB-plus-1", {**offer, "chunk_size": 2**20 + 1}),
        ("sha256-31-bytes", {**offer, "sha256": bytes(31)}),
        ("file-id-15-bytes", {**offer, "file_id": bytes(15)}),
        (
            "chunk-64KiB-plus-1",
            {
                "seq": 0,
                "type": "file_chunk",
                "file_id": bytes(16),
                "offset": 0,
                "data": bytes(65537),
            },
        ),
        (
            "chunk-empty",
            {"seq": 0, "type": "file_chunk", "file_id": bytes(16), "offset": 0, "data": b""},
        ),
        ("ack-negative", {"seq": 0, "type": "file_ack", "file_id": bytes(16), "next_offset": -1}),
        ("close-reason-1025", {"seq": 0, "type": "close", "reason": "r" * 1025}),
        ("close-reason-int", {"seq": 0, "type": "close", "reason": 5}),
        # a text's sending time (specs/frames.md 5b): a uint through 9999-12-31, absent not null
        ("text-at-negative", {**text, "mid": bytes(16), "at": -1}),
        ("text-at-null", {**text, "mid": bytes(16), "at": None}),
        ("text-at-after-9999", {**text, "mid": bytes(16), "at": 253_402_300_800}),
        ("text-at-2^64-1", {**text, "mid": bytes(16), "at": 2**64 - 1}),
        ("text-at-bignum-2^70", {**text, "at": 2**70}),
        ("text-at-float", {**text, "mid": bytes(16), "at": 1.5}),
        ("text-at-true", {**text, "mid": bytes(16), "at": True}),
        ("text-at-string", {**text, "mid": bytes(16), "at": "2026-12-08T09:15:00Z"}),
    ]:
        corpus.add(name, enc([message]))
    corpus.add("1025-messages", enc([{**text, "seq": i} for i in range(1025)]))
    corpus.add("over-256-KiB", enc([{**text, "text": "a" * 65000, "seq": i} for i in range(5)]))
    return corpus


def padding_corpus() -> Corpus:
    corpus = Corpus("padding")
    for name, data in [
        ("empty", b""),
        ("zero", b"\x00"),
        ("all-zero-64", bytes(64)),
        ("no-marker", b"abc"),
        ("marker-then-junk", b"abc\x80\x01"),
        ("marker-01", b"abc\x01\x00\x00"),
        ("too-much-padding", b"abc\x80" + bytes(60)),
        ("too-little-padding", b"a" * 100 + b"\x80"),
        ("marker-zeros-wrong-length", b"abcd\x80" + bytes(4)),
        ("marker-only-long", b"\x80" + bytes(1000)),
    ]:
        corpus.add(name, data)
    assert padme(101) != 101
    return corpus


def ratchet_corpus() -> Corpus:
    corpus = Corpus("ratchet")
    alice, _ = hostile.ratchet_pair()
    first = alice.encrypt(pad(b"hello"))
    second = alice.encrypt(pad(b"again"))
    header, body = first[:41], first[41:]
    for name, data in [
        ("empty", b""),
        ("header-only", header),
        ("88-zero-bytes", bytes(88)),
        ("version-0", b"\x00" + first[1:]),
        ("version-2", b"\x02" + first[1:]),
        ("version-255", b"\xff" + first[1:]),
        ("body-not-block-multiple", first[:-33] + first[-32:]),
        ("tag-only", header + body[-32:]),
        ("tag-zeroed", first[:-32] + bytes(32)),
        ("ciphertext-zeroed", header + bytes(len(body) - 32) + body[-32:]),
        ("truncated-1", first[:-1]),
        ("extended-1", first + b"\x00"),
        ("n-1001-beyond-max-skip", header[:37] + (1001).to_bytes(4, "big") + body),
        ("n-2^32-1", header[:37] + b"\xff\xff\xff\xff" + body),
        ("pn-2^32-1", header[:33] + b"\xff\xff\xff\xff" + header[37:] + body),
        ("header-of-second-body-of-first", second[:41] + body),
        ("64-KiB-garbage", bytes(65536)),
        ("from-another-session", _foreign_frame()),
    ]:
        corpus.add(name, data)
    for index, point in enumerate(SMALL_ORDER_X25519):
        corpus.add(f"small-order-dh-{index}", header[:1] + point + header[33:] + body)
    return corpus


def _foreign_frame() -> bytes:
    other = hostile.counter_rng(b"foreign")
    from messaging.ratchet import RatchetSession

    session = RatchetSession.initiator(
        other(32), hostile.bob_ratchet_public(), associated_data=hostile.RATCHET_AD, rng=other
    )
    return session.encrypt(pad(b"x"))


def channel_corpus() -> Corpus:
    """Unauthenticated garbage, and authenticated frames whose plaintext breaks the protocol."""
    corpus = Corpus("channel")

    def sealed(plaintext: bytes) -> bytes:
        alice, _ = hostile.ratchet_pair()
        return alice.encrypt(plaintext)

    text = {"seq": 0, "type": "text", "text": "hi"}
    for name, data in [
        ("empty", b""),
        ("garbage-105", bytes(range(105))),
        ("unpadded-plaintext", sealed(enc([{"seq": 0, "type": "hello", "version": 1}]) + b"\x01")),
        ("padding-only", sealed(pad(b""))),
        ("not-cbor", sealed(pad(b"\xff\xff"))),
        ("non-canonical-frame", sealed(pad(enc([text], Style(wide_ints=True))))),
        ("deep-nesting-10000", sealed(pad(b"\x81" * DEPTH + b"\x00"))),
        ("huge-declared-length", sealed(pad(b"\x9b" + HUGE.to_bytes(8, "big")))),
        ("hello-with-seq-1", sealed(pad(enc([{"seq": 1, "type": "hello", "version": 1}])))),
        ("seq-beyond-window", sealed(pad(enc([{**text, "seq": 1024}])))),
        ("unknown-message-type", sealed(pad(enc([{"seq": 0, "type": "video"}])))),
        ("plaintext-over-limit", sealed(pad(bytes(300 * 1024)))),
    ]:
        corpus.add(name, data)
    return corpus


def safety_corpus() -> Corpus:
    corpus = Corpus("safety_qr")
    digits = "0123456789" * 6
    for name, text in [
        ("empty", ""),
        ("digits-only", digits),
        ("scheme-only", "didlink-sn"),
        ("no-version", "didlink-sn:" + digits),
        ("upper-case-scheme", "DIDLINK-SN:1:" + digits),
        ("other-scheme", "signal-sn:1:" + digits),
        ("version-2", "didlink-sn:2:" + digits),
        ("version-01", "didlink-sn:01:" + digits),
        ("version-empty", "didlink-sn::" + digits),
        ("version-huge", "didlink-sn:" + "9" * 5000 + ":" + digits),
        ("59-digits", "didlink-sn:1:" + digits[:-1]),
        ("61-digits", "didlink-sn:1:" + digits + "0"),
        ("letters", "didlink-sn:1:" + "a" * 60),
        ("arabic-indic-digits", "didlink-sn:1:" + "\u0663" * 60),
        ("fullwidth-digits", "didlink-sn:1:" + "\uff13" * 60),
        ("superscript-digits", "didlink-sn:1:" + "\u00b9" * 60),
        (
            "spaces-between-groups",
            "didlink-sn:1:" + " ".join([digits[i : i + 5] for i in range(0, 60, 5)]),
        ),
        ("trailing-newline", "didlink-sn:1:" + digits + "\n"),
        ("extra-colon", "didlink-sn:1:" + digits + ":"),
        ("nul", "didlink-sn:1:" + digits[:30] + "\x00" + digits[30:59]),
        ("lone-surrogate", "didlink-sn:1:\ud800"),
        ("64-KiB", "didlink-sn:1:" + "1" * 65536),
    ]:
        corpus.add(name, text)
    corpus.add("bytes-invalid-utf8", b"didlink-sn:1:\xff" + digits.encode())
    corpus.add("bytes-latin1", ("didlink-sn:1:\u00e9" + digits).encode("latin-1"))
    corpus.add("bytes-empty", b"")
    wrong: list[tuple[str, Any]] = [("int", 1), ("null", None), ("list", [digits]), ("object", {})]
    for name, value in wrong:
        corpus.add(f"wrong-type-{name}", value)
    return corpus


def base_offer() -> CompactOffer:
    return CompactOffer.from_cbor(hostile.sample_offer())


def offer_corpus() -> Corpus:
    corpus = Corpus("compact_offer")
    offer = base_offer()
    base = offer.to_cbor()
    fields = cbor2.loads(base)
    for name, data in generic(base):
        corpus.add(name, data)
    for name, value in field_variants(fields, sized=False):
        corpus.add(name, encode_variant(value))
    host = offer.candidates[0].pack()
    for name, changes in [
        ("setup-3", {1: 3}),
        ("ufrag-3-chars", {2: "abc"}),
        ("ufrag-33-chars", {2: "a" * 33}),
        ("ufrag-bad-char", {2: "ab:d"}),
        ("ufrag-trailing-newline", {2: "abcd\n"}),
        ("ufrag-non-ascii", {2: "\u00e9\u00e9\u00e9\u00e9"}),
        ("pwd-21-chars", {3: "a" * 21}),
        ("pwd-65-chars", {3: "a" * 65}),
        ("fingerprint-31", {4: bytes(31)}),
        ("fingerprint-33", {4: bytes(33)}),
        ("candidates-empty", {5: []}),
        ("candidates-9", {5: [host] * 9}),
        ("candidates-not-list", {5: host}),
        ("candidate-text", {5: ["192.0.2.1"]}),
        ("candidate-empty", {5: [b""]}),
        ("candidate-reserved-flag", {5: [b"\x20" + host[1:]]}),
        ("candidate-ipv6-flag-4-bytes", {5: [b"\x04" + host[1:]]}),
        ("candidate-too-long", {5: [host + b"\x00"]}),
        ("candidate-too-short", {5: [host[:-1]]}),
        ("candidate-port-0", {5: [host[:5] + b"\x00\x00"]}),
        ("candidate-related-ipv6-without-related", {5: [b"\x10" + host[1:]]}),
        ("candidate-host-with-related", {5: [b"\x08" + host[1:] + host[1:]]}),
        ("candidate-srflx-related-flag-no-bytes", {5: [b"\x09" + host[1:]]}),
    ]:
        corpus.add(name, enc({**fields, **cast(dict[Any, Any], changes)}))
    corpus.add("513-bytes", enc({**fields, 3: "a" * 64, 5: [host] * 8}) + bytes(513))
    corpus.add("text-instead-of-bytes", base.hex())
    corpus.add("wrong-type-list", [1, 2])
    corpus.add("wrong-type-null", None)
    return corpus


def build() -> dict[str, Corpus]:
    """Every corpus, by target name."""
    corpora = [
        token_corpus(),
        did_corpus(),
        keystore_corpus(),
        *handshake_corpora(),
        frame_corpus(),
        padding_corpus(),
        ratchet_corpus(),
        channel_corpus(),
        safety_corpus(),
        offer_corpus(),
    ]
    built = {c.target: c for c in corpora}
    missing = set(hostile.TARGETS) - set(built)
    if missing:
        raise RuntimeError(f"no corpus for {sorted(missing)}")
    return built


def rendered(corpus: Corpus) -> dict[str, bytes]:
    """File name -> bytes of one corpus folder."""
    files = dict(corpus.files)
    files["cases.json"] = (
        json.dumps(
            {
                "target": corpus.target,
                "parser": hostile.TARGETS[corpus.target].description,
                "cases": corpus.cases,
            },
            indent=1,
            ensure_ascii=True,
        )
        + "\n"
    ).encode("ascii")
    return files


def main() -> None:
    total = 0
    for name, corpus in build().items():
        folder = CORPUS / name
        folder.mkdir(parents=True, exist_ok=True)
        wanted = rendered(corpus)
        for stale in folder.iterdir():
            if stale.name not in wanted and stale.name != "README.md":
                stale.unlink()
        for file, data in wanted.items():
            (folder / file).write_bytes(data)
        total += len(corpus.cases)
        print(f"{name:22} {len(corpus.cases):4} cases")
    print(f"{'total':22} {total:4} cases")


if __name__ == "__main__":
    main()
