from __future__ import annotations

import pytest

from eventlake.pipeline.sources import read_delta_stream


def _append(spark, table: str, first: int, rows: int) -> None:
    spark.range(first, first + rows).selectExpr("id", "CAST(id AS string) AS name").write.format("delta").mode(
        "append"
    ).save(table)


def _stream_ids(spark, table: str, checkpoint: str) -> list[int]:
    """The ids a stream over ``table`` reads in one availableNow run on ``checkpoint``."""
    ids: list[int] = []
    query = (
        read_delta_stream(spark, table).writeStream.option("checkpointLocation", checkpoint)
        .foreachBatch(lambda batch, _: ids.extend(row.id for row in batch.collect()))
        .trigger(availableNow=True).start()
    )
    query.awaitTermination()
    return sorted(ids)


def test_a_new_stream_reads_every_row_of_every_commit_once(spark, tmp_path):
    table = str(tmp_path / "events")
    for first in (0, 10, 20):
        _append(spark, table, first, 10)
    assert _stream_ids(spark, table, str(tmp_path / "checkpoint")) == list(range(30))


@pytest.mark.parametrize("first_commit", ["kept", "cleaned up"])
def test_a_stream_resumes_from_its_checkpoint_and_starts_without_the_first_commit(spark, tmp_path, first_commit):
    table = str(tmp_path / "events")
    for first in (0, 10):
        _append(spark, table, first, 10)
    checkpoint = str(tmp_path / "checkpoint")
    assert _stream_ids(spark, table, checkpoint) == list(range(20))
    _append(spark, table, 20, 5)
    assert _stream_ids(spark, table, checkpoint) == list(range(20, 25))  # the checkpoint's offsets, not version 0
    if first_commit == "cleaned up":
        # Delta's log cleanup removes the oldest commits once a log checkpoint covers them: a new stream
        # must start from the log checkpoint, as Delta would without ``startingVersion``.
        spark.sql(f"ALTER TABLE delta.`{table}` SET TBLPROPERTIES ('delta.checkpointInterval' = '1')")
        (tmp_path / "events" / "_delta_log" / f"{0:020d}.json").unlink()
    assert _stream_ids(spark, table, str(tmp_path / "new-checkpoint")) == list(range(25))
