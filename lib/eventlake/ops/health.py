"""The health report: how each job is doing, from ``pipeline_metrics`` and ``dead_letters``, in numbers
and in a chart.

    scripts/health.sh [--config conf/local.toml] [--set ...] [--out data/health.png]

Prints, per job, its last batch, throughput, Kafka lag, late and duplicate drops, dead letters and the
most frequent error codes, and writes a PNG with throughput, batch duration, lag and dead letters over
time. Exits 2 when there is nothing to report (no ``pipeline_metrics`` yet).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from eventlake.runtime.config import ConfigError, StorageSettings, load_settings
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.ops.metrics import METRICS_TABLE
from eventlake.ops.query import delta_tables
from eventlake.runtime.session import build_spark_session

TOP_ERRORS = 3


@dataclass(frozen=True)
class QueryHealth:
    """One streaming query over all its recorded batches (each batch once, whatever the restarts)."""

    name: str
    batches: int
    last_batch_time: datetime
    rows_read: int
    rows_per_second: float
    kafka_lag: int | None


@dataclass(frozen=True)
class JobHealth:
    """One job: its queries, what its watermark and deduplication dropped, and its dead letters."""

    job: str
    queries: tuple[QueryHealth, ...]
    dropped_late: int
    dropped_duplicates: int
    dead_letters: int
    top_errors: tuple[tuple[str, int], ...]

    def lines(self) -> list[str]:
        last = max(query.last_batch_time for query in self.queries)
        errors = ", ".join(f"{code} {count}" for code, count in self.top_errors) or "none"
        lines = [
            f"job {self.job}: last batch {last:%Y-%m-%d %H:%M:%S} UTC",
            f"  dead letters {self.dead_letters} (top: {errors}), late dropped {self.dropped_late},"
            f" duplicates dropped {self.dropped_duplicates}",
        ]
        for query in self.queries:
            lag = "-" if query.kafka_lag is None else str(query.kafka_lag)
            lines.append(
                f"  {query.name}: {query.batches} batches, {query.rows_read} rows read,"
                f" {query.rows_per_second:.0f} rows/s while busy, lag now {lag}"
            )
        return lines


def _per_batch(metrics: DataFrame) -> DataFrame:
    # A batch replayed after a restart may be reported twice: count it once.
    return metrics.dropDuplicates(["query_id", "batch_id"])


def job_health(metrics: DataFrame, dead_letters: DataFrame | None) -> list[JobHealth]:
    """The health of every job found in ``pipeline_metrics`` (and its rows of ``dead_letters``)."""
    batches = _per_batch(metrics)
    queries = (
        batches.groupBy("job", "query_name")
        .agg(
            F.count(F.lit(1)).alias("batches"),
            F.max("batch_time").alias("last_batch_time"),
            F.coalesce(F.sum("input_rows"), F.lit(0)).alias("rows_read"),
            F.coalesce(F.sum("batch_duration_ms"), F.lit(0)).alias("busy_ms"),
            F.max_by("kafka_lag", F.struct("batch_time", "batch_id")).alias("kafka_lag"),
            F.coalesce(F.sum("dropped_late"), F.lit(0)).alias("dropped_late"),
            F.coalesce(F.sum("dropped_duplicates"), F.lit(0)).alias("dropped_duplicates"),
        )
        .orderBy("job", "query_name")
        .collect()
    )
    errors: dict[str, list[tuple[str, int]]] = {}
    if dead_letters is not None:
        for row in dead_letters.groupBy("job", "error_code").count().orderBy("job", F.desc("count"), "error_code").collect():
            errors.setdefault(row.job, []).append((row.error_code, row["count"]))
    report = []
    for job in dict.fromkeys(row.job for row in queries):
        rows = [row for row in queries if row.job == job]
        report.append(
            JobHealth(
                job=job,
                queries=tuple(
                    QueryHealth(
                        name=row.query_name,
                        batches=row.batches,
                        last_batch_time=row.last_batch_time,
                        rows_read=row.rows_read,
                        rows_per_second=row.rows_read / (row.busy_ms / 1000) if row.busy_ms else 0.0,
                        kafka_lag=row.kafka_lag,
                    )
                    for row in rows
                ),
                dropped_late=sum(row.dropped_late for row in rows),
                dropped_duplicates=sum(row.dropped_duplicates for row in rows),
                dead_letters=sum(count for _, count in errors.get(job, [])),
                top_errors=tuple(errors.get(job, [])[:TOP_ERRORS]),
            )
        )
    return report


def plot_health(metrics: DataFrame, dead_letters: DataFrame | None, path: Path) -> None:
    """Write a PNG of four charts over time: rows/s, batch duration, Kafka lag (per query) and dead
    letters per minute (per job)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    series = (
        _per_batch(metrics)
        .select("job", "query_name", "batch_time", "processed_rows_per_second", "batch_duration_ms", "kafka_lag")
        .orderBy("batch_time")
        .collect()
    )
    figure, axes = plt.subplots(2, 2, figsize=(13, 8), sharex=False)
    charts = [
        (axes[0][0], "rows per second (processed)", lambda row: row.processed_rows_per_second),
        (axes[0][1], "batch duration (s)", lambda row: (row.batch_duration_ms or 0) / 1000),
        (axes[1][0], "Kafka lag (records)", lambda row: row.kafka_lag),
    ]
    names = sorted({(row.job, row.query_name) for row in series})
    for axis, title, value in charts:
        for job, query in names:
            points = [(row.batch_time, value(row)) for row in series if (row.job, row.query_name) == (job, query)]
            points = [(time, number) for time, number in points if number is not None]
            if points:
                axis.plot(*zip(*points), marker=".", label=query)
        axis.set_title(title)
        axis.legend(fontsize="small")
    axis = axes[1][1]
    if dead_letters is not None:
        per_minute = (
            dead_letters.groupBy("job", F.date_trunc("minute", "ingested_at").alias("minute"))
            .count()
            .orderBy("minute")
            .collect()
        )
        for job in sorted({row.job for row in per_minute}):
            points = [(row.minute, row["count"]) for row in per_minute if row.job == job]
            axis.bar([time for time, _ in points], [count for _, count in points], width=0.0006, label=job)
        axis.legend(fontsize="small")
    axis.set_title("dead letters per minute")
    for row_axes in axes:
        for each in row_axes:
            each.tick_params(axis="x", labelrotation=30, labelsize="small")
    figure.suptitle(f"eventlake health, {datetime.utcnow():%Y-%m-%d %H:%M} UTC")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def health_report(spark: SparkSession, storage: StorageSettings, chart: Path) -> list[JobHealth]:
    """Read the tables, write the chart to ``chart`` and return the figures."""
    tables = delta_tables(spark, storage.tables_root)
    if METRICS_TABLE not in tables:
        raise EnvironmentProblem(
            f"there is no {METRICS_TABLE} table under {storage.tables_root}: run a job first"
        )
    metrics = spark.read.format("delta").load(tables[METRICS_TABLE])
    dead_letters = spark.read.format("delta").load(tables[DEAD_LETTERS_TABLE]) if DEAD_LETTERS_TABLE in tables else None
    report = job_health(metrics, dead_letters)
    plot_health(metrics, dead_letters, chart)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/health.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="conf/local.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default="data/health.png", help="where to write the chart (default: data/health.png)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, args.overrides)
        spark = build_spark_session(settings.spark)
        report = health_report(spark, settings.storage, Path(args.out))
    except (ConfigError, EnvironmentProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    for job in report:
        print("\n".join(job.lines()))
    print(f"chart: {Path(args.out).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
