"""A micro-batch that runs twice (after a crash) must not change the tables the second time."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventlake.analytics import analytics_queries
from eventlake.dead_letters import DEAD_LETTERS_TABLE
from eventlake.intake import INTAKE_TABLE
from eventlake.runner import run_plan
from eventlake.sinks import append_once, batch_writer_id

from .helpers import send

pytestmark = pytest.mark.integration


def table_rows(spark, path: str, *drop: str) -> list[tuple]:
    return sorted((tuple(row) for row in spark.read.format("delta").load(path).drop(*drop).collect()), key=repr)


def test_append_once_skips_a_batch_it_already_wrote(spark, tmp_path):
    path = str(tmp_path / "table")
    rows = spark.createDataFrame([(1, "a"), (2, "b")], "n int, s string")
    append_once(rows, path, "writer-1", 0)
    append_once(rows, path, "writer-1", 0)  # the replay
    append_once(rows, path, "writer-1", 1)  # the next batch
    append_once(rows, path, "writer-2", 0)  # another query's batch 0
    assert len(table_rows(spark, path)) == 6


def test_writer_ids_differ_per_checkpoint():
    assert batch_writer_id("q", "/a/checkpoint") == batch_writer_id("q", "/a/checkpoint")
    assert batch_writer_id("q", "/a/checkpoint") != batch_writer_id("q", "/b/checkpoint")


def test_a_replayed_intake_batch_changes_nothing(spark, job_settings, kafka_bootstrap, fresh_topic):
    send(kafka_bootstrap, fresh_topic, [(b"k", b"not json"), (b"k", b"[]"), (None, b"")] * 3)
    run_plan(analytics_queries(spark, job_settings))
    storage = job_settings.storage
    dead_letters_path, intake_path = storage.table_path(DEAD_LETTERS_TABLE), storage.table_path(INTAKE_TABLE)
    before = table_rows(spark, dead_letters_path, "ingested_at"), table_rows(spark, intake_path)
    assert len(before[0]) == 9 and sum(row[-3] for row in before[1]) == 9

    # A crash after the batch's writes but before its checkpoint commit: the commit record is missing,
    # so the next run executes batch 0 again with the same offsets.
    commits = Path(storage.checkpoint_path("analytics", "intake")) / "commits"
    last_commit = max(commits.glob("[0-9]*"), key=lambda path: int(path.name))
    last_commit.unlink()
    (commits / f".{last_commit.name}.crc").unlink(missing_ok=True)
    replayed = run_plan(analytics_queries(spark, job_settings))

    intake_query = next(query for query in replayed if query.name == "analytics_intake")
    assert [progress.batchId for progress in intake_query.recentProgress] == [int(last_commit.name)]
    assert (table_rows(spark, dead_letters_path, "ingested_at"), table_rows(spark, intake_path)) == before
