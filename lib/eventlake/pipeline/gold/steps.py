"""A gold job's steps, pure DataFrame -> DataFrame: derived columns, filter, joins, the window and its measures."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DayTimeIntervalType, StringType

from eventlake.pipeline.gold.measures import measure_column
from eventlake.pipeline.quiet import with_heartbeats, without_heartbeats
from eventlake.pipeline.transforms import drop_duplicate_events, with_event_time_watermark
from eventlake.pipeline.windowed import DEDUPLICATED_ROWS, WINDOWED_ROWS, WINDOWS_INPUT_ROWS, observe_rows
from eventlake.runtime.config import ConfigError, GoldJoin, GoldSettings, GoldWindow, spark_interval

EVENTS_VIEW = "events"  # the view a gold job's ``sql`` reads


def with_columns_of(rows: DataFrame, columns: Mapping[str, str]) -> DataFrame:
    """Add the derived ``columns`` (name -> SQL expression over the events' columns).

    Example::

        events.transform(with_columns_of, {"page": "try_variant_get(data, '$.page', 'string')"})
    """
    return rows.withColumns({name: F.expr(expr) for name, expr in columns.items()}) if columns else rows


def keep_rows(rows: DataFrame, condition: str) -> DataFrame:
    """Keep the rows for which the SQL ``condition`` holds (all rows when it is empty).

    Example::

        events.transform(keep_rows, "event_type = 'view'")
    """
    return rows.where(F.expr(condition)) if condition.strip() else rows


def join_dimensions(rows: DataFrame, joins: tuple[GoldJoin, ...], dimensions: Mapping[str, DataFrame]) -> DataFrame:
    """Join each dimension (``dimensions``: by join name) on its columns: a stream-static join.

    Example::

        events.transform(join_dimensions, settings.gold.joins, load_dimensions(spark, settings.gold))
    """
    for join in joins:
        rows = rows.join(dimensions[join.name], list(join.on), join.how)
    return rows


def steps_before_windows(rows: DataFrame, gold: GoldSettings, dimensions: Mapping[str, DataFrame]) -> DataFrame:
    """The steps between the de-duplication and the window: derived columns, filter, joins. Late events take
    them too, to be put in the windows they missed.

    Example::

        rows = events.transform(steps_before_windows, settings.gold, dimensions)
    """
    return (
        rows.transform(with_columns_of, gold.columns)
        .transform(keep_rows, gold.filter)
        .transform(join_dimensions, gold.joins, dimensions)
    )


def window_column(window: GoldWindow, rows: DataFrame) -> Column:
    """The event-time window of ``window`` over ``rows``: tumbling, sliding, or a session closed after its gap.

    Example::

        tumbling = GoldWindow(kind="tumbling", size=timedelta(seconds=10))
        rows.groupBy(window_column(tumbling, rows).alias("window")).count()
    """
    if window.kind == "session":
        gap = _session_gap(rows, window.gap_expr) if window.gap_expr else _interval(window.gap)
        return F.session_window("event_time", gap)
    slide = _interval(window.slide) if window.kind == "sliding" else None
    return F.window("event_time", _interval(window.size), slide)


def with_window_bounds(rows: DataFrame, window: GoldWindow) -> DataFrame:
    """Add ``window_start`` and ``window_end`` of the window each row falls in on its own (a row per window for
    sliding windows); for a session, the session of that one event: its time to its time plus the gap.

    Example::

        sliding = GoldWindow(kind="sliding", size=timedelta(minutes=10), slide=timedelta(minutes=5))
        rows.transform(with_window_bounds, sliding)  # two rows per event, one per window it falls in
    """
    if window.kind == "session":
        gap = _session_gap(rows, window.gap_expr) if window.gap_expr else F.expr(f"INTERVAL {_interval(window.gap)}")
        return rows.withColumns({"window_start": F.col("event_time"), "window_end": F.col("event_time") + gap})
    bounds = window_column(window, rows)
    return rows.withColumns({"window_start": bounds.start, "window_end": bounds.end})


def _session_gap(rows: DataFrame, expr: str) -> Column:
    """``expr`` as the calendar interval a session window takes: an ANSI interval (``INTERVAL 10 MINUTES``) is
    taken apart into one, text (``'10 minutes'``) is cast."""
    gap = F.expr(expr)
    gap_type = rows.select(gap).schema.fields[0].dataType
    if isinstance(gap_type, DayTimeIntervalType):
        # Its length in microseconds, whatever its fields (SECOND, DAY TO SECOND...), as seconds of an interval.
        micros = F.unix_micros(F.timestamp_micros(F.lit(0)) + gap)
        seconds = (micros / 1_000_000).cast("decimal(18,6)")
        return F.make_interval(secs=seconds)
    if isinstance(gap_type, StringType):
        return gap.cast("interval")
    return gap


def _interval(duration: timedelta | None) -> str:
    if duration is None:  # gold_problems reports it first
        raise ConfigError("gold.window: a duration is missing")
    return spark_interval(duration)


def aggregate_windows(rows: DataFrame, gold: GoldSettings) -> DataFrame:
    """Rows -> one row per window and group: ``window_start``, ``window_end``, the ``group_by`` columns, for a
    session ``duration_seconds`` (from its first event to its last; Spark's ``window_end`` is the last event
    plus the gap), then the measures.

    Example::

        windows = rows.transform(aggregate_windows, settings.gold)
    """
    session = gold.window.kind == "session"
    bounds = [F.min("event_time").alias("_first_event"), F.max("event_time").alias("_last_event")] if session else []
    grouped = rows.groupBy(window_column(gold.window, rows).alias("window"), *gold.group_by).agg(
        *bounds, *(measure_column(measure) for measure in gold.measures)
    )
    duration = []
    if session:
        micros = F.unix_micros("_last_event") - F.unix_micros("_first_event")
        duration.append((micros / 1_000_000).alias("duration_seconds"))
    return grouped.select(
        F.col("window.start").alias("window_start"),
        F.col("window.end").alias("window_end"),
        *gold.group_by,
        *duration,
        *(measure.name for measure in gold.measures),
    )


def prepared_events(
    events: DataFrame,
    gold: GoldSettings,
    id_column: str | None,
    dimensions: Mapping[str, DataFrame],
    heartbeats: DataFrame | None = None,
) -> DataFrame:
    """Events -> the rows the window aggregates: watermark, de-duplication on ``id_column`` (none when None),
    derived columns, filter, joins. Each stage's rows are observed on a stream, for the batch's figures.
    ``heartbeats`` (a stream, see :mod:`eventlake.pipeline.quiet`) move the watermark and go no further.

    Example::

        rows = events.transform(prepared_events, settings.gold, "event_id", dimensions)
    """
    events = observe_rows(events, WINDOWS_INPUT_ROWS)
    if heartbeats is not None:
        events = with_heartbeats(events, heartbeats)
    events = events.transform(with_event_time_watermark, gold.watermark)
    if heartbeats is not None:
        events = without_heartbeats(events)
    if id_column is not None:
        events = events.transform(drop_duplicate_events, id_column)
    events = observe_rows(events, DEDUPLICATED_ROWS)
    return observe_rows(steps_before_windows(events, gold, dimensions), WINDOWED_ROWS)


def gold_windows(
    events: DataFrame,
    gold: GoldSettings,
    id_column: str | None,
    dimensions: Mapping[str, DataFrame],
    heartbeats: DataFrame | None = None,
) -> DataFrame:
    """Events -> the gold table's rows: :func:`prepared_events`, then :func:`aggregate_windows` or ``gold.sql``
    over them as the view ``events``.

    Example::

        windows = events.transform(gold_windows, settings.gold, source.id_column, dimensions)
    """
    rows = prepared_events(events, gold, id_column, dimensions, heartbeats)
    if gold.sql.strip():
        rows.createOrReplaceTempView(EVENTS_VIEW)
        return rows.sparkSession.sql(gold.sql)
    return aggregate_windows(rows, gold)
