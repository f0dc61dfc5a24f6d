"""The checks of a gold job's config: every mistake in one line naming its key, before anything is read."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from eventlake.pipeline.contract import BUILT_IN_CONTRACT, named_contract_problems
from eventlake.pipeline.expectations import EXPECTATION_BATCHES
from eventlake.pipeline.gold.measures import MEASURES, measure_column
from eventlake.pipeline.gold.source import ddl, event_source
from eventlake.pipeline.gold.steps import EVENTS_VIEW, aggregate_windows, join_dimensions, keep_rows, with_columns_of
from eventlake.pipeline.late_events import LATE_EVENTS
from eventlake.pipeline.quiet import HEARTBEATS
from eventlake.runtime.config import ConfigError, GoldMeasure, GoldWindow, Settings, check_trigger
from eventlake.runtime.job_tables import BUILT_IN_JOBS, EVERY_JOB_TABLES, built_in_writer

WINDOW_KINDS = ("tumbling", "sliding", "session")
JOIN_KINDS = ("inner", "left")
# A gold job's own tables besides those of every job: <name>_events and <name>_window_batches.
EVENTS = "events"
WINDOW_BATCHES = "window_batches"

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def own_tables(job: str) -> tuple[str, ...]:
    """The tables a gold job ``job`` keeps besides its output.

    Example::

        own_tables("ysb")  # ('ysb_events', 'ysb_window_batches', 'ysb_late_events', 'ysb_heartbeats', ...)
    """
    own = (EVENTS, WINDOW_BATCHES, LATE_EVENTS, HEARTBEATS, EXPECTATION_BATCHES, *EVERY_JOB_TABLES)
    return tuple(f"{job}_{table}" for table in own)


def gold_problems(settings: Settings) -> list[str]:
    """What is wrong in ``[gold]`` and its contract that needs no Spark: each problem one sentence naming its
    key. Empty when it can run.

    Example::

        for problem in gold_problems(load_settings("conf/gold/ysb.toml", ["gold.window.kind=hopping"])):
            print(problem)  # gold.window.kind: 'hopping' is not one of tumbling, sliding, session
    """
    gold, problems = settings.gold, []
    if not _NAME.fullmatch(gold.name):
        problems.append(f"gold.name: {gold.name!r} must be lower-case letters, digits and '_' (it names the tables)")
    if not _NAME.fullmatch(gold.output):
        problems.append(f"gold.output: {gold.output!r} must be a table name: lower-case letters, digits and '_'")
    elif gold.output in own_tables(gold.name):
        own = ", ".join(own_tables(gold.name))
        problems.append(f"gold.output: {gold.output!r} is one of the job's own tables ({own})")
    elif (writer := built_in_writer(gold.output)) or gold.output == settings.etl.enrich.table:
        problems.append(
            f"gold.output: {gold.output!r} is a table the {writer or 'etl'} job writes; a table has one writer"
        )
    if gold.name in BUILT_IN_JOBS:
        problems.append(
            f"gold.name: {gold.name!r} is the built-in {gold.name} job's: the two would share tables and checkpoints"
        )
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
    else:
        problems.extend(named_contract_problems("gold.source.contract", contract, settings.contracts))
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


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_gold_plan(spark: SparkSession, settings: Settings, dimensions: Mapping[str, DataFrame]) -> None:
    """Build every step over an empty DataFrame of the events' columns, one key at a time, so that an unknown
    column, an invalid expression or a type error stops the job with one line naming its key.

    Example::

        settings = load_settings("conf/gold/ysb.toml", ["gold.filter=no_such_column = 'view'"])
        check_gold_plan(spark, settings, load_dimensions(spark, settings.gold))
        # ConfigError: gold.filter: [UNRESOLVED_COLUMN.WITH_SUGGESTION] ... `no_such_column` cannot be resolved ...
    """
    gold, source = settings.gold, event_source(settings, spark)
    if "event_time" not in source.columns:
        raise ConfigError("gold.source.table: the table has no event_time column to window on")
    rows = spark.createDataFrame([], ddl(source.columns))
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


def configure_gold(settings: Settings) -> tuple[str, Settings]:
    """The job's name and its settings with the source's topic as ``kafka.topic`` (empty for a table source:
    no topic is read); raises ConfigError with the first problem of :func:`gold_problems`.

    Example::

        job, settings = configure_gold(load_settings("conf/gold/ysb.toml"))
        job, settings.kafka.topic  # ('ysb', 'ysb-ad-events')
    """
    problems = gold_problems(settings)
    if problems:
        raise ConfigError.first_of(problems)
    source = settings.gold.source
    topic = "" if source.table else source.topic or settings.kafka.topic
    return settings.gold.name, replace(settings, kafka=replace(settings.kafka, topic=topic))
