"""The bench's rows through TURN in the NAT lab (bench/metrics/nat.py, issue 29 point 5).

No timing is asserted: the probe runs both systems end to end through the lab's TURN server
with a tiny file, and without the lab it says why and yields nothing (its rows are absent).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import __main__ as bench_main
from bench.metrics import nat
from bench.metrics.session import SMOKE
from tests.support.nat_lab import missing
from tests.support.require import require


@pytest.mark.e2e
@pytest.mark.timeout(150)
def test_nat_probe_runs_both_systems_through_turn() -> None:
    reason = missing()
    require(reason is None, reason or "")
    bench = nat.TurnBench()
    bench.set_up(replace(SMOKE, messages=0, pings=0))
    try:
        assert bench.skipped is None
        for system in ("didlink", "baseline"):
            samples = bench.measure_turn(system)
            assert set(samples) == {"turn_connect_time", "turn_bulk_throughput",
                                    "turn_connect_time_checks_alike"}  # fmt: skip
            assert all(value > 0 for value in samples.values())
    finally:
        bench.tear_down()


def test_nat_probe_without_the_lab_says_why_and_yields_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(nat, "missing", lambda: "the NAT lab needs root (test)")
    bench = nat.TurnBench()
    bench.set_up(SMOKE)
    try:
        assert bench.skipped == "the NAT lab needs root (test)"
        assert "nat: skipped, the NAT lab needs root (test)" in capsys.readouterr().err
        assert bench.measure_turn("didlink") == {} and bench.measure_turn("baseline") == {}
    finally:
        bench.tear_down()
    assert [p.name for p in bench_main.select(bench_main.PROBES, ["turn_bulk_throughput"])] == [
        "nat"
    ]


def test_nat_probe_that_cannot_build_the_lab_says_why_and_yields_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise nat.LabError("`ip netns add x` failed: Operation not permitted")

    monkeypatch.setattr(nat, "missing", lambda: None)
    monkeypatch.setattr(nat, "nat_lab", broken)
    bench = nat.TurnBench()
    bench.set_up(SMOKE)
    try:
        assert bench.skipped is not None and "Operation not permitted" in bench.skipped
        assert "nat: skipped, the NAT lab could not be built" in capsys.readouterr().err
        assert bench.measure_turn("didlink") == {}
    finally:
        bench.tear_down()
