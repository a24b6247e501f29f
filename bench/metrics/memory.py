"""memory_per_session: RSS per live session, 50 in one process, against raw aiortc peers.

bench/memory_worker.py does the work in a fresh host process (which starts its own guest):
didlink sessions are real `Node` sessions (handshake, SAS confirmed, tasks alive) over
transport `Peer`s; the baseline is bare aiortc peer connections with an open data channel.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.suite import Metric, Probe, Samples, System

ROOT = Path(__file__).resolve().parents[2]
MEMORY = Metric(
    "memory_per_session", "KiB", "raw aiortc peer connection", "<= 1.3", "RSS per live session"
)
SESSIONS = 50
QUICK_SESSIONS = 10


def measure(system: System, sessions: int) -> float:
    """KiB of RSS per session, from one fresh host process."""
    kind = "didlink" if system == "didlink" else "raw"
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory_worker", "host", kind, str(sessions)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"memory worker failed: {result.stderr.strip()[-1500:]}")
    per_session: float = json.loads(lines[-1])["per_session"]
    return per_session / 1024


def _measure(system: System, quick: bool) -> Samples:
    return {MEMORY.name: measure(system, QUICK_SESSIONS if quick else SESSIONS)}


PROBE = Probe("memory", (MEMORY,), _measure)
