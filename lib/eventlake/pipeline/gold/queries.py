"""A gold job's two queries, intake and windows, and the tables and checkpoints they need before they start."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from eventlake.pipeline.contract import with_job_clock
from eventlake.pipeline.expectations import check_expectations
from eventlake.pipeline.gold.checks import EVENTS, WINDOW_BATCHES, check_gold_plan
from eventlake.pipeline.gold.source import EventSource, ddl, event_source, load_dimensions
from eventlake.pipeline.gold.steps import gold_windows, steps_before_windows, with_window_bounds
from eventlake.pipeline.intake import BatchCounts, observe_dead_letters, write_intake_batch
from eventlake.pipeline.late_events import LATE_COLUMNS_SCHEMA, LATE_EVENTS, LateRule
from eventlake.pipeline.quiet import (
    HEARTBEATS,
    HEARTBEATS_SCHEMA,
    QuietTopic,
    checkpoint_watermark,
    close_if_quiet,
    streams_heartbeats,
)
from eventlake.pipeline.resume import check_windows_start, resumed_kafka
from eventlake.pipeline.sinks import (
    BATCH_COLUMNS,
    BATCH_COLUMNS_SCHEMA,
    BatchWriter,
    ensure_tables,
    start_batch_stream,
)
from eventlake.pipeline.sources import read_delta_stream, read_kafka_stream
from eventlake.pipeline.windowed import LateCapture, WindowTables, write_valid_events, write_windows_batch
from eventlake.runtime.config import ConfigError, GoldSettings, GoldWindow, Settings
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.runner import QueryPlan
from eventlake.runtime.storage_checks import claim_checkpoint, require_folder


def gold_queries(spark: SparkSession, settings: Settings) -> QueryPlan:
    """The gold job's queries: intake then windows, or for a table source the windows query on that table.
    Checks the config's expressions and tables and the storage, and claims the checkpoints, first.

    Example::

        run_queries(spark, settings, "ysb", gold_queries)  # settings from configure_gold
    """
    gold, storage, retry = settings.gold, settings.storage, settings.retry
    job = gold.name
    dimensions = load_dimensions(spark, gold)
    check_gold_plan(spark, settings, dimensions)
    source = event_source(settings, spark)
    require_folder(storage.tables_root, "tables root")
    windows_query = f"{job}_windows"
    events_table = gold.source.table or job_table(job, EVENTS)
    topic = settings.kafka.topic or events_table
    windows_checkpoint = storage.checkpoint_path(job, "windows")
    windows_id = claim_checkpoint(spark, windows_checkpoint, job, "windows", topic, source=events_table)
    windows_tables = (gold.output, job_table(job, WINDOW_BATCHES), job_table(job, LATE_EVENTS))
    check_windows_start(
        spark, job, windows_checkpoint, {name: storage.table_path(name) for name in windows_tables},
        rebuild=gold.rebuild,
    )
    events_path = storage.table_path(events_table)
    tables = WindowTables(job=job, query=windows_query, output=gold.output, batches=job_table(job, WINDOW_BATCHES))
    write_windows = partial(
        write_windows_batch, tables=tables, spark=spark, storage=storage, retry=retry,
        writer=BatchWriter.for_checkpoint(spark, windows_query, windows_checkpoint, windows_id),
        late=late_capture(gold, source.id_column, dimensions, events_path) if gold.late_events else None,
    )
    # Made before the queries start, at the same time: the events table (the windows query streams it from
    # its first version), the late events (empty until an event is late: a table to query, always) and the
    # heartbeats of a job that closes its windows when the topic is quiet.
    new_tables: dict[str, str] = {}
    if gold.late_events:
        new_tables[storage.table_path(job_table(job, LATE_EVENTS))] = late_events_schema(source.columns)
    heartbeats_path = storage.table_path(job_table(job, HEARTBEATS))
    heartbeat_source = streams_heartbeats(spark, windows_checkpoint, gold.idle_timeout)
    if heartbeat_source:
        new_tables[heartbeats_path] = HEARTBEATS_SCHEMA

    def start_windows() -> StreamingQuery:
        events = read_delta_stream(spark, events_path, gold.max_files_per_trigger)
        heartbeats = read_delta_stream(spark, heartbeats_path) if heartbeat_source else None
        windows = events.transform(gold_windows, gold, source.id_column, dimensions, heartbeats)
        return start_batch_stream(windows, write_windows, windows_query, windows_checkpoint, gold.trigger)

    def start_windows_if_quiet() -> StreamingQuery | None:
        """availableNow: once the windows have caught up, close them when the topic is quiet (one more run)."""
        if gold.idle_timeout is None or not close_if_quiet(
            spark, events_path=events_path, watermark=checkpoint_watermark(spark, windows_checkpoint),
            heartbeats_path=heartbeats_path,
            idle_timeout=gold.idle_timeout, delay=gold.watermark, span=window_span(gold.window), now=time.time(),
        ):
            return None
        print(f"{job}: the topic has been quiet for {gold.idle_timeout}: closing the open windows", flush=True)
        return start_windows()

    in_turn = gold.trigger == "availableNow"
    starts: tuple[Callable[[], StreamingQuery | None], ...] = (start_windows, start_windows_if_quiet)
    if not gold.source.table:
        starts = (_intake_start(spark, settings, source, events_table), *starts)
        new_tables[events_path] = f"{ddl(source.columns)}, {BATCH_COLUMNS_SCHEMA}"
    ensure_tables(spark, new_tables)
    tick = None
    if gold.idle_timeout is not None and not in_turn:
        quiet = QuietTopic(
            spark, windows_query, events_path, heartbeats_path, gold.idle_timeout, gold.watermark,
            window_span(gold.window),
        )
        tick = quiet.tick
    return QueryPlan(
        starts=starts, in_turn=in_turn, state_checkpoints={windows_query: windows_checkpoint}, tick=tick
    )


def window_span(window: GoldWindow) -> timedelta:
    """How long after its last event a window of ``window`` may end: its size, or a session's gap.

    Example::

        window_span(GoldWindow(kind="session", gap=timedelta(minutes=30)))  # timedelta(seconds=1800)
    """
    span = window.gap if window.kind == "session" else window.size
    if span is None:
        raise ConfigError("gold.window: a duration is missing")
    return span


def late_capture(
    gold: GoldSettings, id_column: str | None, dimensions: Mapping[str, DataFrame], events_path: str
) -> LateCapture:
    """How the gold job ``gold`` keeps its late events in ``<name>_late_events``: the rules of its own windows
    (:mod:`eventlake.pipeline.late_events`). A job of SQL with no id field to de-duplicate on cannot: which
    window its SQL puts a row in is not known.

    Example::

        late = late_capture(settings.gold, source.id_column, dimensions, storage.table_path("ysb_events"))
        late.table  # 'ysb_late_events'
    """
    if gold.sql.strip() and id_column is None:
        raise ConfigError(
            "gold.late_events: a job of sql keeps its late events only when its contract has an id field (the "
            "de-duplication decides what is late); its own windows are not known"
        )
    rule = LateRule(
        deduplicated=id_column is not None,
        prepare=partial(steps_before_windows, gold=gold, dimensions=dimensions),
        with_window=None if gold.sql.strip() else partial(with_window_bounds, window=gold.window),
    )
    return LateCapture(
        table=job_table(gold.name, LATE_EVENTS), rule=rule, events_path=events_path, drop=BATCH_COLUMNS
    )


def late_events_schema(event_columns: Mapping[str, str]) -> str:
    """The DDL of a late events table whose events have ``event_columns`` (an events table's: its batch
    columns are the windows query's own).

    Example::

        ensure_tables(spark, {storage.table_path("ysb_late_events"): late_events_schema(source.columns)})
    """
    columns = {name: sql_type for name, sql_type in event_columns.items() if name not in BATCH_COLUMNS}
    return f"{ddl(columns)}, {LATE_COLUMNS_SCHEMA}, {BATCH_COLUMNS_SCHEMA}"


def _intake_start(
    spark: SparkSession, settings: Settings, source: EventSource, events_table: str
) -> Callable[[], StreamingQuery]:
    """The start of the intake query: the topic parsed with the source's contract into ``events_table``, the
    dead letters and the intake counts. Claims the intake's checkpoint (the caller makes ``events_table``)."""
    gold, storage, retry = settings.gold, settings.storage, settings.retry
    job, query = gold.name, f"{gold.name}_intake"
    checkpoint = storage.checkpoint_path(job, "intake")
    checkpoint_id = claim_checkpoint(spark, checkpoint, job, "intake", settings.kafka.topic)
    writer = BatchWriter.for_checkpoint(spark, query, checkpoint, checkpoint_id)

    def write_events(parsed: DataFrame, batch_id: int, counts: BatchCounts) -> None:
        write_valid_events(
            parsed, batch_id, counts, to_events=source.to_events, table=events_table, job=job, storage=storage,
            writer=writer, retry=retry,
        )

    def write_intake(parsed: DataFrame, batch_id: int) -> None:
        write_intake_batch(
            parsed, batch_id, job=job, storage=storage, writer=writer, retry=retry, expectations=gold.expectations,
            write_records=write_events,
        )

    def start_intake() -> StreamingQuery:
        kafka = resumed_kafka(spark, settings.kafka, storage, job, checkpoint)
        raw = read_kafka_stream(spark, kafka).transform(with_job_clock)
        parsed = source.parse(raw).transform(check_expectations, gold.expectations).transform(observe_dead_letters)
        return start_batch_stream(parsed, write_intake, query, checkpoint, gold.trigger)

    return start_intake
