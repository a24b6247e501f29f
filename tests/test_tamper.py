"""Tampering and replay (issue 7 §1 "Tampering", §2 "Attacks" that need no network).

Every single-bit flip - exhaustively, over every bit - of a signed invitation, a signed
response, each of the three handshake messages, ratchet frames (first message, after several
DH ratchet steps, out of order), a channel frame and a keystore file is refused with the
package's typed error, and a refused frame leaves the receiving session exactly as it was.

Replays: a recorded frame (inside and beyond the channel's duplicate window), a recorded
handshake message fed to a fresh responder or initiator. The other section 2 attacks are
covered elsewhere (specs/threat-model.md lists where).
"""

from __future__ import annotations

import base58
import pytest

from identity.errors import InvitationError, KeystoreError
from identity.invitation import Invitation, InvitationKind, Response
from identity.keystore import open_keystore, parse_keystore
from identity.token import decode_token, encode_token
from messaging.channel import ChannelState, HelloReceived, MessageReceived, SecureChannel
from messaging.errors import CryptoFailure, MessagingError, RemoteProtocolError
from messaging.frames import Text
from messaging.handshake import Handshake, Role, State
from messaging.padding import pad
from messaging.ratchet import RatchetSession
from tests.support import hostile
from transport.compact_offer import CompactOffer
from transport.errors import CompactOfferError

T0 = 1_700_000_000


def flips(data: bytes) -> list[tuple[int, bytes]]:
    """(bit index, data with that one bit flipped) for every bit of `data`."""
    out = []
    for index in range(len(data) * 8):
        changed = bytearray(data)
        changed[index // 8] ^= 1 << (index % 8)
        out.append((index, bytes(changed)))
    return out


def sample_invitation() -> Invitation:
    """A live invitation using every field: label, connect (an offer), commitment."""
    return Invitation.create(
        hostile.ALICE,
        now=T0,
        lifetime=3600,
        label="Alice's laptop",
        kind=InvitationKind.INVITE,
        connect=hostile.sample_offer(),
        commitment=bytes(range(32)),
        id=hostile.INVITATION_ID,
    )


# --- tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["invitation", "response"])
def test_every_bit_flip_of_a_signed_token_is_rejected(kind: str) -> None:
    invitation = sample_invitation()
    token: Invitation | Response = invitation
    if kind == "response":
        token = Response.create(
            hostile.BOB, invitation=invitation, now=T0 + 5, connect=b"\x01" * 90
        )
    text = encode_token(token)
    assert decode_token(text) == token
    payload = base58.b58decode(text[len("didlink:") :])
    accepted = []
    for index, changed in flips(payload):
        try:
            decode_token("didlink:" + base58.b58encode(changed).decode("ascii"))
        except InvitationError:
            continue
        accepted.append(index)
    assert accepted == [], f"{len(payload) * 8} flips, accepted: {accepted}"


def test_compact_offer_bit_flips_are_refused_or_change_the_offer() -> None:
    """Unsigned on its own: a flip may give another valid offer; the invitation signs it."""
    original = hostile.sample_offer()
    decoded = CompactOffer.from_cbor(original)
    for _index, changed in flips(original):
        try:
            other = CompactOffer.from_cbor(changed)
        except CompactOfferError:
            continue
        assert other != decoded


# --- handshake ---------------------------------------------------------------------------------


def _handshake_with_flip(message_index: int, changed: bytes) -> tuple[Handshake, Handshake]:
    initiator = hostile.new_handshake(Role.INITIATOR)
    responder = hostile.new_handshake(Role.RESPONDER)
    initiator.start()
    message = responder.start()
    for number, receiver in enumerate((initiator, responder, initiator)):
        assert message is not None
        if number == message_index:
            assert len(changed) == len(message)
            message = changed
        message = receiver.receive(message)
    return initiator, responder


@pytest.mark.parametrize("message_index", [0, 1, 2], ids=["commitment", "initiation", "response"])
def test_every_bit_flip_of_a_handshake_message_fails_the_handshake(message_index: int) -> None:
    original = hostile.handshake_messages()[message_index]
    for index, changed in flips(original):
        with pytest.raises(RemoteProtocolError) as caught:
            _handshake_with_flip(message_index, changed)
        if index >= 16:  # past the type and version bytes: a cryptographic failure, opaque
            assert isinstance(caught.value, CryptoFailure), index


def test_a_flipped_commitment_is_caught_when_the_ephemeral_is_revealed() -> None:
    commitment = hostile.handshake_messages()[0]
    initiator = hostile.new_handshake(Role.INITIATOR)
    responder = hostile.new_handshake(Role.RESPONDER)
    initiator.start()
    assert responder.start() == commitment
    changed = commitment[:-1] + bytes([commitment[-1] ^ 1])
    initiation = initiator.receive(changed)  # a commitment is opaque: accepted for now
    assert initiation is not None
    response = responder.receive(initiation)
    assert response is not None and responder.state is State.DONE
    with pytest.raises(CryptoFailure):
        initiator.receive(response)
    assert initiator.state is State.FAILED


# --- ratchet and channel ------------------------------------------------------------------------


def _assert_every_flip_refused(receiver: RatchetSession, frame: bytes) -> None:
    before = receiver.to_state()
    for index, changed in flips(frame):
        with pytest.raises(CryptoFailure):
            receiver.decrypt(changed)
        assert receiver.to_state() == before, index


def test_every_bit_flip_of_ratchet_frames_is_refused_and_changes_nothing() -> None:
    alice, bob = hostile.ratchet_pair()
    first = alice.encrypt(pad(b"first"))
    _assert_every_flip_refused(bob, first)
    assert bob.decrypt(first) == pad(b"first")
    # a few DH ratchet steps, then one frame in order and one out of order
    for turn in range(3):
        assert alice.decrypt(bob.encrypt(b"b%d" % turn)) == b"b%d" % turn
        assert bob.decrypt(alice.encrypt(b"a%d" % turn)) == b"a%d" % turn
    late = alice.encrypt(b"late")
    current = alice.encrypt(b"current")
    _assert_every_flip_refused(bob, current)
    assert bob.decrypt(current) == b"current"
    assert bob.skipped_key_count == 1
    _assert_every_flip_refused(bob, late)  # its key is a stored skipped key
    assert bob.decrypt(late) == b"late"


def test_every_bit_flip_of_a_channel_frame_is_refused_and_the_channel_stays_open() -> None:
    alice, bob = hostile.channel_pair()
    alice.send(Text(text="hello"))
    [frame] = alice.data_to_send()
    for index, changed in flips(frame):
        with pytest.raises(CryptoFailure):
            bob.receive(changed)
        assert bob.state is ChannelState.OPEN, index
    events = bob.receive(frame)
    assert events == [HelloReceived(0), MessageReceived(1, Text(text="hello"))]


# --- keystore ----------------------------------------------------------------------------------


def test_every_bit_flip_of_a_keystore_file_is_refused() -> None:
    original = hostile.sealed_keystore()
    assert open_keystore(parse_keystore(original), hostile.PASSPHRASE) == hostile.BOB
    opened = []
    for index, changed in flips(original):
        try:
            open_keystore(parse_keystore(changed), hostile.PASSPHRASE)
        except KeystoreError:
            continue
        opened.append(index)
    assert opened == []


# --- replays (issue 7 §2) ----------------------------------------------------------------------


def test_a_replayed_frame_is_never_delivered_twice() -> None:
    alice, bob = hostile.channel_pair()
    alice.send(Text(text="pay Mallory 10"))
    [recorded] = alice.data_to_send()
    assert len(bob.receive(recorded)) == 2
    assert bob.receive(recorded) == []  # inside the duplicate window: dropped silently
    for number in range(300):  # push the recorded frame out of the window (256 frames)
        alice.send(Text(text=f"m{number}"))
        [frame] = alice.data_to_send()
        bob.receive(frame)
    with pytest.raises(CryptoFailure):  # beyond it: its message key is gone
        bob.receive(recorded)
    assert bob.state is ChannelState.OPEN


def _recorded_session() -> tuple[bytes, bytes, bytes, bytes]:
    """A full handshake and the initiator's first channel frame (Hello), as an eavesdropper
    records them: (commitment, initiation, response, hello frame)."""
    initiator = hostile.new_handshake(Role.INITIATOR)
    responder = hostile.new_handshake(Role.RESPONDER)
    initiator.start()
    commitment = responder.start()
    assert commitment is not None
    initiation = initiator.receive(commitment)
    assert initiation is not None
    response = responder.receive(initiation)
    assert response is not None
    initiator.receive(response)
    [hello] = SecureChannel.from_handshake(initiator.result).data_to_send()
    return commitment, initiation, response, hello


def test_replayed_initiation_over_a_new_dtls_connection_fails_at_once() -> None:
    _, initiation, _, _ = _recorded_session()
    responder = Handshake(
        role=Role.RESPONDER,
        local_key=hostile.BOB,
        peer_did=hostile.ALICE.did,
        invitation_id=hostile.INVITATION_ID,
        local_fingerprint="sha-256 " + ":".join(["CC"] * 32),  # a new certificate
        peer_fingerprint=hostile.FP_ALICE,
    )
    responder.start()
    with pytest.raises(CryptoFailure):
        responder.receive(initiation)
    assert responder.state is State.FAILED


def test_replayed_initiation_in_the_same_context_yields_nothing_usable() -> None:
    """Noise KK's first message can be replayed (no liveness until the initiator speaks), but
    the responder answers with a fresh ephemeral: the replayer cannot compute the session keys,
    so the recorded Hello (and anything else it has) fails authentication."""
    _, initiation, _, hello = _recorded_session()
    responder = hostile.new_handshake(Role.RESPONDER, label=b" fresh run")
    responder.start()
    assert responder.receive(initiation) is not None
    channel = SecureChannel.from_handshake(responder.result)
    with pytest.raises(CryptoFailure):
        channel.receive(hello)
    assert channel.data_to_send() == []  # the responder never sends before a real Hello


def test_replayed_commitment_and_response_to_a_fresh_initiator_fail() -> None:
    commitment, _, response, _ = _recorded_session()
    initiator = hostile.new_handshake(Role.INITIATOR, label=b" fresh run")
    initiator.start()
    assert initiator.receive(commitment) is not None  # its new ephemeral is not the old one
    with pytest.raises(MessagingError):
        initiator.receive(response)
    assert initiator.state is State.FAILED
