"""Silver holds each event_id once within etl.silver_dedup_days event days, on a real Delta table: a copy sent
again on another day within the bound is not inserted, one beyond it is, one batch keeps one copy, and the
MERGE reads only the partitions within the bound."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from eventlake.pipeline.etl import SILVER_TABLE, write_silver_rows
from eventlake.pipeline.etl_flow import etl_flow
from eventlake.runtime.config import EtlSettings, RetrySettings, Settings, StorageSettings

pytestmark = pytest.mark.integration

ONCE = RetrySettings(max_attempts=1)
FLOW = etl_flow(Settings())  # the built-in flow: silver_events, by event_id
DEFAULT_DAYS = EtlSettings().silver_dedup_days


def events(spark, *copies: tuple[str, str]):
    """The ETL's working rows of valid events, one per (event_id, event time), at offsets 0, 1, ..."""
    rows = [(event_id, datetime.fromisoformat(time), offset) for offset, (event_id, time) in enumerate(copies)]
    frame = spark.createDataFrame(rows, "event_id string, event_time timestamp, offset long")
    return frame.withColumns({
        "event_date": F.to_date("event_time"),
        "error_code": F.lit(None).cast("string"),
        "timestamp": F.col("event_time"),
        "topic": F.lit("events"),
        "partition": F.lit(0),
    })


def write(spark, tables: Path, *copies: tuple[str, str], days: int = DEFAULT_DAYS) -> None:
    storage = StorageSettings(tables_root=str(tables))
    write_silver_rows(events(spark, *copies), 0, flow=FLOW, storage=storage, retry=ONCE, dedup_days=days)


def silver(spark, tables: Path) -> list[tuple[str, str]]:
    rows = spark.read.format("delta").load(str(tables / SILVER_TABLE)).collect()
    return sorted((row.event_id, row.event_time.isoformat()) for row in rows)


@pytest.mark.parametrize(
    "first, again",
    [
        ("2026-01-01T23:50:00", "2026-01-02T00:10:00"),  # across midnight: the next event day
        ("2026-01-02T22:00:00", "2026-01-01T10:00:00"),  # the event day before, 36 hours earlier
    ],
)
def test_an_id_sent_again_on_another_day_within_the_bound_is_inserted_once(spark, tmp_path, first, again):
    assert DEFAULT_DAYS == 1
    write(spark, tmp_path, ("x", first), ("y", first))
    write(spark, tmp_path, ("x", again), ("z", again))
    assert silver(spark, tmp_path) == [("x", first), ("y", first), ("z", again)]


def test_an_id_sent_again_beyond_the_bound_is_inserted_again(spark, tmp_path):
    write(spark, tmp_path / "one", ("x", "2026-01-01T10:00:00"), days=1)
    write(spark, tmp_path / "one", ("x", "2026-01-03T10:00:00"), days=1)
    assert silver(spark, tmp_path / "one") == [("x", "2026-01-01T10:00:00"), ("x", "2026-01-03T10:00:00")]
    write(spark, tmp_path / "two", ("x", "2026-01-01T10:00:00"), days=2)
    write(spark, tmp_path / "two", ("x", "2026-01-03T10:00:00"), days=2)
    assert silver(spark, tmp_path / "two") == [("x", "2026-01-01T10:00:00")]


def test_one_batch_with_one_id_on_two_days_inserts_the_earliest_copy_once(spark, tmp_path):
    later, earlier = "2026-01-02T00:10:00", "2026-01-01T23:50:00"
    write(spark, tmp_path / "a", ("x", later), ("x", earlier), ("y", later))
    write(spark, tmp_path / "b", ("x", earlier), ("x", later), ("y", later))
    write(spark, tmp_path / "b", ("x", later), ("x", earlier), ("y", later))  # the batch again: nothing new
    assert silver(spark, tmp_path / "a") == silver(spark, tmp_path / "b") == [("x", earlier), ("y", later)]


def test_the_merge_reads_only_the_partitions_within_the_bound(spark, tmp_path):
    write(spark, tmp_path, ("far", "2025-12-30T12:00:00"), ("near", "2025-12-31T12:00:00"))
    table = tmp_path / SILVER_TABLE

    def remove_files(day: str) -> None:
        # A MERGE that reads a partition whose files are gone fails: this shows which partitions it reads.
        for data_file in (table / f"event_date={day}").glob("*.parquet"):
            data_file.unlink()

    remove_files("2025-12-30")
    # Reads 12-31 to 01-02 for the first two and 12-19 to 12-21 for the stray old one, not the days between.
    write(spark, tmp_path, ("near", "2026-01-01T08:00:00"), ("new", "2026-01-01T08:00:00"), ("old", "2025-12-20T08:00"))
    whole = spark.read.format("delta").load(str(table)).where("event_date != '2025-12-30'")
    assert sorted(row.event_id for row in whole.collect()) == ["near", "new", "old"]
    remove_files("2025-12-31")
    with pytest.raises(Exception, match="FileNotFoundException"):
        write(spark, tmp_path, ("other", "2026-01-01T09:00:00"))
