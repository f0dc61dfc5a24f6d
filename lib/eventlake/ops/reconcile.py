"""Reconcile a job's run: every Kafka record read is valid or a dead letter, and every valid event is
counted in a window, dropped as a duplicate or as late, or waiting in a window that is not final yet.

    scripts/reconcile.sh [--config conf/local.toml] [--set ...]

Prints the figures and exits 1 when they do not add up (2 when the tables are missing).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from eventlake.ops.metrics import METRICS_TABLE
from eventlake.ops.query import delta_tables
from eventlake.pipeline.analytics import EVENTS_TABLE, JOB, WINDOWS_QUERY, WINDOWS_TABLE
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.pipeline.intake import INTAKE_TABLE
from eventlake.runtime.config import ConfigError, StorageSettings, load_settings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.session import build_spark_session


@dataclass(frozen=True)
class Reconciliation:
    """The figures of one job's run and the checks between them."""

    read: int
    valid: int
    invalid: int
    dead_letters: int
    windows_read: int
    windowed: int
    duplicates: int
    late: int
    counted: int
    sliding: bool
    missing_metrics: tuple[int, ...]

    @property
    def pending(self) -> int:
        """Events in windows the watermark has not closed yet (written when it does)."""
        return self.windowed - self.counted

    def problems(self) -> list[str]:
        """What does not add up; empty when the run reconciles."""
        found = []
        if self.read != self.valid + self.dead_letters:
            found.append(f"records read {self.read} != valid {self.valid} + dead letters {self.dead_letters}")
        if self.invalid != self.dead_letters:
            found.append(f"invalid records {self.invalid} != rows in dead_letters {self.dead_letters}")
        if self.missing_metrics:
            found.append(
                f"pipeline_metrics lacks batches {list(self.missing_metrics)} of {WINDOWS_QUERY} "
                "(the job was stopped before it recorded them): duplicates and late counts are incomplete"
            )
        elif self.windows_read != self.valid:
            found.append(
                f"{WINDOWS_QUERY} read {self.windows_read} events, the intake found {self.valid} valid: the windows "
                f"have not caught up with {EVENTS_TABLE}; run the job to the end (availableNow) and reconcile again"
            )
        elif self.valid != self.windowed + self.duplicates + self.late:
            found.append(
                f"valid {self.valid} != windowed {self.windowed} + duplicates {self.duplicates} + late {self.late}"
            )
        if not self.sliding and self.pending < 0:
            found.append(f"windows count {self.counted} events, more than the {self.windowed} that reached them")
        return found

    def table(self) -> str:
        rows = [
            ("Kafka records read", self.read),
            ("  valid", self.valid),
            ("  dead letters", self.dead_letters),
            ("valid events", self.valid),
            ("  counted in final windows", "n/a (sliding windows)" if self.sliding else self.counted),
            ("  in windows not final yet", "n/a (sliding windows)" if self.sliding else self.pending),
            ("  duplicates dropped", self.duplicates),
            ("  late events dropped", self.late),
        ]
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value:>12}" if isinstance(value, int) else f"{label:<{width}}  {value}"
                         for label, value in rows)


def reconcile(spark: SparkSession, storage: StorageSettings, sliding: bool = False) -> Reconciliation:
    """Read the job's tables and gather the figures."""
    tables = delta_tables(spark, storage.tables_root)
    missing = [name for name in (INTAKE_TABLE, DEAD_LETTERS_TABLE, METRICS_TABLE, WINDOWS_TABLE) if name not in tables]
    if missing:
        raise EnvironmentProblem(
            f"tables {', '.join(missing)} are missing under {storage.tables_root}: run the {JOB} job first"
        )
    read = lambda name: spark.read.format("delta").load(tables[name])  # noqa: E731
    [intake] = read(INTAKE_TABLE).where(F.col("job") == JOB).agg(
        *(F.coalesce(F.sum(column), F.lit(0)).alias(column) for column in ("records", "valid", "invalid"))
    ).collect()
    dead_letters = read(DEAD_LETTERS_TABLE).where(F.col("job") == JOB).count()
    metrics = read(METRICS_TABLE).where(F.col("query_name") == WINDOWS_QUERY)
    # One row per batch, whatever the number of restarts that reported it.
    per_batch = metrics.dropDuplicates(["query_id", "batch_id"])
    [totals] = per_batch.agg(
        *(F.coalesce(F.sum(column), F.lit(0)).alias(column)
          for column in ("input_rows", "windowed_rows", "dropped_duplicates", "dropped_late")),
        F.max("batch_id").alias("last_batch"),
    ).collect()
    seen = {row.batch_id for row in per_batch.select("batch_id").collect()}
    last = totals.last_batch if totals.last_batch is not None else -1
    [[counted]] = read(WINDOWS_TABLE).agg(F.coalesce(F.sum("event_count"), F.lit(0))).collect()
    return Reconciliation(
        read=intake.records, valid=intake.valid, invalid=intake.invalid, dead_letters=dead_letters,
        windows_read=totals.input_rows, windowed=totals.windowed_rows, duplicates=totals.dropped_duplicates,
        late=totals.dropped_late, counted=counted, sliding=sliding,
        missing_metrics=tuple(sorted(set(range(last + 1)) - seen)),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/reconcile.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="conf/local.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, args.overrides)
        spark = build_spark_session(settings.spark)
        result = reconcile(spark, settings.storage, sliding=settings.analytics.slide is not None)
    except (ConfigError, EnvironmentProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(result.table())
    problems = result.problems()
    for mismatch in problems:
        print(f"DOES NOT ADD UP: {mismatch}")
    if not problems:
        print("reconciled: every record read is accounted for")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
