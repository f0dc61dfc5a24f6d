"""A contract declared in config (``[contracts.<name>]``, :class:`DeclaredContract`), compiled to Spark expressions.

Kafka rows come out as the built-in contract's do (:mod:`eventlake.pipeline.contract`): every raw column kept,
the declared fields as typed columns (:func:`declared_columns`), and ``error_code``/``error_message``/
``error_stage`` with the built-in's codes and stages, so :func:`~eventlake.pipeline.contract.invalid_records`
and the dead letters work unchanged. The only code of its own is :attr:`DeclaredErrorCode.NOT_CSV`.

* **extract** checks the value (empty, too large, not UTF-8) and reads it once in the declared ``format``:
  ``json`` with the built-in's fast path (one ``try_parse_json`` cast to a struct of VARIANTs over the
  top-level names the fields need), ``kv`` with the built-in's ``key=value;...`` rules, ``csv`` with
  ``from_csv``. Only records that fail are looked at again, to tell why.
* **contract** checks, first failure wins: the version field (when declared), missing required fields,
  wrong types, blank required strings, then the event time (readable in its form, not ahead of the job's
  clock). Messages name each field as the record names it (after the version's renames).

JSON values keep the type they were written with: "12" is no long, and nothing is coerced. In ``kv`` and
``csv`` every value is text, so a long is any text that casts to one.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from eventlake.pipeline.contract import (
    CONTRACT_STAGE,
    ERROR_COLUMNS,
    EXTRACT_STAGE,
    ISO_8601_WITH_OFFSET,
    JOB_TIME_COLUMN,
    KV_PAIR_SEPARATOR,
    Check,
    ErrorCode,
    _iso_time,
    _job_time,
    _json_failure,
    _json_type,
    _kv_failure,
    first_failure,
    key_value_map,
    mark_invalid,
    with_error_columns,
    with_stage_error,
)
from eventlake.runtime.config import ContractField, ContractVersionSpec, DeclaredContract

DECLARED_FORMATS = ("json", "kv", "csv")
FIELD_TYPES = ("string", "long", "double", "boolean", "decimal(p,s)", "timestamp", "object", "variant")
EVENT_TIME_FORMS = ("iso8601", "epoch_seconds", "epoch_millis", "pattern")


class DeclaredErrorCode(StrEnum):
    """The one way a declared record can be invalid that the built-in :class:`ErrorCode` has no code for."""

    NOT_CSV = "NOT_CSV"


# The field types each event-time form can read (the type is checked first, then the form).
_EVENT_TIME_TYPES = {
    "iso8601": ("string", "timestamp", "variant"),
    "epoch_seconds": ("string", "long", "double", "decimal", "variant"),
    "epoch_millis": ("string", "long", "double", "decimal", "variant"),
    "pattern": ("string", "variant"),
}
_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_SPARK_TYPES = {
    "string": "string", "long": "bigint", "double": "double", "boolean": "boolean", "timestamp": "timestamp",
    "object": "variant", "variant": "variant",
}
_TYPE_WORDS = {
    "string": "a string", "long": "an integer", "double": "a number", "boolean": "a boolean",
    "timestamp": "an ISO-8601 time with a UTC offset", "object": "an object", "variant": "a JSON value",
}
_TIME_FORM_WORDS = {
    "iso8601": "an ISO-8601 time with a UTC offset (like 2026-01-31T12:00:00Z)",
    "epoch_seconds": "epoch seconds",
    "epoch_millis": "epoch milliseconds",
}
# Columns the parsed rows have besides the declared ones: a field may not take their names.
_RESERVED_NAMES = (
    "key", "value", "topic", "partition", "offset", "timestamp", "timestampType", "headers", "kafka_timestamp",
    *ERROR_COLUMNS,
)
_INTEGER_KINDS = ("BIGINT", "INT", "SMALLINT", "TINYINT")
_BLANK = r"(?U)\S"  # the built-in's: no visible character at all is blank
# Epochs are read as decimals, and only within Spark's years 1970-9999: no value can overflow.
_EPOCH_DECIMAL = "decimal(38,6)"
_MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
# Appended to a csv record after one more delimiter: it is the column after the last exactly when the record
# has as many columns as declared (an unclosed quote swallows it). from_csv reads an empty column as NULL,
# like a missing one, so the count cannot come from the NULLs.
_CSV_END = "\u0001"

# Private columns, dropped at the end.
_PREFIX = "_dc_"
_TEXT, _COMMON_ERROR, _DOC, _PARTS = (f"{_PREFIX}{name}" for name in ("text", "common_error", "doc", "parts"))
_VERSION_VALUE, _VERSION, _EVENT_TIME = (f"{_PREFIX}{name}" for name in ("version_value", "version", "event_time"))


def _value(index: int) -> str:
    return f"{_PREFIX}v{index}"  # the field as read: VARIANT (json) or text, NULL when absent


def _kind(index: int) -> str:
    return f"{_PREFIX}k{index}"  # json only: schema_of_variant of the value


def _typed(index: int) -> str:
    return f"{_PREFIX}t{index}"  # the value in its declared type, NULL when absent or of another type


# --- the declaration ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """A field as the contract reads it: where each version's records hold it (versions without it are
    absent), and in which versions it is required. Without versions the one version is ``""``."""

    name: str
    type: str
    paths: dict[str, str]
    required_in: frozenset[str]


def _versions(contract: DeclaredContract) -> tuple[str, ...]:
    return tuple(contract.versions) if contract.version_field else ("",)


def _fields(contract: DeclaredContract) -> list[_Field]:
    """The declared fields, then those versions add (in version order, once each)."""
    versions = _versions(contract)
    changes = {version: contract.versions.get(version, ContractVersionSpec()) for version in versions}
    fields = [
        _Field(
            name,
            spec.type,
            {version: changes[version].rename.get(name, spec.path or name) for version in versions},
            frozenset(versions) if spec.required else frozenset(),
        )
        for name, spec in contract.fields.items()
    ]
    added: dict[str, _Field] = {}
    for version in versions:
        for name, spec in changes[version].add.items():
            before = added.get(name, _Field(name, spec.type, {}, frozenset()))
            required = {version} if spec.required else set()
            added[name] = _Field(
                name, before.type, {**before.paths, version: spec.path or name}, before.required_in | required
            )
    return fields + list(added.values())


def _spark_type(type_name: str) -> str:
    decimal = _DECIMAL.fullmatch(type_name)
    if decimal:
        return f"decimal({decimal[1]},{decimal[2]})"
    if type_name not in _SPARK_TYPES:
        raise ValueError(f"{type_name!r} is not one of {', '.join(FIELD_TYPES)}")
    return _SPARK_TYPES[type_name]


def declared_columns(contract: DeclaredContract) -> dict[str, str]:
    """The event columns, name -> Spark SQL type: every field (versions' too) in its declared type, then
    ``event_time`` (the parsed event time, which replaces a field of that name), then the version field
    as a string when there is one. Expects a contract without :func:`contract_problems`."""
    columns = {field.name: _spark_type(field.type) for field in _fields(contract) if field.name != "event_time"}
    columns["event_time"] = "timestamp"
    if contract.version_field:
        columns[contract.version_field] = "string"
    return columns


# --- checking the declaration ----------------------------------------------------------------------------


def contract_problems(contract: DeclaredContract) -> list[str]:
    """What is wrong with a declaration, each problem one sentence that starts with its key (relative to the
    contract); empty when it compiles. Spark would fail on some of these only when a batch runs."""
    problems = []
    if contract.format not in DECLARED_FORMATS:
        problems.append(f"format: {contract.format!r} is not one of {', '.join(DECLARED_FORMATS)}")
    problems += _csv_problems(contract)
    if not contract.fields:
        problems.append("fields must declare at least one field")
    for name, spec in contract.fields.items():
        problems += _field_problems(f"fields.{name}", name, spec, contract)
    problems += _version_problems(contract)
    problems += _event_time_problems(contract)
    if contract.id_field and contract.id_field not in contract.fields:
        problems.append(f"id_field: {contract.id_field!r} is not a field")
    elif contract.id_field and not contract.fields[contract.id_field].required:
        problems.append(f"id_field: {contract.id_field!r} must be a required field (events are de-duplicated on it)")
    if contract.max_record_bytes <= 0:
        problems.append(f"max_record_bytes must be positive, got {contract.max_record_bytes}")
    if contract.max_event_time_ahead_of_job < timedelta(0):
        problems.append("max_event_time_ahead_of_job must not be negative")
    return problems


def _csv_problems(contract: DeclaredContract) -> list[str]:
    if contract.format != "csv":
        return ["csv_columns applies to format = 'csv' only"] if contract.csv_columns else []
    problems = []
    if not contract.csv_columns:
        problems.append("csv_columns must list the columns of a csv record")
    problems += [
        f"csv_columns: {name!r} is listed twice"
        for position, name in enumerate(contract.csv_columns)
        if name in contract.csv_columns[:position]
    ]
    if contract.csv_delimiter in ("", '"', "\n", "\r", _CSV_END):
        problems.append(f"csv_delimiter: {contract.csv_delimiter!r} cannot separate columns")
    return problems


def _field_problems(key: str, name: str, spec: ContractField, contract: DeclaredContract) -> list[str]:
    problems = []
    if name.startswith("_") or "." in name or not name:
        problems.append(f"{key}: a field's name must not be empty, start with '_' or hold a '.' (set its path)")
    elif name in _RESERVED_NAMES:
        problems.append(f"{key}: {name!r} is a column the parsed rows already have: name it otherwise, with path")
    elif name == "event_time" and contract.event_time.field != name:
        problems.append(f"{key}: only the event time field may be called event_time (it is the parsed time)")
    if spec.type not in _SPARK_TYPES and not _is_decimal_type(spec.type):
        problems.append(f"{key}.type: {spec.type!r} is not one of {', '.join(FIELD_TYPES)}")
    problem = _path_problem(spec.path or name, contract)
    if problem:
        problems.append(f"{key}.path: {problem}" if spec.path else f"{key}: {problem} (set its path)")
    return problems


def _is_decimal_type(type_name: str) -> bool:
    decimal = _DECIMAL.fullmatch(type_name)
    return decimal is not None and 1 <= int(decimal[1]) <= 38 and int(decimal[2]) <= int(decimal[1])


def _path_problem(path: str, contract: DeclaredContract) -> str:
    """Why ``path`` cannot name a value of the contract's records ('' when it can)."""
    if contract.format == "json" and any(key == "" or "'" in key for key in path.split(".")):
        return f"{path!r} is not a dotted name of JSON keys (like data.user_id)"
    if contract.format == "kv" and (not path or path != path.strip() or KV_PAIR_SEPARATOR in path or "=" in path):
        return f"{path!r} cannot be a key of key=value pairs"
    if contract.format == "csv" and path not in contract.csv_columns:
        return f"{path!r} is not one of csv_columns"
    return ""


def _version_problems(contract: DeclaredContract) -> list[str]:
    problems = []
    version_field = contract.version_field
    if contract.versions and not version_field:
        problems.append("versions needs version_field (the field that holds a record's version)")
    if version_field and not contract.versions:
        problems.append("version_field needs versions (a [versions.<version>] table for each accepted one)")
    if version_field:
        if version_field in contract.fields:
            problems.append(f"version_field: {version_field!r} is also a field (the version comes out on its own)")
        if "." in version_field or version_field.startswith("_") or version_field in (*_RESERVED_NAMES, "event_time"):
            problems.append(f"version_field: {version_field!r} cannot name an event column")
        problem = _path_problem(version_field, contract)
        if problem:
            problems.append(f"version_field: {problem}")
    added_in: dict[str, tuple[str, str]] = {}  # field -> (first version adding it, its type)
    for version, spec in contract.versions.items():
        for name, path in spec.rename.items():
            if name not in contract.fields:
                problems.append(f"versions.{version}.rename: {name!r} is not a field")
            elif _path_problem(path, contract):
                problems.append(f"versions.{version}.rename.{name}: {_path_problem(path, contract)}")
        for name, added in spec.add.items():
            key = f"versions.{version}.add.{name}"
            if name in contract.fields:
                problems.append(f"{key}: {name!r} is already a field")
                continue
            problems += _field_problems(key, name, added, contract)
            first_version, first_type = added_in.setdefault(name, (version, added.type))
            if added.type != first_type:
                problems.append(f"{key}.type: {added.type!r} differs from {first_type!r} in version {first_version}")
    return problems


def _event_time_problems(contract: DeclaredContract) -> list[str]:
    spec = contract.event_time
    problems = []
    if spec.field not in contract.fields:
        problems.append(f"event_time.field: {spec.field!r} is not a field")
    elif not contract.fields[spec.field].required:
        problems.append(f"event_time.field: {spec.field!r} must be a required field")
    if spec.form not in EVENT_TIME_FORMS:
        problems.append(f"event_time.form: {spec.form!r} is not one of {', '.join(EVENT_TIME_FORMS)}")
    elif spec.field in contract.fields:
        type_name = contract.fields[spec.field].type
        if ("decimal" if _DECIMAL.fullmatch(type_name) else type_name) not in _EVENT_TIME_TYPES[spec.form]:
            problems.append(f"event_time.form: {spec.form!r} cannot read field {spec.field!r} of type {type_name!r}")
    if spec.form == "pattern" and not spec.pattern:
        problems.append("event_time.pattern is required with form = 'pattern'")
    if spec.form != "pattern" and spec.pattern:
        problems.append("event_time.pattern applies to form = 'pattern' only")
    if not _is_time_zone(spec.time_zone):
        problems.append(
            f"event_time.time_zone: {spec.time_zone!r} is not a time zone (like Europe/Paris, UTC or +01:00)"
        )
    return problems


def _is_time_zone(name: str) -> bool:
    if re.fullmatch(r"[+-]\d{2}:\d{2}", name):
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


# --- extract: bytes -> the record's values ----------------------------------------------------------------


def _common_failure(max_record_bytes: int) -> Column:
    """The built-in's checks before any format reads a record: a value, within the size limit, in UTF-8."""
    size = F.octet_length("value")
    return first_failure(
        [
            (F.col("value").isNull() | (size == 0), ErrorCode.EMPTY_VALUE, F.lit("the record has no value")),
            (
                size > max_record_bytes,
                ErrorCode.TOO_LARGE,
                F.format_string(f"the record is %d bytes, above the limit of {max_record_bytes}", size),
            ),
            (~F.is_valid_utf8(_TEXT), ErrorCode.INVALID_UTF8, F.lit("the record is not valid UTF-8")),
        ]
    )


def _json_top_level_names(contract: DeclaredContract, fields: list[_Field]) -> list[str]:
    paths = [path for field in fields for path in field.paths.values()]
    paths += [contract.version_field] if contract.version_field else []
    return list(dict.fromkeys(path.split(".")[0] for path in paths))


def _read_json(rows: DataFrame, text: Column, names: list[str]) -> DataFrame:
    # As the built-in's: one strict parse of the text wrapped in an array (data after the object becomes a
    # second element), cast to a struct of the top-level names the fields need, in a single pass.
    struct = ", ".join("`{}`: variant".format(name.replace("`", "``")) for name in names)
    wrapped = F.try_parse_json(F.concat(F.lit("["), text, F.lit("\n]")))
    rows = rows.withColumn(_PARTS, F.try_variant_get(wrapped, "$", f"array<struct<{struct}>>"))
    return rows.withColumn(_DOC, F.when(F.size(_PARTS) == 1, F.get(_PARTS, 0))).drop(_PARTS)


def _read_csv(rows: DataFrame, text: Column, contract: DeclaredContract) -> DataFrame:
    # Columns c0..c<n+1>; a final line break is not part of the last column.
    count = len(contract.csv_columns)
    schema = ", ".join(f"c{position} string" for position in range(count + 2))
    record = F.regexp_replace(text, r"\r?\n\z", "")
    ended = F.concat(record, F.lit(contract.csv_delimiter + _CSV_END))
    rows = rows.withColumn(_PARTS, F.from_csv(ended, schema, {"sep": contract.csv_delimiter}))
    has_count = (F.col(f"{_PARTS}.c{count}") == _CSV_END) & F.col(f"{_PARTS}.c{count + 1}").isNull()
    return rows.withColumn(_DOC, F.when(has_count, F.col(_PARTS))).drop(_PARTS)


def _csv_failure(contract: DeclaredContract) -> Column:
    return first_failure(
        [
            (
                F.lit(True),
                DeclaredErrorCode.NOT_CSV,
                F.lit(
                    f"the record is not {len(contract.csv_columns)} CSV columns separated by"
                    f" {contract.csv_delimiter!r} (a column too few or too many, or a quote not closed)"
                ),
            )
        ]
    )


def _extract(raw: DataFrame, contract: DeclaredContract, fields: list[_Field]) -> DataFrame:
    """Kafka rows -> the same rows with the record read in its format (``_dc_doc``: a struct of VARIANTs,
    a map of texts, or a struct of csv texts; NULL when unreadable) and the extract stage's error."""
    rows = raw.withColumn(_TEXT, F.col("value").cast("string"))
    rows = rows.withColumn(_COMMON_ERROR, _common_failure(contract.max_record_bytes))
    # The format reads (and a failure is built for) only the rows that passed the common checks.
    text = F.when(F.col(_COMMON_ERROR).isNull(), F.col(_TEXT))
    if contract.format == "json":
        rows, failure = _read_json(rows, text, _json_top_level_names(contract, fields)), _json_failure(text)
    elif contract.format == "kv":
        rows, failure = rows.withColumn(_DOC, key_value_map(text)), _kv_failure(text)
    else:
        rows, failure = _read_csv(rows, text, contract), _csv_failure(contract)
    unreadable = F.when(text.isNotNull() & F.col(_DOC).isNull(), failure)
    return rows.transform(with_error_columns).transform(
        with_stage_error, EXTRACT_STAGE, F.coalesce(F.col(_COMMON_ERROR), unreadable)
    )


def _value_at(contract: DeclaredContract) -> Callable[[str], Column]:
    """How to read the value a path names: a VARIANT (json; SQL NULL when absent, JSON null kept) or a text."""
    doc = F.col(_DOC)
    if contract.format == "kv":
        return lambda path: F.try_element_at(doc, F.lit(path))
    if contract.format == "csv":
        positions = {name: position for position, name in enumerate(contract.csv_columns)}
        # The column count is right, so a NULL column is an empty one.
        return lambda path: F.coalesce(doc.getField(f"c{positions[path]}"), F.lit(""))

    def json_value(path: str) -> Column:
        top, *inner = path.split(".")
        value = doc.getField(top)
        return F.try_variant_get(value, "$" + "".join(f"['{key}']" for key in inner), "variant") if inner else value

    return json_value


# --- contract: values -> typed event ----------------------------------------------------------------------


def _by_version(field: _Field, all_versions: tuple[str, ...], pick: Callable[[str], Column]) -> Column:
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


def _present(value: Column) -> Column:
    return value.isNotNull() & ~F.is_variant_null(value)


def _is_number(kind: Column) -> Column:
    return kind.isin(*_INTEGER_KINDS, "DOUBLE", "FLOAT") | kind.startswith("DECIMAL")


def _iso_timestamp(text: Column) -> Column:
    return F.when(text.rlike(ISO_8601_WITH_OFFSET), F.try_to_timestamp(text))


def _is_object(value: Column) -> Column:
    # The cast to a struct succeeds for an object only, and looks up one key: no walk over the object.
    return F.try_variant_get(value, "$", "struct<`_`: variant>").isNotNull()


def _json_typed(type_name: str, value: Column, kind: Column) -> Column:
    """A JSON value (VARIANT) in its declared type, NULL when the JSON type does not fit."""
    if type_name == "string":
        return F.when(kind == "STRING", value.cast("string"))
    if type_name == "long":
        is_integer = kind.isin(*_INTEGER_KINDS) | kind.rlike(r"^DECIMAL\(\d+,0\)$")
        return F.when(is_integer, F.try_variant_get(value, "$", "bigint"))
    if type_name == "boolean":
        return F.when(kind == "BOOLEAN", value.cast("boolean"))
    if type_name == "timestamp":
        return _iso_timestamp(F.when(kind == "STRING", value.cast("string")))
    if type_name == "object":
        return F.when(_is_object(value), value)
    if type_name == "variant":
        return value
    # double or decimal(p,s): any number, as long as it fits
    return F.when(_is_number(kind), F.try_variant_get(value, "$", _spark_type(type_name)))


def _text_typed(type_name: str, text: Column) -> Column:
    """A text value (kv, csv) in its declared type, NULL when it does not read as one. Numbers and booleans
    are Spark's casts of the trimmed text: "1e3" is a double, "yes" a boolean, "1.0" no long."""
    if type_name == "string":
        return text
    if type_name == "timestamp":
        return _iso_timestamp(F.trim(text))
    if type_name in ("object", "variant"):
        document = F.try_parse_json(text)
        return F.when(_is_object(document), document) if type_name == "object" else document
    return F.trim(text).try_cast(_spark_type(type_name))


def _read_values(rows: DataFrame, contract: DeclaredContract, fields: list[_Field]) -> DataFrame:
    """The version (``_dc_version``), then per field its value (``_dc_v<i>``: NULL when absent, JSON null or,
    in text formats, blank for a non-string), its JSON type (``_dc_k<i>``) and its typed value
    (``_dc_t<i>``), each read once."""
    value_at = _value_at(contract)
    is_json = contract.format == "json"
    if contract.version_field:
        value = value_at(contract.version_field)
        rows = rows.withColumn(_VERSION_VALUE, F.when(_present(value), value) if is_json else value)
        version = F.col(_VERSION_VALUE)
        rows = rows.withColumn(
            _VERSION, F.when(F.schema_of_variant(version) == "STRING", version.cast("string")) if is_json else version
        )
    versions = _versions(contract)
    values = {}
    for index, field in enumerate(fields):
        value = _by_version(field, versions, value_at)
        if is_json:
            values[_value(index)] = F.when(_present(value), value)
        else:
            values[_value(index)] = value if field.type == "string" else F.when(value.rlike(_BLANK), value)
    rows = rows.withColumns(values)
    if is_json:
        kinds = {
            _kind(index): F.schema_of_variant(_value(index))
            for index, field in enumerate(fields)
            if _has_kind(field, contract)
        }
        rows = rows.withColumns(kinds)
    typed = {
        _typed(index): _json_typed(field.type, F.col(_value(index)), F.col(_kind(index)))
        if is_json
        else _text_typed(field.type, F.col(_value(index)))
        for index, field in enumerate(fields)
    }
    return rows.withColumns(typed)


def _has_kind(field: _Field, contract: DeclaredContract) -> bool:
    """Whether the JSON type of the field is read up front: for scalars, from the value's type header.
    An object's would walk the whole object: it is only read for the message of a wrong one."""
    return field.type not in ("object", "variant") or field.name == contract.event_time.field


def _event_time(contract: DeclaredContract, index: int) -> Column:
    """The event time read from the event-time field's value in its form; NULL when it cannot be."""
    spec = contract.event_time
    value = F.col(_value(index))
    text = value.cast("string") if contract.format == "json" else F.trim(value)
    if spec.form == "iso8601":
        return _iso_timestamp(text)
    if spec.form == "pattern":
        parsed = F.try_to_timestamp(text, F.lit(spec.pattern))
        # try_to_timestamp reads the text in the session's time zone: move that wall-clock time to the declared one.
        return F.to_utc_timestamp(F.from_utc_timestamp(parsed, F.current_timezone()), spec.time_zone)
    millis = spec.form == "epoch_millis"
    digits = r"^\d+\z" if millis else r"^\d+(\.\d+)?\z"
    number = F.when(text.rlike(digits), text.try_cast(_EPOCH_DECIMAL))
    if contract.format == "json":
        number = F.when(_is_number(F.col(_kind(index))), F.try_variant_get(value, "$", _EPOCH_DECIMAL)).otherwise(
            number
        )
    if millis:
        in_range = number.between(0, _MAX_EPOCH_SECONDS * 1000 + 999) & (number == F.floor(number))
        return F.when(in_range, F.timestamp_millis(number.cast("bigint")))
    return F.when(number.between(0, _MAX_EPOCH_SECONDS), F.timestamp_seconds(number))


def _label(field: _Field, versions: tuple[str, ...]) -> Column:
    return _by_version(field, versions, F.lit)


def _type_words(type_name: str) -> str:
    return f"a number that fits {_spark_type(type_name)}" if _DECIMAL.fullmatch(type_name) else _TYPE_WORDS[type_name]


def _got(contract: DeclaredContract, field: _Field, index: int) -> Column:
    """What a value of the wrong type is, for the message: its JSON type, or the text itself."""
    value = F.col(_value(index))
    if contract.format != "json":
        return F.concat(F.lit("'"), value, F.lit("'"))
    if not _has_kind(field, contract):
        return _json_type(value)
    as_string = F.concat(F.lit("the string '"), value.cast("string"), F.lit("'"))
    return F.when(F.col(_kind(index)) == "STRING", as_string).otherwise(_json_type(value))


def _version_checks(contract: DeclaredContract) -> list[Check]:
    """The version field is there, a non-blank string, and one of the declared versions."""
    name, accepted = contract.version_field, list(contract.versions)
    value, version = F.col(_VERSION_VALUE), F.col(_VERSION)
    checks: list[Check] = [
        (value.isNull(), ErrorCode.MISSING_FIELD, F.lit(f"required field '{name}' is missing or null"))
    ]
    if contract.format == "json":  # text is always a string
        message = F.concat(F.lit(f"field '{name}' must be a string, got "), _json_type(value))
        checks.append((version.isNull(), ErrorCode.WRONG_TYPE, message))
    return [
        *checks,
        (~version.rlike(_BLANK), ErrorCode.EMPTY_FIELD, F.lit(f"field '{name}' is empty")),
        (
            ~version.isin(accepted),
            ErrorCode.UNKNOWN_SCHEMA_VERSION,
            F.concat(F.lit(f"{name} '"), version, F.lit(f"' is not one of {', '.join(accepted)}")),
        ),
    ]


def _required(field: _Field, versions: tuple[str, ...]) -> Column:
    if field.required_in == frozenset(versions):
        return F.lit(True)
    return F.col(_VERSION).isin(sorted(field.required_in))


def _contract_checks(contract: DeclaredContract, fields: list[_Field], job_time: Column) -> list[Check]:
    """The checks in the order they are reported: the version (it decides the other fields), missing fields,
    wrong types, blank required strings, the event time."""
    versions = _versions(contract)
    event_index = [field.name for field in fields].index(contract.event_time.field)
    checks = _version_checks(contract) if contract.version_field else []
    for index, field in enumerate(fields):
        if field.required_in:
            missing = _required(field, versions) & F.col(_value(index)).isNull()
            message = F.concat(F.lit("required field '"), _label(field, versions), F.lit("' is missing or null"))
            checks.append((missing, ErrorCode.MISSING_FIELD, message))
    for index, field in enumerate(fields):
        if field.type == ("variant" if contract.format == "json" else "string"):
            continue  # any value fits
        wrong = F.col(_value(index)).isNotNull() & F.col(_typed(index)).isNull()
        message = F.concat(
            F.lit("field '"),
            _label(field, versions),
            F.lit(f"' must be {_type_words(field.type)}, got "),
            _got(contract, field, index),
        )
        checks.append((wrong, ErrorCode.WRONG_TYPE, message))
    for index, field in enumerate(fields):
        # As in the built-in, a blank event time is reported as a time that cannot be read (below).
        if field.type == "string" and field.required_in and index != event_index:
            blank = _required(field, versions) & ~F.col(_typed(index)).rlike(_BLANK)
            message = F.concat(F.lit("field '"), _label(field, versions), F.lit("' is empty"))
            checks.append((blank, ErrorCode.EMPTY_FIELD, message))
    return checks + _event_time_checks(contract, fields[event_index], event_index, job_time)


def _event_time_checks(contract: DeclaredContract, field: _Field, index: int, job_time: Column) -> list[Check]:
    """The event time reads in its form, and is not too far after the job's clock (see the built-in's
    ``_event_time_checks`` for why that clock is ``current_timestamp()``)."""
    max_ahead_seconds = contract.max_event_time_ahead_of_job.total_seconds()
    value, event_time = F.col(_value(index)), F.col(_EVENT_TIME)
    quoted = F.concat(
        _label(field, _versions(contract)),
        F.lit(" '"),
        value.cast("string") if contract.format == "json" else value,
        F.lit("' "),
    )
    form = contract.event_time.form
    form_words = _TIME_FORM_WORDS.get(form, f"a time of the pattern '{contract.event_time.pattern}'")
    return [
        (event_time.isNull(), ErrorCode.BAD_TIMESTAMP, F.concat(quoted, F.lit(f"is not {form_words}"))),
        (
            event_time > job_time + F.make_dt_interval(secs=F.lit(max_ahead_seconds)),
            ErrorCode.EVENT_TIME_AHEAD_OF_JOB_CLOCK,
            F.concat(
                quoted,
                F.lit(f"is more than {max_ahead_seconds:g} seconds after the job's clock "),
                _iso_time(job_time),
                F.lit(" (the micro-batch's time)"),
            ),
        ),
    ]


def parse_declared(raw: DataFrame, contract: DeclaredContract) -> DataFrame:
    """Kafka rows -> the same rows (raw columns kept, for the dead letters) with the :func:`declared_columns`
    (NULL on invalid rows) and ``error_code``/``error_message``/``error_stage`` (NULL when valid).

    Never raises for bad records; raises ``ValueError`` for a declaration with :func:`contract_problems`.
    Reads the job's clock from :func:`~eventlake.pipeline.contract.with_job_clock` when it was applied
    (streaming jobs should, for the reason given there), else ``current_timestamp()``.
    """
    problems = contract_problems(contract)
    if problems:
        raise ValueError("the declared contract has problems: " + "; ".join(problems))
    fields = _fields(contract)
    event_index = [field.name for field in fields].index(contract.event_time.field)
    rows = (
        _extract(raw, contract, fields)
        .transform(_read_values, contract, fields)
        .withColumn(_EVENT_TIME, _event_time(contract, event_index))
    )
    checked = mark_invalid(rows, CONTRACT_STAGE, _contract_checks(contract, fields, _job_time(rows)))
    # Only valid rows keep their event columns: an invalid one may hold values of no use, or unreadable.
    is_valid = F.col("error_code").isNull()
    events = {field.name: F.col(_typed(index)) for index, field in enumerate(fields)}
    events["event_time"] = F.col(_EVENT_TIME)
    if contract.version_field:
        events[contract.version_field] = F.col(_VERSION)
    checked = checked.withColumns({name: F.when(is_valid, events[name]) for name in declared_columns(contract)})
    private = [column for column in checked.columns if column.startswith(_PREFIX)]
    return checked.drop(*private, JOB_TIME_COLUMN)


def valid_declared_events(parsed: DataFrame, contract: DeclaredContract) -> DataFrame:
    """Valid rows of :func:`parse_declared`, as the declared columns with their Kafka coordinates."""
    return parsed.where(F.col("error_code").isNull()).select(
        *(F.col(name) for name in declared_columns(contract)),
        "topic",
        "partition",
        "offset",
        F.col("timestamp").alias("kafka_timestamp"),
    )
