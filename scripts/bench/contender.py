"""What every Python benchmark contender shares: its common options, its topic check and its exit protocol.

A contender is a script run by ``throughput.py`` with ``--bootstrap-servers --topic --group --expected
--idle-timeout`` (and options of its own). The last stdout line is one JSON object; exit 0 on success,
2 with one stderr line ``<contender>: <error>`` on errors.

Only the standard library is imported here: the harness measures each contender's peak memory, so a
contender must not load a Kafka client it does not use.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Collection
from typing import Any


class SetupError(Exception):
    """The environment is not usable (broker unreachable, topic missing, ...)."""


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options the harness passes to every contender."""
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True, help="consumer group id (a fresh one per run)")
    parser.add_argument("--expected", type=int, default=0, help="records on the topic (0: stop on idle only)")
    parser.add_argument("--idle-timeout", type=float, default=30.0, help="seconds without a record before stopping")


def require_topic(
    topic: str,
    list_topics: Callable[[], Collection[str]],
    bootstrap_servers: str,
    unreachable: type[Exception] | tuple[type[Exception], ...] = (),
) -> None:
    """Raise ``SetupError`` unless ``topic`` is among the names ``list_topics`` returns.

    ``list_topics`` should ask for the metadata of all topics: asking for a single missing topic may
    create it. An ``unreachable`` error it raises becomes a ``SetupError`` naming the broker.
    """
    try:
        topics = list_topics()
    except unreachable as error:
        raise SetupError(f"Kafka broker not reachable at {bootstrap_servers}: {error.args[0]}") from None
    if topic not in topics:
        raise SetupError(f"topic '{topic}' does not exist at {bootstrap_servers}; create and fill it first")


def run_contender(
    name: str,
    run: Callable[[argparse.Namespace], dict[str, Any]],
    args: argparse.Namespace,
    errors: tuple[type[Exception], ...] = (),
) -> int:
    """Run the contender and print its result; the exit code: 0, or 2 after one stderr line on errors.

    ``errors`` are the client library's own errors, reported like a ``SetupError``.
    """
    try:
        result = run(args)
    except (SetupError, *errors) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
