"""Typed configuration: one TOML file in conf/, read once, overridden with ``--set key=value``.

Every section is a frozen dataclass; unknown keys and values of the wrong type are errors that name
the key, so a typo in a config file stops a job at once instead of silently using a default.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message names the key and the fix."""


_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {
    **dict.fromkeys(("ms", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}


def parse_duration(text: str) -> timedelta:
    """Parse ``"10 minutes"``, ``"30s"``, ``"1 hour"`` (one number, one unit) into a timedelta."""
    match = _DURATION.match(str(text))
    if match is None or match.group(2).lower() not in _UNIT_SECONDS:
        raise ValueError(f"not a duration: {text!r} (write for example '10 minutes' or '30 seconds')")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])


def parse_utc_time(text: str, option: str) -> datetime:
    """An ISO-8601 time given as ``option`` on a command line (``2026-12-03T14:00:00Z``, ``2026-12-03 14:00``);
    one without an offset is UTC. A ValueError naming ``option`` and an example otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option}: not an ISO-8601 time: {text!r} (write for example 2026-01-31T12:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def spark_interval(duration: timedelta) -> str:
    """A timedelta as the interval string Spark's watermark, window and trigger APIs take."""
    milliseconds = round(duration.total_seconds() * 1000)
    if milliseconds % 1000:
        return f"{milliseconds} milliseconds"
    return f"{milliseconds // 1000} seconds"


@dataclass(frozen=True)
class KafkaSettings:
    """Where events come from. ``options`` go to Spark's Kafka source as they are (``kafka.*`` keys
    reach the Kafka client); a value written ``env:NAME`` is read from the environment variable NAME,
    so secrets never sit in a config file."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "events"
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int = 0
    min_offsets_per_trigger: int = 0
    max_trigger_delay: timedelta | None = None
    fail_on_data_loss: bool = True
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractSettings:
    """The rules of the event contract that are configurable: the schema versions accepted, the formats
    read (extractors, chosen per record by its content-type header; ``default_format`` when it has none),
    and the limits. An event time may be at most ``max_event_time_ahead`` after its record's Kafka timestamp
    and at most ``max_event_time_ahead_of_job`` after the job's clock (the micro-batch's time): the second
    bound holds when the Kafka timestamp is the producer's own clock (CreateTime) and that clock is wrong."""

    schema_versions: tuple[str, ...] = ("1",)
    extractors: tuple[str, ...] = ("json",)
    default_format: str = "json"
    max_record_bytes: int = 1_048_576
    max_event_time_ahead: timedelta = timedelta(minutes=5)
    max_event_time_ahead_of_job: timedelta = timedelta(minutes=5)
    min_event_time: str = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class SparkSettings:
    """How the SparkSession is built. ``master`` empty leaves it to ``spark-submit --master`` (local[*] without
    one), so one config serves a laptop and a cluster; a master set here wins over spark-submit's.
    ``prometheus`` turns on Spark's UI on ``ui_port`` with its Prometheus endpoints and the streaming
    query metrics."""

    master: str = ""
    app_name: str = "eventlake"
    jars_dir: str = "jars/spark"
    log_level: str = "WARN"
    prometheus: bool = False
    ui_port: int = 4040
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StorageSettings:
    """Where Delta tables and streaming checkpoints live (local paths or any Hadoop URI)."""

    tables_root: str = "data/tables"
    checkpoint_root: str = "data/checkpoints"

    def table_path(self, table: str) -> str:
        return _join(self.tables_root, table)

    def checkpoint_path(self, job: str, query: str) -> str:
        return _join(self.checkpoint_root, f"{job}/{query}")


@dataclass(frozen=True)
class AnalyticsSettings:
    """The windowed analytics job. ``slide`` empty means tumbling windows of ``window``;
    ``trigger`` is ``availableNow`` (process the backlog and stop) or an interval like ``30 seconds``;
    ``late_events``, ``max_files_per_trigger`` and ``idle_timeout`` as in :class:`GoldSettings`."""

    watermark: timedelta = timedelta(minutes=10)
    window: timedelta = timedelta(minutes=5)
    slide: timedelta | None = None
    trigger: str = "availableNow"
    late_events: bool = False
    max_files_per_trigger: int = 0
    idle_timeout: timedelta | None = None


@dataclass(frozen=True)
class EnrichSettings:
    """The dimension table the ETL's ``enrich`` stage joins: a Delta table created from ``dimension_csv``
    when it does not exist yet, joined on ``key``. ``on_miss``: ``keep`` the event with empty dimension
    columns, or send it to ``dead_letter``."""

    dimension_csv: str = "conf/dimensions/pages.csv"
    table: str = "dim_pages"
    key: str = "page"
    on_miss: str = "keep"


@dataclass(frozen=True)
class PiiSettings:
    """Personal data in silver: columns replaced by a salted SHA-256 (``hash``) or left out (``drop``).
    ``salt`` is best given as ``env:NAME``."""

    hash: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    salt: str = ""


@dataclass(frozen=True)
class RetrySettings:
    """Retries of a failed table write, the same for every table of every job: ``max_attempts`` in all,
    waiting ``initial_backoff`` and then twice as long each time, at most ``max_backoff``. Only failures that
    may pass are retried (see :mod:`eventlake.runtime.retry`)."""

    max_attempts: int = 5
    initial_backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class Expectation:
    """A row rule of ``[[etl.expectations]]`` or ``[[gold.expectations]]``: ``rule`` is a Spark SQL condition
    over the rows' columns that a good row meets (NULL counts as not met); a valid row that fails it is kept
    and counted (``action = "warn"``), counted and left out (``drop``), sent to the dead letters with code
    ``EXPECTATION_FAILED`` (``quarantine``), or stops the query (``fail``)."""

    name: str
    rule: str
    action: str = "warn"


@dataclass(frozen=True)
class EtlSource:
    """The topic an ETL flow reads (empty: ``kafka.topic``) and the ``contract`` it reads it with: ``events``
    (the built-in event contract, with ``[contract]``) or the name of a ``[contracts.<name>]`` declaration."""

    topic: str = ""
    contract: str = "events"


@dataclass(frozen=True)
class EtlSettings:
    """A streaming ETL flow. ``name`` names the job, its checkpoints and its tables: ``etl`` (the built-in
    flow: ``bronze_events``, ``silver_events``) or any other (``<name>_bronze``, ``<name>_silver``), and
    ``source`` its topic and contract. Then the transform stages in order, the SQL ``columns`` added after them
    (name -> expression over the rows' columns), the ``data`` fields promoted to typed columns
    (name -> Spark type), and its enrichment and PII rules. (The formats it reads are the contract's
    ``extractors``.) ``silver_dedup_days``: how many event days apart two copies of one ``event_id`` may be
    and still be kept once in silver; each silver MERGE reads that many days of silver either side of the
    batch's event days.

    ``silver_dedup``: how silver keeps each ``event_id`` once. ``merge`` (an insert-only MERGE against
    ``silver_dedup_days`` of silver, in the one ingest query) or ``state`` (a second query reading the topic,
    ``dropDuplicatesWithinWatermark`` on the event id with the ids of the last ``silver_dedup_within`` of the
    job's clock in its state, and an append: a copy arriving later than that after the first is kept again)."""

    name: str = "etl"
    source: EtlSource = field(default_factory=EtlSource)
    trigger: str = "availableNow"
    transforms: tuple[str, ...] = ("normalise", "promote_fields", "enrich", "mask_pii")
    columns: dict[str, str] = field(default_factory=dict)
    promote: dict[str, str] = field(default_factory=dict)
    enrich: EnrichSettings = field(default_factory=EnrichSettings)
    pii: PiiSettings = field(default_factory=PiiSettings)
    silver_dedup_days: int = 1
    silver_dedup: str = "merge"
    silver_dedup_within: timedelta = timedelta(hours=1)
    expectations: tuple[Expectation, ...] = ()


@dataclass(frozen=True)
class AlertRule:
    """One alert rule: ``when`` is a Spark SQL predicate over the contract's columns (``event_type``,
    ``user_id``, ``data`` as a VARIANT...); each event it holds for becomes an alert named ``name``."""

    name: str
    when: str
    severity: str = "medium"


@dataclass(frozen=True)
class AlertsSettings:
    """The alerts job. ``trigger``: ``realTime`` (Spark's Real-Time Mode: each record as it arrives, progress
    checkpointed every ``checkpoint_interval``), an interval like ``1 second`` (micro-batches), or
    ``availableNow``. Alerts go to the Kafka topic ``topic``, invalid records to ``dead_letters_topic``; a
    micro-batch query (``copy_trigger``) copies both into the Delta tables ``alerts`` and ``alerts_dead_letters``."""

    trigger: str = "realTime"
    checkpoint_interval: timedelta = timedelta(minutes=1)
    topic: str = "alerts"
    dead_letters_topic: str = "alerts-dead-letters"
    copy_trigger: str = "10 seconds"
    rules: tuple[AlertRule, ...] = ()


@dataclass(frozen=True)
class ContractField:
    """One field of a declared contract: its type (``string``, ``long``, ``double``, ``boolean``,
    ``decimal(p,s)``, ``timestamp``, ``object`` or ``variant``), whether a record must have it, and where the
    record holds it (``path``: a dotted name such as ``data.user_id``; the field's own name when empty)."""

    type: str = "string"
    required: bool = True
    path: str = ""


@dataclass(frozen=True)
class EventTimeSpec:
    """Which field holds a declared contract's event time, and in what form: ``iso8601`` (with an offset),
    ``epoch_seconds`` or ``epoch_millis`` (a number or a string of digits), or ``pattern`` (a Spark datetime
    ``pattern`` read in ``time_zone``)."""

    field: str = "timestamp"
    form: str = "iso8601"
    pattern: str = ""
    time_zone: str = "UTC"


@dataclass(frozen=True)
class ContractVersionSpec:
    """What one version of a declared contract changes: ``rename`` (field name -> the name records of this
    version use for it) and ``add`` (fields only this version has)."""

    rename: dict[str, str] = field(default_factory=dict)
    add: dict[str, ContractField] = field(default_factory=dict)


@dataclass(frozen=True)
class DeclaredContract:
    """A topic's records declared in config (``[contracts.<name>]``): the ``format`` (``json``, ``kv`` or
    ``csv`` with ``csv_columns`` in order, split by ``csv_delimiter``), or several ``formats`` chosen per
    record by its ``content-type`` header (``format`` for a record without one), the ``fields``, the
    ``id_field`` that de-duplicates (empty: none), the event time and its bounds, a size limit, and the
    versions (``version_field`` names the field that holds a record's version; ``versions`` what each
    version renames or adds; ``accepted_versions`` those read, empty: all). Records that break it go to the
    dead letters with their error code. ``eventlake.pipeline.contract``'s ``events.toml`` is the built-in
    one."""

    format: str = "json"
    formats: tuple[str, ...] = ()
    fields: dict[str, ContractField] = field(default_factory=dict)
    id_field: str = ""
    event_time: EventTimeSpec = field(default_factory=EventTimeSpec)
    csv_columns: tuple[str, ...] = ()
    csv_delimiter: str = ","
    max_record_bytes: int = 1_048_576
    max_event_time_ahead_of_job: timedelta = timedelta(minutes=5)
    max_event_time_ahead: timedelta | None = None  # after the record's Kafka timestamp; None: not checked
    min_event_time: str = ""  # an ISO-8601 time; empty: not checked
    version_field: str = ""
    versions: dict[str, ContractVersionSpec] = field(default_factory=dict)
    accepted_versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class GoldSource:
    """Where a gold job's events come from: a Kafka ``topic`` (empty: ``kafka.topic``) read with ``contract``,
    the name of a ``[contracts.<name>]`` declaration or ``events`` for the built-in event contract; or a Delta
    ``table`` under ``storage.tables_root`` streamed as it grows (``silver_events``, written by the ETL job).
    ``columns``: the contract's columns kept in the job's events table, in order (empty: all of them); the
    Kafka coordinates are always kept."""

    topic: str = ""
    contract: str = "events"
    table: str = ""
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class GoldJoin:
    """A dimension joined to each event (a stream-static join): a CSV file with a header (``csv``, every
    column text) or a Delta table (``delta``), joined ``on`` columns both have, ``inner`` or ``left``."""

    name: str
    on: tuple[str, ...]
    csv: str = ""
    delta: str = ""
    how: str = "inner"


@dataclass(frozen=True)
class GoldWindow:
    """The event-time window: ``tumbling`` (``size``), ``sliding`` (``size`` every ``slide``) or ``session``
    (closed after ``gap`` without events of its group; ``gap_expr``, a SQL expression giving an interval,
    sets the gap per row instead)."""

    kind: str = "tumbling"
    size: timedelta | None = None
    slide: timedelta | None = None
    gap: timedelta | None = None
    gap_expr: str = ""


@dataclass(frozen=True)
class GoldMeasure:
    """One column of a gold table: ``fn`` (``count``, ``sum``, ``min``, ``max``, ``avg``, ``count_distinct``,
    ``approx_count_distinct``, ``first``, ``last`` (by event time), ``any``) of the SQL expression ``expr``
    (``count`` without one counts events)."""

    name: str
    fn: str
    expr: str = ""


@dataclass(frozen=True)
class GoldSettings:
    """A gold job of config (``jobs/gold.py``): events of ``source``, de-duplicated on the contract's id
    field, with ``columns`` added (name -> SQL), ``joins``, ``filter`` (SQL), grouped by ``group_by`` and
    ``window``, with ``measures``, into the Delta table ``output``; or ``sql``, a Spark SQL statement over the
    events as the view ``events``. ``name`` names the job (its tables and checkpoints). ``late_events``: keep
    the events the watermark drops in ``<name>_late_events``; ``max_files_per_trigger``: files of the events
    table a windows batch reads at most (0: Delta's default, 1000); ``idle_timeout``: when the topic has been
    quiet this long, close the open windows (None: wait for events, as Spark does)."""

    name: str = ""
    output: str = ""
    source: GoldSource = field(default_factory=GoldSource)
    watermark: timedelta = timedelta(minutes=10)
    columns: dict[str, str] = field(default_factory=dict)
    joins: tuple[GoldJoin, ...] = ()
    filter: str = ""
    window: GoldWindow = field(default_factory=GoldWindow)
    group_by: tuple[str, ...] = ()
    measures: tuple[GoldMeasure, ...] = ()
    sql: str = ""
    trigger: str = "availableNow"
    late_events: bool = False
    max_files_per_trigger: int = 0
    idle_timeout: timedelta | None = None
    expectations: tuple[Expectation, ...] = ()


@dataclass(frozen=True)
class Settings:
    """The whole configuration of a run."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    contract: ContractSettings = field(default_factory=ContractSettings)
    spark: SparkSettings = field(default_factory=SparkSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    etl: EtlSettings = field(default_factory=EtlSettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    contracts: dict[str, DeclaredContract] = field(default_factory=dict)
    gold: GoldSettings = field(default_factory=GoldSettings)


def load_settings(path: str | Path, overrides: typing.Sequence[str] = ()) -> Settings:
    """Read a TOML config file, apply ``key=value`` overrides (dotted keys), return typed Settings.

    Relative local paths (tables, checkpoints, jars) are resolved against the current directory.
    """
    raw = _read_with_includes(Path(path), ())
    _move_old_retry_section(raw, Path(path))
    for override in overrides:
        _apply_override(raw, override)
    try:
        settings = _CONVERTER.structure(raw, Settings)
    except ClassValidationError as error:
        raise ConfigError(_describe(error)) from None
    _check(settings)
    return _with_absolute_paths(settings)


def declared_contracts(toml_text: str) -> dict[str, DeclaredContract]:
    """The ``[contracts.<name>]`` declarations of a TOML text, typed.

    Example::

        declared_contracts(Path("conf/contracts/ysb_ad_event.toml").read_text())["ysb_ad_event"]
    """
    try:
        raw = tomllib.loads(toml_text)
        return _CONVERTER.structure(raw.get("contracts", {}), dict[str, DeclaredContract])
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"contracts are not valid TOML: {error}") from None
    except ClassValidationError as error:
        raise ConfigError(_describe(error)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path} (the default is conf/local.toml)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path} cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None


def _read_with_includes(path: Path, including: tuple[Path, ...]) -> dict[str, Any]:
    """The TOML of ``path`` over the files its top-level ``include`` lists (paths relative to it), in order:
    a gold job's file takes the storage, Kafka and Spark settings of ``conf/local.toml`` and its contracts
    from files of their own, and sets only what differs."""
    raw = _read_toml(path)
    includes = raw.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(item, str) for item in includes):
        raise ConfigError(f"{path}: include must be a list of config files, got {includes!r}")
    merged: dict[str, Any] = {}
    for name in includes:
        included = (path.parent / name).resolve()
        if included in including or included == path.resolve():
            raise ConfigError(f"{path}: include {name!r} includes itself")
        _merge_into(merged, _read_with_includes(included, (*including, path.resolve())))
    _merge_into(merged, raw)
    return merged


def _merge_into(target: dict[str, Any], source: dict[str, Any]) -> None:
    """Tables merge key by key; any other value (arrays too) replaces the one before."""
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = value


# Tables whose keys are free-form and may contain dots ("spark.sql.shuffle.partitions").
_FREE_FORM_TABLES = (
    ("spark", "conf"), ("kafka", "options"), ("etl", "promote"), ("etl", "columns"), ("gold", "columns")
)


def _move_old_retry_section(raw: dict[str, Any], path: Path) -> None:
    """[etl.retry] became [retry] when its policy came to cover the table writes of every job: a file written
    before is read as it was meant."""
    etl = raw.get("etl")
    if not isinstance(etl, dict) or "retry" not in etl:
        return
    if "retry" in raw:
        raise ConfigError(
            f"config file {path} has both [etl.retry] and [retry]: [retry] is the retry policy of every job now "
            "(the old [etl.retry]); keep that one"
        )
    raw["retry"] = etl.pop("retry")


def _apply_override(raw: dict[str, Any], override: str) -> None:
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set takes key=value, got {override!r}")
    parts = key.strip().split(".")
    if parts[:2] == ["etl", "retry"]:  # the old name of [retry]
        parts = parts[1:]
    for table in _FREE_FORM_TABLES:
        if tuple(parts[: len(table)]) == table and len(parts) > len(table):
            parts = [*table, ".".join(parts[len(table):])]
    *sections, leaf = parts
    target = raw
    for section in sections:
        target = target.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"--set {key}: {section} is not a section")
    target[leaf] = _parse_value(text.strip())


def _parse_value(text: str) -> Any:
    """A TOML value when the text is one (numbers, booleans, arrays, quoted strings), else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


class _NotATable(ValueError):
    """A section (``[etl.enrich]``) given a plain value instead of a table of keys."""


# Each hook accepts what TOML writes for the type and, since a ``--set`` value that is not valid TOML
# stays text, the same value written as text ("500", "false", "1,2").
def _text(value: object, _: type) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected text, got {value!r}")
    return str(value)


def _whole_number(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(value)


def _true_or_false(value: object, _: type) -> bool:
    if str(value).lower() not in ("true", "false"):  # a TOML boolean or the same written as text
        raise ValueError(f"expected true or false, got {value!r}")
    return str(value).lower() == "true"


def _names(value: object, _: type) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [item for item in str(value).split(",") if item]
    return tuple(str(item) for item in items)


def _free_form_table(value: object, _: type) -> dict[str, str]:
    """Free-form tables are passed on to Spark or Kafka as text, where booleans are written lower-case."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a table, got {value!r}")
    return {str(key): str(item).lower() if isinstance(item, bool) else str(item) for key, item in value.items()}


def _make_converter() -> cattrs.Converter:
    """A converter from parsed TOML to the settings dataclasses; unknown keys are errors."""
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for cls, hook in ((str, _text), (int, _whole_number), (bool, _true_or_false)):
        converter.register_structure_hook(cls, hook)
    converter.register_structure_hook(timedelta, lambda value, _: parse_duration(value))
    # An empty string is how a TOML file leaves an optional duration unset (TOML has no null).
    converter.register_structure_hook(
        timedelta | None, lambda value, _: None if value in ("", None) else parse_duration(value)
    )
    # Generic aliases are not classes, which register_structure_hook takes: these two are matched by a predicate.
    converter.register_structure_hook_func(lambda hint: hint == tuple[str, ...], _names)
    converter.register_structure_hook_func(lambda hint: hint == dict[str, str], _free_form_table)

    def section_hook(section: type[Any]) -> Callable[[object, type], object]:
        structure_keys = make_dict_structure_fn(section, converter)

        def structure_section(value: object, _: type) -> object:
            if not isinstance(value, dict):  # cattrs would read a string's characters as its keys
                raise _NotATable(f"must be a table of keys, got {value!r}")
            return structure_keys(value, section)

        return structure_section

    converter.register_structure_hook_factory(dataclasses.is_dataclass, section_hook)
    return converter


_CONVERTER = _make_converter()


def _describe(error: Exception) -> str:
    """The first problem in cattrs' tree of errors, as a sentence naming its dotted config key."""
    key = ""
    while isinstance(error, ClassValidationError):
        with_key, without_key = error.group_exceptions()
        if without_key:  # unknown keys (the only errors without one) first: a typo explains the rest
            error = without_key[0]
        else:
            error, note = with_key[0]
            key = f"{key}.{note.name}" if key else note.name
    if isinstance(error, ForbiddenExtraKeysError):
        unknown = sorted(error.extra_fields)[0]
        known = ", ".join(sorted(field.name for field in dataclasses.fields(error.cl)))
        return f"unknown config key {f'{key}.{unknown}' if key else unknown!r} (known keys here: {known})"
    if isinstance(error, _NotATable):
        return f"[{key}] {error}"
    return f"config key {key!r}: {error}"


# The contract versions and formats the code can read (eventlake.pipeline.contract); kept here so a config naming
# another one fails at load time, before any Spark work.
KNOWN_SCHEMA_VERSIONS = ("1", "2")
KNOWN_EXTRACTORS = ("json", "kv")


def check_trigger(key: str, trigger: str, named: typing.Sequence[str] = ("availableNow",)) -> None:
    if trigger not in named:
        try:
            parse_duration(trigger)
        except ValueError:
            choices = " or ".join(f"'{name}'" for name in named)
            raise ConfigError(f"{key} must be {choices} or an interval like '30 seconds', got {trigger!r}") from None


def _check_choices(key: str, values: typing.Iterable[str], known: typing.Sequence[str]) -> None:
    for value in values:
        if value not in known:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(known)}")


SILVER_DEDUP_MODES = ("merge", "state")


EXPECTATION_ACTIONS = ("warn", "drop", "quarantine", "fail")


def check_expectations(key: str, expectations: typing.Sequence[Expectation]) -> None:
    """Each expectation named once (letters, digits, ``_``), with a rule and a known action."""
    names = [expectation.name for expectation in expectations]
    for expectation in expectations:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", expectation.name):
            raise ConfigError(f"{key}: the name {expectation.name!r} must be a letter, then letters, digits or '_'")
        if names.count(expectation.name) > 1:
            raise ConfigError(f"{key}: two expectations are named {expectation.name!r}")
        if not expectation.rule.strip():
            raise ConfigError(f"{key}.{expectation.name}.rule is empty")
        _check_choices(f"{key}.{expectation.name}.action", [expectation.action], EXPECTATION_ACTIONS)


def _check_etl(etl: EtlSettings) -> None:
    check_trigger("etl.trigger", etl.trigger)
    check_expectations("etl.expectations", etl.expectations)
    if etl.expectations and etl.silver_dedup != "merge":
        raise ConfigError("etl.expectations run in the ingest query of etl.silver_dedup = 'merge', not with 'state'")
    _check_choices("etl.enrich.on_miss", [etl.enrich.on_miss], ("keep", "dead_letter"))
    if len(set(etl.transforms)) != len(etl.transforms):
        raise ConfigError(f"etl.transforms names a stage twice: {', '.join(etl.transforms)}")
    if etl.silver_dedup_days < 0:
        raise ConfigError("etl.silver_dedup_days must be 0 (the same event day only) or more")
    _check_choices("etl.silver_dedup", [etl.silver_dedup], SILVER_DEDUP_MODES)
    if etl.silver_dedup_within <= timedelta(0):
        raise ConfigError("etl.silver_dedup_within must be a positive duration, e.g. '1 hour'")


ALERT_SEVERITIES = ("low", "medium", "high", "critical")
# Spark's smallest Real-Time Mode batch (spark.sql.streaming.realTimeMode.minBatchDuration).
MIN_REAL_TIME_INTERVAL = timedelta(seconds=5)


def _check_alerts(alerts: AlertsSettings) -> None:
    check_trigger("alerts.trigger", alerts.trigger, ("realTime", "availableNow"))
    if alerts.trigger == "realTime" and alerts.checkpoint_interval < MIN_REAL_TIME_INTERVAL:
        raise ConfigError("alerts.checkpoint_interval must be at least 5 seconds (Spark's smallest Real-Time batch)")
    check_trigger("alerts.copy_trigger", alerts.copy_trigger)
    if not alerts.topic or not alerts.dead_letters_topic or alerts.topic == alerts.dead_letters_topic:
        raise ConfigError("alerts.topic and alerts.dead_letters_topic must be two different topic names")
    names = [rule.name for rule in alerts.rules]
    for rule in alerts.rules:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", rule.name):
            raise ConfigError(f"alerts.rules: the name {rule.name!r} must be letters, digits, '_', '.' or '-'")
        if names.count(rule.name) > 1:
            raise ConfigError(f"alerts.rules: two rules are named {rule.name!r}")
        if not rule.when.strip():
            raise ConfigError(f"alerts.rules.{rule.name}.when is empty")
        _check_choices(f"alerts.rules.{rule.name}.severity", [rule.severity], ALERT_SEVERITIES)


def _check(settings: Settings) -> None:
    analytics = settings.analytics
    check_trigger("analytics.trigger", analytics.trigger)
    _check_etl(settings.etl)
    _check_alerts(settings.alerts)
    check_expectations("gold.expectations", settings.gold.expectations)
    if settings.retry.max_attempts < 1:
        raise ConfigError("retry.max_attempts must be at least 1")
    kafka = settings.kafka
    for key in ("max_offsets_per_trigger", "min_offsets_per_trigger"):
        if getattr(kafka, key) < 0:
            raise ConfigError(f"kafka.{key} must be 0 (no limit) or more")
    if kafka.max_offsets_per_trigger and kafka.min_offsets_per_trigger > kafka.max_offsets_per_trigger:
        raise ConfigError("kafka.min_offsets_per_trigger must not be above kafka.max_offsets_per_trigger")
    contract = settings.contract
    _check_choices("contract.schema_versions", contract.schema_versions, KNOWN_SCHEMA_VERSIONS)
    if not contract.extractors:
        raise ConfigError("contract.extractors must list at least one format")
    _check_choices("contract.extractors", contract.extractors, KNOWN_EXTRACTORS)
    _check_choices("contract.default_format", [contract.default_format], contract.extractors)
    if analytics.slide is not None and analytics.slide > analytics.window:
        raise ConfigError("analytics.slide must not be longer than analytics.window")
    if not settings.contract.schema_versions:
        raise ConfigError("contract.schema_versions must list at least one version")
    if settings.contract.max_record_bytes <= 0:
        raise ConfigError("contract.max_record_bytes must be positive")


def _is_local(path: str) -> bool:
    return "://" not in path and not path.startswith("file:")


def _join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve()) if path and _is_local(path) else path


def _with_absolute_paths(settings: Settings) -> Settings:
    storage = dataclasses.replace(
        settings.storage,
        tables_root=_absolute(settings.storage.tables_root),
        checkpoint_root=_absolute(settings.storage.checkpoint_root),
    )
    spark = dataclasses.replace(settings.spark, jars_dir=_absolute(settings.spark.jars_dir))
    enrich = dataclasses.replace(settings.etl.enrich, dimension_csv=_absolute(settings.etl.enrich.dimension_csv))
    etl = dataclasses.replace(settings.etl, enrich=enrich)
    joins = tuple(
        dataclasses.replace(join, csv=_absolute(join.csv), delta=_absolute(join.delta)) for join in settings.gold.joins
    )
    gold = dataclasses.replace(settings.gold, joins=joins)
    return dataclasses.replace(settings, storage=storage, spark=spark, etl=etl, gold=gold)


def resolve_secret(value: str) -> str:
    """``env:NAME`` becomes the value of environment variable NAME (an error when unset); other text is kept."""
    if not value.startswith("env:"):
        return value
    name = value[4:]
    if name not in os.environ:
        raise ConfigError(f"environment variable {name} is not set (a config value refers to it as env:{name})")
    return os.environ[name]
