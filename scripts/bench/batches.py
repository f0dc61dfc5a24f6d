"""Micro-batch benchmark: how long one micro-batch takes, per job, at several batch sizes, beside ``spark-plain``.

    scripts/bench.sh batches [--sizes 500,2500,50000] [--batches 8] [--only NAME,...]

For each size N, produces ``--batches`` × N contract-v1 records (2% duplicates, 2% malformed) into a fresh
topic and runs each contender on it with ``maxOffsetsPerTrigger = N`` and ``availableNow``, from a cold
start:

- ``eventlake-analytics``: ``spark-submit jobs/analytics.py`` (intake query, then the windows query);
- ``eventlake-etl``: ``spark-submit jobs/etl.py`` (one query: bronze, silver, dead letters, intake);
- ``spark-plain``: ``scripts/bench/spark_plain.py``, the same outputs written plainly in one file.

Per contender and size it reports the first batch (cold: JIT, class loading, first commits), the warm
batch (the median of every query's data batches after its second), a batch with no data (where a query
ran one), and the job's time per batch: the wall time from the end of the first batch to the end of the
last one, divided by the batches of records in between, all queries included. Batch times come from
Spark's progress reports (``pipeline_metrics`` for eventlake, the queries' own progress for spark-plain).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from throughput import (
    BENCH,
    SPARK_SUBMIT,
    _job_overrides,
    bench_parser,
    chosen_contenders,
    last_json,
    machine,
    make_run_dir,
    produce_backlog,
    run_measured,
    with_notes,
)

from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.kafka_admin import delete_topic

CONTENDERS = ("eventlake-analytics", "eventlake-etl", "spark-plain")


@dataclass
class BatchFigures:
    """One contender's batches at one size."""

    contender: str
    size: int
    records: int
    wall_seconds: float
    first_batch_seconds: float | None = None
    warm_batch_seconds: dict[str, float] = field(default_factory=dict)
    no_data_batch_seconds: float | None = None
    job_seconds_per_batch: float | None = None
    batches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    note: str = ""


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def summarise(figures: BatchFigures) -> None:
    """Fill in the first, warm, no-data and per-batch figures from ``figures.batches``."""
    ends, firsts, no_data, warm = [], [], [], {}
    data_batches = 0
    for query, batches in figures.batches.items():
        with_data = [b for b in batches if b["input_rows"]]
        if with_data:
            firsts.append(with_data[0])
        warm[query] = _median([b["batch_duration_ms"] / 1000 for b in with_data[2:]])
        no_data += [b["batch_duration_ms"] / 1000 for b in batches if not b["input_rows"]]
        ends += [(b["batch_time"] + b["batch_duration_ms"] / 1000, bool(b["input_rows"])) for b in batches]
        data_batches = max(data_batches, len(with_data))
    figures.warm_batch_seconds = {query: value for query, value in warm.items() if value is not None}
    figures.no_data_batch_seconds = _median(no_data)
    if firsts:
        first = min(firsts, key=lambda b: b["batch_time"])
        figures.first_batch_seconds = round(first["batch_duration_ms"] / 1000, 3)
        first_end = first["batch_time"] + first["batch_duration_ms"] / 1000
        last_end = max(end for end, _ in ends)
        if data_batches > 1:
            figures.job_seconds_per_batch = round((last_end - first_end) / (data_batches - 1), 3)


def _eventlake_command(name: str, backlog, run_dir: Path, size: int) -> list[str]:
    job = "jobs/analytics.py" if name == "eventlake-analytics" else "jobs/etl.py"
    return [SPARK_SUBMIT, job, *_job_overrides(backlog, run_dir, name, [f"kafka.max_offsets_per_trigger={size}"])]


def _plain_batches(stdout: str) -> dict[str, list[dict[str, Any]]]:
    """spark-plain's progress reports, in the shape of pipeline_metrics rows."""
    progress = last_json(stdout).get("progress", {})
    batches: dict[str, list[dict[str, Any]]] = {}
    for query, reports in progress.items():
        for report in reports:
            started = datetime.fromisoformat(report["timestamp"].replace("Z", "+00:00")).timestamp()
            batches.setdefault(query, []).append(
                {"batch_id": report["batchId"], "batch_time": started, "input_rows": report["numInputRows"],
                 "batch_duration_ms": report["batchDuration"]}
            )
    return batches


def run_size(size: int, args: argparse.Namespace, names: list[str], run_dir: Path) -> list[BatchFigures]:
    """Produce the topic for batches of ``size`` records and run every contender on it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S").lower()
    backlog = produce_backlog(args.bootstrap_servers, f"bench-batches-{size}-{stamp}", size * args.batches,
                              args.partitions, args.seed, malformed_ratio=0.02)
    size_dir = run_dir / f"size-{size}"
    results = []
    try:
        for name in names:
            print(f"bench: {name}, {size:,} records a batch", file=sys.stderr, flush=True)
            if name == "spark-plain":
                command = [SPARK_SUBMIT, str(BENCH / "spark_plain.py"),
                           "--bootstrap-servers", backlog.bootstrap_servers,
                           "--topic", backlog.topic, "--out", str(size_dir / name), "--max-offsets", str(size)]
            else:
                command = _eventlake_command(name, backlog, size_dir, size)
            code, wall, _, _, stdout = run_measured(command, size_dir / "logs", name)
            figures = BatchFigures(name, size, backlog.records, round(wall, 1))
            if code != 0:
                figures.note = f"exit code {code}; see {size_dir / 'logs' / name}.err"
            if name == "spark-plain":
                figures.batches = _plain_batches(stdout)
            results.append(figures)
        eventlake = [f for f in results if f.contender.startswith("eventlake")]
        if eventlake:
            roots = [str(size_dir / f.contender / "tables") for f in eventlake]
            _, _, _, _, stdout = run_measured(
                [SPARK_SUBMIT, str(BENCH / "delta_totals.py"), *roots], size_dir / "logs", "totals"
            )
            totals = last_json(stdout)
            for figures, root in zip(eventlake, roots, strict=True):
                figures.batches = totals.get(root, {}).get("batches", {})
                read = totals.get(root, {}).get("intake_batches", {}).get("records")
                if read != backlog.records:
                    figures.note = (
                        (figures.note + "; " if figures.note else "") + f"intake_batches holds {read} records"
                    )
    finally:
        delete_topic(args.bootstrap_servers, backlog.topic)
    for figures in results:
        summarise(figures)
    return results


def table(results: list[BatchFigures]) -> str:
    lines = [
        "| contender | records a batch | first batch s | warm batch s (per query) | no-data batch s "
        "| job s per batch |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for f in results:
        warm = ", ".join(f"{query} {seconds:.2f}" for query, seconds in f.warm_batch_seconds.items()) or "-"
        show = lambda value: "-" if value is None else f"{value:.2f}"  # noqa: E731
        lines.append(f"| {f.contender} | {f.size:,} | {show(f.first_batch_seconds)} | {warm} | "
                     f"{show(f.no_data_batch_seconds)} | {show(f.job_seconds_per_batch)} |")
    return with_notes(lines, [f"- {f.contender} at {f.size:,}: {f.note}" for f in results if f.note])


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser("batches", __doc__, CONTENDERS)
    add = parser.add_argument
    add("--sizes", default="500,2500,50000", metavar="N,...", help="records a micro-batch (default: 500,2500,50000)")
    add("--batches", type=int, default=8, metavar="N", help="batches of records per size (default: 8)")
    add("--run-dir", help="where logs, tables and checkpoints go (default: data/bench/batches-<time>)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    names = chosen_contenders(args.only, CONTENDERS)
    if names is None:
        return 2
    _, run_dir = make_run_dir(args.run_dir, "batches")
    results: list[BatchFigures] = []
    try:
        for size in (int(text) for text in args.sizes.split(",")):
            results += run_size(size, args, names, run_dir)
    except EnvironmentProblem as problem:
        print(f"bench: error: {problem}", file=sys.stderr)
        return 2
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "scripts/bench.sh batches " + " ".join(argv if argv is not None else sys.argv[1:]),
        "results": [asdict(figures) for figures in results],
    }
    out = run_dir / "batches.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(results))
    print(f"\nbench: JSON in {out}")
    return 0 if not any(f.note for f in results) else 1


if __name__ == "__main__":
    sys.exit(main())
