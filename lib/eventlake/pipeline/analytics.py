"""The windowed analytics pipeline: Kafka -> contract -> valid events -> watermark -> dedupe -> windows -> Delta.

Each record is read from Kafka and parsed once, by one query; a second query reads what the first wrote:

* ``analytics_intake`` (stateless, ``foreachBatch``): parses each micro-batch once and writes, each write
  idempotent per batch id, the invalid records to ``dead_letters``, the valid events to
  ``analytics_events`` and the per-partition counts to ``intake_batches`` (see :mod:`eventlake.pipeline.intake`).
* ``analytics_windows`` (stateful): streams ``analytics_events`` from Delta through the watermark, the
  deduplication and the windowed counts into ``analytics_windows`` (idempotent per batch id; a batch that
  closes no window writes nothing) and the batch's own figures (events read, counted, dropped as
  duplicates and as late; its offsets) into ``analytics_window_batches``, once, for the reconciliation.

A second query on the topic would read and parse every record again, and a stateful query feeds one sink
only, so the queries are chained through the events table. With ``availableNow`` the intake drains the
topic first, then the windows drain the events table.
"""

from __future__ import annotations

from functools import partial

from pyspark.sql import DataFrame, SparkSession

from eventlake.pipeline.contract import parse_events, valid_events, with_job_clock
from eventlake.pipeline.intake import observe_dead_letters, write_intake_batch
from eventlake.pipeline.sinks import BATCH_COLUMNS_SCHEMA, BatchWriter, ensure_table, start_batch_stream
from eventlake.pipeline.sources import read_delta_stream, read_kafka_stream
from eventlake.pipeline.transforms import (
    count_events_per_type_and_window,
    drop_duplicate_events,
    with_event_time_watermark,
)
from eventlake.pipeline.windowed import (
    DEDUPLICATED_ROWS,
    WINDOWED_ROWS,
    WINDOWS_INPUT_ROWS,
    WindowTables,
    observe_rows,
    write_valid_events,
    write_windows_batch,
)
from eventlake.runtime.config import AnalyticsSettings, Settings
from eventlake.runtime.runner import QueryPlan
from eventlake.runtime.storage_checks import claim_checkpoint, require_folder

JOB = "analytics"
WINDOWS_TABLE = "analytics_windows"
EVENTS_TABLE = "analytics_events"
# The columns of analytics_windows that say what was counted (the rest, writer_id and batch_id, say which
# batch wrote the row).
WINDOW_COLUMNS = ("window_start", "window_end", "event_type", "event_count", "distinct_users")
INTAKE_QUERY = f"{JOB}_intake"
WINDOWS_QUERY = f"{JOB}_windows"
# The columns of analytics_events: what the windows need, and where each event came from; then the
# columns BatchWriter adds to every row it appends.
EVENT_COLUMNS = (
    "event_id", "event_time", "event_type", "user_id", "source", "schema_version", "session_id",
    "topic", "partition", "offset", "kafka_timestamp",
)
EVENTS_SCHEMA = (
    "event_id string, event_time timestamp, event_type string, user_id string, source string,"
    " schema_version string, session_id string, topic string, partition int, offset long, kafka_timestamp timestamp,"
    f" {BATCH_COLUMNS_SCHEMA}"
)
# One row per batch of the windows query that read anything: what the reconciliation adds up.
WINDOW_BATCHES_TABLE = "analytics_window_batches"
WINDOW_TABLES = WindowTables(job=JOB, query=WINDOWS_QUERY, output=WINDOWS_TABLE, batches=WINDOW_BATCHES_TABLE)


def analytics_windows(events: DataFrame, analytics: AnalyticsSettings) -> DataFrame:
    """Valid events -> one row per (window, event type) with exact event and distinct-user counts,
    emitted once, when the watermark passes the window's end."""
    events = observe_rows(events, WINDOWS_INPUT_ROWS)
    deduplicated = events.transform(with_event_time_watermark, analytics.watermark).transform(drop_duplicate_events)
    deduplicated = observe_rows(observe_rows(deduplicated, DEDUPLICATED_ROWS), WINDOWED_ROWS)
    return deduplicated.transform(count_events_per_type_and_window, analytics.window, analytics.slide)


def to_analytics_events(parsed: DataFrame) -> DataFrame:
    """Rows of :func:`~eventlake.pipeline.contract.parse_events` -> rows of ``analytics_events`` (valid events only)."""
    return valid_events(parsed).select(*EVENT_COLUMNS)


def analytics_queries(spark: SparkSession, settings: Settings) -> QueryPlan:
    """The job's two queries, intake first; checks the storage and claims both checkpoints first."""
    storage, trigger = settings.storage, settings.analytics.trigger
    require_folder(storage.tables_root, "tables root")
    intake_checkpoint = storage.checkpoint_path(JOB, "intake")
    windows_checkpoint = storage.checkpoint_path(JOB, "windows")
    intake_id = claim_checkpoint(spark, intake_checkpoint, JOB, "intake", settings.kafka.topic)
    windows_id = claim_checkpoint(spark, windows_checkpoint, JOB, "windows", settings.kafka.topic, source=EVENTS_TABLE)
    events_path = storage.table_path(EVENTS_TABLE)
    # The windows query streams this table from its first version, so it must exist before either starts.
    ensure_table(spark, events_path, EVENTS_SCHEMA)
    intake_writer = BatchWriter.for_checkpoint(spark, INTAKE_QUERY, intake_checkpoint, intake_id)
    write_intake = partial(
        write_intake_batch,
        job=JOB,
        storage=storage,
        writer=intake_writer,
        retry=settings.retry,
        write_records=partial(
            write_valid_events, to_events=to_analytics_events, table=EVENTS_TABLE, job=JOB, storage=storage,
            writer=intake_writer, retry=settings.retry,
        ),
    )

    def start_intake():
        raw = read_kafka_stream(spark, settings.kafka).transform(with_job_clock)
        parsed = raw.transform(parse_events, settings.contract)
        return start_batch_stream(
            parsed.transform(observe_dead_letters), write_intake, INTAKE_QUERY, intake_checkpoint, trigger
        )

    write_windows = partial(
        write_windows_batch,
        tables=WINDOW_TABLES,
        spark=spark,
        storage=storage,
        retry=settings.retry,
        writer=BatchWriter.for_checkpoint(spark, WINDOWS_QUERY, windows_checkpoint, windows_id),
    )

    def start_windows():
        windows = read_delta_stream(spark, events_path).transform(analytics_windows, settings.analytics)
        return start_batch_stream(windows, write_windows, WINDOWS_QUERY, windows_checkpoint, trigger)

    return QueryPlan(
        starts=(start_intake, start_windows),
        in_turn=trigger == "availableNow",
        state_checkpoints={WINDOWS_QUERY: windows_checkpoint},
    )
