"""The ratchet's per-message fast paths against independent constructions (issue 6 speed work).

`messaging.ratchet` skips pyca's `Cipher` wrapper for AES-256-CBC (calling the constructor it
wraps), checks PKCS#7 padding by table and decrypts the next in-order message without the
general DH-step path. Each test here compares that against pyca's public API and the stdlib,
not against values the fast code produced itself.
"""

from __future__ import annotations

import hmac
import os
import random

import pytest
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging import ratchet
from messaging.errors import CryptoFailure
from messaging.ratchet import RatchetSession
from tests.support.hostile import counter_rng
from tests.test_ratchet import pair


def reference_encrypt(mk: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """specs/session.md s.2 ENCRYPT from pyca's public API and the stdlib only."""
    okm = HKDF(hashes.SHA256(), 80, salt=bytes(32), info=ratchet.MESSAGE_INFO).derive(mk)
    enc_key, auth_key, iv = okm[:32], okm[32:64], okm[64:]
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    ct = encryptor.update(padded) + encryptor.finalize()
    return ct + hmac.digest(auth_key, ad + ct, "sha256")


@settings(max_examples=150, deadline=None)
@given(mk=st.binary(min_size=32, max_size=32), plaintext=st.binary(max_size=100), ad=st.binary())
def test_aead_matches_public_api_reference(mk: bytes, plaintext: bytes, ad: bytes) -> None:
    sealed = ratchet.aead_encrypt(mk, plaintext, ad)
    assert sealed == reference_encrypt(mk, plaintext, ad)
    assert ratchet.aead_decrypt(mk, sealed, ad) == plaintext


# Plaintext sizes on both sides of `_IN_PLACE_MIN` (small: concatenation; large: one buffer).
_AROUND_THRESHOLD = st.integers(
    ratchet._IN_PLACE_MIN - 80, ratchet._IN_PLACE_MIN + 80
) | st.sampled_from([0, 15, 16, 17, 65536, 196_700, 262_143])


@settings(max_examples=60, deadline=None)
@given(size=_AROUND_THRESHOLD, ad=st.binary(max_size=64), seed=st.integers(0, 2**32))
def test_aead_paths_match_public_api_reference(size: int, ad: bytes, seed: int) -> None:
    """Both `_seal` / `_open` paths (with a ratchet header in place, or none) give the
    reference bytes, and any flipped bit of a large message fails."""
    rnd = random.Random(seed)
    mk, plaintext, header = rnd.randbytes(32), rnd.randbytes(size), rnd.randbytes(41)
    sealed = ratchet._seal(mk, plaintext, ad, header)
    assert sealed == header + reference_encrypt(mk, plaintext, ad + header)
    assert ratchet._open(mk, sealed, ad, len(header)) == plaintext
    assert ratchet.aead_encrypt(mk, plaintext, ad) == reference_encrypt(mk, plaintext, ad)
    where = rnd.randrange(len(sealed))
    tampered = bytearray(sealed)
    tampered[where] ^= 1 << rnd.randrange(8)
    with pytest.raises(CryptoFailure):
        ratchet._open(mk, bytes(tampered), ad, len(header))


@settings(max_examples=100, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    iv=st.binary(min_size=16, max_size=16),
    blocks=st.integers(1, 8),
)
def test_cbc_contexts_match_public_cipher(key: bytes, iv: bytes, blocks: int) -> None:
    data = os.urandom(16 * blocks)
    public = Cipher(algorithms.AES(key), modes.CBC(iv))
    expected_encryptor, expected_decryptor = public.encryptor(), public.decryptor()
    expected = expected_encryptor.update(data) + expected_encryptor.finalize()
    encryptor = ratchet._new_encryptor(algorithms.AES256(key), modes.CBC(iv))
    assert encryptor.update(data) + encryptor.finalize() == expected
    decryptor = ratchet._new_decryptor(algorithms.AES256(key), modes.CBC(iv))
    assert decryptor.update(expected) + decryptor.finalize() == data
    assert expected_decryptor.update(expected) + expected_decryptor.finalize() == data


def test_public_api_fallback_gives_the_same_wire_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    seed, bob_key = os.urandom(32), os.urandom(32)
    bob_pub = X25519PrivateKey.from_private_bytes(bob_key).public_key().public_bytes_raw()

    def conversation() -> list[bytes]:
        # Deterministic ratchet keys, so both runs produce the same bytes.
        alice_rng, bob_rng = random.Random(1), random.Random(2)
        alice = RatchetSession.initiator(
            seed, bob_pub, associated_data=b"ad", rng=alice_rng.randbytes
        )
        bob = RatchetSession.responder(seed, bob_key, associated_data=b"ad", rng=bob_rng.randbytes)
        wire = []
        for i in range(4):
            sender, receiver = (alice, bob) if i % 2 == 0 else (bob, alice)
            for j in range(3):
                message = sender.encrypt(b"%d.%d" % (i, j))
                assert receiver.decrypt(message) == b"%d.%d" % (i, j)
                wire.append(message)
        return wire

    fast = conversation()
    monkeypatch.setattr(ratchet, "_new_encryptor", ratchet._public_encryptor)
    monkeypatch.setattr(ratchet, "_new_decryptor", ratchet._public_decryptor)
    assert conversation() == fast


def test_bad_padding_under_a_valid_tag_is_a_crypto_failure() -> None:
    mk, ad = os.urandom(32), b"ad"
    okm = HKDF(hashes.SHA256(), 80, salt=bytes(32), info=ratchet.MESSAGE_INFO).derive(mk)
    enc_key, auth_key, iv = okm[:32], okm[32:64], okm[64:]
    for last_block in (bytes(16), b"\x11" * 16, b"x" * 14 + b"\x02\x03", b"y" * 15 + b"\x00"):
        encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
        ct = encryptor.update(b"z" * 16 + last_block) + encryptor.finalize()
        with pytest.raises(CryptoFailure):
            ratchet.aead_decrypt(mk, ct + hmac.digest(auth_key, ad + ct, "sha256"), ad)


def test_in_order_fast_path_failure_leaves_state_unchanged() -> None:
    alice, bob = pair()
    assert bob.decrypt(alice.encrypt(b"first")) == b"first"  # (the DH step: general path)
    second = alice.encrypt(b"second")  # the next in-order message: the fast path
    before = bob.to_state()
    for i in range(len(second)):
        tampered = bytearray(second)
        tampered[i] ^= 0x01
        with pytest.raises(CryptoFailure):
            bob.decrypt(bytes(tampered))
        assert bob.to_state() == before
    assert bob.decrypt(second) == b"second"
    with pytest.raises(CryptoFailure):
        bob.decrypt(second)  # replay


def test_in_order_path_still_prefers_a_stored_skipped_key() -> None:
    alice, bob = pair()
    messages = [alice.encrypt(b"m%d" % i) for i in range(4)]
    assert bob.decrypt(messages[0]) == b"m0"
    assert bob.decrypt(messages[2]) == b"m2"  # stores the key for n = 1
    assert bob.skipped_key_count == 1
    assert bob.decrypt(messages[3]) == b"m3"  # in order after the skip: fast path
    assert bob.decrypt(messages[1]) == b"m1"  # the stored key
    assert bob.skipped_key_count == 0


def _seeded_pair() -> tuple[RatchetSession, RatchetSession]:
    """Alice (initiator) and Bob from fixed keys and counter randomness."""
    bob_key = X25519PrivateKey.from_private_bytes(bytes(range(32)))
    alice = RatchetSession.initiator(
        bytes(32),
        bob_key.public_key().public_bytes_raw(),
        associated_data=b"ad",
        rng=counter_rng(b"alice"),
    )
    bob = RatchetSession.responder(
        bytes(32), bob_key.private_bytes_raw(), associated_data=b"ad", rng=counter_rng(b"bob")
    )
    return alice, bob


@settings(max_examples=60, deadline=None)
@given(
    turns=st.lists(
        st.tuples(st.booleans(), st.permutations(range(4)), st.integers(1, 4)),
        min_size=1,
        max_size=12,
    )
)
def test_pending_sending_half_changes_no_byte(
    turns: list[tuple[bool, list[int], int]],
) -> None:
    """The sending half of a DH step done by the next encrypt (pending) or at once after each
    read (`prepare_send`, as the node does) gives the same wire messages, plaintexts and state,
    across changes of speaker and reordered delivery."""
    pending, prepared = _seeded_pair(), _seeded_pair()
    for turn, (from_bob, order, count) in enumerate(turns):
        from_bob = from_bob and turn > 0  # the initiator speaks first
        wires = []
        for sides in (pending, prepared):
            sender, receiver = (sides[1], sides[0]) if from_bob else sides
            sent = [sender.encrypt(b"m%d" % i) for i in range(count)]
            wires.append(sent)
            for i in (i for i in order if i < count):
                assert receiver.decrypt(sent[i]) == b"m%d" % i
                if sides is prepared:
                    receiver.prepare_send()
        assert wires[0] == wires[1]
    for lazy, eager in zip(pending, prepared, strict=True):
        assert lazy.to_state() == eager.to_state()


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["alice", "bob"]), st.integers(0, 3), st.integers(1, 3)),
        min_size=1,
        max_size=14,
    )
)
def test_message_keys_derived_early_change_no_byte(steps: list[tuple[str, int, int]]) -> None:
    """`prepare_send` any number of times before a send (the next message's keys derived
    early), also after our last send, before the peer's DH step replaces the sending chain:
    the same wire messages and state as deriving them in `encrypt`."""
    plain, early = _seeded_pair(), _seeded_pair()
    for turn, (speaker, prepares, count) in enumerate(steps):
        if turn == 0:
            speaker = "alice"  # the initiator speaks first
        wires = []
        for sides in (plain, early):
            sender, receiver = sides if speaker == "alice" else sides[::-1]
            sent = []
            for i in range(count):
                if sides is early:
                    for _ in range(prepares if i == 0 else prepares % 2):
                        sender.prepare_send()
                sent.append(sender.encrypt(b"m%d" % i))
            if sides is early and prepares == 3:
                sender.prepare_send()  # stale once the peer steps: replaced at our next send
            wires.append(sent)
            for i, wire in enumerate(sent):
                assert receiver.decrypt(wire) == b"m%d" % i
            if sides is early and prepares:
                receiver.prepare_send()  # as the node does after reading
        assert wires[0] == wires[1]
    for a, b in zip(plain, early, strict=True):
        assert a.to_state() == b.to_state()


@pytest.mark.parametrize("size", [0, 15, 100, ratchet._IN_PLACE_MIN, 196_700])
def test_encryption_set_up_early_gives_the_same_bytes(size: int) -> None:
    """A message sealed with what `prepare_send` set up (AES context, tag state over AD and
    header), on both of `seal`'s paths, is byte for byte the one sealed in `encrypt`; the
    set-up is used once (the next message derives its own)."""
    plain, early = _seeded_pair(), _seeded_pair()
    plaintext = random.Random(size).randbytes(size)
    wires = []
    for sides in (plain, early):
        alice, bob = sides
        assert bob.decrypt(alice.encrypt(b"hello")) == b"hello"
        if sides is early:
            bob.prepare_send()
            prepared = bob._next_seal
            bob.prepare_send()  # a second call keeps the first set-up
            assert prepared is not None and bob._next_seal is prepared
        sent = [bob.encrypt(plaintext)]
        assert bob._next_seal is None  # used (or, in `plain`, never made)
        sent.append(bob.encrypt(plaintext))
        assert [alice.decrypt(wire) for wire in sent] == [plaintext, plaintext]
        wires.append(sent)
    assert wires[0] == wires[1]
    assert wires[0][0] != wires[0][1]
    for a, b in zip(plain, early, strict=True):
        assert a.to_state() == b.to_state()


# --- decryption set up early (`prepare_receive`) --------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["alice", "bob"]),
            st.permutations(range(3)),
            st.integers(1, 3),
            st.integers(0, 2),
        ),
        min_size=1,
        max_size=14,
    )
)
def test_decryption_set_up_early_changes_nothing(
    steps: list[tuple[str, list[int], int, int]],
) -> None:
    """`prepare_receive` any number of times before each read, across changes of speaker and
    reordered delivery (so the set-up is sometimes for a message that comes later, or never):
    the same plaintexts and state as deriving everything in `decrypt`."""
    plain, early = _seeded_pair(), _seeded_pair()
    for turn, (speaker, order, count, prepares) in enumerate(steps):
        if turn == 0:
            speaker = "alice"  # the initiator speaks first
        for sides in (plain, early):
            sender, receiver = sides if speaker == "alice" else sides[::-1]
            sent = [sender.encrypt(b"m%d" % i) for i in range(count)]
            for i in (i for i in order if i < count):
                if sides is early:
                    for _ in range(prepares):
                        receiver.prepare_receive()
                assert receiver.decrypt(sent[i]) == b"m%d" % i
    for a, b in zip(plain, early, strict=True):
        assert a.to_state() == b.to_state()


@pytest.mark.parametrize("size", [0, 15, 100, ratchet._IN_PLACE_MIN, 196_700])
def test_decryption_set_up_early_is_what_decrypt_uses(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `prepare_receive`, the next in-order message (both of `open`'s paths) is read with
    no key derivation in `decrypt`; the set-up is used once; the state is that of `plain`."""
    plain, early = _seeded_pair(), _seeded_pair()
    plaintext = random.Random(size).randbytes(size)
    for sides in (plain, early):
        alice, bob = sides
        assert bob.decrypt(alice.encrypt(b"hello")) == b"hello"  # (the DH step)
        wires = [alice.encrypt(plaintext), alice.encrypt(plaintext)]
        if sides is early:
            bob.prepare_receive()
            prepared = bob._next_open
            bob.prepare_receive()  # a second call keeps the first set-up
            assert prepared is not None and bob._next_open is prepared
            derived: list[bytes] = []
            real = ratchet.kdf_ck
            monkeypatch.setattr(ratchet, "kdf_ck", lambda ck: derived.append(ck) or real(ck))
            assert bob.decrypt(wires[0]) == plaintext
            assert derived == []  # nothing derived while the message waited
            assert bob._next_open is None
            monkeypatch.undo()
            assert bob.decrypt(wires[1]) == plaintext  # not set up: derived as before
        else:
            assert [bob.decrypt(wire) for wire in wires] == [plaintext, plaintext]
    assert plain[1].to_state() == early[1].to_state()


def test_decryption_set_up_early_fails_like_decrypt_and_changes_nothing() -> None:
    """Every flipped bit of the message set up for fails, with the state unchanged; a message
    with another header (a later one) is read the general way; the genuine one still opens."""
    alice, bob = pair()
    assert bob.decrypt(alice.encrypt(b"first")) == b"first"
    second, third = alice.encrypt(b"second"), alice.encrypt(b"third")
    before = bob.to_state()
    for i in range(len(second)):
        tampered = bytearray(second)
        tampered[i] ^= 0x01
        bob.prepare_receive()
        with pytest.raises(CryptoFailure):
            bob.decrypt(bytes(tampered))
        assert bob.to_state() == before
    bob.prepare_receive()
    assert bob.decrypt(third) == b"third"  # not the one set up for: skips n = 1
    assert bob.decrypt(second) == b"second"  # its stored skipped key


def test_bad_padding_under_a_valid_tag_fails_the_set_up_decryption() -> None:
    """`_Open.open` checks PKCS#7 like `_open`: keys from the stdlib's HMAC and pyca's HKDF."""
    ckr, ad, header = os.urandom(32), b"ad", ratchet.encode_header(bytes(32), 0, 0)
    mk = hmac.digest(ckr, b"\x01", "sha256")
    okm = HKDF(hashes.SHA256(), 80, salt=bytes(32), info=ratchet.MESSAGE_INFO).derive(mk)
    enc_key, auth_key, iv = okm[:32], okm[32:64], okm[64:]
    for last_block, good in ((b"x" * 15 + b"\x01", True), (b"y" * 15 + b"\x00", False)):
        encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
        ct = encryptor.update(b"z" * 16 + last_block) + encryptor.finalize()
        message = header + ct + hmac.digest(auth_key, ad + header + ct, "sha256")
        opened = ratchet._Open(ckr, ad, header)
        assert opened.next_ckr == hmac.digest(ckr, b"\x02", "sha256")
        if good:
            assert opened.open(message) == b"z" * 16 + b"x" * 15
        else:
            with pytest.raises(CryptoFailure):
                opened.open(message)
