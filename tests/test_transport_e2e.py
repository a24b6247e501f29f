"""Two OS processes exchange compact offers over pipes and 10 MB both ways (real WebRTC)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SIZE = 10_000_000


def _spawn(role: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.transport_peer", role, str(SIZE)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    """One stdout line, or fail after `timeout` seconds (never hang)."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        proc.kill()
        raise AssertionError(f"no line from peer within {timeout} s: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
    return result[0]


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_two_processes_ten_megabytes_both_ways() -> None:
    offerer, answerer = _spawn("offerer"), _spawn("answerer")
    try:
        offer = _readline(offerer, 20)
        assert len(offer.strip()) < 200  # a compact offer stays short as text too
        answerer.stdin.write(offer)  # type: ignore[union-attr]
        answerer.stdin.flush()  # type: ignore[union-attr]
        answer = _readline(answerer, 20)
        offerer.stdin.write(answer)  # type: ignore[union-attr]
        offerer.stdin.flush()  # type: ignore[union-attr]
        report_o = json.loads(_readline(offerer, 60))
        report_a = json.loads(_readline(answerer, 60))
        assert offerer.wait(timeout=15) == 0
        assert answerer.wait(timeout=15) == 0
    finally:
        for proc in (offerer, answerer):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
    assert report_o["sent"] == report_a["received"]
    assert report_a["sent"] == report_o["received"]
    assert report_o["sent"] != report_a["sent"]
    assert report_o["remote_fingerprint"] == report_a["local_fingerprint"]
    assert report_a["remote_fingerprint"] == report_o["local_fingerprint"]
