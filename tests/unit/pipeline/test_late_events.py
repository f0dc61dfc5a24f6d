"""Late events found again from a batch's input rows: the rules of Spark's stateful operators, on small
in-memory DataFrames (the end-to-end proof against the real aggregation is in tests/integration)."""

from __future__ import annotations

from datetime import datetime, timedelta

from chispa import assert_df_equality

from eventlake.pipeline.gold import keep_rows, with_window_bounds
from eventlake.pipeline.late_events import LateRule, late_events
from eventlake.runtime.config import GoldWindow

SCHEMA = "event_id string, event_time timestamp, page string"
LATE_SCHEMA = f"{SCHEMA}, window_start timestamp, window_end timestamp, watermark timestamp, late_by_seconds double"
TUMBLING = GoldWindow(kind="tumbling", size=timedelta(seconds=10))


def at(second: float) -> datetime:
    return datetime(2026, 1, 1, 10, 0, 0) + timedelta(seconds=second)


def rule(window: GoldWindow | None = TUMBLING, deduplicated: bool = False, condition: str = "") -> LateRule:
    return LateRule(
        deduplicated=deduplicated,
        prepare=lambda rows: keep_rows(rows, condition),
        with_window=(lambda rows: with_window_bounds(rows, window)) if window else None,
    )


def late(spark, rows, watermark, late_rule):
    return late_events(spark.createDataFrame(rows, SCHEMA), watermark, late_rule)


def test_after_a_deduplication_every_event_at_or_before_the_watermark_is_late_whatever_its_window(spark):
    rows = [("a", at(24), "/x"), ("b", at(25), "/x"), ("c", at(25.001), "/x"), ("d", at(3), "/y")]
    result = late(spark, rows, at(25), rule(deduplicated=True))
    expected = spark.createDataFrame(
        [
            ("a", at(24), "/x", at(20), at(30), at(25), 1.0),
            ("b", at(25), "/x", at(20), at(30), at(25), 0.0),
            ("d", at(3), "/y", at(0), at(10), at(25), 22.0),
        ],
        LATE_SCHEMA,
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_without_a_deduplication_only_rows_of_closed_windows_are_late_and_a_window_ending_at_the_watermark_is_closed(
    spark,
):
    rows = [("a", at(24), "/x"), ("b", at(19.5), "/x"), ("c", at(9), "/y"), ("d", at(30), "/y")]
    result = late(spark, rows, at(20), rule())
    expected = spark.createDataFrame(
        [("b", at(19.5), "/x", at(10), at(20), at(20), 0.5), ("c", at(9), "/y", at(0), at(10), at(20), 11.0)],
        LATE_SCHEMA,
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_sliding_window_row_is_late_in_its_closed_windows_only(spark):
    sliding = GoldWindow(kind="sliding", size=timedelta(seconds=10), slide=timedelta(seconds=5))
    result = late(spark, [("a", at(12), "/x")], at(15), rule(sliding))
    expected = spark.createDataFrame([("a", at(12), "/x", at(5), at(15), at(15), 3.0)], LATE_SCHEMA)
    assert_df_equality(result, expected, ignore_nullable=True)


def test_rows_the_filter_keeps_out_never_reach_the_aggregation_so_they_are_not_late(spark):
    rows = [("a", at(1), "/x"), ("b", at(2), "/y")]
    result = late(spark, rows, at(30), rule(condition="page = '/x'"))
    assert [row.event_id for row in result.collect()] == ["a"]


def test_a_session_of_one_late_event_runs_from_its_time_to_its_time_plus_the_gap(spark):
    session = GoldWindow(kind="session", gap=timedelta(seconds=5))
    rows = [("a", at(10), "/x"), ("b", at(16), "/x")]
    result = late(spark, rows, at(15), rule(session))
    expected = spark.createDataFrame([("a", at(10), "/x", at(10), at(15), at(15), 5.0)], LATE_SCHEMA)
    assert_df_equality(result, expected, ignore_nullable=True)


def test_a_job_of_sql_keeps_its_late_events_with_empty_windows(spark):
    result = late(spark, [("a", at(1), "/x")], at(30), rule(window=None, deduplicated=True))
    assert [(row.event_id, row.window_start, row.window_end) for row in result.collect()] == [("a", None, None)]
