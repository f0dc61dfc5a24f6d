from __future__ import annotations

import json
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.storage_checks import (
    SHUFFLE_PARTITIONS,
    claim_checkpoint,
    kept_shuffle_partitions,
    refuse_replaced_checkpoints,
    require_folder,
    state_partitions_note,
)


def test_a_new_checkpoint_is_claimed_and_reclaimed_by_the_same_query(spark, tmp_path):
    checkpoint = str(tmp_path / "analytics" / "windows")
    claim_checkpoint(spark, checkpoint, "analytics", "windows", "events")
    claim_checkpoint(spark, checkpoint, "analytics", "windows", "events")
    assert (tmp_path / "analytics" / "windows" / "eventlake.json").exists()


@pytest.mark.parametrize(
    "query, topic", [("intake", "events"), ("windows", "other-topic")],
)
def test_a_checkpoint_of_another_query_or_topic_is_refused(spark, tmp_path, query, topic):
    checkpoint = str(tmp_path / "checkpoint")
    claim_checkpoint(spark, checkpoint, "analytics", "windows", "events")
    with pytest.raises(EnvironmentProblem, match="belongs to analytics/windows reading topic 'events'"):
        claim_checkpoint(spark, checkpoint, "analytics", query, topic)


def test_a_checkpoint_of_an_earlier_layout_is_refused_with_the_way_out(spark, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    # An earlier eventlake's marker: its windows query read the topic itself.
    (checkpoint / "eventlake.json").write_text('{"job": "analytics", "query": "windows", "topic": "events"}')
    claim_checkpoint(spark, str(checkpoint), "analytics", "windows", "events")  # same source (kafka): accepted
    with pytest.raises(
        EnvironmentProblem, match=r"streaming from kafka, as an earlier eventlake ran it; .* new tables"
    ):
        claim_checkpoint(spark, str(checkpoint), "analytics", "windows", "events", source="analytics_events")


def test_checkpoints_of_replaced_queries_are_refused(spark, tmp_path):
    refuse_replaced_checkpoints(spark, [str(tmp_path / "etl" / "bronze")], "etl", "etl_ingest")  # none there
    claim_checkpoint(spark, str(tmp_path / "etl" / "bronze"), "etl", "bronze", "events")
    with pytest.raises(
        EnvironmentProblem, match="hold checkpoints of etl queries an earlier eventlake ran, which etl_ingest"
    ):
        refuse_replaced_checkpoints(spark, [str(tmp_path / "etl" / "bronze")], "etl", "etl_ingest")


def test_a_foreign_checkpoint_is_refused(spark, tmp_path):
    (tmp_path / "checkpoint" / "offsets").mkdir(parents=True)
    with pytest.raises(EnvironmentProblem, match="was not made by eventlake's analytics/windows"):
        claim_checkpoint(spark, str(tmp_path / "checkpoint"), "analytics", "windows", "events")


def test_a_file_where_a_folder_belongs_is_reported(tmp_path):
    (tmp_path / "tables").write_text("oops")
    with pytest.raises(EnvironmentProblem, match=r"tables root .* is a file, not a folder"):
        require_folder(str(tmp_path / "tables"), "tables root")
    require_folder(str(tmp_path / "missing"), "tables root")
    require_folder("s3a://bucket/tables", "tables root")


def other_scheme_uri(spark, folder: Path) -> str:
    """``folder`` at a URI of another scheme than ``file:`` (Hadoop's viewfs, mounted on it): the checks take
    the path an ``s3a:``, ``abfs:`` or ``hdfs:`` checkpoint takes."""
    mount = f"eventlaketest{uuid.uuid4().hex[:8]}"
    spark._jsc.hadoopConfiguration().set(f"fs.viewfs.mounttable.{mount}.link./checkpoints", folder.as_uri())
    return f"viewfs://{mount}/checkpoints"


@pytest.mark.parametrize("address", ["path", "file URI", "other scheme"])
def test_the_checkpoint_checks_hold_on_every_file_system(spark, tmp_path, address):
    root = tmp_path / "checkpoints"
    root.mkdir()
    base = {"path": str(root), "file URI": root.as_uri(), "other scheme": other_scheme_uri(spark, root)}[address]
    claim_checkpoint(spark, f"{base}/windows", "analytics", "windows", "events")
    assert json.loads((root / "windows" / "eventlake.json").read_text())["query"] == "windows"
    with pytest.raises(EnvironmentProblem, match="belongs to analytics/windows reading topic 'events'"):
        claim_checkpoint(spark, f"{base}/windows", "analytics", "intake", "events")
    (root / "foreign" / "offsets").mkdir(parents=True)
    with pytest.raises(EnvironmentProblem, match="was not made by eventlake's analytics/intake"):
        claim_checkpoint(spark, f"{base}/foreign", "analytics", "intake", "events")
    (root / "file").write_text("oops")
    with pytest.raises(EnvironmentProblem, match="is a file, not a folder"):
        claim_checkpoint(spark, f"{base}/file", "analytics", "intake", "events")
    claim_checkpoint(spark, f"{base}/bronze", "etl", "bronze", "events")
    with pytest.raises(EnvironmentProblem, match="hold checkpoints of etl queries an earlier eventlake ran"):
        refuse_replaced_checkpoints(spark, [f"{base}/bronze"], "etl", "etl_ingest")


def test_a_marker_that_cannot_be_written_stops_the_job_with_one_line(spark, tmp_path):
    (tmp_path / "file").write_text("oops")
    with pytest.raises(EnvironmentProblem, match=r"eventlake.json cannot be written: .*Parent path is not a directory"):
        claim_checkpoint(spark, str(tmp_path / "file" / "checkpoint"), "analytics", "intake", "events")


def test_a_checkpoint_keeps_its_id_and_one_made_again_gets_another(spark, tmp_path):
    checkpoint = str(tmp_path / "checkpoint")
    first = claim_checkpoint(spark, checkpoint, "analytics", "intake", "events")
    assert first and claim_checkpoint(spark, checkpoint, "analytics", "intake", "events") == first
    shutil.rmtree(checkpoint)  # the user starts over
    assert claim_checkpoint(spark, checkpoint, "analytics", "intake", "events") not in (None, first)


def test_a_checkpoint_made_before_checkpoints_had_ids_has_none(spark, tmp_path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "eventlake.json").write_text(
        '{"job": "analytics", "query": "intake", "topic": "events", "source": "kafka"}'
    )
    assert claim_checkpoint(spark, str(tmp_path / "checkpoint"), "analytics", "intake", "events") is None


@contextmanager
def shuffle_partitions(spark, value: str):
    """The session's spark.sql.shuffle.partitions set to ``value`` for a while."""
    before = spark.conf.get(SHUFFLE_PARTITIONS)
    spark.conf.set(SHUFFLE_PARTITIONS, value)
    try:
        yield
    finally:
        spark.conf.set(SHUFFLE_PARTITIONS, before)


def run_stateful_query(spark, tmp_path) -> str:
    """The checkpoint of a stateful query (a running count) after one batch under 2 shuffle partitions."""
    source, checkpoint = str(tmp_path / "source"), str(tmp_path / "checkpoint")
    spark.range(10).withColumn("key", F.col("id") % 3).write.format("delta").save(source)
    with shuffle_partitions(spark, "2"):
        counts = spark.readStream.format("delta").load(source).groupBy("key").count()
        query = (
            counts.writeStream.format("noop").outputMode("complete").option("checkpointLocation", checkpoint)
            .trigger(availableNow=True).start()
        )
        query.awaitTermination()
    return checkpoint


def test_a_stateful_checkpoint_made_under_other_shuffle_partitions_is_named(spark, tmp_path):
    checkpoint = run_stateful_query(spark, tmp_path)
    assert kept_shuffle_partitions(spark, checkpoint) == "2"
    with shuffle_partitions(spark, "3"):
        note = state_partitions_note(spark, "analytics_windows", checkpoint)
    assert note is not None and "\n" not in note
    assert note.startswith(
        f"analytics_windows keeps the 2 state partitions its checkpoint {checkpoint} was made with, not the "
        "configured spark.sql.shuffle.partitions=3: Spark fixes them"
    )
    with shuffle_partitions(spark, "2"):
        assert state_partitions_note(spark, "analytics_windows", checkpoint) is None
    with shuffle_partitions(spark, "3"):  # a query that has not run yet starts with the configured value
        assert state_partitions_note(spark, "analytics_windows", str(tmp_path / "new")) is None
