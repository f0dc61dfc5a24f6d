"""The event contract: extract raw Kafka records into documents, then validate them, with Spark expressions.

Two stages, each a plain ``DataFrame -> DataFrame`` function:

* **extract** reads the bytes. A record's format comes from its ``content-type`` header (see
  :data:`EXTRACTOR_MEDIA_TYPES`), or is the default format when the header is absent. The ``json``
  extractor reads one JSON object; the ``kv`` extractor reads ``key=value`` pairs separated by ``;``
  (``data.<name>`` keys fill the ``data`` object). Both produce the same document, a VARIANT.
* **contract** checks the document against its ``schema_version``. Version 1 is the lesson's
  StreamingEvent; version 2 renames ``type`` to ``event_type`` and adds the optional ``session_id``.
  Both come out as the same typed columns (:data:`EVENT_COLUMNS`).

JSON types are checked as the document has them (through Spark's VARIANT type): ``from_json`` would
quietly turn a number into a string, and a cast would read "12345" as a year.

Each way a record can be invalid has a stable code in :class:`ErrorCode`; the first failing check wins,
in the order the codes are listed, and ``error_stage`` names the stage that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from eventlake.config import ContractSettings


class ErrorCode(StrEnum):
    """Why a record is invalid. Stable: stored in ``dead_letters.error_code`` and documented in the README."""

    EMPTY_VALUE = "EMPTY_VALUE"
    TOO_LARGE = "TOO_LARGE"
    INVALID_UTF8 = "INVALID_UTF8"
    UNKNOWN_FORMAT = "UNKNOWN_FORMAT"
    NOT_JSON = "NOT_JSON"
    UNREADABLE_JSON = "UNREADABLE_JSON"
    NOT_OBJECT = "NOT_OBJECT"
    NOT_KEY_VALUE = "NOT_KEY_VALUE"
    MISSING_FIELD = "MISSING_FIELD"
    WRONG_TYPE = "WRONG_TYPE"
    EMPTY_FIELD = "EMPTY_FIELD"
    UNKNOWN_SCHEMA_VERSION = "UNKNOWN_SCHEMA_VERSION"
    BAD_TIMESTAMP = "BAD_TIMESTAMP"
    EVENT_TIME_TOO_EARLY = "EVENT_TIME_TOO_EARLY"
    EVENT_TIME_IN_FUTURE = "EVENT_TIME_IN_FUTURE"


EXTRACT_STAGE = "extract"
CONTRACT_STAGE = "contract"


@dataclass(frozen=True)
class ContractVersion:
    """What one schema version has beyond the fields every version requires (``schema_version``,
    ``event_id``, ``timestamp``, ``source``): the field that holds the event type, and optional
    top-level strings."""

    event_type_field: str
    optional_strings: tuple[str, ...] = ()


CONTRACT_VERSIONS: dict[str, ContractVersion] = {
    "1": ContractVersion(event_type_field="type"),
    "2": ContractVersion(event_type_field="event_type", optional_strings=("session_id",)),
}

REQUIRED_STRING_FIELDS = ("event_id", "timestamp", "source", "schema_version", "type")  # version 1

# ISO-8601 with a mandatory offset; Spark keeps microseconds, so at most six fractional digits.
# \z, not $: Java's $ also matches before a final line break.
ISO_8601_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})\z"

EVENT_COLUMNS = (
    "event_id", "event_time", "source", "schema_version", "event_type", "user_id", "session_id", "data"
)
KAFKA_COLUMNS = ("topic", "partition", "offset", "kafka_timestamp")
ERROR_COLUMNS = ("error_code", "error_message", "error_stage")

CONTENT_TYPE_HEADER = "content-type"
# The media type in a record's content-type header that selects each extractor.
EXTRACTOR_MEDIA_TYPES = {"json": "application/json", "kv": "text/x-key-value"}
KV_PAIR_SEPARATOR = ";"
_PRIVATE = ("_text", "_format", "_doc")

Check = tuple[Column, ErrorCode, Column]


# --- marking rows invalid -----------------------------------------------------------------------------


def _first_failure(checks: Sequence[Check]) -> tuple[Column, Column]:
    """Fold ordered (condition, code, message) checks into the code and message of the first that holds."""
    code, message = F.lit(None).cast("string"), F.lit(None).cast("string")
    for condition, error_code, error_message in reversed(checks):
        code = F.when(condition, F.lit(error_code.value)).otherwise(code)
        message = F.when(condition, error_message).otherwise(message)
    return code, message


def with_error_columns(rows: DataFrame) -> DataFrame:
    """Add empty ``error_code``, ``error_message`` and ``error_stage`` columns: every row starts valid."""
    return rows.withColumns({name: F.lit(None).cast("string") for name in ERROR_COLUMNS})


def mark_invalid(rows: DataFrame, stage: str, checks: Sequence[Check]) -> DataFrame:
    """Give each row that is still valid the code and message of the first check it fails, and ``stage``.
    Rows already invalid keep the error of the stage that caught them first."""
    code, message = _first_failure(checks)
    still_valid = F.col("error_code").isNull()
    return rows.withColumns(
        {
            "error_code": F.when(still_valid, code).otherwise(F.col("error_code")),
            "error_message": F.when(still_valid, message).otherwise(F.col("error_message")),
            "error_stage": F.when(still_valid & code.isNotNull(), F.lit(stage)).otherwise(F.col("error_stage")),
        }
    )


# --- extract: bytes -> document ------------------------------------------------------------------------


def _header(name: str) -> Column:
    """The text of the first Kafka header called ``name``, NULL when there is none."""
    matching = F.filter(F.coalesce(F.col("headers"), F.array()), lambda header: header["key"] == name)
    return F.when(F.size(matching) > 0, matching.getItem(0)["value"].cast("string"))


def start_extract(raw: DataFrame, contract: ContractSettings, extractors: Sequence[str], default_format: str) -> DataFrame:
    """Kafka rows -> the same rows with their text, their format and the checks every format shares
    (empty, too large, not UTF-8, a format no configured extractor reads)."""
    media_type = F.lower(F.trim(F.split(_header(CONTENT_TYPE_HEADER), ";").getItem(0)))
    format_name = F.lit(None).cast("string")
    for name in extractors:
        format_name = F.when(media_type == EXTRACTOR_MEDIA_TYPES[name], F.lit(name)).otherwise(format_name)
    if "headers" in raw.columns:
        format_name = F.when(media_type.isNull(), F.lit(default_format)).otherwise(format_name)
    else:
        format_name = F.lit(default_format)
    rows = raw.withColumns(
        {"_text": F.col("value").cast("string"), "_format": format_name, "_doc": F.lit(None).cast("variant")}
    ).transform(with_error_columns)
    size = F.octet_length("value")
    known = ", ".join(EXTRACTOR_MEDIA_TYPES[name] for name in extractors)
    header = _header(CONTENT_TYPE_HEADER) if "headers" in raw.columns else F.lit(None).cast("string")
    return mark_invalid(
        rows,
        EXTRACT_STAGE,
        [
            (F.col("value").isNull() | (size == 0), ErrorCode.EMPTY_VALUE, F.lit("the record has no value")),
            (
                size > contract.max_record_bytes,
                ErrorCode.TOO_LARGE,
                F.format_string(f"the record is %d bytes, above the limit of {contract.max_record_bytes}", size),
            ),
            (~F.is_valid_utf8("_text"), ErrorCode.INVALID_UTF8, F.lit("the record is not valid UTF-8")),
            (
                F.col("_format").isNull(),
                ErrorCode.UNKNOWN_FORMAT,
                F.concat(
                    F.lit(f"{CONTENT_TYPE_HEADER} '"), header, F.lit(f"' is not one of {known}")
                ),
            ),
        ],
    )


def _json_field(path: str) -> Column:
    """The VARIANT at ``path`` of the parsed document, SQL NULL when the path is absent."""
    return F.expr(f"variant_get(_doc, '$.{path}')")


def _json_kind(value: Column) -> Column:
    """STRING, OBJECT or OTHER: all the checks need to know of a VARIANT's JSON type, read from the first
    character of its JSON text, which is much cheaper than :func:`_json_type` on every row."""
    first = F.substring(F.to_json(value), 1, 1)
    return F.when(first == '"', F.lit("STRING")).when(first == "{", F.lit("OBJECT")).otherwise(F.lit("OTHER"))


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


def _extract_with(
    rows: DataFrame, name: str, document: Callable[[Column], Column], checks: Callable[[Column, Column], list[Check]]
) -> DataFrame:
    """Set ``_doc`` to ``document(text)`` for the rows in format ``name`` and mark those that fail
    ``checks(text, _doc)``. ``text`` is NULL on every other row: Spark may evaluate an extractor's
    expressions on every row, and on NULL they cost nothing."""
    rows = rows.withColumn("_mine", F.when((F.col("_format") == name) & F.col("error_code").isNull(), F.col("_text")))
    # A valid row always has text (an empty value is EMPTY_VALUE), so a row is this extractor's when _mine is set.
    mine = F.col("_mine").isNotNull()
    rows = rows.withColumn("_doc", F.when(mine, document(F.col("_mine"))).otherwise(F.col("_doc")))
    checked = [(mine & condition, code, message) for condition, code, message in checks(F.col("_mine"), F.col("_doc"))]
    return mark_invalid(rows, EXTRACT_STAGE, checked).drop("_mine")


def extract_json(rows: DataFrame) -> DataFrame:
    """The ``json`` extractor: one JSON object per record."""

    def checks(text: Column, doc: Column) -> list[Check]:
        return [
            (
                (doc.isNull() & F.get_json_object(text, "$").isNull()) | ~_is_one_json_value(text),
                ErrorCode.NOT_JSON,
                F.lit("the record is not one JSON value (malformed, cut off, nested too deep, or followed by more data)"),
            ),
            (
                doc.isNull(),
                ErrorCode.UNREADABLE_JSON,
                F.lit("the record is JSON that cannot be read as one document (duplicate keys, or single quotes or raw control characters)"),
            ),
            (
                # The text is one JSON value (checked above): an object when its first visible character is {.
                ~text.rlike(r"^[ \t\n\r]*\{"),
                ErrorCode.NOT_OBJECT,
                F.concat(F.lit("the record must be a JSON object, got "), _json_type(doc)),
            ),
        ]

    return _extract_with(rows, "json", F.try_parse_json, checks)


# Top-level keys a key=value record may carry; "data.<name>" keys go into the data object.
_KV_FIELDS = ("event_id", "timestamp", "source", "schema_version", "type", "event_type", "session_id")


def extract_key_value(rows: DataFrame) -> DataFrame:
    """The ``kv`` extractor: ``key=value`` pairs separated by ``;`` (spaces around keys and values are
    trimmed, an empty pair is ignored), for example
    ``event_id=e-1; timestamp=2026-01-31T12:00:00Z; source=web; schema_version=1; type=click; data.user_id=u-1``.
    Every value is a string."""

    def document(text: Column) -> Column:
        pairs = F.filter(F.transform(F.split(text, KV_PAIR_SEPARATOR), lambda pair: F.trim(pair)), lambda pair: pair != "")
        keys = F.transform(pairs, lambda pair: F.trim(F.substring_index(pair, "=", 1)))
        entries = F.transform(
            pairs,
            lambda pair: F.struct(
                F.trim(F.substring_index(pair, "=", 1)).alias("key"),
                F.trim(F.substring(pair, F.instr(pair, "=") + 1, 1 << 30)).alias("value"),
            ),
        )
        well_formed = (
            (F.size(pairs) > 0)
            & F.forall(pairs, lambda pair: F.instr(pair, "=") > 1)
            & F.forall(keys, lambda key: key != "")
            & (F.size(F.array_distinct(keys)) == F.size(keys))
        )
        pairs_map = F.map_from_entries(entries)
        data = F.transform_keys(
            F.map_filter(pairs_map, lambda key, _value: key.startswith("data.")),
            lambda key, _value: F.substring(key, 6, 1 << 30),
        )
        fields = F.struct(
            *(F.try_element_at(pairs_map, F.lit(name)).alias(name) for name in _KV_FIELDS),
            F.when(F.size(data) > 0, data).alias("data"),
        )
        return F.when(well_formed, F.parse_json(F.to_json(fields)))

    def checks(_text: Column, doc: Column) -> list[Check]:
        return [
            (
                doc.isNull(),
                ErrorCode.NOT_KEY_VALUE,
                F.lit("the record is not key=value pairs separated by ';' (a pair without '=', an empty key, or a key twice)"),
            )
        ]

    return _extract_with(rows, "kv", document, checks)


EXTRACTORS: dict[str, Callable[[DataFrame], DataFrame]] = {"json": extract_json, "kv": extract_key_value}


# --- contract: document -> typed event -----------------------------------------------------------------


def _is_absent(value: Column) -> Column:
    return value.isNull() | F.is_variant_null(value)


def _by_version(version: Column, pick: Callable[[ContractVersion], Column]) -> Column:
    """The column ``pick(layout)`` of the record's schema version (NULL for versions the code does not know)."""
    column = F.lit(None)
    for name, layout in CONTRACT_VERSIONS.items():
        column = F.when(version == name, pick(layout)).otherwise(column)
    return column


# The document's fields, read once into columns so that the checks stay small expressions: for each,
# "_v_<name>" (the VARIANT, SQL NULL when absent), "_t_<name>" (its kind, see _json_kind) and "_s_<name>" (its text).
_FIELDS = ("schema_version", "event_id", "timestamp", "source", "event_type", "data", "user_id", "session_id")
_STRING_FIELDS = tuple(name for name in _FIELDS if name != "data")


def _read_fields(rows: DataFrame) -> DataFrame:
    version = F.try_variant_get(_json_field("schema_version"), "$", "string")
    variants = {
        "schema_version": _json_field("schema_version"),
        "event_id": _json_field("event_id"),
        "timestamp": _json_field("timestamp"),
        "source": _json_field("source"),
        "event_type": _by_version(version, lambda layout: _json_field(layout.event_type_field)),
        "data": _json_field("data"),
        "user_id": _json_field("data.user_id"),
        "session_id": _by_version(
            version, lambda layout: _json_field("session_id") if "session_id" in layout.optional_strings else F.lit(None)
        ),
    }
    rows = rows.withColumns({f"_v_{name}": value for name, value in variants.items()}).withColumn(
        "_type_field", _by_version(version, lambda layout: F.lit(layout.event_type_field))
    )
    return rows.withColumns(
        {
            **{
                f"_t_{name}": F.when(~_is_absent(F.col(f"_v_{name}")), _json_kind(F.col(f"_v_{name}")))
                for name in _FIELDS
            },
            # Text only of the string fields: reading a deeply nested object as text would recurse.
            **{f"_s_{name}": F.try_variant_get(F.col(f"_v_{name}"), "$", "string") for name in _STRING_FIELDS},
        }
    )


def _field_label(name: str) -> Column:
    return F.col("_type_field") if name == "event_type" else F.lit("data.user_id" if name == "user_id" else name)


def _missing(name: str) -> Check:
    return (
        F.col(f"_t_{name}").isNull(),
        ErrorCode.MISSING_FIELD,
        F.concat(F.lit("required field '"), _field_label(name), F.lit("' is missing or null")),
    )


def _wrong_type(name: str, expected: str = "STRING") -> Check:
    article = "an object" if expected == "OBJECT" else "a string"
    return (
        F.col(f"_t_{name}") != expected,
        ErrorCode.WRONG_TYPE,
        F.concat(F.lit("field '"), _field_label(name), F.lit(f"' must be {article}, got "), _json_type(F.col(f"_v_{name}"))),
    )


def _blank(name: str) -> Check:
    # Blank means no visible character at all: tabs, line breaks and Unicode spaces count as blank.
    return (
        ~F.col(f"_s_{name}").rlike(r"(?U)\S"),
        ErrorCode.EMPTY_FIELD,
        F.concat(F.lit("field '"), _field_label(name), F.lit("' is empty")),
    )


def validate_contract(rows: DataFrame, contract: ContractSettings) -> DataFrame:
    """Extracted rows -> the same rows with the typed event columns (:data:`EVENT_COLUMNS`), and rows that
    break the contract marked invalid. ``schema_version`` is checked first: the other fields depend on it."""
    accepted = list(contract.schema_versions)
    max_ahead_seconds = contract.max_event_time_ahead.total_seconds()
    rows = rows.transform(_read_fields)
    timestamp = F.col("_s_timestamp")
    rows = rows.withColumn(
        "_event_time", F.when(timestamp.rlike(ISO_8601_WITH_OFFSET), F.try_to_timestamp(timestamp))
    )
    event_time = F.col("_event_time")
    required = ("event_id", "timestamp", "source", "event_type")
    checks: list[Check] = [
        _missing("schema_version"),
        _wrong_type("schema_version"),
        _blank("schema_version"),
        (
            ~F.col("_s_schema_version").isin(accepted),
            ErrorCode.UNKNOWN_SCHEMA_VERSION,
            F.concat(F.lit("schema_version '"), F.col("_s_schema_version"), F.lit(f"' is not one of {', '.join(accepted)}")),
        ),
        *(_missing(name) for name in required),
        *(_wrong_type(name) for name in required),
        _wrong_type("data", "OBJECT"),
        _wrong_type("user_id"),
        _wrong_type("session_id"),
        *(_blank(name) for name in required if name != "timestamp"),
        (
            event_time.isNull(),
            ErrorCode.BAD_TIMESTAMP,
            F.concat(
                F.lit("timestamp '"),
                timestamp,
                F.lit("' is not an ISO-8601 time with a UTC offset (like 2026-01-31T12:00:00Z)"),
            ),
        ),
        (
            event_time < F.lit(contract.min_event_time).cast("timestamp"),
            ErrorCode.EVENT_TIME_TOO_EARLY,
            F.concat(F.lit("timestamp '"), timestamp, F.lit(f"' is before {contract.min_event_time}")),
        ),
        (
            event_time > F.col("timestamp") + F.make_dt_interval(secs=F.lit(max_ahead_seconds)),
            ErrorCode.EVENT_TIME_IN_FUTURE,
            F.concat(
                F.lit("timestamp '"),
                timestamp,
                F.lit(f"' is more than {max_ahead_seconds:g} seconds after the record's Kafka timestamp "),
                F.date_format("timestamp", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"),
            ),
        ),
    ]
    checked = mark_invalid(rows, CONTRACT_STAGE, checks)
    is_valid = F.col("error_code").isNull()
    # Only valid rows keep their event columns: an invalid one may hold times Python cannot represent.
    events = {
        "event_id": F.col("_s_event_id"),
        "event_time": event_time,
        "source": F.col("_s_source"),
        "schema_version": F.col("_s_schema_version"),
        "event_type": F.col("_s_event_type"),
        "user_id": F.col("_s_user_id"),
        "session_id": F.col("_s_session_id"),
        "data": F.to_json(F.col("_v_data")),
    }
    checked = checked.withColumns({name: F.when(is_valid, value) for name, value in events.items()})
    private = [f"_{kind}_{name}" for kind in "vt" for name in _FIELDS] + [f"_s_{name}" for name in _STRING_FIELDS]
    return checked.drop(*private, "_type_field", "_event_time")


def parse_events(raw: DataFrame, contract: ContractSettings) -> DataFrame:
    """Kafka rows (key, value, topic, partition, offset, timestamp, headers...) -> the same rows with the
    typed event columns (:data:`EVENT_COLUMNS`) and ``error_code``/``error_message``/``error_stage``
    (NULL when the record is valid). ``contract.extractors`` name the formats read, in :data:`EXTRACTORS`.

    Never raises for bad input: every record comes out either valid or with an error code.
    """
    extractors, default_format = contract.extractors, contract.default_format
    unknown = [name for name in extractors if name not in EXTRACTORS]
    if unknown:
        raise ValueError(f"unknown extractor {unknown[0]!r} (known: {', '.join(EXTRACTORS)})")
    if default_format not in extractors:
        raise ValueError(f"the default format {default_format!r} must be one of the extractors {', '.join(extractors)}")
    rows = raw.transform(start_extract, contract, extractors, default_format)
    for name in extractors:
        rows = rows.transform(EXTRACTORS[name])
    return rows.transform(validate_contract, contract).drop(*_PRIVATE)


def valid_events(parsed: DataFrame) -> DataFrame:
    """Valid rows of :func:`parse_events`, as events with their Kafka coordinates."""
    return parsed.where(F.col("error_code").isNull()).select(
        *EVENT_COLUMNS, "topic", "partition", "offset", F.col("timestamp").alias("kafka_timestamp")
    )


def invalid_records(parsed: DataFrame) -> DataFrame:
    """Invalid rows of :func:`parse_events`, raw record and error kept."""
    return parsed.where(F.col("error_code").isNotNull())
