"""The connect path of a live session (didlink/session/node.py, didlink/session/live.py; issue 6).

- A handshake prepared before the channel opens (`PreparedHandshake`) is the same handshake
  as one built at open: it completes against an independently built peer, and one prepared
  with another fingerprint does not (which is why it is used only when it `fits`).
- `pump_handshake` sends a prepared responder's COMMITMENT first, byte for byte.
- The inviter's bookkeeping runs exactly once while the channel opens, or at open, or when the
  wait fails, and its errors are not lost (`_while_opening`).
- The store remembers valid DIDs only (`check_did`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from didlink.jsonl import Quit
from didlink.profile.folder import Profile
from didlink.profile.store import check_did
from didlink.session import live
from didlink.session.node import Node, PreparedHandshake, QuitRequested, Timeouts, pump_handshake
from identity.errors import IdentityError
from identity.keys import IdentityKey
from messaging.errors import CryptoFailure
from messaging.handshake import Handshake, MessageType, Role
from tests.support.sink import RecordingSink

ALICE = IdentityKey(seed=b"\x01" * 32)  # inviter, handshake initiator
BOB = IdentityKey(seed=b"\x02" * 32)  # invitee, responder
FP_A = ":".join(["AA"] * 32)
FP_B = ":".join(["BB"] * 32)
INVITATION = b"\x42" * 16
TIMEOUT = 10.0


class MemoryPipe:
    """One end of an in-memory message pipe (what pump_handshake needs of a Peer)."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.other: MemoryPipe | None = None
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        assert self.other is not None
        self.sent.append(data)
        self.other.inbox.put_nowait(data)

    async def recv(self) -> bytes:
        return await self.inbox.get()


def _pipes() -> tuple[MemoryPipe, MemoryPipe]:
    a, b = MemoryPipe(), MemoryPipe()
    a.other, b.other = b, a
    return a, b


def _initiator() -> Handshake:
    return Handshake(
        role=Role.INITIATOR,
        local_key=ALICE,
        peer_did=BOB.did,
        invitation_id=INVITATION,
        local_fingerprint=FP_A,
        peer_fingerprint=FP_B,
    )


def _prepared_responder(*, peer_fingerprint: str = FP_A) -> PreparedHandshake:
    return PreparedHandshake.build(
        key=BOB,
        initiator=False,
        peer_did=ALICE.did,
        invitation_id=INVITATION,
        local_fingerprint=FP_B,
        peer_fingerprint=peer_fingerprint,
    )


async def test_a_prepared_responder_completes_against_a_fresh_initiator() -> None:
    prepared = _prepared_responder()
    assert prepared.first is not None and prepared.first[0] == MessageType.COMMITMENT.value
    a, b = _pipes()
    ours, theirs = await asyncio.wait_for(
        asyncio.gather(
            pump_handshake(b, prepared.handshake, first=prepared.first),
            pump_handshake(a, _initiator()),
        ),
        TIMEOUT,
    )
    assert b.sent[0] == prepared.first  # the commitment computed before the channel opened
    assert ours.handshake_hash == theirs.handshake_hash
    assert ours.ratchet_seed == theirs.ratchet_seed
    assert ours.own_ratchet_private is not None and theirs.peer_ratchet_public is not None


async def test_a_prepared_initiator_has_nothing_to_send_first() -> None:
    prepared = PreparedHandshake.build(
        key=ALICE,
        initiator=True,
        peer_did=BOB.did,
        invitation_id=INVITATION,
        local_fingerprint=FP_A,
        peer_fingerprint=FP_B,
    )
    assert prepared.first is None
    responder = _prepared_responder()
    a, b = _pipes()
    ours, theirs = await asyncio.wait_for(
        asyncio.gather(
            pump_handshake(a, prepared.handshake, first=prepared.first),
            pump_handshake(b, responder.handshake, first=responder.first),
        ),
        TIMEOUT,
    )
    assert ours.handshake_hash == theirs.handshake_hash


async def test_prepared_with_another_fingerprint_fails_the_handshake() -> None:
    """The fingerprints are in the prologue: a stale preparation cannot complete."""
    prepared = _prepared_responder(peer_fingerprint=":".join(["CC"] * 32))
    a, b = _pipes()
    initiator = asyncio.create_task(pump_handshake(a, _initiator()))
    with pytest.raises(CryptoFailure):  # Noise message 1 does not authenticate
        await asyncio.wait_for(pump_handshake(b, prepared.handshake, first=prepared.first), TIMEOUT)
    initiator.cancel()  # it waits for a RESPONSE that never comes
    with pytest.raises(asyncio.CancelledError):
        await initiator


def test_fits_needs_every_field() -> None:
    prepared = _prepared_responder()
    assert prepared.fits(peer_did=ALICE.did, invitation_id=INVITATION, local=FP_B, remote=FP_A)
    assert not prepared.fits(peer_did=BOB.did, invitation_id=INVITATION, local=FP_B, remote=FP_A)
    assert not prepared.fits(peer_did=ALICE.did, invitation_id=b"x", local=FP_B, remote=FP_A)
    assert not prepared.fits(peer_did=ALICE.did, invitation_id=INVITATION, local=FP_A, remote=FP_A)
    assert not prepared.fits(peer_did=ALICE.did, invitation_id=INVITATION, local=FP_B, remote=FP_B)


# --- the inviter's bookkeeping while the channel opens -----------------------------------------


class OpeningPeer:
    """A transport whose channel opens when the test says so."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()

    async def wait_open(self, timeout: float) -> None:  # noqa: ASYNC109 - the Peer signature
        await self.opened.wait()


def _node(tmp_path: Path) -> Node:
    return Node(
        key=ALICE, profile=Profile(tmp_path / "p"), sink=RecordingSink("alice"), timeouts=Timeouts()
    )


async def _open_after(peer: OpeningPeer, seconds: float) -> None:
    await asyncio.sleep(seconds)
    peer.opened.set()


async def test_bookkeeping_runs_while_the_channel_opens(tmp_path: Path) -> None:
    peer, log = OpeningPeer(), []
    opener = asyncio.create_task(_open_after(peer, live.IDLE_DELAY + 0.02))
    await live._while_opening(_node(tmp_path), peer, lambda: log.append(peer.opened.is_set()))  # type: ignore[arg-type]
    await opener
    assert log == [False]  # done once, before the channel opened


async def test_bookkeeping_runs_at_open_when_the_channel_is_quicker(tmp_path: Path) -> None:
    peer, log = OpeningPeer(), []
    peer.opened.set()
    await live._while_opening(_node(tmp_path), peer, lambda: log.append("work"))  # type: ignore[arg-type]
    assert log == ["work"]
    await asyncio.sleep(live.IDLE_DELAY + 0.02)  # the early run was cancelled: never twice
    assert log == ["work"]


async def test_bookkeeping_errors_are_raised(tmp_path: Path) -> None:
    def broken() -> None:
        raise OSError("disk gone")

    peer = OpeningPeer()
    opener = asyncio.create_task(_open_after(peer, live.IDLE_DELAY + 0.02))
    with pytest.raises(OSError, match="disk gone"):
        await live._while_opening(_node(tmp_path), peer, broken)  # type: ignore[arg-type]
    await opener


async def test_bookkeeping_is_done_when_the_user_quits_while_connecting(tmp_path: Path) -> None:
    node, peer, log = _node(tmp_path), OpeningPeer(), []
    asyncio.get_running_loop().call_soon(node.handle, Quit())
    with pytest.raises(QuitRequested):
        await live._while_opening(node, peer, lambda: log.append("work"))  # type: ignore[arg-type]
    assert log == ["work"]  # as before the wait: the invitation is recorded as used


# --- DIDs remembered by the store --------------------------------------------------------------


def test_check_did_remembers_valid_dids_only() -> None:
    check_did.cache_clear()
    assert check_did(BOB.did) == BOB.did
    assert check_did(BOB.did) == BOB.did
    assert check_did.cache_info().hits == 1
    for bad in ("did:key:z6MkNotAKey", "did:web:example.com", "did:key:z6Mk"):
        for _ in range(2):  # an invalid DID is refused every time, never remembered
            with pytest.raises(IdentityError):
                check_did(bad)
    assert check_did.cache_info().currsize == 1
