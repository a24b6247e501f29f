"""Noise known answers (cacophony vectors, see tests/vectors/noise/README.md) and negative cases.

Every vector is run end to end: each handshake message written by one side must equal the
vector's ciphertext byte for byte and be read back by the other side; then every transport
message the same way through split(); and both sides' final handshake hash must equal it.
"""

from __future__ import annotations

from typing import Any

import pytest

from messaging.errors import CryptoFailure, LocalProtocolError, RemoteProtocolError
from messaging.noise import (
    AESGCM_CIPHER,
    CHACHAPOLY_CIPHER,
    CipherState,
    HandshakeState,
    parse_protocol_name,
    x25519_public,
)
from tests.support.vectors import load_json

VECTORS: list[dict[str, Any]] = load_json("noise/cacophony-25519-sha256.json")["vectors"]
EXPECTED = {
    f"Noise_{p}_25519_{c}_SHA256"
    for p in ("NN", "KK", "XX", "IK", "KKpsk0", "XXpsk3")
    for c in ("AESGCM", "ChaChaPoly")
}


def _hex(vector: dict[str, Any], key: str) -> bytes | None:
    value = vector.get(key)
    return bytes.fromhex(value) if value is not None else None


def _side(vector: dict[str, Any], prefix: str) -> HandshakeState:
    return HandshakeState(
        vector["protocol_name"],
        initiator=prefix == "init",
        prologue=bytes.fromhex(vector[f"{prefix}_prologue"]),
        s=_hex(vector, f"{prefix}_static"),
        e=_hex(vector, f"{prefix}_ephemeral"),
        rs=_hex(vector, f"{prefix}_remote_static"),
        psks=[bytes.fromhex(p) for p in vector.get(f"{prefix}_psks", [])],
    )


@pytest.mark.vectors
def test_the_vector_file_covers_every_expected_protocol() -> None:
    assert {v["protocol_name"] for v in VECTORS} == EXPECTED


@pytest.mark.vectors
@pytest.mark.parametrize("vector", VECTORS, ids=[v["protocol_name"] for v in VECTORS])
def test_cacophony_vector(vector: dict[str, Any]) -> None:
    initiator, responder = _side(vector, "init"), _side(vector, "resp")
    messages = vector["messages"]
    index = 0
    while not (initiator.finished and responder.finished):
        sender, receiver = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        payload = bytes.fromhex(messages[index]["payload"])
        ciphertext = sender.write_message(payload)
        assert ciphertext.hex() == messages[index]["ciphertext"]
        assert receiver.read_message(ciphertext) == payload
        index += 1
    assert index < len(messages), "the vector must also hold transport messages"
    expected_hash = vector["handshake_hash"]
    assert initiator.handshake_hash.hex() == expected_hash
    assert responder.handshake_hash.hex() == expected_hash
    i_send, i_recv = initiator.split()
    r_recv, r_send = responder.split()
    for number, message in enumerate(messages[index:], start=index):
        send, recv = (i_send, r_recv) if number % 2 == 0 else (r_send, i_recv)
        payload = bytes.fromhex(message["payload"])
        ciphertext = send.encrypt_with_ad(b"", payload)
        assert ciphertext.hex() == message["ciphertext"]
        assert recv.decrypt_with_ad(b"", ciphertext) == payload


ONE_WAY: list[dict[str, Any]] = load_json("noise/cacophony-one-way.json")["vectors"]


@pytest.mark.vectors
def test_the_one_way_file_covers_n_k_and_x() -> None:
    assert {v["protocol_name"] for v in ONE_WAY} == {
        f"Noise_{p}_25519_{c}_SHA256" for p in ("N", "K", "X") for c in ("AESGCM", "ChaChaPoly")
    }


@pytest.mark.vectors
@pytest.mark.parametrize("vector", ONE_WAY, ids=[v["protocol_name"] for v in ONE_WAY])
def test_cacophony_one_way_vector(vector: dict[str, Any]) -> None:
    """One handshake message, then every transport message from the initiator too (Noise
    section 7.4: the responder's sending cipher state of split() is unused)."""
    initiator, responder = _side(vector, "init"), _side(vector, "resp")
    first, *transport = vector["messages"]
    payload = bytes.fromhex(first["payload"])
    ciphertext = initiator.write_message(payload)
    assert ciphertext.hex() == first["ciphertext"]
    assert responder.read_message(ciphertext) == payload
    assert initiator.finished and responder.finished
    assert initiator.handshake_hash.hex() == responder.handshake_hash.hex()
    assert initiator.handshake_hash.hex() == vector["handshake_hash"]
    send, _ = initiator.split()
    receive, _ = responder.split()
    assert transport
    for message in transport:
        payload = bytes.fromhex(message["payload"])
        ciphertext = send.encrypt_with_ad(b"", payload)
        assert ciphertext.hex() == message["ciphertext"]
        assert receive.decrypt_with_ad(b"", ciphertext) == payload


# --- negative cases and misuse ---------------------------------------------------------------

KK = next(v for v in VECTORS if v["protocol_name"] == "Noise_KK_25519_AESGCM_SHA256")


def test_tampered_handshake_message_is_an_opaque_crypto_failure() -> None:
    initiator, responder = _side(KK, "init"), _side(KK, "resp")
    message = bytearray(initiator.write_message(b"hello"))
    message[-1] ^= 1
    with pytest.raises(CryptoFailure):
        responder.read_message(bytes(message))
    with pytest.raises(LocalProtocolError):  # a failed handshake stays failed
        responder.read_message(bytes(message))


def test_different_prologue_fails() -> None:
    initiator = _side(KK, "init")
    responder = _side({**KK, "resp_prologue": "00"}, "resp")
    with pytest.raises(CryptoFailure):
        responder.read_message(initiator.write_message(b""))


def test_truncated_message_is_a_remote_error() -> None:
    initiator, responder = _side(KK, "init"), _side(KK, "resp")
    message = initiator.write_message(b"")
    with pytest.raises(RemoteProtocolError):
        responder.read_message(message[:20])


def test_out_of_turn_calls_are_local_errors() -> None:
    initiator, responder = _side(KK, "init"), _side(KK, "resp")
    with pytest.raises(LocalProtocolError):
        responder.write_message(b"")
    with pytest.raises(LocalProtocolError):
        initiator.read_message(bytes(64))
    with pytest.raises(LocalProtocolError):
        initiator.split()


def test_missing_keys_and_psks_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        HandshakeState("Noise_KK_25519_AESGCM_SHA256", initiator=True)
    with pytest.raises(LocalProtocolError):
        HandshakeState("Noise_NNpsk0_25519_AESGCM_SHA256", initiator=True, psks=[bytes(31)])


@pytest.mark.parametrize(
    "name",
    [
        "Noise_KK_448_AESGCM_SHA256",
        "Noise_KK_25519_AESGCM_BLAKE2s",
        "Noise_KK_25519_Foo_SHA256",
        "Noise_ZZ_25519_AESGCM_SHA256",
        "Noise_KKpsk9_25519_AESGCM_SHA256",
        "Nois_KK_25519_AESGCM_SHA256",
        "Noise_KK_25519_AESGCM",
    ],
)
def test_unsupported_protocol_names(name: str) -> None:
    with pytest.raises(LocalProtocolError):
        parse_protocol_name(name)


def test_psk_modifier_placement() -> None:
    assert parse_protocol_name("Noise_KKpsk0_25519_AESGCM_SHA256").pattern.messages == (
        ("psk", "e", "es", "ss"),
        ("e", "ee", "se"),
    )
    assert parse_protocol_name("Noise_XXpsk3_25519_AESGCM_SHA256").pattern.messages[2] == (
        "s",
        "se",
        "psk",
    )


def test_low_order_public_key_is_a_crypto_failure() -> None:
    initiator = HandshakeState("Noise_NN_25519_AESGCM_SHA256", initiator=True, e=bytes(range(32)))
    responder = HandshakeState("Noise_NN_25519_AESGCM_SHA256", initiator=False, e=bytes(32))
    initiator.write_message(b"")  # the responder will get a zero point instead
    responder.read_message(bytes(32))  # re = the all-zero point: cleartext, accepted
    with pytest.raises(CryptoFailure):
        responder.write_message(b"")  # ee with a low-order point gives all zeros


def test_aesgcm_nonce_is_big_endian_and_chachapoly_little_endian() -> None:
    assert AESGCM_CIPHER.nonce(1) == bytes(11) + b"\x01"
    assert CHACHAPOLY_CIPHER.nonce(1) == bytes(4) + b"\x01" + bytes(7)


def test_cipher_state_nonce_exhaustion_and_failure_keeps_nonce() -> None:
    state = CipherState(AESGCM_CIPHER, bytes(32))
    other = CipherState(AESGCM_CIPHER, bytes(32))
    ciphertext = state.encrypt_with_ad(b"", b"x")
    with pytest.raises(CryptoFailure):
        other.decrypt_with_ad(b"ad", ciphertext)
    assert other.n == 0
    assert other.decrypt_with_ad(b"", ciphertext) == b"x"
    state.set_nonce(2**64 - 1)
    with pytest.raises(LocalProtocolError):
        state.encrypt_with_ad(b"", b"x")


def test_rekey_is_first_32_bytes_of_encrypting_zeros_at_max_nonce() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = bytes(range(32))
    expected = AESGCM(key).encrypt(b"\x00" * 4 + b"\xff" * 8, bytes(32), b"")[:32]
    state = CipherState(AESGCM_CIPHER, key)
    state.rekey()
    assert state.key == expected


def test_x25519_public_rfc7748() -> None:
    # RFC 7748 section 6.1: Alice's private and public key.
    private = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    expected = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert x25519_public(private).hex() == expected
