"""File transfer pieces (didlink/session/files.py): chunking, checking, safe and unique names."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from didlink.errors import UserError
from didlink.session.files import (
    CHUNK_SIZE,
    FileTransferError,
    IncomingFile,
    OutgoingFile,
    ProgressGate,
    checked_name,
    unique_path,
)
from didlink.session.transfers import CHUNKS_PER_ROUND
from messaging.frames import FileChunk, FileOffer
from tests.support.loopback import ChannelPair
from transport.framing import split_message


def _send(
    tmp_path: Path, data: bytes, name: str = "report.pdf"
) -> tuple[FileOffer, list[FileChunk]]:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / name).write_bytes(data)
    outgoing = OutgoingFile(source / name)
    offer = outgoing.offer()
    chunks: list[FileChunk] = []
    while not outgoing.done:
        chunks.extend(outgoing.next_chunks(3))
    outgoing.close()
    return offer, chunks


@pytest.mark.parametrize("offset", [0, 1 << 32, (1 << 63) - 1 - CHUNKS_PER_ROUND * CHUNK_SIZE])
def test_a_round_of_chunks_fills_whole_data_channel_messages(offset: int) -> None:
    """A round's frame, padded and encrypted, takes three data-channel messages, not four."""
    sender = ChannelPair.create().a
    file_id = os.urandom(16)
    for i in range(CHUNKS_PER_ROUND):
        data = os.urandom(CHUNK_SIZE)
        sender.send(FileChunk(file_id=file_id, offset=offset + i * CHUNK_SIZE, data=data))
    (frame,) = sender.data_to_send()
    assert len(list(split_message(frame))) == CHUNKS_PER_ROUND


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 17])
def test_round_trip(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    offer, chunks = _send(tmp_path, data)
    assert offer.sha256 == hashlib.sha256(data).digest()  # independent hash
    assert offer.size == size and offer.name == "report.pdf"
    assert all(1 <= len(c.data) <= CHUNK_SIZE for c in chunks)
    assert [c.offset for c in chunks] == list(range(0, size, CHUNK_SIZE))
    downloads = tmp_path / "downloads"
    incoming = IncomingFile(offer, downloads)
    for chunk in chunks:
        assert not incoming.complete
        incoming.write(chunk)
    assert incoming.complete
    path, ack = incoming.finish()
    assert path == downloads / "report.pdf"
    assert path.read_bytes() == data
    assert ack.next_offset == size and ack.file_id == offer.file_id
    assert sorted(p.name for p in downloads.iterdir()) == ["report.pdf"]


def test_existing_files_are_never_overwritten(tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "a.txt").write_bytes(b"old")
    (downloads / "a (1).txt").write_bytes(b"old 1")
    offer, chunks = _send(tmp_path, b"new", name="a.txt")
    incoming = IncomingFile(offer, downloads)
    for chunk in chunks:
        incoming.write(chunk)
    path, _ = incoming.finish()
    assert path == downloads / "a (2).txt"
    assert path.read_bytes() == b"new"
    assert (downloads / "a.txt").read_bytes() == b"old"


def test_hash_mismatch_discards_the_file(tmp_path: Path) -> None:
    offer, chunks = _send(tmp_path, b"x" * 1000)
    forged = offer.model_copy(update={"sha256": hashlib.sha256(b"other").digest()})
    downloads = tmp_path / "downloads"
    incoming = IncomingFile(forged, downloads)
    for chunk in chunks:
        incoming.write(chunk)
    with pytest.raises(FileTransferError, match="SHA-256"):
        incoming.finish()
    assert list(downloads.iterdir()) == []


def test_chunks_out_of_order_or_too_many_are_refused(tmp_path: Path) -> None:
    offer, chunks = _send(tmp_path, os.urandom(2 * CHUNK_SIZE))
    incoming = IncomingFile(offer, tmp_path / "d")
    with pytest.raises(FileTransferError, match="out of order"):
        incoming.write(chunks[1])
    incoming.write(chunks[0])
    incoming.write(chunks[1])
    extra = FileChunk(file_id=offer.file_id, offset=2 * CHUNK_SIZE, data=b"x")
    with pytest.raises(FileTransferError, match="more file data"):
        incoming.write(extra)
    incoming.abort()
    assert list((tmp_path / "d").iterdir()) == []


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".", "", "a\\b", "/etc/passwd"])
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(FileTransferError):
        checked_name(name)


def test_safe_names_pass() -> None:
    assert checked_name("résumé (final).pdf") == "résumé (final).pdf"
    assert checked_name(".hidden") == ".hidden"


def test_unique_path(tmp_path: Path) -> None:
    assert unique_path(tmp_path, "x.tar.gz") == tmp_path / "x.tar.gz"
    (tmp_path / "x.tar.gz").write_bytes(b"")
    assert unique_path(tmp_path, "x.tar.gz") == tmp_path / "x.tar (1).gz"
    (tmp_path / "noext").write_bytes(b"")
    assert unique_path(tmp_path, "noext") == tmp_path / "noext (1)"


def test_outgoing_refuses_what_is_not_a_readable_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        OutgoingFile(tmp_path / "missing")
    with pytest.raises(UserError):
        OutgoingFile(tmp_path)  # a folder


def test_progress_gate_reports_every_five_percent_and_the_end() -> None:
    gate = ProgressGate(1000)
    reported = [done for done in range(0, 1001, 10) if gate.due(done)]
    assert reported == list(range(50, 1001, 50))
    assert not gate.due(1000)  # the end only once
    tiny = ProgressGate(3)
    assert [d for d in (1, 2, 3, 3) if tiny.due(d)] == [1, 2, 3]
