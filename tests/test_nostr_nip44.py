"""NIP-44 v2 known answers (tests/vectors/nostr/README.md): every valid vector, every invalid one.

The envelope encrypts with transport/nip44.py; every vector is checked against it (the
`test_shipped_*` tests), and against two oracles: nostr-sdk and an independent reference.
nostr-sdk's Python API takes a key pair (not a conversation key) and draws its own nonce, so
each vector is checked in every way that reaches it:

- against nostr-sdk directly where the vector has key pairs (decrypt the known payload; encrypt
  and let the oracle decrypt it with the vector's conversation key; padded lengths read off the
  size of nostr-sdk's payloads; invalid keys refused where they enter, transport.nostr_event);
- against the independent oracle (tests/support/nip44_oracle.py: pyca/cryptography) byte for
  byte where the vector pins a nonce or gives only a conversation key (message keys, long
  messages, invalid payloads);
- and the key-dependent defects of the invalid payloads (bad MAC, bad padding) are rebuilt by
  the oracle under a real key pair and must be refused by nostr-sdk too.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support import nip44_oracle as oracle
from tests.support.vectors import VECTORS, load_json
from transport import nip44
from transport.errors import NostrKeyError
from transport.nostr_event import nostr_sdk, public_key, public_key_of, secret_key

pytestmark = pytest.mark.vectors

V2: dict[str, Any] = load_json("nostr/nip44.vectors.json")["v2"]
VALID = V2["valid"]
INVALID = V2["invalid"]
SHA256 = "269ed0f69e4c192512cc779e78c555090cebc7c785b609e338a62afc3ce25040"


def _sdk_encrypt(secret: bytes, public: bytes, text: str) -> str:
    sdk = nostr_sdk()
    return str(sdk.nip44_encrypt(secret_key(secret), public_key(public), text, sdk.Nip44Version.V2))


def _sdk_decrypt(secret: bytes, public: bytes, payload: str) -> str:
    sdk = nostr_sdk()
    return str(sdk.nip44_decrypt(secret_key(secret), public_key(public), payload))


def _pair() -> tuple[bytes, bytes, bytes]:
    """A random key pair's two secrets and their conversation key."""
    one, two = os.urandom(32), os.urandom(32)
    return one, two, oracle.conversation_key(one, public_key_of(two))


def test_vector_file_is_the_published_one() -> None:
    data = (VECTORS / "nostr" / "nip44.vectors.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256
    assert Path(VECTORS / "nostr" / "README.md").read_text().count(SHA256) == 1


@pytest.mark.parametrize("vector", VALID["get_conversation_key"], ids=lambda v: v["sec1"][:8])
def test_conversation_key(vector: dict[str, str]) -> None:
    sec1, pub2 = bytes.fromhex(vector["sec1"]), bytes.fromhex(vector["pub2"])
    expected = bytes.fromhex(vector["conversation_key"])
    assert oracle.conversation_key(sec1, pub2) == expected
    # nostr-sdk derives the same key: what it encrypts from sec1 to pub2, the vector's key opens.
    payload = _sdk_encrypt(sec1, pub2, "conversation key probe")
    assert oracle.decrypt(expected, payload) == b"conversation key probe"


@pytest.mark.parametrize("vector", VALID["get_message_keys"]["keys"], ids=lambda v: v["nonce"][:8])
def test_message_keys(vector: dict[str, str]) -> None:
    conv = bytes.fromhex(VALID["get_message_keys"]["conversation_key"])
    chacha_key, chacha_nonce, hmac_key = oracle.message_keys(conv, bytes.fromhex(vector["nonce"]))
    assert chacha_key.hex() == vector["chacha_key"]
    assert chacha_nonce.hex() == vector["chacha_nonce"]
    assert hmac_key.hex() == vector["hmac_key"]


@pytest.mark.parametrize(("length", "padded"), VALID["calc_padded_len"], ids=str)
def test_padded_length(length: int, padded: int) -> None:
    assert oracle.calc_padded_len(length) == padded
    if length > oracle.MAX_PLAINTEXT:
        return  # a padding-function answer only: no message is that long
    # nostr-sdk pads the same: its payload is version + nonce + (2 + padded) + mac.
    one, two, _ = _pair()
    data = base64.b64decode(_sdk_encrypt(one, public_key_of(two), "x" * length))
    assert len(data) == 1 + 32 + 2 + padded + 32


@pytest.mark.parametrize("vector", VALID["encrypt_decrypt"], ids=lambda v: v["nonce"][:8])
def test_encrypt_decrypt(vector: dict[str, str]) -> None:
    sec1, sec2 = bytes.fromhex(vector["sec1"]), bytes.fromhex(vector["sec2"])
    conv = bytes.fromhex(vector["conversation_key"])
    plaintext = vector["plaintext"]
    assert oracle.conversation_key(sec1, public_key_of(sec2)) == conv
    assert oracle.conversation_key(sec2, public_key_of(sec1)) == conv
    assert (
        oracle.encrypt(conv, bytes.fromhex(vector["nonce"]), plaintext.encode())
        == vector["payload"]
    )
    # nostr-sdk opens the known payload from either side, and what it seals the oracle opens.
    assert _sdk_decrypt(sec2, public_key_of(sec1), vector["payload"]) == plaintext
    assert _sdk_decrypt(sec1, public_key_of(sec2), vector["payload"]) == plaintext
    fresh = _sdk_encrypt(sec1, public_key_of(sec2), plaintext)
    assert fresh != vector["payload"]  # a fresh random nonce
    assert oracle.decrypt(conv, fresh) == plaintext.encode()


@pytest.mark.parametrize(
    "vector", VALID["encrypt_decrypt_long_msg"], ids=lambda v: str(v["repeat"])
)
def test_long_messages(vector: dict[str, Any]) -> None:
    conv, nonce = bytes.fromhex(vector["conversation_key"]), bytes.fromhex(vector["nonce"])
    plaintext = (vector["pattern"] * vector["repeat"]).encode()
    assert hashlib.sha256(plaintext).hexdigest() == vector["plaintext_sha256"]
    payload = oracle.encrypt(conv, nonce, plaintext)
    assert hashlib.sha256(payload.encode()).hexdigest() == vector["payload_sha256"]
    assert oracle.decrypt(conv, payload) == plaintext
    # nostr-sdk opens a message of the same length sealed under a real key pair.
    one, two, pair_conv = _pair()
    sealed = oracle.encrypt(pair_conv, nonce, plaintext)
    assert _sdk_decrypt(two, public_key_of(one), sealed).encode() == plaintext


@pytest.mark.parametrize("length", INVALID["encrypt_msg_lengths"], ids=str)
def test_message_length_refused(length: int) -> None:
    with pytest.raises(oracle.Nip44Refused):
        oracle.pad(b"x" * length)
    one, two, _ = _pair()
    with pytest.raises(nostr_sdk().NostrSdkError):
        _sdk_encrypt(one, public_key_of(two), "x" * length)


@pytest.mark.parametrize("vector", INVALID["get_conversation_key"], ids=lambda v: v["note"])
def test_invalid_keys_refused(vector: dict[str, str]) -> None:
    sec1, pub2 = bytes.fromhex(vector["sec1"]), bytes.fromhex(vector["pub2"])
    with pytest.raises(oracle.Nip44Refused):
        oracle.conversation_key(sec1, pub2)
    if vector["note"].startswith("sec1"):
        with pytest.raises(NostrKeyError):
            secret_key(sec1)
    else:
        secret_key(sec1)
        with pytest.raises(NostrKeyError):
            public_key(pub2)


@pytest.mark.parametrize("vector", INVALID["decrypt"], ids=lambda v: v["note"])
def test_invalid_payloads_refused(vector: dict[str, str]) -> None:
    conv = bytes.fromhex(vector["conversation_key"])
    reason = vector["note"].split(":")[0]
    with pytest.raises(oracle.Nip44Refused) as refused:
        oracle.decrypt(conv, vector["payload"])
    expected = {"invalid payload length": "invalid payload size"}.get(reason, reason)
    assert vector["note"].startswith(str(refused.value)) or str(refused.value) == expected
    # nostr-sdk refuses the payload itself (under any key: it is bad before the key or after).
    one, two, _ = _pair()
    with pytest.raises(nostr_sdk().NostrSdkError):
        _sdk_decrypt(two, public_key_of(one), vector["payload"])


def _padded(length_field: int, body: bytes, total: int) -> bytes:
    return length_field.to_bytes(2, "big") + body + b"\x00" * (total - 2 - len(body))


@pytest.mark.parametrize(
    "padded",
    [
        _padded(0, b"", 2 + 32),  # length zero
        _padded(40, b"x" * 10, 2 + 32),  # longer than the buffer
        _padded(10, b"x" * 10, 2 + 64),  # padded to the wrong length
        _padded(33, b"x" * 33, 2 + 33),  # unpadded (33 bytes belong in the 64-byte bucket)
    ],
    ids=["zero", "overlong", "wrong-bucket", "unpadded"],
)
def test_bad_padding_refused_by_sdk_under_a_real_pair(padded: bytes) -> None:
    one, two, conv = _pair()
    payload = oracle.encrypt_padded(conv, os.urandom(32), padded)
    with pytest.raises(oracle.Nip44Refused, match="padding"):
        oracle.decrypt(conv, payload)
    with pytest.raises(nostr_sdk().NostrSdkError):
        _sdk_decrypt(two, public_key_of(one), payload)


def test_bad_mac_refused_by_sdk_under_a_real_pair() -> None:
    one, two, conv = _pair()
    good = oracle.encrypt(conv, os.urandom(32), b"hello")
    assert _sdk_decrypt(two, public_key_of(one), good) == "hello"
    data = bytearray(base64.b64decode(good))
    data[-1] ^= 1
    with pytest.raises(nostr_sdk().NostrSdkError):
        _sdk_decrypt(two, public_key_of(one), base64.b64encode(bytes(data)).decode())


# -- transport/nip44.py (the shipped implementation) against the vectors and both oracles -----


@pytest.mark.parametrize("vector", VALID["get_conversation_key"], ids=lambda v: v["sec1"][:8])
def test_shipped_conversation_key(vector: dict[str, str]) -> None:
    sec1, pub2 = bytes.fromhex(vector["sec1"]), bytes.fromhex(vector["pub2"])
    assert nip44.conversation_key(sec1, pub2).hex() == vector["conversation_key"]


@pytest.mark.parametrize("vector", VALID["get_message_keys"]["keys"], ids=lambda v: v["nonce"][:8])
def test_shipped_message_keys(vector: dict[str, str]) -> None:
    conv = bytes.fromhex(VALID["get_message_keys"]["conversation_key"])
    keys = nip44._message_keys(conv, bytes.fromhex(vector["nonce"]))
    assert [k.hex() for k in keys] == [
        vector["chacha_key"],
        vector["chacha_nonce"],
        vector["hmac_key"],
    ]


@pytest.mark.parametrize(("length", "padded"), VALID["calc_padded_len"], ids=str)
def test_shipped_padded_length(length: int, padded: int) -> None:
    assert nip44.padded_length(length) == padded


@pytest.mark.parametrize("vector", VALID["encrypt_decrypt"], ids=lambda v: v["nonce"][:8])
def test_shipped_encrypt_decrypt(vector: dict[str, str]) -> None:
    sec1, sec2 = bytes.fromhex(vector["sec1"]), bytes.fromhex(vector["sec2"])
    conv = bytes.fromhex(vector["conversation_key"])
    plaintext = vector["plaintext"].encode()
    assert nip44.conversation_key(sec2, public_key_of(sec1)) == conv
    nonce = bytes.fromhex(vector["nonce"])
    assert nip44.encrypt(conv, plaintext, nonce=nonce) == vector["payload"]
    assert nip44.decrypt(conv, vector["payload"]) == plaintext
    # a fresh nonce: nostr-sdk and the oracle open what we seal, we open what nostr-sdk seals
    ours = nip44.encrypt(conv, plaintext)
    assert ours != vector["payload"]
    assert oracle.decrypt(conv, ours) == plaintext
    assert _sdk_decrypt(sec2, public_key_of(sec1), ours) == vector["plaintext"]
    theirs = _sdk_encrypt(sec1, public_key_of(sec2), vector["plaintext"])
    assert nip44.decrypt(conv, theirs) == plaintext


@pytest.mark.parametrize(
    "vector", VALID["encrypt_decrypt_long_msg"], ids=lambda v: str(v["repeat"])
)
def test_shipped_long_messages(vector: dict[str, Any]) -> None:
    conv, nonce = bytes.fromhex(vector["conversation_key"]), bytes.fromhex(vector["nonce"])
    plaintext = (vector["pattern"] * vector["repeat"]).encode()
    payload = nip44.encrypt(conv, plaintext, nonce=nonce)
    assert hashlib.sha256(payload.encode()).hexdigest() == vector["payload_sha256"]
    assert nip44.decrypt(conv, payload) == plaintext


@pytest.mark.parametrize("length", INVALID["encrypt_msg_lengths"], ids=str)
def test_shipped_message_length_refused(length: int) -> None:
    with pytest.raises(ValueError, match="plaintext"):
        nip44.encrypt(os.urandom(32), b"x" * length)


@pytest.mark.parametrize("vector", INVALID["get_conversation_key"], ids=lambda v: v["note"])
def test_shipped_invalid_keys_refused(vector: dict[str, str]) -> None:
    with pytest.raises(NostrKeyError):
        nip44.conversation_key(bytes.fromhex(vector["sec1"]), bytes.fromhex(vector["pub2"]))


@pytest.mark.parametrize("vector", INVALID["decrypt"], ids=lambda v: v["note"])
def test_shipped_invalid_payloads_refused(vector: dict[str, str]) -> None:
    with pytest.raises(nip44.Nip44Error):
        nip44.decrypt(bytes.fromhex(vector["conversation_key"]), vector["payload"])


@pytest.mark.parametrize(
    "padded",
    [
        _padded(0, b"", 2 + 32),
        _padded(40, b"x" * 10, 2 + 32),
        _padded(10, b"x" * 10, 2 + 64),
        _padded(33, b"x" * 33, 2 + 33),
    ],
    ids=["zero", "overlong", "wrong-bucket", "unpadded"],
)
def test_shipped_bad_padding_refused(padded: bytes) -> None:
    conv = os.urandom(32)
    with pytest.raises(nip44.Nip44Error, match="padding"):
        nip44.decrypt(conv, oracle.encrypt_padded(conv, os.urandom(32), padded))


def test_shipped_refuses_any_changed_byte() -> None:
    conv = os.urandom(32)
    data = base64.b64decode(nip44.encrypt(conv, b"hello"))
    for position in range(len(data)):
        changed = bytearray(data)
        changed[position] ^= 0x01
        with pytest.raises(nip44.Nip44Error):
            nip44.decrypt(conv, base64.b64encode(bytes(changed)).decode())
    with pytest.raises(nip44.Nip44Error):
        nip44.decrypt(os.urandom(32), base64.b64encode(data).decode())  # another key
