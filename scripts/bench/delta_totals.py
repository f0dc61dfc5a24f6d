"""What the eventlake jobs of a scripts/bench.sh run wrote: row counts of their Delta tables, and every
batch of every query from ``pipeline_metrics``, as JSON.

    spark-submit scripts/bench/delta_totals.py TABLES_ROOT [TABLES_ROOT ...]

The harness uses it to check that a timed run accounted for every record of the topic (intake records,
bronze rows), so a fast but incomplete run cannot pass for a fast one, and to time each micro-batch.
Runs after the timings, untimed.
"""

from __future__ import annotations

import json
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from eventlake.pipeline.analytics import WINDOWS_TABLE
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.pipeline.etl import BRONZE_TABLE, SILVER_TABLE
from eventlake.pipeline.intake import INTAKE_TABLE
from eventlake.runtime.config import SparkSettings
from eventlake.runtime.job_tables import EVERY_JOB_TABLES, read_every_job
from eventlake.runtime.metrics import METRICS_TABLE
from eventlake.runtime.session import build_spark_session

# Table -> {total name: the column of rows it sums}; a count is a sum of ones.
SUMS = {
    WINDOWS_TABLE: {"windows": None, "events_counted": "event_count"},
    INTAKE_TABLE: {"records": "records", "valid": "valid", "invalid": "invalid"},
    DEAD_LETTERS_TABLE: {"rows": None},
    BRONZE_TABLE: {"rows": None},
    SILVER_TABLE: {"rows": None},
}


def table_totals(spark: SparkSession, tables_root: str) -> dict[str, dict[str, int]]:
    """Per table found under ``tables_root``: its sums in :data:`SUMS` (the tables every job keeps, such as
    ``intake_batches``, summed over all jobs)."""
    found = _delta_tables(tables_root)
    totals = {}
    for table, sums in SUMS.items():
        rows = read_every_job(spark, found, table) if table in EVERY_JOB_TABLES else None
        if table in found and table not in EVERY_JOB_TABLES:
            rows = spark.read.format("delta").load(found[table])
        if rows is not None:
            sums_of = [F.sum(F.col(column) if column else F.lit(1)).alias(name) for name, column in sums.items()]
            row = rows.agg(*sums_of).first()
            totals[table] = {name: int(row[name] or 0) for name in sums}
    return totals


def _delta_tables(tables_root: str) -> dict[str, str]:
    """Name -> path of the Delta tables in the local folder ``tables_root``."""
    if not os.path.isdir(tables_root):
        return {}
    return {
        name: os.path.join(tables_root, name)
        for name in sorted(os.listdir(tables_root))
        if os.path.isdir(os.path.join(tables_root, name, "_delta_log"))
    }


BATCH_COLUMNS = (
    "batch_id", "batch_time", "input_rows", "batch_duration_ms", "add_batch_ms", "query_planning_ms",
    "latest_offset_ms", "wal_commit_ms", "commit_offsets_ms", "state_rows",
)


def query_batches(spark: SparkSession, tables_root: str) -> dict[str, list[dict]]:
    """Every batch of every query in the jobs' ``pipeline_metrics`` under ``tables_root``, in batch order
    (times in seconds since the epoch)."""
    metrics = read_every_job(spark, _delta_tables(tables_root), METRICS_TABLE)
    if metrics is None:
        return {}
    rows = (
        metrics.dropDuplicates(["query_id", "batch_id"])
        .select("query_name", *BATCH_COLUMNS).orderBy("query_name", "batch_id").collect()
    )
    batches: dict[str, list[dict]] = {}
    for row in rows:
        figures = {name: row[name] for name in BATCH_COLUMNS}
        figures["batch_time"] = row.batch_time.timestamp() if row.batch_time else None
        batches.setdefault(row.query_name, []).append(figures)
    return batches


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: spark-submit scripts/bench/delta_totals.py TABLES_ROOT [TABLES_ROOT ...]", file=sys.stderr)
        return 2
    spark = build_spark_session(SparkSettings(app_name="eventlake-bench-totals"))
    print(json.dumps({root: {**table_totals(spark, root), "batches": query_batches(spark, root)} for root in argv}))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
