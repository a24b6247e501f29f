"""Cross-check `RatchetSession` against the `DoubleRatchet` package (Syndace), an independent
implementation, configured with the Signal spec's recommended functions (specs/session.md s.6).

Both directions: ours encrypts and theirs decrypts, and the other way round, over many ratchet
steps, with in-order, out-of-order and skipped messages. The oracle is configured only through
its documented extension points (KDF info strings, chain constant, AD/header building); our
header encoding is rebuilt here independently from the spec text, not imported.
"""

from __future__ import annotations

import os
import random
import struct
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from doubleratchet import AuthenticationFailedException, EncryptedMessage, Header
from doubleratchet import double_ratchet as dr_module
from doubleratchet.recommended import (
    HashFunction,
    aead_aes_hmac,
    diffie_hellman_ratchet_curve25519,
    kdf_hkdf,
    kdf_separate_hmacs,
)

from messaging.errors import CryptoFailure
from messaging.ratchet import RatchetSession

SESSION_AD = b"didlink test session ad"


class RootKdf(kdf_hkdf.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return b"didlink/v1 ratchet root"


class ChainKdf(kdf_separate_hmacs.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256


class Aead(aead_aes_hmac.AEAD):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return b"didlink/v1 ratchet message"


def header_bytes(header: Header) -> bytes:
    # specs/session.md s.3: 0x01 || dh (32) || pn (u32 big-endian) || n (u32 big-endian)
    return (
        b"\x01"
        + header.ratchet_pub
        + struct.pack(">II", header.previous_sending_chain_length, header.sending_chain_length)
    )


class Oracle(dr_module.DoubleRatchet):
    @staticmethod
    def _build_associated_data(associated_data: bytes, header: Header) -> bytes:
        return associated_data + header_bytes(header)


# The chain constant b"\x02\x01": the KDF chain keeps the first 32 output bytes as the next
# chain key (HMAC(ck, 0x02)) and returns the rest as the message key (HMAC(ck, 0x01)).
CONFIG: dict[str, Any] = {
    "diffie_hellman_ratchet_class": diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet,
    "root_chain_kdf": RootKdf,
    "message_chain_kdf": ChainKdf,
    "message_chain_constant": b"\x02\x01",
    "dos_protection_threshold": 1000,
    "max_num_skipped_message_keys": 2000,
    "aead": Aead,
}


def to_wire(message: EncryptedMessage) -> bytes:
    return header_bytes(message.header) + message.ciphertext


def from_wire(data: bytes) -> EncryptedMessage:
    _version, dh, pn, n = struct.unpack_from(">B32sII", data)
    return EncryptedMessage(header=Header(dh, pn, n), ciphertext=data[41:])


def keys() -> tuple[bytes, bytes, bytes]:
    bob = X25519PrivateKey.generate()
    return os.urandom(32), bob.private_bytes_raw(), bob.public_key().public_bytes_raw()


async def test_ours_initiates_theirs_responds_many_steps() -> None:
    seed, bob_priv, bob_pub = keys()
    ours = RatchetSession.initiator(seed, bob_pub, associated_data=SESSION_AD)
    first = ours.encrypt(b"hello oracle")
    theirs, plaintext = await Oracle.decrypt_initial_message(
        **CONFIG,
        shared_secret=seed,
        own_ratchet_priv=bob_priv,
        message=from_wire(first),
        associated_data=SESSION_AD,
    )
    assert plaintext == b"hello oracle"
    rng = random.Random(1)
    for step in range(30):  # each turn of speaker is a DH ratchet step
        count = rng.randint(1, 4)
        mine = [ours.encrypt(f"ours {step} {i}".encode()) for i in range(count)]
        order = list(range(count))
        rng.shuffle(order)
        for i in order:
            got = await theirs.decrypt_message(from_wire(mine[i]), SESSION_AD)
            assert got == f"ours {step} {i}".encode()
        replies = [
            await theirs.encrypt_message(f"theirs {step} {i}".encode(), SESSION_AD)
            for i in range(count)
        ]
        order.reverse()
        for i in order:
            assert ours.decrypt(to_wire(replies[i])) == f"theirs {step} {i}".encode()


async def test_theirs_initiates_ours_responds_many_steps() -> None:
    seed, bob_priv, bob_pub = keys()
    theirs, first = await Oracle.encrypt_initial_message(
        **CONFIG,
        shared_secret=seed,
        recipient_ratchet_pub=bob_pub,
        message=b"hello ours",
        associated_data=SESSION_AD,
    )
    ours = RatchetSession.responder(seed, bob_priv, associated_data=SESSION_AD)
    assert not ours.can_send
    assert ours.decrypt(to_wire(first)) == b"hello ours"
    assert ours.can_send
    rng = random.Random(2)
    for step in range(30):
        count = rng.randint(1, 4)
        mine = [ours.encrypt(f"ours {step} {i}".encode()) for i in range(count)]
        order = list(range(count))
        rng.shuffle(order)
        for i in order:
            got = await theirs.decrypt_message(from_wire(mine[i]), SESSION_AD)
            assert got == f"ours {step} {i}".encode()
        replies = [
            await theirs.encrypt_message(f"theirs {step} {i}".encode(), SESSION_AD)
            for i in range(count)
        ]
        rng.shuffle(order)
        for i in order:
            assert ours.decrypt(to_wire(replies[i])) == f"theirs {step} {i}".encode()


async def test_skipped_across_ratchet_steps_both_directions() -> None:
    """Messages held back across later DH steps (header pn path) still decrypt on both sides."""
    seed, bob_priv, bob_pub = keys()
    ours = RatchetSession.initiator(seed, bob_pub, associated_data=SESSION_AD)
    first = ours.encrypt(b"m0")
    theirs, _ = await Oracle.decrypt_initial_message(
        **CONFIG,
        shared_secret=seed,
        own_ratchet_priv=bob_priv,
        message=from_wire(first),
        associated_data=SESSION_AD,
    )
    held_ours: list[tuple[bytes, bytes]] = []
    held_theirs: list[tuple[bytes, EncryptedMessage]] = []
    for step in range(10):
        a = [ours.encrypt(f"a{step}.{i}".encode()) for i in range(3)]
        held_ours.append((f"a{step}.0".encode(), a[0]))  # deliver later, after more steps
        for i in (2, 1):
            assert await theirs.decrypt_message(from_wire(a[i]), SESSION_AD) == (
                f"a{step}.{i}".encode()
            )
        b = [await theirs.encrypt_message(f"b{step}.{i}".encode(), SESSION_AD) for i in range(3)]
        held_theirs.append((f"b{step}.1".encode(), b[1]))
        for i in (0, 2):
            assert ours.decrypt(to_wire(b[i])) == f"b{step}.{i}".encode()
    # a whole chain never seen by the receiver until the peer moved on (skip via header pn)
    lost = [ours.encrypt(b"late 0"), ours.encrypt(b"late 1")]
    reply = await theirs.encrypt_message(b"nudge", SESSION_AD)
    assert ours.decrypt(to_wire(reply)) == b"nudge"
    after = ours.encrypt(b"after")
    assert await theirs.decrypt_message(from_wire(after), SESSION_AD) == b"after"
    for i in (1, 0):
        assert await theirs.decrypt_message(from_wire(lost[i]), SESSION_AD) == (
            f"late {i}".encode()
        )
    for text, wire in held_ours:
        assert await theirs.decrypt_message(from_wire(wire), SESSION_AD) == text
    for text, message in held_theirs:
        assert ours.decrypt(to_wire(message)) == text
    # and a replay of something the oracle sent fails on ours
    with pytest.raises(CryptoFailure):
        ours.decrypt(to_wire(held_theirs[0][1]))


async def test_session_ad_mismatch_is_rejected_by_the_oracle() -> None:
    seed, bob_priv, bob_pub = keys()
    ours = RatchetSession.initiator(seed, bob_pub, associated_data=b"other ad")
    first = ours.encrypt(b"x")
    with pytest.raises(AuthenticationFailedException):
        await Oracle.decrypt_initial_message(
            **CONFIG,
            shared_secret=seed,
            own_ratchet_priv=bob_priv,
            message=from_wire(first),
            associated_data=SESSION_AD,
        )
