from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from didlink.profile.sealing import STORE_KEY_INFO, Sealer, store_key
from didlink.profile.store import DamagedStore
from identity.keys import IdentityKey
from messaging.ratchet import hkdf_sha256

KEY = IdentityKey(bytes(range(32)))


def test_store_key_is_hkdf_of_the_seed_with_its_own_label() -> None:
    # recomputed with the ratchet's independent HKDF (itself checked against RFC 5869)
    expected = hkdf_sha256(KEY.seed, salt=bytes(32), info=STORE_KEY_INFO, length=32)
    assert store_key(KEY) == expected
    assert store_key(KEY) != store_key(IdentityKey(bytes(32)))


def test_sealed_value_opens_with_aesgcm_directly() -> None:
    sealed = Sealer(KEY).seal(b"hello", context=b"outbox\x00id")
    assert AESGCM(store_key(KEY)).decrypt(sealed[:12], sealed[12:], b"outbox\x00id") == b"hello"
    assert b"hello" not in sealed


def test_round_trip_and_fresh_nonces() -> None:
    sealer = Sealer(KEY)
    one, two = sealer.seal(b"x", context=b"c"), sealer.seal(b"x", context=b"c")
    assert one != two
    assert sealer.open(one, context=b"c") == sealer.open(two, context=b"c") == b"x"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:-1],
        lambda b: b[:10],
        lambda b: bytes([b[0] ^ 1]) + b[1:],
        lambda b: b[:-1] + bytes([b[-1] ^ 0x80]),
    ],
)
def test_changed_values_do_not_open(mutate: object) -> None:
    sealed = Sealer(KEY).seal(b"secret", context=b"c")
    with pytest.raises(DamagedStore):
        Sealer(KEY).open(mutate(sealed), context=b"c")  # type: ignore[operator]


def test_moved_or_foreign_values_do_not_open() -> None:
    sealed = Sealer(KEY).seal(b"secret", context=b"outbox\x00a")
    with pytest.raises(DamagedStore):
        Sealer(KEY).open(sealed, context=b"outbox\x00b")
    with pytest.raises(DamagedStore):
        Sealer(IdentityKey(bytes(32))).open(sealed, context=b"outbox\x00a")
    assert "key" in repr(Sealer(KEY)) and KEY.seed.hex() not in repr(Sealer(KEY))
