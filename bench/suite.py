"""The benchmark harness: alternating repetitions, medians, ratios, results.json and a table.

Theory of operation
-------------------
A `Metric` names one figure (unit, target ratio, baseline name). A `Probe` measures one or more
metrics at once for one *system*, "didlink" or "baseline": a two-process session, for example,
yields connect time, message rate and throughput in one go. `run_suite` runs every probe
`repeats` times (a probe may ask for several samples per repetition: `samples_per_repeat`),
alternating didlink and its baseline inside each repetition (and swapping which goes first every
other repetition), so that load from other users of this shared machine hits both alike. The
suite's repetitions go round the probes (the first repetition of each, then the second of
each, ...), so each probe's samples are spread over the whole run rather than taken in one
block, and a short slow phase of the machine falls on a few of them, not on most. Each
metric's figure is the median of its samples; ratio = didlink / baseline.
The machine description and the metrics go to `results.json` (issue 6's schema) and to a table.
"""

from __future__ import annotations

import json
import operator
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from transport.runner import uvloop_available

System = Literal["didlink", "baseline"]
SYSTEMS: tuple[System, System] = ("didlink", "baseline")
Samples = dict[str, float]  # metric name -> one measured value

_COMPARE: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class Metric:
    """One figure of the table; `target` is a ratio bound such as "<= 1.3" or ">= 0.9", or ""
    for a figure shown for comparison only (its row's target and met are null)."""

    name: str
    unit: str
    baseline_name: str
    target: str
    description: str = ""

    def met(self, ratio: float) -> bool | None:
        """Whether `ratio` (didlink / baseline) meets the target; None without one."""
        if not self.target:
            return None
        op, bound = self.target.split()
        return _COMPARE[op](ratio, float(bound))


@dataclass(frozen=True)
class Probe:
    """Measures `metrics` for one system per call: `measure(system, quick) -> samples`."""

    name: str
    metrics: tuple[Metric, ...]
    measure: Callable[[System, bool], Samples]
    setup: Callable[[bool], None] = lambda quick: None
    teardown: Callable[[], None] = lambda: None
    samples_per_repeat: int = 1
    """Samples of each system per repetition of the suite, alternating like the repetitions: a
    probe whose samples vary a lot from one to the next, or are short enough that a moment of
    the machine's noise decides one, takes more of them (its median then rests on more)."""


@dataclass
class Collected:
    """Every sample of every metric for both systems, plus extra absolute figures."""

    samples: dict[str, dict[System, list[float]]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, system: System, values: Samples) -> None:
        for name, value in values.items():
            self.samples.setdefault(name, {"didlink": [], "baseline": []})[system].append(value)


def progress(text: str) -> None:
    """One progress line on stderr (stdout carries the table)."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def run_suite(probes: Sequence[Probe], *, repeats: int, quick: bool) -> Collected:
    """Set every probe up, then run `repeats` rounds: in each, every probe in turn takes its
    `samples_per_repeat` samples of each system, alternating; every sample kept. Probes are torn
    down at the end, whatever happened.

    Round by round rather than probe by probe: a probe's samples then span the whole run. Taken
    in one block, the invitation probe's thirty samples lasted five seconds, and one slow phase
    of this shared machine could cover most of them (one run: didlink's samples 3,310-5,156/s
    and the baseline's 6,592-9,531, the median ratio 0.49 where the runs around it gave
    0.51-0.55). A phase shorter than a round now falls on one round's samples; a longer one
    still weighs on the medians (bench/README.md, "Where the misses and near-misses stand").
    """
    collected = Collected()
    ready: list[Probe] = []
    try:
        for probe in probes:
            progress(f"{probe.name}: setting up")
            probe.setup(quick)
            ready.append(probe)
        for round_ in range(repeats):
            for probe in ready:
                for sample in range(probe.samples_per_repeat):
                    index = round_ * probe.samples_per_repeat + sample
                    _take_pair(probe, index, repeats * probe.samples_per_repeat, quick, collected)
    finally:
        for probe in reversed(ready):
            probe.teardown()
    return collected


def _take_pair(probe: Probe, index: int, total: int, quick: bool, collected: Collected) -> None:
    """Sample `index` (from 0) of `probe` for both systems, didlink first at even indices."""
    order = SYSTEMS if index % 2 == 0 else SYSTEMS[::-1]
    for system in order:
        started = time.perf_counter()
        try:
            values = probe.measure(system, quick)
        except Exception as exc:  # one bad sample must not lose the whole run
            problem = f"{probe.name}: rep {index + 1} {system}: {exc}"
            collected.errors.append(problem)
            progress(f"FAILED {problem}")
            continue
        collected.add(system, values)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        elapsed = time.perf_counter() - started
        progress(f"{probe.name}: rep {index + 1}/{total} {system}: {shown} ({elapsed:.1f} s)")


def summarize(probes: Sequence[Probe], collected: Collected) -> list[dict[str, Any]]:
    """One row per metric: medians, ratio, target (issue 6 schema) plus sample counts."""
    rows: list[dict[str, Any]] = []
    for probe in probes:
        for metric in probe.metrics:
            samples = collected.samples.get(metric.name)
            if not samples or not samples["didlink"] or not samples["baseline"]:
                continue
            ours = statistics.median(samples["didlink"])
            theirs = statistics.median(samples["baseline"])
            ratio = ours / theirs if theirs else float("inf")
            rows.append(
                {
                    "name": metric.name,
                    "unit": metric.unit,
                    "didlink": _round(ours),
                    "baseline": _round(theirs),
                    "baseline_name": metric.baseline_name,
                    "ratio": round(ratio, 3),
                    "target": metric.target or None,
                    "met": metric.met(ratio),
                    "samples": len(samples["didlink"]),
                    "didlink_range": [
                        _round(min(samples["didlink"])),
                        _round(max(samples["didlink"])),
                    ],
                    "baseline_range": [
                        _round(min(samples["baseline"])),
                        _round(max(samples["baseline"])),
                    ],
                }
            )
    return rows


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def machine() -> dict[str, Any]:
    """What the figures were measured on (they are only comparable on the same machine)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "uvloop": uvloop_available(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def report(
    rows: list[dict[str, Any]],
    extras: dict[str, Any],
    *,
    settings: dict[str, Any],
    errors: list[str] | None = None,
) -> dict[str, Any]:
    """The results.json document."""
    document = {"machine": machine(), "settings": settings, "metrics": rows, "absolute": extras}
    if errors:
        document["errors"] = errors
    return document


def write_results(document: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n")


WIDE_SPREAD = 2.0
"""A metric whose samples (either system's) span more than this factor is listed below the table."""


def _spread(row: dict[str, Any]) -> str:
    """`name: didlink lo .. hi, baseline lo .. hi` if either range is wide, else ''."""
    ranges = {"didlink": row.get("didlink_range"), "baseline": row.get("baseline_range")}
    if not any(r and r[0] > 0 and r[1] / r[0] > WIDE_SPREAD for r in ranges.values()):
        return ""
    parts = [f"{system} {r[0]:,} .. {r[1]:,}" for system, r in ranges.items() if r]
    return f"  {row['name']}: " + ", ".join(parts)


def table(document: dict[str, Any]) -> str:
    """The metrics as a Markdown table, then the absolute figures (no targets)."""
    lines = [
        "| metric | unit | didlink | baseline | baseline name | ratio | target | met |",
        "| --- | --- | ---: | ---: | --- | ---: | --- | --- |",
    ]
    for row in document["metrics"]:
        met = {True: "yes", False: "NO", None: "-"}[row["met"]]
        lines.append(
            f"| {row['name']} | {row['unit']} | {row['didlink']:,} | {row['baseline']:,} "
            f"| {row['baseline_name']} | {row['ratio']:.2f} | {row['target'] or '-'} | {met} |"
        )
    spread = [_spread(row) for row in document["metrics"]]
    if any(spread):
        lines.append("")
        lines.append(f"Samples spread more than {WIDE_SPREAD}x (min .. max; the median counts):")
        lines.extend(line for line in spread if line)
    extras = document.get("absolute") or {}
    if extras:
        lines.append("")
        lines.append("Absolute figures (no target):")
        for name, value in extras.items():
            lines.append(f"  {name}: {value}")
    for problem in document.get("errors", []):
        lines.append(f"FAILED sample: {problem}")
    m = document["machine"]
    lines.append("")
    lines.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"uvloop {'on' if m['uvloop'] else 'off'}, load average {m['load_average']}"
    )
    return "\n".join(lines)
