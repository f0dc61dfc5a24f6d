"""Fixtures shared by all tests: one SparkSession for the whole run, in UTC."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from eventlake.runtime.config import SparkSettings
from eventlake.runtime.session import build_spark_session

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Python turns Spark timestamps into datetimes in the process's zone; the tests expect UTC.
os.environ["TZ"] = "UTC"
time.tzset()


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test run (local[2], small shuffles, the project's jars)."""
    session = build_spark_session(
        SparkSettings(
            master="local[2]",
            app_name="eventlake-tests",
            jars_dir=str(PROJECT_ROOT / "jars" / "spark"),
            conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
        )
    )
    yield session
    session.stop()


KAFKA_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, timestampType int,"
    " headers array<struct<key: string, value: binary>>"
)


@pytest.fixture(scope="session")
def kafka_rows(spark):
    """Build a DataFrame shaped like Spark's Kafka source from values (and optional Kafka timestamps and
    headers: per record None or a list of (name, bytes) pairs)."""
    from datetime import datetime

    default_time = datetime(2026, 1, 1, 12, 0, 0)

    def build(values, timestamps=None, topic="events", headers=None):
        timestamps = timestamps or [default_time] * len(values)
        headers = headers or [None] * len(values)
        rows = [
            (None, value, topic, 0, offset, timestamp, 0, header)
            for offset, (value, timestamp, header) in enumerate(zip(values, timestamps, headers, strict=True))
        ]
        return spark.createDataFrame(rows, KAFKA_SCHEMA)

    return build


@pytest.fixture
def stream_through(spark, tmp_path):
    """Run a streaming transform over small in-memory batches, one micro-batch per list of rows, and
    return everything the query emitted (append mode) as a batch DataFrame."""
    import uuid

    def run(transform, schema, *batches):
        source = tmp_path / f"source-{uuid.uuid4().hex[:8]}"
        for number, rows in enumerate(batches):
            spark.createDataFrame(rows, schema).coalesce(1).write.parquet(str(source / f"batch={number:04d}"))
            # The file source orders files by modification time: make the batch order unambiguous.
            for written in (source / f"batch={number:04d}").glob("*.parquet"):
                os.utime(written, (1_000_000 + number, 1_000_000 + number))
        stream = spark.readStream.schema(schema).option("maxFilesPerTrigger", 1).parquet(str(source / "batch=*"))
        name = f"out_{uuid.uuid4().hex[:8]}"
        query = (
            stream.transform(transform).writeStream.format("memory").queryName(name).outputMode("append")
            .option("checkpointLocation", str(tmp_path / f"checkpoint-{name}"))
            .trigger(availableNow=True).start()
        )
        query.awaitTermination()
        return spark.table(name)

    return run
