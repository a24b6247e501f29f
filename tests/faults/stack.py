"""The real stack above the transport, in one process: Peer + Handshake + SecureChannel.

`open_session_pair()` connects two transport `Peer`s (directly, or through an impairing
`UdpRelay` from tests/support/impair.py), runs the didlink handshake (commit-then-reveal + Noise
KK) over the open data channel exactly as didlink/session/node.py does, and seeds a `SecureChannel`
on each side from the handshake result. Each `SecureEnd` then runs two tasks like the node's:

- the writer, the only one that encrypts: `channel.data_to_send()` then `await peer.send()`
  frame by frame (Peer.send's backpressure bounds memory);
- the reader: `channel.receive(await peer.recv())`, recording texts and file chunks in arrival
  order, acknowledging texts with `Receipt`s (batched: when the receive queue is empty or every
  1024 ids), and recording receipts.

Anything unexpected (a gap on the reliable channel, a messaging or transport error) is stored in
`SecureEnd.failure` and ends that end's tasks; tests assert it stays None.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from didlink.session.node import pump_handshake
from identity.keys import IdentityKey
from messaging.channel import (
    MessageReceived,
    MessagesLost,
    MessagesMissing,
    ReceiptReceived,
    SecureChannel,
)
from messaging.frames import MAX_RECEIPT_IDS, FileChunk, FileOffer, Message, Receipt, Text
from messaging.handshake import Handshake
from messaging.handshake import Role as HandshakeRole
from tests.support.impair import Impairment, UdpRelay
from transport import CompactOffer, Peer, PeerClosed, Role

CHUNK = 64 * 1024
CHUNKS_PER_BATCH = (
    3  # as didlink/session/node.py: three chunks per frame, next batch once handed over
)


@dataclass
class IncomingFile:
    """A file being received: bytes so far, their running SHA-256, chunks seen out of order."""

    offer: FileOffer
    received: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    chunks: int = 0
    out_of_order: int = 0


class SecureEnd:
    """One side: a transport peer and the secure channel on it, driven by two tasks."""

    def __init__(
        self, name: str, peer: Peer, channel: SecureChannel, *, keep_history: bool = True
    ) -> None:
        self.name = name
        self.peer = peer
        self.channel = channel
        self.keep_history = keep_history  # False: constant memory (counts and digests only)
        self.texts: list[str] = []  # delivered texts, in delivery order (if keep_history)
        self.text_seqs: list[int] = []
        self.acked: set[int] = set()  # our seqs the peer's receipts named (if keep_history)
        self.text_count = 0  # always: texts delivered ...
        self.text_digest = hashlib.sha256()  # ... and SHA-256 over them, each + b"\0"
        self.acked_count = 0  # always: ids named by receipts, each strictly above the last
        self.last_acked = -1
        self.files: dict[bytes, IncomingFile] = {}
        self.frames_sent = 0
        self.failure: BaseException | None = None
        self._to_ack: list[int] = []
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._progress = asyncio.Event()  # anything arrived
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._writer(), name=f"{self.name}-writer"),
            asyncio.create_task(self._reader(), name=f"{self.name}-reader"),
        ]
        self._wake.set()  # the initiator's Hello

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- sending --

    def send(self, message: Message) -> int:
        """Queue one message; the writer sends it soon. Returns its seq."""
        seq = self.channel.send(message)
        self._flushed.clear()
        self._wake.set()
        return seq

    async def flushed(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until everything queued has been handed to the transport."""
        async with asyncio.timeout(timeout):
            await self._flushed.wait()
        self._raise_failure()

    async def send_file(self, data: bytes, *, name: str, timeout: float) -> bytes:  # noqa: ASYNC109
        """Offer and stream `data` in 64 KiB chunks, three per frame; returns the file id."""
        file_id = os.urandom(16)
        self.send(
            FileOffer(
                file_id=file_id,
                name=name,
                size=len(data),
                sha256=hashlib.sha256(data).digest(),
                chunk_size=CHUNK,
            )
        )
        for start in range(0, len(data), CHUNK * CHUNKS_PER_BATCH):
            stop = min(len(data), start + CHUNK * CHUNKS_PER_BATCH)
            for offset in range(start, stop, CHUNK):
                chunk = data[offset : offset + CHUNK]
                self.send(FileChunk(file_id=file_id, offset=offset, data=chunk))
            await self.flushed(timeout)
        return file_id

    async def _writer(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                for frame in self.channel.data_to_send():
                    await self.peer.send(frame)
                    self.frames_sent += 1
                if not self._wake.is_set():
                    self._flushed.set()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._record(exc)

    # -- receiving --

    async def _reader(self) -> None:
        try:
            while True:
                frame = await self.peer.recv()
                for event in self.channel.receive(frame):
                    self._on_event(event)
                queue_empty = self.peer.stats().receive_queue_messages == 0
                if self._to_ack and (queue_empty or len(self._to_ack) >= MAX_RECEIPT_IDS):
                    for start in range(0, len(self._to_ack), MAX_RECEIPT_IDS):
                        self.send(Receipt(ids=self._to_ack[start : start + MAX_RECEIPT_IDS]))
                    self._to_ack = []
                self._progress.set()
        except PeerClosed:
            self._progress.set()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._record(exc)

    def _on_event(self, event: object) -> None:
        if isinstance(event, MessagesMissing | MessagesLost):
            raise AssertionError(f"{self.name}: gap on the reliable channel: {event}")
        if isinstance(event, ReceiptReceived):
            for acked in event.ids:  # texts are delivered, so acknowledged, in seq order
                assert acked > self.last_acked, f"{self.name}: receipt out of order or repeated"
                self.last_acked = acked
            self.acked_count += len(event.ids)
            if self.keep_history:
                self.acked.update(event.ids)
        elif isinstance(event, MessageReceived):
            message = event.message
            if isinstance(message, Text):
                self.text_count += 1
                self.text_digest.update(message.text.encode() + b"\0")
                if self.keep_history:
                    self.texts.append(message.text)
                    self.text_seqs.append(event.seq)
                self._to_ack.append(event.seq)
            elif isinstance(message, FileOffer):
                assert message.file_id not in self.files, "the same file offered twice"
                self.files[message.file_id] = IncomingFile(message)
            elif isinstance(message, FileChunk):
                incoming = self.files[message.file_id]
                if message.offset != incoming.received:
                    incoming.out_of_order += 1
                incoming.received += len(message.data)
                incoming.chunks += 1
                incoming.digest.update(message.data)

    def _record(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        self._flushed.set()
        self._progress.set()

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise AssertionError(f"{self.name} failed: {self.failure!r}") from self.failure

    async def until(self, condition: object, *, timeout: float, what: str) -> None:  # noqa: ASYNC109
        """Wait (bounded) until `condition()` holds, re-checking whenever something arrives."""
        assert callable(condition)
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    self._raise_failure()
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            raise AssertionError(f"{self.name}: not within {timeout:g} s: {what}") from None
        self._raise_failure()


async def connect_peers(
    offerer: Peer, answerer: Peer, *, impairment: Impairment | None, time_limit: float
) -> UdpRelay | None:
    """Offer/answer as compact CBOR, through an impairing relay when `impairment` is given.

    The relay listens on the offerer's own IPv4 host candidate (this machine's address).
    """
    offer = CompactOffer.from_cbor((await offerer.create_offer()).to_cbor())
    relay: UdpRelay | None = None
    if impairment is not None:
        host = next(str(c.ip) for c in offer.candidates if c.ip.version == 4)
        relay = await UdpRelay(impairment, host).start()
        offer = CompactOffer.from_cbor(relay.route(offer).to_cbor())
    try:
        answer = CompactOffer.from_cbor((await answerer.accept_offer(offer)).to_cbor())
        if relay is not None:
            answer = CompactOffer.from_cbor(relay.route(offer, answer).to_cbor())
        await offerer.accept_answer(answer)
        await asyncio.gather(offerer.wait_open(time_limit), answerer.wait_open(time_limit))
    except BaseException:
        if relay is not None:
            relay.close()
        raise
    return relay


async def run_handshake(
    peer: Peer, *, role: HandshakeRole, key: IdentityKey, peer_did: str, invitation_id: bytes
) -> SecureChannel:
    """The didlink handshake over the open data channel, driven as the node drives it."""
    remote = peer.remote_fingerprint
    assert remote is not None
    handshake = Handshake(
        role=role,
        local_key=key,
        peer_did=peer_did,
        invitation_id=invitation_id,
        local_fingerprint=peer.local_fingerprint,
        peer_fingerprint=remote,
    )
    return SecureChannel.from_handshake(await pump_handshake(peer, handshake))


@asynccontextmanager
async def open_session_pair(
    *, impairment: Impairment | None = None, time_limit: float = 30.0, keep_history: bool = True
) -> AsyncIterator[tuple[SecureEnd, SecureEnd, UdpRelay | None]]:
    """Alice (offerer, initiator) and Bob (answerer, responder) with running secure channels."""
    relay: UdpRelay | None = None
    alice_peer, bob_peer = Peer(role=Role.OFFERER), Peer(role=Role.ANSWERER)
    ends: list[SecureEnd] = []
    try:
        relay = await connect_peers(
            alice_peer, bob_peer, impairment=impairment, time_limit=time_limit
        )
        alice_key, bob_key = IdentityKey.generate(), IdentityKey.generate()
        invitation_id = os.urandom(16)
        async with asyncio.timeout(time_limit):
            alice_channel, bob_channel = await asyncio.gather(
                run_handshake(
                    alice_peer,
                    role=HandshakeRole.INITIATOR,
                    key=alice_key,
                    peer_did=bob_key.did,
                    invitation_id=invitation_id,
                ),
                run_handshake(
                    bob_peer,
                    role=HandshakeRole.RESPONDER,
                    key=bob_key,
                    peer_did=alice_key.did,
                    invitation_id=invitation_id,
                ),
            )
        ends = [
            SecureEnd("alice", alice_peer, alice_channel, keep_history=keep_history),
            SecureEnd("bob", bob_peer, bob_channel, keep_history=keep_history),
        ]
        for end in ends:
            end.start()
        yield ends[0], ends[1], relay
    finally:
        for end in ends:
            await end.stop()
        await alice_peer.close(linger=0.5)
        await bob_peer.close(linger=0.5)
        if relay is not None:
            relay.close()
