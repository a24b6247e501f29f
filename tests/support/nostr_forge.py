"""Hand-built gift wraps for the negative tests: every layer under the test's control.

Built with nostr-sdk's primitives (NIP-44, signing) so each defect is the only defect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any

from transport.nostr_envelope import GIFT_WRAP_KIND, RUMOR_KIND, SEAL_KIND
from transport.nostr_event import nostr_sdk, public_key, public_key_of, secret_key


def rumor(sender_secret: bytes, payload: bytes = b"frame", **changes: Any) -> dict[str, Any]:
    sdk = nostr_sdk()
    content = base64.b64encode(payload).decode()
    built = json.loads(
        sdk.EventBuilder(sdk.Kind(RUMOR_KIND), content)
        .custom_created_at(sdk.Timestamp.from_secs(0))
        .finalize_unsigned(sdk.PublicKey.from_bytes(public_key_of(sender_secret)))
        .as_json()
    )
    serialised = json.dumps([0, built["pubkey"], 0, RUMOR_KIND, [], content], separators=(",", ":"))
    built["id"] = hashlib.sha256(serialised.encode()).hexdigest()
    built.update(changes)
    return dict(built)


def signed(
    signer_secret: bytes, kind: int, content: str, tags: list[list[str]], created_at: int
) -> dict[str, Any]:
    sdk = nostr_sdk()
    event = (
        sdk.EventBuilder(sdk.Kind(kind), content)
        .tags([sdk.Tag.parse(tag) for tag in tags])
        .custom_created_at(sdk.Timestamp.from_secs(created_at))
        .finalize(sdk.Keys(secret_key(signer_secret)))
    )
    return dict(json.loads(event.as_json()))


def encrypt(secret: bytes, recipient: bytes, text: str) -> str:
    sdk = nostr_sdk()
    return str(
        sdk.nip44_encrypt(secret_key(secret), public_key(recipient), text, sdk.Nip44Version.V2)
    )


def wrap(
    *,
    sender_secret: bytes,
    recipient: bytes,
    inner: dict[str, Any] | str | None = None,
    seal_kind: int = SEAL_KIND,
    seal_tags: list[list[str]] | None = None,
    seal_signer: bytes | None = None,
    wrap_kind: int = GIFT_WRAP_KIND,
    wrap_tags: list[list[str]] | None = None,
    created_at: int | None = None,
    expiration: int | None = None,
    encrypt_wrap_to: bytes | None = None,
) -> dict[str, Any]:
    """A gift wrap built layer by layer; each keyword changes one thing from a valid wrap."""
    now = int(time.time())
    inner = rumor(sender_secret) if inner is None else inner
    rumor_json = inner if isinstance(inner, str) else json.dumps(inner, separators=(",", ":"))
    seal = signed(
        seal_signer or sender_secret,
        seal_kind,
        encrypt(sender_secret, recipient, rumor_json),
        seal_tags or [],
        now - 600,
    )
    ephemeral = os.urandom(32)
    created = now - 1200 if created_at is None else created_at
    tags = wrap_tags
    if tags is None:
        expires = created + 30 * 86400 if expiration is None else expiration
        tags = [["p", recipient.hex()], ["expiration", str(expires)]]
    return signed(
        ephemeral,
        wrap_kind,
        encrypt(ephemeral, encrypt_wrap_to or recipient, json.dumps(seal, separators=(",", ":"))),
        tags,
        created,
    )
