"""Two real application `Node`s (didlink/session/node.py) talking through the impairing relay.

tests/faults/stack.py drives Peer + Handshake + SecureChannel directly; this module drives the
whole application node instead, exactly as didlink/session/live.py does after the token exchange:

    profiles + identities -> two Peers via UdpRelay (offer -> route -> answer -> route)
    -> Node.run_session on both (inviter = handshake initiator) -> `sas` events
    -> ConfirmSas on both -> `connected` -> texts and a file each way -> Quit on both

`exchange_through_nodes()` runs that scenario and checks what the user would see on the event
stream (a `RecordingSink` stands in for JsonlSink): every text arrives exactly once and in
order (`message`), every one is confirmed (`sent` then `delivered`, once per id), the files
arrive byte-identical (`file`, `file_sent`), nothing reports an `error`, and both sessions end
`quit` with exit 0. Every wait is bounded; on the way out the session tasks are cancelled and
the peers and the relay closed, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from didlink.jsonl import ConfirmSas, Quit, SendFile, SendText
from didlink.profile.folder import Profile
from didlink.session.node import Node, Outcome, Timeouts
from identity.keys import IdentityKey
from identity.keystore import KdfParams, create_keystore
from tests.faults.stack import connect_peers
from tests.support.impair import Impairment, UdpRelay
from tests.support.sink import RecordingSink
from transport import Peer, Role

SMALL_KDF = KdfParams(memory_cost=8, iterations=1, lanes=1)  # tests only: unlock speed is moot
PASSPHRASE = "correct horse battery staple"


@dataclass
class Side:
    """One user: a profile with a real (keystore-backed) identity, a node and its sink."""

    name: str
    key: IdentityKey
    profile: Profile
    sink: RecordingSink
    node: Node
    texts: list[str] = field(default_factory=list)  # what this side typed, in order
    file_data: bytes = b""

    @classmethod
    def create(cls, name: str, home: Path, *, timeouts: Timeouts) -> Side:
        profile = Profile(home / name)
        profile.ensure()
        key = IdentityKey.generate()
        create_keystore(profile.keystore_path, key, PASSPHRASE, params=SMALL_KDF)
        sink = RecordingSink(name)
        node = Node(key=key, profile=profile, sink=sink, timeouts=timeouts)
        return cls(name=name, key=key, profile=profile, sink=sink, node=node)


@dataclass(frozen=True)
class NodeReport:
    """Figures for the report (seconds)."""

    connect_s: float  # offer/answer through the relay until both data channels are open
    verified_s: float  # run_session -> handshake -> both `sas` -> confirm -> both `connected`
    texts_s: float  # first SendText -> every `message` and `delivered` on both sides
    files_s: float  # both SendFile -> both `file` and both `file_sent`
    quit_s: float  # both Quit -> both outcomes
    dropped: int
    forwarded: int
    outcomes: tuple[Outcome, Outcome]


def _texts_for(name: str, count: int) -> list[str]:
    return [f"{name} says {i:05d}" for i in range(count)]


async def _type_texts(side: Side, count: int, *, as_the_cli: bool) -> None:
    """Ten texts per loop turn: many frames, not one. `as_the_cli`: each ten as the lines of
    one read of stdin (didlink/session/live.py: the writer's step runs right after them, in the same
    turn); else one by one, as the chat screen gives them (the writer's task sends them)."""
    side.texts = _texts_for(side.name, count)
    for index, text in enumerate(side.texts):
        if as_the_cli and index % 10 == 0:
            side.node.begin_commands()
        side.node.handle(SendText(text=text, ref=index))
        if index % 10 == 9 or index == count - 1:
            if as_the_cli:
                side.node.end_commands()
            await asyncio.sleep(0)


def _check_texts(sender: Side, receiver: Side) -> None:
    """Exactly once, in order, and each one sent then delivered once (by the same id)."""
    received = receiver.sink.of("message")
    assert [m["text"] for m in received] == sender.texts, (
        f"{sender.name} -> {receiver.name}: texts not complete, in order, exactly once"
    )
    assert all(m["from"] == sender.key.did for m in received)
    sent = sender.sink.of("sent")
    sent_ids = [s["id"] for s in sent]
    assert [s["ref"] for s in sent] == list(range(len(sender.texts))), "sent refs out of order"
    assert [m["id"] for m in received] == sent_ids, "message ids differ from the sent ids"
    delivered = Counter(d["id"] for d in sender.sink.of("delivered"))
    assert set(delivered) == set(sent_ids), "delivered ids differ from the sent ids"
    assert max(delivered.values()) == 1, "a message was reported delivered twice"


def _check_file(sender: Side, receiver: Side, name: str) -> None:
    [got] = receiver.sink.of("file")
    assert got["name"] == name and got["size"] == len(sender.file_data)
    assert got["from"] == sender.key.did
    assert Path(got["path"]).read_bytes() == sender.file_data, f"{name}: bytes differ"
    [sent] = sender.sink.of("file_sent")
    assert sent["id"] == got["id"] and sent["sha256"] == got["sha256"]


def _diagnosis(alice: Side, bob: Side, relay: UdpRelay | None) -> str:
    """What each side last reported (no texts) and the relay's counts, for a failure message."""
    lines = []
    for side in (alice, bob):
        quiet = ("message", "sent", "delivered", "progress")
        last = [
            (round(r.at, 1), r.event, r.fields) for r in side.sink.events if r.event not in quiet
        ]
        counts = {e: side.sink.count(e) for e in ("message", "sent", "delivered", "progress")}
        lines.append(
            f"{side.name}: {counts}; last events {last[-6:]}; warnings {side.sink.warnings}"
        )
    if relay is not None:
        lines.append(f"relay: a->b {relay.a_to_b}, b->a {relay.b_to_a}, ignored {relay.ignored}")
    return "\n".join(lines)


async def _cancel(tasks: list[asyncio.Task[Outcome]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


@dataclass
class VerifiedPair:
    """Two nodes in a verified session through the relay (`verified_pair`)."""

    alice: Side  # the inviter: offerer, initiator
    bob: Side
    alice_peer: Peer
    bob_peer: Peer
    relay: UdpRelay
    sessions: list[asyncio.Task[Outcome]]
    connect_s: float  # offer/answer through the relay until both data channels are open
    verified_s: float  # run_session -> handshake -> both `sas` -> confirm -> both `connected`


@contextlib.asynccontextmanager
async def verified_pair(
    impairment: Impairment, *, home: Path, time_limit: float
) -> AsyncIterator[VerifiedPair]:
    """Two nodes connected through the relay, their SAS compared and confirmed on both sides;
    on the way out the sessions are cancelled and the peers and the relay closed (bounded)."""
    timeouts = Timeouts(connect=time_limit, response=time_limit, sas=time_limit, flush=time_limit)
    alice = Side.create("alice", home, timeouts=timeouts)
    bob = Side.create("bob", home, timeouts=timeouts)
    alice_peer, bob_peer = Peer(role=Role.OFFERER), Peer(role=Role.ANSWERER)
    relay: UdpRelay | None = None
    sessions: list[asyncio.Task[Outcome]] = []
    try:
        started = time.monotonic()
        alice.node.bind_peer(bob.key.did)  # as live.py: the peer is known once the response is in
        relay = await connect_peers(
            alice_peer, bob_peer, impairment=impairment, time_limit=time_limit
        )
        assert relay is not None
        connected = time.monotonic()
        invitation_id = os.urandom(16)
        sessions += [
            asyncio.create_task(
                alice.node.run_session(
                    alice_peer, initiator=True, peer_did=bob.key.did, invitation_id=invitation_id
                )
            ),
            asyncio.create_task(
                bob.node.run_session(
                    bob_peer,
                    initiator=False,
                    peer_did=alice.key.did,
                    invitation_id=invitation_id,
                    suggested_name="alice",
                )
            ),
        ]
        for side in (alice, bob):
            await side.sink.until(
                lambda s=side: s.sink.count("sas") > 0, timeout=time_limit, what="the sas event"
            )
        [alice_sas], [bob_sas] = alice.sink.of("sas"), bob.sink.of("sas")
        assert alice_sas == bob_sas, "the two sides show different SAS: a relay rewrote something"
        for side in (alice, bob):
            side.node.handle(ConfirmSas())
        for side, other in ((alice, bob), (bob, alice)):
            await side.sink.until(
                lambda s=side: s.sink.count("connected") > 0, timeout=time_limit, what="connected"
            )
            [event] = side.sink.of("connected")
            assert event["peer"] == other.key.did and event["verified"] is True
        yield VerifiedPair(
            alice,
            bob,
            alice_peer,
            bob_peer,
            relay,
            sessions,
            connect_s=connected - started,
            verified_s=time.monotonic() - connected,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_diagnosis(alice, bob, relay)}") from None
    finally:  # bounded too: a dead ICE path must not hang the test run
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                await _cancel(sessions)
        for peer in (alice_peer, bob_peer):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await peer.close(linger=0.5)
        if relay is not None:
            relay.close()
        for side in (alice, bob):
            side.node.release()  # closes the store if a session never got to


async def exchange_through_nodes(
    impairment: Impairment,
    *,
    home: Path,
    texts: int,
    file_size: int,
    time_limit: float,
) -> NodeReport:
    """Run the scenario (module docstring); AssertionError naming the first thing that failed.

    `time_limit` bounds each phase separately (connect, verify, texts, files, quit).
    """
    async with verified_pair(impairment, home=home, time_limit=time_limit) as pair:
        alice, bob, relay = pair.alice, pair.bob, pair.relay
        verified = time.monotonic()
        await asyncio.gather(
            _type_texts(alice, texts, as_the_cli=True), _type_texts(bob, texts, as_the_cli=False)
        )
        for side, other in ((alice, bob), (bob, alice)):
            await side.sink.until(
                lambda s=side: s.sink.count("message") >= texts,
                timeout=time_limit,
                what=f"{texts} messages",
            )
            await side.sink.until(
                lambda s=side: s.sink.count("delivered") >= texts,
                timeout=time_limit,
                what=f"{texts} delivered",
            )
        _check_texts(alice, bob)
        _check_texts(bob, alice)
        texts_done = time.monotonic()

        for side in (alice, bob):
            side.file_data = os.urandom(file_size)
            path = home / f"{side.name}-payload.bin"
            path.write_bytes(side.file_data)
            side.node.handle(SendFile(str(path)))
        for side in (alice, bob):
            await side.sink.until(
                lambda s=side: s.sink.count("file") > 0 and s.sink.count("file_sent") > 0,
                timeout=time_limit,
                what="the file and file_sent",
            )
        _check_file(alice, bob, "alice-payload.bin")
        _check_file(bob, alice, "bob-payload.bin")
        files_done = time.monotonic()

        for side in (alice, bob):  # in the same loop iteration: neither sees the other's Close
            side.node.handle(Quit())
        async with asyncio.timeout(time_limit + 10):
            outcomes = await asyncio.gather(*pair.sessions)
        quit_done = time.monotonic()
        for side in (alice, bob):
            assert side.sink.of("error") == [], f"{side.name}: errors {side.sink.of('error')}"
            assert side.sink.events[-1].event == "closed"
            assert side.sink.of("closed") == [{"reason": "quit"}]
        dropped = relay.a_to_b.dropped + relay.b_to_a.dropped
        forwarded = relay.a_to_b.forwarded + relay.b_to_a.forwarded
        assert relay.ignored == 0
        assert relay.a_to_b.bytes_forwarded > file_size and relay.b_to_a.bytes_forwarded > file_size
        report = NodeReport(
            connect_s=pair.connect_s,
            verified_s=pair.verified_s,
            texts_s=texts_done - verified,
            files_s=files_done - texts_done,
            quit_s=quit_done - files_done,
            dropped=dropped,
            forwarded=forwarded,
            outcomes=(outcomes[0], outcomes[1]),
        )
    return report
