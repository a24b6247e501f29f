"""A tiny smoke of the benchmark suite (bench/), so that `make bench` cannot rot.

No timing is asserted: only that every probe runs end to end with tiny sizes and that the
harness computes medians, ratios and the results.json schema of issue 6 correctly.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench.metrics import crypto, memory, session, startup
from bench.suite import (
    Metric,
    Probe,
    Samples,
    System,
    report,
    run_suite,
    summarize,
    table,
    write_results,
)

FIELDS = {"name", "unit", "didlink", "baseline", "baseline_name", "ratio", "target"}


def _fake_probe() -> Probe:
    values: dict[System, list[float]] = {"didlink": [3.0, 1.0, 2.0], "baseline": [4.0, 8.0, 6.0]}

    def measure(system: System, quick: bool) -> Samples:
        return {"speed": values[system].pop(0)}

    return Probe("fake", (Metric("speed", "x/s", "the other one", ">= 0.5"),), measure)


def test_harness_takes_medians_alternates_and_writes_the_schema(tmp_path: Path) -> None:
    probe = _fake_probe()
    collected = run_suite([probe], repeats=3, quick=True)
    assert collected.samples["speed"] == {"didlink": [3.0, 1.0, 2.0], "baseline": [4.0, 8.0, 6.0]}
    (row,) = summarize([probe], collected)
    assert set(row) >= FIELDS
    assert (row["didlink"], row["baseline"], row["ratio"]) == (2.0, 6.0, 0.333)
    assert row["met"] is False  # 0.333 < 0.5
    document = {"machine": report([row], {}, settings={})["machine"], "metrics": [row]}
    assert {"cpu", "cores", "python", "platform", "uvloop", "load_average"} <= set(
        document["machine"]
    )
    out = tmp_path / "results.json"
    write_results(document, out)
    assert json.loads(out.read_text())["metrics"][0]["name"] == "speed"
    assert "| speed | x/s | 2.0 | 6.0 | the other one | 0.33 | >= 0.5 | NO |" in table(document)


def test_a_probe_takes_its_samples_per_repeat_alternating() -> None:
    calls: list[System] = []

    def measure(system: System, quick: bool) -> Samples:
        calls.append(system)
        return {"speed": float(len(calls))}

    metric = Metric("speed", "x/s", "the other one", ">= 0.5")
    probe = Probe("fake", (metric,), measure, samples_per_repeat=3)
    collected = run_suite([probe], repeats=2, quick=True)
    assert calls == ["didlink", "baseline", "baseline", "didlink"] * 3
    assert len(collected.samples["speed"]["didlink"]) == 6
    (row,) = summarize([probe], collected)
    assert row["samples"] == 6


def test_the_rounds_go_round_the_probes_so_each_probes_samples_span_the_run() -> None:
    events: list[str] = []

    def probe(name: str, per_repeat: int) -> Probe:
        def measure(system: System, quick: bool) -> Samples:
            events.append(f"{name} {system}")
            return {name: 1.0}

        return Probe(
            name,
            (Metric(name, "x/s", "b", ""),),
            measure,
            lambda quick: events.append(f"set up {name}"),
            lambda: events.append(f"tear down {name}"),
            samples_per_repeat=per_repeat,
        )

    run_suite([probe("a", 1), probe("b", 2)], repeats=2, quick=True)
    one_round = ["a didlink", "a baseline", "b didlink", "b baseline", "b baseline", "b didlink"]
    second_round = ["a baseline", "a didlink", "b didlink", "b baseline", "b baseline", "b didlink"]
    assert events == [
        "set up a",
        "set up b",
        *one_round,
        *second_round,
        "tear down b",
        "tear down a",
    ]


def test_probes_set_up_are_torn_down_when_a_later_set_up_fails() -> None:
    events: list[str] = []

    def fail(quick: bool) -> None:
        raise RuntimeError("no chromium")

    fine = Probe(
        "fine",
        (Metric("fine", "x/s", "b", ""),),
        lambda system, quick: {"fine": 1.0},
        lambda quick: events.append("set up"),
        lambda: events.append("torn down"),
    )
    broken = Probe("broken", (Metric("broken", "x/s", "b", ""),), lambda s, q: {}, fail)
    with pytest.raises(RuntimeError, match="no chromium"):
        run_suite([fine, broken], repeats=1, quick=True)
    assert events == ["set up", "torn down"]


def test_a_wide_spread_of_samples_is_shown_below_the_table() -> None:
    narrow = {"name": "steady", "didlink_range": [9.0, 11.0], "baseline_range": [4.0, 6.0]}
    wide = {
        "name": "bimodal",
        "didlink_range": [8000.0, 9000.0],
        "baseline_range": [2800.0, 16000.0],
    }
    rows = [
        {
            **row,
            "unit": "x",
            "didlink": 1.0,
            "baseline": 1.0,
            "baseline_name": "b",
            "ratio": 1.0,
            "target": ">= 1",
            "met": True,
        }
        for row in (narrow, wide)
    ]
    text = table({"machine": report(rows, {}, settings={})["machine"], "metrics": rows})
    assert "  bimodal: didlink 8,000.0 .. 9,000.0, baseline 2,800.0 .. 16,000.0" in text
    assert "steady:" not in text


def test_a_figure_for_comparison_has_no_target() -> None:
    def measure(system: System, quick: bool) -> Samples:
        return {"alike": 2.0 if system == "didlink" else 4.0}

    probe = Probe("fake", (Metric("alike", "x/s", "the same, tuned", ""),), measure)
    (row,) = summarize([probe], run_suite([probe], repeats=1, quick=True))
    assert (row["ratio"], row["target"], row["met"]) == (0.5, None, None)
    text = table({"machine": report([row], {}, settings={})["machine"], "metrics": [row]})
    assert "| alike | x/s | 2.0 | 4.0 | the same, tuned | 0.50 | - | - |" in text


def test_metric_targets() -> None:
    assert Metric("a", "ms", "b", "").met(0.1) is None  # shown for comparison only
    assert Metric("a", "ms", "b", "<= 1.3").met(1.3)
    assert not Metric("a", "ms", "b", "<= 1.3").met(1.31)
    assert Metric("a", "ms", "b", ">= 2.0").met(2.5)


def test_only_selects_by_metric_or_probe_name() -> None:
    probes = bench_main.PROBES
    assert [p.name for p in bench_main.select(probes, ["latency_p50"])] == ["latency"]
    assert [p.name for p in bench_main.select(probes, ["ratchet"])] == ["ratchet"]
    assert len(bench_main.select(probes, [])) == len(probes)
    with pytest.raises(SystemExit, match="unknown metric"):
        bench_main.select(probes, ["nonsense"])


def test_every_issue_metric_is_in_the_suite() -> None:
    names = {m.name for p in bench_main.PROBES for m in p.metrics}
    assert names == {
        "connect_time",
        "bulk_throughput",
        "small_message_rate",
        "latency_p50",
        "memory_per_session",
        "invite_verify_rate",
        "ratchet_rate",
        "bulk_throughput_sctp_alike",  # for comparison: no target
        "connect_time_ice_alike",  # for comparison: no target
        "cold_start",  # issue 28, point 4
        "mailbox_delivery",  # issue 25
        "mailbox_throughput",  # issue 25
        "mailbox_delivery_wrap_alike",  # for comparison: no target
        "mailbox_throughput_wrap_alike",  # for comparison: no target
        "turn_connect_time",  # issue 29, point 5: through TURN in the NAT lab
        "turn_bulk_throughput",
        "turn_connect_time_checks_alike",  # for comparison: no target
        "rendezvous_connect_time",  # issue 25 point 5: a new figure, no target yet
    }
    untargeted = {m.name for p in bench_main.PROBES for m in p.metrics if not m.target}
    assert untargeted == {
        "bulk_throughput_sctp_alike",
        "connect_time_ice_alike",
        "turn_connect_time_checks_alike",
        "mailbox_delivery_wrap_alike",
        "mailbox_throughput_wrap_alike",
        "invite_verify_rate",  # issue 28: shown without a target
        "rendezvous_connect_time",
    }


def test_startup_probe_runs_both_systems() -> None:
    probe = startup.PROBE
    assert [p.name for p in bench_main.select(bench_main.PROBES, ["cold_start"])] == ["startup"]
    probe.setup(True)
    try:
        for system in ("didlink", "baseline"):
            (value,) = probe.measure(system, True).values()
            assert value > 0
    finally:
        probe.teardown()


def test_crypto_probes_run() -> None:
    for probe in crypto.PROBES:
        for system in ("didlink", "baseline"):
            (value,) = probe.measure(system, True).values()
            assert value > 0


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_session_probe_runs_both_systems_end_to_end() -> None:
    bench = session.Bench()
    bench.setup(session.SMOKE)
    try:
        for system in ("didlink", "baseline"):
            samples = bench.measure(system)
            assert set(samples) == {"connect_time", "small_message_rate",
                                    "bulk_throughput", "bulk_throughput_sctp_alike",
                                    "connect_time_ice_alike"}  # fmt: skip
            assert all(value > 0 for value in samples.values())
    finally:
        bench.teardown()


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_latency_probe_runs_both_systems_end_to_end() -> None:
    bench = session.Bench()
    bench.setup(replace(session.SMOKE, bulk=0))
    try:
        for system in ("didlink", "baseline"):
            (latency,) = bench.measure_latency(system).values()
            assert latency > 0
    finally:
        bench.teardown()


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_memory_probe_runs_both_systems() -> None:
    for system in ("didlink", "baseline"):
        assert memory.measure(system, 2) > 0


@pytest.mark.timeout(120)
def test_mailbox_probe_runs_both_systems(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a real local relay (nostr-relay; a failure if it is missing, as the bench)."""
    from bench.metrics import mailbox

    monkeypatch.setattr(mailbox, "QUICK_COUNT", 5)
    monkeypatch.setattr(mailbox, "QUICK_SAMPLES", 1)
    mailbox.PROBE.setup(True)
    try:
        for system in ("didlink", "baseline"):
            samples = mailbox.PROBE.measure(system, True)
            assert set(samples) == {m.name for m in mailbox.PROBE.metrics}
            assert all(value > 0 for value in samples.values())
    finally:
        mailbox.PROBE.teardown()
