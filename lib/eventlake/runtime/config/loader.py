"""Reading config files: the files a file includes, ``--set key=value`` overrides, the text typed into
:class:`~eventlake.runtime.config.settings.Settings` (unknown keys and wrong types are errors naming the key),
checked, and local paths made absolute.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn

from eventlake.runtime.config.checks import check_settings
from eventlake.runtime.config.contracts import DeclaredContract
from eventlake.runtime.config.settings import Settings
from eventlake.runtime.config.values import ConfigError, parse_duration


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
    check_settings(settings)
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


def _is_local(path: str) -> bool:
    return "://" not in path and not path.startswith("file:")


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
