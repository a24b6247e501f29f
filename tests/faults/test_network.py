"""Loss and delay (issue 7 §3), bounded for `make test`; the full sizes are in
tests/reliability/test_long_faults.py (DIDLINK_RELIABILITY=1).

The path between the two peers is the user-space relay of tests/support/impair.py (this kernel
has no netem). Every datagram in both directions, ICE and DTLS included, is dropped with the
given probability and delayed 100 ms (one way, so 200 ms round trip). The stack above the
transport is the real one: the didlink handshake, then SecureChannel over the seeded ratchets.
"""

from __future__ import annotations

import pytest

from tests.faults.network import exchange_under
from tests.faults.stack import open_session_pair
from tests.support.impair import Impairment
from transport import CandidateKind

pytestmark = [pytest.mark.faults, pytest.mark.timeout(90)]

DELAY = 0.100


@pytest.mark.parametrize(
    ("loss", "file_size"),
    [(0.05, 256 * 1024), (0.20, 32 * 1024)],
    ids=["loss-5%", "loss-20%"],
)
async def test_messages_and_a_file_survive_loss_and_delay(loss: float, file_size: int) -> None:
    report = await exchange_under(
        Impairment(loss=loss, delay=DELAY, seed=7),
        messages=1000,
        file_size=file_size,
        time_limit=60,
    )
    assert report.dropped > 0
    assert report.frames_sent > 20  # many frames crossed the lossy path, not one big one


async def test_the_relay_path_is_the_only_path() -> None:
    """Both sides were given only the relay's address, and the channel still authenticates."""
    async with open_session_pair(impairment=Impairment(), time_limit=20) as (alice, bob, relay):
        assert relay is not None
        for end, seen_as in ((alice, relay.address("to_a")), (bob, relay.address("to_b"))):
            remote = end.peer._remote
            assert remote is not None
            [candidate] = remote.candidates
            assert candidate.kind is CandidateKind.HOST
            assert (str(candidate.ip), candidate.port) == seen_as
        assert alice.peer.remote_fingerprint == bob.peer.local_fingerprint
        assert bob.peer.remote_fingerprint == alice.peer.local_fingerprint
        assert relay.a_to_b.forwarded > 0 and relay.b_to_a.forwarded > 0


def test_impairment_is_validated() -> None:
    with pytest.raises(ValueError):
        Impairment(loss=1.0)
    with pytest.raises(ValueError):
        Impairment(delay=-1)
