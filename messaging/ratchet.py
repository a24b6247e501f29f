"""The Double Ratchet session (Signal specification, revision 1; specs/session.md).

Theory of operation
-------------------
A `RatchetSession` is seeded by the handshake with a 32-byte secret `SK` and one ratchet key
pair: the initiator knows the responder's ratchet public key (spec `RatchetInitAlice`), the
responder holds the matching private key (spec `RatchetInitBob`). The responder therefore has
no sending chain until it has decrypted the initiator's first message: `can_send` says so and
`encrypt` raises `LocalProtocolError` before that.

Every message advances a symmetric chain (`KDF_CK`); every change of speaker performs a
Diffie-Hellman ratchet step (`KDF_RK` over a fresh X25519 exchange), which gives forward
secrecy and post-compromise recovery. The step has two halves: the receiving half (the new
receiving chain) is done by `decrypt`, which needs it; the sending half (a fresh key pair and
the new sending chain) is left pending and done by the next `encrypt`, or by `prepare_send`
when the caller has idle time, so that a message is readable one X25519 key generation and one
exchange sooner. Both halves run in the specification's order on the same values: the wire
messages, and every key, are exactly those of the eager step (spec section 3.5).
`prepare_send` also derives the next message's keys (KDF_CK, then ENCRYPT's HKDF) from the
current sending chain key and sets up its encryption (the AES context, the tag's HMAC over the
associated data and the header); `encrypt` uses them if that chain key is still current, so the
state and the bytes are those of deriving them when the message is encrypted.
`prepare_receive` does the same for the next in-order message of the receiving chain (its
header is known: the chain's key, its `pn`, `Nr`): the chain step, the message keys, the tag's
prefix and the AES context (`_Open`); `decrypt` uses them if that message is the one that
arrives, and commits the state only once it authenticated, as always.
Out-of-order messages are handled by storing skipped message keys (bounded by `MAX_SKIP` per
step and `MAX_STORED_SKIPPED` in total). Each message key is used once and then deleted, so a
replayed message fails.

Decryption never changes the state unless the message authenticates: the new values are
computed into locals and committed only after the MAC has been verified (spec section 3.5,
"if an exception is raised ... discard any changes to the state").

Crypto (spec section 5.2, recommended functions): X25519; KDF_RK = HKDF-SHA256(salt=RK,
ikm=DH output, info=ROOT_INFO) -> 64 bytes; KDF_CK = HMAC-SHA256(CK, 0x01) -> message key,
HMAC-SHA256(CK, 0x02) -> next chain key; ENCRYPT = AES-256-CBC (PKCS#7) then HMAC-SHA256 over
AD || ciphertext, with keys from HKDF-SHA256(mk, salt=32 zero bytes, info=MESSAGE_INFO, 80).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections import OrderedDict
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from messaging.errors import CryptoFailure, LocalProtocolError
from messaging.ratchet_state import RatchetState, SkippedKey

# --- constants (specs/session.md section 2) -----------------------------------------------

ROOT_INFO = b"didlink/v1 ratchet root"
MESSAGE_INFO = b"didlink/v1 ratchet message"
WIRE_VERSION = 1
HEADER_LEN = 41  # version (1) || dh (32) || pn (u32 BE) || n (u32 BE)
TAG_LEN = 32
BLOCK = 16
MAX_SKIP = 1000
MAX_STORED_SKIPPED = 2000
_HEADER = struct.Struct(">B32sII")
_ZERO_SALT = bytes(32)

Rng = Callable[[int], bytes]


# --- primitives ----------------------------------------------------------------------------


# HMAC-SHA256 (RFC 2104) on hashlib with the key pads computed by `bytes.translate`: the
# stdlib's one-shot `hmac.digest` pays an OpenSSL MAC set-up per call, which dominated the
# profile. Checked against `hmac`, pyca's HKDF and RFC 5869 in tests/test_ratchet.py.
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_ZERO32 = bytes(32)
_sha256 = hashlib.sha256


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The 64-byte inner and outer HMAC pads of `key` (RFC 2104 section 2)."""
    if len(key) > 64:
        key = _sha256(key).digest()
    key += bytes(64 - len(key))
    return key.translate(_IPAD), key.translate(_OPAD)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256(key, data)."""
    inner, outer = _hmac_pads(key)
    return _sha256(outer + _sha256(inner + data).digest()).digest()


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract, then expand to `length` bytes."""
    inner, outer = _hmac_pads(hmac_sha256(salt, ikm))
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = _sha256(outer + _sha256(inner + block + info + bytes([counter])).digest()).digest()
        out += block
        counter += 1
    return out[:length]


_ROOT_1 = ROOT_INFO + b"\x01"
_ROOT_2 = ROOT_INFO + b"\x02"


def kdf_rk(rk: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    """KDF_RK: returns (new root key, new chain key).

    HKDF-SHA256(dh_out, salt=rk, info=ROOT_INFO, 64) unrolled (every DH step runs it while a
    message waits): extract, then the two expand blocks; a test checks it against pyca's HKDF.
    """
    inner, outer = _hmac_pads(rk)
    prk = _sha256(outer + _sha256(inner + dh_out).digest()).digest()
    block = prk + _ZERO32
    inner, outer = block.translate(_IPAD), block.translate(_OPAD)
    t1 = _sha256(outer + _sha256(inner + _ROOT_1).digest()).digest()
    t2 = _sha256(outer + _sha256(inner + t1 + _ROOT_2).digest()).digest()
    return t1, t2


# The per-message functions below take only 32-byte keys (chain keys, message keys, HKDF PRKs,
# auth keys), whose zero-padded 64-byte HMAC key block is key || 32 zero bytes.


def kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    """KDF_CK: returns (next chain key = HMAC(ck, 0x02), message key = HMAC(ck, 0x01))."""
    block = ck + _ZERO32
    inner, outer = block.translate(_IPAD), block.translate(_OPAD)
    return (
        _sha256(outer + _sha256(inner + b"\x02").digest()).digest(),
        _sha256(outer + _sha256(inner + b"\x01").digest()).digest(),
    )


_ZERO_SALT_INNER, _ZERO_SALT_OUTER = _hmac_pads(_ZERO_SALT)
_EXPAND_1 = MESSAGE_INFO + b"\x01"
_EXPAND_2 = MESSAGE_INFO + b"\x02"
_EXPAND_3 = MESSAGE_INFO + b"\x03"


def _message_keys(mk: bytes) -> tuple[bytes, bytes, bytes]:
    """HKDF-SHA256(mk, salt=32 zero bytes, info=MESSAGE_INFO, 80) -> enc key, auth key, IV.

    `hkdf_sha256` unrolled for the hot path (constant salt pads, three expand blocks with
    their info || counter suffixes precomputed); a test checks it against pyca's HKDF.
    """
    prk = _sha256(_ZERO_SALT_OUTER + _sha256(_ZERO_SALT_INNER + mk).digest()).digest()
    block = prk + _ZERO32
    inner, outer = block.translate(_IPAD), block.translate(_OPAD)
    t1 = _sha256(outer + _sha256(inner + _EXPAND_1).digest()).digest()
    t2 = _sha256(outer + _sha256(inner + t1 + _EXPAND_2).digest()).digest()
    t3 = _sha256(outer + _sha256(inner + t2 + _EXPAND_3).digest()).digest()
    return t1, t2, t3[:16]


def _tag(auth_key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256(auth_key, data) for a 32-byte auth key."""
    block = auth_key + _ZERO32
    inner = _sha256(block.translate(_IPAD) + data).digest()
    return _sha256(block.translate(_OPAD) + inner).digest()


def _tag_begun(auth_key: bytes, prefix: bytes) -> tuple[hashlib._Hash, bytes]:
    """HMAC-SHA256 under a 32-byte auth key with `prefix` already hashed: (the inner hash, to
    be updated with the rest of the data, and the outer pad it is finished with)."""
    block = auth_key + _ZERO32
    return _sha256(block.translate(_IPAD) + prefix), block.translate(_OPAD)


def _tag_in_place(auth_key: bytes, ad: bytes, data: memoryview) -> bytes:
    """HMAC-SHA256(auth_key, ad || data) without copying `data` (a file frame: about 190 KiB)."""
    inner, outer_pad = _tag_begun(auth_key, ad)
    inner.update(data)
    return _sha256(outer_pad + inner.digest()).digest()


# AES-256-CBC contexts, one per message key. pyca's public `Cipher(...).encryptor()` re-checks
# its `AES256` and `CBC` arguments (ABC isinstance checks, IV length) and then calls the Rust
# constructor that `_direct_cbc` returns with the same two objects; that wrapper was ~40 % of
# the AES cost. Skipping its checks is safe: our keys are always 32 bytes and our IVs 16 (HKDF
# output slices). The constructor is internal to pyca, so it is used only if it exists and
# agrees with the public API on a known block; otherwise the public API is used.
_CipherFactory = Callable[[algorithms.AES256, modes.CBC], CipherContext]


def _public_encryptor(algorithm: algorithms.AES256, mode: modes.CBC) -> CipherContext:
    return Cipher(algorithm, mode).encryptor()


def _public_decryptor(algorithm: algorithms.AES256, mode: modes.CBC) -> CipherContext:
    return Cipher(algorithm, mode).decryptor()


def _direct_cbc() -> tuple[_CipherFactory, _CipherFactory] | None:
    """pyca's internal (encryption, decryption) context constructors, if they still work."""
    key, iv, blocks = bytes(range(32)), bytes(range(16)), bytes(range(48))
    try:
        from cryptography.hazmat.bindings._rust import openssl

        new_encryptor = openssl.ciphers.create_encryption_ctx
        new_decryptor = openssl.ciphers.create_decryption_ctx
        encryptor = new_encryptor(algorithms.AES256(key), modes.CBC(iv))
        ct = encryptor.update(blocks) + encryptor.finalize()
        decryptor = new_decryptor(algorithms.AES256(key), modes.CBC(iv))
        expected = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor().update(blocks)
        works = ct == expected and decryptor.update(ct) + decryptor.finalize() == blocks
    except Exception:  # any change in pyca's internals: fall back to the public API
        return None
    return (new_encryptor, new_decryptor) if works else None


_new_encryptor, _new_decryptor = _direct_cbc() or (_public_encryptor, _public_decryptor)

_PADDING = [bytes([n]) * n for n in range(BLOCK + 1)]  # PKCS#7 padding by length (1..16)
_IN_PLACE_MIN = 4096  # plaintext bytes from which `_seal` writes into one buffer


def aead_encrypt(mk: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """ENCRYPT(mk, plaintext, AD): AES-256-CBC ciphertext || HMAC-SHA256 tag (32 bytes)."""
    return _seal(mk, plaintext, ad, b"")


def aead_decrypt(mk: bytes, data: bytes, ad: bytes) -> bytes:
    """DECRYPT(mk, ciphertext, AD); any failure is an opaque `CryptoFailure`."""
    return _open(mk, data, ad, 0)


def _seal(mk: bytes, plaintext: bytes, ad: bytes, header: bytes) -> bytes:
    """header || ENCRYPT(mk, plaintext, ad || header)."""
    return _seal_now(_message_keys(mk), plaintext, ad, header)


def _seal_now(
    keys: tuple[bytes, bytes, bytes], plaintext: bytes, ad: bytes, header: bytes
) -> bytes:
    """`_Seal(keys, ad, header).seal(plaintext)`; a small plaintext without the `_Seal` object
    (its set-up only pays when it is done ahead, and a burst of texts encrypts one after the
    other)."""
    if len(plaintext) >= _IN_PLACE_MIN:
        return _Seal(keys, ad, header).seal(plaintext)
    enc_key, auth_key, iv = keys
    encryptor = _new_encryptor(algorithms.AES256(enc_key), modes.CBC(iv))
    sealed = header + encryptor.update(plaintext + _PADDING[BLOCK - len(plaintext) % BLOCK])
    return sealed + _tag(auth_key, ad + sealed)


class _Seal:
    """ENCRYPT under one message key, set up before the plaintext is known: the AES-CBC
    context, and the tag's HMAC with its inner pad, `AD` and the header already hashed.
    `prepare_send` builds the next message's in idle time (specs/session.md section 4); `seal`
    is then the AES and the hashing of the ciphertext. Used once: CBC's context and the HMAC
    carry state.

    A large plaintext (a file frame: about 190 KiB) is encrypted straight into the output buffer
    (`update_into`, the PKCS#7 padding as a second one-block update) and the tag hashes that
    buffer in place: one copy instead of five. A small one (a chat message) is quicker with
    plain concatenation. Both give the same bytes (tests/test_ratchet_fastpath.py).
    """

    __slots__ = ("_encryptor", "_inner", "_outer_pad", "header")

    def __init__(self, keys: tuple[bytes, bytes, bytes], ad: bytes, header: bytes) -> None:
        enc_key, auth_key, iv = keys
        self.header = header
        self._encryptor = _new_encryptor(algorithms.AES256(enc_key), modes.CBC(iv))
        self._inner, self._outer_pad = _tag_begun(auth_key, ad + header)

    def _tag(self, ciphertext: bytes | memoryview) -> bytes:
        self._inner.update(ciphertext)
        return _sha256(self._outer_pad + self._inner.digest()).digest()

    def seal(self, plaintext: bytes) -> bytes:
        """header || AES-256-CBC(plaintext) || tag."""
        encryptor, header = self._encryptor, self.header
        padding = _PADDING[BLOCK - len(plaintext) % BLOCK]
        if len(plaintext) < _IN_PLACE_MIN:
            ciphertext = encryptor.update(plaintext + padding)
            return header + ciphertext + self._tag(ciphertext)
        start = len(header)
        end = start + len(plaintext) + len(padding)
        out = bytearray(end + TAG_LEN + BLOCK - 1)  # update_into wants a block of slack
        out[:start] = header
        view = memoryview(out)
        written = encryptor.update_into(plaintext, view[start:])
        written += encryptor.update_into(padding, view[start + written :])
        if start + written != end:  # pragma: no cover - CBC writes whole blocks
            raise AssertionError("AES-CBC wrote an unexpected length")
        out[end : end + TAG_LEN] = self._tag(view[start:end])
        view.release()
        del out[end + TAG_LEN :]
        return bytes(out)


def _open(mk: bytes, sealed: bytes, ad: bytes, start: int) -> bytes:
    """DECRYPT of `sealed[start:]` with the associated data `ad || sealed[:start]` (the header
    is authenticated where it lies); any failure is an opaque `CryptoFailure`. A large frame
    is read through a memoryview (no copy before the tag check), a small one by slicing."""
    end = len(sealed) - TAG_LEN
    if end - start < BLOCK or (end - start) % BLOCK:
        raise CryptoFailure()
    enc_key, auth_key, iv = _message_keys(mk)
    if end < _IN_PLACE_MIN:
        body: bytes | memoryview = sealed[:end]
        expected = _tag(auth_key, ad + body)
    else:
        body = memoryview(sealed)[:end]
        expected = _tag_in_place(auth_key, ad, body)
    if not hmac.compare_digest(expected, sealed[end:]):
        raise CryptoFailure()
    decryptor = _new_decryptor(algorithms.AES256(enc_key), modes.CBC(iv))
    return _unpadded(decryptor.update(body[start:]) + decryptor.finalize())


def _unpadded(padded: bytes) -> bytes:
    """`padded` without its PKCS#7 padding; `CryptoFailure` if the padding is not valid."""
    pad = padded[-1]
    if not 1 <= pad <= BLOCK or padded[-pad:] != _PADDING[pad]:
        raise CryptoFailure()
    return padded[:-pad]


class _Open:
    """DECRYPT of the next in-order message of the receiving chain, set up before it arrives
    (specs/session.md section 4): the header it will have, the chain key after it, the tag's
    HMAC with its inner pad, `AD` and that header already hashed, and the AES-CBC context.
    `prepare_receive` builds it in idle time; `open` is then the tag over the ciphertext, the
    AES and the padding check. Used at most once (CBC's context carries state)."""

    __slots__ = ("_decryptor", "_inner", "_outer_pad", "ckr", "header", "next_ckr")

    def __init__(self, ckr: bytes, ad: bytes, header: bytes) -> None:
        self.ckr = ckr
        self.header = header
        self.next_ckr, mk = kdf_ck(ckr)
        enc_key, auth_key, iv = _message_keys(mk)
        self._inner, self._outer_pad = _tag_begun(auth_key, ad + header)
        self._decryptor = _new_decryptor(algorithms.AES256(enc_key), modes.CBC(iv))

    def open(self, message: bytes) -> bytes:
        """The plaintext of `message`, which begins with `header`; any failure is an opaque
        `CryptoFailure` (as `_open`'s)."""
        start, end = len(self.header), len(message) - TAG_LEN
        if end - start < BLOCK or (end - start) % BLOCK:
            raise CryptoFailure()
        body: bytes | memoryview = (
            message[start:end] if end < _IN_PLACE_MIN else memoryview(message)[start:end]
        )
        inner = self._inner
        inner.update(body)
        if not hmac.compare_digest(
            _sha256(self._outer_pad + inner.digest()).digest(), message[end:]
        ):
            raise CryptoFailure()
        decryptor = self._decryptor
        return _unpadded(decryptor.update(body) + decryptor.finalize())


def encode_header(dh: bytes, pn: int, n: int) -> bytes:
    """The 41-byte message header (specs/session.md section 3)."""
    return _HEADER.pack(WIRE_VERSION, dh, pn, n)


def _generate_dh(rng: Rng) -> X25519PrivateKey:
    """GENERATE_DH(): an X25519 private key from 32 bytes of `rng`."""
    raw = rng(32)
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise LocalProtocolError("the rng must return the number of bytes asked for")
    return X25519PrivateKey.from_private_bytes(raw)


def _public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def _sending_step(rk: bytes, dhr: bytes, rng: Rng) -> tuple[X25519PrivateKey, bytes, bytes, bytes]:
    """The sending half of DHRatchet: DHs = GENERATE_DH(); RK, CKs = KDF_RK(RK, DH(DHs, DHr)).

    Returns (DHs, its public key, RK, CKs). `dhr` already gave a non-zero exchange in the
    receiving half, so it is not of low order and this exchange cannot fail.
    """
    dhs = _generate_dh(rng)
    rk, cks = kdf_rk(rk, _dh(dhs, dhr))
    return dhs, _public_bytes(dhs), rk, cks


def _dh(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError as exc:  # all-zero output (low-order point) or bad length
        raise CryptoFailure() from exc


# --- the session ---------------------------------------------------------------------------


class RatchetSession:
    """One side of a Double Ratchet conversation. Not thread-safe; sans-IO."""

    def __init__(
        self,
        *,
        associated_data: bytes,
        dhs: X25519PrivateKey,
        dhr: bytes | None,
        rk: bytes,
        cks: bytes | None,
        ckr: bytes | None,
        ns: int = 0,
        nr: int = 0,
        pn: int = 0,
        skipped: OrderedDict[tuple[bytes, int], bytes] | None = None,
        rng: Rng = os.urandom,
        send_root: bytes | None = None,
    ) -> None:
        """Low-level constructor; use `initiator`, `responder` or `from_state`."""
        self._ad = associated_data
        self._dhs = dhs
        self._dhs_pub = _public_bytes(dhs)
        self._dhr = dhr
        self._rk = rk
        self._cks = cks
        self._ckr = ckr
        self._ns = ns
        self._nr = nr
        self._pn = pn
        self._skipped: OrderedDict[tuple[bytes, int], bytes] = skipped or OrderedDict()
        self._rng = rng
        # RK as it was before the DH step that made the current sending chain (see
        # `send_root`); None while the sending chain came from no DH step of ours.
        self._send_root = send_root
        # The sending half of the last DH ratchet step is still to do (see the module docstring).
        self._send_step_due = False
        # From `prepare_send`: (CKs it was derived from, next CKs, the next message's `_Seal`).
        self._next_seal: tuple[bytes, bytes, _Seal] | None = None
        # The `pn` that the messages of the current receiving chain carry (None: not known
        # since construction), and from `prepare_receive` the next message's `_Open`.
        self._pn_r: int | None = None
        self._next_open: _Open | None = None

    # -- construction (spec section 3.3) --

    @classmethod
    def initiator(
        cls,
        seed: bytes,
        peer_ratchet_public: bytes,
        *,
        associated_data: bytes,
        rng: Rng = os.urandom,
    ) -> RatchetSession:
        """RatchetInitAlice(SK=seed, bob_dh_public_key=peer_ratchet_public)."""
        _check_len("seed", seed)
        _check_len("peer ratchet public key", peer_ratchet_public)
        dhs = _generate_dh(rng)
        try:
            peer = X25519PublicKey.from_public_bytes(peer_ratchet_public)
            rk, cks = kdf_rk(seed, dhs.exchange(peer))
        except ValueError as exc:
            raise LocalProtocolError("the peer ratchet public key is not usable") from exc
        return cls(
            associated_data=associated_data,
            dhs=dhs,
            dhr=peer_ratchet_public,
            rk=rk,
            cks=cks,
            ckr=None,
            rng=rng,
            send_root=seed,
        )

    @classmethod
    def responder(
        cls,
        seed: bytes,
        own_ratchet_private: bytes,
        *,
        associated_data: bytes,
        rng: Rng = os.urandom,
    ) -> RatchetSession:
        """RatchetInitBob(SK=seed, bob_dh_key_pair=own_ratchet_private)."""
        _check_len("seed", seed)
        _check_len("own ratchet private key", own_ratchet_private)
        return cls(
            associated_data=associated_data,
            dhs=X25519PrivateKey.from_private_bytes(own_ratchet_private),
            dhr=None,
            rk=seed,
            cks=None,
            ckr=None,
            rng=rng,
        )

    @property
    def can_send(self) -> bool:
        """False only for a responder that has not yet decrypted a message."""
        return self._cks is not None or self._send_step_due

    @property
    def ratchet_key_unsent(self) -> bool:
        """True while no message has carried our newest ratchet public key: a sending half is
        pending, or it was done and its chain has sent nothing yet (specs/frames.md 4a)."""
        return self._send_step_due or (self._cks is not None and self._ns == 0)

    def prepare_send(self) -> None:
        """Do now what the next `encrypt` would do first: the pending sending half of a DH
        ratchet step, if any, the next message's key derivation, and the set-up of its AES
        context and tag (`_Seal`). For idle time, after a received message was handled."""
        if self._send_step_due:
            assert self._dhr is not None  # a pending half always follows a receiving half
            self._send_root = self._rk
            self._dhs, self._dhs_pub, self._rk, self._cks = _sending_step(
                self._rk, self._dhr, self._rng
            )
            self._send_step_due = False
        cks = self._cks
        if cks is not None and (self._next_seal is None or self._next_seal[0] != cks):
            next_cks, mk = kdf_ck(cks)
            seal = _Seal(_message_keys(mk), self._ad, self._header())
            self._next_seal = (cks, next_cks, seal)

    def prepare_receive(self) -> None:
        """Set up, for idle time, the decryption of the next in-order message of the current
        receiving chain (its header, chain key, message keys, tag prefix and AES context):
        `decrypt` uses it if that message is the next to arrive, else derives its own."""
        ckr, dhr, pn = self._ckr, self._dhr, self._pn_r
        if ckr is None or dhr is None or pn is None:
            return
        prepared = self._next_open
        if prepared is None or prepared.ckr != ckr:
            self._next_open = _Open(ckr, self._ad, encode_header(dhr, pn, self._nr))

    @property
    def peer_ratchet_public(self) -> bytes | None:
        """The peer's current ratchet public key (DHr), None before one is known."""
        return self._dhr

    @property
    def send_root(self) -> bytes | None:
        """RK as it was before the DH ratchet step of our current sending chain (or is, while
        that step's sending half is pending): what `restart_sending` steps from. None when the
        current sending chain came from no DH step of ours (a responder that has not received;
        the mailbox responder's first chain, messaging/mailbox.py)."""
        return self._rk if self._send_step_due else self._send_root

    def restart_sending(self) -> None:
        """Replace the current sending chain by a new one from a fresh ratchet key pair: the
        sending half of the last DH ratchet step done again, from `send_root`, with a new key
        (specs/backup.md, "Restored sessions"). For a state restored from a backup: the old
        device may already have used every key of the stored sending chain, and no key of the
        new chain derives from it. `pn` stays (the chain before the abandoned one); the
        receiving chain and skipped keys are unchanged. A peer that has not received from the
        abandoned chain opens the new one as an ordinary DH ratchet step. LocalProtocolError if
        there is no step to do again (no `send_root`, or no peer ratchet key yet)."""
        root, dhr = self.send_root, self._dhr
        if root is None or dhr is None:
            raise LocalProtocolError("this session has no ratchet step to take again")
        self._dhs, self._dhs_pub, self._rk, self._cks = _sending_step(root, dhr, self._rng)
        self._send_root, self._send_step_due, self._ns, self._next_seal = root, False, 0, None

    @property
    def skipped_key_count(self) -> int:
        """How many skipped message keys are stored (for tests and diagnostics)."""
        return len(self._skipped)

    # -- encrypt (spec section 3.4) --

    def encrypt(self, plaintext: bytes) -> bytes:
        """RatchetEncrypt: returns the wire message header || ciphertext || tag."""
        if self._send_step_due:
            self.prepare_send()
        if self._cks is None:
            raise LocalProtocolError(
                "the responder cannot send before it has received the initiator's first message"
            )
        if self._ns >= 2**32 - 1:
            raise LocalProtocolError("the sending chain is exhausted")
        header = self._header()
        self._ns += 1
        prepared, self._next_seal = self._next_seal, None
        if prepared is not None and prepared[0] == self._cks and prepared[2].header == header:
            _, self._cks, seal = prepared  # set up by `prepare_send` from this very CKs
            return seal.seal(plaintext)
        self._cks, mk = kdf_ck(self._cks)
        return _seal_now(_message_keys(mk), plaintext, self._ad, header)

    def _header(self) -> bytes:
        """The header of the next message of the current sending chain."""
        return _HEADER.pack(WIRE_VERSION, self._dhs_pub, self._pn, self._ns)

    # -- decrypt (spec section 3.5) --

    def decrypt(self, message: bytes) -> bytes:
        """RatchetDecrypt. Raises `CryptoFailure` (state unchanged) for anything that fails."""
        if len(message) < HEADER_LEN + BLOCK + TAG_LEN:
            raise CryptoFailure()
        version, dh, pn, n = _HEADER.unpack_from(message)
        if version != WIRE_VERSION:
            raise CryptoFailure()
        ad = self._ad  # with the header, which `_open` authenticates in place

        if self._skipped:  # (an empty store is the common case: skip building the key)
            mk = self._skipped.get((dh, n))
            if mk is not None:
                plaintext = _open(mk, message, ad, HEADER_LEN)
                del self._skipped[(dh, n)]
                return plaintext

        ckr = self._ckr
        if dh == self._dhr and n == self._nr and ckr is not None:
            # The next in-order message of the current receiving chain: the general path below
            # would do no DH step and skip nothing, so only CKr and Nr change (after the MAC).
            prepared, self._next_open = self._next_open, None
            if prepared is not None and prepared.ckr == ckr and message.startswith(prepared.header):
                plaintext = prepared.open(message)  # set up by `prepare_receive` for this one
                self._ckr, self._nr = prepared.next_ckr, n + 1
                return plaintext
            next_ckr, mk = kdf_ck(ckr)
            plaintext = _open(mk, message, ad, HEADER_LEN)
            self._ckr, self._nr, self._pn_r = next_ckr, n + 1, pn
            return plaintext

        # Work on locals; commit only after the message authenticated.
        rk, dhs, dhs_pub, dhr = self._rk, self._dhs, self._dhs_pub, self._dhr
        cks, ckr, ns, nr, pn_own = self._cks, self._ckr, self._ns, self._nr, self._pn
        send_step_due, send_root = self._send_step_due, self._send_root
        new_skipped: list[tuple[tuple[bytes, int], bytes]] = []
        if dh != dhr:
            if ckr is not None and dhr is not None:
                if pn - nr > MAX_SKIP:
                    raise CryptoFailure()
                while nr < pn:
                    ckr, skipped_mk = kdf_ck(ckr)
                    new_skipped.append(((dhr, nr), skipped_mk))
                    nr += 1
            if send_step_due:  # the previous step's sending half comes first, as in the spec
                assert dhr is not None  # a pending half always follows a receiving half
                send_root = rk
                dhs, dhs_pub, rk, cks = _sending_step(rk, dhr, self._rng)
            pn_own, ns, nr, dhr = ns, 0, 0, dh
            rk, ckr = kdf_rk(rk, _dh(dhs, dhr))
            send_step_due = True  # the sending half: `prepare_send` or the next `encrypt`
        if ckr is None or n < nr or n - nr > MAX_SKIP:
            raise CryptoFailure()  # replay / too old (key gone) or too far ahead
        while nr < n:
            ckr, skipped_mk = kdf_ck(ckr)
            new_skipped.append(((dh, nr), skipped_mk))
            nr += 1
        ckr, mk = kdf_ck(ckr)
        plaintext = _open(mk, message, ad, HEADER_LEN)

        self._rk, self._dhs, self._dhs_pub, self._dhr = rk, dhs, dhs_pub, dhr
        self._cks, self._ckr, self._ns, self._nr, self._pn = cks, ckr, ns, nr + 1, pn_own
        self._send_step_due, self._pn_r, self._next_open = send_step_due, pn, None
        self._send_root = send_root
        if new_skipped:
            self._skipped.update(new_skipped)
            while len(self._skipped) > MAX_STORED_SKIPPED:
                self._skipped.popitem(last=False)  # evict the oldest first
        return plaintext

    # -- persistence (specs/session.md section 5) --

    def to_state(self) -> RatchetState:
        """Snapshot every state variable into a versioned, serialisable model.

        A pending sending half is done first (`prepare_send`): the snapshot holds the state of
        the specification, which has no pending half.
        """
        self.prepare_send()
        return RatchetState(
            associated_data=self._ad,
            dhs_private=self._dhs.private_bytes_raw(),
            dhr=self._dhr,
            rk=self._rk,
            cks=self._cks,
            ckr=self._ckr,
            ns=self._ns,
            nr=self._nr,
            pn=self._pn,
            skipped=[SkippedKey(dh=dh, n=n, mk=mk) for (dh, n), mk in self._skipped.items()],
        )

    @classmethod
    def from_state(
        cls, state: RatchetState, *, rng: Rng = os.urandom, send_root: bytes | None = None
    ) -> RatchetSession:
        """Rebuild a session from `to_state()` output (and `send_root`, kept beside it by
        whoever needs `restart_sending`)."""
        return cls(
            associated_data=state.associated_data,
            dhs=X25519PrivateKey.from_private_bytes(state.dhs_private),
            dhr=state.dhr,
            rk=state.rk,
            cks=state.cks,
            ckr=state.ckr,
            ns=state.ns,
            nr=state.nr,
            pn=state.pn,
            skipped=OrderedDict(((k.dh, k.n), k.mk) for k in state.skipped),
            rng=rng,
            send_root=send_root,
        )


def _check_len(what: str, value: bytes) -> None:
    if len(value) != 32:
        raise LocalProtocolError(f"the {what} must be 32 bytes, not {len(value)}")


__all__ = [
    "MAX_SKIP",
    "MAX_STORED_SKIPPED",
    "MESSAGE_INFO",
    "ROOT_INFO",
    "RatchetSession",
    "encode_header",
]
