"""docs/configuration.md's table of settings gives the defaults of the settings classes, not a config file's values."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from eventlake.runtime.config import Settings, parse_duration

DOCS = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
_MISSING = object()


def documented_defaults(text: str) -> list[tuple[str, str]]:
    """(key, default as written) for each row of the settings table whose keys and defaults pair up.
    ``a.b.c``, ``.d`` names ``a.b.c`` and ``a.b.d``; a note in parentheses after a default (another file's
    value) is not the default."""
    pairs = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        keys = re.findall(r"`([^`]+)`", cells[0])
        parent = keys[0].rsplit(".", 1)[0]
        keys = [parent + key if key.startswith(".") else key for key in keys]
        written = re.sub(r"\(.*\)", "", cells[1]).strip()
        defaults = ["empty"] * len(keys) if written == "empty" else re.findall(r"`([^`]*)`|\bempty\b", written)
        defaults = [value or "empty" for value in defaults]  # findall gives "" for the bare word
        if len(defaults) == len(keys):
            pairs.extend(zip(keys, defaults, strict=True))
    return pairs


def default_of(key: str):
    value = Settings()
    for part in key.split("."):
        value = getattr(value, part, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def matches(written: str, default) -> bool:
    if default is None or default == "" or default == {} or default == ():
        return written in ("empty", "[]", "{}")
    if isinstance(default, bool):
        return written == str(default).lower()
    if isinstance(default, int):
        return written.replace(",", "") == str(default)
    if isinstance(default, timedelta):
        return parse_duration(written) == default
    if isinstance(default, tuple):
        return json.loads(written) == list(default)
    return written == str(default)


ROWS = documented_defaults(DOCS.read_text())


def test_the_table_is_read():
    keys = [key for key, _ in ROWS]
    assert len(keys) > 30
    assert {"contract.schema_versions", "etl.pii.hash", "retry.max_backoff"} <= set(keys)


@pytest.mark.parametrize(("key", "written"), ROWS, ids=[key for key, _ in ROWS])
def test_documented_default_is_the_settings_default(key, written):
    default = default_of(key)
    if key.startswith("spark.conf."):
        pytest.skip("Spark's own settings: their defaults are Spark's")
    assert default is not _MISSING, f"docs/configuration.md documents {key}, which no settings class has"
    assert matches(written, default), f"docs/configuration.md: {key} defaults to {written!r}, the code to {default!r}"


def test_a_wrong_default_is_caught():
    [(key, written)] = documented_defaults('| `contract.schema_versions` | `["1", "2"]` (`conf/x.toml`: `["1"]`) | x |')
    assert (key, written) == ("contract.schema_versions", '["1", "2"]')
    assert not matches(written, default_of(key))
