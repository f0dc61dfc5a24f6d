from __future__ import annotations

import pytest

from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.storage_checks import claim_checkpoint, refuse_replaced_checkpoints, require_folder


def test_a_new_checkpoint_is_claimed_and_reclaimed_by_the_same_query(tmp_path):
    checkpoint = str(tmp_path / "analytics" / "windows")
    claim_checkpoint(checkpoint, "analytics", "windows", "events")
    claim_checkpoint(checkpoint, "analytics", "windows", "events")
    assert (tmp_path / "analytics" / "windows" / "eventlake.json").exists()


@pytest.mark.parametrize(
    "query, topic", [("intake", "events"), ("windows", "other-topic")],
)
def test_a_checkpoint_of_another_query_or_topic_is_refused(tmp_path, query, topic):
    checkpoint = str(tmp_path / "checkpoint")
    claim_checkpoint(checkpoint, "analytics", "windows", "events")
    with pytest.raises(EnvironmentProblem, match="belongs to analytics/windows reading topic 'events'"):
        claim_checkpoint(checkpoint, "analytics", query, topic)


def test_a_checkpoint_of_an_earlier_layout_is_refused_with_the_way_out(tmp_path):
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    # An earlier eventlake's marker: its windows query read the topic itself.
    (checkpoint / "eventlake.json").write_text('{"job": "analytics", "query": "windows", "topic": "events"}')
    claim_checkpoint(str(checkpoint), "analytics", "windows", "events")  # same source (kafka): accepted
    with pytest.raises(
        EnvironmentProblem, match=r"streaming from kafka, as an earlier eventlake ran it; .* new tables"
    ):
        claim_checkpoint(str(checkpoint), "analytics", "windows", "events", source="analytics_events")


def test_checkpoints_of_replaced_queries_are_refused(tmp_path):
    refuse_replaced_checkpoints([str(tmp_path / "etl" / "bronze")], "etl", "etl_ingest")  # none there
    claim_checkpoint(str(tmp_path / "etl" / "bronze"), "etl", "bronze", "events")
    with pytest.raises(
        EnvironmentProblem, match="hold checkpoints of etl queries an earlier eventlake ran, which etl_ingest"
    ):
        refuse_replaced_checkpoints([str(tmp_path / "etl" / "bronze")], "etl", "etl_ingest")


def test_a_foreign_checkpoint_is_refused(tmp_path):
    (tmp_path / "checkpoint" / "offsets").mkdir(parents=True)
    with pytest.raises(EnvironmentProblem, match="was not made by eventlake's analytics/windows"):
        claim_checkpoint(str(tmp_path / "checkpoint"), "analytics", "windows", "events")


def test_a_file_where_a_folder_belongs_is_reported(tmp_path):
    (tmp_path / "tables").write_text("oops")
    with pytest.raises(EnvironmentProblem, match=r"tables root .* is a file, not a folder"):
        require_folder(str(tmp_path / "tables"), "tables root")
    require_folder(str(tmp_path / "missing"), "tables root")
    require_folder("s3a://bucket/tables", "tables root")
