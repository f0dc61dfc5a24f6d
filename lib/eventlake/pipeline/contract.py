"""The event contract: extract raw Kafka records into documents, then validate them, with Spark expressions.

Two stages, each a plain ``DataFrame -> DataFrame`` function with one error column of its own:

* **extract** reads the bytes. A record's format comes from its ``content-type`` header (see
  :data:`EXTRACTOR_MEDIA_TYPES`), or is the default format when the header is absent. The ``json``
  extractor reads one JSON object; the ``kv`` extractor reads ``key=value`` pairs separated by ``;``
  (``data.<name>`` keys fill the ``data`` object). Both produce the same fields (:data:`DOCUMENT_FIELDS`),
  each a VARIANT that keeps the JSON type it was written with.
* **contract** checks those fields against the record's ``schema_version``. Version 1 is the
  StreamingEvent of the design; version 2 renames ``type`` to ``event_type`` and adds the optional
  ``session_id``. Both come out as the same typed columns (:data:`EVENT_COLUMNS`).

A valid JSON record is parsed once: ``try_parse_json`` of the text wrapped in an array (so that data after
the object shows as a second element), then one cast of that VARIANT to a struct of VARIANT fields reads
every field in one pass. ``from_json`` with the same struct would parse about 20% faster, but it silently
keeps the last of two equal keys and accepts single quotes and NaN, which the contract rejects.
Only records that fail the fast path are parsed again, to tell why.

JSON types are checked as the document has them: ``from_json`` into string fields would quietly turn a
number into a string, and a cast would read "12345" as a year.

Each way a record can be invalid has a stable code in :class:`ErrorCode`; the first failing check wins,
in the order the codes are listed, and ``error_stage`` names the stage that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from eventlake.runtime.config import ContractSettings


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
    EVENT_TIME_AHEAD_OF_JOB_CLOCK = "EVENT_TIME_AHEAD_OF_JOB_CLOCK"


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

# The top-level fields any version reads; "data.<name>" keys of a key=value record go into data.
DOCUMENT_FIELDS = ("schema_version", "event_id", "timestamp", "source", "type", "event_type", "session_id", "data")
DOCUMENT_TYPE = "struct<" + ", ".join(f"{name}: variant" for name in DOCUMENT_FIELDS) + ">"

# ISO-8601 with a mandatory offset; Spark keeps microseconds, so at most six fractional digits.
# \z, not $: Java's $ also matches before a final line break.
ISO_8601_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})\z"

EVENT_COLUMNS = (
    "event_id", "event_time", "source", "schema_version", "event_type", "user_id", "session_id", "data"
)
KAFKA_COLUMNS = ("topic", "partition", "offset", "kafka_timestamp")
ERROR_COLUMNS = ("error_code", "error_message", "error_stage")

CONTENT_TYPE_HEADER = "content-type"
# Whose clock a record's Kafka timestamp is, by the Kafka source's timestampType column.
KAFKA_TIMESTAMP_CLOCKS = {0: "CreateTime: the producer's clock", 1: "LogAppendTime: the broker's clock"}
JOB_TIME_COLUMN = "_job_time"  # set by :func:`with_job_clock`
RECORDS_READ = "records_read"  # observed by :func:`with_job_clock`, in progress.observedMetrics
# The media type in a record's content-type header that selects each extractor.
EXTRACTOR_MEDIA_TYPES = {"json": "application/json", "kv": "text/x-key-value"}
KV_PAIR_SEPARATOR = ";"

# (fails, error code, message): the code is the contract's ErrorCode or a later stage's own StrEnum.
Check = tuple[Column, StrEnum, Column]
_ERROR_TYPE = "struct<code: string, message: string>"


# --- marking rows invalid -----------------------------------------------------------------------------


def _error(code: ErrorCode | str, message: Column) -> Column:
    return F.struct(F.lit(str(code)).alias("code"), message.alias("message"))


def first_failure(checks: Sequence[Check]) -> Column:
    """One CASE over ordered (condition, code, message) checks: the code and message of the first check
    that holds, as a struct, or NULL when none does. A message is only built for the row it describes."""
    if not checks:
        return F.lit(None).cast(_ERROR_TYPE)
    (condition, code, message), *rest = checks
    chain = F.when(condition, _error(code, message))
    for condition, code, message in rest:
        chain = chain.when(condition, _error(code, message))
    return chain


def with_error_columns(rows: DataFrame) -> DataFrame:
    """Add empty ``error_code``, ``error_message`` and ``error_stage`` columns: every row starts valid."""
    return rows.withColumns({name: F.lit(None).cast("string") for name in ERROR_COLUMNS})


def with_stage_error(rows: DataFrame, stage: str, error: Column) -> DataFrame:
    """Give each row that is still valid the code and message of ``error`` (a struct from
    :func:`first_failure`, NULL when the row passes) and ``stage``. Rows already invalid keep the
    error of the stage that caught them first."""
    rows = rows.withColumn("_stage_error", F.when(F.col("error_code").isNull(), error))
    failed = F.col("_stage_error").isNotNull()
    return rows.withColumns(
        {
            "error_code": F.coalesce("error_code", "_stage_error.code"),
            "error_message": F.coalesce("error_message", "_stage_error.message"),
            "error_stage": F.when(failed, F.lit(stage)).otherwise(F.col("error_stage")),
        }
    ).drop("_stage_error")


def mark_invalid(rows: DataFrame, stage: str, checks: Sequence[Check]) -> DataFrame:
    """:func:`with_stage_error` with the first of ``checks`` that fails."""
    return with_stage_error(rows, stage, first_failure(checks))


# --- extract: bytes -> document fields ------------------------------------------------------------------


def header_text(name: str) -> Column:
    """The text of the first Kafka header called ``name``, NULL when there is none (no lambda: the
    position lookup compiles to plain code)."""
    position = F.array_position(F.col("headers.key"), F.lit(name))
    return F.get(F.col("headers.value"), position - 1).cast("string")


@dataclass(frozen=True)
class Extractor:
    """How one format becomes the document's fields. ``read(rows, text, name)`` adds the column ``name``: a
    struct of :data:`DOCUMENT_FIELDS` (VARIANTs, SQL NULL when absent), or NULL when the text cannot be
    read; ``failure(text)`` is the error (see :func:`first_failure`) of such a text, built only for those
    rows. ``text`` is NULL on rows of other formats, where both cost nothing."""

    read: Callable[[DataFrame, Column, str], DataFrame]
    failure: Callable[[Column], Column]


def _is_one_json_value(text: Column) -> Column:
    """True when ``text`` is exactly one JSON value. Spark's JSON readers stop after the first value and
    ignore what follows (``{...}{...}``, ``{...} words``), so wrap the text in an array with a sentinel:
    one value gives two elements, and the first array must be one element on its own too."""
    one = F.json_array_length(F.concat(F.lit("["), text, F.lit("\n]"))) == 1
    two = F.json_array_length(F.concat(F.lit("["), text, F.lit("\n,0]"))) == 2
    return F.coalesce(one & two, F.lit(False))


def _json_type(value: Column) -> Column:
    """The JSON type name of a VARIANT: STRING, BIGINT, DOUBLE, BOOLEAN, OBJECT, ARRAY, VOID (null)..."""
    return F.split(F.schema_of_variant(value), "<").getItem(0)


def _read_json(rows: DataFrame, text: Column, name: str) -> DataFrame:
    # One strict parse of the text wrapped in an array: data after the object becomes a second element
    # (or breaks the parse), and the cast reads every field of the one object in a single pass. The
    # elements get a column of their own, so that the two uses below do not parse twice.
    wrapped = F.try_parse_json(F.concat(F.lit("["), text, F.lit("\n]")))
    elements = f"{name}_elements"
    rows = rows.withColumn(elements, F.try_variant_get(wrapped, "$", f"array<{DOCUMENT_TYPE}>"))
    return rows.withColumn(name, F.when(F.size(elements) == 1, F.get(elements, 0))).drop(elements)


def _json_failure(text: Column) -> Column:
    # The checks of the text the fast path refused, in order; the first two parse it again.
    document = F.try_parse_json(text)
    return first_failure(
        [
            (
                (document.isNull() & F.get_json_object(text, "$").isNull()) | ~_is_one_json_value(text),
                ErrorCode.NOT_JSON,
                F.lit(
                    "the record is not one JSON value (malformed, cut off, nested too deep, or followed by more data)"
                ),
            ),
            (
                document.isNull(),
                ErrorCode.UNREADABLE_JSON,
                F.lit(
                    "the record is JSON that cannot be read as one document"
                    " (duplicate keys, or single quotes or raw control characters)"
                ),
            ),
            (
                F.lit(True),
                ErrorCode.NOT_OBJECT,
                F.concat(F.lit("the record must be a JSON object, got "), _json_type(document)),
            ),
        ]
    )


JSON_EXTRACTOR = Extractor(read=_read_json, failure=_json_failure)


def _read_key_value(rows: DataFrame, text: Column, name: str) -> DataFrame:
    # The pairs get a column of their own: every field reads them, and an expression of lambdas written
    # into each field would be planned (and run) once per field.
    pairs = f"{name}_pairs"
    rows = rows.withColumn(pairs, key_value_map(text))
    return rows.withColumn(name, _key_value_fields(F.col(pairs))).drop(pairs)


def key_value_map(text: Column) -> Column:
    """The pairs of a ``key=value;...`` record as a map of trimmed keys to trimmed values, NULL when the text
    is not such pairs: a pair without '=', an empty key, a key twice, or no pair at all."""
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
    # Built only when well formed: map_from_entries fails on a key twice.
    return F.when(well_formed, F.map_from_entries(entries))


def _key_value_fields(pairs_map: Column) -> Column:
    data = F.transform_keys(
        F.map_filter(pairs_map, lambda key, _value: key.startswith("data.")),
        lambda key, _value: F.substring(key, 6, 1 << 30),
    )
    fields = F.struct(
        *(F.try_element_at(pairs_map, F.lit(name)).cast("variant").alias(name) for name in DOCUMENT_FIELDS[:-1]),
        F.when(F.size(data) > 0, F.to_variant_object(data)).alias("data"),
    )
    return F.when(pairs_map.isNotNull(), fields)


def _kv_failure(_text: Column) -> Column:
    return _error(
        ErrorCode.NOT_KEY_VALUE,
        F.lit("the record is not key=value pairs separated by ';' (a pair without '=', an empty key, or a key twice)"),
    )


KEY_VALUE_EXTRACTOR = Extractor(read=_read_key_value, failure=_kv_failure)

EXTRACTORS: dict[str, Extractor] = {"json": JSON_EXTRACTOR, "kv": KEY_VALUE_EXTRACTOR}


def _format_of(raw: DataFrame, extractors: Sequence[str], default_format: str) -> Column:
    """The extractor of each record, from its content-type header; NULL for a media type none reads."""
    if "headers" not in raw.columns:
        return F.lit(default_format)
    media_type = F.lower(F.trim(F.split(header_text(CONTENT_TYPE_HEADER), ";").getItem(0)))
    format_name = F.when(media_type.isNull(), F.lit(default_format))
    for name in extractors:
        format_name = format_name.when(media_type == EXTRACTOR_MEDIA_TYPES[name], F.lit(name))
    return format_name


def extract(raw: DataFrame, contract: ContractSettings) -> DataFrame:
    """Kafka rows -> the same rows with the document's fields (``_fields``, NULL when unreadable) and the
    error of the extract stage: empty, too large, not UTF-8, a format no configured extractor reads, or
    text its format's extractor cannot read."""
    extractors = contract.extractors
    rows = raw.withColumns(
        {"_text": F.col("value").cast("string"), "_format": _format_of(raw, extractors, contract.default_format)}
    )
    rows = rows.withColumn("_common_error", _common_failure(raw, contract))
    readable = F.col("_common_error").isNull()
    # Each extractor sees the text of its own format's rows only, NULL elsewhere.
    texts = {name: F.when(readable & (F.col("_format") == name), F.col("_text")) for name in extractors}
    for name in extractors:
        rows = EXTRACTORS[name].read(rows, texts[name], f"_fields_{name}")
    rows = rows.withColumn("_fields", F.coalesce(*(F.col(f"_fields_{name}") for name in extractors)))
    rows = rows.drop(*(f"_fields_{name}" for name in extractors))
    return rows.transform(with_error_columns).transform(
        with_stage_error,
        EXTRACT_STAGE,
        F.coalesce(F.col("_common_error"), _unreadable_failure(extractors, texts, readable)),
    )


def _common_failure(raw: DataFrame, contract: ContractSettings) -> Column:
    """The error (see :func:`first_failure`) of the checks every record passes before an extractor reads it:
    it has a value, within the size limit, in UTF-8 (``_text``), of a format a configured extractor reads
    (``_format``)."""
    size = F.octet_length("value")
    known = ", ".join(EXTRACTOR_MEDIA_TYPES[name] for name in contract.extractors)
    header = header_text(CONTENT_TYPE_HEADER) if "headers" in raw.columns else F.lit(None).cast("string")
    return first_failure(
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
                F.concat(F.lit(f"{CONTENT_TYPE_HEADER} '"), header, F.lit(f"' is not one of {known}")),
            ),
        ]
    )


def _unreadable_failure(extractors: Sequence[str], texts: dict[str, Column], readable: Column) -> Column:
    """The error of a record that passed the common checks (``readable``) but that its format's extractor
    could not read (``_fields`` NULL): that extractor's failure, built for those rows only."""
    unreadable = F.col("_fields").isNull()
    failures = [(unreadable & (F.col("_format") == name), EXTRACTORS[name].failure(texts[name])) for name in extractors]
    failure = F.when(readable & failures[0][0], failures[0][1])
    for condition, error in failures[1:]:
        failure = failure.when(readable & condition, error)
    return failure


# --- contract: document fields -> typed event -------------------------------------------------------------


def _by_version(version: Column, pick: Callable[[ContractVersion], Column]) -> Column:
    """The column ``pick(layout)`` of the record's schema version (NULL for versions the code does not know)."""
    column = F.lit(None)
    for name, layout in CONTRACT_VERSIONS.items():
        column = F.when(version == name, pick(layout)).otherwise(column)
    return column


def _present(value: Column) -> Column:
    return value.isNotNull() & ~F.is_variant_null(value)


def _read_fields(rows: DataFrame) -> DataFrame:
    """The fields the checks need, each read once: ``_v_<name>`` (the VARIANT, NULL when absent or JSON
    null), ``_k_<name>`` (its JSON type, from the value's type header: cheap for a scalar) and ``_s_<name>``
    (its text, when it is a string). ``data`` is read as a struct of its ``user_id`` (NULL when ``data`` is
    not an object), so one cast both checks the object and finds the user."""
    field = lambda name: F.col(f"_fields.{name}")  # noqa: E731
    rows = rows.withColumn(
        "_version",
        F.when(F.schema_of_variant(field("schema_version")) == "STRING", field("schema_version").cast("string")),
    )
    version = F.col("_version")
    variants = {
        "schema_version": field("schema_version"),
        "event_id": field("event_id"),
        "timestamp": field("timestamp"),
        "source": field("source"),
        "event_type": _by_version(version, lambda layout: field(layout.event_type_field)),
        "session_id": _by_version(
            version, lambda layout: field("session_id") if "session_id" in layout.optional_strings else F.lit(None)
        ),
        "data": field("data"),
    }
    rows = rows.withColumns({f"_v_{name}": F.when(_present(value), value) for name, value in variants.items()})
    rows = rows.withColumns(
        {
            "_type_field": _by_version(version, lambda layout: F.lit(layout.event_type_field)),
            "_data": F.try_variant_get(F.col("_v_data"), "$", "struct<user_id: variant>"),
        }
    ).withColumn("_v_user_id", F.when(_present(F.col("_data.user_id")), F.col("_data.user_id")))
    strings = ("schema_version", "event_id", "timestamp", "source", "event_type", "session_id", "user_id")
    rows = rows.withColumns({f"_k_{name}": F.schema_of_variant(F.col(f"_v_{name}")) for name in strings})
    return rows.withColumns(
        {
            f"_s_{name}": F.when(F.col(f"_k_{name}") == "STRING", F.col(f"_v_{name}").cast("string"))
            for name in strings
        }
    )


def _field_label(name: str) -> Column:
    return F.col("_type_field") if name == "event_type" else F.lit("data.user_id" if name == "user_id" else name)


def _missing(name: str) -> Check:
    return (
        F.col(f"_v_{name}").isNull(),
        ErrorCode.MISSING_FIELD,
        F.concat(F.lit("required field '"), _field_label(name), F.lit("' is missing or null")),
    )


def _not_a_string(name: str) -> Check:
    return (
        F.col(f"_k_{name}") != "STRING",
        ErrorCode.WRONG_TYPE,
        F.concat(
            F.lit("field '"), _field_label(name), F.lit("' must be a string, got "), _json_type(F.col(f"_v_{name}"))
        ),
    )


def _blank(name: str) -> Check:
    # Blank means no visible character at all: tabs, line breaks and Unicode spaces count as blank.
    return (
        ~F.col(f"_s_{name}").rlike(r"(?U)\S"),
        ErrorCode.EMPTY_FIELD,
        F.concat(F.lit("field '"), _field_label(name), F.lit("' is empty")),
    )


def _data_not_an_object() -> Check:
    # ``_data`` is NULL when the cast of ``data`` to a struct failed: it is there, but not an object.
    return (
        F.col("_v_data").isNotNull() & F.col("_data").isNull(),
        ErrorCode.WRONG_TYPE,
        F.concat(F.lit("field 'data' must be an object, got "), _json_type(F.col("_v_data"))),
    )


def _contract_checks(contract: ContractSettings, kafka_clock: Column, job_time: Column) -> list[Check]:
    """The contract's checks in the order they are reported: schema_version first (it decides the other
    fields), then missing fields, wrong JSON types, blank fields, and the event time (``kafka_clock`` and
    ``job_time``: see :func:`_kafka_clock` and :func:`_job_time`)."""
    required = ("event_id", "timestamp", "source", "event_type")
    return [
        *_schema_version_checks(contract.schema_versions),
        *(_missing(name) for name in required),
        *(_not_a_string(name) for name in required),
        _data_not_an_object(),
        _not_a_string("user_id"),
        _not_a_string("session_id"),
        # A blank timestamp is no ISO-8601 time: BAD_TIMESTAMP below reports it (docs/contract.md).
        *(_blank(name) for name in required if name != "timestamp"),
        *_event_time_checks(contract, kafka_clock, job_time),
    ]


def _schema_version_checks(accepted: Sequence[str]) -> list[Check]:
    """schema_version is there, a non-blank string, and one of the ``accepted`` versions."""
    return [
        _missing("schema_version"),
        _not_a_string("schema_version"),
        _blank("schema_version"),
        (
            ~F.col("_s_schema_version").isin(list(accepted)),
            ErrorCode.UNKNOWN_SCHEMA_VERSION,
            F.concat(
                F.lit("schema_version '"), F.col("_s_schema_version"), F.lit(f"' is not one of {', '.join(accepted)}")
            ),
        ),
    ]


def _kafka_clock(rows: DataFrame) -> Column:
    """Whose clock each record's Kafka timestamp is (:data:`KAFKA_TIMESTAMP_CLOCKS`), for the messages."""
    clock = F.lit("timestamp type unknown")
    if "timestampType" in rows.columns:
        for code, name in KAFKA_TIMESTAMP_CLOCKS.items():
            clock = F.when(F.col("timestampType") == code, F.lit(name)).otherwise(clock)
    return clock


def _iso_time(column: Column | str) -> Column:
    return F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")


def with_job_clock(raw: DataFrame) -> DataFrame:
    """Kafka rows -> the same rows with the job's clock in ``_job_time``, for :func:`parse_events` to read.

    In a micro-batch, ``current_timestamp()`` becomes the batch's time as a literal written into the
    generated Java code. Inside the contract's code (one class of about 200,000 characters) that made
    every micro-batch compile it anew, twice, and run it cold. Computed here, below an observation that
    Spark's code generation does not cross, only this small step changes from batch to batch: the
    contract's class is compiled once per job and stays warm. The observation counts the records read.
    """
    return raw.withColumn(JOB_TIME_COLUMN, F.current_timestamp()).observe(
        RECORDS_READ, F.count(F.lit(1)).alias("rows")
    )


def _job_time(rows: DataFrame) -> Column:
    """The job's clock: the column :func:`with_job_clock` added, or ``current_timestamp()`` without it."""
    return F.col(JOB_TIME_COLUMN) if JOB_TIME_COLUMN in rows.columns else F.current_timestamp()


def _event_time_checks(contract: ContractSettings, kafka_clock: Column, job_time: Column) -> list[Check]:
    """The timestamp reads as an ISO-8601 time with an offset (``_event_time`` not NULL), not before the
    contract's earliest time, not too far after the record's Kafka timestamp, and not too far after the
    job's clock: a producer sets the Kafka timestamp itself unless the topic uses LogAppendTime, so a
    skewed or forged producer clock passes the first bound but not the second."""
    max_ahead_seconds = contract.max_event_time_ahead.total_seconds()
    max_ahead_of_job_seconds = contract.max_event_time_ahead_of_job.total_seconds()
    timestamp, event_time = F.col("_s_timestamp"), F.col("_event_time")
    # job_time is current_timestamp() (see _job_time), not a Python clock or a UDF: in a streaming micro-batch
    # Spark replaces it with the batch's timestamp, which it writes to the offset log with the batch's offsets
    # before the batch runs, and reads back when it runs that batch again after a crash
    # (MicroBatchExecution.constructNextBatch, runBatch, populateStartOffsets). So a batch run again sorts
    # every record as its first run did, which exactly-once into Delta depends on. (In a batch query it is
    # the time the query started.)
    return [
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
                _iso_time("timestamp"),
                F.lit(" ("),
                kafka_clock,
                F.lit(")"),
            ),
        ),
        (
            event_time > job_time + F.make_dt_interval(secs=F.lit(max_ahead_of_job_seconds)),
            ErrorCode.EVENT_TIME_AHEAD_OF_JOB_CLOCK,
            F.concat(
                F.lit("timestamp '"),
                timestamp,
                F.lit(f"' is more than {max_ahead_of_job_seconds:g} seconds after the job's clock "),
                _iso_time(job_time),
                F.lit(" (the micro-batch's time)"),
            ),
        ),
    ]


def validate_contract(rows: DataFrame, contract: ContractSettings) -> DataFrame:
    """Extracted rows -> the same rows with the typed event columns (:data:`EVENT_COLUMNS`), and rows that
    break the contract marked invalid. ``schema_version`` is checked first: the other fields depend on it."""
    timestamp = F.col("_s_timestamp")
    rows = rows.transform(_read_fields).withColumn(
        "_event_time", F.when(timestamp.rlike(ISO_8601_WITH_OFFSET), F.try_to_timestamp(timestamp))
    )
    checks = _contract_checks(contract, _kafka_clock(rows), _job_time(rows))
    checked = rows.transform(with_stage_error, CONTRACT_STAGE, first_failure(checks))
    is_valid = F.col("error_code").isNull()
    # Only valid rows keep their event columns: an invalid one may hold times Python cannot represent.
    events = {
        "event_id": F.col("_s_event_id"),
        "event_time": F.col("_event_time"),
        "source": F.col("_s_source"),
        "schema_version": F.col("_s_schema_version"),
        "event_type": F.col("_s_event_type"),
        "user_id": F.col("_s_user_id"),
        "session_id": F.col("_s_session_id"),
        "data": F.col("_v_data"),
    }
    checked = checked.withColumns({name: F.when(is_valid, value) for name, value in events.items()})
    private = [column for column in checked.columns if column.startswith(("_v_", "_k_", "_s_"))]
    return checked.drop(*private, "_version", "_type_field", "_event_time", "_data")


def parse_events(raw: DataFrame, contract: ContractSettings) -> DataFrame:
    """Kafka rows (key, value, topic, partition, offset, timestamp, headers...) -> the same rows with the
    typed event columns (:data:`EVENT_COLUMNS`; ``data`` a VARIANT) and ``error_code``/``error_message``/
    ``error_stage`` (NULL when the record is valid). ``contract.extractors`` name the formats read, in
    :data:`EXTRACTORS`.

    Never raises for bad input: every record comes out either valid or with an error code. In a streaming
    query, apply :func:`with_job_clock` to the Kafka rows first (the jobs do), so the contract's code is
    generated once, not in every micro-batch.
    """
    unknown = [name for name in contract.extractors if name not in EXTRACTORS]
    if unknown:
        raise ValueError(f"unknown extractor {unknown[0]!r} (known: {', '.join(EXTRACTORS)})")
    if contract.default_format not in contract.extractors:
        raise ValueError(
            f"the default format {contract.default_format!r} must be one of the extractors"
            f" {', '.join(contract.extractors)}"
        )
    extracted = raw.transform(extract, contract)
    private = ("_text", "_format", "_common_error", "_fields", JOB_TIME_COLUMN)
    return extracted.transform(validate_contract, contract).drop(*private)


def valid_events(parsed: DataFrame) -> DataFrame:
    """Valid rows of :func:`parse_events`, as events with their Kafka coordinates."""
    return parsed.where(F.col("error_code").isNull()).select(
        *EVENT_COLUMNS, "topic", "partition", "offset", F.col("timestamp").alias("kafka_timestamp")
    )


def invalid_records(parsed: DataFrame) -> DataFrame:
    """Invalid rows of :func:`parse_events`, raw record and error kept."""
    return parsed.where(F.col("error_code").isNotNull())
