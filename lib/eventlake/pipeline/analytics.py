"""The windowed analytics pipeline: Kafka -> contract -> valid events -> watermark -> dedupe -> windows -> Delta.

The analytics job is a gold job of config (:mod:`eventlake.pipeline.gold`) whose settings come from
``[analytics]`` (:func:`analytics_gold`): each record is read from Kafka and parsed once, by one query; a
second query reads what the first wrote:

* ``analytics_intake`` (stateless, ``foreachBatch``): parses each micro-batch once and writes, each write
  idempotent per batch id, the invalid records to ``analytics_dead_letters``, the valid events to
  ``analytics_events`` and the per-partition counts to ``analytics_intake_batches`` (see
  :mod:`eventlake.pipeline.intake`).
* ``analytics_windows`` (stateful): streams ``analytics_events`` from Delta through the watermark, the
  deduplication and the windowed counts into ``analytics_windows`` (idempotent per batch id; a batch that
  closes no window writes nothing) and the batch's own figures (events read, counted, dropped as
  duplicates and as late; its offsets) into ``analytics_window_batches``, once, for the reconciliation.

A second query on the topic would read and parse every record again, and a stateful query feeds one sink
only, so the queries are chained through the events table. With ``availableNow`` the intake drains the
topic first, then the windows drain the events table.
"""

from __future__ import annotations

from dataclasses import replace

from pyspark.sql import DataFrame, SparkSession

from eventlake.pipeline.gold import gold_queries, gold_windows
from eventlake.runtime.config import (
    AnalyticsSettings,
    GoldMeasure,
    GoldSettings,
    GoldSource,
    GoldWindow,
    Settings,
)
from eventlake.runtime.runner import QueryPlan

JOB = "analytics"
WINDOWS_TABLE = "analytics_windows"
EVENTS_TABLE = "analytics_events"
WINDOW_BATCHES_TABLE = "analytics_window_batches"
# The columns of analytics_windows that say what was counted (the rest, writer_id and batch_id, say which
# batch wrote the row).
WINDOW_COLUMNS = ("window_start", "window_end", "event_type", "event_count", "distinct_users")
INTAKE_QUERY = f"{JOB}_intake"
WINDOWS_QUERY = f"{JOB}_windows"
# The contract's columns kept in analytics_events (then the Kafka coordinates, writer_id and batch_id): what
# the windows need, and the event's own fields; not data.
EVENT_COLUMNS = ("event_id", "event_time", "event_type", "user_id", "source", "schema_version", "session_id")


def analytics_gold(analytics: AnalyticsSettings) -> GoldSettings:
    """The analytics job as a gold job of config: the built-in contract on ``kafka.topic``, its events kept
    without ``data``, events and exact distinct users per event type in the windows of ``[analytics]``."""
    window = (
        GoldWindow(kind="sliding", size=analytics.window, slide=analytics.slide)
        if analytics.slide is not None
        else GoldWindow(kind="tumbling", size=analytics.window)
    )
    return GoldSettings(
        name=JOB,
        output=WINDOWS_TABLE,
        source=GoldSource(columns=EVENT_COLUMNS),
        watermark=analytics.watermark,
        window=window,
        group_by=("event_type",),
        measures=(
            GoldMeasure(name="event_count", fn="count"),
            GoldMeasure(name="distinct_users", fn="count_distinct", expr="user_id"),
        ),
        trigger=analytics.trigger,
        late_events=analytics.late_events,
        max_files_per_trigger=analytics.max_files_per_trigger,
        idle_timeout=analytics.idle_timeout,
        rebuild=analytics.rebuild,
    )


def analytics_windows(events: DataFrame, analytics: AnalyticsSettings) -> DataFrame:
    """Valid events -> one row per (window, event type) with exact event and distinct-user counts,
    emitted once, when the watermark passes the window's end (:func:`analytics_gold`)."""
    return gold_windows(events, analytics_gold(analytics), "event_id", {})


def analytics_queries(spark: SparkSession, settings: Settings) -> QueryPlan:
    """The job's two queries, intake first: the gold job :func:`analytics_gold` (see
    :func:`~eventlake.pipeline.gold.gold_queries`)."""
    return gold_queries(spark, replace(settings, gold=analytics_gold(settings.analytics)))
