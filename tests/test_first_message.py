"""The one-way first message to a contact known from a card (messaging/first_message.py,
specs/first-message.md): round trip into a working channel, and every way it must fail."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from noise.connection import Keypair, NoiseConnection  # type: ignore[import-untyped]

from identity import canonical
from identity.keys import IdentityKey
from messaging import frames
from messaging.channel import MessageReceived, SecureChannel
from messaging.errors import CryptoFailure, LocalProtocolError, MessagingError, RemoteProtocolError
from messaging.first_message import (
    MAX_FIRST_MESSAGE,
    PROTOCOL,
    VERSION,
    _prologue,
    read_first_message,
    write_first_message,
)
from messaging.handshake import Role
from messaging.noise.handshake_state import HandshakeState

ALICE = IdentityKey.generate()
BOB = IdentityKey.generate()
MALLORY = IdentityKey.generate()


def _texts(channel: SecureChannel, data: list[bytes]) -> list[str]:
    out: list[str] = []
    for frame in data:
        for event in channel.receive(frame):
            if isinstance(event, MessageReceived) and isinstance(event.message, frames.Text):
                out.append(event.message.text)
    return out


def test_both_ends_agree_and_the_sender_is_authenticated() -> None:
    message, mine = write_first_message(ALICE, BOB.did)
    theirs = read_first_message(BOB, message)
    assert mine.role is Role.INITIATOR and theirs.role is Role.RESPONDER
    assert theirs.peer_did == ALICE.did and mine.peer_did == BOB.did
    assert mine.handshake_hash == theirs.handshake_hash
    assert mine.ratchet_seed == theirs.ratchet_seed
    assert ALICE.did.encode() not in message  # the sender's DID travels encrypted
    assert len(message) <= MAX_FIRST_MESSAGE


def test_every_first_message_is_fresh() -> None:
    one, first = write_first_message(ALICE, BOB.did)
    two, second = write_first_message(ALICE, BOB.did)
    assert one != two and first.handshake_hash != second.handshake_hash
    assert first.ratchet_seed != second.ratchet_seed


def test_the_result_seeds_a_channel_that_works_both_ways() -> None:
    message, mine = write_first_message(ALICE, BOB.did)
    alice = SecureChannel.from_handshake(mine)
    alice.send_text("hello Bob", mid=bytes(16))
    outgoing = alice.data_to_send()
    bob = SecureChannel.from_handshake(read_first_message(BOB, message))
    assert _texts(bob, outgoing) == ["hello Bob"]
    # Bob's first decryption moved his ratchet off his identity key.
    assert bob.session.to_state().dhs_private != BOB.x25519_private
    bob.send_text("hello Alice", mid=bytes(range(16)))
    assert _texts(alice, bob.data_to_send()) == ["hello Alice"]


def test_a_message_for_someone_else_does_not_open() -> None:
    message, _ = write_first_message(ALICE, BOB.did)
    with pytest.raises(CryptoFailure):
        read_first_message(MALLORY, message)


@pytest.mark.parametrize("index", [0, 1, 20, 33, 60, 81, 100, -1])
def test_any_changed_byte_is_refused(index: int) -> None:
    message, _ = write_first_message(ALICE, BOB.did)
    changed = bytearray(message)
    changed[index] ^= 0x01
    with pytest.raises(RemoteProtocolError):  # CryptoFailure is one
        read_first_message(BOB, bytes(changed))


@pytest.mark.parametrize("size", [0, 1, 97, MAX_FIRST_MESSAGE + 1, 1 << 20])
def test_sizes_out_of_bounds_are_refused_before_any_work(size: int) -> None:
    with pytest.raises(RemoteProtocolError, match="bytes"):
        read_first_message(BOB, bytes(size))


def test_truncated_messages_are_refused() -> None:
    message, _ = write_first_message(ALICE, BOB.did)
    for end in range(len(message) - 1, 90, -7):
        with pytest.raises(RemoteProtocolError):
            read_first_message(BOB, message[:end])


def test_an_unknown_version_is_refused() -> None:
    message, _ = write_first_message(ALICE, BOB.did)
    with pytest.raises(RemoteProtocolError, match="version"):
        read_first_message(BOB, bytes([VERSION + 1]) + message[1:])


def _forged(signer: IdentityKey, named: object) -> bytes:
    """A Noise_X message to Bob by `signer` whose payload names `named`."""
    noise = HandshakeState(
        PROTOCOL,
        initiator=True,
        prologue=_prologue(BOB.did),
        s=signer.x25519_private,
        rs=BOB.x25519_public,
    )
    payload = named if isinstance(named, bytes) else canonical.encode(named)
    return bytes([VERSION]) + noise.write_message(payload)


def test_a_sender_naming_another_did_is_refused() -> None:
    with pytest.raises(CryptoFailure):
        read_first_message(BOB, _forged(MALLORY, ALICE.did))


def test_a_sender_naming_the_recipient_is_refused() -> None:
    with pytest.raises(CryptoFailure):
        read_first_message(BOB, _forged(BOB, BOB.did))


@pytest.mark.parametrize(
    "named", [b"\xff\x00", 42, ["did:key:z6Mk"], "did:key:zNotAKey", "x" * 100]
)
def test_payloads_that_name_no_did_are_refused(named: object) -> None:
    with pytest.raises(RemoteProtocolError):
        read_first_message(BOB, _forged(MALLORY, named))


def test_a_message_for_another_recipient_prologue_is_refused() -> None:
    noise = HandshakeState(
        PROTOCOL,
        initiator=True,
        prologue=_prologue(MALLORY.did),  # bound to another recipient, sent to Bob's key
        s=ALICE.x25519_private,
        rs=BOB.x25519_public,
    )
    message = bytes([VERSION]) + noise.write_message(canonical.encode(ALICE.did))
    with pytest.raises(CryptoFailure):
        read_first_message(BOB, message)


def test_wrong_calls_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        write_first_message(ALICE, ALICE.did)
    with pytest.raises(LocalProtocolError):
        write_first_message(ALICE, "did:key:nonsense")
    with pytest.raises(LocalProtocolError):
        read_first_message(BOB, "text")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=MAX_FIRST_MESSAGE + 8))
def test_arbitrary_bytes_raise_only_messaging_errors(data: bytes) -> None:
    with pytest.raises(MessagingError):
        read_first_message(BOB, data)


# --- an independent Noise implementation as the oracle (the `noiseprotocol` package) ---------


def _oracle(*, initiator: bool, me: IdentityKey, peer_public: bytes | None, prologue: bytes) -> Any:
    connection = NoiseConnection.from_name(PROTOCOL.encode())
    if initiator:
        connection.set_as_initiator()
        connection.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, peer_public)
    else:
        connection.set_as_responder()
    connection.set_keypair_from_private_bytes(Keypair.STATIC, me.x25519_private)
    connection.set_prologue(prologue)
    connection.start_handshake()
    return connection


def test_a_first_message_written_by_another_noise_implementation_opens() -> None:
    oracle = _oracle(
        initiator=True, me=ALICE, peer_public=BOB.x25519_public, prologue=_prologue(BOB.did)
    )
    message = bytes([VERSION]) + oracle.write_message(canonical.encode(ALICE.did))
    result = read_first_message(BOB, message)
    assert result.peer_did == ALICE.did
    assert result.handshake_hash == oracle.get_handshake_hash()


def test_another_noise_implementation_opens_our_first_message() -> None:
    message, mine = write_first_message(ALICE, BOB.did)
    oracle = _oracle(initiator=False, me=BOB, peer_public=None, prologue=_prologue(BOB.did))
    assert canonical.decode(bytes(oracle.read_message(message[1:]))) == ALICE.did
    assert oracle.get_handshake_hash() == mine.handshake_hash
