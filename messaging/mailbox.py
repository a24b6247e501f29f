"""The persistent session of a contact and the frames it carries by mailbox (specs/mailbox.md
§7-§10).

Theory of operation
-------------------
A first contact that completes (both users confirmed the SAS) leaves both sides with one
long-lived Double Ratchet session for that contact, independent of the live connection's:

    okm = HKDF-SHA256(ikm = ratchet_seed, salt = handshake_hash,
                      info = "didlink/v1 persistent session", L = 96)
    root = okm[0:32], responder_chain = okm[32:64], alias_root = okm[64:96]
    associated data = "didlink/v1 persistent session" || handshake_hash

The handshake's roles decide the Double Ratchet roles, as for the live channel
(`SecureChannel.from_handshake`): the responder holds the ratchet key pair (Bob), the initiator
knows its public key (Alice). A mailbox must let either side write first, and the responder of
a plain Double Ratchet cannot send before it has received; so the responder starts with a
sending chain `responder_chain` (its messages carry its ratchet public key, with pn = 0) and the
initiator starts with the same chain as its receiving chain for that key. The first message
the responder receives performs an ordinary DH ratchet step, after which the session is the
specification's. The responder's first chain has the symmetric ratchet's forward secrecy but
no DH of its own until the initiator writes (specs/mailbox.md §7).

`MailboxSession` is sans-IO: `seal(item)` returns one ratchet frame (the wrap's whole payload)
and changes the state; `open(frame)` returns the item, changing the state only if the frame
authenticated (a replayed or forged frame: `CryptoFailure`, nothing changed). The caller
persists `to_state()` before a sealed frame leaves (commit-then-send, didlink/mailbox/store.py).
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from identity import canonical
from messaging.alias import AliasPair, Direction, alias_pair
from messaging.channel import HandshakeOutput
from messaging.errors import CryptoFailure, LocalProtocolError, RemoteProtocolError
from messaging.frames import check_text
from messaging.padding import PaddingError, pad, unpad
from messaging.ratchet import RatchetSession
from messaging.ratchet_state import HexBytes, Key32, RatchetState

PERSISTENT_INFO = b"didlink/v1 persistent session"
MID_SIZE = 16
MAX_MAILBOX_TEXT_BYTES = 16 * 1024
"""A text sent by mailbox: its padded, encrypted frame must fit one wrap (24 KiB)."""
MAX_RECEIPT_MIDS = 256
MAX_FRAME_PLAINTEXT = 20 * 1024
MAX_TIME = 2**40  # seconds since the Unix epoch (year 36812)

Mid = Annotated[bytes, Field(min_length=MID_SIZE, max_length=MID_SIZE)]


class MailboxFrameError(RemoteProtocolError):
    """An authenticated mailbox frame is not well-formed."""


# --- frames (specs/mailbox.md §9) ---------------------------------------------------------


class _Item(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class MailboxText(_Item):
    """A text: its stable id (the outbox's `mid`), the sender's clock when it was typed (unix
    seconds), the text."""

    t: Literal["text"] = "text"
    mid: Mid
    at: int = Field(ge=0, le=MAX_TIME)
    text: str

    @field_validator("text")
    @classmethod
    def _limit(cls, value: str) -> str:
        return check_mailbox_text(value)


def check_mailbox_text(text: str) -> str:
    """`text` if a mailbox text can carry it (valid Unicode, at most 16 KiB of UTF-8);
    otherwise ValueError with a one-line sentence."""
    check_text(text)
    if len(text.encode("utf-8")) > MAX_MAILBOX_TEXT_BYTES:
        raise ValueError(
            f"a text sent by mailbox is at most {MAX_MAILBOX_TEXT_BYTES} bytes of UTF-8 "
            "(a longer one goes over a live chat)"
        )
    return text


class MailboxReceipt(_Item):
    """The receiver stored these texts: their `mid`s."""

    t: Literal["receipt"] = "receipt"
    mids: list[Mid] = Field(min_length=1, max_length=MAX_RECEIPT_MIDS)


MAX_RENDEZVOUS_TOKEN = 4096
"""A rendezvous item's token: at most a pasted token's length (identity/token.py)."""


class MailboxRendezvous(_Item):
    """A rendezvous message (specs/rendezvous.md): an offer (a signed reconnect invitation)
    or an answer (the signed response to one), as the `didlink:` token text a user would
    paste. The receiver verifies it exactly as a pasted token; this frame only carries it."""

    t: Literal["rendezvous"] = "rendezvous"
    token: str = Field(min_length=1, max_length=MAX_RENDEZVOUS_TOKEN)


MailboxItem = MailboxText | MailboxReceipt | MailboxRendezvous


def encode_item(item: MailboxItem) -> bytes:
    """The item as a canonical CBOR map."""
    return canonical.encode(item.model_dump())


def decode_item(data: bytes) -> MailboxItem:
    """The item of a canonical CBOR map; MailboxFrameError for anything else."""
    try:
        value = canonical.decode(data, max_size=MAX_FRAME_PLAINTEXT)
        if not isinstance(value, dict):
            raise MailboxFrameError("a mailbox frame is a map")
        kind = value.get("t")
        if kind == "text":
            return MailboxText.model_validate(value)
        if kind == "receipt":
            return MailboxReceipt.model_validate(value)
        if kind == "rendezvous":
            return MailboxRendezvous.model_validate(value)
    except (ValidationError, ValueError) as exc:
        raise MailboxFrameError("a mailbox frame is malformed") from exc
    raise MailboxFrameError("unknown mailbox frame type")


# --- the session ---------------------------------------------------------------------------


class SessionState(BaseModel):
    """A persistent session as stored (sealed): its role, alias root and ratchet state.

    `send_root`: the root key before the DH step of the current sending chain
    (`RatchetSession.send_root`), kept so that a copy of this state restored from a backup can
    take that step again with a fresh key. `restored`: this state came from a backup and has
    not yet taken that step (or received a DH step of the contact's). `fallback`: after that
    step, the state as restored, kept to open a contact who had already moved on from it
    (specs/backup.md, "Restored sessions"). States stored before these fields have none.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    initiator: bool
    alias_root: Key32
    handshake_hash: HexBytes
    ratchet: RatchetState
    send_root: Key32 | None = None
    restored: bool = False
    fallback: RatchetState | None = None


class RestoredSessionCannotSend(LocalProtocolError):
    """A session restored from a backup cannot send until the contact writes: it has no
    ratchet step of its own to take again (it never received a ratchet key from the contact,
    or it was stored before didlink kept the step's root)."""


def restored_state(state: SessionState) -> SessionState:
    """`state` (from a backup) as a restored session: before it sends anything it takes a
    fresh DH ratchet step (`MailboxSession.seal`). A `fallback` the state had (a backup of a
    profile that was itself restored) is dropped: keeping it would skip the fresh step, and
    the chain the state holds may be in use on the profile the backup was made from."""
    return state.model_copy(update={"restored": True, "fallback": None})


def _derive(result: HandshakeOutput) -> tuple[bytes, bytes, bytes]:
    okm = HKDF(
        algorithm=hashes.SHA256(), length=96, salt=result.handshake_hash, info=PERSISTENT_INFO
    ).derive(result.ratchet_seed)
    return okm[:32], okm[32:64], okm[64:]


def new_session_state(result: HandshakeOutput, *, rng: Any = os.urandom) -> SessionState:
    """The persistent session a finished first-contact handshake gives this side."""
    root, responder_chain, alias_root = _derive(result)
    ad = PERSISTENT_INFO + result.handshake_hash
    if result.own_ratchet_private is not None:  # the responder (Bob): its first sending chain
        ratchet = RatchetState(
            associated_data=ad,
            dhs_private=result.own_ratchet_private,
            dhr=None,
            rk=root,
            cks=responder_chain,
            ckr=None,
            ns=0,
            nr=0,
            pn=0,
            skipped=[],
        )
        initiator = False
    else:
        if result.peer_ratchet_public is None:
            raise LocalProtocolError("the handshake result has no ratchet key")
        alice = RatchetSession.initiator(
            root, result.peer_ratchet_public, associated_data=ad, rng=rng
        ).to_state()
        ratchet = alice.model_copy(update={"ckr": responder_chain})
        initiator = True
    return SessionState(
        initiator=initiator,
        alias_root=alias_root,
        handshake_hash=result.handshake_hash,
        ratchet=ratchet,
        send_root=root if initiator else None,
    )


class MailboxSession:
    """One side of a contact's persistent session, for the mailbox. Sans-IO; not thread-safe."""

    def __init__(self, state: SessionState, *, rng: Any = os.urandom) -> None:
        self.initiator = state.initiator
        self._alias_root = state.alias_root
        self._handshake_hash = state.handshake_hash
        self._rng = rng
        self._ratchet = RatchetSession.from_state(state.ratchet, rng=rng, send_root=state.send_root)
        self._restored = state.restored
        self._fallback = state.fallback if state.restored else None

    @property
    def restored(self) -> bool:
        """True while this session, restored from a backup, has not received a DH ratchet
        step from the contact: texts it sent may not open at a contact who had moved on."""
        return self._restored

    @property
    def can_send(self) -> bool:
        """False only for a restored session with no ratchet step to take again."""
        if not self._restored or self._fallback is not None:
            return True
        ratchet = self._ratchet
        return ratchet.send_root is not None and ratchet.peer_ratchet_public is not None

    @property
    def sending_direction(self) -> Direction:
        return "i2r" if self.initiator else "r2i"

    @property
    def receiving_direction(self) -> Direction:
        return "r2i" if self.initiator else "i2r"

    def sending_aliases(self, epoch: int) -> AliasPair:
        """The keys of a wrap we send at `epoch`: we sign its seal with `from_secret` and
        address it to `to_public`."""
        return alias_pair(self._alias_root, direction=self.sending_direction, epoch=epoch)

    def receiving_aliases(self, epoch: int) -> AliasPair:
        """The keys of a wrap the contact sends us at `epoch`."""
        return alias_pair(self._alias_root, direction=self.receiving_direction, epoch=epoch)

    def seal(self, item: MailboxItem) -> bytes:
        """One ratchet frame carrying `item` (padded, Padmé). Persist `to_state()` before it
        leaves.

        A restored session first takes its last DH ratchet step again with a fresh key pair
        (`RatchetSession.restart_sending`), keeping the state as restored in `fallback`: no
        message key of a chain the old device used is ever used here.
        RestoredSessionCannotSend if it has no such step."""
        if self._restored and self._fallback is None:
            if not self.can_send:
                raise RestoredSessionCannotSend(
                    "this conversation was restored from a backup: it continues once the "
                    "contact writes (or after a new first contact)"
                )
            self._fallback = self._ratchet.to_state()
            self._ratchet.restart_sending()
        return self._ratchet.encrypt(pad(encode_item(item)))

    def _decrypt(self, frame: bytes) -> bytes:
        """The ratchet's plaintext of `frame`. A restored session that took its step again
        (`seal`) also tries the state as restored, for a frame that begins a new DH step
        there: the contact had received the old device's last chain and answered it. If that
        opens, the restored state (whose pending sending half is a fresh key) becomes the
        session; the texts sealed since the restore never open at the contact."""
        peer_key = self._ratchet.peer_ratchet_public
        try:
            plaintext = self._ratchet.decrypt(frame)
        except CryptoFailure:
            fallback = self._fallback
            if fallback is None or frame[1:33] == fallback.dhr:
                raise  # (a frame of the chain both states share: never tried twice)
            old = RatchetSession.from_state(fallback, rng=self._rng)
            plaintext = old.decrypt(frame)  # CryptoFailure: nothing changed
            if old.peer_ratchet_public == fallback.dhr:
                # Opened without a DH step (a skipped key the fresh state already used: a
                # replay). Adopting `old` would bring back the old device's sending chain.
                raise CryptoFailure() from None
            self._ratchet, self._restored, self._fallback = old, False, None
            return plaintext
        if self._restored and self._ratchet.peer_ratchet_public != peer_key:
            self._restored, self._fallback = False, None  # the contact answered this state
        return plaintext

    def open(self, frame: bytes) -> MailboxItem:
        """The item of a frame from the contact: CryptoFailure (state unchanged) if it does not
        authenticate (forged, or a replay: its message key is gone), MailboxFrameError if it
        authenticated but is malformed (its message key is then spent)."""
        plaintext = self._decrypt(frame)
        try:
            return decode_item(unpad(plaintext))
        except PaddingError as exc:
            raise MailboxFrameError("a mailbox frame's padding is malformed") from exc

    def seal_bytes(self, plaintext: bytes) -> bytes:
        """One ratchet frame carrying `plaintext` (padded): for a frame whose item is not a
        mailbox item (a message request's first frame, messaging/message_request.py)."""
        return self._ratchet.encrypt(pad(plaintext))

    def open_bytes(self, frame: bytes) -> bytes:
        """The unpadded plaintext of a frame (as `open`, without reading the item)."""
        plaintext = self._ratchet.decrypt(frame)
        try:
            return unpad(plaintext)
        except PaddingError as exc:
            raise MailboxFrameError("a mailbox frame's padding is malformed") from exc

    def to_state(self) -> SessionState:
        return SessionState(
            initiator=self.initiator,
            alias_root=self._alias_root,
            handshake_hash=self._handshake_hash,
            ratchet=self._ratchet.to_state(),
            send_root=self._ratchet.send_root,
            restored=self._restored,
            fallback=self._fallback,
        )
