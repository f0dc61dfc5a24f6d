"""What a gold job reads: its events (a topic through a contract, or a Delta table) and its dimensions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from eventlake.pipeline.contract import (
    BUILT_IN_CONTRACT,
    declared_columns,
    parse_declared,
    parse_events,
    valid_declared_events,
    valid_events,
)
from eventlake.pipeline.dimensions import dimension_from_csv
from eventlake.runtime.config import ConfigError, GoldSettings, Settings
from eventlake.runtime.errors import EnvironmentProblem

# The built-in contract's event columns and their types (eventlake.pipeline.contract.EVENT_COLUMNS).
BUILT_IN_COLUMNS = {
    "event_id": "string", "event_time": "timestamp", "source": "string", "schema_version": "string",
    "event_type": "string", "user_id": "string", "session_id": "string", "data": "variant",
}
KAFKA_COLUMNS = {"topic": "string", "partition": "int", "offset": "long", "kafka_timestamp": "timestamp"}


@dataclass(frozen=True)
class EventSource:
    """How a gold job reads its topic: ``parse`` (Kafka rows -> rows with the event columns and the error
    columns), ``to_events`` (parsed rows -> valid events with their Kafka coordinates), the events' ``columns``
    (name -> SQL type) and the ``id_column`` that de-duplicates (None: none does).

    Example::

        source = event_source(settings, spark)
        events = raw.transform(source.parse).transform(source.to_events)
    """

    parse: Callable[[DataFrame], DataFrame]
    to_events: Callable[[DataFrame], DataFrame]
    columns: Mapping[str, str]
    id_column: str | None


def event_source(settings: Settings, spark: SparkSession | None = None) -> EventSource:
    """The source of ``settings.gold``: the built-in contract (``events``) or a declared one on its topic, or a
    Delta table (its columns read with ``spark``; de-duplicated on ``event_id`` when it has one).

    Example::

        source = event_source(load_settings("conf/gold/user_sessions.toml"))  # a topic: no Spark needed
        source.id_column  # 'event_id'
    """
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


def ddl(columns: Mapping[str, str]) -> str:
    """The DDL of ``columns`` (name -> SQL type), each name quoted.

    Example::

        ddl({"event_id": "string", "offset": "long"})  # '`event_id` string, `offset` long'
    """
    return ", ".join(f"`{name}` {sql_type}" for name, sql_type in columns.items())


def load_dimensions(spark: SparkSession, gold: GoldSettings) -> dict[str, DataFrame]:
    """Each join's dimension, read once at start: a CSV file (text columns, ``on`` present and unique in every
    row) or a Delta table. A missing file or table is a one-line error naming the join.

    Example::

        dimensions = load_dimensions(spark, load_settings("conf/gold/ysb.toml").gold)
        dimensions["campaigns"].columns  # ['ad_id', 'campaign_id']
    """
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
