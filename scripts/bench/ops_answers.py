"""Time to first answer of the operator commands, as a user runs them (a new process each time): the query
script on delta-rs + DuckDB (the default) beside Spark SQL (--engine spark), the reconciliation without and
with the windows' state (--read-state starts Spark), the health report and the completeness report.

    scripts/bench.sh ops [--tables-root data/demo/tables --checkpoint-root data/demo/checkpoints] [--runs 3]

Reads the tables of a run that already happened (the demo's by default: run scripts/demo.sh first). Prints
per command the median of --runs runs: seconds to the first line printed, and to the end. JSON in
data/bench/ops.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

QUERIES = {
    "count": "SELECT count(*) AS events FROM analytics_events",
    "windows": "SELECT window_start, event_type, event_count FROM analytics_windows ORDER BY event_count DESC LIMIT 5",
    "dead letters": "SELECT job, error_code, count(*) AS n FROM dead_letters GROUP BY job, error_code ORDER BY n DESC",
}


def timed(command: list[str]) -> tuple[float, float]:
    """Seconds from the start of ``command`` to its first line on stdout, and to its exit (which must be 0)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    process.stdout.readline()
    first = time.perf_counter() - started
    process.stdout.read()
    if process.wait() != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {process.returncode})")
    return first, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench.sh ops", description=__doc__.splitlines()[0])
    parser.add_argument("--tables-root", default="data/demo/tables")
    parser.add_argument("--checkpoint-root", default="data/demo/checkpoints")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not (ROOT / args.tables_root / "analytics_events").is_dir():
        print(f"no analytics tables under {args.tables_root}: run scripts/demo.sh first", file=sys.stderr)
        return 2
    where = [
        "--set", f"storage.tables_root={args.tables_root}", "--set", f"storage.checkpoint_root={args.checkpoint_root}"
    ]
    script = lambda name: [str(ROOT / "scripts" / name), *where]  # noqa: E731
    commands: dict[str, list[str]] = {}
    for label, sql in QUERIES.items():
        commands[f"query {label}: duckdb"] = [*script("query.sh"), sql]
        commands[f"query {label}: spark"] = [*script("query.sh"), "--engine", "spark", sql]
    commands["reconcile (tables)"] = script("reconcile.sh")
    commands["reconcile --read-state (spark)"] = [*script("reconcile.sh"), "--read-state"]
    commands["health (figures + chart)"] = [*script("health.sh"), "--out", "data/bench/ops-health.png"]
    commands["completeness"] = script("completeness.sh")

    results = {}
    print(f"{'command':<34} {'first line s':>12} {'total s':>9}   (median of {args.runs})")
    for label, command in commands.items():
        runs = [timed(command) for _ in range(args.runs)]
        first, total = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        results[label] = {"first_line_s": round(first, 3), "total_s": round(total, 3), "runs": runs}
        print(f"{label:<34} {first:>12.2f} {total:>9.2f}", flush=True)
    out = ROOT / "data" / "bench" / "ops.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"tables_root": args.tables_root, "results": results}, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
