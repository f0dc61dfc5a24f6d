"""Typed configuration: one TOML file in conf/, read once, overridden with ``--set key=value``.

Every section is a frozen dataclass; unknown keys and values of the wrong type are errors that name
the key, so a typo in a config file stops a job at once instead of silently using a default.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any


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
    unit = match and match.group(2).lower()
    if unit not in _UNIT_SECONDS:
        raise ValueError(f"not a duration: {text!r} (write for example '10 minutes' or '30 seconds')")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[unit])


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
    fail_on_data_loss: bool = True
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractSettings:
    """The rules of the event contract that are configurable."""

    schema_versions: tuple[str, ...] = ("1",)
    max_record_bytes: int = 1_048_576
    max_event_time_ahead: timedelta = timedelta(minutes=5)
    min_event_time: str = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class SparkSettings:
    """How the SparkSession is built. ``master`` empty leaves it to spark-submit (clusters)."""

    master: str = "local[2]"
    app_name: str = "eventlake"
    jars_dir: str = "jars/spark"
    log_level: str = "WARN"
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
    ``trigger`` is ``availableNow`` (process the backlog and stop) or an interval like ``30 seconds``."""

    watermark: timedelta = timedelta(minutes=10)
    window: timedelta = timedelta(minutes=5)
    slide: timedelta | None = None
    trigger: str = "availableNow"


@dataclass(frozen=True)
class Settings:
    """The whole configuration of a run."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    contract: ContractSettings = field(default_factory=ContractSettings)
    spark: SparkSettings = field(default_factory=SparkSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)


def load_settings(path: str | Path, overrides: typing.Sequence[str] = ()) -> Settings:
    """Read a TOML config file, apply ``key=value`` overrides (dotted keys), return typed Settings.

    Relative local paths (tables, checkpoints, jars) are resolved against the current directory.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path} (the default is conf/local.toml)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path} cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    for override in overrides:
        _apply_override(raw, override)
    settings = _build(Settings, raw, "")
    _check(settings)
    return _with_absolute_paths(settings)


# Tables whose keys are free-form and may contain dots ("spark.sql.shuffle.partitions").
_FREE_FORM_TABLES = (("spark", "conf"), ("kafka", "options"))


def _apply_override(raw: dict[str, Any], override: str) -> None:
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set takes key=value, got {override!r}")
    parts = key.strip().split(".")
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


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"[{where}] must be a table of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"unknown config key {name!r} (known keys here: {', '.join(sorted(known))})")
    values = {}
    for name in known & set(data):
        key = f"{where}.{name}" if where else name
        values[name] = _convert(hints[name], data[name], key)
    return cls(**values)


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin in (typing.Union, types.UnionType):
        if value in ("", None):
            return None
        return _convert(next(a for a in args if a is not type(None)), value, key)
    try:
        if hint is timedelta:
            return parse_duration(value)
        if hint is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError(f"expected true or false, got {value!r}")
        if hint is int:
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ValueError(f"expected a whole number, got {value!r}")
            return int(value)
        if hint is str:
            if isinstance(value, (dict, list)):
                raise ValueError(f"expected text, got {value!r}")
            return str(value)
        if origin is tuple:
            items = value if isinstance(value, list) else [v for v in str(value).split(",") if v]
            return tuple(str(item) for item in items)
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError(f"expected a table, got {value!r}")
            return {str(k): _stringify(v) for k, v in value.items()}
    except ValueError as error:
        raise ConfigError(f"config key {key!r}: {error}") from None
    raise ConfigError(f"config key {key!r}: unsupported type {hint}")


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check(settings: Settings) -> None:
    analytics = settings.analytics
    if analytics.trigger != "availableNow":
        try:
            parse_duration(analytics.trigger)
        except ValueError:
            raise ConfigError(
                f"analytics.trigger must be 'availableNow' or an interval like '30 seconds', got {analytics.trigger!r}"
            ) from None
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
    return dataclasses.replace(settings, storage=storage, spark=spark)


def resolve_secret(value: str) -> str:
    """``env:NAME`` becomes the value of environment variable NAME (an error when unset); other text is kept."""
    if not value.startswith("env:"):
        return value
    name = value[4:]
    if name not in os.environ:
        raise ConfigError(f"environment variable {name} is not set (a config value refers to it as env:{name})")
    return os.environ[name]
