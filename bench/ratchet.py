"""Double Ratchet throughput: ours (messaging.ratchet) against the `DoubleRatchet` package.

Run: `python -m bench.ratchet [--iterations N] [--repeats R] [--json]`.

Measures encrypt+decrypt pairs per second of 100-byte messages in two shapes:
  one-way   the initiator sends, the responder decrypts each message (symmetric ratchet only)
  ping-pong the two sides alternate, so every message carries a new DH ratchet step
Ours and theirs run alternately in the same process, `repeats` times each; the median counts.
Both are configured identically (specs/session.md s.6), with X25519, HKDF-SHA256, HMAC chain
KDF and AES-256-CBC + HMAC-SHA256.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from doubleratchet import EncryptedMessage, Header
from doubleratchet import double_ratchet as dr_module
from doubleratchet.recommended import (
    HashFunction,
    aead_aes_hmac,
    diffie_hellman_ratchet_curve25519,
    kdf_hkdf,
    kdf_separate_hmacs,
)

from messaging.ratchet import MESSAGE_INFO, ROOT_INFO, RatchetSession

AD = b"bench session ad"
PAYLOAD = bytes(100)


class _RootKdf(kdf_hkdf.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return ROOT_INFO


class _ChainKdf(kdf_separate_hmacs.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256


class _Aead(aead_aes_hmac.AEAD):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return MESSAGE_INFO


class _Theirs(dr_module.DoubleRatchet):
    @staticmethod
    def _build_associated_data(associated_data: bytes, header: Header) -> bytes:
        pn, n = header.previous_sending_chain_length, header.sending_chain_length
        return associated_data + b"\x01" + header.ratchet_pub + struct.pack(">II", pn, n)


_CONFIG: dict[str, Any] = {
    "diffie_hellman_ratchet_class": diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet,
    "root_chain_kdf": _RootKdf,
    "message_chain_kdf": _ChainKdf,
    "message_chain_constant": b"\x02\x01",
    "dos_protection_threshold": 1000,
    "max_num_skipped_message_keys": 2000,
    "aead": _Aead,
}


def _keys() -> tuple[bytes, bytes, bytes]:
    bob = X25519PrivateKey.generate()
    return os.urandom(32), bob.private_bytes_raw(), bob.public_key().public_bytes_raw()


def ours(iterations: int, *, ping_pong: bool) -> float:
    """Seconds for `iterations` encrypt+decrypt pairs with `RatchetSession`."""
    seed, priv, pub = _keys()
    alice = RatchetSession.initiator(seed, pub, associated_data=AD)
    bob = RatchetSession.responder(seed, priv, associated_data=AD)
    bob.decrypt(alice.encrypt(PAYLOAD))
    sides = [(alice, bob), (bob, alice)]
    start = time.perf_counter()
    for i in range(iterations):
        sender, receiver = sides[i & 1] if ping_pong else sides[0]
        receiver.decrypt(sender.encrypt(PAYLOAD))
    return time.perf_counter() - start


async def _theirs(iterations: int, ping_pong: bool) -> float:
    seed, priv, pub = _keys()
    alice, first = await _Theirs.encrypt_initial_message(
        **_CONFIG,
        shared_secret=seed,
        recipient_ratchet_pub=pub,
        message=PAYLOAD,
        associated_data=AD,
    )
    bob, _ = await _Theirs.decrypt_initial_message(
        **_CONFIG, shared_secret=seed, own_ratchet_priv=priv, message=first, associated_data=AD
    )
    sides = [(alice, bob), (bob, alice)]
    start = time.perf_counter()
    for i in range(iterations):
        sender, receiver = sides[i & 1] if ping_pong else sides[0]
        message: EncryptedMessage = await sender.encrypt_message(PAYLOAD, AD)
        await receiver.decrypt_message(message, AD)
    return time.perf_counter() - start


def theirs(iterations: int, *, ping_pong: bool) -> float:
    """Seconds for `iterations` encrypt+decrypt pairs with the DoubleRatchet package."""
    return asyncio.run(_theirs(iterations, ping_pong))


def run(*, iterations: int = 2000, repeats: int = 5) -> dict[str, dict[str, float]]:
    """Median pairs/second for ours and theirs, one-way and ping-pong; plus the ratio."""
    results: dict[str, dict[str, float]] = {}
    for shape, ping_pong in (("one-way", False), ("ping-pong", True)):
        timings: dict[str, list[float]] = {"ours": [], "theirs": []}
        impls: dict[str, Callable[..., float]] = {"ours": ours, "theirs": theirs}
        for _ in range(repeats):
            for name, impl in impls.items():  # alternate, so drift hits both alike
                timings[name].append(impl(iterations, ping_pong=ping_pong))
        ours_rate = iterations / statistics.median(timings["ours"])
        theirs_rate = iterations / statistics.median(timings["theirs"])
        results[shape] = {
            "ours_pairs_per_s": round(ours_rate, 1),
            "theirs_pairs_per_s": round(theirs_rate, 1),
            "ratio": round(ours_rate / theirs_rate, 2),
        }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = run(iterations=args.iterations, repeats=args.repeats)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"Double Ratchet, 100-byte messages, {args.iterations} pairs x {args.repeats} (median)")
    for shape, row in results.items():
        print(
            f"  {shape:9}  ours {row['ours_pairs_per_s']:>10,.0f}/s   "
            f"DoubleRatchet {row['theirs_pairs_per_s']:>9,.0f}/s   x{row['ratio']}"
        )


if __name__ == "__main__":
    main()
