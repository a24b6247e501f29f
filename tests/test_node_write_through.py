"""Typed texts leave in the loop turn they were typed in (didlink/session/node.py `_write_through`).

The CLI hands the node the commands of one read of stdin between `begin_commands` and
`end_commands`; at the end, if the session's writer is idle, the node does the writer's step
itself (encrypt, `Peer.try_send`) instead of waking the writer's task. Two real nodes over real
WebRTC on this machine (tests/faults/node_pair.py, through a relay that changes nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from didlink.jsonl import SendText
from tests.faults.node_pair import VerifiedPair, verified_pair
from tests.support.impair import Impairment
from transport import Peer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[VerifiedPair]:
    async with verified_pair(Impairment(), home=tmp_path, time_limit=20) as verified:
        yield verified


def _spy(peer: Peer, monkeypatch: pytest.MonkeyPatch, *, refuse: int = 0) -> list[bool]:
    """Record what each `try_send` of `peer` answered; the first `refuse` calls answer False."""
    answers: list[bool] = []
    real: Callable[[bytes], bool] = peer.try_send

    def try_send(data: bytes) -> bool:
        answer = False if len(answers) < refuse else real(data)
        answers.append(answer)
        return answer

    monkeypatch.setattr(peer, "try_send", try_send)
    return answers


async def _writer_idle(pair: VerifiedPair) -> None:
    """Until alice's writer waits for work (after `connected` it may still be sending)."""
    node = pair.alice.node
    for _ in range(500):
        if node._writer_waiting and not node._unsent:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the writer did not become idle within 5 s")


async def _delivered(pair: VerifiedPair, texts: list[str]) -> None:
    await pair.bob.sink.until(
        lambda: pair.bob.sink.count("message") >= len(texts), timeout=10, what="the messages"
    )
    assert [m["text"] for m in pair.bob.sink.of("message")] == texts
    await pair.alice.sink.until(
        lambda: pair.alice.sink.count("delivered") >= len(texts), timeout=10, what="delivered"
    )
    assert len(pair.alice.sink.of("sent")) == len(texts)


async def test_a_typed_text_is_handed_to_the_transport_before_the_loop_runs_again(
    pair: VerifiedPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _writer_idle(pair)
    answers = _spy(pair.alice_peer, monkeypatch)
    node = pair.alice.node
    node.begin_commands()
    node.handle(SendText("now"))
    assert answers == []  # nothing leaves before the end of the commands...
    node.end_commands()
    assert answers == [True]  # ...then at once, with no await in between
    await _delivered(pair, ["now"])


async def test_the_commands_of_one_read_leave_in_one_frame(
    pair: VerifiedPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _writer_idle(pair)
    answers = _spy(pair.alice_peer, monkeypatch)
    texts = [f"burst {i}" for i in range(50)]
    node = pair.alice.node
    node.begin_commands()
    for text in texts:
        node.handle(SendText(text))
    node.end_commands()
    assert answers == [True]  # coalesced, as the writer's task would have
    await _delivered(pair, texts)


async def test_what_the_transport_cannot_take_at_once_is_left_to_the_writer_in_order(
    pair: VerifiedPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _writer_idle(pair)
    answers = _spy(pair.alice_peer, monkeypatch, refuse=2)
    node = pair.alice.node
    for text in ("first", "second"):  # two reads in one turn: no await in between
        node.begin_commands()
        node.handle(SendText(text))
        node.end_commands()
    assert answers == [False, False]  # the second read tried the first's frame first
    await _delivered(pair, ["first", "second"])  # the writer's task sent both, in order
    # (after the receipt, alice's key announcement may follow: specs/frames.md section 4a)
    assert answers[:4] == [False, False, True, True]
