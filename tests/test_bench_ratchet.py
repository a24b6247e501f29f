"""Smoke test of the ratchet benchmark harness (no timing assertions)."""

from __future__ import annotations

import pytest

from bench import ratchet as bench_ratchet


def test_bench_harness_runs(capsys: pytest.CaptureFixture[str]) -> None:
    results = bench_ratchet.run(iterations=5, repeats=1)
    assert set(results) == {"one-way", "ping-pong"}
    for row in results.values():
        assert row["ours_pairs_per_s"] > 0 and row["theirs_pairs_per_s"] > 0
    bench_ratchet.main(["--iterations", "3", "--repeats", "1", "--json"])
    assert '"ping-pong"' in capsys.readouterr().out
