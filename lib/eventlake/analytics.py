"""The windowed analytics pipeline: Kafka -> contract -> watermark -> dedupe -> windows -> Delta.

Two streaming queries, each with its own checkpoint, read the topic: ``analytics_windows`` (stateful:
watermark, deduplication, windowed counts) and ``analytics_dead_letters`` (stateless: invalid records).
A stateful query can feed only one sink, so the invalid records cannot ride along with the windows.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from eventlake.config import AnalyticsSettings, Settings
from eventlake.contract import invalid_records, parse_events, valid_events
from eventlake.dead_letters import DEAD_LETTERS_TABLE, to_dead_letters
from eventlake.sinks import start_delta_stream
from eventlake.sources import read_kafka_stream
from eventlake.transforms import count_events_per_type_and_window, drop_duplicate_events, with_event_time_watermark

JOB = "analytics"
WINDOWS_TABLE = "analytics_windows"


def analytics_windows(events: DataFrame, analytics: AnalyticsSettings) -> DataFrame:
    """Valid events -> one row per (window, event type) with exact event and distinct-user counts,
    emitted once, when the watermark passes the window's end."""
    return (
        events.transform(with_event_time_watermark, analytics.watermark)
        .transform(drop_duplicate_events)
        .transform(count_events_per_type_and_window, analytics.window, analytics.slide)
    )


def start_analytics_queries(spark: SparkSession, settings: Settings) -> list[StreamingQuery]:
    """Start the job's two streaming queries; they run until the trigger says stop."""
    storage, trigger = settings.storage, settings.analytics.trigger
    parsed = read_kafka_stream(spark, settings.kafka).transform(parse_events, settings.contract)
    windows = valid_events(parsed).transform(analytics_windows, settings.analytics)
    dead_letters = invalid_records(parsed).transform(to_dead_letters, job=JOB, stage="contract")
    return [
        start_delta_stream(
            windows,
            storage.table_path(WINDOWS_TABLE),
            f"{JOB}_windows",
            storage.checkpoint_path(JOB, "windows"),
            trigger,
        ),
        start_delta_stream(
            dead_letters,
            storage.table_path(DEAD_LETTERS_TABLE),
            f"{JOB}_dead_letters",
            storage.checkpoint_path(JOB, "dead_letters"),
            trigger,
        ),
    ]
