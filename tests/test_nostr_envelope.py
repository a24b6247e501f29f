"""The mailbox envelope (specs/mailbox.md §2-4): round trips, what a wrap shows, and refusals."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import nostr_forge as forge
from transport.errors import (
    EnvelopeError,
    EnvelopeExpired,
    EnvelopeForged,
    EnvelopeMalformed,
    EnvelopeNotForUs,
    EnvelopeTooLarge,
    NostrKeyError,
    TransportUsageError,
)
from transport.nostr_envelope import (
    DEFAULT_EXPIRES_IN,
    GIFT_WRAP_KIND,
    MAX_PAYLOAD_BYTES,
    RUMOR_KIND,
    TIMESTAMP_TWEAK,
    open_wrap,
    seal_wrap,
)
from transport.nostr_event import MAX_EVENT_JSON_BYTES, nostr_sdk, public_key_of, secret_key

ALICE = bytes.fromhex("11" * 32)  # the sender's alias key
BOB = bytes.fromhex("22" * 32)  # the recipient's alias key
CAROL = bytes.fromhex("33" * 32)
BOB_PUB = public_key_of(BOB)


def _now() -> int:
    return int(time.time())


def _open(event: dict[str, Any] | str, secret: bytes = BOB, now: int | None = None) -> Any:
    text = event if isinstance(event, str) else json.dumps(event)
    return open_wrap(text, recipient_secret=secret, now=_now() if now is None else now)


def test_round_trip() -> None:
    wrap = seal_wrap(b"ratchet frame", sender_secret=ALICE, recipient=BOB_PUB)
    opened = open_wrap(wrap.to_json(), recipient_secret=BOB, now=_now())
    assert opened.payload == b"ratchet frame"
    assert opened.sender == public_key_of(ALICE)
    assert opened.recipient == BOB_PUB
    assert opened.wrap_id == wrap.id
    # an already parsed event is verified and opened the same way
    assert open_wrap(wrap, recipient_secret=BOB, now=_now()) == opened


def test_nostr_sdk_opens_what_we_seal() -> None:
    """nostr-sdk (an independent NIP-59 implementation) unwraps our gift wrap: same layers."""
    sdk = nostr_sdk()
    wrap = seal_wrap(b"ratchet frame", sender_secret=ALICE, recipient=BOB_PUB)
    signer = sdk.Keys(secret_key(BOB))
    gift = sdk.UnwrappedGift.from_gift_wrap(signer, sdk.Event.from_json(wrap.to_json()))
    assert gift.sender().to_hex() == public_key_of(ALICE).hex()
    rumor = json.loads(gift.rumor().as_json())
    assert base64.b64decode(rumor["content"]) == b"ratchet frame"
    assert rumor["kind"] == RUMOR_KIND and rumor["created_at"] == 0 and rumor["tags"] == []


def test_what_a_wrap_shows() -> None:
    now = _now()
    payload = b"secret text nobody else reads"
    wraps = [seal_wrap(payload, sender_secret=ALICE, recipient=BOB_PUB) for _ in range(8)]
    assert len({w.pubkey for w in wraps}) == 8  # a fresh key per wrap
    sender_hex = public_key_of(ALICE).hex()
    for wrap in wraps:
        assert wrap.kind == GIFT_WRAP_KIND
        assert wrap.pubkey != sender_hex
        assert wrap.tags == (("p", BOB_PUB.hex()), ("expiration", wrap.tag_values("expiration")[0]))
        assert now - TIMESTAMP_TWEAK - 5 <= wrap.created_at <= now + 5
        assert int(wrap.tag_values("expiration")[0]) == wrap.created_at + DEFAULT_EXPIRES_IN
        text = wrap.to_json()
        assert sender_hex not in text
        assert base64.b64encode(payload).decode() not in text
    assert len({w.created_at for w in wraps}) > 1  # randomised


def test_sizes_are_bucketed_and_the_largest_payload_fits() -> None:
    lengths = range(1, 4001, 100)
    sizes = {
        len(seal_wrap(b"y" * n, sender_secret=ALICE, recipient=BOB_PUB).content) for n in lengths
    }
    assert len(sizes) <= len(lengths) // 2  # NIP-44 padding, twice: a relay sees buckets
    largest = seal_wrap(os.urandom(MAX_PAYLOAD_BYTES), sender_secret=ALICE, recipient=BOB_PUB)
    assert len(largest.to_json().encode()) < MAX_EVENT_JSON_BYTES
    assert len(open_wrap(largest, recipient_secret=BOB, now=_now()).payload) == MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("payload", [b"", b"x" * (MAX_PAYLOAD_BYTES + 1)], ids=["empty", "over"])
def test_seal_refuses_bad_payload_sizes(payload: bytes) -> None:
    with pytest.raises(EnvelopeTooLarge):
        seal_wrap(payload, sender_secret=ALICE, recipient=BOB_PUB)


@pytest.mark.parametrize("expires_in", [0, 3600, 2 * 86400, 400 * 86400])
def test_seal_refuses_bad_expiry(expires_in: int) -> None:
    with pytest.raises(TransportUsageError):
        seal_wrap(b"x", sender_secret=ALICE, recipient=BOB_PUB, expires_in=expires_in)


def test_seal_refuses_bad_keys() -> None:
    with pytest.raises(NostrKeyError):
        seal_wrap(b"x", sender_secret=b"\x00" * 32, recipient=BOB_PUB)
    with pytest.raises(NostrKeyError):
        seal_wrap(b"x", sender_secret=ALICE, recipient=b"\x00" * 32)
    with pytest.raises(NostrKeyError):
        seal_wrap(b"x", sender_secret=ALICE, recipient=BOB_PUB[:31])


def test_forged_layers_build_valid_by_default() -> None:
    opened = _open(forge.wrap(sender_secret=ALICE, recipient=BOB_PUB))
    assert opened.payload == b"frame"
    assert opened.sender == public_key_of(ALICE)


def _flip_hex(text: str, at: int = 10) -> str:
    return text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1 :]


def test_bad_signature() -> None:
    event = seal_wrap(b"x", sender_secret=ALICE, recipient=BOB_PUB).to_wire()
    event["sig"] = _flip_hex(event["sig"])
    with pytest.raises(EnvelopeForged):
        _open(event)


def test_bad_id() -> None:
    event = seal_wrap(b"x", sender_secret=ALICE, recipient=BOB_PUB).to_wire()
    with pytest.raises(EnvelopeForged):
        _open({**event, "id": _flip_hex(event["id"])})
    with pytest.raises(EnvelopeForged):  # content changed under the same id and signature
        _open({**event, "content": event["content"][:-8] + "AAAAAAA="})


def test_wrong_kind() -> None:
    with pytest.raises(EnvelopeMalformed, match="kind"):
        _open(forge.wrap(sender_secret=ALICE, recipient=BOB_PUB, wrap_kind=4))


def test_expired_and_future() -> None:
    now = _now()
    with pytest.raises(EnvelopeExpired):
        _open(forge.wrap(sender_secret=ALICE, recipient=BOB_PUB, expiration=now - 1))
    with pytest.raises(EnvelopeExpired):
        _open(forge.wrap(sender_secret=ALICE, recipient=BOB_PUB, created_at=now + 3600))
    wrap = seal_wrap(b"x", sender_secret=ALICE, recipient=BOB_PUB)
    with pytest.raises(EnvelopeExpired):
        open_wrap(wrap, recipient_secret=BOB, now=now + DEFAULT_EXPIRES_IN + 1)


def test_checks_come_before_any_work() -> None:
    # expired AND badly signed: refused as expired, without verifying or decrypting anything
    event = forge.wrap(sender_secret=ALICE, recipient=BOB_PUB, expiration=_now() - 1)
    event["sig"] = _flip_hex(event["sig"])
    with pytest.raises(EnvelopeExpired):
        _open(event)
    # not for us AND undecryptable: refused as not for us
    event = forge.wrap(sender_secret=ALICE, recipient=public_key_of(CAROL))
    with pytest.raises(EnvelopeNotForUs):
        _open(event)


def test_oversized() -> None:
    event = seal_wrap(b"x", sender_secret=ALICE, recipient=BOB_PUB).to_wire()
    with pytest.raises(EnvelopeTooLarge):
        _open({**event, "content": "A" * (MAX_EVENT_JSON_BYTES + 1)})
    with pytest.raises(EnvelopeTooLarge):
        _open({**event, "content": "A" * 90_000})


def test_wrong_recipient() -> None:
    wrap = seal_wrap(b"x", sender_secret=ALICE, recipient=public_key_of(CAROL))
    with pytest.raises(EnvelopeNotForUs):
        _open(wrap.to_json())
    assert _open(wrap.to_json(), secret=CAROL).payload == b"x"


def test_p_tag_lies_about_the_recipient() -> None:
    # addressed to Bob but encrypted to Carol: Bob cannot open it
    event = forge.wrap(sender_secret=ALICE, recipient=BOB_PUB, encrypt_wrap_to=public_key_of(CAROL))
    with pytest.raises(EnvelopeForged):
        _open(event)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        "null",
        '{"id": 1}',
        "[" * 100_000,
        '{"kind": NaN}',
    ],
    ids=["empty", "text", "list", "null", "fields", "deep", "nan"],
)
def test_garbage_json(text: str) -> None:
    with pytest.raises((EnvelopeMalformed, EnvelopeTooLarge)):
        _open(text)


def _valid() -> dict[str, Any]:
    return seal_wrap(b"x", sender_secret=ALICE, recipient=BOB_PUB).to_wire()


_VALID_WRAP = _valid()


@pytest.mark.parametrize(
    "change",
    [
        {"kind": True},
        {"kind": 1059.0},
        {"created_at": -1},
        {"created_at": "1"},
        {"pubkey": "AB" * 32},
        {"sig": "00"},
        {"tags": "p"},
        {"tags": [["p"] * 10]},
        {"tags": [[1, 2]]},
        {"content": None},
        {"extra": 1},
    ],
    ids=lambda c: next(iter(c)),
)
def test_malformed_fields(change: dict[str, Any]) -> None:
    with pytest.raises(EnvelopeMalformed):
        _open({**_valid(), **change})


def test_duplicate_keys_refused() -> None:
    text = json.dumps(_valid())
    with pytest.raises(EnvelopeMalformed, match="duplicate"):
        _open(text[:-1] + ', "kind": 1059}')


@pytest.mark.parametrize(
    "tags",
    [
        [],
        [["p", BOB_PUB.hex()]],
        [["expiration", str(_now() + 86400)]],
        [["p", BOB_PUB.hex()], ["p", BOB_PUB.hex()], ["expiration", str(_now() + 86400)]],
        [["p", BOB_PUB.hex()], ["expiration", "soon"]],
        [["p", BOB_PUB.hex()], ["expiration", str(_now() + 86400)], ["t", "didlink"]],
    ],
    ids=["none", "no-expiration", "no-p", "two-p", "bad-expiration", "extra-tag"],
)
def test_bad_wrap_tags(tags: list[list[str]]) -> None:
    with pytest.raises(EnvelopeMalformed):
        _open(forge.wrap(sender_secret=ALICE, recipient=BOB_PUB, wrap_tags=tags))


def test_seal_signed_by_another_key_than_the_rumor() -> None:
    # the seal is by Carol's key, the rumor claims Alice: an impersonation attempt
    event = forge.wrap(
        sender_secret=CAROL, recipient=BOB_PUB, inner=forge.rumor(ALICE), seal_signer=CAROL
    )
    with pytest.raises(EnvelopeForged, match="author"):
        _open(event)


def test_seal_defects() -> None:
    with pytest.raises(EnvelopeMalformed, match="seal's kind"):
        _open(forge.wrap(sender_secret=ALICE, recipient=BOB_PUB, seal_kind=14))
    with pytest.raises(EnvelopeMalformed, match="no tags"):
        _open(forge.wrap(sender_secret=ALICE, recipient=BOB_PUB, seal_tags=[["p", BOB_PUB.hex()]]))
    # signed by Carol, encrypted from Alice: the seal's pubkey (Carol) does not decrypt
    with pytest.raises(EnvelopeForged):
        _open(forge.wrap(sender_secret=ALICE, recipient=BOB_PUB, seal_signer=CAROL))


@pytest.mark.parametrize(
    ("inner", "error"),
    [
        (forge.rumor(ALICE, sig="00" * 64), EnvelopeMalformed),
        (forge.rumor(ALICE, kind=14), EnvelopeMalformed),
        (forge.rumor(ALICE, tags=[["p", "00" * 32]]), EnvelopeMalformed),
        (forge.rumor(ALICE, created_at=_now()), EnvelopeMalformed),
        (forge.rumor(ALICE, content="not base64!"), EnvelopeMalformed),
        (forge.rumor(ALICE, content="YQ"), EnvelopeMalformed),  # unpadded: not canonical
        (forge.rumor(ALICE, content=""), EnvelopeTooLarge),
        (forge.rumor(ALICE, id="00" * 32), EnvelopeForged),
        ("[1, 2, 3]", EnvelopeMalformed),
        ("{", EnvelopeMalformed),
    ],
    ids=[
        "signed",
        "kind",
        "tags",
        "created_at",
        "base64",
        "canonical",
        "empty",
        "id",
        "list",
        "json",
    ],
)
def test_rumor_defects(inner: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        _open(forge.wrap(sender_secret=ALICE, recipient=BOB_PUB, inner=inner))


def test_rumor_kind_is_ours() -> None:
    assert RUMOR_KIND not in (1, 4, 13, 14, 1059)


def test_importing_transport_does_not_load_nostr_sdk() -> None:
    code = (
        "import sys, transport, transport.nostr_envelope, transport.nostr_relay, didlink.cli.main\n"
        "assert 'nostr_sdk' not in sys.modules, 'nostr_sdk imported'\n"
        "assert 'coincurve' not in sys.modules, 'coincurve imported'\n"
        "assert 'websockets' not in sys.modules, 'websockets imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=8)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(["id", "pubkey", "created_at", "kind", "tags", "content", "sig"]),
    value=_json_values,
)
def test_any_field_value_is_refused_with_a_typed_error(field: str, value: Any) -> None:
    event = {**_VALID_WRAP, field: value}
    try:
        opened = _open(event)
    except EnvelopeError:
        return
    assert value == _VALID_WRAP[field] and opened.payload == b"x"


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text_is_refused_with_a_typed_error(text: str) -> None:
    with pytest.raises(EnvelopeError):
        _open(text)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_changed_byte_is_refused(position: int, flip: int) -> None:
    data = bytearray(json.dumps(_VALID_WRAP).encode())
    index = position % len(data)
    data[index] = (data[index] + flip) % 128 or 1
    changed = bytes(data)
    try:
        opened = open_wrap(changed, recipient_secret=BOB, now=_now())
    except EnvelopeError:
        return
    # a change that JSON ignores (whitespace, an escape of the same character) is the same wrap
    assert opened.wrap_id == _VALID_WRAP["id"]
