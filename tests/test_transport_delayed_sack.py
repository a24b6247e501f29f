"""Delayed SCTP acknowledgements (transport/delayed_sack.py, specs/transport.md §6.5).

The policy is checked against a stand-in for aiortc's SCTP transport (exactly when a SACK goes
out), then on a real connection over loopback (it is installed, data arrives whole, and there
are markedly fewer SACKs than packets). Loss and reordering with it in place are covered by
tests/faults/test_network.py and the long runs in tests/reliability.
"""

from __future__ import annotations

import asyncio
import enum

import pytest

from tests import test_transport_peer
from tests.test_transport_peer import transfer_whole
from transport import Peer
from transport.delayed_sack import QUICK_ACKS, SACK_EVERY, DelayedSack

pytestmark = pytest.mark.timeout(60)

pair = test_transport_peer.pair  # two open peers over loopback


class State(enum.Enum):
    ESTABLISHED = 1
    CLOSED = 2


class FakeSctp:
    """The attributes of aiortc's RTCSctpTransport that the policy reads, and a SACK log."""

    def __init__(self) -> None:
        self._sack_needed = False
        self._sack_misordered: set[int] = set()
        self._sack_duplicates: list[int] = []
        self._association_state = State.ESTABLISHED
        self.sent = 0
        self.fail_with: Exception | None = None

    async def _send_sack(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent += 1
        self._sack_needed = False
        self._sack_duplicates.clear()

    async def packet(self) -> None:
        """What aiortc's `_handle_data` does for a packet with DATA: mark, then ask for a SACK."""
        self._sack_needed = True
        await self._send_sack()


async def next_turns() -> None:
    """Let the event loop run the end-of-turn callback and the task it starts."""
    for _ in range(3):
        await asyncio.sleep(0)


async def past_the_quick_acks(fake: FakeSctp) -> FakeSctp:
    for _ in range(QUICK_ACKS):
        await fake.packet()
    assert fake.sent == QUICK_ACKS
    fake.sent = 0
    return fake


@pytest.fixture
async def sctp() -> FakeSctp:
    """A transport with the policy installed, past the association's first packets."""
    fake = FakeSctp()
    assert DelayedSack.install(fake) is not None
    return await past_the_quick_acks(fake)


async def test_the_first_packets_are_acknowledged_one_by_one() -> None:
    fake = FakeSctp()
    assert DelayedSack.install(fake) is not None
    for count in range(1, QUICK_ACKS + 1):
        await fake.packet()
        assert fake.sent == count  # the sender's slow start counts SACKs
    await fake.packet()
    assert fake.sent == QUICK_ACKS  # then delayed


async def test_a_lone_packet_is_acknowledged_at_the_end_of_the_turn(sctp: FakeSctp) -> None:
    await sctp.packet()
    assert sctp.sent == 0  # not yet: another packet may come in this turn
    await next_turns()
    assert sctp.sent == 1
    await next_turns()
    assert sctp.sent == 1  # once


async def test_every_second_packet_is_acknowledged_at_once(sctp: FakeSctp) -> None:
    for _ in range(3 * SACK_EVERY):
        await sctp.packet()
    assert sctp.sent == 3  # the end-of-turn SACK finds nothing left to acknowledge
    await next_turns()
    assert sctp.sent == 3
    await sctp.packet()
    await next_turns()
    assert sctp.sent == 4


@pytest.mark.parametrize("report", ["gap", "duplicate"])
async def test_a_gap_or_a_duplicate_is_reported_at_once(sctp: FakeSctp, report: str) -> None:
    if report == "gap":
        sctp._sack_misordered.add(12)  # a packet arrived after a missing one
    else:
        sctp._sack_duplicates.append(9)  # a TSN we already had
    await sctp.packet()
    assert sctp.sent == 1
    sctp._sack_misordered.clear()
    await sctp.packet()  # in order again, but among the quick acks after the report
    assert sctp.sent == 2


async def test_after_a_gap_every_packet_is_acknowledged_for_a_while(sctp: FakeSctp) -> None:
    await sctp.packet()  # first of a pair: delayed
    sctp._sack_misordered.add(12)
    await sctp.packet()  # opens a gap
    await sctp.packet()  # still missing
    assert sctp.sent == 2
    sctp._sack_misordered.clear()  # the retransmission arrived
    await sctp.packet()
    assert sctp.sent == 3  # at once, so the sender leaves fast recovery
    for _ in range(QUICK_ACKS - 2):  # QUICK_ACKS from the last report of the gap on,
        await sctp.packet()  # so that the sender's slow start is not slowed down
    assert sctp.sent == 1 + QUICK_ACKS
    await sctp.packet()  # then delayed again
    assert sctp.sent == 1 + QUICK_ACKS
    await next_turns()
    assert sctp.sent == 2 + QUICK_ACKS


async def test_nothing_is_sent_once_the_association_closed(sctp: FakeSctp) -> None:
    await sctp.packet()
    sctp._association_state = State.CLOSED
    await next_turns()
    assert sctp.sent == 0


async def test_a_transport_closed_under_the_sack_is_not_an_error(sctp: FakeSctp) -> None:
    sctp.fail_with = ConnectionError("Cannot send encrypted data, not connected")
    await sctp.packet()
    await next_turns()  # the flush task ends quietly; pytest fails on an unretrieved error
    assert sctp.sent == 0


def test_an_unexpected_aiortc_is_left_alone() -> None:
    class OtherSctp:
        def _send_sack(self) -> None:  # not a coroutine function: some other version
            pass

    other = OtherSctp()
    method = other._send_sack
    assert DelayedSack.install(other) is None
    assert other._send_sack == method
    without = FakeSctp()
    del without._sack_misordered
    assert DelayedSack.install(without) is None


async def test_a_real_connection_acknowledges_about_every_second_packet(
    pair: tuple[Peer, Peer],
) -> None:
    a, b = pair
    size = 4 << 20
    await transfer_whole(a, b, size)
    assert a.stats().delayed_sack  # both roles: the offerer's SCTP transport too
    stats = b.stats()
    assert stats.delayed_sack
    assert stats.data_packets_received > size // 1200  # one DATA chunk per packet
    # aiortc alone: one SACK per packet. Here a lone packet in a turn still gets its own.
    assert stats.sacks_sent <= 0.85 * stats.data_packets_received
    assert stats.sacks_sent >= stats.data_packets_received // SACK_EVERY
