"""Values written in config text: durations, UTC times, the Spark intervals they become, ``env:`` secrets;
and :class:`ConfigError`, what every config mistake raises.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message names the key and the fix."""

    @classmethod
    def first_of(cls, problems: list[str]) -> ConfigError:
        """The error of the first of ``problems``, saying how many more there are.

        Example::

            raise ConfigError.first_of(["gold.name: ...", "gold.output: ..."])  # "gold.name: ... (and 1 more)"
        """
        return cls(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


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


def resolve_secret(value: str) -> str:
    """``env:NAME`` becomes the value of environment variable NAME (an error when unset); other text is kept."""
    if not value.startswith("env:"):
        return value
    name = value[4:]
    if name not in os.environ:
        raise ConfigError(f"environment variable {name} is not set (a config value refers to it as env:{name})")
    return os.environ[name]
