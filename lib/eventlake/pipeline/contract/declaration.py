"""A contract's declaration (:class:`~eventlake.runtime.config.DeclaredContract`): its fields as each version
holds them, the event columns it gives, and what is wrong with it (:func:`contract_problems`), before any
record is read."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import timedelta

from eventlake.pipeline.contract.errors import ERROR_COLUMNS
from eventlake.pipeline.contract.expressions import ISO_8601_WITH_OFFSET, KV_PAIR_SEPARATOR
from eventlake.runtime.config import ContractField, ContractVersionSpec, DeclaredContract

DECLARED_FORMATS = ("json", "kv", "csv")
FIELD_TYPES = ("string", "long", "double", "boolean", "decimal(p,s)", "timestamp", "object", "variant")
EVENT_TIME_FORMS = ("iso8601", "epoch_seconds", "epoch_millis", "pattern")


# The field types each event-time form can read (the type is checked first, then the form).
_EVENT_TIME_TYPES = {
    "iso8601": ("string", "timestamp", "variant"),
    "epoch_seconds": ("string", "long", "double", "decimal", "variant"),
    "epoch_millis": ("string", "long", "double", "decimal", "variant"),
    "pattern": ("string", "variant"),
}
DECIMAL_TYPE = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_SPARK_TYPES = {
    "string": "string", "long": "bigint", "double": "double", "boolean": "boolean", "timestamp": "timestamp",
    "object": "variant", "variant": "variant",
}
_TYPE_WORDS = {
    "string": "a string", "long": "an integer", "double": "a number", "boolean": "a boolean",
    "timestamp": "an ISO-8601 time with a UTC offset", "object": "an object", "variant": "a JSON value",
}
TIME_FORM_WORDS = {
    "iso8601": "an ISO-8601 time with a UTC offset (like 2026-01-31T12:00:00Z)",
    "epoch_seconds": "epoch seconds",
    "epoch_millis": "epoch milliseconds",
}
# Columns the parsed rows have besides the declared ones: a field may not take their names.
_RESERVED_NAMES = (
    "key", "value", "topic", "partition", "offset", "timestamp", "timestampType", "headers", "kafka_timestamp",
    *ERROR_COLUMNS,
)
# Appended to a csv record after one more delimiter: it is the column after the last exactly when the record
# has as many columns as declared (an unclosed quote swallows it). from_csv reads an empty column as NULL,
# like a missing one, so the count cannot come from the NULLs.
CSV_END = "\u0001"


# --- the declaration ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeclaredField:
    """A field as the contract reads it: where each version's records hold it (versions without it are
    absent), and in which versions it is required. Without versions the one version is ``""``."""

    name: str
    type: str
    paths: dict[str, str]
    required_in: frozenset[str]


def layout_versions(contract: DeclaredContract) -> tuple[str, ...]:
    """The versions whose layout the contract declares (``("",)`` without versions)."""
    return tuple(contract.versions) if contract.version_field else ("",)


def accepted_versions(contract: DeclaredContract) -> tuple[str, ...]:
    """The versions read: ``accepted_versions``, or every declared one."""
    return contract.accepted_versions or tuple(contract.versions)


def reading_formats(contract: DeclaredContract) -> tuple[str, ...]:
    """The formats read: ``formats`` (chosen per record by its content-type header), or the one ``format``."""
    return contract.formats or (contract.format,)


def declared_fields(contract: DeclaredContract) -> list[DeclaredField]:
    """The declared fields, then those versions add (in version order, once each)."""
    versions = layout_versions(contract)
    changes = {version: contract.versions.get(version, ContractVersionSpec()) for version in versions}
    fields = [
        DeclaredField(
            name,
            spec.type,
            {version: changes[version].rename.get(name, spec.path or name) for version in versions},
            frozenset(versions) if spec.required else frozenset(),
        )
        for name, spec in contract.fields.items()
    ]
    added: dict[str, DeclaredField] = {}
    for version in versions:
        for name, spec in changes[version].add.items():
            before = added.get(name, DeclaredField(name, spec.type, {}, frozenset()))
            required = {version} if spec.required else set()
            added[name] = DeclaredField(
                name, before.type, {**before.paths, version: spec.path or name}, before.required_in | required
            )
    return fields + list(added.values())


def spark_type(type_name: str) -> str:
    """The Spark SQL type of a field type: ``long`` -> ``bigint``, ``object`` -> ``variant``..."""
    decimal = DECIMAL_TYPE.fullmatch(type_name)
    if decimal:
        return f"decimal({decimal[1]},{decimal[2]})"
    if type_name not in _SPARK_TYPES:
        raise ValueError(f"{type_name!r} is not one of {', '.join(FIELD_TYPES)}")
    return _SPARK_TYPES[type_name]


def type_words(type_name: str) -> str:
    """A field type in words, for messages: ``an integer``, ``a number that fits decimal(5,2)``..."""
    if DECIMAL_TYPE.fullmatch(type_name):
        return f"a number that fits {spark_type(type_name)}"
    return _TYPE_WORDS[type_name]


def declared_columns(contract: DeclaredContract) -> dict[str, str]:
    """The event columns, name -> Spark SQL type: every field (versions' too) in its declared type, then
    ``event_time`` (the parsed event time, which replaces a field of that name), then the version field
    as a string when there is one. Expects a contract without :func:`contract_problems`.

    Example::

        declared_columns(settings.contracts["ysb_ad_event"])  # {"user_id": "string", ..., "event_time": "timestamp"}
    """
    columns = {field.name: spark_type(field.type) for field in declared_fields(contract) if field.name != "event_time"}
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
    problems += [
        f"formats: {name!r} is not one of {', '.join(DECLARED_FORMATS)}"
        for name in contract.formats
        if name not in DECLARED_FORMATS
    ]
    if contract.formats and contract.format not in contract.formats:
        problems.append(f"format: {contract.format!r} (of records without a content-type) must be one of formats")
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
    if contract.max_event_time_ahead is not None and contract.max_event_time_ahead < timedelta(0):
        problems.append("max_event_time_ahead must not be negative")
    if contract.min_event_time and not re.fullmatch(ISO_8601_WITH_OFFSET.replace(r"\z", "$"), contract.min_event_time):
        problems.append(f"min_event_time: {contract.min_event_time!r} is not an ISO-8601 time with a UTC offset")
    return problems


def _csv_problems(contract: DeclaredContract) -> list[str]:
    if "csv" not in reading_formats(contract):
        return ["csv_columns applies to format = 'csv' only"] if contract.csv_columns else []
    problems = []
    if not contract.csv_columns:
        problems.append("csv_columns must list the columns of a csv record")
    problems += [
        f"csv_columns: {name!r} is listed twice"
        for position, name in enumerate(contract.csv_columns)
        if name in contract.csv_columns[:position]
    ]
    if contract.csv_delimiter in ("", '"', "\n", "\r", CSV_END):
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
    decimal = DECIMAL_TYPE.fullmatch(type_name)
    return decimal is not None and 1 <= int(decimal[1]) <= 38 and int(decimal[2]) <= int(decimal[1])


def _path_problem(path: str, contract: DeclaredContract) -> str:
    """Why ``path`` cannot name a value of the contract's records ('' when it can), in every format read."""
    formats = reading_formats(contract)
    if "json" in formats and any(key == "" or "'" in key for key in path.split(".")):
        return f"{path!r} is not a dotted name of JSON keys (like data.user_id)"
    if "kv" in formats and (not path or path != path.strip() or KV_PAIR_SEPARATOR in path or "=" in path):
        return f"{path!r} cannot be a key of key=value pairs"
    if "csv" in formats and path not in contract.csv_columns:
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
    problems += [
        f"accepted_versions: {version!r} is not one of the versions ({', '.join(contract.versions) or 'none'})"
        for version in contract.accepted_versions
        if version not in contract.versions
    ]
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
        if ("decimal" if DECIMAL_TYPE.fullmatch(type_name) else type_name) not in _EVENT_TIME_TYPES[spec.form]:
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

