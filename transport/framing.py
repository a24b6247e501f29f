"""Chunking and credit flow control on one data channel (sans-IO; specs/transport.md §5).

Theory of operation
-------------------
Every data-channel message starts with one type byte:

    0x00 MORE    payload bytes follow, the application message continues in the next chunk
    0x01 END     payload bytes follow (maybe none), the application message ends here
    0x02 CREDIT  a 4-byte big-endian unsigned count of payload bytes the receiver has consumed
    0x03 KEEPALIVE  nothing else; sent by a quiet side so the peer knows it is there (peer.py)

SCTP keeps message boundaries and the channel is ordered and reliable, so a chunk needs no
length or sequence number. A CREDIT may arrive between two chunks of a message.

The receiver grants a window of `window` payload bytes. The sender may *start* a message only
while its credit is positive; it then sends the whole message and subtracts its cost (credit
may go negative by at most one message). The receiver returns credit as the reader takes
messages out of its queue. Each message costs its payload length plus one (so even empty
messages are bounded). Credit is returned when a quarter of the window has been consumed
(`consumed`), and when the queue becomes empty or the reader went idle (`return_pending`, for
a reader that takes messages as they complete) while the sender may be short of credit: under
half the window left as the receiver counts it (`granted - received`; what is still in flight
only makes the sender's credit lower, and is counted once it arrives). A blocked sender is
thus always released once everything it sent has been read, and a chat message costs no
CREDIT message of its own. So the receiver holds at most `window + max_message_size` bytes
whatever the sender does, and a slow reader slows the sender.
A peer that starts a message without credit, sends more credit than it could have owed, or
exceeds the message size violates the protocol.
"""

from __future__ import annotations

from collections.abc import Iterator

from transport.errors import ProtocolViolation, TransportUsageError

TYPE_MORE = 0x00
TYPE_END = 0x01
TYPE_CREDIT = 0x02
TYPE_KEEPALIVE = 0x03
KEEPALIVE_MESSAGE = bytes([TYPE_KEEPALIVE])

CHUNK_MESSAGE_SIZE = 65536  # bytes per data-channel message, header included (§5.1)
DEFAULT_WINDOW = 4 << 20  # 4 MiB of receive credit: several 1 MiB messages in flight
DEFAULT_MAX_MESSAGE_SIZE = 16 << 20  # 16 MiB per application message


def credit_message(amount: int) -> bytes:
    """A CREDIT control message returning `amount` consumed payload bytes."""
    if not 0 < amount < 1 << 32:
        raise TransportUsageError("A credit must be between 1 and 2**32 - 1 bytes.")
    return bytes([TYPE_CREDIT]) + amount.to_bytes(4, "big")


def split_message(data: bytes, *, chunk_size: int = CHUNK_MESSAGE_SIZE) -> Iterator[bytes]:
    """The chunks of one application message: MORE... then END (an empty message is one END)."""
    step = chunk_size - 1
    view = memoryview(data)
    offset = 0
    while len(data) - offset > step:
        yield bytes([TYPE_MORE]) + view[offset : offset + step]
        offset += step
    yield bytes([TYPE_END]) + view[offset:]


class ChannelFraming:
    """Both directions of the chunking and credit state of one channel."""

    def __init__(
        self,
        *,
        window: int = DEFAULT_WINDOW,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        chunk_size: int = CHUNK_MESSAGE_SIZE,
    ) -> None:
        if window < 4 or max_message_size < 1 or chunk_size < 2:
            raise TransportUsageError("Window, message size and chunk size must be positive.")
        self.window = window
        self.max_message_size = max_message_size
        self.chunk_size = chunk_size
        self.send_credit = window
        self._granted = window  # total credit the receive side has granted, initial window too
        self._received = 0  # total payload bytes received in completed or partial messages
        self._pending_credit = 0  # consumed but not yet returned
        self._partial: list[bytes] = []
        self._partial_size = 0
        self._in_message = False

    # -- send side ---------------------------------------------------------------------------

    def can_start_message(self) -> bool:
        """True when the peer has granted credit for a new message."""
        return self.send_credit > 0

    def chunks(self, data: bytes) -> Iterator[bytes]:
        """Take credit for `data` and return its chunks; call only when `can_start_message`."""
        if not self.can_start_message():
            raise TransportUsageError("No send credit: wait before starting a message.")
        if len(data) > self.max_message_size:
            raise TransportUsageError(
                f"A message is at most {self.max_message_size} bytes, got {len(data)}."
            )
        self.send_credit -= len(data) + 1
        return split_message(data, chunk_size=self.chunk_size)

    # -- receive side ------------------------------------------------------------------------

    def receive(self, raw: bytes) -> bytes | None:
        """Feed one data-channel message; return a completed application message, if any."""
        if not raw:
            raise ProtocolViolation("The peer sent an empty data-channel message.")
        kind, body = raw[0], raw[1:]
        if kind == TYPE_CREDIT:
            self._add_credit(body)
            return None
        if kind == TYPE_KEEPALIVE:
            if body:
                raise ProtocolViolation("The peer sent a keepalive with a body.")
            return None
        if kind not in (TYPE_MORE, TYPE_END):
            raise ProtocolViolation(f"The peer sent an unknown chunk type {kind:#04x}.")
        if not self._in_message:
            if self._received >= self._granted:
                raise ProtocolViolation("The peer started a message without flow-control credit.")
            self._in_message = True
        if kind == TYPE_MORE and not body:
            raise ProtocolViolation("The peer sent an empty continuation chunk.")
        self._partial_size += len(body)
        if self._partial_size > self.max_message_size:
            raise ProtocolViolation(
                f"The peer sent a message over the {self.max_message_size}-byte limit."
            )
        self._received += len(body)
        self._partial.append(body)
        if kind == TYPE_MORE:
            return None
        self._received += 1  # the per-message cost (§5.2)
        message = b"".join(self._partial)
        self._partial, self._partial_size, self._in_message = [], 0, False
        return message

    def consumed(self, size: int, *, queue_empty: bool) -> bytes | None:
        """The reader took a `size`-byte message; return a CREDIT message when one is due."""
        self._pending_credit += size + 1
        if self._pending_credit >= self.window // 4:
            return self._return_all()
        return self.return_pending() if queue_empty else None

    def return_pending(self) -> bytes | None:
        """The reader went idle: a CREDIT message with all consumed credit, if the sender may
        be short of credit (under half the window left, as we count it) and some is pending."""
        if not self._pending_credit or self._granted - self._received >= self.window // 2:
            return None
        return self._return_all()

    def _return_all(self) -> bytes:
        amount, self._pending_credit = self._pending_credit, 0
        self._granted += amount
        return credit_message(amount)

    def _add_credit(self, body: bytes) -> None:
        if len(body) != 4:
            raise ProtocolViolation("The peer sent a credit of the wrong length.")
        amount = int.from_bytes(body, "big")
        if amount == 0 or self.send_credit + amount > self.window:
            raise ProtocolViolation("The peer returned more credit than it was owed.")
        self.send_credit += amount
