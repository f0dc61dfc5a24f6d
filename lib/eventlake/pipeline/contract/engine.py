"""The contract engine: Kafka rows read with a :class:`~eventlake.runtime.config.DeclaredContract`, into typed
event columns and, for each record that breaks the contract, its error code, message and stage.

Two stages, each marking the rows it refuses (:mod:`~eventlake.pipeline.contract.errors`):

* **extract** checks the value (empty, too large, not UTF-8, of a format the contract does not read) and
  reads it once in its format (:mod:`~eventlake.pipeline.contract.formats`): the contract's ``format``, or with
  ``formats`` the one its ``content-type`` header names. Only records that fail are looked at again, to tell
  why.
* **contract** checks, first failure wins: the version field (when declared), missing required fields,
  wrong types, blank required strings, then the event time (readable in its form, not before
  ``min_event_time``, not too far after the record's Kafka timestamp or the job's clock). Messages name each
  field as the record names it (after the version's renames).

JSON values keep the type they were written with: "12" is no long, and nothing is coerced. In the text
formats (``kv``, ``csv``) every value is text, so a long is any text that casts to one.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from eventlake.pipeline.contract.clock import JOB_TIME_COLUMN, job_time, kafka_clock
from eventlake.pipeline.contract.declaration import (
    TIME_FORM_WORDS,
    DeclaredField,
    accepted_versions,
    contract_problems,
    declared_columns,
    declared_fields,
    layout_versions,
    reading_formats,
    spark_type,
    type_words,
)
from eventlake.pipeline.contract.errors import (
    CONTRACT_STAGE,
    EXTRACT_STAGE,
    Check,
    ErrorCode,
    first_failure,
    mark_invalid,
    with_error_columns,
    with_stage_error,
)
from eventlake.pipeline.contract.expressions import (
    BLANK,
    INTEGER_KINDS,
    header_text,
    is_number,
    is_object,
    iso_time,
    iso_timestamp,
    json_type,
    present,
)
from eventlake.pipeline.contract.formats import FORMATS
from eventlake.runtime.config import DeclaredContract

CONTENT_TYPE_HEADER = "content-type"
# Epochs are read as decimals, and only within Spark's years 1970-9999: no value can overflow.
_EPOCH_DECIMAL = "decimal(38,6)"
_MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z

# Private columns, dropped at the end.
_PREFIX = "_dc_"
_TEXT, _FORMAT, _COMMON_ERROR = (f"{_PREFIX}{name}" for name in ("text", "format", "common_error"))
_VERSION_VALUE, _VERSION, _EVENT_TIME = (f"{_PREFIX}{name}" for name in ("version_value", "version", "event_time"))


def _document(format_name: str) -> str:
    return f"{_PREFIX}doc_{format_name}"  # the record read in that format, NULL on other rows or unreadable


def _found(index: int) -> str:
    return f"{_PREFIX}f{index}"  # the VARIANT at the field's path, as the format read it


def _value(index: int) -> str:
    return f"{_PREFIX}v{index}"  # the field as read, a VARIANT: NULL when absent, JSON null or a blank non-string


def _kind(index: int) -> str:
    return f"{_PREFIX}k{index}"  # schema_of_variant of the value (JSON formats only)


def _typed(index: int) -> str:
    return f"{_PREFIX}t{index}"  # the value in its declared type, NULL when absent or of another type


class _Reading:
    """What the expressions of one contract depend on: its formats, and whether a row's values are texts
    (``textual``: True, False, or a Column when JSON and text formats are both read)."""

    def __init__(self, contract: DeclaredContract) -> None:
        self.contract = contract
        self.formats = reading_formats(contract)
        self.fields = declared_fields(contract)
        self.versions = layout_versions(contract)
        kinds = {FORMATS[name].textual for name in self.formats}
        text_formats = [name for name in self.formats if FORMATS[name].textual]
        self.reads_json = False in kinds
        self.textual: bool | Column = (
            kinds == {True} if len(kinds) == 1 else F.col(_FORMAT).isin(text_formats)
        )

    def by_format(self, text: Column, json: Column) -> Column:
        """``text`` on rows of a text format, ``json`` on the others."""
        if isinstance(self.textual, bool):
            return text if self.textual else json
        return F.when(self.textual, text).otherwise(json)

    def value_at(self, path: str) -> Column:
        """The VARIANT at ``path`` in the row's document, whichever format read it."""
        values = [FORMATS[name].value_at(F.col(_document(name)), path, self.contract) for name in self.formats]
        return values[0] if len(values) == 1 else F.coalesce(*values)


# --- extract: bytes -> the record's document ----------------------------------------------------------------


def _format_of(raw: DataFrame, contract: DeclaredContract) -> Column:
    """The format of each record, from its content-type header; NULL for a media type the contract does not read."""
    if "headers" not in raw.columns:
        return F.lit(contract.format)
    media_type = F.lower(F.trim(F.split(header_text(CONTENT_TYPE_HEADER), ";").getItem(0)))
    format_name = F.when(media_type.isNull(), F.lit(contract.format))
    for name in contract.formats:
        format_name = format_name.when(media_type == FORMATS[name].media_type, F.lit(name))
    return format_name


def _common_failure(raw: DataFrame, contract: DeclaredContract) -> Column:
    """The checks before any format reads a record: a value, within the size limit, in UTF-8, and (with
    ``formats``) of a format the contract reads."""
    size = F.octet_length("value")
    limit = contract.max_record_bytes
    checks: list[Check] = [
        (F.col("value").isNull() | (size == 0), ErrorCode.EMPTY_VALUE, F.lit("the record has no value")),
        (
            size > limit,
            ErrorCode.TOO_LARGE,
            F.format_string(f"the record is %d bytes, above the limit of {limit}", size),
        ),
        (~F.is_valid_utf8(_TEXT), ErrorCode.INVALID_UTF8, F.lit("the record is not valid UTF-8")),
    ]
    if contract.formats:
        known = ", ".join(FORMATS[name].media_type for name in contract.formats)
        header = header_text(CONTENT_TYPE_HEADER) if "headers" in raw.columns else F.lit(None).cast("string")
        message = F.concat(F.lit(f"{CONTENT_TYPE_HEADER} '"), header, F.lit(f"' is not one of {known}"))
        checks.append((F.col(_FORMAT).isNull(), ErrorCode.UNKNOWN_FORMAT, message))
    return first_failure(checks)


def _paths_read(contract: DeclaredContract, fields: list[DeclaredField]) -> dict[str, bool]:
    """Every path the contract reads, and whether an object is read there."""
    paths = dict.fromkeys([contract.version_field] if contract.version_field else [], False)
    for field in fields:
        for path in field.paths.values():
            paths[path] = paths.get(path, False) or field.type == "object"
    return paths


def _extract(raw: DataFrame, reading: _Reading) -> DataFrame:
    """Kafka rows -> the same rows with the record read in its format (one document column per format) and
    the extract stage's error."""
    contract = reading.contract
    rows = raw.withColumn(_TEXT, F.col("value").cast("string"))
    if contract.formats:
        rows = rows.withColumn(_FORMAT, _format_of(raw, contract))
    rows = rows.withColumn(_COMMON_ERROR, _common_failure(raw, contract))
    readable = F.col(_COMMON_ERROR).isNull()
    paths = _paths_read(contract, reading.fields)
    unreadable: Column | None = None
    for name in reading.formats:
        # Each format reads (and builds a failure for) only the rows of its own format that passed the checks.
        mine = readable & (F.col(_FORMAT) == name) if len(reading.formats) > 1 else readable
        text = F.when(mine, F.col(_TEXT))
        rows = FORMATS[name].read(rows, text, _document(name), contract, paths)
        failed = text.isNotNull() & F.col(_document(name)).isNull()
        failure = FORMATS[name].failure(text, contract)
        unreadable = F.when(failed, failure) if unreadable is None else unreadable.when(failed, failure)
    assert unreadable is not None  # a contract reads at least one format
    return rows.transform(with_error_columns).transform(
        with_stage_error, EXTRACT_STAGE, F.coalesce(F.col(_COMMON_ERROR), unreadable)
    )


# --- contract: the document's values -> typed event -----------------------------------------------------------


def _by_version(field: DeclaredField, all_versions: tuple[str, ...], pick: Callable[[str], Column]) -> Column:
    """``pick(path)`` of the path the record's version holds the field at; NULL in versions without it."""
    versions_of: dict[str, list[str]] = {}
    for version, path in field.paths.items():
        versions_of.setdefault(path, []).append(version)
    if len(versions_of) == 1 and len(field.paths) == len(all_versions):
        return pick(next(iter(versions_of)))
    (path, versions), *rest = versions_of.items()
    column = F.when(F.col(_VERSION).isin(versions), pick(path))
    for path, versions in rest:
        column = column.when(F.col(_VERSION).isin(versions), pick(path))
    return column


def _json_typed(type_name: str, value: Column, kind: Column) -> Column:
    """A JSON value (VARIANT) in its declared type, NULL when the JSON type does not fit."""
    if type_name == "string":
        return F.when(kind == "STRING", value.cast("string"))
    if type_name == "long":
        is_integer = kind.isin(*INTEGER_KINDS) | kind.rlike(r"^DECIMAL\(\d+,0\)$")
        return F.when(is_integer, F.try_variant_get(value, "$", "bigint"))
    if type_name == "boolean":
        return F.when(kind == "BOOLEAN", value.cast("boolean"))
    if type_name == "timestamp":
        return iso_timestamp(F.when(kind == "STRING", value.cast("string")))
    if type_name == "object":
        return F.when(is_object(value), value)
    if type_name == "variant":
        return value
    # double or decimal(p,s): any number, as long as it fits
    return F.when(is_number(kind), F.try_variant_get(value, "$", spark_type(type_name)))


def _text_typed(type_name: str, value: Column) -> Column:
    """A value of a text format (a VARIANT string, or an object of keys) in its declared type, NULL when it
    does not read as one. Numbers and booleans are Spark's casts of the trimmed text: "1e3" is a double,
    "yes" a boolean, "1.0" no long; objects and variants are JSON texts."""
    text = value.cast("string")
    if type_name == "string":
        return text
    if type_name == "timestamp":
        return iso_timestamp(F.trim(text))
    if type_name in ("object", "variant"):
        document = F.try_parse_json(text)
        parsed = F.when(is_object(document), document) if type_name == "object" else document
        return F.when(is_object(value), value).otherwise(parsed)
    return F.trim(text).try_cast(spark_type(type_name))


def _has_kind(field: DeclaredField, contract: DeclaredContract) -> bool:
    """Whether the JSON type of the field is read up front: for scalars, from the value's type header.
    An object's would walk the whole object: it is only read for the message of a wrong one."""
    return field.type not in ("object", "variant") or field.name == contract.event_time.field


def _read_values(rows: DataFrame, reading: _Reading) -> DataFrame:
    """The version (``_dc_version``), then per field its value (``_dc_v<i>``), its JSON type (``_dc_k<i>``)
    and its typed value (``_dc_t<i>``), each read once."""
    contract = reading.contract
    if contract.version_field:
        value = reading.value_at(contract.version_field)
        rows = rows.withColumn(_VERSION_VALUE, F.when(present(value), value))
        version = F.col(_VERSION_VALUE)
        rows = rows.withColumn(_VERSION, F.when(F.schema_of_variant(version) == "STRING", version.cast("string")))
    # Each value is read into a column of its own first: the cleaning below uses it three times, and an
    # expression written into each use would be planned (and run) once per use.
    found = {
        _found(index): _by_version(field, reading.versions, reading.value_at)
        for index, field in enumerate(reading.fields)
    }
    rows = rows.withColumns(found)
    values = {}
    for index, field in enumerate(reading.fields):
        value = F.col(_found(index))
        # In a text format a blank value of a non-string type is no value at all.
        written = F.when(value.cast("string").rlike(BLANK), value) if field.type != "string" else value
        values[_value(index)] = F.when(present(value), reading.by_format(written, value))
    rows = rows.withColumns(values)
    if reading.reads_json:
        kinds = {
            _kind(index): F.schema_of_variant(_value(index))
            for index, field in enumerate(reading.fields)
            if _has_kind(field, contract)
        }
        rows = rows.withColumns(kinds)
    typed = {
        _typed(index): reading.by_format(
            _text_typed(field.type, F.col(_value(index))),
            _json_typed(field.type, F.col(_value(index)), F.col(_kind(index))),
        )
        for index, field in enumerate(reading.fields)
    }
    return rows.withColumns(typed)


def _event_time(reading: _Reading, index: int) -> Column:
    """The event time read from the event-time field's value in its form; NULL when it cannot be."""
    spec = reading.contract.event_time
    value = F.col(_value(index))
    text = reading.by_format(F.trim(value.cast("string")), value.cast("string"))
    if spec.form == "iso8601":
        return iso_timestamp(text)
    if spec.form == "pattern":
        parsed = F.try_to_timestamp(text, F.lit(spec.pattern))
        # try_to_timestamp reads the text in the session's time zone: move that wall-clock time to the declared one.
        return F.to_utc_timestamp(F.from_utc_timestamp(parsed, F.current_timezone()), spec.time_zone)
    millis = spec.form == "epoch_millis"
    digits = r"^\d+\z" if millis else r"^\d+(\.\d+)?\z"
    number = F.when(text.rlike(digits), text.try_cast(_EPOCH_DECIMAL))
    if reading.reads_json:
        number = F.when(is_number(F.col(_kind(index))), F.try_variant_get(value, "$", _EPOCH_DECIMAL)).otherwise(
            number
        )
    if millis:
        in_range = number.between(0, _MAX_EPOCH_SECONDS * 1000 + 999) & (number == F.floor(number))
        return F.when(in_range, F.timestamp_millis(number.cast("bigint")))
    return F.when(number.between(0, _MAX_EPOCH_SECONDS), F.timestamp_seconds(number))


def _label(field: DeclaredField, versions: tuple[str, ...]) -> Column:
    return _by_version(field, versions, F.lit)


def _got(reading: _Reading, field: DeclaredField, index: int) -> Column:
    """What a value of the wrong type is, for the message: its JSON type, or the text itself."""
    value = F.col(_value(index))
    as_text = F.concat(F.lit("'"), value.cast("string"), F.lit("'"))
    if not _has_kind(field, reading.contract):
        return reading.by_format(as_text, json_type(value))
    as_string = F.concat(F.lit("the string '"), value.cast("string"), F.lit("'"))
    return reading.by_format(as_text, F.when(F.col(_kind(index)) == "STRING", as_string).otherwise(json_type(value)))


def _version_checks(reading: _Reading) -> list[Check]:
    """The version field is there, a non-blank string, and one of the accepted versions."""
    contract = reading.contract
    name, accepted = contract.version_field, list(accepted_versions(contract))
    value, version = F.col(_VERSION_VALUE), F.col(_VERSION)
    checks: list[Check] = [
        (value.isNull(), ErrorCode.MISSING_FIELD, F.lit(f"required field '{name}' is missing or null"))
    ]
    if reading.reads_json:  # text is always a string
        message = F.concat(F.lit(f"field '{name}' must be a string, got "), json_type(value))
        checks.append((version.isNull(), ErrorCode.WRONG_TYPE, message))
    return [
        *checks,
        (~version.rlike(BLANK), ErrorCode.EMPTY_FIELD, F.lit(f"field '{name}' is empty")),
        (
            ~version.isin(accepted),
            ErrorCode.UNKNOWN_SCHEMA_VERSION,
            F.concat(F.lit(f"{name} '"), version, F.lit(f"' is not one of {', '.join(accepted)}")),
        ),
    ]


def _required(field: DeclaredField, versions: tuple[str, ...]) -> Column:
    if field.required_in == frozenset(versions):
        return F.lit(True)
    return F.col(_VERSION).isin(sorted(field.required_in))


def _contract_checks(reading: _Reading, rows: DataFrame) -> list[Check]:
    """The checks in the order they are reported: the version (it decides the other fields), missing fields,
    wrong types, blank required strings, the event time."""
    contract, fields, versions = reading.contract, reading.fields, reading.versions
    event_index = [field.name for field in fields].index(contract.event_time.field)
    checks = _version_checks(reading) if contract.version_field else []
    for index, field in enumerate(fields):
        if field.required_in:
            missing = _required(field, versions) & F.col(_value(index)).isNull()
            message = F.concat(F.lit("required field '"), _label(field, versions), F.lit("' is missing or null"))
            checks.append((missing, ErrorCode.MISSING_FIELD, message))
    # A JSON value fits a variant, a text fits a string: no check where every row's value fits.
    any_value_fits = set() if not isinstance(reading.textual, bool) else {"string"} if reading.textual else {"variant"}
    for index, field in enumerate(fields):
        if field.type in any_value_fits:
            continue
        wrong = F.col(_value(index)).isNotNull() & F.col(_typed(index)).isNull()
        message = F.concat(
            F.lit("field '"),
            _label(field, versions),
            F.lit(f"' must be {type_words(field.type)}, got "),
            _got(reading, field, index),
        )
        checks.append((wrong, ErrorCode.WRONG_TYPE, message))
    for index, field in enumerate(fields):
        # A blank event time is reported as a time that cannot be read (below).
        if field.type == "string" and field.required_in and index != event_index:
            blank = _required(field, versions) & ~F.col(_typed(index)).rlike(BLANK)
            message = F.concat(F.lit("field '"), _label(field, versions), F.lit("' is empty"))
            checks.append((blank, ErrorCode.EMPTY_FIELD, message))
    return checks + _event_time_checks(reading, fields[event_index], event_index, rows)


def _event_time_checks(reading: _Reading, field: DeclaredField, index: int, rows: DataFrame) -> list[Check]:
    """The event time reads in its form, is not before ``min_event_time``, not too far after the record's
    Kafka timestamp, and not too far after the job's clock: a producer sets the Kafka timestamp itself
    unless the topic uses LogAppendTime, so a skewed or forged producer clock passes the first bound but not
    the second (see :func:`~eventlake.pipeline.contract.clock.job_time` for why that clock is exact under
    replays)."""
    contract = reading.contract
    event_time = F.col(_EVENT_TIME)
    quoted = F.concat(
        _label(field, reading.versions), F.lit(" '"), F.col(_value(index)).cast("string"), F.lit("' ")
    )
    form = contract.event_time.form
    form_words = TIME_FORM_WORDS.get(form, f"a time of the pattern '{contract.event_time.pattern}'")
    unreadable = F.concat(quoted, F.lit(f"is not {form_words}"))
    checks: list[Check] = [(event_time.isNull(), ErrorCode.BAD_TIMESTAMP, unreadable)]
    if contract.min_event_time:
        earliest = contract.min_event_time
        message = F.concat(quoted, F.lit(f"is before {earliest}"))
        checks.append((event_time < F.lit(earliest).cast("timestamp"), ErrorCode.EVENT_TIME_TOO_EARLY, message))
    if contract.max_event_time_ahead is not None:
        seconds = contract.max_event_time_ahead.total_seconds()
        message = F.concat(
            quoted,
            F.lit(f"is more than {seconds:g} seconds after the record's Kafka timestamp "),
            iso_time("timestamp"),
            F.lit(" ("),
            kafka_clock(rows),
            F.lit(")"),
        )
        ahead = event_time > F.col("timestamp") + F.make_dt_interval(secs=F.lit(seconds))
        checks.append((ahead, ErrorCode.EVENT_TIME_IN_FUTURE, message))
    seconds = contract.max_event_time_ahead_of_job.total_seconds()
    clock = job_time(rows)
    message = F.concat(
        quoted,
        F.lit(f"is more than {seconds:g} seconds after the job's clock "),
        iso_time(clock),
        F.lit(" (the micro-batch's time)"),
    )
    ahead_of_job = event_time > clock + F.make_dt_interval(secs=F.lit(seconds))
    return [*checks, (ahead_of_job, ErrorCode.EVENT_TIME_AHEAD_OF_JOB_CLOCK, message)]


def parse_declared(raw: DataFrame, contract: DeclaredContract) -> DataFrame:
    """Kafka rows -> the same rows (raw columns kept, for the dead letters) with ``error_code``/
    ``error_message``/``error_stage`` (NULL when valid), then the :func:`declared_columns` (NULL on invalid rows).

    Never raises for bad records; raises ``ValueError`` for a declaration with :func:`contract_problems`.
    Reads the job's clock from :func:`~eventlake.pipeline.contract.clock.with_job_clock` when it was applied
    (streaming jobs should, for the reason given there), else ``current_timestamp()``.

    Example::

        contract = settings.contracts["ysb_ad_event"]
        events = valid_declared_events(raw.transform(parse_declared, contract), contract)
    """
    problems = contract_problems(contract)
    if problems:
        raise ValueError("the declared contract has problems: " + "; ".join(problems))
    reading = _Reading(contract)
    event_index = [field.name for field in reading.fields].index(contract.event_time.field)
    rows = (
        _extract(raw, reading)
        .transform(_read_values, reading)
        .withColumn(_EVENT_TIME, _event_time(reading, event_index))
    )
    checked = mark_invalid(rows, CONTRACT_STAGE, _contract_checks(reading, rows))
    # Only valid rows keep their event columns: an invalid one may hold values of no use, or unreadable.
    is_valid = F.col("error_code").isNull()
    events = {field.name: F.col(_typed(index)) for index, field in enumerate(reading.fields)}
    events["event_time"] = F.col(_EVENT_TIME)
    if contract.version_field:
        events[contract.version_field] = F.col(_VERSION)
    checked = checked.withColumns({name: F.when(is_valid, events[name]) for name in declared_columns(contract)})
    private = [column for column in checked.columns if column.startswith(_PREFIX)]
    return checked.drop(*private, JOB_TIME_COLUMN)


def valid_declared_events(parsed: DataFrame, contract: DeclaredContract) -> DataFrame:
    """Valid rows of :func:`parse_declared`, as the declared columns with their Kafka coordinates.

    Example::

        valid_declared_events(raw.transform(parse_declared, contract), contract).writeStream...
    """
    return parsed.where(F.col("error_code").isNull()).select(
        *(F.col(name) for name in declared_columns(contract)),
        "topic",
        "partition",
        "offset",
        F.col("timestamp").alias("kafka_timestamp"),
    )
