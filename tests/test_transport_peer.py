"""Two in-process peers over real WebRTC on this machine's address (transport/peer.py)."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
from collections.abc import AsyncIterator

import pytest

from transport import (
    CompactOffer,
    CompactOfferError,
    DtlsFailed,
    FingerprintMismatch,
    IceFailed,
    LoopbackSignaling,
    Peer,
    PeerClosed,
    PeerState,
    PeerStateChanged,
    Role,
    TransportError,
    TransportTimeout,
    TransportUsageError,
)
from transport.peer import HIGH_WATER
from transport.states import classify_failure

pytestmark = pytest.mark.timeout(60)


async def connect(offerer: Peer, answerer: Peer) -> None:
    """Offer/answer through loopback signaling, as compact CBOR blobs."""
    a_sig, b_sig = LoopbackSignaling.pair()
    await a_sig.send((await offerer.create_offer()).to_cbor())
    offer = CompactOffer.from_cbor(await b_sig.receive(timeout=5))
    await b_sig.send((await answerer.accept_offer(offer)).to_cbor())
    await offerer.accept_answer(CompactOffer.from_cbor(await a_sig.receive(timeout=5)))
    await asyncio.gather(offerer.wait_open(10), answerer.wait_open(10))


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Peer, Peer]]:
    a, b = Peer(role=Role.OFFERER), Peer(role=Role.ANSWERER)
    try:
        await connect(a, b)
        yield a, b
    finally:
        await a.close()
        await b.close()


async def receive_total(peer: Peer, total: int) -> bytes:
    parts, size = [], 0
    while size < total:
        part = await peer.recv(timeout=15)
        parts.append(part)
        size += len(part)
    return b"".join(parts)


async def send_all(peer: Peer, data: bytes, step: int) -> None:
    for i in range(0, len(data), step):
        await peer.send(data[i : i + step])


async def transfer_whole(sender: Peer, receiver: Peer, size: int) -> None:
    """`size` random bytes sent in 64 KiB messages arrive whole and in order (30 s at most)."""
    data = os.urandom(size)
    receiving = asyncio.create_task(receive_total(receiver, size))
    await send_all(sender, data, 64 << 10)
    assert await asyncio.wait_for(receiving, timeout=30) == data


async def test_connect_exposes_both_fingerprints(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    assert a.state is b.state is PeerState.OPEN
    assert a.remote_fingerprint == b.local_fingerprint
    assert b.remote_fingerprint == a.local_fingerprint
    assert a.local_fingerprint != b.local_fingerprint
    assert len(a.local_fingerprint) == 32 * 3 - 1


async def test_ten_megabytes_both_ways(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    data_a, data_b = os.urandom(10_000_000), os.urandom(10_000_000)
    _, _, got_b, got_a = await asyncio.wait_for(
        asyncio.gather(
            send_all(a, data_a, 1 << 20),
            send_all(b, data_b, 1 << 20),
            receive_total(b, len(data_a)),
            receive_total(a, len(data_b)),
        ),
        timeout=40,
    )
    assert hashlib.sha256(got_b).digest() == hashlib.sha256(data_a).digest()
    assert hashlib.sha256(got_a).digest() == hashlib.sha256(data_b).digest()


async def test_one_megabyte_single_payload_is_chunked(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    data = os.urandom(1_000_000)
    await a.send(data)
    await a.send(b"")
    assert await b.recv(timeout=15) == data  # one message, reassembled from 16 chunks
    assert await b.recv(timeout=5) == b""


async def test_slow_reader_bounds_sender_and_receiver_memory() -> None:
    window = 256 << 10
    a = Peer(role=Role.OFFERER, window=window)
    b = Peer(role=Role.ANSWERER, window=window)
    try:
        await connect(a, b)
        message = os.urandom(64 << 10)
        total = 200  # 12.5 MiB if nothing pushed back
        sent = 0
        peak_buffered = 0

        async def fast_sender() -> None:
            nonlocal sent, peak_buffered
            for _ in range(total):
                await a.send(message)
                sent += 1
                peak_buffered = max(peak_buffered, a.stats().buffered_amount)

        task = asyncio.create_task(fast_sender())
        try:
            await asyncio.sleep(1.5)  # the reader is not reading at all
            stalled_at = sent
            await asyncio.sleep(0.5)
            assert sent == stalled_at < total  # the sender is held back
            assert b.stats().receive_queue_bytes <= window + len(message)
            assert peak_buffered <= HIGH_WATER + (64 << 10)
            received = 0
            while received < total:  # now read slowly, then fast; everything arrives intact
                assert await b.recv(timeout=10) == message
                received += 1
                assert b.stats().receive_queue_bytes <= window + len(message)
            await asyncio.wait_for(task, timeout=10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await a.close()
        await b.close()


async def test_close_surfaces_peer_closed_on_both_sides(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    words = os.urandom(300_000)
    await a.send(words)
    await a.close()  # lingers until the peer acknowledged what we sent
    assert await b.recv(timeout=5) == words
    with pytest.raises(PeerClosed):
        await b.recv(timeout=5)
    with pytest.raises(PeerClosed):
        await b.send(b"too late")
    with pytest.raises(PeerClosed):
        await a.send(b"closed here")
    assert [m async for m in b] == []


async def test_fingerprint_mismatch_is_detected() -> None:
    a, b = Peer(role=Role.OFFERER), Peer(role=Role.ANSWERER)
    try:
        offer = await a.create_offer()
        forged = offer.model_copy(update={"fingerprint": bytes(32)})
        await a.accept_answer(await b.accept_offer(forged))
        with pytest.raises(FingerprintMismatch, match="does not match"):
            await b.wait_open(10)
        with pytest.raises(TransportError):
            await a.wait_open(3)
    finally:
        await a.close()
        await b.close()


async def test_timeout_when_the_answer_never_arrives() -> None:
    events: list[PeerStateChanged] = []
    a, b = Peer(role=Role.OFFERER), Peer(role=Role.ANSWERER, on_state=events.append)
    try:
        await b.accept_offer(await a.create_offer())
        with pytest.raises(TransportTimeout, match="did not open within 1 s"):
            await b.wait_open(1)
        assert events == [PeerStateChanged(state=PeerState.CONNECTING)]
    finally:
        await a.close()
        await b.close()


async def test_api_misuse_is_a_usage_error() -> None:
    a, b = Peer(role=Role.OFFERER), Peer(role=Role.ANSWERER)
    try:
        with pytest.raises(TransportUsageError):
            _ = a.local_fingerprint
        with pytest.raises(TransportUsageError):
            await b.create_offer()
        offer = await a.create_offer()
        with pytest.raises(TransportUsageError):
            await a.create_offer()
        with pytest.raises(CompactOfferError, match="Expected an answer"):
            await a.accept_answer(offer)
        with pytest.raises(TransportUsageError):
            await a.send(b"not open")
        with pytest.raises(TransportUsageError):
            await a.send("text")  # type: ignore[arg-type]
        with pytest.raises(TransportUsageError, match="at most"):
            await a.send(bytes((16 << 20) + 1))
    finally:
        await a.close()
        await b.close()


def test_classify_failure() -> None:
    assert isinstance(
        classify_failure(ice_state="failed", dtls_state="new", fingerprint_matches=None), IceFailed
    )
    err = classify_failure(ice_state="completed", dtls_state="failed", fingerprint_matches=False)
    assert isinstance(err, FingerprintMismatch)
    err = classify_failure(ice_state="completed", dtls_state="failed", fingerprint_matches=True)
    assert type(err) is DtlsFailed
    err = classify_failure(ice_state="completed", dtls_state="closed", fingerprint_matches=None)
    assert isinstance(err, PeerClosed)


async def test_no_never_retrieved_task_noise(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    a, b = Peer(role=Role.OFFERER), Peer(role=Role.ANSWERER)
    await connect(a, b)
    await a.send(os.urandom(300_000))
    await b.recv(timeout=10)
    await a.close()
    with pytest.raises(PeerClosed):
        await b.recv(timeout=5)
    await b.close()
    await asyncio.sleep(0.2)
    gc.collect()
    await asyncio.sleep(0)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


async def test_cancelling_a_send_mid_message_fails_the_connection(pair: tuple[Peer, Peer]) -> None:
    a, _ = pair
    task = asyncio.create_task(a.send(os.urandom(8_000_000)))  # well over the 1 MiB high-water
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert a.state is PeerState.FAILED
    with pytest.raises(PeerClosed, match="cancelled mid-message"):
        await a.send(b"next")


async def test_try_send_sends_at_once_when_nothing_has_to_wait(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    small, chunked = b"hello", os.urandom(300_000)  # one chunk; five chunks, below high water
    assert a.try_send(small) is True
    assert a.try_send(chunked) is True
    assert await b.recv(timeout=5) == small
    assert await b.recv(timeout=10) == chunked


async def test_try_send_refuses_what_would_wait_and_sends_nothing(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    assert a.try_send(os.urandom(HIGH_WATER + 1)) is False  # no room for all of it at once
    big = os.urandom(4_000_000)
    sending = asyncio.create_task(a.send(big))  # waits for room below high water
    await asyncio.sleep(0)
    assert a.try_send(b"behind the big one") is False  # a send is in progress
    await a.send(b"after")
    await sending
    assert await receive_total(b, len(big)) == big  # nothing was slipped in between
    assert await b.recv(timeout=5) == b"after"


async def test_try_send_checks_like_send() -> None:
    peer = Peer(role=Role.OFFERER)
    try:
        with pytest.raises(TransportUsageError, match="not open"):
            peer.try_send(b"too early")
        with pytest.raises(TransportUsageError, match="Only bytes"):
            peer.try_send("text")  # type: ignore[arg-type]
    finally:
        await peer.close()
