from __future__ import annotations

import shutil
from datetime import date

import pytest
from chispa import assert_df_equality
from pyspark.errors import AnalysisException
from pyspark.sql import functions as F

from eventlake.pipeline.contract import parse_events
from eventlake.pipeline.sinks import (
    BatchWriter,
    append_dead_letters,
    batch_writer_id,
    day_ranges,
    pending_batch,
    stored_with_count,
)
from eventlake.runtime.config import ContractSettings, RetrySettings, StorageSettings
from eventlake.runtime.storage_checks import claim_checkpoint


def claimed_writer(spark, checkpoint: str) -> BatchWriter:
    """The intake's writer, as the analytics job makes it when it starts on ``checkpoint``."""
    checkpoint_id = claim_checkpoint(spark, checkpoint, "analytics", "intake", "events")
    return BatchWriter(batch_writer_id("analytics_intake", checkpoint, checkpoint_id), pending_batch(spark, checkpoint))


@pytest.mark.parametrize("replay", ["pending batch", "retried write"])
def test_a_query_started_over_writes_its_first_batch_when_it_runs_again(spark, tmp_path, replay):
    checkpoint, table = tmp_path / "checkpoint", str(tmp_path / "table")
    claimed_writer(spark, str(checkpoint)).append(spark.createDataFrame([(1, "old run")], "n int, s string"), table, 0)
    shutil.rmtree(checkpoint)  # the user starts over; the table stays
    new_rows = spark.createDataFrame([(2, "new run")], "n int, s string")
    if replay == "pending batch":
        # The new run began its batch 0 and stopped before writing: the next start runs it again.
        claim_checkpoint(spark, str(checkpoint), "analytics", "intake", "events")
        (checkpoint / "offsets").mkdir()
        (checkpoint / "offsets" / "0").write_text("v1")
        writer = claimed_writer(spark, str(checkpoint))
    else:
        writer = claimed_writer(spark, str(checkpoint))
        clashing = spark.createDataFrame([("x", "new run")], "n string, s string")  # n cannot merge: it fails
        with pytest.raises(AnalysisException):
            writer.append(clashing, table, 0)  # as if it failed after its commit: the retry looks first
    writer.append(new_rows, table, 0)
    assert sorted(row.s for row in spark.read.format("delta").load(table).collect()) == ["new run", "old run"]


def test_silver_is_searched_within_the_bound_of_each_day_of_a_batch_and_not_between():
    days = [date(2026, 1, 2), date(2026, 1, 1), date(2026, 1, 2), date(2025, 12, 1), date(2026, 1, 5)]
    assert day_ranges(days, 1) == [
        (date(2025, 11, 30), date(2025, 12, 2)),  # a stray old event: its own range, not every day since
        (date(2025, 12, 31), date(2026, 1, 6)),  # ranges that meet or overlap become one
    ]
    assert day_ranges(days, 0) == [
        (date(2025, 12, 1), date(2025, 12, 1)),
        (date(2026, 1, 1), date(2026, 1, 2)),
        (date(2026, 1, 5), date(2026, 1, 5)),
    ]
    assert day_ranges([date(9999, 12, 31)], 10**10) == [(date.min, date.max)]
    assert day_ranges([], 1) == []


def test_stored_rows_are_counted_by_the_job_that_stores_them(spark):
    runs = spark.sparkContext.accumulator(0)

    def counted(value):
        runs.add(1)
        return value

    once = F.udf(counted, "long", useArrow=False)  # counts how often the rows are computed
    rows = spark.range(0, 7, 1, 3).where(once("id") >= 0)  # a count must compute it: no column to prune
    stored, count = stored_with_count(rows)
    assert count == 7
    assert_df_equality(stored, spark.range(7), ignore_row_order=True, ignore_nullable=True)
    assert runs.value == 7  # the rows were computed once: counting them read no row again


def test_no_rows_are_counted_as_none(spark):
    stored, count = stored_with_count(spark.range(0))
    assert (count, stored.count()) == (0, 0)


def test_a_batch_s_dead_letters_go_to_the_job_s_table_once(spark, kafka_rows, tmp_path):
    parsed = kafka_rows([b"not json", b"{}"], topic="events").transform(parse_events, ContractSettings())
    storage, writer = StorageSettings(tables_root=str(tmp_path)), BatchWriter("etl_ingest-test", pending=3)
    for _ in range(2):  # batch 3 runs again after a crash: its dead letters are there already
        append_dead_letters(parsed, 3, 2, job="etl", storage=storage, writer=writer, retry=RetrySettings())
    dead = spark.read.format("delta").load(storage.table_path("etl_dead_letters"))
    assert sorted((row.offset, row.job, row.batch_id) for row in dead.collect()) == [(0, "etl", 3), (1, "etl", 3)]
