"""Transport benchmark: raw aiortc against our transport, asyncio against uvloop.

Run: `python -m bench.transport [--bulk-mib 64] [--messages 5000] [--repeats 3] [--json]`.

Each measurement runs two OS processes on this machine's own address (bench/transport_worker.py)
and measures, on the offerer: connection time (offer creation to open channel), bulk throughput
(`--bulk-mib` MiB one way, until acknowledged) and the rate of 100-byte messages. The four
configurations (raw/ours x asyncio/uvloop) run alternately, `--repeats` rounds; medians count.
"raw" is plain aiortc with full SDP signaling and bufferedAmount backpressure; "ours" is
transport.Peer with compact offers, chunking, credit flow control and typed errors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from transport.runner import uvloop_available

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("raw", "ours")


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    out: list[str] = []
    thread = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    thread.start()
    thread.join(timeout)
    if not out or not out[0]:
        raise RuntimeError(f"worker gave no answer in {timeout} s: {proc.stderr.read()[-1500:]}")  # type: ignore[union-attr]
    return out[0]


def measure(
    kind: str, loop: str, bulk: int, messages: int, timeout: float = 300
) -> dict[str, float]:
    """One offerer/answerer pair; returns connect_s, bulk_s, messages_s."""
    argv = [str(bulk), str(messages)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.transport_worker", kind, role, loop, *argv],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role in ("offerer", "answerer")
    ]
    offerer, answerer = procs
    try:
        answerer.stdin.write(_readline(offerer, 30))  # type: ignore[union-attr]
        answerer.stdin.flush()  # type: ignore[union-attr]
        offerer.stdin.write(_readline(answerer, 30))  # type: ignore[union-attr]
        offerer.stdin.flush()  # type: ignore[union-attr]
        result: dict[str, float] = json.loads(_readline(offerer, timeout))
        answerer.stdin.close()  # type: ignore[union-attr]  # the answerer's cue to close
        for proc in procs:
            proc.wait(timeout=30)
        return result
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def run_bench(*, bulk_mib: float, messages: int, repeats: int) -> dict[str, Any]:
    """Medians per configuration plus the ratios the README quotes."""
    loops = ["asyncio", "uvloop"] if uvloop_available() else ["asyncio"]
    bulk = int(bulk_mib * (1 << 20))
    samples: dict[str, list[dict[str, float]]] = {f"{k}/{lp}": [] for lp in loops for k in KINDS}
    for _ in range(repeats):
        for loop in loops:
            for kind in KINDS:
                samples[f"{kind}/{loop}"].append(measure(kind, loop, bulk, messages))
    rows: dict[str, dict[str, float]] = {}
    for name, runs in samples.items():
        rows[name] = {
            "connect_ms": statistics.median(r["connect_s"] for r in runs) * 1000,
            "bulk_mib_s": statistics.median(bulk / (1 << 20) / r["bulk_s"] for r in runs),
            "messages_per_s": statistics.median(messages / r["messages_s"] for r in runs),
        }
    ratios: dict[str, dict[str, float]] = {}
    for loop in loops:
        ratios[f"ours/raw ({loop})"] = _ratio(rows[f"ours/{loop}"], rows[f"raw/{loop}"])
    if "uvloop" in loops:
        for kind in KINDS:
            ratios[f"uvloop/asyncio ({kind})"] = _ratio(
                rows[f"{kind}/uvloop"], rows[f"{kind}/asyncio"]
            )
    return {
        "bulk_mib": bulk_mib,
        "messages": messages,
        "repeats": repeats,
        "rows": rows,
        "ratios": ratios,
    }


def _ratio(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {key: a[key] / b[key] for key in a}


def _print_table(report: dict[str, Any]) -> None:
    head = f"{'':24}{'connect ms':>12}{'bulk MiB/s':>12}{'100 B msg/s':>13}"
    print(
        f"transport bench: {report['bulk_mib']} MiB bulk, {report['messages']} messages, "
        f"median of {report['repeats']}"
    )
    print(head)
    for name, row in report["rows"].items():
        print(
            f"{name:24}{row['connect_ms']:12.1f}{row['bulk_mib_s']:12.2f}{row['messages_per_s']:13.0f}"
        )
    print("ratios (connect: lower is better; the rest: higher is better)")
    for name, row in report["ratios"].items():
        print(
            f"{name:24}{row['connect_ms']:12.2f}{row['bulk_mib_s']:12.2f}{row['messages_per_s']:13.2f}"
        )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.transport", description=__doc__)
    parser.add_argument("--bulk-mib", type=float, default=64.0)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = run_bench(bulk_mib=args.bulk_mib, messages=args.messages, repeats=args.repeats)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)


if __name__ == "__main__":
    main()
