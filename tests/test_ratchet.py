"""RatchetSession behaviour: init roles, replay, failure atomicity, bounds, persistence."""

from __future__ import annotations

import hmac
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from messaging import ratchet
from messaging.errors import CryptoFailure, LocalProtocolError
from messaging.ratchet import RatchetSession
from messaging.ratchet_state import RatchetState

AD = b"session ad"


def pair() -> tuple[RatchetSession, RatchetSession]:
    seed = os.urandom(32)
    bob = X25519PrivateKey.generate()
    alice = RatchetSession.initiator(seed, bob.public_key().public_bytes_raw(), associated_data=AD)
    bob_session = RatchetSession.responder(seed, bob.private_bytes_raw(), associated_data=AD)
    return alice, bob_session


@settings(max_examples=100, deadline=None)
@given(
    ikm=st.binary(max_size=64),
    salt=st.binary(min_size=1, max_size=64),
    info=st.binary(max_size=40),
    length=st.integers(1, 200),
)
def test_hkdf_matches_pyca(ikm: bytes, salt: bytes, info: bytes, length: int) -> None:
    expected = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)
    assert ratchet.hkdf_sha256(ikm, salt=salt, info=info, length=length) == expected


@settings(max_examples=100, deadline=None)
@given(key=st.binary(max_size=100), data=st.binary(max_size=200))
def test_hmac_matches_stdlib(key: bytes, data: bytes) -> None:
    assert ratchet.hmac_sha256(key, data) == hmac.digest(key, data, "sha256")


def test_message_key_schedule_matches_general_hkdf() -> None:
    for _ in range(50):
        mk = os.urandom(32)
        out = HKDF(
            algorithm=hashes.SHA256(), length=80, salt=bytes(32), info=ratchet.MESSAGE_INFO
        ).derive(mk)
        assert ratchet._message_keys(mk) == (out[:32], out[32:64], out[64:])


@settings(max_examples=100, deadline=None)
@given(rk=st.binary(min_size=32, max_size=32), dh_out=st.binary(min_size=32, max_size=32))
def test_root_kdf_matches_pyca_hkdf(rk: bytes, dh_out: bytes) -> None:
    out = HKDF(algorithm=hashes.SHA256(), length=64, salt=rk, info=ratchet.ROOT_INFO).derive(dh_out)
    assert ratchet.kdf_rk(rk, dh_out) == (out[:32], out[32:])


def test_chain_kdf_is_hmac_01_02() -> None:
    ck = os.urandom(32)
    assert ratchet.kdf_ck(ck) == (
        hmac.digest(ck, b"\x02", "sha256"),
        hmac.digest(ck, b"\x01", "sha256"),
    )


def test_rfc5869_case_1() -> None:
    # RFC 5869 appendix A.1
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    okm = ratchet.hkdf_sha256(ikm, salt=salt, info=info, length=42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_responder_cannot_send_first() -> None:
    alice, bob = pair()
    assert alice.can_send and not bob.can_send
    with pytest.raises(LocalProtocolError):
        bob.encrypt(b"too early")
    assert bob.decrypt(alice.encrypt(b"hi")) == b"hi"
    assert bob.can_send
    assert alice.decrypt(bob.encrypt(b"hello")) == b"hello"


def test_wire_layout() -> None:
    alice, _ = pair()
    message = alice.encrypt(b"x" * 20)
    assert message[0] == 1
    assert message[37:41] == (0).to_bytes(4, "big")  # n = 0
    assert len(message) == 41 + 32 + 32  # header, two AES blocks, tag
    assert alice.encrypt(b"")[37:41] == (1).to_bytes(4, "big")


def test_replay_fails_in_order_and_out_of_order() -> None:
    alice, bob = pair()
    messages = [alice.encrypt(b"m%d" % i) for i in range(3)]
    assert bob.decrypt(messages[2]) == b"m2"
    assert bob.decrypt(messages[0]) == b"m0"
    for m in (messages[0], messages[2]):
        with pytest.raises(CryptoFailure):
            bob.decrypt(m)
    assert bob.decrypt(messages[1]) == b"m1"
    with pytest.raises(CryptoFailure):
        bob.decrypt(messages[1])
    assert bob.skipped_key_count == 0


def test_failure_leaves_state_unchanged() -> None:
    alice, bob = pair()
    first = alice.encrypt(b"first")
    before = bob.to_state()
    for i in range(len(first)):
        tampered = bytearray(first)
        tampered[i] ^= 0x40
        with pytest.raises(CryptoFailure):
            bob.decrypt(bytes(tampered))
        assert bob.to_state() == before
    assert bob.decrypt(first) == b"first"
    # a forged message that claims a new DH key must not ratchet the receiver
    reply = bob.encrypt(b"r")
    state = alice.to_state()
    forged = reply[:1] + X25519PrivateKey.generate().public_key().public_bytes_raw() + reply[33:]
    with pytest.raises(CryptoFailure):
        alice.decrypt(forged)
    assert alice.to_state() == state
    assert alice.decrypt(reply) == b"r"


@pytest.mark.parametrize("message", [b"", b"\x01" * 88, b"\x02" + bytes(40) + bytes(48)])
def test_malformed_messages_are_opaque_failures(message: bytes) -> None:
    _, bob = pair()
    with pytest.raises(CryptoFailure):
        bob.decrypt(message)


def test_wrong_associated_data_fails() -> None:
    seed = os.urandom(32)
    bob = X25519PrivateKey.generate()
    bob_pub = bob.public_key().public_bytes_raw()
    alice = RatchetSession.initiator(seed, bob_pub, associated_data=b"a")
    other = RatchetSession.responder(seed, bob.private_bytes_raw(), associated_data=b"b")
    with pytest.raises(CryptoFailure):
        other.decrypt(alice.encrypt(b"x"))


def test_max_skip_bound() -> None:
    alice, bob = pair()
    for _ in range(ratchet.MAX_SKIP + 1):
        alice.encrypt(b"")
    with pytest.raises(CryptoFailure):
        bob.decrypt(alice.encrypt(b"too far"))
    alice2, bob2 = pair()
    for _ in range(ratchet.MAX_SKIP):
        alice2.encrypt(b"")
    assert bob2.decrypt(alice2.encrypt(b"just in")) == b"just in"
    assert bob2.skipped_key_count == ratchet.MAX_SKIP


def test_total_skipped_keys_bounded_oldest_evicted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratchet, "MAX_STORED_SKIPPED", 5)
    alice, bob = pair()
    messages = [alice.encrypt(b"%d" % i) for i in range(8)]
    assert bob.decrypt(messages[7]) == b"7"
    assert bob.skipped_key_count == 5
    with pytest.raises(CryptoFailure):
        bob.decrypt(messages[0])  # evicted
    assert bob.decrypt(messages[6]) == b"6"


def test_bad_keys_rejected() -> None:
    with pytest.raises(LocalProtocolError):
        RatchetSession.initiator(bytes(31), bytes(32), associated_data=AD)
    with pytest.raises(LocalProtocolError):  # all-zero public key: low-order point
        RatchetSession.initiator(bytes(32), bytes(32), associated_data=AD)
    with pytest.raises(LocalProtocolError):
        RatchetSession.responder(bytes(32), bytes(3), associated_data=AD)


def test_session_survives_restart() -> None:
    alice, bob = pair()
    held = [alice.encrypt(b"held %d" % i) for i in range(3)]
    assert bob.decrypt(alice.encrypt(b"now")) == b"now"  # bob stores 3 skipped keys
    assert bob.decrypt(held[1]) == b"held 1"
    saved_bob = bob.to_state().model_dump_json()
    saved_alice = alice.to_state().model_dump_json()
    bob = RatchetSession.from_state(RatchetState.model_validate_json(saved_bob))
    alice = RatchetSession.from_state(RatchetState.model_validate_json(saved_alice))
    assert bob.skipped_key_count == 2
    assert bob.decrypt(held[2]) == b"held 2"
    assert bob.decrypt(held[0]) == b"held 0"
    with pytest.raises(CryptoFailure):
        bob.decrypt(held[1])
    for i in range(5):
        assert alice.decrypt(bob.encrypt(b"b%d" % i)) == b"b%d" % i
        assert bob.decrypt(alice.encrypt(b"a%d" % i)) == b"a%d" % i


def test_responder_state_before_first_message_round_trips() -> None:
    alice, bob = pair()
    saved = bob.to_state().model_dump_json()
    bob = RatchetSession.from_state(RatchetState.model_validate_json(saved))
    assert not bob.can_send
    assert bob.decrypt(alice.encrypt(b"x")) == b"x"


@pytest.mark.parametrize(
    "patch",
    [
        {"version": 2},
        {"rk": "00"},
        {"rk": "zz" * 32},
        {"ns": -1},
        {"surprise": 1},
    ],
)
def test_bad_state_rejected(patch: dict[str, object]) -> None:
    alice, _ = pair()
    data = alice.to_state().model_dump(mode="json")
    data.update(patch)
    with pytest.raises(ValidationError):
        RatchetState.model_validate(data)


def test_rng_is_injectable_and_used() -> None:
    calls: list[int] = []

    def rng(n: int) -> bytes:
        calls.append(n)
        return os.urandom(n)

    seed = os.urandom(32)
    bob = X25519PrivateKey.generate()
    alice = RatchetSession.initiator(
        seed, bob.public_key().public_bytes_raw(), associated_data=AD, rng=rng
    )
    assert calls == [32]
    bob_session = RatchetSession.responder(seed, bob.private_bytes_raw(), associated_data=AD)
    bob_session.decrypt(alice.encrypt(b"x"))
    alice.decrypt(bob_session.encrypt(b"y"))
    assert calls == [32]  # the sending half of alice's DH step is pending ...
    alice.encrypt(b"z")
    assert calls == [32, 32]  # ... until she sends


def test_bad_rng_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        RatchetSession.initiator(
            os.urandom(32), os.urandom(32), associated_data=AD, rng=lambda n: bytes(n - 1)
        )
    seed = os.urandom(32)
    bob = X25519PrivateKey.generate()
    alice = RatchetSession.initiator(seed, bob.public_key().public_bytes_raw(), associated_data=AD)
    bob_session = RatchetSession.responder(
        seed, bob.private_bytes_raw(), associated_data=AD, rng=lambda n: b"short"
    )
    message = alice.encrypt(b"x")
    assert bob_session.decrypt(message) == b"x"  # the receiving half needs no randomness
    with pytest.raises(LocalProtocolError):
        bob_session.encrypt(b"y")  # the sending half does: it fails, and changes nothing
    for complete_the_step in (bob_session.prepare_send, bob_session.to_state):
        with pytest.raises(LocalProtocolError):
            complete_the_step()
    assert bob_session.can_send  # still pending, not lost
