"""The Noise HandshakeState (Noise spec rev 34, section 5.3), driven by a pattern table.

Theory of operation: `HandshakeState` is built from a protocol name, a role, a prologue and
whatever keys the pattern needs (own static `s`, peer static `rs`, psks; an ephemeral `e` may
be injected for known-answer tests, otherwise it is drawn from `rng`). Each call to
`write_message` / `read_message` consumes the next message pattern in order; the two sides
must alternate, starting with the initiator. After the last message, `finished` is True and
`split()` returns the two transport CipherStates. Any error (a failed decryption, a malformed
message, a call out of turn) leaves the object unusable: the handshake must be restarted.

Keys are raw 32-byte X25519 values (DH = X25519 from pyca/cryptography, section 12.1).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from messaging.errors import CryptoFailure, LocalProtocolError, MessagingError, RemoteProtocolError
from messaging.noise.cipher_state import TAG_SIZE, CipherState
from messaging.noise.patterns import parse_protocol_name
from messaging.noise.symmetric_state import SymmetricState

DHLEN = 32
PSK_SIZE = 32
MAX_MESSAGE_SIZE = 65535  # section 3


def x25519_public(private: bytes) -> bytes:
    """The X25519 public key of a 32-byte private key."""
    if len(private) != DHLEN:
        raise LocalProtocolError("an X25519 private key is 32 bytes")
    key = X25519PrivateKey.from_private_bytes(private)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def x25519_dh(private: bytes, public: bytes) -> bytes:
    """DH(key_pair, public_key); an all-zero result (low-order point) is a `CryptoFailure`."""
    try:
        peer = X25519PublicKey.from_public_bytes(public)
        return X25519PrivateKey.from_private_bytes(private).exchange(peer)
    except ValueError as exc:
        raise CryptoFailure() from exc


class KeyPair:
    """An X25519 key pair from its private bytes. The repr never shows the private key."""

    __slots__ = ("private", "public")

    def __init__(self, private: bytes) -> None:
        self.public = x25519_public(private)
        self.private = private

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public.hex()})"


class HandshakeState:
    """Section 5.3. Build one per handshake; see the module docstring."""

    def __init__(
        self,
        protocol_name: str,
        *,
        initiator: bool,
        prologue: bytes = b"",
        s: bytes | None = None,
        e: bytes | None = None,
        rs: bytes | None = None,
        re: bytes | None = None,
        psks: Sequence[bytes] = (),
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        protocol = parse_protocol_name(protocol_name)
        self.protocol = protocol
        self.initiator = initiator
        self._rng = rng
        self._s = KeyPair(s) if s is not None else None
        self._e = KeyPair(e) if e is not None else None
        self._rs = rs
        self._re = re
        for key in (rs, re):
            if key is not None and len(key) != DHLEN:
                raise LocalProtocolError("an X25519 public key is 32 bytes")
        self._psks = list(psks)
        pattern = protocol.pattern
        if len(self._psks) != pattern.psk_count or any(len(p) != PSK_SIZE for p in self._psks):
            raise LocalProtocolError(f"{pattern.name} needs {pattern.psk_count} psks of 32 bytes")
        self._is_psk = pattern.is_psk
        self._symmetric = SymmetricState(protocol_name.encode("ascii"), protocol.cipher)
        self._symmetric.mix_hash(prologue)
        self._pre_message(pattern.initiator_pre, from_initiator=True)
        self._pre_message(pattern.responder_pre, from_initiator=False)
        self._messages = list(pattern.messages)
        self._index = 0
        self._broken = False
        self._split: tuple[CipherState, CipherState] | None = None

    # -- pre-messages (section 7.1) -------------------------------------------------------

    def _pre_message(self, tokens: tuple[str, ...], *, from_initiator: bool) -> None:
        mine = from_initiator == self.initiator
        for symbol in tokens:
            if symbol == "s":
                key = self._s.public if mine and self._s else (None if mine else self._rs)
            elif symbol == "e":
                key = self._e.public if mine and self._e else (None if mine else self._re)
            else:
                raise LocalProtocolError(f"token {symbol!r} cannot be in a pre-message")
            if key is None:
                raise LocalProtocolError(f"pattern needs a pre-message {symbol!r} key")
            self._symmetric.mix_hash(key)
            if symbol == "e" and self._is_psk:
                self._symmetric.mix_key(key)

    # -- public state ---------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._split is not None

    @property
    def handshake_hash(self) -> bytes:
        """h: final once `finished`; both sides then hold the same value (section 11.2)."""
        return self._symmetric.get_handshake_hash()

    @property
    def remote_static(self) -> bytes | None:
        return self._rs

    @property
    def remote_ephemeral(self) -> bytes | None:
        return self._re

    @property
    def is_my_turn(self) -> bool:
        return (self._index % 2 == 0) == self.initiator

    def split(self) -> tuple[CipherState, CipherState]:
        """(initiator-to-responder, responder-to-initiator) transport cipher states."""
        if self._split is None:
            raise LocalProtocolError("the handshake has not finished")
        return self._split

    # -- messages -------------------------------------------------------------------------

    def _begin(self, *, writing: bool) -> tuple[str, ...]:
        if self._broken:
            raise LocalProtocolError("this handshake failed earlier and cannot be used")
        if self._split is not None:
            raise LocalProtocolError("the handshake has already finished")
        if self.is_my_turn != writing:
            verb = "write" if writing else "read"
            raise LocalProtocolError(f"it is not this side's turn to {verb} a message")
        return self._messages[self._index]

    def _dh_for(self, symbol: str) -> bytes:
        """The DH of a token: the first letter names the initiator's key, the second the
        responder's (section 5.3); each side uses its own private key and the peer's public."""
        local_letter, remote_letter = (
            (symbol[0], symbol[1]) if self.initiator else (symbol[1], symbol[0])
        )
        local = self._s if local_letter == "s" else self._e
        remote = self._rs if remote_letter == "s" else self._re
        if local is None or remote is None:
            raise LocalProtocolError(f"token {symbol!r} needs a key this side does not have")
        return x25519_dh(local.private, remote)

    def write_message(self, payload: bytes = b"") -> bytes:
        """WriteMessage(payload): the next handshake message (section 5.3)."""
        tokens = self._begin(writing=True)
        try:
            out = bytearray()
            for symbol in tokens:
                if symbol == "e":
                    if self._e is None:
                        self._e = KeyPair(self._rng(DHLEN))
                    out += self._e.public
                    self._symmetric.mix_hash(self._e.public)
                    if self._is_psk:
                        self._symmetric.mix_key(self._e.public)
                elif symbol == "s":
                    if self._s is None:
                        raise LocalProtocolError("this pattern needs a local static key")
                    out += self._symmetric.encrypt_and_hash(self._s.public)
                elif symbol == "psk":
                    self._symmetric.mix_key_and_hash(self._psks.pop(0))
                else:
                    self._symmetric.mix_key(self._dh_for(symbol))
            out += self._symmetric.encrypt_and_hash(payload)
            if len(out) > MAX_MESSAGE_SIZE:
                raise LocalProtocolError("a Noise message is at most 65535 bytes")
        except MessagingError:
            self._broken = True
            raise
        self._advance()
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        """ReadMessage(message): the payload; `CryptoFailure` if it does not authenticate."""
        tokens = self._begin(writing=False)
        try:
            if len(message) > MAX_MESSAGE_SIZE:
                raise RemoteProtocolError("a Noise message is at most 65535 bytes")
            view = memoryview(message)
            for symbol in tokens:
                if symbol == "e":
                    if len(view) < DHLEN:
                        raise RemoteProtocolError("handshake message too short")
                    self._re = bytes(view[:DHLEN])
                    view = view[DHLEN:]
                    self._symmetric.mix_hash(self._re)
                    if self._is_psk:
                        self._symmetric.mix_key(self._re)
                elif symbol == "s":
                    size = DHLEN + (TAG_SIZE if self._symmetric.cipher_state.has_key() else 0)
                    if len(view) < size:
                        raise RemoteProtocolError("handshake message too short")
                    self._rs = self._symmetric.decrypt_and_hash(bytes(view[:size]))
                    view = view[size:]
                elif symbol == "psk":
                    self._symmetric.mix_key_and_hash(self._psks.pop(0))
                else:
                    self._symmetric.mix_key(self._dh_for(symbol))
            if self._symmetric.cipher_state.has_key() and len(view) < TAG_SIZE:
                raise RemoteProtocolError("handshake message too short")
            payload = self._symmetric.decrypt_and_hash(bytes(view))
        except MessagingError:
            self._broken = True
            raise
        self._advance()
        return payload

    def _advance(self) -> None:
        self._index += 1
        if self._index == len(self._messages):
            self._split = self._symmetric.split()
