"""The windowed analytics pipeline: Kafka -> contract -> watermark -> dedupe -> windows -> Delta.

Two streaming queries, each with its own checkpoint, read the topic: ``analytics_windows`` (stateful:
watermark, deduplication, windowed counts, Delta streaming sink) and ``analytics_intake`` (stateless:
dead letters and per-batch intake counts, see :mod:`eventlake.intake`). A stateful query feeds exactly
one sink, so the invalid records cannot ride along with the windows.
"""

from __future__ import annotations

from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from eventlake.config import AnalyticsSettings, Settings
from eventlake.contract import parse_events, valid_events
from eventlake.intake import observe_dead_letters, write_intake_batch
from eventlake.sinks import batch_writer_id, start_batch_stream, start_delta_stream
from eventlake.sources import read_kafka_stream
from eventlake.storage_checks import claim_checkpoint, require_folder
from eventlake.transforms import count_events_per_type_and_window, drop_duplicate_events, with_event_time_watermark

JOB = "analytics"
WINDOWS_TABLE = "analytics_windows"
# Observed per batch (progress.observedMetrics): events that reach the window aggregation, after
# deduplication; recorded in pipeline_metrics.windowed_rows for the reconciliation.
WINDOWED_ROWS = "windowed_rows"


def analytics_windows(events: DataFrame, analytics: AnalyticsSettings) -> DataFrame:
    """Valid events -> one row per (window, event type) with exact event and distinct-user counts,
    emitted once, when the watermark passes the window's end."""
    deduplicated = events.transform(with_event_time_watermark, analytics.watermark).transform(drop_duplicate_events)
    if deduplicated.isStreaming:
        deduplicated = deduplicated.observe(WINDOWED_ROWS, F.count(F.lit(1)).alias("rows"))
    return deduplicated.transform(count_events_per_type_and_window, analytics.window, analytics.slide)


def start_analytics_queries(spark: SparkSession, settings: Settings) -> list[StreamingQuery]:
    """Start the job's two streaming queries; they run until the trigger says stop."""
    storage, trigger = settings.storage, settings.analytics.trigger
    require_folder(storage.tables_root, "tables root")
    for query in ("windows", "intake"):
        claim_checkpoint(storage.checkpoint_path(JOB, query), JOB, query, settings.kafka.topic)
    parsed = read_kafka_stream(spark, settings.kafka).transform(parse_events, settings.contract)
    windows = valid_events(parsed).transform(analytics_windows, settings.analytics)
    intake_checkpoint = storage.checkpoint_path(JOB, "intake")
    write_intake = partial(
        write_intake_batch, job=JOB, storage=storage, writer_id=batch_writer_id(f"{JOB}_intake", intake_checkpoint)
    )
    return [
        start_delta_stream(
            windows,
            storage.table_path(WINDOWS_TABLE),
            f"{JOB}_windows",
            storage.checkpoint_path(JOB, "windows"),
            trigger,
        ),
        start_batch_stream(
            parsed.transform(observe_dead_letters), write_intake, f"{JOB}_intake", intake_checkpoint, trigger
        ),
    ]
