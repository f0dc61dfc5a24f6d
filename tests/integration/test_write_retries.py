"""One retry policy for every table write of every job, on real Spark and Delta failures: a concurrent
commit is retried and the write succeeds, a permanent error fails at once, and the analytics intake's
writes are retried like the ETL's."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pyspark.errors import AnalysisException, StreamingQueryException
from pyspark.sql import functions as F

from eventlake.pipeline.analytics import EVENTS_TABLE, analytics_queries
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.pipeline.intake import INTAKE_TABLE
from eventlake.pipeline.sinks import BatchWriter, insert_new_rows
from eventlake.runtime.config import RetrySettings, load_settings
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.retry import with_retries
from eventlake.runtime.runner import run_queries

from .helpers import PROJECT_ROOT, send

ANALYTICS_DEAD_LETTERS = job_table("analytics", DEAD_LETTERS_TABLE)
ANALYTICS_INTAKE = job_table("analytics", INTAKE_TABLE)

pytestmark = pytest.mark.integration

QUICK = RetrySettings(max_attempts=3, initial_backoff=timedelta(milliseconds=100))


def silver_rows(spark, *event_ids: str):
    rows = [(event_id, "2026-01-01") for event_id in event_ids]
    return spark.createDataFrame(rows, "event_id string, event_date string")


def event_ids(spark, table: str) -> list[str]:
    return sorted(row.event_id for row in spark.read.format("delta").load(table).collect())


def test_a_concurrent_commit_is_retried_and_the_write_succeeds(spark, tmp_path):
    silver = str(tmp_path / "silver")
    insert_new_rows(silver_rows(spark, "a"), silver, "event_id", "event_date")
    started, go = str(tmp_path / "started"), str(tmp_path / "go")

    @F.udf(returnType="string", useArrow=False)
    def held(value):
        # Runs inside the MERGE, after it has read the table: waits until the other writer has committed.
        Path(started).touch()
        deadline = time.monotonic() + 120
        while not Path(go).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return value

    def other_writer():
        while not Path(started).exists():
            time.sleep(0.05)
        try:
            insert_new_rows(silver_rows(spark, "c"), silver, "event_id", "event_date")
        finally:
            Path(go).touch()

    other = threading.Thread(target=other_writer)
    other.start()
    rows = silver_rows(spark, "b").withColumn("event_id", held("event_id")).coalesce(1)  # one task held, one core free
    logged: list[str] = []
    with_retries(lambda: insert_new_rows(rows, silver, "event_id", "event_date"), QUICK, "writing b", log=logged.append)
    other.join()

    assert len(logged) == 1 and logged[0].startswith("retry: writing b failed (attempt 1 of 3), trying again in 0.1 s")
    assert "DELTA_CONCURRENT_APPEND" in logged[0]
    assert event_ids(spark, silver) == ["a", "b", "c"]


def test_a_missing_file_fails_the_write_after_one_attempt(spark, tmp_path):
    silver = tmp_path / "silver"
    insert_new_rows(silver_rows(spark, "a"), str(silver), "event_id", "event_date")
    for data_file in silver.glob("event_date=*/*.parquet"):
        data_file.unlink()  # the MERGE reads the partition: java.io.FileNotFoundException inside a SparkException
    attempts, logged = [], []

    def write():
        attempts.append(1)
        insert_new_rows(silver_rows(spark, "b"), str(silver), "event_id", "event_date")

    with pytest.raises(Exception, match="FileNotFoundException"):
        with_retries(write, QUICK, "writing b", log=logged.append)
    assert (len(attempts), logged) == (1, [])


def test_a_schema_mismatch_fails_the_write_after_one_attempt(spark, tmp_path):
    table = str(tmp_path / "events")
    writer = BatchWriter("writer")
    writer.append(spark.range(1).withColumnRenamed("id", "amount"), table, 0)
    attempts = []

    def write():
        attempts.append(1)
        writer.append(spark.range(1).select(F.lit("lots").alias("amount")), table, 1)

    with pytest.raises(AnalysisException, match="DELTA_FAILED_TO_MERGE_FIELDS"):
        with_retries(write, QUICK, "writing batch 1", log=lambda _: None)
    assert len(attempts) == 1


def record(event_id: str) -> tuple[bytes, bytes]:
    document = {"event_id": event_id, "timestamp": "2026-01-01T10:00:00Z", "source": "web", "schema_version": "1",
                "type": "click", "data": {"user_id": "u1"}}
    return b"u1", json.dumps(document).encode()


def test_the_analytics_intake_writes_are_retried_by_the_jobs_retry_policy(
    spark, job_settings, kafka_bootstrap, fresh_topic, capsys
):
    send(kafka_bootstrap, fresh_topic, [record("a"), record("b"), (b"u9", b"not json")])
    storage = job_settings.storage
    overrides = [
        f"kafka.bootstrap_servers={kafka_bootstrap}", f"kafka.topic={fresh_topic}",
        f"storage.tables_root={storage.tables_root}", f"storage.checkpoint_root={storage.checkpoint_root}",
        "retry.max_attempts=2", "retry.initial_backoff=100ms",
    ]
    settings = load_settings(PROJECT_ROOT / "conf" / "local.toml", overrides)
    # An I/O error: a file stands where the intake counts' table must be created.
    blocker = Path(storage.table_path(ANALYTICS_INTAKE))
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("in the way")

    with pytest.raises(StreamingQueryException) as failed:
        run_queries(spark, settings, "analytics", analytics_queries)
    assert "RetriesExhausted: analytics: writing the intake counts of batch 0: gave up after 2 attempts" in str(
        failed.value
    )
    assert (
        "retry: analytics: writing the intake counts of batch 0 failed (attempt 1 of 2), trying again in 0.1 s: "
        "org.apache.hadoop.fs.ParentNotDirectoryException"
    ) in capsys.readouterr().out

    # Once the file is gone, the next run writes the batch, every table once.
    blocker.unlink()
    run_queries(spark, settings, "analytics", analytics_queries)
    read = spark.read.format("delta")
    assert event_ids(spark, storage.table_path(EVENTS_TABLE)) == ["a", "b"]
    assert read.load(storage.table_path(ANALYTICS_DEAD_LETTERS)).count() == 1
    assert read.load(storage.table_path(ANALYTICS_INTAKE)).groupBy().sum("records").first()[0] == 3
