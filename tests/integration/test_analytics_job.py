"""The analytics job against the real broker, real Spark and real Delta tables."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.errors import StreamingQueryException
from pyspark.sql import functions as F

from eventlake.ops.reconcile import reconcile
from eventlake.pipeline import gold
from eventlake.pipeline.analytics import (
    EVENTS_TABLE,
    WINDOW_BATCHES_TABLE,
    WINDOW_COLUMNS,
    WINDOWS_TABLE,
    analytics_queries,
)
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.pipeline.intake import INTAKE_TABLE
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.metrics import METRICS_TABLE
from eventlake.runtime.runner import run_queries

from .helpers import PROJECT_ROOT, send, venv_environment

ANALYTICS_DEAD_LETTERS = job_table("analytics", DEAD_LETTERS_TABLE)
ANALYTICS_INTAKE = job_table("analytics", INTAKE_TABLE)
ANALYTICS_METRICS = job_table("analytics", METRICS_TABLE)

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-never-shown"
JAAS_WITH_SECRET = f'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="{SECRET}";'

WINDOWS_SCHEMA = (
    "window_start timestamp, window_end timestamp, event_type string, event_count long, distinct_users long"
)


def event(event_id: str, minute: int, event_type: str, user: str) -> tuple[bytes, bytes]:
    """A valid contract-v1 record keyed by user, at 10:<minute> on 2026-01-01 (UTC)."""
    document = {
        "event_id": event_id,
        "timestamp": f"2026-01-01T10:{minute:02d}:00Z",
        "source": "web",
        "schema_version": "1",
        "type": event_type,
        "data": {"user_id": user},
    }
    return user.encode(), json.dumps(document).encode()


def at(minute: int) -> datetime:
    return datetime(2026, 1, 1, 10, minute)


def run_analytics(spark, settings) -> None:
    run_queries(spark, settings, "analytics", analytics_queries)


def read_table(spark, settings, table):
    return spark.read.format("delta").load(settings.storage.table_path(table))


def dead_letter_rows(spark, settings) -> list[tuple]:
    rows = read_table(spark, settings, ANALYTICS_DEAD_LETTERS).collect()
    return sorted((row.partition, row.offset, bytes(row.raw_value or b""), row.error_code) for row in rows)


def test_windows_and_dead_letters_across_two_runs_on_one_checkpoint(spark, job_settings, kafka_bootstrap, fresh_topic):
    first = send(
        kafka_bootstrap,
        fresh_topic,
        [
            event("e1", 1, "click", "u1"),
            event("e2", 2, "click", "u2"),
            event("e3", 3, "pageview", "u1"),
            event("e1", 1, "click", "u1"),  # duplicate in the same batch
            event("e4", 7, "click", "u1"),
            event("e5", 4, "pageview", "u3"),  # out of order, inside the watermark
            event("e6", 12, "click", "u2"),
            event("e7", 26, "purchase", "u1"),  # the watermark becomes 10:16
            (b"u9", b"this is not json"),
            (b"u9", b'{"event_id": "x", "timestamp": 1}'),
        ],
    )
    run_analytics(spark, job_settings)

    expected_first = [
        (at(0), at(5), "click", 2, 2),
        (at(0), at(5), "pageview", 2, 2),
        (at(5), at(10), "click", 1, 1),
        (at(10), at(15), "click", 1, 1),
    ]
    assert_df_equality(
        read_table(spark, job_settings, WINDOWS_TABLE).select(*WINDOW_COLUMNS),
        spark.createDataFrame(expected_first, WINDOWS_SCHEMA),
        ignore_row_order=True,
        ignore_nullable=True,
    )

    second = send(
        kafka_bootstrap,
        fresh_topic,
        [
            event("e7", 26, "purchase", "u1"),  # duplicate across restarts, still inside the watermark
            event("e8", 3, "click", "u9"),  # late: behind the 10:16 watermark, never counted
            event("e9", 27, "purchase", "u2"),
            event("e10", 31, "click", "u3"),
            event("e11", 50, "pageview", "u1"),  # the watermark becomes 10:40; 10:50's window stays open
            (None, b""),
        ],
    )
    run_analytics(spark, job_settings)

    expected_all = [*expected_first, (at(25), at(30), "purchase", 2, 2), (at(30), at(35), "click", 1, 1)]
    assert_df_equality(
        read_table(spark, job_settings, WINDOWS_TABLE).select(*WINDOW_COLUMNS),
        spark.createDataFrame(expected_all, WINDOWS_SCHEMA),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    invalid = [first[8], first[9], second[5]]
    assert dead_letter_rows(spark, job_settings) == sorted(
        [
            (invalid[0].partition, invalid[0].offset, b"this is not json", "NOT_JSON"),
            (invalid[1].partition, invalid[1].offset, b'{"event_id": "x", "timestamp": 1}', "MISSING_FIELD"),
            (invalid[2].partition, invalid[2].offset, b"", "EMPTY_VALUE"),
        ]
    )
    dead = read_table(spark, job_settings, ANALYTICS_DEAD_LETTERS)
    assert sorted((row.error_code, row.stage, row.job, row.topic) for row in dead.collect()) == [
        ("EMPTY_VALUE", "extract", "analytics", fresh_topic),
        ("MISSING_FIELD", "contract", "analytics", fresh_topic),
        ("NOT_JSON", "extract", "analytics", fresh_topic),
    ]

    # The windows query's own figures, one row per batch that read events, account for every valid event (it
    # read the 13 the intake found valid): the duplicates e1 (same batch) and e7 (across runs), the late e8.
    figures = read_table(spark, job_settings, WINDOW_BATCHES_TABLE).groupBy().agg(
        F.sum("input_rows").alias("read"), F.sum("dropped_duplicates").alias("duplicates"),
        F.sum("dropped_late").alias("late"), F.count("*").alias("batches"),
        F.countDistinct("batch_id").alias("distinct_batches"),
    ).first()
    assert (figures.read, figures.duplicates, figures.late) == (13, 2, 1)
    assert figures.batches == figures.distinct_batches

    # A third run with nothing new changes nothing.
    run_analytics(spark, job_settings)
    assert read_table(spark, job_settings, WINDOWS_TABLE).count() == len(expected_all)
    assert read_table(spark, job_settings, ANALYTICS_DEAD_LETTERS).count() == 3

    # Every record is accounted for; e11 waits in the open 10:50 window.
    figures = reconcile(job_settings.storage, spark=spark)
    assert figures.problems() == []
    assert (figures.read, figures.valid, figures.dead_letters) == (16, 13, 3)
    assert (figures.counted, figures.pending, figures.duplicates, figures.late) == (9, 1, 2, 1)

    # The reconciliation does not rely on pipeline_metrics (written after each batch, lost when a job dies
    # before its next write): without it, the run still reconciles.
    shutil.rmtree(job_settings.storage.table_path(ANALYTICS_METRICS))
    assert reconcile(job_settings.storage, spark=spark).problems() == []

    # A lost dead letter is caught, by the library and by the script's exit code.
    dead_letters_path = job_settings.storage.table_path(ANALYTICS_DEAD_LETTERS)
    spark.sql(f"DELETE FROM delta.`{dead_letters_path}` WHERE error_code = 'EMPTY_VALUE'")
    assert "records read 16 != valid 13 + dead letters 2" in reconcile(job_settings.storage, spark=spark).problems()
    result = subprocess.run(
        [sys.executable, "-m", "eventlake.ops.reconcile",
         "--set", f"storage.tables_root={job_settings.storage.tables_root}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DOES NOT ADD UP: records read 16 != valid 13 + dead letters 2" in result.stdout

    # A batch without its figures is caught, in either query: the windows query's chain of offsets breaks, the
    # intake's batch numbers have a hole.
    windows_batches = job_settings.storage.table_path(WINDOW_BATCHES_TABLE)
    [first_windows_batch] = spark.read.format("delta").load(windows_batches).agg(F.min("batch_id")).first()
    spark.sql(f"DELETE FROM delta.`{windows_batches}` WHERE batch_id = {first_windows_batch}")
    problems = reconcile(job_settings.storage, spark=spark).problems()
    assert any(f"{WINDOW_BATCHES_TABLE} lacks the batches" in problem for problem in problems), problems
    spark.sql(f"DELETE FROM delta.`{job_settings.storage.table_path(ANALYTICS_INTAKE)}` WHERE batch_id = 0")
    problems = reconcile(job_settings.storage, spark=spark).problems()
    assert any(f"{ANALYTICS_INTAKE} lacks batches 0 of analytics_intake-" in problem for problem in problems), problems


def test_spark_submit_runs_the_job_end_to_end(spark, job_settings, kafka_bootstrap, fresh_topic, tmp_path):
    send(kafka_bootstrap, fresh_topic, [event("a", 1, "click", "u1"), event("b", 20, "click", "u2"), (None, b"{")])
    storage = job_settings.storage
    result = subprocess.run(
        [
            str(PROJECT_ROOT / ".venv" / "bin" / "spark-submit"),
            str(PROJECT_ROOT / "jobs" / "analytics.py"),
            "--set", f"kafka.bootstrap_servers={kafka_bootstrap}",
            "--set", f"kafka.topic={fresh_topic}",
            "--set", f"storage.tables_root={storage.tables_root}",
            "--set", f"storage.checkpoint_root={storage.checkpoint_root}",
            # A secret from the environment: handed to the Kafka client, never printed or stored.
            "--set", "kafka.options.kafka.sasl.jaas.config=env:EVENTLAKE_TEST_JAAS",
        ],
        cwd=PROJECT_ROOT,
        env=venv_environment(EVENTLAKE_TEST_JAAS=JAAS_WITH_SECRET),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[analytics_intake] batch 0: 3 rows in" in result.stdout
    assert "[analytics_windows] batch 0: 2 rows in" in result.stdout  # the valid events
    assert "analytics: done" in result.stdout
    windows = read_table(spark, job_settings, WINDOWS_TABLE).select(*WINDOW_COLUMNS)
    assert_df_equality(
        windows, spark.createDataFrame([(at(0), at(5), "click", 1, 1)], WINDOWS_SCHEMA), ignore_nullable=True
    )
    assert [row.error_code for row in read_table(spark, job_settings, ANALYTICS_DEAD_LETTERS).collect()] == ["NOT_JSON"]
    assert SECRET not in result.stdout + result.stderr
    for table in (WINDOWS_TABLE, ANALYTICS_DEAD_LETTERS, ANALYTICS_METRICS):
        assert SECRET not in str(read_table(spark, job_settings, table).collect())


def test_a_missing_topic_stops_the_job_with_one_clear_line(kafka_bootstrap, job_settings):
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "jobs" / "analytics.py"),
         "--set", f"kafka.bootstrap_servers={kafka_bootstrap}", "--set", "kafka.topic=no-such-topic"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert job_error_line(result.stderr) == (
        f"analytics: error: Kafka topic 'no-such-topic' does not exist at {kafka_bootstrap}. "
        "Create it with `scripts/kafka.sh create-topic no-such-topic`, or set kafka.topic."
    )


def test_a_bad_config_key_stops_the_job_with_one_clear_line():
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "jobs" / "analytics.py"), "--set", "analytics.windw=5 minutes"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert job_error_line(result.stderr).startswith(
        "analytics: error: conf/local.toml: unknown config key 'analytics.windw'"
    )


def test_a_table_root_that_is_a_file_stops_the_job_at_start(kafka_bootstrap, fresh_topic, tmp_path):
    (tmp_path / "tables").write_text("not a folder")
    result = run_job_script(kafka_bootstrap, fresh_topic, str(tmp_path / "tables"), str(tmp_path / "checkpoints"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert job_error_line(result.stderr) == (
        f"analytics: error: the tables root {tmp_path / 'tables'} is a file, not a folder: "
        "move it away or set another path"
    )


def test_offsets_gone_from_kafka_stop_the_job_with_the_fix(spark, job_settings, kafka_bootstrap, fresh_topic):
    from eventlake.runtime.kafka_admin import create_topic, delete_topic

    send(kafka_bootstrap, fresh_topic, [event(f"e{n}", n, "click", "u1") for n in range(6)])
    run_analytics(spark, job_settings)
    # The topic is deleted and made again: the checkpoint's offsets no longer exist.
    delete_topic(kafka_bootstrap, fresh_topic)
    create_topic(kafka_bootstrap, fresh_topic, partitions=2, exist_ok=False)
    send(kafka_bootstrap, fresh_topic, [event("again", 1, "click", "u1")])
    storage = job_settings.storage
    result = run_job_script(kafka_bootstrap, fresh_topic, storage.tables_root, storage.checkpoint_root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "kafka.fail_on_data_loss=false" in job_error_line(result.stderr), result.stderr[-3000:]


def test_a_job_started_over_on_new_checkpoints_resumes_from_its_tables_and_writes_each_record_once(
    spark, job_settings, kafka_bootstrap, fresh_topic, monkeypatch
):
    old = [event("old-1", 1, "click", "u1"), event("old-2", 2, "click", "u2"), (b"u9", b"old, not json"),
           event("old-3", 30, "click", "u3")]  # 10:30: the watermark passes 10:00-10:05, a window is written
    send(kafka_bootstrap, fresh_topic, old)
    run_analytics(spark, job_settings)
    assert read_table(spark, job_settings, WINDOWS_TABLE).count() > 0
    shutil.rmtree(job_settings.storage.checkpoint_root)  # the checkpoints are lost; the tables stay
    new = send(
        kafka_bootstrap,
        fresh_topic,
        [event("new-1", 3, "click", "u1"), event("new-2", 4, "pageview", "u3"), (b"u9", b"new, not json"), (None, b"")],
    )
    rebuilding = dataclasses.replace(
        job_settings, analytics=dataclasses.replace(job_settings.analytics, rebuild=True)
    )

    # The first run on the new checkpoints stops in its batch 0 before writing: the next run runs batch 0 again.
    def stop_before_writing(*args, **kwargs):
        raise RuntimeError("stopped before the batch's writes")

    monkeypatch.setattr(gold.queries, "write_intake_batch", stop_before_writing)
    with pytest.raises(StreamingQueryException):
        run_analytics(spark, rebuilding)
    monkeypatch.undo()
    run_analytics(spark, rebuilding)

    events = [row.event_id for row in read_table(spark, job_settings, EVENTS_TABLE).collect()]
    assert sorted(events) == ["new-1", "new-2", "old-1", "old-2", "old-3"]  # each once
    dead_letters = read_table(spark, job_settings, ANALYTICS_DEAD_LETTERS).select("partition", "offset").collect()
    assert len(dead_letters) == 3 and {(record.partition, record.offset) for record in new[2:]} <= {
        tuple(row) for row in dead_letters
    }
    # The intake resumed after the offsets its table records: the old records are not read again.
    intake = read_table(spark, job_settings, ANALYTICS_INTAKE).agg(F.sum("records")).first()[0]
    assert intake == len(old) + len(new)
    # The windows were computed again from analytics_events, once: the same as one run over every record.
    windows = read_table(spark, job_settings, WINDOWS_TABLE)
    assert windows.count() == windows.select("window_start", "event_type").distinct().count()
    [first] = windows.where((F.col("window_start") == at(0)) & (F.col("event_type") == "click")).collect()
    assert (first.event_count, first.distinct_users) == (3, 2)  # old-1, old-2 and new-1 (u1 twice)


def test_a_windows_query_that_lost_its_checkpoint_is_refused_while_its_tables_hold_rows(
    spark, job_settings, kafka_bootstrap, fresh_topic
):
    send(kafka_bootstrap, fresh_topic, [event("e1", 1, "click", "u1"), event("e2", 30, "click", "u2")])
    run_analytics(spark, job_settings)
    shutil.rmtree(job_settings.storage.checkpoint_path("analytics", "windows"))
    with pytest.raises(EnvironmentProblem, match="--rebuild") as refused:
        run_analytics(spark, job_settings)
    assert f"{WINDOWS_TABLE}, {WINDOW_BATCHES_TABLE}" in str(refused.value)
    assert read_table(spark, job_settings, WINDOWS_TABLE).count() == 1  # nothing written twice, nothing removed


def run_job_script(bootstrap: str, topic: str, tables_root: str, checkpoint_root: str):
    """jobs/analytics.py run by plain python (it starts its own JVM), output captured."""
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "jobs" / "analytics.py"),
         "--set", f"kafka.bootstrap_servers={bootstrap}", "--set", f"kafka.topic={topic}",
         "--set", f"storage.tables_root={tables_root}", "--set", f"storage.checkpoint_root={checkpoint_root}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )


def job_error_line(stderr: str) -> str:
    """The job's own one-line error; Spark's shutdown may log more lines after it."""
    return next((line for line in reversed(stderr.splitlines()) if line.startswith("analytics: ")), "")
