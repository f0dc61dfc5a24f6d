"""A micro-batch that runs twice (after a crash) must not change the tables the second time."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pyspark.errors import AnalysisException

from eventlake.pipeline.analytics import analytics_queries
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.pipeline.intake import INTAKE_TABLE
from eventlake.pipeline.sinks import BatchWriter, batch_writer_id, pending_batch
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.runner import run_plan

from .helpers import send

ANALYTICS_DEAD_LETTERS = job_table("analytics", DEAD_LETTERS_TABLE)
ANALYTICS_INTAKE = job_table("analytics", INTAKE_TABLE)


pytestmark = pytest.mark.integration


def table_rows(spark, path: str, *drop: str) -> list[tuple]:
    return sorted((tuple(row) for row in spark.read.format("delta").load(path).drop(*drop).collect()), key=repr)


def test_a_batch_is_written_again_only_when_it_runs_again(spark, tmp_path):
    path = str(tmp_path / "table")
    rows = spark.createDataFrame([(1, "a"), (2, "b")], "n int, s string")
    first_run = BatchWriter("writer-1")
    first_run.append(rows, path, 0)
    first_run.append(rows, path, 1)
    # A crash after batch 1's commit, before the checkpoint's: the next run starts with batch 1 again.
    next_run = BatchWriter("writer-1", pending=1)
    next_run.append(rows, path, 1)  # the replay: already there
    next_run.append(rows, path, 2)
    BatchWriter("writer-2", pending=0).append(rows, path, 0)  # another query's batch 0
    written = table_rows(spark, path)
    assert len(written) == 8
    assert sorted({(row[2], row[3]) for row in written}) == [
        ("writer-1", 0), ("writer-1", 1), ("writer-1", 2), ("writer-2", 0)
    ]


def test_a_retried_write_looks_for_its_batch_first(spark, tmp_path):
    path = str(tmp_path / "table")
    rows = spark.createDataFrame([(1, "a")], "n int, s string")
    clashing = spark.createDataFrame([("x", "a")], "n string, s string")  # n cannot merge: the write fails
    writer = BatchWriter("writer-1")
    writer.append(rows, path, 0)
    with pytest.raises(AnalysisException):
        writer.append(clashing, path, 0)  # as if batch 0 failed after its commit: its retry must look first
    writer.append(rows, path, 0)
    with pytest.raises(AnalysisException):
        writer.append(clashing, path, 1)  # failed before any commit
    writer.append(rows, path, 1)  # the retry looks, finds nothing, writes
    assert sorted(row[3] for row in table_rows(spark, path)) == [0, 1]


def test_the_pending_batch_is_the_one_begun_and_not_finished(spark, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    assert pending_batch(spark, str(checkpoint)) is None  # a new checkpoint
    for folder, batches in (("offsets", [0, 1, 2]), ("commits", [0, 1])):
        (checkpoint / folder).mkdir(parents=True)
        for batch in batches:
            (checkpoint / folder / str(batch)).write_text("v1")
    assert pending_batch(spark, str(checkpoint)) == 2
    (checkpoint / "commits" / "2").write_text("v1")
    assert pending_batch(spark, str(checkpoint)) is None


def test_writer_ids_differ_per_checkpoint():
    assert batch_writer_id("q", "/a/checkpoint", "1f0c") != batch_writer_id("q", "/a/checkpoint", "9b2e")
    # A checkpoint made before checkpoints had ids keeps the id its rows carry: a digest of its path.
    assert batch_writer_id("q", "/a/checkpoint", None) == f"q-{hashlib.sha256(b'/a/checkpoint').hexdigest()[:16]}"
    assert batch_writer_id("q", "/a/checkpoint", None) != batch_writer_id("q", "/b/checkpoint", None)


def test_a_replayed_intake_batch_changes_nothing(spark, job_settings, kafka_bootstrap, fresh_topic):
    send(kafka_bootstrap, fresh_topic, [(b"k", b"not json"), (b"k", b"[]"), (None, b"")] * 3)
    run_plan(analytics_queries(spark, job_settings))
    storage = job_settings.storage
    dead_letters_path, intake_path = storage.table_path(ANALYTICS_DEAD_LETTERS), storage.table_path(ANALYTICS_INTAKE)
    before = table_rows(spark, dead_letters_path, "ingested_at"), table_rows(spark, intake_path)
    records = spark.read.format("delta").load(intake_path).agg({"records": "sum"}).first()[0]
    assert len(before[0]) == 9 and records == 9

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
