"""Handshake patterns as data (Noise spec rev 34, section 7) and protocol-name parsing.

A pattern is its pre-messages (public keys known in advance, section 7.1) and its message
patterns, each a tuple of tokens. Messages alternate initiator -> responder -> initiator...
psk modifiers (section 9.2) are applied to a base pattern: `psk0` puts a "psk" token at the
start of the first message, `pskN` (N >= 1) at the end of message N.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from messaging.errors import LocalProtocolError
from messaging.noise.cipher_state import CIPHERS, CipherFunctions

TOKENS = frozenset({"e", "s", "ee", "es", "se", "ss", "psk"})


@dataclass(frozen=True)
class HandshakePattern:
    """A named pattern: pre-message tokens of each side and the message token lists."""

    name: str
    initiator_pre: tuple[str, ...]
    responder_pre: tuple[str, ...]
    messages: tuple[tuple[str, ...], ...]

    @property
    def is_psk(self) -> bool:
        return any("psk" in message for message in self.messages)

    @property
    def psk_count(self) -> int:
        return sum(message.count("psk") for message in self.messages)


def _p(name: str, pre_i: str, pre_r: str, *messages: str) -> tuple[str, HandshakePattern]:
    def tokens(text: str) -> tuple[str, ...]:
        return tuple(t.strip() for t in text.split(",") if t.strip())

    return name, HandshakePattern(
        name, tokens(pre_i), tokens(pre_r), tuple(tokens(m) for m in messages)
    )


# Section 7.4 (one-way, one message from the initiator: a first message to a contact who is
# offline, messaging/first_message.py) and section 7.5 (interactive).
BASE_PATTERNS: dict[str, HandshakePattern] = dict(
    [
        _p("N", "", "s", "e, es"),
        _p("K", "s", "s", "e, es, ss"),
        _p("X", "", "s", "e, es, s, ss"),
        _p("NN", "", "", "e", "e, ee"),
        _p("NK", "", "s", "e, es", "e, ee"),
        _p("NX", "", "", "e", "e, ee, s, es"),
        _p("KN", "s", "", "e", "e, ee, se"),
        _p("KK", "s", "s", "e, es, ss", "e, ee, se"),
        _p("KX", "s", "", "e", "e, ee, se, s, es"),
        _p("XN", "", "", "e", "e, ee", "s, se"),
        _p("XK", "", "s", "e, es", "e, ee", "s, se"),
        _p("XX", "", "", "e", "e, ee, s, es", "s, se"),
        _p("IN", "", "", "e, s", "e, ee, se"),
        _p("IK", "", "s", "e, es, s, ss", "e, ee, se"),
        _p("IX", "", "", "e, s", "e, ee, se, s, es"),
    ]
)

_PATTERN_NAME = re.compile(r"^([A-Z]{1,2})((?:psk\d)(?:\+psk\d)*)?$")


def apply_psk_modifiers(base: HandshakePattern, modifiers: list[int]) -> HandshakePattern:
    """Insert "psk" tokens for each pskN modifier, in order (section 9.2)."""
    messages = [list(m) for m in base.messages]
    for n in modifiers:
        if n == 0:
            messages[0].insert(0, "psk")
        elif 1 <= n <= len(messages):
            messages[n - 1].append("psk")
        else:
            raise LocalProtocolError(f"psk{n} does not fit a {len(messages)}-message pattern")
    suffix = "+".join(f"psk{n}" for n in modifiers)
    return HandshakePattern(
        base.name + suffix,
        base.initiator_pre,
        base.responder_pre,
        tuple(tuple(m) for m in messages),
    )


def pattern_by_name(name: str) -> HandshakePattern:
    """The pattern for a name like "KK", "XXpsk3" or "NNpsk0+psk2"."""
    match = _PATTERN_NAME.match(name)
    if match is None or match.group(1) not in BASE_PATTERNS:
        raise LocalProtocolError(f"unsupported handshake pattern {name!r}")
    base = BASE_PATTERNS[match.group(1)]
    modifiers = [int(m[3:]) for m in match.group(2).split("+")] if match.group(2) else []
    return apply_psk_modifiers(base, modifiers)


@dataclass(frozen=True)
class Protocol:
    """A parsed protocol name: Noise_<pattern>_25519_<cipher>_SHA256 (section 8)."""

    name: str
    pattern: HandshakePattern
    cipher: CipherFunctions


def parse_protocol_name(name: str) -> Protocol:
    """Parse a full protocol name; only DH 25519 and hash SHA256 are supported."""
    parts = name.split("_")
    if len(parts) != 5 or parts[0] != "Noise":
        raise LocalProtocolError(f"not a Noise protocol name: {name!r}")
    _, pattern_name, dh, cipher_name, hash_name = parts
    if dh != "25519" or hash_name != "SHA256":
        raise LocalProtocolError(f"only 25519 and SHA256 are supported, not {name!r}")
    if cipher_name not in CIPHERS:
        raise LocalProtocolError(f"unsupported cipher {cipher_name!r}")
    return Protocol(name, pattern_by_name(pattern_name), CIPHERS[cipher_name])
