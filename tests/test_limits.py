"""Limits against resource exhaustion (issue 7 §1 "Limits"): each boundary, both sides.

At the limit the input is accepted; one past it, it is refused with the typed error, before any
expensive work. Where issue 7 asks for a limit the code does not have, a strict xfail test
says so (specs/threat-model.md, "Limits", has the table of every limit and where it lives).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import base58
import pytest

from identity import canonical
from identity.did_key import MAX_DID_LENGTH, parse_did_key
from identity.errors import DamagedKeystore, DidError, InvalidDid, MalformedToken
from identity.invitation import (
    MAX_BODY,
    MAX_COMMITMENT,
    MAX_CONNECT,
    MAX_LABEL_CHARS,
    Invitation,
    InvitationKind,
)
from identity.keystore import parse_keystore, unlock
from identity.keystore_file import MAX_FILE_SIZE as MAX_KEYSTORE_FILE
from identity.keystore_file import (
    MAX_ITERATIONS,
    MAX_LANES,
    MAX_MEMORY_KIB,
    MAX_SALT,
)
from identity.token import MAX_TOKEN_CHARS, decode_token, encode_token
from messaging import frames
from messaging.channel import DEFAULT_REORDER_WINDOW, MessageReceived
from messaging.errors import CryptoFailure, RemoteProtocolError
from messaging.frames import Envelope, FileChunk, FileOffer, FrameError, Receipt, Text
from messaging.padding import pad
from messaging.ratchet import MAX_SKIP, MAX_STORED_SKIPPED
from tests.support import hostile
from transport.compact_offer import (
    MAX_CANDIDATES,
    MAX_COMPACT_OFFER_BYTES,
    Candidate,
    CandidateKind,
    CompactOffer,
    SetupRole,
)
from transport.errors import CompactOfferError

T0 = 1_700_000_000
FILE_ID = bytes(16)

# --- tokens and DIDs ---------------------------------------------------------------------------


def biggest_invitation() -> Invitation:
    return Invitation.create(
        hostile.ALICE,
        now=T0,
        lifetime=60,
        label="\u00e9" * MAX_LABEL_CHARS,  # 64 characters, 128 bytes: both label limits
        kind=InvitationKind.INVITE,
        connect=bytes(MAX_CONNECT),
        commitment=bytes(MAX_COMMITMENT),
        id=hostile.INVITATION_ID,
    )


def test_token_text_limit() -> None:
    token = encode_token(biggest_invitation())
    padded = token + " " * (MAX_TOKEN_CHARS - len(token))
    assert len(padded) == MAX_TOKEN_CHARS
    assert decode_token(padded) == biggest_invitation()
    with pytest.raises(MalformedToken, match="longer than 4096"):
        decode_token(padded + " ")


def test_biggest_valid_invitation_fits_every_limit() -> None:
    invitation = biggest_invitation()
    assert len(invitation.body()) <= MAX_BODY
    assert decode_token(encode_token(invitation)) == invitation
    for field, value in (("connect", bytes(MAX_CONNECT + 1)), ("label", "a" * 65)):
        with pytest.raises(ValueError):
            Invitation.create(
                hostile.ALICE,
                now=T0,
                lifetime=60,
                kind=InvitationKind.INVITE,
                **{field: value},  # type: ignore[arg-type]
            )


def test_token_body_limit_is_checked_before_decoding() -> None:
    body = canonical.encode({0: 1, 8: bytes(MAX_BODY - 6)})
    assert len(body) == MAX_BODY + 1
    token = "didlink:" + base58.b58encode(b"\x01" + body + bytes(64)).decode("ascii")
    with pytest.raises(MalformedToken, match="over the limit of 2048"):
        decode_token(token)


def test_did_length_limit() -> None:
    at_limit = "did:key:z" + "2" * (MAX_DID_LENGTH - len("did:key:z"))
    with pytest.raises(DidError) as caught:
        parse_did_key(at_limit)
    assert "longer than" not in str(caught.value)  # refused later, for what it holds
    with pytest.raises(InvalidDid, match="longer than 200"):
        parse_did_key(at_limit + "2")


# --- frames ------------------------------------------------------------------------------------


def frame_of_exactly(size: int) -> bytes:
    """A valid frame of `size` bytes: 64 KiB file chunks, then a Text that fills the rest."""
    chunk = frames.encode_envelope(
        Envelope(0, FileChunk(file_id=FILE_ID, offset=0, data=bytes(frames.MAX_CHUNK_BYTES)))
    )
    encoded = [chunk] * 3
    payload = sum(map(len, encoded))
    base = frames.frame_size(len(encoded), payload)
    for length in range(size - base, 0, -1):
        text = frames.encode_envelope(Envelope(1, Text(text="a" * length)))
        if frames.frame_size(len(encoded) + 1, payload + len(text)) == size:
            break
    return frames.join_frame([*encoded, text])


def test_frame_size_limit() -> None:
    frame = frame_of_exactly(frames.MAX_FRAME_PLAINTEXT)
    assert len(frame) == frames.MAX_FRAME_PLAINTEXT
    assert len(frames.decode_frame(frame)) == 4
    with pytest.raises(FrameError, match="over the limit"):
        frames.decode_frame(frame + b"\x00")


def _one(message: Mapping[str, object], seq: int = 0) -> bytes:
    return canonical.encode([{**message, "seq": seq}])


@pytest.mark.parametrize(
    ("make", "limit"),
    [
        (lambda n: {"type": "text", "text": "a" * n}, frames.MAX_TEXT_BYTES),
        (
            lambda n: {"type": "text", "text": "\u00e9" * (n // 2) + "a" * (n % 2)},
            frames.MAX_TEXT_BYTES,
        ),
        (lambda n: {"type": "receipt", "ids": list(range(n))}, frames.MAX_RECEIPT_IDS),
        (lambda n: {"type": "close", "reason": "r" * n}, frames.MAX_REASON_BYTES),
        (
            lambda n: {"type": "file_chunk", "file_id": FILE_ID, "offset": 0, "data": bytes(n)},
            frames.MAX_CHUNK_BYTES,
        ),
        (
            lambda n: (
                FileOffer(
                    file_id=FILE_ID, name="f", size=1, sha256=bytes(32), chunk_size=1
                ).model_dump()
                | {"name": "n" * n}
            ),
            frames.MAX_NAME_BYTES,
        ),
        (
            lambda n: (
                FileOffer(
                    file_id=FILE_ID, name="f", size=1, sha256=bytes(32), chunk_size=1
                ).model_dump()
                | {"chunk_size": n}
            ),
            frames.MAX_CHUNK_SIZE,
        ),
    ],
    ids=["text", "text-utf8", "receipt-ids", "close-reason", "chunk", "file-name", "chunk-size"],
)
def test_message_field_limits(make: object, limit: int) -> None:
    assert callable(make)
    frames.decode_frame(_one(make(limit)))
    with pytest.raises(FrameError):
        frames.decode_frame(_one(make(limit + 1)))


def test_messages_per_frame_limit() -> None:
    hello = [{"seq": i, "type": "text", "text": ""} for i in range(frames.MAX_MESSAGES_PER_FRAME)]
    assert len(frames.decode_frame(canonical.encode(hello))) == frames.MAX_MESSAGES_PER_FRAME
    with pytest.raises(FrameError):
        frames.decode_frame(canonical.encode([*hello, {"seq": 0, "type": "text", "text": ""}]))


def test_sequence_number_limit() -> None:
    assert frames.decode_frame(_one({"type": "text", "text": ""}, frames.MAX_SEQ))[0].seq == (
        frames.MAX_SEQ
    )
    with pytest.raises(FrameError):
        frames.decode_frame(_one({"type": "text", "text": ""}, frames.MAX_SEQ + 1))
    receipt = {"type": "receipt", "ids": [frames.MAX_SEQ]}
    assert isinstance(frames.decode_frame(_one(receipt))[0].message, Receipt)


# Announced file sizes and the number of files in progress are bounded by the receiving
# application, not the frame codec ("no size limit but disk"): see tests/test_transfers.py
# (test_an_offer_larger_than_the_free_disk_is_refused, test_a_peer_cannot_open_files_without_bound).


# --- channel and ratchet -----------------------------------------------------------------------


def test_reorder_window_limit() -> None:
    alice, bob = hostile.channel_pair()
    [hello] = alice.data_to_send()
    bob.receive(hello)
    last_ok = DEFAULT_REORDER_WINDOW  # next expected is 1; 1 + window - 1 is the last buffered
    sealed = alice.session.encrypt(pad(_one({"type": "text", "text": "ahead"}, last_ok)))
    assert not [e for e in bob.receive(sealed) if isinstance(e, MessageReceived)]
    assert bob.missing[0] == 1 and bob.missing[-1] == last_ok - 1
    too_far = alice.session.encrypt(pad(_one({"type": "text", "text": "far"}, last_ok + 1)))
    with pytest.raises(RemoteProtocolError, match="too far ahead"):
        bob.receive(too_far)


def test_total_skipped_keys_limit_with_the_real_constants() -> None:
    alice, bob = hostile.ratchet_pair()
    first_ever = b""
    for _chain in range(3):  # three sending chains of Alice, each skipping MAX_SKIP messages
        skipped = [alice.encrypt(b"s") for _ in range(MAX_SKIP)]
        first_ever = first_ever or skipped[0]
        assert bob.decrypt(alice.encrypt(b"seen")) == b"seen"
        assert alice.decrypt(bob.encrypt(b"turn")) == b"turn"  # a new DH chain for Alice
        assert bob.skipped_key_count <= MAX_STORED_SKIPPED
    assert bob.skipped_key_count == MAX_STORED_SKIPPED
    with pytest.raises(CryptoFailure):
        bob.decrypt(first_ever)  # the oldest were evicted
    assert bob.decrypt(skipped[-1]) == b"s"  # the newest are kept


def test_a_forged_frame_far_ahead_costs_little() -> None:
    """The skip work is bounded by MAX_SKIP and done on locals: ~2.4 ms measured per forgery."""
    alice, bob = hostile.ratchet_pair()
    frame = alice.encrypt(b"x")
    forged = frame[:37] + MAX_SKIP.to_bytes(4, "big") + frame[41:]
    started = time.perf_counter()
    for _ in range(20):
        with pytest.raises(CryptoFailure):
            bob.decrypt(forged)
    assert (time.perf_counter() - started) / 20 < 0.5  # generous: a shared 2-core machine
    assert bob.skipped_key_count == 0


# --- keystore ----------------------------------------------------------------------------------


def test_keystore_file_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    good = hostile.sealed_keystore()
    path.write_bytes(good + b" " * (MAX_KEYSTORE_FILE - len(good)))  # JSON allows trailing space
    assert unlock(path, hostile.PASSPHRASE) == hostile.BOB
    path.write_bytes(good + b" " * (MAX_KEYSTORE_FILE - len(good) + 1))
    with pytest.raises(DamagedKeystore, match="far too large"):
        unlock(path, hostile.PASSPHRASE)


@pytest.mark.parametrize(
    ("field", "limit"),
    [("memory_cost", MAX_MEMORY_KIB), ("iterations", MAX_ITERATIONS), ("lanes", MAX_LANES)],
)
def test_keystore_kdf_parameter_limits(field: str, limit: int) -> None:
    """Checked at parse time, before Argon2 runs (a file may not ask for 1 TiB)."""
    document = json.loads(hostile.sealed_keystore())
    document["kdf"][field] = limit
    if field == "lanes":
        document["kdf"]["memory_cost"] = 8 * limit
    parse_keystore(json.dumps(document).encode())
    document["kdf"][field] = limit + 1
    with pytest.raises(DamagedKeystore):
        parse_keystore(json.dumps(document).encode())


def test_keystore_salt_length_limit() -> None:
    import base64

    document = json.loads(hostile.sealed_keystore())
    document["kdf"]["salt"] = base64.b64encode(bytes(MAX_SALT)).decode()
    parse_keystore(json.dumps(document).encode())
    document["kdf"]["salt"] = base64.b64encode(bytes(MAX_SALT + 1)).decode()
    with pytest.raises(DamagedKeystore):
        parse_keystore(json.dumps(document).encode())


# --- compact offer and CBOR depth ----------------------------------------------------------------


def _candidate(number: int) -> Candidate:
    from ipaddress import ip_address

    return Candidate(
        kind=CandidateKind.RELAY,
        ip=ip_address(f"2001:db8::{number + 1:x}"),
        port=3478,
        related_ip=ip_address(f"2001:db8:1::{number + 1:x}"),
        related_port=3478,
    )


def test_compact_offer_limits() -> None:
    biggest = CompactOffer(
        setup=SetupRole.ACTPASS,
        ufrag="u" * 32,
        pwd="p" * 64,
        fingerprint=bytes(32),
        candidates=tuple(_candidate(n) for n in range(MAX_CANDIDATES)),
    )
    data = biggest.to_cbor()
    assert len(data) <= MAX_COMPACT_OFFER_BYTES
    assert CompactOffer.from_cbor(data) == biggest
    with pytest.raises(CompactOfferError, match="at most 512"):
        CompactOffer.from_cbor(data + bytes(MAX_COMPACT_OFFER_BYTES + 1 - len(data)))
    with pytest.raises(CompactOfferError):
        CompactOffer.from_cbor(
            canonical.encode(
                {
                    1: 0,
                    2: "u" * 4,
                    3: "p" * 22,
                    4: bytes(32),
                    5: [_candidate(0).pack()[:7]] * (MAX_CANDIDATES + 1),
                }
            )
        )


@pytest.mark.parametrize("depth", [10, 300, 10_000, 100_000])
def test_cbor_nesting_never_exhausts_the_stack(depth: int) -> None:
    """cbor2 caps nesting (400 levels, its constant); our formats nest 3 deep at most."""
    data = b"\x81" * depth + b"\x00"
    if depth <= 300:
        assert len(data) == depth + 1
        canonical.decode(data, max_size=len(data))
        return
    with pytest.raises(canonical.NonCanonicalCbor):
        canonical.decode(data, max_size=len(data))
    with pytest.raises(FrameError):
        frames.decode_frame(data[: frames.MAX_FRAME_PLAINTEXT])
    with pytest.raises(CompactOfferError):
        CompactOffer.from_cbor(data[:MAX_COMPACT_OFFER_BYTES])
