"""Gold jobs declared in config: a topic read with a contract, windowed group-bys into a Delta table.

    spark-submit jobs/gold.py --config conf/gold/ysb.toml

A gold job is the analytics job's two queries with its steps taken from ``[gold]`` (see
:class:`~eventlake.runtime.config.GoldSettings`):

* ``<name>_intake`` reads the topic, parses each record once with the source's contract (the built-in event
  contract, or one declared in ``[contracts.<name>]``) and writes, once per batch, the dead letters, the valid
  events to ``<name>_events`` and the intake counts (:mod:`eventlake.pipeline.intake`);
* ``<name>_windows`` streams ``<name>_events`` through the watermark, the de-duplication on the contract's id
  field, the derived ``columns``, the ``filter``, the dimension ``joins`` and the window's group-by with its
  ``measures`` (or the ``sql`` statement over the view ``events``) into the ``output`` table, with each batch's
  figures in ``<name>_window_batches`` (:mod:`eventlake.pipeline.windowed`).

Every step is a Spark expression, checked against the events' columns before the job reads anything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial

from delta.tables import DeltaTable
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import DayTimeIntervalType, StringType

from eventlake.pipeline.contract import (
    BUILT_IN_CONTRACT,
    contract_problems,
    declared_columns,
    parse_declared,
    parse_events,
    valid_declared_events,
    valid_events,
    with_job_clock,
)
from eventlake.pipeline.dimensions import dimension_from_csv
from eventlake.pipeline.expectations import EXPECTATION_BATCHES, check_expectations
from eventlake.pipeline.intake import observe_dead_letters, write_intake_batch
from eventlake.pipeline.late_events import LATE_COLUMNS_SCHEMA, LATE_EVENTS, LateRule
from eventlake.pipeline.quiet import (
    HEARTBEATS,
    HEARTBEATS_SCHEMA,
    QuietTopic,
    checkpoint_watermark,
    close_if_quiet,
    streams_heartbeats,
    with_heartbeats,
    without_heartbeats,
)
from eventlake.pipeline.sinks import (
    BATCH_COLUMNS,
    BATCH_COLUMNS_SCHEMA,
    BatchWriter,
    ensure_tables,
    start_batch_stream,
)
from eventlake.pipeline.sources import read_delta_stream, read_kafka_stream
from eventlake.pipeline.transforms import drop_duplicate_events, with_event_time_watermark
from eventlake.pipeline.windowed import (
    DEDUPLICATED_ROWS,
    WINDOWED_ROWS,
    WINDOWS_INPUT_ROWS,
    LateCapture,
    WindowTables,
    observe_rows,
    write_valid_events,
    write_windows_batch,
)
from eventlake.runtime.config import (
    ConfigError,
    GoldJoin,
    GoldMeasure,
    GoldSettings,
    GoldWindow,
    Settings,
    check_trigger,
    spark_interval,
)
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import EVERY_JOB_TABLES, job_table
from eventlake.runtime.runner import QueryPlan
from eventlake.runtime.storage_checks import claim_checkpoint, require_folder

# The built-in contract's event columns and their types (eventlake.pipeline.contract.EVENT_COLUMNS).
BUILT_IN_COLUMNS = {
    "event_id": "string", "event_time": "timestamp", "source": "string", "schema_version": "string",
    "event_type": "string", "user_id": "string", "session_id": "string", "data": "variant",
}
KAFKA_COLUMNS = {"topic": "string", "partition": "int", "offset": "long", "kafka_timestamp": "timestamp"}
WINDOW_KINDS = ("tumbling", "sliding", "session")
JOIN_KINDS = ("inner", "left")
EVENTS_VIEW = "events"  # the view a gold job's ``sql`` reads
# A gold job's own tables besides those of every job: <name>_events and <name>_window_batches.
EVENTS = "events"
WINDOW_BATCHES = "window_batches"


def _measure(rows_fn: Callable[[Column], Column]) -> Callable[[str], Column]:
    return lambda expr: rows_fn(F.expr(expr))


# fn -> the aggregate of a SQL expression. Distinct counts are exact as in the analytics job; first and
# last are by event time.
MEASURES: dict[str, Callable[[str], Column]] = {
    "count": lambda expr: F.count(F.expr(expr) if expr else F.lit(1)),
    "sum": _measure(F.sum),
    "min": _measure(F.min),
    "max": _measure(F.max),
    "avg": _measure(F.avg),
    "count_distinct": _measure(lambda column: F.size(F.collect_set(column)).cast("long")),
    "approx_count_distinct": _measure(F.approx_count_distinct),
    "first": _measure(lambda column: F.min_by(column, F.col("event_time"))),
    "last": _measure(lambda column: F.max_by(column, F.col("event_time"))),
    "any": _measure(F.bool_or),
}


@dataclass(frozen=True)
class EventSource:
    """How a gold job reads its topic: ``parse`` (Kafka rows -> rows with the event columns and the error
    columns), ``to_events`` (parsed rows -> valid events with their Kafka coordinates), the events' ``columns``
    (name -> SQL type) and the ``id_column`` that de-duplicates (None: none does)."""

    parse: Callable[[DataFrame], DataFrame]
    to_events: Callable[[DataFrame], DataFrame]
    columns: Mapping[str, str]
    id_column: str | None


def event_source(settings: Settings, spark: SparkSession | None = None) -> EventSource:
    """The source of ``settings.gold``: the built-in contract (``events``) or a declared one on its topic, or a
    Delta table (its columns read with ``spark``; de-duplicated on ``event_id`` when it has one)."""
    if settings.gold.source.table:
        if spark is None:
            raise ValueError("the columns of a table source are read with a SparkSession")
        path = settings.storage.table_path(settings.gold.source.table)
        if not DeltaTable.isDeltaTable(spark, path):
            raise ConfigError(f"gold.source.table: no Delta table at {path} (run the job that writes it first)")
        columns = {field.name: field.dataType.simpleString() for field in spark.read.format("delta").load(path).schema}
        return EventSource(
            parse=lambda rows: rows, to_events=lambda rows: rows, columns=columns,
            id_column="event_id" if "event_id" in columns else None,
        )
    name = settings.gold.source.contract
    if name == BUILT_IN_CONTRACT:
        source = EventSource(
            parse=partial(parse_events, contract=settings.contract),
            to_events=lambda parsed: valid_events(parsed).select(*BUILT_IN_COLUMNS, *KAFKA_COLUMNS),
            columns={**BUILT_IN_COLUMNS, **KAFKA_COLUMNS},
            id_column="event_id",
        )
    else:
        declared = settings.contracts[name]
        source = EventSource(
            parse=partial(parse_declared, contract=declared),
            to_events=partial(valid_declared_events, contract=declared),
            columns={**declared_columns(declared), **KAFKA_COLUMNS},
            id_column=declared.id_field or None,
        )
    return _keeping(source, settings.gold.source.columns)


def _keeping(source: EventSource, kept: tuple[str, ...]) -> EventSource:
    """``source`` with only the ``kept`` columns of its contract (in that order) and the Kafka coordinates."""
    if not kept:
        return source
    unknown = [name for name in kept if name not in source.columns or name in KAFKA_COLUMNS]
    if unknown:
        known = ", ".join(name for name in source.columns if name not in KAFKA_COLUMNS)
        raise ConfigError(f"gold.source.columns: {unknown[0]!r} is not a column of the contract (its columns: {known})")
    missing = [name for name in ("event_time", source.id_column) if name and name not in kept]
    if missing:
        raise ConfigError(f"gold.source.columns must keep {missing[0]!r}: the windows need it")
    columns = {name: source.columns[name] for name in (*kept, *KAFKA_COLUMNS)}
    to_events = source.to_events
    return replace(source, to_events=lambda parsed: to_events(parsed).select(*columns), columns=columns)


# --- the steps, pure DataFrame -> DataFrame ---------------------------------------------------------------------


def with_columns_of(rows: DataFrame, columns: Mapping[str, str]) -> DataFrame:
    """Add the derived ``columns`` (name -> SQL expression over the events' columns)."""
    return rows.withColumns({name: F.expr(expr) for name, expr in columns.items()}) if columns else rows


def keep_rows(rows: DataFrame, condition: str) -> DataFrame:
    """Keep the rows for which the SQL ``condition`` holds (all rows when it is empty)."""
    return rows.where(F.expr(condition)) if condition.strip() else rows


def join_dimensions(rows: DataFrame, joins: tuple[GoldJoin, ...], dimensions: Mapping[str, DataFrame]) -> DataFrame:
    """Join each dimension (``dimensions``: by join name) on its columns: a stream-static join."""
    for join in joins:
        rows = rows.join(dimensions[join.name], list(join.on), join.how)
    return rows


def window_column(window: GoldWindow, rows: DataFrame) -> Column:
    """The event-time window of ``window`` over ``rows``: tumbling, sliding, or a session closed after its gap."""
    if window.kind == "session":
        gap = _session_gap(rows, window.gap_expr) if window.gap_expr else _interval(window.gap)
        return F.session_window("event_time", gap)
    slide = _interval(window.slide) if window.kind == "sliding" else None
    return F.window("event_time", _interval(window.size), slide)


def with_window_bounds(rows: DataFrame, window: GoldWindow) -> DataFrame:
    """Add ``window_start`` and ``window_end`` of the window each row falls in on its own (a row per window for
    sliding windows); for a session, the session of that one event: its time to its time plus the gap."""
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


def measure_column(measure: GoldMeasure) -> Column:
    """The aggregate of one measure, named after it."""
    return MEASURES[measure.fn](measure.expr).alias(measure.name)


def aggregate_windows(rows: DataFrame, gold: GoldSettings) -> DataFrame:
    """Rows -> one row per window and group: ``window_start``, ``window_end``, the ``group_by`` columns, for a
    session ``duration_seconds`` (from its first event to its last; Spark's ``window_end`` is the last event
    plus the gap), then the measures."""
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
    ``heartbeats`` (a stream, see :mod:`eventlake.pipeline.quiet`) move the watermark and go no further."""
    events = observe_rows(events, WINDOWS_INPUT_ROWS)
    if heartbeats is not None:
        events = with_heartbeats(events, heartbeats)
    events = events.transform(with_event_time_watermark, gold.watermark)
    if heartbeats is not None:
        events = without_heartbeats(events)
    if id_column is not None:
        events = events.transform(drop_duplicate_events, id_column)
    events = observe_rows(events, DEDUPLICATED_ROWS)
    return observe_rows(_steps_before_windows(events, gold, dimensions), WINDOWED_ROWS)


def gold_windows(
    events: DataFrame,
    gold: GoldSettings,
    id_column: str | None,
    dimensions: Mapping[str, DataFrame],
    heartbeats: DataFrame | None = None,
) -> DataFrame:
    """Events -> the gold table's rows: :func:`prepared_events`, then :func:`aggregate_windows` or ``gold.sql``
    over them as the view ``events``."""
    rows = prepared_events(events, gold, id_column, dimensions, heartbeats)
    if gold.sql.strip():
        rows.createOrReplaceTempView(EVENTS_VIEW)
        return rows.sparkSession.sql(gold.sql)
    return aggregate_windows(rows, gold)


# --- checks: every mistake in one line, before anything is read ----------------------------------------------

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def own_tables(job: str) -> tuple[str, ...]:
    """The tables a gold job ``job`` keeps besides its output."""
    own = (EVENTS, WINDOW_BATCHES, LATE_EVENTS, HEARTBEATS, EXPECTATION_BATCHES, *EVERY_JOB_TABLES)
    return tuple(f"{job}_{table}" for table in own)


def gold_problems(settings: Settings) -> list[str]:
    """What is wrong in ``[gold]`` and its contract that needs no Spark: each problem one sentence naming its
    key. Empty when it can run."""
    gold, problems = settings.gold, []
    if not _NAME.fullmatch(gold.name):
        problems.append(f"gold.name: {gold.name!r} must be lower-case letters, digits and '_' (it names the tables)")
    if not _NAME.fullmatch(gold.output):
        problems.append(f"gold.output: {gold.output!r} must be a table name: lower-case letters, digits and '_'")
    elif gold.output in own_tables(gold.name):
        own = ", ".join(own_tables(gold.name))
        problems.append(f"gold.output: {gold.output!r} is one of the job's own tables ({own})")
    contract = gold.source.contract
    if gold.source.table and (gold.source.topic or contract != BUILT_IN_CONTRACT):
        problems.append("gold.source: give a table, or a topic and its contract, not both")
    elif gold.source.table and gold.expectations:
        problems.append(
            "gold.expectations: a gold job of a table has no intake to check rows in; check them in the job that"
            " writes the table"
        )
    elif gold.source.table and not _NAME.fullmatch(gold.source.table):
        problems.append(f"gold.source.table: {gold.source.table!r} must be a table name under storage.tables_root")
    elif contract != BUILT_IN_CONTRACT:
        if contract not in settings.contracts:
            known = ", ".join([BUILT_IN_CONTRACT, *settings.contracts])
            problems.append(f"gold.source.contract: no contract {contract!r} (known: {known})")
        else:
            declared = settings.contracts[contract]
            problems.extend(f"contracts.{contract}.{problem}" for problem in contract_problems(declared))
    problems.extend(_window_problems(gold.window))
    try:
        check_trigger("gold.trigger", gold.trigger)
    except ConfigError as problem:
        problems.append(str(problem))
    if gold.idle_timeout is not None and gold.window.kind == "session" and gold.window.gap_expr.strip():
        problems.append("gold.idle_timeout: a session window needs a fixed gap (not gap_expr) to close when quiet")
    if gold.idle_timeout is not None and gold.sql.strip():
        problems.append("gold.idle_timeout: a job of sql cannot close its windows when quiet (its windows are unknown)")
    if gold.max_files_per_trigger < 0:
        problems.append("gold.max_files_per_trigger: must be 0 (Delta's default) or more")
    if bool(gold.sql.strip()) == bool(gold.measures):
        problems.append("gold: give either measures (with window and group_by) or sql, not both and not neither")
    names = [measure.name for measure in gold.measures]
    for measure in gold.measures:
        key = f"gold.measures.{measure.name}"
        if measure.fn not in MEASURES:
            problems.append(f"{key}.fn: {measure.fn!r} is not one of {', '.join(MEASURES)}")
        elif not measure.expr.strip() and measure.fn != "count":
            problems.append(f"{key}.expr: {measure.fn} needs an expression")
        if names.count(measure.name) > 1 or measure.name in gold.group_by:
            problems.append(f"{key}: the name is used twice (measures and group_by name the output columns)")
    join_names = [join.name for join in gold.joins]
    for join in gold.joins:
        key = f"gold.joins.{join.name}"
        if bool(join.csv) == bool(join.delta):
            problems.append(f"{key}: give one of csv (a file with a header) or delta (a table path)")
        if not join.on:
            problems.append(f"{key}.on: name the columns to join on")
        if join.how not in JOIN_KINDS:
            problems.append(f"{key}.how: {join.how!r} is not one of {', '.join(JOIN_KINDS)}")
        if join_names.count(join.name) > 1:
            problems.append(f"{key}: two joins have this name")
    return problems


def _window_problems(window: GoldWindow) -> list[str]:
    if window.kind not in WINDOW_KINDS:
        return [f"gold.window.kind: {window.kind!r} is not one of {', '.join(WINDOW_KINDS)}"]
    if window.kind == "session":
        if (window.gap is None) == (not window.gap_expr.strip()):
            return ["gold.window: a session window needs one of gap (a duration) or gap_expr (SQL)"]
        return []
    if window.size is None:
        return [f"gold.window.size: a {window.kind} window needs a size, e.g. '10 seconds'"]
    if window.kind == "sliding" and (window.slide is None or window.slide > window.size):
        return ["gold.window.slide: a sliding window needs a slide no longer than its size"]
    return []


def load_dimensions(spark: SparkSession, gold: GoldSettings) -> dict[str, DataFrame]:
    """Each join's dimension, read once at start: a CSV file (text columns, ``on`` present and unique in every
    row) or a Delta table. A missing file or table is a one-line error naming the join."""
    dimensions = {}
    for join in gold.joins:
        key = f"gold.joins.{join.name}"
        if join.csv:
            try:
                dimensions[join.name] = dimension_from_csv(spark, join.csv, join.on, key)
            except EnvironmentProblem as problem:
                raise ConfigError(str(problem)) from None
        elif not DeltaTable.isDeltaTable(spark, join.delta):
            raise ConfigError(f"{key}.delta: no Delta table at {join.delta}")
        else:
            dimensions[join.name] = spark.read.format("delta").load(join.delta)
    return dimensions


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_gold_plan(spark: SparkSession, settings: Settings, dimensions: Mapping[str, DataFrame]) -> None:
    """Build every step over an empty DataFrame of the events' columns, one key at a time, so that an unknown
    column, an invalid expression or a type error stops the job with one line naming its key."""
    gold, source = settings.gold, event_source(settings, spark)
    if "event_time" not in source.columns:
        raise ConfigError("gold.source.table: the table has no event_time column to window on")
    rows = spark.createDataFrame([], _ddl(source.columns))
    events = rows

    def step(key: str, build: Callable[[DataFrame], DataFrame], rows: DataFrame) -> DataFrame:
        try:
            built = build(rows)
            built.schema  # noqa: B018 - analysing the plan is the check
            return built
        except (PySparkException, ValueError) as error:
            raise ConfigError(f"{key}: {_first_line(error)}") from None

    for expectation in gold.expectations:
        check = partial(_where, condition=expectation.rule)
        step(f"gold.expectations.{expectation.name}.rule", check, events)
    for name, expr in gold.columns.items():
        rows = step(f"gold.columns.{name}", partial(with_columns_of, columns={name: expr}), rows)
    rows = step("gold.filter", lambda rows: keep_rows(rows, gold.filter), rows)
    for join in gold.joins:
        dimension = dimensions[join.name]
        missing = [column for column in join.on if column not in rows.columns or column not in dimension.columns]
        if missing:
            raise ConfigError(
                f"gold.joins.{join.name}.on: column {missing[0]!r} is not in both the events and the dimension"
            )
        rows = step(f"gold.joins.{join.name}", partial(join_dimensions, joins=(join,), dimensions=dimensions), rows)
    if gold.sql.strip():
        rows.createOrReplaceTempView(EVENTS_VIEW)
        step("gold.sql", lambda rows: spark.sql(gold.sql), rows)
        return
    if gold.window.gap_expr:
        step("gold.window.gap_expr", partial(_select, columns=[F.expr(gold.window.gap_expr)]), rows)
    step("gold.group_by", partial(_select, columns=list(gold.group_by)), rows)
    for measure in gold.measures:
        step(f"gold.measures.{measure.name}", partial(_aggregate, measure=measure), rows)
    step("gold.window", lambda rows: aggregate_windows(rows, gold), rows)


def _where(rows: DataFrame, condition: str) -> DataFrame:
    return rows.where(F.expr(condition))


def _select(rows: DataFrame, columns: list) -> DataFrame:
    return rows.select(*columns)


def _aggregate(rows: DataFrame, measure: GoldMeasure) -> DataFrame:
    return rows.agg(measure_column(measure))


def _ddl(columns: Mapping[str, str]) -> str:
    return ", ".join(f"`{name}` {sql_type}" for name, sql_type in columns.items())


def configure_gold(settings: Settings) -> tuple[str, Settings]:
    """The job's name and its settings with the source's topic as ``kafka.topic`` (empty for a table source:
    no topic is read); raises ConfigError with the first problem of :func:`gold_problems`."""
    problems = gold_problems(settings)
    if problems:
        raise ConfigError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    source = settings.gold.source
    topic = "" if source.table else source.topic or settings.kafka.topic
    return settings.gold.name, replace(settings, kafka=replace(settings.kafka, topic=topic))


# --- the queries ----------------------------------------------------------------------------------------------


def gold_queries(spark: SparkSession, settings: Settings) -> QueryPlan:
    """The gold job's queries: intake then windows, or for a table source the windows query on that table.
    Checks the config's expressions and tables and the storage, and claims the checkpoints, first."""
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
        new_tables[events_path] = f"{_ddl(source.columns)}, {BATCH_COLUMNS_SCHEMA}"
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
    """How long after its last event a window of ``window`` may end: its size, or a session's gap."""
    span = window.gap if window.kind == "session" else window.size
    if span is None:
        raise ConfigError("gold.window: a duration is missing")
    return span


def late_capture(
    gold: GoldSettings, id_column: str | None, dimensions: Mapping[str, DataFrame], events_path: str
) -> LateCapture:
    """How the gold job ``gold`` keeps its late events in ``<name>_late_events``: the rules of its own windows
    (:mod:`eventlake.pipeline.late_events`). A job of SQL with no id field to de-duplicate on cannot: which
    window its SQL puts a row in is not known."""
    if gold.sql.strip() and id_column is None:
        raise ConfigError(
            "gold.late_events: a job of sql keeps its late events only when its contract has an id field (the "
            "de-duplication decides what is late); its own windows are not known"
        )
    rule = LateRule(
        deduplicated=id_column is not None,
        prepare=partial(_steps_before_windows, gold=gold, dimensions=dimensions),
        with_window=None if gold.sql.strip() else partial(with_window_bounds, window=gold.window),
    )
    return LateCapture(
        table=job_table(gold.name, LATE_EVENTS), rule=rule, events_path=events_path, drop=BATCH_COLUMNS
    )


def late_events_schema(event_columns: Mapping[str, str]) -> str:
    """The DDL of a late events table whose events have ``event_columns`` (an events table's: its batch
    columns are the windows query's own)."""
    columns = {name: sql_type for name, sql_type in event_columns.items() if name not in BATCH_COLUMNS}
    return f"{_ddl(columns)}, {LATE_COLUMNS_SCHEMA}, {BATCH_COLUMNS_SCHEMA}"


def _steps_before_windows(rows: DataFrame, gold: GoldSettings, dimensions: Mapping[str, DataFrame]) -> DataFrame:
    return (
        rows.transform(with_columns_of, gold.columns)
        .transform(keep_rows, gold.filter)
        .transform(join_dimensions, gold.joins, dimensions)
    )


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
    write_intake = partial(
        write_intake_batch, job=job, storage=storage, writer=writer, retry=retry, expectations=gold.expectations,
        write_records=partial(
            write_valid_events, to_events=source.to_events, table=events_table, job=job, storage=storage,
            writer=writer, retry=retry,
        ),
    )

    def start_intake() -> StreamingQuery:
        raw = read_kafka_stream(spark, settings.kafka).transform(with_job_clock)
        parsed = source.parse(raw).transform(check_expectations, gold.expectations).transform(observe_dead_letters)
        return start_batch_stream(parsed, write_intake, query, checkpoint, gold.trigger)

    return start_intake
