"""Silver de-duplicated by state (``etl.silver_dedup = "state"``) on the real broker, Spark and Delta: the same
silver as the MERGE, ids remembered across batches and restarts, forgotten after ``etl.silver_dedup_within``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from eventlake.pipeline.etl import BRONZE_TABLE, SILVER_TABLE
from eventlake.pipeline.etl_by_state import RAW_CHECKPOINT, SILVER_BATCHES_TABLE, SILVER_CHECKPOINT
from eventlake.runtime.errors import EnvironmentProblem

from .helpers import send
from .test_etl_job import (
    ETL_DEAD_LETTERS,
    ETL_INTAKE,
    SILVER_COLUMNS,
    etl_settings,
    json_event,
    kv_event,
    read_table,
    run_etl,
)

pytestmark = pytest.mark.integration

BY_STATE = "etl.silver_dedup=state"


def silver_ids(spark, settings) -> list[str]:
    return sorted(row.event_id for row in read_table(spark, settings, SILVER_TABLE).select("event_id").collect())


def figures(spark, settings) -> dict[str, int]:
    """The silver query's figures, summed over its batches."""
    columns = ("records", "valid", "invalid", "duplicates", "silver_rows")
    table = read_table(spark, settings, SILVER_BATCHES_TABLE)
    return table.groupBy().agg(*(F.sum(name).alias(name) for name in columns)).first().asDict()


def intake_records(spark, settings) -> tuple:
    row = read_table(spark, settings, ETL_INTAKE).groupBy().agg(
        F.sum("records"), F.max("valid"), F.max("invalid")
    ).first()
    return tuple(row)


def test_state_mode_writes_the_silver_of_the_merge_and_remembers_ids_across_batches_and_restarts(
    spark, job_settings, kafka_bootstrap, fresh_topic, tmp_path
):
    # Keyed by user: j1 and its copy share a partition, and at one record per partition and batch they are
    # read in different micro-batches.
    first = send(kafka_bootstrap, fresh_topic, [
        json_event("j1", "u1", page="/products/1", amount="12.50"),
        json_event("j2", "u2", page="/home"),
        kv_event("k1", "u3"),
        json_event("j1", "u1", page="/products/1", amount="12.50"),
        (b"u4", b"{not json"),
    ])
    by_state = etl_settings(job_settings, BY_STATE, "kafka.max_offsets_per_trigger=2")
    run_etl(spark, by_state)

    assert silver_ids(spark, by_state) == ["j1", "j2", "k1"]
    assert read_table(spark, by_state, BRONZE_TABLE).count() == len(first)
    assert [row.error_code for row in read_table(spark, by_state, ETL_DEAD_LETTERS).collect()] == ["NOT_JSON"]
    assert figures(spark, by_state) == {"records": 5, "valid": 4, "invalid": 1, "duplicates": 1, "silver_rows": 3}
    assert intake_records(spark, by_state) == (5, None, None)  # the raw query counts, and does not parse
    # The MERGE's silver of the same records, on other tables: the same rows and columns.
    (tmp_path / "merge").mkdir()
    merged = etl_settings(
        job_settings, f"storage.tables_root={tmp_path / 'merge'}", f"storage.checkpoint_root={tmp_path / 'merge-cp'}"
    )
    run_etl(spark, merged)
    columns = [field.split()[0] for field in SILVER_COLUMNS.split(", ")]
    assert_df_equality(
        read_table(spark, by_state, SILVER_TABLE).select(columns),
        read_table(spark, merged, SILVER_TABLE).select(columns),
        ignore_row_order=True,
    )

    # A restart: the state in the checkpoint still knows j2.
    second = send(kafka_bootstrap, fresh_topic, [json_event("j2", "u2", page="/home"), json_event("j3", "u5")])
    run_etl(spark, by_state)
    assert silver_ids(spark, by_state) == ["j1", "j2", "j3", "k1"]
    assert read_table(spark, by_state, BRONZE_TABLE).count() == len(first) + len(second)
    assert figures(spark, by_state) == {"records": 7, "valid": 6, "invalid": 1, "duplicates": 2, "silver_rows": 4}
    assert intake_records(spark, by_state)[0] == 7


def test_state_mode_keeps_a_copy_that_comes_later_than_silver_dedup_within(spark, job_settings, kafka_bootstrap,
                                                                            fresh_topic):
    # The trade-off of state: an id is remembered for silver_dedup_within of the job's clock, then forgotten.
    by_state = etl_settings(job_settings, BY_STATE, "etl.silver_dedup_within='1 second'")
    send(kafka_bootstrap, fresh_topic, [json_event("x", "u1")])
    run_etl(spark, by_state)
    time.sleep(2.5)  # the job's clock must move past the first copy + 1 s: nothing else moves it
    # The next batch moves the watermark past x's time + 1 s, and x leaves the state at the latest at the end
    # of the batch after it.
    for event_id in ("y", "z"):
        send(kafka_bootstrap, fresh_topic, [json_event(event_id, "u2")])
        run_etl(spark, by_state)
    send(kafka_bootstrap, fresh_topic, [json_event("x", "u1")])
    run_etl(spark, by_state)
    assert silver_ids(spark, by_state) == ["x", "x", "y", "z"]


def test_state_mode_refuses_a_silver_table_it_did_not_write(spark, job_settings, kafka_bootstrap, fresh_topic):
    send(kafka_bootstrap, fresh_topic, [json_event("j1", "u1")])
    run_etl(spark, etl_settings(job_settings))  # the MERGE's silver
    with pytest.raises(EnvironmentProblem, match=r"already has rows: the query's state would not know their event ids"):
        run_etl(spark, etl_settings(job_settings, BY_STATE))
    assert silver_ids(spark, job_settings) == ["j1"]


def test_state_mode_batches_run_again_after_a_crash_write_nothing_twice(spark, job_settings, kafka_bootstrap,
                                                                        fresh_topic):
    """A crash after a batch's writes but before its checkpoint commit, in both queries: the next run executes
    the last batch again, from the state before it, and every table keeps its rows once."""
    send(kafka_bootstrap, fresh_topic, [
        json_event("a", "u1"), json_event("b", "u2"), json_event("a", "u1"), (b"u3", b"{not json"),
        json_event("c", "u4"), json_event("b", "u2"),
    ])
    by_state = etl_settings(job_settings, BY_STATE, "kafka.max_offsets_per_trigger=2")
    run_etl(spark, by_state)
    tables = (SILVER_TABLE, BRONZE_TABLE, ETL_DEAD_LETTERS, ETL_INTAKE, SILVER_BATCHES_TABLE)

    def rows_of(settings):
        return {name: sorted(map(str, read_table(spark, settings, name).drop("ingested_at").collect()))
                for name in tables}

    before = rows_of(by_state)
    assert figures(spark, by_state) == {"records": 6, "valid": 5, "invalid": 1, "duplicates": 2, "silver_rows": 3}
    for folder in (RAW_CHECKPOINT, SILVER_CHECKPOINT):
        commits = Path(by_state.storage.checkpoint_path("etl", folder)) / "commits"
        last_commit = max(commits.glob("[0-9]*"), key=lambda path: int(path.name))
        last_commit.unlink()
        (commits / f".{last_commit.name}.crc").unlink(missing_ok=True)
    replayed = run_etl(spark, by_state)

    assert all(query.recentProgress for query in replayed)  # each query ran its last batch again
    assert rows_of(by_state) == before
