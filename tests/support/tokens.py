"""Build didlink tokens by hand (specs/invitation.md §7), so tests can forge broken ones."""

from __future__ import annotations

from typing import Any

import base58
import cbor2
from nacl.signing import SigningKey

SEED = bytes(range(32))
OTHER_SEED = bytes(range(32, 64))
INVITATION_DOMAIN = b"didlink/v1 invitation\x00"
RESPONSE_DOMAIN = b"didlink/v1 response\x00"
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def public_key(seed: bytes = SEED) -> bytes:
    return bytes(SigningKey(seed).verify_key)


def card_map(**changes: Any) -> dict[Any, Any]:
    """A valid card's CBOR map (spec §2); `k<N>=value` replaces key N, `k<N>=None` drops it."""
    fields: dict[Any, Any] = {
        0: 1,
        1: 0,
        2: bytes(range(0xA0, 0xB0)),
        3: public_key(),
        4: T0,
        5: T0 + 30 * 86400,
        6: 0,
        7: "Alice",
        8: b"",
    }
    for name, value in changes.items():
        key = int(name[1:])
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


def response_map(**changes: Any) -> dict[Any, Any]:
    fields: dict[Any, Any] = {
        0: 1,
        1: bytes(range(0xA0, 0xB0)),
        2: public_key(OTHER_SEED),
        3: T0 + 60,
        4: b"",
    }
    for name, value in changes.items():
        key = int(name[1:])
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


def forge(
    body: dict[Any, Any] | bytes,
    *,
    tag: int = 1,
    seed: bytes | None = SEED,
    domain: bytes | None = None,
    signature: bytes | None = None,
) -> str:
    """A token text with `body` (a map is canonically encoded), signed with PyNaCl by `seed`."""
    raw = body if isinstance(body, bytes) else cbor2.dumps(body, canonical=True)
    if signature is None:
        assert seed is not None
        if domain is None:
            domain = INVITATION_DOMAIN if tag == 1 else RESPONSE_DOMAIN
        signature = SigningKey(seed).sign(domain + raw).signature
    payload = bytes([tag]) + raw + signature
    return "didlink:" + base58.b58encode(payload).decode("ascii")


def payload_of(token: str) -> bytes:
    return base58.b58decode(token[len("didlink:") :])


def token_of(payload: bytes) -> str:
    return "didlink:" + base58.b58encode(payload).decode("ascii")
