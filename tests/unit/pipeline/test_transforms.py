from __future__ import annotations

from datetime import datetime, timedelta

from chispa import assert_df_equality

from eventlake.pipeline.analytics import analytics_windows
from eventlake.pipeline.transforms import (
    count_events_per_type_and_window,
    drop_duplicate_events,
    with_event_time_watermark,
)
from eventlake.runtime.config import AnalyticsSettings

EVENTS_SCHEMA = "event_id string, event_time timestamp, event_type string, user_id string"
WINDOWS_SCHEMA = (
    "window_start timestamp, window_end timestamp, event_type string, event_count long, distinct_users long"
)


def at(minute: int, second: int = 0) -> datetime:
    return datetime(2026, 1, 1, 10, 0) + timedelta(minutes=minute, seconds=second)


def test_tumbling_windows_count_events_and_exact_distinct_users(spark):
    events = spark.createDataFrame(
        [
            ("a", at(0), "click", "u1"),
            ("b", at(1), "click", "u1"),
            ("c", at(4, 59), "click", "u2"),
            ("d", at(5), "click", "u3"),  # a window's end is exclusive
            ("e", at(2), "pageview", None),  # counted, but no user to count
            ("f", at(3), "pageview", "u1"),
        ],
        EVENTS_SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            (at(0), at(5), "click", 3, 2),
            (at(5), at(10), "click", 1, 1),
            (at(0), at(5), "pageview", 2, 1),
        ],
        WINDOWS_SCHEMA,
    )
    actual = events.transform(count_events_per_type_and_window, timedelta(minutes=5))
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_distinct_users_stay_exact_with_many_users(spark):
    rows = [(f"e{i}", at(0, i % 60), "click", f"user-{i % 37}") for i in range(500)]
    events = spark.createDataFrame(rows, EVENTS_SCHEMA)
    [window] = events.transform(count_events_per_type_and_window, timedelta(minutes=5)).collect()
    assert (window.event_count, window.distinct_users) == (500, 37)


def test_sliding_windows_put_an_event_in_each_window_that_covers_it(spark):
    events = spark.createDataFrame([("a", at(3), "click", "u1")], EVENTS_SCHEMA)
    expected = spark.createDataFrame(
        [(at(-1), at(4), "click", 1, 1), (at(0), at(5), "click", 1, 1), (at(1), at(6), "click", 1, 1),
         (at(2), at(7), "click", 1, 1), (at(3), at(8), "click", 1, 1)],
        WINDOWS_SCHEMA,
    )
    actual = events.transform(count_events_per_type_and_window, timedelta(minutes=5), timedelta(minutes=1))
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_duplicate_event_ids_are_dropped_in_a_batch(spark):
    events = spark.createDataFrame(
        [("a", at(0), "click", "u1"), ("a", at(0), "click", "u1"), ("b", at(1), "click", "u2")], EVENTS_SCHEMA
    )
    assert sorted(row.event_id for row in events.transform(drop_duplicate_events).collect()) == ["a", "b"]


def deduplicate_within_ten_minutes(events):
    return events.transform(with_event_time_watermark, timedelta(minutes=10)).transform(drop_duplicate_events)


def test_duplicates_are_dropped_within_and_across_micro_batches(stream_through):
    out = stream_through(
        deduplicate_within_ten_minutes,
        EVENTS_SCHEMA,
        [("a", at(0), "click", "u1"), ("a", at(0), "click", "u1"), ("b", at(1), "click", "u2")],
        [("b", at(1), "click", "u2"), ("c", at(2), "click", "u3")],
    )
    assert sorted(row.event_id for row in out.collect()) == ["a", "b", "c"]


def test_events_behind_the_watermark_are_dropped(stream_through):
    # Spark filters late rows with the watermark as it stood one batch earlier (so that chained stateful
    # operators agree), hence the batch in the middle.
    out = stream_through(
        deduplicate_within_ten_minutes,
        EVENTS_SCHEMA,
        [("a", at(30), "click", "u1")],  # the watermark becomes minute 20
        [("b", at(25), "click", "u1")],
        [("late", at(19), "click", "u2"), ("in-time", at(21), "click", "u3")],
    )
    assert sorted(row.event_id for row in out.collect()) == ["a", "b", "in-time"]


def test_windows_are_emitted_once_the_watermark_passes_their_end(stream_through, spark):
    out = stream_through(
        lambda events: events.transform(analytics_windows, AnalyticsSettings()),
        EVENTS_SCHEMA,
        [("a", at(1), "click", "u1"), ("b", at(3), "click", "u2")],
        [("c", at(2), "click", "u3"), ("d", at(16), "click", "u1")],  # c: out of order, inside the watermark
    )
    # The watermark ends at minute 6: only the first window is final; minute 15's stays open.
    expected = spark.createDataFrame([(at(0), at(5), "click", 3, 3)], WINDOWS_SCHEMA)
    assert_df_equality(out, expected, ignore_nullable=True)


def test_analytics_windows_deduplicates_before_counting(spark):
    events = spark.createDataFrame(
        [("a", at(0), "click", "u1"), ("a", at(0), "click", "u1"), ("b", at(1), "click", "u2")], EVENTS_SCHEMA
    )
    expected = spark.createDataFrame([(at(0), at(5), "click", 2, 2)], WINDOWS_SCHEMA)
    actual = events.transform(analytics_windows, AnalyticsSettings())
    assert_df_equality(actual, expected, ignore_nullable=True)
