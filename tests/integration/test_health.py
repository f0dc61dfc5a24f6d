"""The health report and the metrics it reads, on a small real run of the analytics job."""

from __future__ import annotations

import re

import pytest
from pyspark.sql import functions as F

from eventlake.ops import health
from eventlake.pipeline.analytics import analytics_queries
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.metrics import METRICS_TABLE
from eventlake.runtime.runner import run_queries

from .helpers import send
from .test_analytics_job import event, read_table

ANALYTICS_DEAD_LETTERS = job_table("analytics", DEAD_LETTERS_TABLE)
ANALYTICS_METRICS = job_table("analytics", METRICS_TABLE)

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_report_prints_the_tables_figures_and_draws_the_charts(
    spark, job_settings, kafka_bootstrap, fresh_topic, tmp_path, capsys
):
    send(
        kafka_bootstrap,
        fresh_topic,
        [event("a", 1, "click", "u1"), event("a", 1, "click", "u1"), event("b", 20, "click", "u2"),
         (None, b"{"), (None, b""), (None, b"[]")],
    )
    queries = run_queries(spark, job_settings, "analytics", analytics_queries)
    capsys.readouterr()

    # The listener's rows are the queries' own progress reports, batch for batch.
    recorded = {
        (row.query_id, row.batch_id): row for row in read_table(spark, job_settings, ANALYTICS_METRICS).collect()
    }
    progress = [report for query in queries for report in query.recentProgress]
    assert progress and len(recorded) == len(progress)
    for report in progress:
        row = recorded[(str(report.id), report.batchId)]
        assert (row.query_name, row.input_rows, row.batch_duration_ms, row.add_batch_ms) == (
            report.name, report.numInputRows, report.batchDuration, report.durationMs.get("addBatch")
        )

    chart = tmp_path / "health.png"
    storage = job_settings.storage
    assert health.main(["--set", f"storage.tables_root={storage.tables_root}", "--out", str(chart)]) == 0
    printed = capsys.readouterr().out

    # The figures printed are the tables' figures.
    metrics = read_table(spark, job_settings, ANALYTICS_METRICS).dropDuplicates(["query_id", "batch_id"])
    intake = metrics.where("query_name = 'analytics_intake'").agg(
        F.sum("input_rows"), F.sum("dead_letters"), F.count("*")
    ).first()
    dead_letters = read_table(spark, job_settings, ANALYTICS_DEAD_LETTERS).count()
    assert (intake[0], intake[1], dead_letters) == (6, 3, 3)  # the listener's dead_letters match the table
    assert f"analytics_intake: {intake[2]} batches, 6 rows read," in printed
    assert (
        "dead letters 3 (top: EMPTY_VALUE 1, NOT_JSON 1, NOT_OBJECT 1), late dropped 0, duplicates dropped 1" in printed
    )
    assert re.search(r"^job analytics: last batch \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", printed, re.MULTILINE)
    assert f"chart: {chart}" in printed
    # The chart is a real PNG with something drawn on it.
    assert chart.read_bytes().startswith(PNG_SIGNATURE) and chart.stat().st_size > 20_000


def test_the_report_without_metrics_says_run_a_job_first(spark, tmp_path, capsys):
    assert health.main(["--set", f"storage.tables_root={tmp_path / 'none'}", "--out", str(tmp_path / "h.png")]) == 2
    assert "there is no pipeline_metrics table" in capsys.readouterr().err
