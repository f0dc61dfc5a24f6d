"""Tables every job keeps: its dead letters, its intake counts, its metrics. Each job writes its own copy
(``analytics_dead_letters``, ``etl_dead_letters``, ...), and readers see the copies of all jobs together
under the common name (``dead_letters``).

One writer per Delta table because two jobs committing to one table can lose a commit: on local disk Delta's
log store makes ``exists`` + ``rename`` atomic within one JVM only (the rename of a local file overwrites),
and on S3 the default log store allows one writing cluster per table. Commits of one job's threads are
serialized in its JVM, so each table with a single job is safe on every file system Delta supports.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession

DEAD_LETTERS = "dead_letters"
INTAKE_BATCHES = "intake_batches"
PIPELINE_METRICS = "pipeline_metrics"
EVERY_JOB_TABLES = (DEAD_LETTERS, INTAKE_BATCHES, PIPELINE_METRICS)
# Observed per batch (progress.observedMetrics) by the queries that write dead letters, and recorded in
# pipeline_metrics.dead_letters.
DEAD_LETTER_ROWS = "dead_letter_rows"
# Observed per batch by a query with expectations: rows failing one, in pipeline_metrics.expectations_failed.
EXPECTATION_FAILED_ROWS = "expectation_failed_rows"


# The built-in jobs, and the tables written under names of their own (a job's others are <job>_<name>); the replay
# script writes dead_letter_replays.
BUILT_IN_JOBS = ("analytics", "etl", "alerts")
_TABLES_OF_THEIR_OWN = {
    "bronze_events": "etl", "silver_events": "etl", "alerts": "alerts", "alerts_dead_letters": "alerts",
    "dead_letter_replays": "replay",
}


def built_in_writer(table: str) -> str | None:
    """The built-in job (or script) that writes ``table``, or None: a table has one writer.

    Example::

        built_in_writer("silver_events"), built_in_writer("etl_dead_letters"), built_in_writer("ysb_events")
        # ("etl", "etl", None)
    """
    if table in _TABLES_OF_THEIR_OWN:
        return _TABLES_OF_THEIR_OWN[table]
    return next((job for job in BUILT_IN_JOBS if table.startswith(f"{job}_")), None)


def job_table(job: str, name: str) -> str:
    """The name of ``job``'s own table ``name`` (one of :data:`EVERY_JOB_TABLES`): ``<job>_<name>``."""
    return f"{job}_{name}"


def tables_of_every_job(tables: Mapping[str, str], name: str) -> dict[str, str]:
    """Among ``tables`` (name -> path), every job's table ``name``."""
    return {table: path for table, path in tables.items() if table.endswith(f"_{name}")}


def read_every_job(spark: SparkSession, tables: Mapping[str, str], name: str) -> DataFrame | None:
    """The rows of every job's table ``name`` as one DataFrame (columns by name; a column one job's table
    lacks is NULL in its rows), or None when no job has written one."""
    frames = [spark.read.format("delta").load(path) for path in tables_of_every_job(tables, name).values()]
    if not frames:
        return None
    combined = frames[0]
    for frame in frames[1:]:
        combined = combined.unionByName(frame, allowMissingColumns=True)
    return combined


def shared_tables_of_earlier_versions(tables: Mapping[str, str]) -> list[str]:
    """The tables among ``tables`` that earlier versions shared between the jobs (``dead_letters``, ...)."""
    return [name for name in EVERY_JOB_TABLES if name in tables]
