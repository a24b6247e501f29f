"""The real CLI under loss at the issue's full sizes (issue 7 §3): skipped unless
DIDLINK_RELIABILITY=1 (`make reliability`).

1000 texts each way and a 5 MB file between two `didlink` processes in two network
namespaces, through the impairing bridge (tests/faults/bridge.py) at 5 % and at 20 % loss with
100 ms one-way delay, a little jitter and reordering. Same checks as the bounded version
(tests/faults/test_netns_loss.py): complete, in order, exactly once, byte-identical file, and
the bridge really dropped frames. Prints its figures (run with -s to see them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.bridge import Impairment
from tests.faults.cli_under_loss import exchange_through_bridge

ENABLED = os.environ.get("DIDLINK_RELIABILITY") == "1"
FILE_SIZE = 5 * 1000 * 1000
TIME_LIMIT = 3000.0

pytestmark = [
    pytest.mark.faults,
    pytest.mark.e2e,
    pytest.mark.skipif(
        not ENABLED, reason="long run: set DIDLINK_RELIABILITY=1 (make reliability)"
    ),
]


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("loss", [0.05, 0.20], ids=["loss-5%", "loss-20%"])
def test_cli_full_exchange_under_loss_and_delay(tmp_path: Path, loss: float) -> None:
    impairment = Impairment(
        loss=loss, delay=0.100, jitter=0.005, reorder=0.03, reorder_extra=0.020, seed=11
    )
    report = exchange_through_bridge(
        impairment, workdir=tmp_path, messages=1000, file_size=FILE_SIZE, time_limit=TIME_LIMIT
    )
    print(f"\nCLI, loss {loss:.0%}: {report}")
    assert report.udp_dropped > 0
    for direction in report.stats.values():
        assert direction["send_errors"] == 0 and direction["kernel_drops"] == 0
