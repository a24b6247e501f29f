"""SecureChannel over an in-memory loopback pair: ordering, exactly-once, loss, coalescing,
failure handling, and Hypothesis schedules of reordering / duplication / loss."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from messaging import frames
from messaging.channel import (
    ChannelFailed,
    ChannelSnapshot,
    ChannelState,
    CloseReceived,
    Event,
    HelloReceived,
    MessageReceived,
    MessagesLost,
    MessagesMissing,
    ReceiptReceived,
    SecureChannel,
)
from messaging.errors import CryptoFailure, LocalProtocolError, RemoteProtocolError
from messaging.frames import Envelope, FileAck, Hello, Receipt, Text
from messaging.padding import pad
from messaging.ratchet import HEADER_LEN, TAG_LEN
from tests.support.loopback import ChannelPair, Link


def texts(events: list[Event]) -> list[str]:
    return [
        e.message.text
        for e in events
        if isinstance(e, MessageReceived) and isinstance(e.message, Text)
    ]


def received_seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events if isinstance(e, MessageReceived | HelloReceived)]


def test_conversation_in_order() -> None:
    pair = ChannelPair.create()
    assert pair.b.data_to_send() == []
    early = pair.b.send(Text(text="queued before hello"))
    assert early == 0
    for i in range(3):
        pair.a.send(Text(text=f"a{i}"))
    pair.pump()
    assert isinstance(pair.b_events[0], HelloReceived)
    assert texts(pair.b_events) == ["a0", "a1", "a2"]
    assert texts(pair.a_events) == ["queued before hello"]
    seq = pair.b.send(Receipt(ids=[1, 2, 3]))
    pair.pump()
    assert pair.a_events[-1] == ReceiptReceived(seq, (1, 2, 3))


def test_small_messages_are_coalesced_into_one_frame() -> None:
    pair = ChannelPair.create()
    for i in range(100):
        pair.a.send(Text(text=f"m{i}"))
    out = pair.a.data_to_send()
    assert len(out) == 1
    events = [e for frame in out for e in pair.b.receive(frame)]
    assert texts(events) == [f"m{i}" for i in range(100)]


def test_send_text_queues_the_text_the_model_would() -> None:
    pair = ChannelPair.create()
    mids = [os.urandom(16) for _ in range(2)]
    seqs = [
        pair.a.send_text("first", mid=mids[0], new=True),
        pair.a.send(Text(text="between")),
        pair.a.send_text("resent", mid=mids[1]),
    ]
    assert seqs == [1, 2, 3]  # numbered with the other messages (the Hello is 0)
    pair.pump()
    assert [(e.seq, e.message) for e in pair.b_events if isinstance(e, MessageReceived)] == [
        (1, Text(text="first", mid=mids[0], new=True)),
        (2, Text(text="between")),
        (3, Text(text="resent", mid=mids[1])),
    ]
    with pytest.raises(ValueError):
        pair.a.send_text("\ud800", mid=mids[0])
    with pytest.raises(ValueError):
        pair.a.send_text("short id", mid=bytes(8))
    assert pair.a.next_seq == 4  # a refused text takes no seq
    pair.a.close()
    with pytest.raises(LocalProtocolError):
        pair.a.send_text("after close", mid=mids[0])


def test_frames_respect_the_size_limit() -> None:
    pair = ChannelPair.create(max_frame_plaintext=1024)
    for i in range(50):
        pair.a.send(Text(text=f"{i:03d}" + "x" * 97))
    out = pair.a.data_to_send()
    assert len(out) > 5
    # ciphertext = header + padded-frame in AES blocks + tag; the padded frame <= padme(1025)
    assert all(len(frame) <= 41 + 1088 + 16 + 32 for frame in out)
    events = [e for frame in out for e in pair.b.receive(frame)]
    assert len(texts(events)) == 50
    with pytest.raises(LocalProtocolError):
        pair.a.send(Text(text="y" * 2000))


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 900), min_size=1, max_size=300),
    max_frame=st.integers(1024, 8192),
)
def test_frames_are_filled_greedily_within_both_limits(lengths: list[int], max_frame: int) -> None:
    """`data_to_send` packs queued envelopes in order, each frame as full as both limits (size
    and MAX_MESSAGES_PER_FRAME) allow; every message arrives, in order."""
    pair = ChannelPair.create(max_frame_plaintext=max_frame)
    sealed: list[list[bytes]] = []
    seal = pair.a._seal

    def spy(batch: list[bytes], payload: int) -> bytes:
        sealed.append(list(batch))
        return seal(batch, payload)

    pair.a._seal = spy  # type: ignore[method-assign]
    for i, length in enumerate(lengths):
        pair.a.send_text("x" * length, mid=i.to_bytes(16, "big"))
    out = pair.a.data_to_send()
    assert sealed and len(out) == len(sealed)
    envelopes = [e for batch in sealed for e in batch]
    assert len(envelopes) == len(lengths) + 1  # Hello first
    for batch, following in itertools.pairwise(sealed):
        fits_more = (
            len(batch) < frames.MAX_MESSAGES_PER_FRAME
            and len(frames.join_frame([*batch, following[0]])) <= max_frame
        )
        assert not fits_more
    for batch in sealed:
        assert len(frames.join_frame(batch)) <= max_frame
    events = [e for frame in out for e in pair.b.receive(frame)]
    assert texts(events) == ["x" * length for length in lengths]


def test_the_array_header_counts_in_the_frame_size() -> None:
    """24 envelopes take a 2-byte array header: with room for 24 envelopes and a 1-byte header
    only, the first frame holds 23."""

    def queued(pair: ChannelPair) -> list[bytes]:
        for i in range(30):
            pair.a.send_text("x" * 40, mid=i.to_bytes(16, "big"))
        return [encoded for _seq, encoded in pair.a._queue]

    sizes = [len(e) for e in queued(ChannelPair.create())]
    pair = ChannelPair.create(max_frame_plaintext=1 + sum(sizes[:24]))
    queued(pair)
    sealed: list[int] = []
    seal = pair.a._seal
    pair.a._seal = lambda batch, payload: sealed.append(len(batch)) or seal(batch, payload)  # type: ignore[method-assign]
    pair.a.data_to_send()
    assert sealed[0] == 23


def test_a_frame_holds_at_most_1024_messages() -> None:
    pair = ChannelPair.create()
    for i in range(2100):
        pair.a.send_text("", mid=i.to_bytes(16, "big"))
    out = pair.a.data_to_send()
    assert len(out) == 3  # Hello and 2100 texts: 1024 + 1024 + 53
    events = [e for frame in out for e in pair.b.receive(frame)]
    assert [e.seq for e in events if isinstance(e, MessageReceived)] == list(range(1, 2101))


@pytest.mark.parametrize("pattern", ["h", "d", "hd", ".h.d", "hhd.", "dh"])
def test_reorder_and_duplication_deliver_once_in_order(pattern: str) -> None:
    pair = ChannelPair.create(a_to_b=Link(pattern), b_to_a=Link(pattern[::-1]))
    for i in range(20):
        pair.a.send(Text(text=f"a{i}"))
        pair.pump()
        pair.b.send(Text(text=f"b{i}"))
        pair.pump()
    pair.settle()
    assert texts(pair.b_events) == [f"a{i}" for i in range(20)]
    assert texts(pair.a_events) == [f"b{i}" for i in range(20)]
    assert pair.a.missing == () and pair.b.missing == ()


def test_loss_is_reported_and_the_rest_decrypts() -> None:
    pair = ChannelPair.create(a_to_b=Link("..x"))  # frames 2, 5, 8 ... are lost
    # frame 0 holds Hello (seq 0) + m0 (seq 1); then one frame per message: m_i has seq i+1
    for i in range(9):
        pair.a.send(Text(text=f"m{i}"))
        pair.pump()
    assert len(pair.a_to_b.dropped) == 3
    missing = [e for e in pair.b_events if isinstance(e, MessagesMissing)]
    assert [m.seqs for m in missing] == [(3,), (6,)]
    assert texts(pair.b_events) == ["m0", "m1"]  # m2 (seq 3) is lost; later ones wait
    events = pair.b.skip_missing()
    assert events[0] == MessagesLost((3, 6))
    assert texts(events) == ["m3", "m4", "m6", "m7"]
    # the last frame (seq 9, m8) was dropped too: nothing after it, so no gap is visible
    assert pair.b.missing == ()
    # a lost frame that turns up late still decrypts, but its message is not delivered twice
    assert pair.b.receive(pair.a_to_b.dropped[0]) == []


def test_application_resend_fills_the_gap() -> None:
    pair = ChannelPair.create(a_to_b=Link(".x...."))
    outbox = {}
    for i in range(4):
        message = Text(text=f"m{i}")
        outbox[pair.a.send(message)] = message
        pair.pump()
    assert pair.b.missing == (2,)  # frame 1 carried m1 (seq 2)
    for seq in pair.b.missing:
        pair.a.resend(seq, outbox[seq])
    pair.a.resend(2, outbox[2])  # a needless resend is dropped as a duplicate
    pair.pump()
    assert texts(pair.b_events) == ["m0", "m1", "m2", "m3"]
    with pytest.raises(LocalProtocolError):
        pair.a.resend(99, outbox[1])


def test_tampered_frame_raises_and_changes_nothing() -> None:
    pair = ChannelPair.create()
    pair.a.send(Text(text="x"))
    [frame] = pair.a.data_to_send()
    bad = frame[:-1] + bytes([frame[-1] ^ 1])
    with pytest.raises(CryptoFailure):
        pair.b.receive(bad)
    assert pair.b.state is ChannelState.OPEN
    assert texts(pair.b.receive(frame)) == ["x"]
    assert pair.b.receive(frame) == []  # exact duplicate: dropped silently


def test_copy_of_a_read_frame_is_dropped_by_header_and_tag() -> None:
    """The copy check keys on the ratchet header and tag; a frame that keeps both but changes
    the ciphertext is dropped too (it could never decrypt), and nothing changes."""
    pair = ChannelPair.create()
    pair.a.send(Text(text="x" * 100))
    [frame] = pair.a.data_to_send()
    assert texts(pair.b.receive(frame)) == ["x" * 100]
    middle = frame[HEADER_LEN:-TAG_LEN]
    altered = frame[:HEADER_LEN] + bytes(len(middle)) + frame[-TAG_LEN:]
    before = pair.b.to_state()
    assert pair.b.receive(altered) == []
    assert pair.b.to_state() == before
    pair.a.send(Text(text="y"))
    [second] = pair.a.data_to_send()
    assert texts(pair.b.receive(second)) == ["y"]


def inject(pair: ChannelPair, envelopes: list[Envelope], *, padded: bool = True) -> bytes:
    body = frames.encode_frame(envelopes)
    return pair.a.session.encrypt(pad(body) if padded else body)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: inject(p, [Envelope(0, Hello()), Envelope(5000, Text(text="far"))]),
        lambda p: inject(p, [Envelope(0, Hello())], padded=False),
        lambda p: p.a.session.encrypt(pad(b"\xa0")),
        lambda p: inject(p, [Envelope(3, Hello())]),
    ],
    ids=["seq too far ahead", "unpadded", "not an array", "late hello"],
)
def test_authenticated_bad_frame_fails_the_channel(make: object) -> None:
    pair = ChannelPair.create()
    frame = make(pair)  # type: ignore[operator]
    with pytest.raises(RemoteProtocolError):
        pair.b.receive(frame)
    assert pair.b.state is ChannelState.FAILED
    with pytest.raises(ChannelFailed):
        pair.b.receive(frame)
    with pytest.raises(ChannelFailed):
        pair.b.send(Text(text="x"))
    assert pair.b.data_to_send() == []


def test_hello_from_responder_fails_initiator() -> None:
    pair = ChannelPair.create()
    pair.pump()
    frame = pair.b.session.encrypt(pad(frames.encode_frame([Envelope(0, Hello())])))
    with pytest.raises(RemoteProtocolError):
        pair.a.receive(frame)


def test_close() -> None:
    pair = ChannelPair.create()
    pair.a.send(FileAck(file_id=bytes(16), next_offset=0))
    seq = pair.a.close("bye")
    with pytest.raises(LocalProtocolError):
        pair.a.send(Text(text="after close"))
    with pytest.raises(LocalProtocolError):
        pair.a.send(Hello())
    pair.pump()
    assert pair.b_events[-1] == CloseReceived(seq, "bye")
    assert pair.b.state is ChannelState.CLOSED


# --- properties -----------------------------------------------------------------------------

schedules = st.text(alphabet=".dh", max_size=40)


@settings(max_examples=100, deadline=None)
@given(schedules, schedules, st.lists(st.integers(0, 3), min_size=1, max_size=25))
def test_any_reorder_dup_schedule_delivers_everything_once_in_order(
    ab: str, ba: str, bursts: list[int]
) -> None:
    pair = ChannelPair.create(a_to_b=Link.schedule(ab), b_to_a=Link.schedule(ba))
    sent_a: list[str] = []
    sent_b: list[str] = []
    for turn, burst in enumerate(bursts):
        for i in range(burst):
            sent_a.append(f"a{turn}.{i}")
            pair.a.send(Text(text=sent_a[-1]))
            if turn % 2:
                sent_b.append(f"b{turn}.{i}")
                pair.b.send(Text(text=sent_b[-1]))
        pair.pump()
    pair.settle()
    assert texts(pair.b_events) == sent_a
    assert texts(pair.a_events) == sent_b
    for events in (pair.a_events, pair.b_events):
        seqs = received_seqs(events)
        assert seqs == sorted(set(seqs))


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=".xdh", max_size=30), st.integers(1, 25))
def test_any_lossy_schedule_delivers_or_reports_each_message(schedule: str, count: int) -> None:
    pair = ChannelPair.create(a_to_b=Link.schedule(schedule))
    for i in range(count):  # frame 0: Hello (seq 0) + m0 (seq 1); frame k: m_k (seq k + 1)
        pair.a.send(Text(text=f"m{i}"))
        pair.pump()
    pair.settle()
    events = pair.b_events + pair.b.skip_missing()
    delivered = received_seqs(events)
    lost = [s for e in events if isinstance(e, MessagesLost) for s in e.seqs]
    dropped = {s for k in pair.a_to_b.dropped_at for s in ((0, 1) if k == 0 else (k + 1,))}
    assert delivered == sorted(set(range(count + 1)) - dropped)
    assert lost == sorted(s for s in dropped if s < max(delivered, default=-1))
    # lost frames that turn up late decrypt; only what was never delivered nor given up on
    # (the trailing ones) is delivered now, so nothing is delivered twice
    late = [e for frame in pair.a_to_b.dropped for e in pair.b.receive(frame)]
    assert received_seqs(late) == sorted(dropped - set(lost))


# --- from the handshake ---------------------------------------------------------------------


@dataclass(frozen=True)
class FakeResult:
    handshake_hash: bytes
    ratchet_seed: bytes
    peer_ratchet_public: bytes | None
    own_ratchet_private: bytes | None


def test_from_handshake_roles_and_associated_data() -> None:
    seed, h = os.urandom(32), os.urandom(32)
    bob = X25519PrivateKey.generate()
    a = SecureChannel.from_handshake(FakeResult(h, seed, bob.public_key().public_bytes_raw(), None))
    b = SecureChannel.from_handshake(FakeResult(h, seed, None, bob.private_bytes_raw()))
    other = SecureChannel.from_handshake(
        FakeResult(os.urandom(32), seed, None, bob.private_bytes_raw())
    )
    a.send(Text(text="hi"))
    [frame] = a.data_to_send()
    with pytest.raises(CryptoFailure):  # the handshake hash is the session's associated data
        other.receive(frame)
    assert texts(b.receive(frame)) == ["hi"]
    with pytest.raises(LocalProtocolError):
        SecureChannel.from_handshake(FakeResult(h, seed, None, None))


def test_channel_over_the_real_handshake() -> None:
    from identity.keys import IdentityKey
    from messaging.handshake import Handshake, Role

    ka, kb = IdentityKey.generate(), IdentityKey.generate()
    ha = Handshake(
        role=Role.INITIATOR,
        local_key=ka,
        peer_did=kb.did,
        local_fingerprint="fp-a",
        peer_fingerprint="fp-b",
        invitation_id=b"inv-1",
    )
    hb = Handshake(
        role=Role.RESPONDER,
        local_key=kb,
        peer_did=ka.did,
        local_fingerprint="fp-b",
        peer_fingerprint="fp-a",
        invitation_id=b"inv-1",
    )
    assert ha.start() is None
    commitment = hb.start()
    assert commitment is not None
    initiation = ha.receive(commitment)
    assert initiation is not None
    response = hb.receive(initiation)
    assert response is not None
    assert ha.receive(response) is None
    a, b = SecureChannel.from_handshake(ha.result), SecureChannel.from_handshake(hb.result)
    a.send(Text(text="over the handshake"))
    assert texts([e for f in a.data_to_send() for e in b.receive(f)]) == ["over the handshake"]
    b.send(Text(text="and back"))
    assert texts([e for f in b.data_to_send() for e in a.receive(f)]) == ["and back"]


# --- persistence ----------------------------------------------------------------------------


def restart(channel: SecureChannel) -> SecureChannel:
    saved = channel.to_state().model_dump_json()
    return SecureChannel.from_state(ChannelSnapshot.model_validate_json(saved))


def test_channel_survives_restart_with_gap_and_queue() -> None:
    pair = ChannelPair.create(a_to_b=Link(".x.."))
    for i in range(3):
        pair.a.send(Text(text=f"m{i}"))
        pair.pump()
    assert pair.b.missing == (2,)  # m1 (seq 2) dropped; m2 (seq 3) is buffered
    held = pair.a_to_b.dropped[0]
    pair.b.send(Text(text="queued on b"))
    pair.a.send(Text(text="queued on a"))
    a, b = restart(pair.a), restart(pair.b)
    assert b.missing == (2,) and b.next_seq == pair.b.next_seq
    events = b.receive(held)  # the lost frame turns up after the restart
    assert texts(events) == ["m1", "m2"]
    events = [e for f in a.data_to_send() for e in b.receive(f)]
    assert texts(events) == ["queued on a"]
    events = [e for f in b.data_to_send() for e in a.receive(f)]
    assert texts(events) == ["queued on b"]


def test_responder_restarts_before_hello() -> None:
    pair = ChannelPair.create()
    pair.b.send(Text(text="early"))
    b = restart(pair.b)
    assert b.data_to_send() == []
    events = [e for f in pair.a.data_to_send() for e in b.receive(f)]
    assert isinstance(events[0], HelloReceived)
    assert texts([e for f in b.data_to_send() for e in pair.a.receive(f)]) == ["early"]
    # and the restored responder still refuses a Hello, as a responder must not
    assert restart(pair.a).to_state().initiator


def test_corrupt_snapshot_rejected() -> None:
    pair = ChannelPair.create()
    data = pair.a.to_state().model_dump(mode="json")
    data["queued"] = ["81"]
    with pytest.raises(RemoteProtocolError):
        SecureChannel.from_state(ChannelSnapshot.model_validate(data))
    data["version"] = 2
    with pytest.raises(ValidationError):
        ChannelSnapshot.model_validate(data)
