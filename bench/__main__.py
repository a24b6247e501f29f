"""`python -m bench` (`make bench`): the benchmark suite of issue 6.

    python -m bench [--quick] [--only NAME ...] [--repeats N] [--out PATH] [--no-chromium]

Runs every probe alternating didlink and its baseline, writes bench/results.json and prints
the table (Markdown) on stdout; progress goes to stderr. NAME is a metric name
(connect_time, bulk_throughput, cold_start, ...) or a probe name (session, memory, ratchet,
startup, ...). `--only cold_start --out /tmp/start.json` runs the start-up probe alone (about
ten seconds) without replacing bench/results.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import chromium
from bench.metrics import crypto, mailbox, memory, nat, rendezvous, session, startup
from bench.suite import Probe, progress, report, run_suite, summarize, table, write_results

PROBES: tuple[Probe, ...] = (
    session.PROBE,
    session.LATENCY_PROBE,
    memory.PROBE,
    *crypto.PROBES,
    startup.PROBE,
    mailbox.PROBE,
    rendezvous.PROBE,
    nat.PROBE,
)
RESULTS = Path(__file__).resolve().parent / "results.json"


def select(probes: tuple[Probe, ...], only: list[str]) -> list[Probe]:
    """The probes that measure a named metric (or are named themselves); all if none named."""
    if not only:
        return list(probes)
    chosen = [p for p in probes if p.name in only or any(m.name in only for m in p.metrics)]
    known = {p.name for p in probes} | {m.name for p in probes for m in p.metrics}
    unknown = sorted(set(only) - known)
    if unknown:
        raise SystemExit(f"unknown metric {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller sizes")
    parser.add_argument("--only", action="append", default=[], metavar="NAME")
    parser.add_argument("--repeats", type=int, help="repetitions per system (default 5; quick 2)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument("--no-chromium", action="store_true", help="skip the Chromium figures")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    probes = select(PROBES, args.only)
    collected = run_suite(probes, repeats=repeats, quick=args.quick)
    if not args.no_chromium and not args.only and chromium.available():
        progress("chromium: two peers in one headless page")
        collected.extras.update(chromium.measure(quick=args.quick))
    rows = summarize(probes, collected)
    settings = {"quick": args.quick, "repeats": repeats}
    document = report(rows, collected.extras, settings=settings, errors=collected.errors)
    write_results(document, args.out)
    print(table(document))
    progress(f"wrote {args.out}")


if __name__ == "__main__":
    main()
