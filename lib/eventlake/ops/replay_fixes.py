"""The named fixes ``scripts/replay.sh --fix NAME`` can apply to a dead letter's raw value before sending it again.

A fix takes the record's value (bytes) and returns the repaired value, or raises :class:`CannotFix` when the
record is not broken in the way it repairs: that record is then left as a dead letter, unsent and unmarked.
Each fix names the error codes of the contract (:class:`eventlake.pipeline.contract.ErrorCode`) it is meant
for; the replay selects those codes when ``--error-code`` is not given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The contract's ISO-8601 time without its UTC offset (contract.ISO_8601_WITH_OFFSET less the offset).
_TIME_WITHOUT_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?$")


class CannotFix(ValueError):
    """The record is not broken in the way the fix repairs; it stays a dead letter."""


@dataclass(frozen=True)
class Fix:
    """A named repair of a raw value, for the dead letters of ``error_codes``."""

    name: str
    error_codes: tuple[str, ...]
    summary: str
    apply: Callable[[bytes | None], bytes]


FIXES: dict[str, Fix] = {}


def _fix(name: str, error_codes: tuple[str, ...], summary: str) -> Callable[[Callable[[bytes | None], bytes]], Fix]:
    def register(apply: Callable[[bytes | None], bytes]) -> Fix:
        FIXES[name] = Fix(name, error_codes, summary, apply)
        return FIXES[name]

    return register


def fix_named(name: str) -> Fix:
    """The fix called ``name``; a ValueError naming the known fixes when there is none."""
    if name not in FIXES:
        raise ValueError(f"unknown fix '{name}': the fixes are {', '.join(sorted(FIXES))}")
    return FIXES[name]


def _object(value: bytes | None) -> dict[str, Any]:
    """The value as a JSON object, or CannotFix: a fix of fields only repairs JSON objects."""
    try:
        document = json.loads((value or b"").decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CannotFix("the value is not JSON") from None
    if not isinstance(document, dict):
        raise CannotFix("the value is not a JSON object")
    return document


def _encode(document: dict[str, Any]) -> bytes:
    # The producer's encoding (eventlake.local.producer): compact, UTF-8, field order kept.
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@_fix("fill_schema_version", ("MISSING_FIELD",), "add schema_version \"1\" to an event that has none")
def fill_schema_version(value: bytes | None) -> bytes:
    """An event without ``schema_version`` gets ``"1"`` (inserted first, as the contract lists it)."""
    document = _object(value)
    if "schema_version" in document:
        raise CannotFix("the event has a schema_version")
    return _encode({"schema_version": "1", **document})


@_fix("timestamp_as_utc", ("BAD_TIMESTAMP",), "read a timestamp without a UTC offset as UTC (append Z)")
def timestamp_as_utc(value: bytes | None) -> bytes:
    """``"2026-01-31T12:00:00"`` becomes ``"2026-01-31T12:00:00Z"``; any other timestamp is left a dead letter."""
    document = _object(value)
    timestamp = document.get("timestamp")
    if not isinstance(timestamp, str) or not _TIME_WITHOUT_OFFSET.match(timestamp):
        raise CannotFix("the timestamp is not an ISO-8601 time without an offset")
    return _encode({**document, "timestamp": f"{timestamp}Z"})


@_fix("timestamp_from_epoch_millis", ("WRONG_TYPE",), "turn a numeric timestamp (epoch milliseconds) into ISO-8601")
def timestamp_from_epoch_millis(value: bytes | None) -> bytes:
    """A timestamp sent as a JSON number of milliseconds since 1970 becomes ISO-8601 text in UTC with ``Z``."""
    document = _object(value)
    timestamp = document.get("timestamp")
    # bool is an int in Python; a JSON true is no time.
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        raise CannotFix("the timestamp is not a number")
    try:
        moment = datetime.fromtimestamp(timestamp / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise CannotFix(f"the timestamp {timestamp} is out of range") from None
    text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return _encode({**document, "timestamp": text})
