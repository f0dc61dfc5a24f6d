"""The event contract, version 1: parse and validate raw Kafka records with Spark expressions.

A record is a UTF-8 JSON object with the string fields ``event_id``, ``timestamp`` (ISO-8601 with a UTC
offset), ``source``, ``schema_version`` and ``type``, and an optional object ``data`` whose string
``user_id`` names the user. JSON types are checked as the JSON has them (through Spark's VARIANT type):
``from_json`` would quietly turn a number into a string, and a cast would read "12345" as a year.

Each way a record can be invalid has a stable code in :class:`ErrorCode`; the first failing check wins,
in the order the codes are listed.
"""

from __future__ import annotations

from enum import StrEnum

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from eventlake.config import ContractSettings


class ErrorCode(StrEnum):
    """Why a record is invalid. Stable: stored in ``dead_letters.error_code`` and documented in the README."""

    EMPTY_VALUE = "EMPTY_VALUE"
    TOO_LARGE = "TOO_LARGE"
    INVALID_UTF8 = "INVALID_UTF8"
    NOT_JSON = "NOT_JSON"
    UNREADABLE_JSON = "UNREADABLE_JSON"
    NOT_OBJECT = "NOT_OBJECT"
    MISSING_FIELD = "MISSING_FIELD"
    WRONG_TYPE = "WRONG_TYPE"
    EMPTY_FIELD = "EMPTY_FIELD"
    UNKNOWN_SCHEMA_VERSION = "UNKNOWN_SCHEMA_VERSION"
    BAD_TIMESTAMP = "BAD_TIMESTAMP"
    EVENT_TIME_TOO_EARLY = "EVENT_TIME_TOO_EARLY"
    EVENT_TIME_IN_FUTURE = "EVENT_TIME_IN_FUTURE"


REQUIRED_STRING_FIELDS = ("event_id", "timestamp", "source", "schema_version", "type")
NON_EMPTY_FIELDS = ("event_id", "source", "schema_version", "type")

# ISO-8601 with a mandatory offset; Spark keeps microseconds, so at most six fractional digits.
# \z, not $: Java's $ also matches before a final line break.
ISO_8601_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})\z"

EVENT_COLUMNS = ("event_id", "event_time", "source", "schema_version", "event_type", "user_id", "data")
KAFKA_COLUMNS = ("topic", "partition", "offset", "kafka_timestamp")


def _json_field(path: str) -> Column:
    """The VARIANT at ``path`` of the parsed document, SQL NULL when the path is absent."""
    return F.expr(f"variant_get(_doc, '$.{path}')")


def _json_type(value: Column) -> Column:
    """The JSON type name of a VARIANT: STRING, BIGINT, DOUBLE, BOOLEAN, OBJECT, ARRAY, VOID (null)..."""
    return F.split(F.schema_of_variant(value), "<").getItem(0)


def _is_one_json_value(text: Column) -> Column:
    """True when ``text`` is exactly one JSON value. Spark's JSON readers stop after the first value and
    ignore what follows (``{...}{...}``, ``{...} words``), so wrap the text in an array with a sentinel:
    one value gives two elements, and the first array must be one element on its own too."""
    one = F.json_array_length(F.concat(F.lit("["), text, F.lit("\n]"))) == 1
    two = F.json_array_length(F.concat(F.lit("["), text, F.lit("\n,0]"))) == 2
    return F.coalesce(one & two, F.lit(False))


def _is_absent(value: Column) -> Column:
    return value.isNull() | F.is_variant_null(value)


def _first_failure(checks: list[tuple[Column, ErrorCode, Column]]) -> tuple[Column, Column]:
    """Fold ordered (condition, code, message) checks into the code and message of the first that holds."""
    code, message = F.lit(None).cast("string"), F.lit(None).cast("string")
    for condition, error_code, error_message in reversed(checks):
        code = F.when(condition, F.lit(error_code.value)).otherwise(code)
        message = F.when(condition, error_message).otherwise(message)
    return code, message


def _field_checks() -> list[tuple[Column, ErrorCode, Column]]:
    missing = [
        (_is_absent(_json_field(name)), ErrorCode.MISSING_FIELD, F.lit(f"required field '{name}' is missing or null"))
        for name in REQUIRED_STRING_FIELDS
    ]
    data, user_id = _json_field("data"), _json_field("data.user_id")
    wrong_type = [
        (
            _json_type(_json_field(name)) != "STRING",
            ErrorCode.WRONG_TYPE,
            F.concat(F.lit(f"field '{name}' must be a string, got "), _json_type(_json_field(name))),
        )
        for name in REQUIRED_STRING_FIELDS
    ]
    wrong_type += [
        (
            ~_is_absent(data) & (_json_type(data) != "OBJECT"),
            ErrorCode.WRONG_TYPE,
            F.concat(F.lit("field 'data' must be an object, got "), _json_type(data)),
        ),
        (
            ~_is_absent(user_id) & (_json_type(user_id) != "STRING"),
            ErrorCode.WRONG_TYPE,
            F.concat(F.lit("field 'data.user_id' must be a string, got "), _json_type(user_id)),
        ),
    ]
    # Blank means no visible character at all: tabs, line breaks and Unicode spaces count as blank.
    empty = [
        (~F.col(f"_{name}").rlike(r"(?U)\S"), ErrorCode.EMPTY_FIELD, F.lit(f"field '{name}' is empty"))
        for name in NON_EMPTY_FIELDS
    ]
    return missing + wrong_type + empty


def parse_events(raw: DataFrame, contract: ContractSettings) -> DataFrame:
    """Kafka rows (key, value, topic, partition, offset, timestamp, ...) -> the same rows with the typed
    event columns (``EVENT_COLUMNS``) and ``error_code``/``error_message`` (NULL when the record is valid).

    Never raises for bad input: every record comes out either valid or with an error code.
    """
    versions = list(contract.schema_versions)
    max_ahead_seconds = contract.max_event_time_ahead.total_seconds()
    text = F.col("value").cast("string")
    with_doc = raw.withColumn("_doc", F.try_parse_json(text)).withColumns(
        {f"_{name}": F.expr(f"try_variant_get(_doc, '$.{name}', 'string')") for name in REQUIRED_STRING_FIELDS}
    )
    event_time = F.when(
        F.col("_timestamp").rlike(ISO_8601_WITH_OFFSET), F.try_to_timestamp(F.col("_timestamp"))
    )
    size = F.octet_length("value")
    checks = [
        (F.col("value").isNull() | (size == 0), ErrorCode.EMPTY_VALUE, F.lit("the record has no value")),
        (
            size > contract.max_record_bytes,
            ErrorCode.TOO_LARGE,
            F.format_string(f"the record is %d bytes, above the limit of {contract.max_record_bytes}", size),
        ),
        (~F.is_valid_utf8(text), ErrorCode.INVALID_UTF8, F.lit("the record is not valid UTF-8")),
        (
            (F.col("_doc").isNull() & F.get_json_object(text, "$").isNull()) | ~_is_one_json_value(text),
            ErrorCode.NOT_JSON,
            F.lit("the record is not one JSON value (malformed, cut off, nested too deep, or followed by more data)"),
        ),
        (
            F.col("_doc").isNull(),
            ErrorCode.UNREADABLE_JSON,
            F.lit("the record is JSON that cannot be read as one document (duplicate keys, or single quotes or raw control characters)"),
        ),
        (
            _json_type(F.col("_doc")) != "OBJECT",
            ErrorCode.NOT_OBJECT,
            F.concat(F.lit("the record must be a JSON object, got "), _json_type(F.col("_doc"))),
        ),
        *_field_checks(),
        (
            ~F.col("_schema_version").isin(versions),
            ErrorCode.UNKNOWN_SCHEMA_VERSION,
            F.concat(F.lit("schema_version '"), F.col("_schema_version"), F.lit(f"' is not one of {', '.join(versions)}")),
        ),
        (
            event_time.isNull(),
            ErrorCode.BAD_TIMESTAMP,
            F.concat(
                F.lit("timestamp '"),
                F.col("_timestamp"),
                F.lit("' is not an ISO-8601 time with a UTC offset (like 2026-01-31T12:00:00Z)"),
            ),
        ),
        (
            event_time < F.lit(contract.min_event_time).cast("timestamp"),
            ErrorCode.EVENT_TIME_TOO_EARLY,
            F.concat(F.lit("timestamp '"), F.col("_timestamp"), F.lit(f"' is before {contract.min_event_time}")),
        ),
        (
            event_time > F.col("timestamp") + F.make_dt_interval(secs=F.lit(max_ahead_seconds)),
            ErrorCode.EVENT_TIME_IN_FUTURE,
            F.concat(
                F.lit("timestamp '"),
                F.col("_timestamp"),
                F.lit(f"' is more than {max_ahead_seconds:g} seconds after the record's Kafka timestamp "),
                F.date_format("timestamp", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"),
            ),
        ),
    ]
    error_code, error_message = _first_failure(checks)
    parsed = with_doc.withColumns(
        {
            "error_code": error_code,
            "error_message": error_message,
            "event_id": F.col("_event_id"),
            # Only valid rows keep an event time: an invalid one may lie outside what Python can represent.
            "event_time": F.when(error_code.isNull(), event_time),
            "source": F.col("_source"),
            "schema_version": F.col("_schema_version"),
            "event_type": F.col("_type"),
            "user_id": F.expr("try_variant_get(_doc, '$.data.user_id', 'string')"),
            "data": F.to_json(_json_field("data")),
        }
    )
    return parsed.drop("_doc", *(f"_{name}" for name in REQUIRED_STRING_FIELDS))


def valid_events(parsed: DataFrame) -> DataFrame:
    """Valid rows of :func:`parse_events`, as events with their Kafka coordinates."""
    return parsed.where(F.col("error_code").isNull()).select(
        *EVENT_COLUMNS, "topic", "partition", "offset", F.col("timestamp").alias("kafka_timestamp")
    )


def invalid_records(parsed: DataFrame) -> DataFrame:
    """Invalid rows of :func:`parse_events`, raw record and error kept."""
    return parsed.where(F.col("error_code").isNotNull())
