"""Fault injection, the short version of ``scripts/faults.sh`` (:mod:`eventlake.local.faults`, the same code):
each job SIGKILLed 3 times at random moments over a stream with duplicates, late, out-of-order and malformed
records sent in two phases, restarted each time; every table equal row for row to a run never killed, no row
twice, and the killed analytics run reconciled."""

from __future__ import annotations

import dataclasses

import pytest
from pyspark.sql import functions as F

from eventlake.local.faults import FaultOptions, run_faults

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Small, for a quiet 2-core machine: 3 batches of each job per phase, and a kill comes before a run has begun a
# second batch of its own (or at start-up), so each phase's batches outlast its kills.
OPTIONS = FaultOptions(
    kills=3, records=600, seed=2026, phases=2, max_offsets_per_trigger=100, max_batches_before_kill=1,
    run_timeout=300.0,
)
TABLES = {
    "analytics": {
        "analytics_events", "analytics_windows", "analytics_window_batches", "analytics_dead_letters",
        "analytics_late_events",
        "analytics_intake_batches",
    },
    "etl": {"bronze_events", "silver_events", "dim_pages", "etl_dead_letters", "etl_intake_batches"},
}


def test_jobs_killed_at_random_moments_write_the_same_tables_as_runs_never_killed(
    spark, kafka_bootstrap, fresh_topic, tmp_path
):
    report = run_faults(OPTIONS, spark, kafka_bootstrap, fresh_topic, tmp_path)
    summary = report.summary()

    assert report.differences() == [], summary
    assert {job.job: len(job.kills) for job in report.jobs} == {"analytics": 3, "etl": 3}, summary
    for job, tables in TABLES.items():
        assert {table.table for table in report.tables if table.job == job} == tables, summary
    assert all(table.reference_rows > 0 for table in report.tables), summary
    assert report.reconciliation is not None and report.reconciliation.exit_code == 0, summary

    # The stream did what it is for: the second phase dropped late events and duplicates.
    [analytics] = [job for job in report.jobs if job.job == "analytics"]
    batches = spark.read.format("delta").load(analytics.killed.table_path("analytics_window_batches"))
    [figures] = batches.agg(F.sum("dropped_late").alias("late"), F.sum("dropped_duplicates").alias("dups")).collect()
    assert figures.late > 0 and figures.dups > 0, summary


def test_the_etl_with_silver_by_state_killed_at_random_moments_writes_the_same_tables(
    spark, kafka_bootstrap, fresh_topic, tmp_path
):
    # Its stateful silver query too: a batch run again starts from the state before it, and its appends and
    # figures land once.
    options = dataclasses.replace(OPTIONS, jobs=("etl-state",))
    report = run_faults(options, spark, kafka_bootstrap, fresh_topic, tmp_path)
    summary = report.summary()

    assert report.differences() == [], summary
    assert {job.job: len(job.kills) for job in report.jobs} == {"etl-state": 3}, summary
    expected = {"bronze_events", "silver_events", "dim_pages", "etl_dead_letters", "etl_intake_batches",
                "etl_silver_batches"}
    assert {table.table for table in report.tables} == expected, summary
    assert all(table.reference_rows > 0 for table in report.tables), summary
    [figures] = spark.read.format("delta").load(report.jobs[0].killed.table_path("etl_silver_batches")).agg(
        F.sum("duplicates").alias("duplicates"), F.sum("valid").alias("valid"), F.sum("silver_rows").alias("rows")
    ).collect()
    assert figures.duplicates > 0 and figures.valid == figures.rows + figures.duplicates, summary
