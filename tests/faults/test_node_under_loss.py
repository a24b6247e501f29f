"""The real application node (didlink/session/node.py) under 5 % loss and 100 ms delay (issue 7 §3).

tests/faults/test_network.py puts Peer + handshake + SecureChannel through the impairing relay;
this test puts the whole node through it: two profiles with real keystore identities, two
`Node.run_session`s (inviter = initiator), the SAS confirmed on both sides, 200 texts and a
64 KiB file each way, then Quit on both (tests/faults/node_pair.py has the scenario and its
checks). Every datagram, ICE and DTLS included, is dropped with probability 5 % and the rest
delayed 100 ms one way. The 20 % / 1000 texts / 5 MB run is tests/reliability/test_node_long.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from didlink.session.node import Outcome
from tests.faults.node_pair import exchange_through_nodes
from tests.support.impair import Impairment

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


async def test_node_chat_and_files_survive_loss_and_delay(tmp_path: Path) -> None:
    report = await exchange_through_nodes(
        Impairment(loss=0.05, delay=0.100, seed=5),
        home=tmp_path,
        texts=200,
        file_size=64 * 1024,
        time_limit=30,
    )
    assert report.outcomes == (Outcome("quit", 0), Outcome("quit", 0))
    assert report.dropped > 0  # the relay really dropped datagrams on the path
    print(report)
