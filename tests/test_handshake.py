"""The didlink handshake (commit + Noise KK): loopback pairs, binding, commitment, tampering.

The Noise layer itself is checked against published vectors in test_noise_vectors.py; here
the prologue, commitment and ratchet seed are recomputed independently (hashlib, hmac, a
hand-written CBOR encoding) so a change in their bytes fails a test.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest

from identity.keys import IdentityKey
from messaging.errors import CryptoFailure, LocalProtocolError, RemoteProtocolError
from messaging.handshake import Handshake, HandshakeResult, Role, State
from messaging.noise import HandshakeState, x25519_public
from messaging.prologue import NOISE_PROTOCOL, ephemeral_commitment, handshake_prologue

ALICE = IdentityKey(bytes.fromhex("11" * 32))
BOB = IdentityKey(bytes.fromhex("22" * 32))
MALLORY = IdentityKey(bytes.fromhex("33" * 32))
INVITATION = bytes.fromhex("00112233445566778899aabbccddeeff")
FP_A = "sha-256 AA:01"
FP_B = "sha-256 BB:02"


def counter_rng(label: bytes) -> Callable[[int], bytes]:
    """A deterministic rng: SHA-256(label || counter), truncated."""
    counter = 0

    def rng(size: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.sha256(label + counter.to_bytes(4, "big")).digest()[:size]

    return rng


def make(
    role: Role,
    local: IdentityKey,
    peer: IdentityKey,
    /,
    *,
    rng_label: bytes | None = None,
    **overrides: Any,
) -> Handshake:
    local_fp, peer_fp = (FP_A, FP_B) if local is ALICE else (FP_B, FP_A)
    options: dict[str, Any] = {
        "role": role,
        "local_key": local,
        "peer_did": peer.did,
        "invitation_id": INVITATION,
        "local_fingerprint": local_fp,
        "peer_fingerprint": peer_fp,
        "rng": counter_rng(rng_label or (local.did + role.value).encode()),
    }
    options.update(overrides)
    return Handshake(**options)


def pair(
    initiator: IdentityKey = ALICE, responder: IdentityKey = BOB
) -> tuple[Handshake, Handshake]:
    return make(Role.INITIATOR, initiator, responder), make(Role.RESPONDER, responder, initiator)


def run(initiator: Handshake, responder: Handshake) -> list[bytes]:
    """Drive a full handshake in memory; return the three messages."""
    assert initiator.start() is None
    commitment = responder.start()
    assert commitment is not None
    initiation = initiator.receive(commitment)
    assert initiation is not None
    response = responder.receive(initiation)
    assert response is not None
    assert initiator.receive(response) is None
    return [commitment, initiation, response]


def hkdf_sha256(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869, written out with hmac so it does not share code with the module under test."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


# --- the happy path ---------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [(ALICE, BOB), (BOB, ALICE)])
def test_full_handshake_both_ways(first: IdentityKey, second: IdentityKey) -> None:
    initiator, responder = pair(first, second)
    messages = run(initiator, responder)
    assert [len(m) for m in messages] == [34, 50, 82]
    assert [m[:2] for m in messages] == [b"\x01\x01", b"\x02\x01", b"\x03\x01"]
    assert initiator.state is State.DONE and responder.state is State.DONE
    mine, theirs = initiator.result, responder.result
    assert mine.role is Role.INITIATOR and theirs.role is Role.RESPONDER
    assert len(mine.handshake_hash) == 32
    assert mine.handshake_hash == theirs.handshake_hash
    assert len(mine.ratchet_seed) == 32
    assert mine.ratchet_seed == theirs.ratchet_seed
    assert mine.ratchet_seed != mine.handshake_hash
    assert theirs.own_ratchet_private is not None and mine.own_ratchet_private is None
    assert theirs.peer_ratchet_public is None
    assert mine.peer_ratchet_public == x25519_public(theirs.own_ratchet_private)
    assert (mine.local_did, mine.peer_did) == (first.did, second.did)
    assert (theirs.local_did, theirs.peer_did) == (second.did, first.did)


def test_fresh_randomness_gives_fresh_sessions() -> None:
    one = pair()
    run(*one)
    two = make(Role.INITIATOR, ALICE, BOB, rng_label=b"x"), make(Role.RESPONDER, BOB, ALICE)
    run(*two)
    assert one[0].result.handshake_hash != two[0].result.handshake_hash
    assert one[0].result.ratchet_seed != two[0].result.ratchet_seed


def test_secrets_are_not_in_the_repr() -> None:
    initiator, responder = pair()
    run(initiator, responder)
    result = responder.result
    assert result.own_ratchet_private is not None
    text = repr(result)
    assert "ratchet_seed" not in text and "own_ratchet_private" not in text
    assert isinstance(result, HandshakeResult)


# --- independent recomputation of the derived bytes ------------------------------------------


def cbor_text(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 256
    return (bytes([0x60 + len(raw)]) if len(raw) < 24 else bytes([0x78, len(raw)])) + raw


def test_prologue_bytes_match_a_hand_written_cbor_encoding() -> None:
    # Fingerprints sorted: FP_A < FP_B, whichever side is the initiator.
    expected = (
        b"\x86"
        + cbor_text("didlink/1")
        + b"\x50"
        + INVITATION
        + cbor_text(BOB.did)
        + cbor_text(ALICE.did)
        + cbor_text(FP_A)
        + cbor_text(FP_B)
    )
    prologue = handshake_prologue(
        invitation_id=INVITATION,
        initiator_did=BOB.did,
        responder_did=ALICE.did,
        initiator_fingerprint=FP_B,
        responder_fingerprint=FP_A,
    )
    assert prologue == expected


def test_commitment_ratchet_seed_and_transcript_recomputed_independently() -> None:
    initiator, responder = pair()
    commitment, initiation, response = run(initiator, responder)
    # Replay the responder's rng to learn its ephemeral and ratchet keys.
    rng = counter_rng((BOB.did + "responder").encode())
    e_r, ratchet = rng(32), rng(32)
    e_i = counter_rng((ALICE.did + "initiator").encode())(32)
    prologue = handshake_prologue(
        invitation_id=INVITATION,
        initiator_did=ALICE.did,
        responder_did=BOB.did,
        initiator_fingerprint=FP_A,
        responder_fingerprint=FP_B,
    )
    e_r_public = x25519_public(e_r)
    label = b"didlink/v1 ephemeral commitment"
    expected_commitment = hashlib.sha256(
        label + hashlib.sha256(prologue).digest() + e_r_public
    ).digest()
    assert commitment[2:] == expected_commitment
    assert response[2:34] == e_r_public
    assert initiation[2:34] == x25519_public(e_i)
    # A plain Noise KK run with the same keys gives the same messages and split keys.
    noise_i = HandshakeState(
        NOISE_PROTOCOL,
        initiator=True,
        prologue=prologue,
        s=ALICE.x25519_private,
        e=e_i,
        rs=BOB.x25519_public,
    )
    noise_r = HandshakeState(
        NOISE_PROTOCOL,
        initiator=False,
        prologue=prologue,
        s=BOB.x25519_private,
        e=e_r,
        rs=ALICE.x25519_public,
    )
    assert noise_i.write_message(b"") == initiation[2:]
    assert noise_r.read_message(initiation[2:]) == b""
    assert noise_r.write_message(x25519_public(ratchet)) == response[2:]
    k1, k2 = (c.key for c in noise_r.split())
    assert k1 is not None and k2 is not None
    h = noise_r.handshake_hash
    assert responder.result.handshake_hash == h
    expected_seed = hkdf_sha256(h, k1 + k2, b"didlink/v1 ratchet seed", 32)
    assert responder.result.ratchet_seed == expected_seed
    assert responder.result.own_ratchet_private == ratchet


# --- binding: every prologue field -----------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "field", "value"),
    [
        ("initiator", "invitation_id", b"another invitation"),
        ("responder", "invitation_id", b"another invitation"),
        ("initiator", "local_fingerprint", "sha-256 AA:99"),
        ("initiator", "peer_fingerprint", "sha-256 BB:99"),
        ("responder", "local_fingerprint", "sha-256 BB:99"),
        ("responder", "peer_fingerprint", "sha-256 AA:99"),
        ("responder", "peer_did", MALLORY.did),  # the responder believes it talks to Mallory
        ("initiator", "peer_did", MALLORY.did),  # the initiator believes it talks to Mallory
    ],
)
def test_any_prologue_difference_fails(side: str, field: str, value: Any) -> None:
    initiator = make(Role.INITIATOR, ALICE, BOB, **({field: value} if side == "initiator" else {}))
    responder = make(Role.RESPONDER, BOB, ALICE, **({field: value} if side == "responder" else {}))
    initiator.start()
    initiation = initiator.receive(responder.start() or b"")
    with pytest.raises(CryptoFailure):
        responder.receive(initiation or b"")
    assert responder.state is State.FAILED


def test_fingerprint_order_does_not_matter() -> None:
    """The prologue holds the two fingerprints sorted, so only the set of values counts."""
    initiator = make(Role.INITIATOR, ALICE, BOB, local_fingerprint=FP_B, peer_fingerprint=FP_A)
    responder = make(Role.RESPONDER, BOB, ALICE)
    run(initiator, responder)
    assert initiator.result.handshake_hash == responder.result.handshake_hash


# --- the commitment --------------------------------------------------------------------------


def test_revealing_another_ephemeral_than_committed_is_rejected() -> None:
    """An honest-looking responder commits to e1 but answers with e2 (a perfectly valid Noise
    message): only the commitment check can catch it, and it does."""
    initiator = make(Role.INITIATOR, ALICE, BOB)
    twin = make(Role.INITIATOR, ALICE, BOB)  # same rng: same ephemeral, same message 1
    committed = make(Role.RESPONDER, BOB, ALICE, rng_label=b"e1")
    cheating = make(Role.RESPONDER, BOB, ALICE, rng_label=b"e2")
    initiator.start()
    twin.start()
    commitment_1 = committed.start() or b""
    commitment_2 = cheating.start() or b""
    initiation = initiator.receive(commitment_1)
    assert twin.receive(commitment_2) == initiation
    response = cheating.receive(initiation or b"") or b""
    with pytest.raises(CryptoFailure):
        initiator.receive(response)
    assert initiator.state is State.FAILED
    assert twin.receive(response) is None  # the same bytes pass when the commitment matches
    assert twin.state is State.DONE


# --- wrong static keys -----------------------------------------------------------------------


def _prologue() -> bytes:
    return handshake_prologue(
        invitation_id=INVITATION,
        initiator_did=ALICE.did,
        responder_did=BOB.did,
        initiator_fingerprint=FP_A,
        responder_fingerprint=FP_B,
    )


def test_impostor_initiator_claiming_alices_did_is_rejected() -> None:
    """Mallory knows Alice's DID and everything public, but not Alice's key."""
    responder = make(Role.RESPONDER, BOB, ALICE)
    responder.start()
    mallory = HandshakeState(
        NOISE_PROTOCOL,
        initiator=True,
        prologue=_prologue(),
        s=MALLORY.x25519_private,
        rs=BOB.x25519_public,
    )
    forged = b"\x02\x01" + mallory.write_message(b"")
    with pytest.raises(CryptoFailure):
        responder.receive(forged)


def test_impostor_responder_claiming_bobs_did_is_rejected() -> None:
    initiator = make(Role.INITIATOR, ALICE, BOB)
    initiator.start()
    e_m = bytes(range(32))
    prologue = _prologue()
    commitment = b"\x01\x01" + ephemeral_commitment(prologue, x25519_public(e_m))
    initiation = initiator.receive(commitment) or b""
    mallory = HandshakeState(
        NOISE_PROTOCOL,
        initiator=False,
        prologue=prologue,
        s=MALLORY.x25519_private,
        e=e_m,
        rs=ALICE.x25519_public,
    )
    with pytest.raises(CryptoFailure):  # Mallory cannot even read message 1 ...
        mallory.read_message(initiation[2:])
    forged = b"\x03\x01" + x25519_public(e_m) + bytes(48)
    with pytest.raises(CryptoFailure):  # ... and whatever she answers is rejected
        initiator.receive(forged)


# --- tampering, lengths, framing -------------------------------------------------------------


def _run_with_tamper(index: int, position: int, mask: int) -> None:
    """A full handshake where message `index` has one byte flipped on the way."""
    initiator, responder = pair()
    initiator.start()
    message = responder.start() or b""
    steps = [initiator, responder, initiator]
    for number, receiver in enumerate(steps):
        if number == index:
            corrupted = bytearray(message)
            corrupted[position] ^= mask
            message = bytes(corrupted)
        message = receiver.receive(message) or b""


@pytest.mark.parametrize("mask", [0x01, 0x80])
@pytest.mark.parametrize(("index", "size"), [(0, 34), (1, 50), (2, 82)])
def test_every_tampered_byte_is_a_typed_error(index: int, size: int, mask: int) -> None:
    for position in range(size):
        expected: type[Exception] = RemoteProtocolError if position < 2 else CryptoFailure
        with pytest.raises(expected) as caught:
            _run_with_tamper(index, position, mask)
        if position < 2:  # framing errors are not disguised as crypto failures
            assert not isinstance(caught.value, CryptoFailure)


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("change", ["short", "extra", "empty", "header only"])
def test_wrong_lengths_are_remote_errors(index: int, change: str) -> None:
    initiator, responder = pair()
    initiator.start()
    message = responder.start() or b""
    receivers = [initiator, responder, initiator]
    for number in range(index):
        message = receivers[number].receive(message) or b""
    bad = {
        "short": message[:-1],
        "extra": message + b"\x00",
        "empty": b"",
        "header only": message[:2],
    }[change]
    with pytest.raises(RemoteProtocolError) as caught:
        receivers[index].receive(bad)
    assert not isinstance(caught.value, CryptoFailure)
    assert receivers[index].state is State.FAILED


@pytest.mark.parametrize("version", [0, 2, 255])
def test_unknown_version_is_a_remote_error(version: int) -> None:
    initiator, responder = pair()
    initiator.start()
    commitment = bytearray(responder.start() or b"")
    commitment[1] = version
    with pytest.raises(RemoteProtocolError):
        initiator.receive(bytes(commitment))


def test_message_of_the_wrong_type_for_the_state_is_a_remote_error() -> None:
    initiator, responder = pair()
    initiator.start()
    responder.start()
    with pytest.raises(RemoteProtocolError):
        initiator.receive(b"\x03\x01" + bytes(80))  # RESPONSE before COMMITMENT
    with pytest.raises(RemoteProtocolError):
        responder.receive(b"\x01\x01" + bytes(32))  # a COMMITMENT sent to the responder


# --- local misuse -----------------------------------------------------------------------------


def test_local_misuse_is_a_local_error_and_failure_is_sticky() -> None:
    initiator, responder = pair()
    with pytest.raises(LocalProtocolError):
        initiator.receive(b"\x01\x01" + bytes(32))  # receive before start
    assert initiator.state is State.FAILED
    with pytest.raises(LocalProtocolError):
        initiator.start()
    assert initiator.state is State.FAILED
    responder.start()
    with pytest.raises(LocalProtocolError):
        responder.start()  # twice
    with pytest.raises(LocalProtocolError):
        _ = responder.result


def test_done_machine_refuses_more_input() -> None:
    initiator, responder = pair()
    messages = run(initiator, responder)
    with pytest.raises(LocalProtocolError):
        initiator.receive(messages[2])
    assert initiator.state is State.FAILED


@pytest.mark.parametrize(
    "overrides",
    [
        {"peer_did": "did:key:zNotAKey"},
        {"peer_did": ALICE.did},  # a handshake with oneself
        {"invitation_id": b""},
        {"invitation_id": bytes(65)},
        {"local_fingerprint": ""},
        {"role": "initiator"},
    ],
)
def test_bad_construction_is_a_local_error(overrides: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        make(Role.INITIATOR, ALICE, BOB, **overrides)


def test_a_short_rng_is_a_local_error() -> None:
    responder = make(Role.RESPONDER, BOB, ALICE, rng=lambda n: b"\x01" * (n - 1))
    with pytest.raises(LocalProtocolError):
        responder.start()
    assert responder.state is State.FAILED


@pytest.mark.parametrize(
    "point",
    [
        bytes(32),  # zero
        bytes([1]) + bytes(31),  # the point of order 1
        # a point of order 8
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    ],
)
def test_low_order_ephemeral_is_a_crypto_failure(point: bytes) -> None:
    initiator, responder = pair()
    initiator.start()
    initiation = initiator.receive(responder.start() or b"") or b""
    with pytest.raises(CryptoFailure):
        responder.receive(initiation[:2] + point + initiation[34:])
