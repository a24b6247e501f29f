"""NIP-01 ids and BIP-340 signatures (transport/nostr_event.py) against nostr-sdk as an oracle:
what we sign it verifies, what it signs we verify, for any content and tags; and a changed
field, id or signature is refused."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transport.errors import EnvelopeForged, NostrKeyError
from transport.nostr_event import (
    NostrEvent,
    load_event,
    nostr_sdk,
    parse_event,
    public_key_of,
    secret_key,
    sign_event,
    verify_event,
)

_text = st.text(max_size=60)  # every code point, control characters, quotes, backslashes
_tags = st.lists(st.lists(_text, min_size=1, max_size=4), max_size=4)


def _sdk_signed(secret: bytes, kind: int, content: str, tags: list[list[str]], at: int) -> str:
    sdk = nostr_sdk()
    builder = (
        sdk.EventBuilder(sdk.Kind(kind), content)
        .tags([sdk.Tag.parse(tag) for tag in tags])
        .custom_created_at(sdk.Timestamp.from_secs(at))
    )
    return str(builder.finalize(sdk.Keys(secret_key(secret))).as_json())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=_text, tags=_tags, kind=st.integers(0, 65535), at=st.integers(0, 2**33))
def test_what_we_sign_nostr_sdk_verifies(
    content: str, tags: list[list[str]], kind: int, at: int
) -> None:
    secret = os.urandom(32)
    event = sign_event(secret, created_at=at, kind=kind, tags=tags, content=content)
    assert event.pubkey == public_key_of(secret).hex()
    verify_event(event)
    sdk = nostr_sdk()
    theirs = sdk.Event.from_json(event.to_json())
    assert theirs.verify_id() and theirs.verify_signature()
    assert theirs.id().to_hex() == event.id


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=_text, tags=_tags, kind=st.integers(0, 65535), at=st.integers(0, 2**33))
def test_what_nostr_sdk_signs_we_verify(
    content: str, tags: list[list[str]], kind: int, at: int
) -> None:
    if any(not tag[0] for tag in tags):
        return  # nostr-sdk will not build a tag with an empty name
    text = _sdk_signed(os.urandom(32), kind, content, tags, at)
    load_event(text, max_content_chars=100_000)


def _event() -> NostrEvent:
    return sign_event(os.urandom(32), created_at=1_700_000_000, kind=1059, tags=[], content="x")


@pytest.mark.parametrize(
    "change",
    [
        {"content": "y"},
        {"kind": 1058},
        {"created_at": 1_700_000_001},
        {"tags": (("p", "00"),)},
        {"pubkey": public_key_of(os.urandom(32)).hex()},
        {"id": "00" * 32},
        {"sig": "00" * 64},
        {"pubkey": "ff" * 32},  # not on the curve
    ],
    ids=["content", "kind", "created_at", "tags", "pubkey", "id", "sig", "off-curve"],
)
def test_a_changed_field_is_refused(change: dict[str, object]) -> None:
    event = _event()
    verify_event(event)
    with pytest.raises(EnvelopeForged):
        verify_event(replace(event, **change))  # type: ignore[arg-type]


def test_a_changed_signature_is_refused_though_the_event_was_verified_before() -> None:
    event = _event()
    verify_event(event)
    for position in range(0, 128, 7):
        sig = event.sig[:position] + ("1" if event.sig[position] == "0" else "0")
        with pytest.raises(EnvelopeForged):
            verify_event(replace(event, sig=sig + event.sig[position + 1 :]))


def test_a_lone_surrogate_is_refused() -> None:
    event = parse_event(
        json.loads(_event().to_json().replace('"content":"x"', '"content":"\\ud800"')),
        max_content_chars=100,
    )
    with pytest.raises(EnvelopeForged):
        verify_event(event)


@pytest.mark.parametrize("secret", [b"\x00" * 32, b"\xff" * 32, b"\x01" * 31])
def test_bad_secret_keys_refused(secret: bytes) -> None:
    with pytest.raises(NostrKeyError):
        sign_event(secret, created_at=0, kind=1, tags=[], content="x")
    with pytest.raises(NostrKeyError):
        public_key_of(secret)
