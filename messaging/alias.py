"""Pairwise alias keys: the secp256k1 keys a mailbox wrap is sealed from and addressed to
(specs/mailbox.md §8).

A relay sees only alias keys, never a DID. Each contact's persistent session holds a 32-byte
`alias_root` (derived from the first-contact handshake with its own label,
messaging/mailbox.py), from which both sides derive, for a direction and an epoch:

    secret(purpose, direction, epoch) =
        the first HKDF-SHA256(ikm = alias_root, salt = none,
                              info = "didlink/v1 alias" || 0x00 || purpose || 0x00 ||
                                     direction || u32 BE epoch || u8 counter, L = 32)
        with counter = 0, 1, ... whose value, read big-endian, is in 1..n-1 (secp256k1's order)

- purpose `to` is the recipient key (the wrap's `p` tag; the receiver opens wraps with it),
  purpose `from` the key the seal is signed by (the receiver checks it: the wrap came from this
  contact, in this direction, for this epoch);
- direction `i2r` carries what the first contact's initiator sends, `r2i` what the responder
  sends: a side's sending and receiving keys differ;
- epoch = floor(unix time / EPOCH_SECONDS): the keys rotate every 7 days (the sender uses its
  clock's epoch; the receiver listens on every epoch a wrap still alive may use).

Both sides can compute all four keys of a contact; the two contacts of one person share no key
(each alias root comes from a different handshake). Sans-IO: pyca/cryptography for the curve.

Reach keys (specs/invitation.md §2 key 10, specs/mailbox.md): where sealed replies to one's own
invitations are addressed, derived from the identity seed and never stored:

    reach_secret(seed, context) =
        the first HKDF-SHA256(ikm = the 32-byte Ed25519 seed, salt = empty,
                              info = "didlink/v1 reach" || 0x00 || context || u8 counter, L = 32)
        with counter = 0, 1, ... whose value is in 1..n-1

with context = the invitation's 16-byte id (live and reconnect invitations: one key each) or the
4 bytes "card" (every card of an identity: its one request key).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from messaging.errors import LocalProtocolError

ALIAS_INFO = b"didlink/v1 alias"
REACH_INFO = b"didlink/v1 reach"
CARD_REACH_CONTEXT = b"card"
EPOCH_SECONDS = 7 * 24 * 3600
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_EPOCH = 2**32 - 1

Direction = Literal["i2r", "r2i"]
Purpose = Literal["to", "from"]


def epoch_at(unix_time: float) -> int:
    """The alias epoch of a time (seconds since the Unix epoch)."""
    return min(max(int(unix_time // EPOCH_SECONDS), 0), MAX_EPOCH)


def alias_secret(alias_root: bytes, *, purpose: Purpose, direction: Direction, epoch: int) -> bytes:
    """The 32-byte secp256k1 secret of one alias key (see the module docstring)."""
    if len(alias_root) != 32:
        raise LocalProtocolError("an alias root is 32 bytes")
    if purpose not in ("to", "from") or direction not in ("i2r", "r2i"):
        raise LocalProtocolError("unknown alias purpose or direction")
    if not 0 <= epoch <= MAX_EPOCH:
        raise LocalProtocolError("an alias epoch is a u32")
    return _scalar(
        alias_root,
        ALIAS_INFO
        + b"\x00"
        + purpose.encode()
        + b"\x00"
        + direction.encode()
        + struct.pack(">I", epoch),
    )


def reach_secret(identity_seed: bytes, context: bytes) -> bytes:
    """The 32-byte secp256k1 secret of a reach key (see the module docstring): `context` is an
    invitation's 16-byte id or `CARD_REACH_CONTEXT`."""
    if len(identity_seed) != 32:
        raise LocalProtocolError("an identity seed is 32 bytes")
    if len(context) != 16 and context != CARD_REACH_CONTEXT:
        raise LocalProtocolError("a reach context is an invitation id (16 bytes) or b'card'")
    return _scalar(identity_seed, REACH_INFO + b"\x00" + context)


def _scalar(ikm: bytes, prefix: bytes) -> bytes:
    """The first HKDF-SHA256(ikm, no salt, prefix || counter) that is a secp256k1 scalar."""
    for counter in range(256):
        candidate = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=prefix + bytes([counter])
        ).derive(ikm)
        if 0 < int.from_bytes(candidate, "big") < SECP256K1_ORDER:
            return candidate
    raise AssertionError("no valid scalar in 256 tries")  # pragma: no cover - p < 2^-32000


def alias_public(secret: bytes) -> bytes:
    """The BIP-340 x-only public key (32 bytes) of an alias secret."""
    scalar = int.from_bytes(secret, "big")
    if len(secret) != 32 or not 0 < scalar < SECP256K1_ORDER:
        raise LocalProtocolError("an alias secret is a secp256k1 scalar in 1..n-1")
    # libsecp256k1 (coincurve): about 0.05 ms, where pyca/OpenSSL's generic curve code took
    # about 0.6 ms, paid twice in the first send of every process (tests: pyca as the oracle).
    import coincurve  # lazy: only the mailbox needs it

    public: bytes = coincurve.PublicKeyXOnly.from_secret(secret).format()
    return public


@dataclass(frozen=True, slots=True)
class AliasPair:
    """The two keys of one direction and epoch: the seal's signer and the wrap's addressee."""

    direction: Direction
    epoch: int
    from_secret: bytes
    from_public: bytes
    to_secret: bytes
    to_public: bytes


@functools.lru_cache(maxsize=256)
def alias_pair(alias_root: bytes, *, direction: Direction, epoch: int) -> AliasPair:
    """Both alias keys of `direction` at `epoch` (remembered: a public key costs a scalar
    multiplication, and every wrap sent or listened for needs a pair)."""
    from_secret = alias_secret(alias_root, purpose="from", direction=direction, epoch=epoch)
    to_secret = alias_secret(alias_root, purpose="to", direction=direction, epoch=epoch)
    return AliasPair(
        direction=direction,
        epoch=epoch,
        from_secret=from_secret,
        from_public=alias_public(from_secret),
        to_secret=to_secret,
        to_public=alias_public(to_secret),
    )


def listening_epochs(now: float, *, since: float, max_age: float) -> range:
    """The epochs a receiver listens on at `now`: every epoch from its last fetch (`since`, but
    no further back than `max_age`, a wrap's longest life) through the next one (a sender whose
    clock runs ahead across a boundary). Always includes the current and the previous epoch."""
    oldest = max(since, now - max_age)
    first = min(epoch_at(oldest), max(epoch_at(now) - 1, 0))
    return range(first, min(epoch_at(now) + 1, MAX_EPOCH) + 1)
