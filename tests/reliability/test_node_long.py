"""The application node under 20 % loss and 100 ms delay, at full size (issue 7 §3).

1000 texts and a 5 MB file each way through two real `Node`s (tests/faults/node_pair.py); the
bounded version (5 %, 200 texts, 64 KiB) is tests/faults/test_node_under_loss.py. Skipped unless
DIDLINK_RELIABILITY=1 (make reliability); run with -s to see the figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from didlink.session.node import Outcome
from tests.faults.node_pair import exchange_through_nodes
from tests.support.impair import Impairment

ENABLED = os.environ.get("DIDLINK_RELIABILITY") == "1"

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(
        not ENABLED, reason="long run: set DIDLINK_RELIABILITY=1 (make reliability)"
    ),
]


@pytest.mark.timeout(3600)
async def test_node_full_exchange_under_20_percent_loss(tmp_path: Path) -> None:
    report = await exchange_through_nodes(
        Impairment(loss=0.20, delay=0.100, seed=13),
        home=tmp_path,
        texts=1000,
        file_size=5 * 1000 * 1000,
        time_limit=1500,  # measured: the two 5 MB files took 580 s at 20 %
    )
    assert report.outcomes == (Outcome("quit", 0), Outcome("quit", 0))
    assert report.dropped > 0
    print(report)
