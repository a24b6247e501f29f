"""A session restored from a backup (messaging/mailbox.py `restored_state`, messaging/ratchet.py
`restart_sending`; specs/backup.md "Restored sessions"): it never uses a message key twice, the
contact opens it when it had not moved on, and it heals when the contact answers the old device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.errors import CryptoFailure
from messaging.mailbox import (
    MailboxSession,
    MailboxText,
    RestoredSessionCannotSend,
    SessionState,
    restored_state,
)
from messaging.ratchet import HEADER_LEN, RatchetSession, kdf_ck
from tests.support.mailbox_pair import session_pair

_counter = iter(range(1, 10**9))


def _text(label: str) -> MailboxText:
    n = next(_counter)
    return MailboxText(mid=n.to_bytes(16, "big"), at=1_800_000_000, text=f"{label} {n}")


@contextmanager
def _recording_keys() -> Iterator[list[tuple[bytes, bytes]]]:
    """Every (header, message key) any RatchetSession encrypts under, while in the block."""
    used: list[tuple[bytes, bytes]] = []
    encrypt = RatchetSession.encrypt

    def recording(self: RatchetSession, plaintext: bytes) -> bytes:
        self.prepare_send()  # the pending sending half, so that CKs is the one encrypt uses
        _, mk = kdf_ck(self._cks)  # type: ignore[arg-type]
        frame = encrypt(self, plaintext)
        used.append((frame[:HEADER_LEN], mk))
        return frame

    with mock.patch.object(RatchetSession, "encrypt", recording):
        yield used


def _reload(session: MailboxSession) -> MailboxSession:
    """Through the stored form, as every use in the agent is."""
    return MailboxSession(SessionState.model_validate_json(session.to_state().model_dump_json()))


def _restore(snapshot: SessionState) -> MailboxSession:
    return MailboxSession(
        restored_state(SessionState.model_validate_json(snapshot.model_dump_json()))
    )


def _ratchet_public(state: SessionState) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    key = X25519PrivateKey.from_private_bytes(state.ratchet.dhs_private)
    return key.public_key().public_bytes_raw()


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.lists(st.sampled_from(["ab", "ba", "ab-lost", "ba-lost"]), max_size=8),
    n=st.integers(min_value=0, max_value=4),
    m=st.integers(min_value=1, max_value=4),
    original_arrives=st.booleans(),
    restore_responder=st.booleans(),
)
def test_a_restored_session_never_reuses_a_key_and_continues_when_it_can(
    prefix: list[str], n: int, m: int, original_arrives: bool, restore_responder: bool
) -> None:
    """Export a backup (the session's state), send N texts from the original, restore, send M
    texts: no message key and no header is ever used twice; the contact opens the restored
    side's texts iff it never received the exported sending chain; when it did, the restored
    texts do not open, and the restored side heals as soon as the contact writes."""
    with _recording_keys() as used:
        initiator, responder = session_pair(b"restore")
        me, peer = (responder, initiator) if restore_responder else (initiator, responder)
        names = {"ab": (initiator, responder), "ba": (responder, initiator)}
        for step in prefix:
            sender, receiver = names[step.removesuffix("-lost")]
            if step.endswith("-lost"):
                sender.seal(_text("lost"))
            else:
                receiver.open(sender.seal(_text("prefix")))
            me, peer = _reload(me), _reload(peer)
            initiator, responder = (peer, me) if restore_responder else (me, peer)
            names = {"ab": (initiator, responder), "ba": (responder, initiator)}

        snapshot = me.to_state()  # `didlink backup export`
        exported_chain = _ratchet_public(snapshot)
        originals = [me.seal(_text("original")) for _ in range(n)]
        if original_arrives:
            for frame in originals:
                peer.open(frame)
        moved_on = _peer_received(peer, exported_chain)

        restored = _restore(snapshot)
        if snapshot.send_root is None or snapshot.ratchet.dhr is None:
            with pytest.raises(RestoredSessionCannotSend):
                restored.seal(_text("restored"))
            # it continues once the contact writes
            restored.open(peer.seal(_text("peer writes")))
            assert not restored.restored
        texts = [_text("restored") for _ in range(m)]
        frames = [restored.seal(text) for text in texts]
        restored = _reload(restored)

        if not moved_on or snapshot.send_root is None or snapshot.ratchet.dhr is None:
            assert [peer.open(frame) for frame in frames] == texts
        else:
            before = peer.to_state()
            for frame in frames:
                with pytest.raises(CryptoFailure):
                    peer.open(frame)
            assert peer.to_state() == before  # nothing changed at the contact
            assert restored.restored
        # either way: the contact writes, the restored side reads it and answers, both open
        reply = _text("reply")
        assert restored.open(peer.seal(reply)) == reply
        assert not restored.restored
        answer = _text("answer")
        assert peer.open(restored.seal(answer)) == answer

    keys = [mk for _, mk in used]
    headers = [header for header, _ in used]
    assert len(set(keys)) == len(keys), "a message key was used twice"
    assert len(set(headers)) == len(headers), "a header was used twice"


def _peer_received(peer: MailboxSession, chain: bytes) -> bool:
    """Did `peer` receive a frame of our sending chain `chain` (it is then its DHr, or it moved
    past it)?"""
    return peer._ratchet.peer_ratchet_public == chain


def test_a_responder_that_never_received_cannot_send_until_the_contact_writes() -> None:
    initiator, responder = session_pair(b"responder")
    restored = _restore(responder.to_state())
    assert not restored.can_send
    with pytest.raises(RestoredSessionCannotSend):
        restored.seal(_text("too early"))
    hello = _text("hello")
    assert restored.open(initiator.seal(hello)) == hello
    assert restored.can_send and not restored.restored
    answer = _text("answer")
    assert initiator.open(restored.seal(answer)) == answer


def test_restart_needs_a_root_and_a_peer_key() -> None:
    from messaging.errors import LocalProtocolError

    _, responder = session_pair(b"no root")
    ratchet = RatchetSession.from_state(responder.to_state().ratchet)
    assert ratchet.send_root is None
    with pytest.raises(LocalProtocolError):
        ratchet.restart_sending()


def test_a_frame_in_flight_at_the_export_still_opens_and_an_old_one_never_twice() -> None:
    """After the restored side took its fresh step: the contact's frame that was in flight at
    the export opens (the receiving chain is the one restored); one the old device had already
    read does not, neither on the fresh state nor on the state as restored."""
    alice, bob = session_pair(b"in flight")
    bob.open(alice.seal(_text("hi")))
    read = bob.seal(_text("read before the export"))
    alice.open(read)
    in_flight = bob.seal(_text("in flight"))
    restored = _restore(alice.to_state())
    sent = _text("from the restored side")
    frame = restored.seal(sent)
    assert restored.open(in_flight).text.startswith("in flight")  # type: ignore[union-attr]
    with pytest.raises(CryptoFailure):
        restored.open(read)
    assert bob.open(frame) == sent  # Bob had not moved on


def test_the_fresh_step_uses_a_new_ratchet_key_and_keeps_pn() -> None:
    alice, bob = session_pair(b"header")
    bob.open(alice.seal(_text("one")))
    alice.open(bob.seal(_text("two")))
    snapshot = alice.to_state()
    original = alice.seal(_text("original"))
    restored = _restore(snapshot)
    fresh = restored.seal(_text("restored"))
    assert fresh[1:33] != original[1:33]  # a ratchet key the old device never used
    assert fresh[33:37] == original[33:37]  # pn: the chain before the abandoned one
    assert fresh[37:41] == bytes(4)  # n = 0 on the new chain


def test_a_replay_never_brings_back_the_restored_chain() -> None:
    """A frame of the receiving chain both states share, read once on the fresh state, comes
    again: it is refused, and not opened on the state as restored (whose sending chain is the
    old device's: adopting it would reuse its keys)."""
    alice, bob = session_pair(b"replay")
    bob.open(alice.seal(_text("hi")))
    alice.open(bob.seal(_text("hello")))
    snapshot = alice.to_state()
    old_chain = alice.seal(_text("from the old device"))[1:33]
    in_flight = bob.seal(_text("in flight"))
    restored = _restore(snapshot)
    restored.seal(_text("fresh"))
    restored.open(in_flight)
    with pytest.raises(CryptoFailure):
        restored.open(in_flight)
    restored = _reload(restored)
    with pytest.raises(CryptoFailure):
        restored.open(in_flight)
    assert restored.seal(_text("after the replay"))[1:33] != old_chain


def test_a_replayed_skipped_frame_never_brings_back_the_restored_chain() -> None:
    """The same through a skipped key: a frame of an older chain of the contact's, kept as a
    skipped key in both states, read on the fresh state, then replayed."""
    alice, bob = session_pair(b"skipped")
    bob.open(alice.seal(_text("hi")))
    late = bob.seal(_text("late"))  # Bob's chain b1, message 0: Alice skips it for now
    alice.open(bob.seal(_text("on time")))
    bob.open(alice.seal(_text("reply")))  # Bob's next DH step: chain b2
    alice.open(bob.seal(_text("b2")))
    snapshot = alice.to_state()
    assert snapshot.ratchet.skipped  # the late frame's key
    old_chain = alice.seal(_text("from the old device"))[1:33]
    restored = _restore(snapshot)
    restored.seal(_text("fresh"))
    assert restored.open(late).text.startswith("late")  # type: ignore[union-attr]
    with pytest.raises(CryptoFailure):
        restored.open(late)
    assert restored.restored  # still waiting for a DH step of the contact's
    assert restored.seal(_text("after the replay"))[1:33] != old_chain


def test_a_backup_of_a_restored_profile_takes_its_own_fresh_step() -> None:
    """Restored once, sent, exported again, restored again: the second copy does not go on
    from the first copy's fresh chain (which the first copy still uses)."""
    alice, bob = session_pair(b"twice")
    bob.open(alice.seal(_text("hi")))
    alice.open(bob.seal(_text("hello")))
    with _recording_keys() as used:
        first = _restore(alice.to_state())
        first.seal(_text("first copy"))
        second = _restore(first.to_state())
        first.seal(_text("first copy again"))
        second.seal(_text("second copy"))
    keys = [mk for _, mk in used]
    assert len(set(keys)) == len(keys)
