"""Smoke test of the bench harness (bench/transport.py) with tiny sizes: no timing asserted."""

from __future__ import annotations

import pytest

from bench.transport import run_bench


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_bench_harness_runs_every_configuration() -> None:
    report = run_bench(bulk_mib=1, messages=100, repeats=1)
    names = set(report["rows"])
    assert {"raw/asyncio", "ours/asyncio"} <= names
    for row in report["rows"].values():
        assert row["connect_ms"] > 0 and row["bulk_mib_s"] > 0 and row["messages_per_s"] > 0
    assert "ours/raw (asyncio)" in report["ratios"]
