"""The persistent session and alias keys (messaging/mailbox.py, messaging/alias.py;
specs/mailbox.md §7-§9): sans-IO, in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import struct

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.alias import (
    EPOCH_SECONDS,
    SECP256K1_ORDER,
    alias_pair,
    alias_public,
    alias_secret,
    epoch_at,
    listening_epochs,
)
from messaging.channel import SecureChannel
from messaging.errors import CryptoFailure, LocalProtocolError
from messaging.mailbox import (
    MAX_MAILBOX_TEXT_BYTES,
    MailboxFrameError,
    MailboxReceipt,
    MailboxRendezvous,
    MailboxSession,
    MailboxText,
    decode_item,
    encode_item,
    new_session_state,
)
from messaging.ratchet import HEADER_LEN
from tests.support.mailbox_pair import handshake_pair, session_pair
from transport.nostr_event import public_key_of

MID = bytes(range(16))


def _text(n: int, text: str = "hello") -> MailboxText:
    return MailboxText(mid=n.to_bytes(16, "big"), at=1_800_000_000 + n, text=f"{text} {n}")


# --- the session ---------------------------------------------------------------------------


def test_either_side_may_write_first_and_both_directions_work() -> None:
    for first in ("initiator", "responder"):
        alice, bob = session_pair(first.encode())
        writer, reader = (alice, bob) if first == "initiator" else (bob, alice)
        assert reader.open(writer.seal(_text(1))) == _text(1)
        assert writer.open(reader.seal(_text(2))) == _text(2)
        assert reader.open(writer.seal(_text(3))) == _text(3)


def test_out_of_order_replay_and_forgery() -> None:
    alice, bob = session_pair()
    frames = [bob.seal(_text(n)) for n in range(5)]  # the responder's first chain
    for n in (4, 0, 3, 1, 2):  # relays hand them over in any order
        assert alice.open(frames[n]) == _text(n)
    before = alice.to_state()
    with pytest.raises(CryptoFailure):  # a replay: the message key is spent
        alice.open(frames[2])
    forged = bytearray(frames[1])
    forged[-1] ^= 1
    with pytest.raises(CryptoFailure):
        alice.open(bytes(forged))
    assert alice.to_state() == before  # nothing changed
    # and after DH ratchet steps both ways
    replies = [alice.seal(_text(10 + n)) for n in range(3)]
    for n in (2, 0, 1):
        assert bob.open(replies[n]) == _text(10 + n)
    assert alice.open(bob.seal(_text(20))) == _text(20)


def test_state_survives_a_restart_mid_conversation() -> None:
    alice, bob = session_pair()
    assert bob.open(alice.seal(_text(1))) == _text(1)
    pending = bob.seal(_text(2))
    alice = MailboxSession(alice.to_state())
    bob = MailboxSession(bob.to_state())
    assert alice.open(pending) == _text(2)
    assert bob.open(alice.seal(_text(3))) == _text(3)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=30))
def test_any_interleaving_with_restarts_delivers_everything(
    steps: list[tuple[bool, bool]],
) -> None:
    """Random writers, random restarts from the saved state, frames delivered late and
    shuffled: every frame opens once, and no two frames share a message key (header)."""
    alice, bob = session_pair(b"prop")
    in_flight: list[tuple[bool, bytes, MailboxText]] = []
    headers: set[bytes] = set()
    rng = random.Random(len(steps))
    for n, (alice_writes, restart) in enumerate(steps):
        writer = alice if alice_writes else bob
        item = _text(n)
        frame = writer.seal(item)
        assert frame[:HEADER_LEN] not in headers
        headers.add(frame[:HEADER_LEN])
        in_flight.append((alice_writes, frame, item))
        if restart:
            alice, bob = MailboxSession(alice.to_state()), MailboxSession(bob.to_state())
        if rng.random() < 0.5:
            rng.shuffle(in_flight)
            from_alice, frame, item = in_flight.pop()
            assert (bob if from_alice else alice).open(frame) == item
    for from_alice, frame, item in in_flight:
        assert (bob if from_alice else alice).open(frame) == item


def test_independent_of_the_live_channel() -> None:
    initiator, responder = handshake_pair()
    live = SecureChannel.from_handshake(initiator).session.to_state()
    state = new_session_state(initiator)
    assert state.ratchet.rk != live.rk and state.ratchet.rk != initiator.ratchet_seed
    assert state.ratchet.associated_data != live.associated_data
    assert state.ratchet.cks != live.cks
    assert new_session_state(responder).ratchet.cks == state.ratchet.ckr  # its first chain


def test_handshake_result_without_ratchet_key_is_refused() -> None:
    initiator, _ = handshake_pair()
    broken = type(initiator)(initiator.handshake_hash, initiator.ratchet_seed, None, None)
    with pytest.raises(LocalProtocolError):
        new_session_state(broken)


# --- alias keys ----------------------------------------------------------------------------

# Known answers for alias_root = 00 01 .. 1f, epoch 2900 (computed once; cross-checked below
# against an independent HKDF on the stdlib and nostr-sdk's public keys).
KAT = {
    "i2r": (
        "668798b368163428536a3868340c2fc8096a8f32b5a5ca967c3811679569ef9e",
        "b26cd65ee92a8d8f8a57de8d5a5df54133b71ce4b6ffa11040ed53df92b38910",
        "131f0f5e1749648f2f0bea856f1a231c6ff86d6c880b82832fdbcedabac4848d",
        "0f3e448fc9f0603d3cccf7da8c3e9aed4f9ad64e6b89fe6d9a163b9e69c94fc3",
    ),
    "r2i": (
        "17528611d6d1a19d067dd20d9f0dddbbf04862d661201c2398c76ae9cd60f603",
        "03ce677676cfac2c42a2c58bfefa1f08f47d532dc5272f3e7b74931c0b56976d",
        "7cd9f3ca6848c22f737673bb96571e7de4e4340b2e26ef3b4529a0f7e556b105",
        "bfe0dfed42faff97268f1df8ad6bb70c55d67565ffc56cde0c1f56e06330d419",
    ),
}


def _independent_secret(root: bytes, purpose: bytes, direction: bytes, epoch: int) -> bytes:
    """specs/mailbox.md §8 on the stdlib's hmac (RFC 5869, one block, salt = 32 zero bytes)."""
    info = b"didlink/v1 alias\x00" + purpose + b"\x00" + direction + struct.pack(">I", epoch)
    prk = hmac.digest(bytes(32), root, hashlib.sha256)
    for counter in range(256):
        okm = hmac.digest(prk, info + bytes([counter]) + b"\x01", hashlib.sha256)
        if 0 < int.from_bytes(okm, "big") < SECP256K1_ORDER:
            return okm
    raise AssertionError


@pytest.mark.parametrize("direction", ["i2r", "r2i"])
def test_alias_known_answers(direction: str) -> None:
    root = bytes(range(32))
    pair = alias_pair(root, direction=direction, epoch=2900)  # type: ignore[arg-type]
    got = (pair.from_secret, pair.from_public, pair.to_secret, pair.to_public)
    assert tuple(value.hex() for value in got) == KAT[direction]
    for purpose, secret, public in (
        (b"from", pair.from_secret, pair.from_public),
        (b"to", pair.to_secret, pair.to_public),
    ):
        assert secret == _independent_secret(root, purpose, direction.encode(), 2900)
        assert public == public_key_of(secret)
        assert public == _oracle_public(secret)  # nostr-sdk and pyca agree on the x-only key


def _oracle_public(secret: bytes) -> bytes:
    """The x-only key by nostr-sdk, checked against pyca/cryptography's point."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from transport.nostr_event import nostr_sdk, secret_key

    by_sdk = bytes.fromhex(nostr_sdk().Keys(secret_key(secret)).public_key().to_hex())
    point = ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256K1()).public_key()
    assert point.public_numbers().x.to_bytes(32, "big") == by_sdk
    return by_sdk


@pytest.mark.parametrize("seed", range(16))
def test_alias_public_keys_against_two_oracles(seed: int) -> None:
    secret = hashlib.sha256(b"alias %d" % seed).digest()
    assert alias_public(secret) == _oracle_public(secret)


def test_sending_and_receiving_keys_pair_up_and_differ() -> None:
    alice, bob = session_pair()
    epoch = epoch_at(1_800_000_000)
    assert alice.sending_aliases(epoch) == bob.receiving_aliases(epoch)
    assert bob.sending_aliases(epoch) == alice.receiving_aliases(epoch)
    mine = alice.sending_aliases(epoch)
    theirs = alice.receiving_aliases(epoch)
    keys = {mine.from_public, mine.to_public, theirs.from_public, theirs.to_public}
    assert len(keys) == 4
    assert alice.sending_aliases(epoch + 1).to_public != mine.to_public  # rotation


def test_no_key_is_shared_between_two_contacts() -> None:
    """Alice's sessions with Bob and with Carol (two handshakes) share no alias key, over
    every direction and a range of epochs."""
    with_bob, _ = session_pair(b"alice-bob")
    with_carol, _ = session_pair(b"alice-carol")
    keys: list[bytes] = []
    for session in (with_bob, with_carol):
        for epoch in range(2890, 2910):
            for pair in (session.sending_aliases(epoch), session.receiving_aliases(epoch)):
                keys += [pair.from_public, pair.to_public]
    assert len(keys) == len(set(keys))


def test_alias_input_checks() -> None:
    with pytest.raises(LocalProtocolError):
        alias_secret(b"short", purpose="to", direction="i2r", epoch=0)
    with pytest.raises(LocalProtocolError):
        alias_secret(bytes(32), purpose="to", direction="x2y", epoch=0)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        alias_secret(bytes(32), purpose="to", direction="i2r", epoch=2**32)
    with pytest.raises(LocalProtocolError):
        alias_public(bytes(32))
    with pytest.raises(LocalProtocolError):
        alias_public(SECP256K1_ORDER.to_bytes(32, "big"))


def test_listening_epochs() -> None:
    now = 2900 * EPOCH_SECONDS + 10
    assert list(listening_epochs(now, since=now, max_age=31 * 86400)) == [2899, 2900, 2901]
    back = listening_epochs(now, since=now - 20 * 86400, max_age=31 * 86400)
    assert list(back) == [2897, 2898, 2899, 2900, 2901]
    bounded = listening_epochs(now, since=0, max_age=31 * 86400)  # never further than max_age
    assert list(bounded) == list(range(epoch_at(now - 31 * 86400), 2902))


# --- frames --------------------------------------------------------------------------------


def test_frames_round_trip() -> None:
    rendezvous = MailboxRendezvous(token="didlink:" + "a" * 4000)
    for item in (_text(1), MailboxReceipt(mids=[MID, bytes(16)]), rendezvous):
        assert decode_item(encode_item(item)) == item


@pytest.mark.parametrize(
    "value",
    [
        [],
        "text",
        {"t": "text", "mid": MID, "at": 1},
        {"t": "text", "mid": MID, "at": 1, "text": "x", "extra": 1},
        {"t": "text", "mid": MID[:15], "at": 1, "text": "x"},
        {"t": "text", "mid": MID, "at": -1, "text": "x"},
        {"t": "text", "mid": MID, "at": 1.5, "text": "x"},
        {"t": "text", "mid": MID, "at": 1, "text": "x" * (MAX_MAILBOX_TEXT_BYTES + 1)},
        {"t": "text", "mid": MID, "at": True, "text": "x"},
        {"t": "receipt", "mids": []},
        {"t": "receipt", "mids": [MID] * 257},
        {"t": "receipt", "mids": [b"short"]},
        {"t": "hello"},
        {"mid": MID},
        {"t": "rendezvous"},
        {"t": "rendezvous", "token": ""},
        {"t": "rendezvous", "token": "x" * 4097},
        {"t": "rendezvous", "token": b"didlink:"},
        {"t": "rendezvous", "token": "didlink:x", "extra": 1},
    ],
)
def test_bad_frames_are_refused(value: object) -> None:
    with pytest.raises(MailboxFrameError):
        decode_item(cbor2.dumps(value, canonical=True))


def test_non_canonical_and_garbage_frames_are_refused() -> None:
    encoded = encode_item(_text(1))
    with pytest.raises(MailboxFrameError):
        decode_item(b"\xff\x00garbage")
    with pytest.raises(MailboxFrameError):
        decode_item(encoded + b"\x00")
    item = {"text": "x", "t": "text", "at": 1, "mid": MID}  # keys not in canonical order
    with pytest.raises(MailboxFrameError):
        decode_item(cbor2.dumps(item))


def test_an_authenticated_frame_with_bad_padding_or_content() -> None:
    alice, bob = session_pair()
    with pytest.raises(MailboxFrameError):
        bob.open(alice._ratchet.encrypt(b"no padding marker"))
    with pytest.raises(MailboxFrameError):
        bob.open(alice._ratchet.encrypt(b"\xa0\x80"))  # an empty map, padded
    assert bob.open(alice.seal(_text(5))) == _text(5)  # the session goes on
