"""Pure DataFrame -> DataFrame steps on valid events, chainable with ``DataFrame.transform``."""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from eventlake.runtime.config import spark_interval


def with_event_time_watermark(events: DataFrame, delay: timedelta) -> DataFrame:
    """Declare ``event_time`` the event time, accepting events up to ``delay`` behind the latest seen."""
    return events.withWatermark("event_time", spark_interval(delay))


def drop_duplicate_events(events: DataFrame, id_column: str = "event_id") -> DataFrame:
    """Keep the first event of each id (``id_column``). On a stream, within the watermark: the state of an id
    is kept until the watermark passes its first event time plus the watermark delay. On a batch (a
    backfill), over the whole DataFrame."""
    if events.isStreaming:
        return events.dropDuplicatesWithinWatermark([id_column])
    return events.dropDuplicates([id_column])


def count_events_per_type_and_window(
    events: DataFrame, window: timedelta, slide: timedelta | None = None
) -> DataFrame:
    """Events and distinct users per event type in event-time windows (tumbling, or sliding by ``slide``).

    Distinct users are exact (``size(collect_set(user_id))``); events without a user are counted in
    ``event_count`` but not in ``distinct_users``.
    """
    window_column = F.window("event_time", spark_interval(window), spark_interval(slide) if slide else None)
    return (
        events.groupBy(window_column.alias("window"), "event_type")
        .agg(F.count(F.lit(1)).alias("event_count"), F.size(F.collect_set("user_id")).alias("distinct_users"))
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "event_type",
            "event_count",
            F.col("distinct_users").cast("long").alias("distinct_users"),
        )
    )
