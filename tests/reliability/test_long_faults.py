"""The long fault and load runs (issue 7 §3-4): skipped unless DIDLINK_RELIABILITY=1.

- 1000 messages each way and a 5 MB file through 5 % and 20 % loss with 100 ms one-way delay
  (tests/faults/network.py; the bounded version is tests/faults/test_network.py).
- Keystore and store: hundreds of SIGKILLs (tests/faults/kills.py; 30 in make test).
- Load: 20 sessions for 2 minutes (tests/test_load.py with DIDLINK_LOAD_SECONDS=120).

Each prints its figures (run with -s to see them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.network import exchange_under
from tests.support.impair import Impairment

ROOT = Path(__file__).resolve().parents[2]
ENABLED = os.environ.get("DIDLINK_RELIABILITY") == "1"
FILE_SIZE = 5 * 1000 * 1000
KILLS = int(os.environ.get("DIDLINK_KILLS", "300"))

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(
        not ENABLED, reason="long run: set DIDLINK_RELIABILITY=1 (make reliability)"
    ),
]


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("loss", [0.05, 0.20], ids=["loss-5%", "loss-20%"])
async def test_full_exchange_under_loss_and_delay(loss: float) -> None:
    report = await exchange_under(
        Impairment(loss=loss, delay=0.100, seed=11),
        messages=1000,
        file_size=FILE_SIZE,
        time_limit=3000,
    )
    print(f"\nloss {loss:.0%}: {report}")


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("target", ["passwd", "store", "real_didlink_passwd"])
def test_hundreds_of_kills(target: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-s",
            f"tests/faults/test_kills.py::test_{target}_killed_at_random_instants",
        ],
        cwd=ROOT,
        env={**os.environ, "DIDLINK_KILLS": str(KILLS)},
        capture_output=True,
        text=True,
        timeout=3500,
        check=False,
    )
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]


@pytest.mark.timeout(600)
def test_load_for_two_minutes() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-s",
            "tests/test_load.py",
        ],
        cwd=ROOT,
        env={**os.environ, "DIDLINK_LOAD_SECONDS": "120"},
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
