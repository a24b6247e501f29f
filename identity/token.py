"""The text form of didlink tokens: `didlink:` + base58btc(tag || body || signature) (spec §7).

One byte tags the token type, so `didlink inspect` can tell an invitation from a response
before reading anything else; the body is the canonical CBOR of the unsigned fields and the last
64 bytes are the Ed25519 signature (identity.invitation). Decoding always verifies the
signature: a decoded token is authentic, though it may still be expired or used
(`verify_invitation`).

Pasting is forgiven: the prefix is case-insensitive and whitespace anywhere (surrounding
spaces, line breaks from a chat app's wrapping) is dropped; base58 itself has no whitespace.

A token that does not decode after its prefix and alphabet were checked was most likely cut
short or mistyped on its way (a truncated base58 string decodes to other bytes entirely: an
"unknown type", "not valid CBOR"); the error says so in words, comparing its length with the
length a token of the expected kind has (`damaged`), and keeps the technical detail after it.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Final

import base58

from identity import base58btc
from identity.errors import MalformedToken
from identity.invitation import SIGNATURE_SIZE, Invitation, Response

PREFIX: Final = "didlink:"
MAX_TOKEN_CHARS: Final = 4096
"""Longer input is refused before any decoding (base58 decoding is quadratic)."""

_BASE58: Final = re.compile(r"[1-9A-HJ-NP-Za-km-z]+")

SHORTEST_TOKEN: Final = 184
"""Characters (prefix included) of the shortest token the schema allows: a response with no
transport answer; a contact card has about 197, a live invitation or response about 320-340."""
USUAL_LENGTH: Final = {"invitation": 330, "response": 320}
"""About how many characters a live token of each kind has (its transport offer or answer with
two address candidates; each further candidate adds about 10): for the "incomplete" message."""
INCOMPLETE_BELOW: Final = 0.85
"""A token of the expected kind shorter than this share of its usual length looks incomplete."""


class TokenType(IntEnum):
    """The first byte of a decoded token (spec §7)."""

    INVITATION = 0x01
    RESPONSE = 0x02


Token = Invitation | Response


def encode_token(token: Token) -> str:
    """The `didlink:` text of a signed invitation or response."""
    tag = TokenType.INVITATION if isinstance(token, Invitation) else TokenType.RESPONSE
    payload = bytes([tag]) + token.body() + token.signature
    return PREFIX + base58.b58encode(payload).decode("ascii")


def decode_token(text: str, *, expected: str | None = None) -> Token:
    """The invitation or response in `text`, its encoding, version, DID and signature checked.

    Raises MalformedToken, UnsupportedVersion, BadTokenDid or BadSignature (spec §5, in order).
    `expected` ("invitation" or "response"): the kind the caller waits for, whose usual length
    the message of a token that looks cut short names.
    """
    if len(text) > MAX_TOKEN_CHARS:
        raise MalformedToken(f"The token is longer than {MAX_TOKEN_CHARS} characters.")
    compact = "".join(text.split())
    if compact[: len(PREFIX)].lower() != PREFIX:
        raise MalformedToken(f"A didlink token starts with {PREFIX!r}.")
    encoded = compact[len(PREFIX) :]
    if not _BASE58.fullmatch(encoded):
        raise MalformedToken("The token has characters that are not base58.")
    try:
        payload = _b58decode(encoded)
        if len(payload) <= 1 + SIGNATURE_SIZE:
            raise MalformedToken("The token is too short.")
        tag, body, signature = payload[0], payload[1:-SIGNATURE_SIZE], payload[-SIGNATURE_SIZE:]
        if tag == TokenType.INVITATION:
            return Invitation.from_signed(body, signature)
        if tag == TokenType.RESPONSE:
            return Response.from_signed(body, signature)
        raise MalformedToken(f"The token has an unknown type ({tag}).")
    except MalformedToken as exc:
        raise MalformedToken(damaged(len(compact), str(exc), expected=expected)) from None


def starts_like_token(text: str) -> bool:
    """`text` begins with the `didlink:` prefix (case and whitespace as decoding forgives)."""
    return "".join(text.split())[: len(PREFIX)].lower() == PREFIX


def looks_incomplete(text: str, *, expected: str) -> bool:
    """`text` starts like a token but is shorter than a token of the `expected` kind usually
    is: what a paste cut at a line break gives (the rest may follow)."""
    compact = "".join(text.split())
    return starts_like_token(compact) and len(compact) < USUAL_LENGTH[expected] * INCOMPLETE_BELOW


def damaged(length: int, detail: str, *, expected: str | None = None) -> str:
    """Why a token of `length` characters (prefix included) that failed to decode with
    `detail` most likely did, in words: cut short, or a character dropped or changed."""
    usual = USUAL_LENGTH.get(expected or "")
    what = f"{expected} token" if expected else "token"
    technical = detail.rstrip(".")
    technical = technical[:1].lower() + technical[1:]
    if usual is not None and length < usual * INCOMPLETE_BELOW:
        return (
            f"This {what} looks incomplete: {length} of about {usual} characters. Copy all of it"
            f" (it may have been cut or wrapped when it was sent) ({technical})."
        )
    if length < SHORTEST_TOKEN:
        return (
            f"This {what} looks incomplete: {length} characters, and a didlink token has at"
            f" least {SHORTEST_TOKEN} (a live one about 320). Copy all of it ({technical})."
        )
    return (
        f"This {what} looks altered: a character may have been dropped, added or changed when"
        f" it was copied ({length} characters). Copy it again, exactly ({technical})."
    )


def _b58decode(encoded: str) -> bytes:
    """base58btc to bytes: the digits folded into one integer (identity/base58btc.py), then one
    `int.to_bytes`; leading '1's are zero bytes, as in the `base58` package.

    `base58.b58decode` reads one character and writes one byte at a time in Python, which was
    most of the cost of checking a token besides its signature.
    """
    digits = encoded.lstrip("1")
    value = base58btc.decode_int(digits) if digits else 0
    return bytes(len(encoded) - len(digits)) + value.to_bytes((value.bit_length() + 7) // 8, "big")


def decode_invitation(text: str) -> Invitation:
    """Like decode_token, but a response is refused as MalformedToken."""
    token = decode_token(text, expected="invitation")
    if not isinstance(token, Invitation):
        raise MalformedToken("This is a response token, not an invitation.")
    return token


def decode_response(text: str) -> Response:
    """Like decode_token, but an invitation is refused as MalformedToken."""
    token = decode_token(text, expected="response")
    if not isinstance(token, Response):
        raise MalformedToken("This is an invitation token, not a response.")
    return token
