"""The ETL's transform stages: plain ``DataFrame -> DataFrame`` functions, registered by name.

``etl.transforms`` in the config chooses and orders them. Each stage works on the rows of
:func:`eventlake.pipeline.contract.parse_events` (valid and invalid together): it adds or rewrites columns, and a
row it cannot handle gets an error code, a message and the stage's name
(:func:`~eventlake.pipeline.contract.mark_invalid`), so it goes to ``dead_letters`` while the others go on.
Rows already invalid pass through untouched.
Stages use Spark expressions only (``try_*`` functions), so no record can make one raise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from eventlake.pipeline.contract import mark_invalid
from eventlake.pipeline.expectations import without_expectation_columns
from eventlake.runtime.config import EtlSettings, spark_interval


class StageErrorCode(StrEnum):
    """Why a transform stage rejected a valid event. Stable: stored in ``dead_letters.error_code``."""

    FIELD_TYPE = "FIELD_TYPE"
    DIMENSION_MISS = "DIMENSION_MISS"


@dataclass(frozen=True)
class StageContext:
    """What stages may use besides the rows: the ETL settings, the dimension table (a DataFrame; for a
    stream, the stream-static join reads its latest version every micro-batch) and the PII salt."""

    etl: EtlSettings
    dimension: DataFrame | None = None
    pii_salt: str = ""


Stage = Callable[[DataFrame, StageContext], DataFrame]
STAGES: dict[str, Stage] = {}


def register_stage(name: str) -> Callable[[Stage], Stage]:
    """Make a stage available to ``etl.transforms`` under ``name``."""

    def register(stage: Stage) -> Stage:
        STAGES[name] = stage
        return stage

    return register


def run_stages(rows: DataFrame, names: Sequence[str], context: StageContext) -> DataFrame:
    """Apply the stages called ``names``, in order."""
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        raise ValueError(f"unknown ETL stage {unknown[0]!r} (known: {', '.join(sorted(STAGES))})")
    for name in names:
        rows = rows.transform(STAGES[name], context)
    return rows


def _is_valid() -> Column:
    return F.col("error_code").isNull()


@register_stage("normalise")
def normalise_events(rows: DataFrame, context: StageContext) -> DataFrame:
    """Trim ids, trim and lower-case the enums (``source``, ``event_type``), and add ``event_date``, the
    event's day in UTC (the session runs in UTC; event times are instants)."""
    return rows.withColumns(
        {
            "event_id": F.trim("event_id"),
            "source": F.lower(F.trim("source")),
            "event_type": F.lower(F.trim("event_type")),
            "event_date": F.to_date(F.col("event_time")),
        }
    )


@register_stage("promote_fields")
def promote_data_fields(rows: DataFrame, context: StageContext) -> DataFrame:
    """Each field of ``etl.promote`` (name -> Spark type) becomes a typed column read from ``data``. A
    field that is there but cannot be read as its type (``"abc"`` as a double) fails with FIELD_TYPE;
    an absent or null field gives NULL. Numbers written as strings (the ``kv`` format) are read. ``data`` is
    the contract's VARIANT: nothing is parsed again."""
    clashing = [name for name in context.etl.promote if name in rows.columns]
    if clashing:
        raise ValueError(f"etl.promote: '{clashing[0]}' is already a column; promote it under another name")
    document = F.col("data")
    values: dict[str, Column] = {}
    checks = []
    for name, spark_type in context.etl.promote.items():
        raw = F.try_variant_get(document, f"$.{name}", "variant")
        typed = F.try_variant_get(document, f"$.{name}", spark_type)
        values[name] = typed
        present = raw.isNotNull() & ~F.is_variant_null(raw)
        checks.append(
            (
                present & typed.isNull(),
                StageErrorCode.FIELD_TYPE,
                F.concat(F.lit(f"data.{name} must be {spark_type}, got "), F.to_json(raw)),
            )
        )
    return mark_invalid(rows.withColumns(values), "promote_fields", checks)


@register_stage("enrich")
def enrich_with_dimension(rows: DataFrame, context: StageContext) -> DataFrame:
    """Left-join the dimension table on ``etl.enrich.key``; ``enriched`` is true on a match, false on a
    miss and NULL when the event has no key. A miss keeps the event (dimension columns NULL) or, with
    ``on_miss = "dead_letter"``, fails it with DIMENSION_MISS."""
    if context.dimension is None:
        raise ValueError("the enrich stage needs the dimension table")
    key = context.etl.enrich.key
    dimension = context.dimension.withColumn("_matched", F.lit(True))
    joined = rows.join(F.broadcast(dimension), on=key, how="left")
    enriched = F.when(F.col(key).isNotNull(), F.coalesce(F.col("_matched"), F.lit(False)))
    joined = joined.withColumn("enriched", enriched).drop("_matched")
    if context.etl.enrich.on_miss != "dead_letter":
        return joined
    miss = (
        ~F.col("enriched"),
        StageErrorCode.DIMENSION_MISS,
        F.concat(F.lit(f"{key} '"), F.col(key), F.lit(f"' is not in {context.etl.enrich.table}")),
    )
    return mark_invalid(joined, "enrich", [miss])


@register_stage("mask_pii")
def mask_pii(rows: DataFrame, context: StageContext) -> DataFrame:
    """Replace each ``etl.pii.hash`` column by the hex SHA-256 of salt + value (NULL stays NULL; equal
    values stay equal, so counts per user still work) and leave out each ``etl.pii.drop`` column."""
    pii = context.etl.pii
    missing = [name for name in (*pii.hash, *pii.drop) if name not in rows.columns]
    if missing:
        raise ValueError(
            f"etl.pii names '{missing[0]}', which is not a column here (columns: {', '.join(rows.columns)})"
        )
    hashed = {
        name: F.when(
            F.col(name).isNotNull(), F.sha2(F.concat(F.lit(context.pii_salt), F.col(name).cast("string")), 256)
        )
        for name in pii.hash
    }
    return rows.withColumns(hashed).drop(*pii.drop)


def with_sql_columns(rows: DataFrame, columns: Mapping[str, str]) -> DataFrame:
    """Add ``etl.columns`` (name -> Spark SQL expression over the rows' columns) to the valid rows; NULL on
    invalid ones, whose columns may hold nothing an expression can read.

    Example::

        rows.transform(with_sql_columns, {"amount_eur": "amount * eur_rate"})
    """
    if not columns:
        return rows
    return rows.withColumns({name: F.when(_is_valid(), F.expr(expr)) for name, expr in columns.items()})


def with_event_date(rows: DataFrame) -> DataFrame:
    """Add ``event_date``, the event's day in UTC that partitions silver, unless a stage (``normalise``) did.

    Example::

        rows.transform(with_event_date).select("event_time", "event_date")
    """
    return rows if "event_date" in rows.columns else rows.withColumn("event_date", F.to_date("event_time"))


# --- bronze and silver rows ---------------------------------------------------------------------------

BRONZE_COLUMNS = (
    "key", "value", "headers", "topic", "partition", "offset", "kafka_timestamp", "timestamp_type",
    "ingested_at", "ingest_date",
)
# Columns of the working rows that silver leaves out: the raw record (kept in bronze), the unpromoted
# data document, and the error columns (always NULL in silver).
_NOT_IN_SILVER = ("key", "value", "headers", "timestampType", "data", "error_code", "error_message", "error_stage")


def to_bronze(raw: DataFrame) -> DataFrame:
    """Kafka rows -> bronze rows: the record as received, when it was ingested, and the ingestion day (UTC)."""
    return raw.select(
        "key",
        "value",
        "headers",
        "topic",
        "partition",
        "offset",
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("timestampType").alias("timestamp_type"),
        F.current_timestamp().alias("ingested_at"),
    ).withColumn("ingest_date", F.to_date("ingested_at"))


# The copy of an event_id that a batch keeps: the earliest event time (a copy sent again carries the same time
# or a later one), then the first in Kafka. Always the same copy, so a batch run again after a crash writes the
# rows a run that never failed would have (dropDuplicates keeps whichever copy its tasks meet first).
_FIRST_COPY_ORDER = ("event_time", "kafka_timestamp", "topic", "partition", "offset")


def silver_columns(rows: DataFrame) -> DataFrame:
    """Valid rows after the stages -> silver's columns: the event columns, promoted and dimension columns, and
    the Kafka coordinates (every valid row: copies of an ``event_id`` included)."""
    valid = rows.where(_is_valid()).transform(without_expectation_columns)
    return valid.withColumnRenamed("timestamp", "kafka_timestamp").drop(*_NOT_IN_SILVER)


def to_silver(rows: DataFrame, id_column: str = "event_id") -> DataFrame:
    """Valid rows after the stages -> silver rows (:func:`silver_columns`), one row per ``id_column``: the copy
    with the earliest event time.

    Example::

        batch.transform(to_silver, "order_id")
    """
    silver = rows.transform(silver_columns)
    if silver.isStreaming:
        return silver
    order = [F.col(name).asc_nulls_last() for name in _FIRST_COPY_ORDER if name in silver.columns]
    copy = F.row_number().over(Window.partitionBy(id_column).orderBy(*order))
    return silver.withColumn("_copy", copy).where(F.col("_copy") == 1).drop("_copy")


# The job's clock, carried past the contract (which drops its own copy) to time the de-duplication state.
DEDUP_TIME_COLUMN = "_dedup_time"


def drop_repeated_events(rows: DataFrame, within: timedelta, id_column: str = "event_id") -> DataFrame:
    """Rows after the stages (valid and invalid), carrying the job's clock in :data:`DEDUP_TIME_COLUMN` -> the
    same rows less the repeated copies of valid events: the first copy of each ``id_column`` stays
    (``dropDuplicatesWithinWatermark``), every invalid record too. In a stream, an id stays in the query's
    state for at least ``within`` of the job's clock after its first copy; a copy arriving later is kept again.

    The watermark is on the job's clock, not on ``event_time``: Spark's de-duplication drops rows behind the
    watermark, which on event time would silently keep late events out of silver. The job's clock only moves
    forward, so no row is ever behind it."""
    # An invalid record is its own key (its coordinates), so none is ever taken for a copy of another.
    key = F.when(_is_valid(), F.concat(F.lit("event:"), F.col(id_column).cast("string"))).otherwise(
        F.concat_ws("/", F.lit("record"), "topic", "partition", "offset")
    )
    keyed = rows.withColumn("_dedup_key", key)
    if not rows.isStreaming:  # a finite set: every copy is within reach (Spark refuses the operator here)
        return keyed.dropDuplicates(["_dedup_key"]).drop("_dedup_key", DEDUP_TIME_COLUMN)
    return (
        keyed.withWatermark(DEDUP_TIME_COLUMN, spark_interval(within))
        .dropDuplicatesWithinWatermark(["_dedup_key"])
        .drop("_dedup_key", DEDUP_TIME_COLUMN)
    )
