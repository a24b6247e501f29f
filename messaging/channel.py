"""A sans-IO secure channel: application messages in, encrypted frames out, and back
(specs/frames.md s.5).

Theory of operation
-------------------
The channel owns one `RatchetSession`. `send(message)` gives the message the next per-sender
sequence number (its id) and queues it (`send_text` does the same for a chat text without
building its model); `data_to_send()` coalesces the queue into as few frames
as fit `max_frame_plaintext`, pads each (Padmé) and encrypts it. The initiator's first message
is always `Hello` (seq 0), because the responder's ratchet cannot encrypt before it has
decrypted something; until then the responder's `data_to_send()` keeps its queue.

`receive(frame)` decrypts one frame and returns events. Messages are delivered in sequence
order, exactly once: a message ahead of a gap waits in a bounded buffer (`reorder_window`),
a message whose seq was already delivered (a duplicate, or a retransmission the application
made with `resend`) is dropped, and a copy of a recently read frame (same ratchet header and
tag) is dropped before decryption. When a gap opens, `MessagesMissing` names the seqs not yet
seen; the application may have the peer `resend` them or call `skip_missing()` to give up on
them (`MessagesLost`) and release what waits behind them.

States: OPEN -> CLOSED (we sent or received Close) and any -> FAILED (the peer sent an
authenticated frame that breaks the protocol; sticky). A frame that fails authentication
raises `CryptoFailure` and changes nothing, so the channel stays usable and the caller
decides whether to close.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from messaging import frames
from messaging.errors import LocalProtocolError, RemoteProtocolError
from messaging.frames import Close, Envelope, Hello, Message, Receipt
from messaging.padding import padding_for, padme, unpad
from messaging.ratchet import HEADER_LEN, TAG_LEN, RatchetSession
from messaging.ratchet_state import HexBytes, RatchetState

DEFAULT_REORDER_WINDOW = 1024
RECENT_FRAMES = 256


class ChannelState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


# --- events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HelloReceived:
    """The initiator's Hello arrived (the responder can now send)."""

    seq: int


@dataclass(frozen=True)
class MessageReceived:
    """An application message (Text, FileOffer, FileChunk, FileAck), delivered in order."""

    seq: int
    message: Message


@dataclass(frozen=True)
class ReceiptReceived:
    """The peer confirms delivery of our messages with these seqs."""

    seq: int
    ids: tuple[int, ...]


@dataclass(frozen=True)
class CloseReceived:
    """The peer closed the channel."""

    seq: int
    reason: str


@dataclass(frozen=True)
class MessagesMissing:
    """Seqs newly noticed as missing: later messages arrived before them."""

    seqs: tuple[int, ...]


@dataclass(frozen=True)
class MessagesLost:
    """Seqs the application gave up on with `skip_missing()`."""

    seqs: tuple[int, ...]


Event = (
    HelloReceived
    | MessageReceived
    | ReceiptReceived
    | CloseReceived
    | MessagesMissing
    | MessagesLost
)


class ChannelFailed(LocalProtocolError):
    """The channel failed earlier (the peer broke the protocol) and cannot be used."""

    def __init__(self) -> None:
        super().__init__("the secure channel failed earlier and must be discarded")


# --- persistence (specs/frames.md s.7) -----------------------------------------------------


class ChannelSnapshot(BaseModel):
    """Everything a channel needs to continue after a restart (holds the ratchet secrets)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    initiator: bool
    state: Literal["open", "closed", "failed"]
    session: RatchetState
    next_send: int = Field(ge=0, le=frames.MAX_SEQ)
    next_recv: int = Field(ge=0, le=frames.MAX_SEQ)
    queued: list[HexBytes]  # encoded envelopes not yet sent, in order
    buffered: list[HexBytes]  # encoded envelopes received ahead of a gap


def _decode_envelope(encoded: bytes) -> Envelope:
    [envelope] = frames.decode_frame(frames.join_frame([encoded]))
    return envelope


# --- the channel ---------------------------------------------------------------------------


class HandshakeOutput(Protocol):
    """What `SecureChannel.from_handshake` needs (messaging.handshake.HandshakeResult has it)."""

    @property
    def handshake_hash(self) -> bytes: ...
    @property
    def ratchet_seed(self) -> bytes: ...
    @property
    def peer_ratchet_public(self) -> bytes | None: ...
    @property
    def own_ratchet_private(self) -> bytes | None: ...


class SecureChannel:
    """One side of an encrypted, ordered, exactly-once message channel. Sans-IO."""

    def __init__(
        self,
        session: RatchetSession,
        *,
        initiator: bool,
        max_frame_plaintext: int = frames.MAX_FRAME_PLAINTEXT,
        reorder_window: int = DEFAULT_REORDER_WINDOW,
    ) -> None:
        if not 64 <= max_frame_plaintext <= frames.MAX_FRAME_PLAINTEXT:
            raise LocalProtocolError("max_frame_plaintext is out of range")
        self.session = session
        self.state = ChannelState.OPEN
        self._max_frame = max_frame_plaintext
        self._window = reorder_window
        self._next_send = 0
        self._queue: list[tuple[int, bytes]] = []  # (seq, encoded envelope)
        self._next_recv = 0
        self._buffer: dict[int, Message] = {}
        self._reported_missing: set[int] = set()
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        # A frame with messages was read since we last sent one (`key_announcement`).
        self._announcement_due = False
        self._initiator = initiator
        if initiator:
            self._enqueue(self._next_send, Hello())
            self._next_send += 1

    @classmethod
    def from_handshake(
        cls, result: HandshakeOutput, *, max_frame_plaintext: int = frames.MAX_FRAME_PLAINTEXT
    ) -> SecureChannel:
        """The channel for a finished handshake (specs/session.md s.1): the session's associated
        data is the handshake hash; the responder (it holds the ratchet private key) is Bob."""
        if result.own_ratchet_private is not None:
            session = RatchetSession.responder(
                result.ratchet_seed,
                result.own_ratchet_private,
                associated_data=result.handshake_hash,
            )
            return cls(session, initiator=False, max_frame_plaintext=max_frame_plaintext)
        if result.peer_ratchet_public is None:
            raise LocalProtocolError("the handshake result has no ratchet key")
        session = RatchetSession.initiator(
            result.ratchet_seed, result.peer_ratchet_public, associated_data=result.handshake_hash
        )
        return cls(session, initiator=True, max_frame_plaintext=max_frame_plaintext)

    # -- sending --

    @property
    def next_seq(self) -> int:
        """The seq the next `send` will use."""
        return self._next_send

    def send(self, message: Message) -> int:
        """Queue an application message; returns its seq (its id, for receipts and resends)."""
        self._check_open()
        if isinstance(message, Hello):
            raise LocalProtocolError("Hello is sent by the channel itself")
        seq = self._next_send
        self._enqueue(seq, message)
        self._next_send += 1
        if isinstance(message, Close):
            self.state = ChannelState.CLOSED
        return seq

    def send_text(self, text: str, *, mid: bytes, new: bool = False, at: int | None = None) -> int:
        """`send(Text(text=text, mid=mid, new=True if new else absent, at=at or absent))`, the
        same envelope, without building the model (a chat message's hot path); ValueError for
        what `Text` refuses."""
        self._check_open()
        seq = self._next_send
        encoded = frames.encode_text_envelope(seq, text, mid=mid, new=new, at=at)
        self._enqueue_encoded(seq, encoded)
        self._next_send += 1
        return seq

    def _check_open(self) -> None:
        """Refuse a new message once the channel failed or was closed."""
        self._check_usable()
        if self.state is ChannelState.CLOSED:
            raise LocalProtocolError("the channel is closed")

    def close(self, reason: str = "") -> int:
        """Queue a Close message; the channel accepts no more sends."""
        return self.send(Close(reason=reason))

    def resend(self, seq: int, message: Message) -> None:
        """Queue an earlier message again under its original seq (the peer drops duplicates)."""
        self._check_usable()
        if not 0 <= seq < self._next_send:
            raise LocalProtocolError("only a message that was sent before can be resent")
        self._enqueue(seq, message)

    def _enqueue(self, seq: int, message: Message) -> None:
        self._enqueue_encoded(seq, frames.encode_envelope(Envelope(seq=seq, message=message)))

    def _enqueue_encoded(self, seq: int, encoded: bytes) -> None:
        if frames.frame_size(1, len(encoded)) > self._max_frame:
            raise LocalProtocolError("the message does not fit in one frame")
        self._queue.append((seq, encoded))

    def data_to_send(self) -> list[bytes]:
        """Encrypted frames for everything queued (empty while the responder cannot send)."""
        if self.state is ChannelState.FAILED or not self._queue or not self.session.can_send:
            return []
        out: list[bytes] = []
        batch: list[bytes] = []
        payload = 0  # the encoded size of `batch`
        for _seq, encoded in self._queue:
            if batch and (
                len(batch) == frames.MAX_MESSAGES_PER_FRAME
                or frames.frame_size(len(batch) + 1, payload + len(encoded)) > self._max_frame
            ):
                out.append(self._seal(batch, payload))
                batch, payload = [], 0
            batch.append(encoded)
            payload += len(encoded)
        out.append(self._seal(batch, payload))
        self._queue.clear()
        self._announcement_due = False  # these frames carry our newest ratchet key
        return out

    def _seal(self, batch: list[bytes], payload: int) -> bytes:
        """One frame: the envelopes and their padding joined in one copy, then encrypted."""
        trailer = padding_for(frames.frame_size(len(batch), payload))
        return self.session.encrypt(frames.join_frame(batch, trailer=trailer))

    def prepare_send(self) -> None:
        """Spend idle time on the next send's key work (`RatchetSession.prepare_send`)."""
        if self.state is not ChannelState.FAILED:
            self.session.prepare_send()

    def prepare_receive(self) -> None:
        """Spend idle time on the next received message's key work
        (`RatchetSession.prepare_receive`)."""
        if self.state is not ChannelState.FAILED:
            self.session.prepare_receive()

    def key_announcement(self) -> bytes | None:
        """An empty frame carrying our newest ratchet key, or None (specs/frames.md s.4a).

        For idle time after a receive: once a frame with messages was read, if nothing is
        queued and no frame has carried our newest ratchet key yet, this frame gives it to the
        peer now, so that the peer's DH ratchet step is done before our next message arrives
        rather than while it waits. An empty frame never calls for one in return. At most one
        per frame with messages read; None once the channel is closed or failed.
        """
        if not self._announcement_due or self._queue or self.state is not ChannelState.OPEN:
            return None
        self._announcement_due = False
        if not self.session.can_send or not self.session.ratchet_key_unsent:
            return None
        return self._seal([], 0)

    # -- receiving --

    @property
    def missing(self) -> tuple[int, ...]:
        """Seqs below the highest buffered one that have not arrived."""
        if not self._buffer:
            return ()
        return tuple(s for s in range(self._next_recv, max(self._buffer)) if s not in self._buffer)

    def receive(self, frame: bytes) -> list[Event]:
        """Decrypt one frame and return the events it causes, in order."""
        self._check_usable()
        # A copy of a recent frame: its ratchet header and tag are those of a frame already
        # read (the tag authenticates header and ciphertext under a one-time key, so this
        # needs no hash of a 256 KiB frame). Anything else goes on to the ratchet.
        copy_key = frame[:HEADER_LEN] + frame[-TAG_LEN:]
        if copy_key in self._recent:
            return []
        plaintext = self.session.decrypt(frame)  # CryptoFailure: nothing changed
        self._recent[copy_key] = None
        if len(self._recent) > RECENT_FRAMES:
            self._recent.popitem(last=False)
        try:
            if len(plaintext) > padme(frames.MAX_FRAME_PLAINTEXT + 1):
                raise frames.FrameError("the frame is over the size limit")
            envelopes = frames.decode_frame(unpad(plaintext))
            for envelope in envelopes:
                self._accept(envelope)
            if envelopes:  # (an empty frame is a key announcement: nothing to answer)
                self._announcement_due = True
        except RemoteProtocolError:
            self.state = ChannelState.FAILED
            raise
        return self._deliver()

    def _accept(self, envelope: Envelope) -> None:
        seq = envelope.seq
        if seq < self._next_recv or seq in self._buffer:
            return  # duplicate or retransmission of something already delivered
        if seq >= self._next_recv + self._window:
            raise RemoteProtocolError("the peer's sequence number is too far ahead")
        if isinstance(envelope.message, Hello) and (seq != 0 or self._initiator):
            raise RemoteProtocolError("only the initiator sends Hello, as its first message")
        self._buffer[seq] = envelope.message

    def _deliver(self) -> list[Event]:
        events: list[Event] = []
        while self._next_recv in self._buffer:
            seq = self._next_recv
            events.extend(self._event_for(seq, self._buffer.pop(seq)))
            self._reported_missing.discard(seq)
            self._next_recv += 1
        missing = [s for s in self.missing if s not in self._reported_missing]
        if missing:
            self._reported_missing.update(missing)
            events.append(MessagesMissing(tuple(missing)))
        return events

    def skip_missing(self) -> list[Event]:
        """Give up on every missing seq: report them lost, then deliver what waited behind them.

        A lost seq that arrives later (e.g. resent) is dropped as a duplicate.
        """
        self._check_usable()
        if not self._buffer:
            return []
        lost = self.missing
        last = max(self._buffer)
        events: list[Event] = [MessagesLost(lost)]
        for seq in range(self._next_recv, last + 1):
            message = self._buffer.pop(seq, None)
            if message is not None:
                events.extend(self._event_for(seq, message))
        self._next_recv = last + 1
        self._reported_missing.clear()
        return events

    def _event_for(self, seq: int, message: Message) -> list[Event]:
        if isinstance(message, Hello):
            return [HelloReceived(seq)]
        if isinstance(message, Receipt):
            return [ReceiptReceived(seq, tuple(message.ids))]
        if isinstance(message, Close):
            self.state = ChannelState.CLOSED if self.state is ChannelState.OPEN else self.state
            return [CloseReceived(seq, message.reason)]
        return [MessageReceived(seq, message)]

    # -- persistence --

    def to_state(self) -> ChannelSnapshot:
        """Snapshot the channel (ratchet included). Save it after every send/receive you act on."""
        return ChannelSnapshot(
            initiator=self._initiator,
            state=self.state.value,
            session=self.session.to_state(),
            next_send=self._next_send,
            next_recv=self._next_recv,
            queued=[encoded for _seq, encoded in self._queue],
            buffered=[
                frames.encode_envelope(Envelope(seq, message))
                for seq, message in sorted(self._buffer.items())
            ],
        )

    @classmethod
    def from_state(
        cls,
        snapshot: ChannelSnapshot,
        *,
        max_frame_plaintext: int = frames.MAX_FRAME_PLAINTEXT,
        reorder_window: int = DEFAULT_REORDER_WINDOW,
    ) -> SecureChannel:
        """Rebuild a channel from `to_state()`; raises `FrameError` if an envelope is corrupt."""
        channel = cls(
            RatchetSession.from_state(snapshot.session),
            initiator=False,
            max_frame_plaintext=max_frame_plaintext,
            reorder_window=reorder_window,
        )
        channel._initiator = snapshot.initiator
        channel.state = ChannelState(snapshot.state)
        channel._next_send = snapshot.next_send
        channel._next_recv = snapshot.next_recv
        for encoded in snapshot.queued:
            channel._queue.append((_decode_envelope(encoded).seq, encoded))
        for encoded in snapshot.buffered:
            envelope = _decode_envelope(encoded)
            channel._buffer[envelope.seq] = envelope.message
        return channel

    def _check_usable(self) -> None:
        if self.state is ChannelState.FAILED:
            raise ChannelFailed()
