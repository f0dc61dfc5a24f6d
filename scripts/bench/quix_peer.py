"""Benchmark contender "quix_peer": the eventlake windowed analytics as a quixstreams 3 application.

Measures what a Python stream-processing library costs for the same work as the Spark job: per
5-minute tumbling event-time window (aligned to the epoch) and event type, ``event_count`` and exact
``distinct_users``, after dropping duplicate event_ids, with a 10-minute watermark (``--watermark-minutes``).

Built the way quixstreams intends such a job, with nothing hand-rolled that the library provides:
- the input topic's value deserializer is the contract-v1 check (one JSON parse per record; a record
  that is not an event becomes ``None`` and is counted as invalid) and a timestamp extractor makes the
  event's own ``timestamp`` the record time;
- duplicates are dropped with per-key RocksDB state (records are keyed by user and a duplicate repeats
  key and value, so it meets its original in the same key's state); an id is kept for the watermark
  delay of event time (``ttl=``), like Spark's dropDuplicatesWithinWatermark;
- ``group_by`` re-keys by event type through a repartition topic; a tumbling window with the watermark
  delay as grace period aggregates ``Count`` and a distinct-user list; ``.final()`` emits a window once,
  when the latest event time of its key passes the window's end plus the grace period;
- ``processing_guarantee="exactly-once"``: transactions (the local KRaft broker supports them) commit
  the repartitioned records and the state changelogs with the input offsets. ``--guarantee
  at-least-once`` runs the same pipeline without them.

quixstreams does not emit windows still open when the input ends (nor does the Spark job in
availableNow mode). So that all contenders report the same totals, ``windows`` and ``events_counted``
include them, counted as the window operator accepts each event (``after_update``);
``open_windows`` and ``events_in_open_windows`` say how much of that was still open. Lateness differs
from Spark's: windows close per key (event type), so an event is late when its window ended more than
the watermark delay before the latest event of its type, where Spark compares with the latest event
of the whole stream, and only between micro-batches. On a backlog the consumer reads the topic largely
partition after partition, so event time jumps back at each switch and, with the 10-minute watermark,
most records of the later partitions are late; a watermark longer than the topic's event-time span
makes every event count, for a comparison of equal work.

Stops after ``--expected`` input records have been consumed and every record they sent through the
repartition topic has been windowed, or after ``--idle-timeout`` seconds without a record. The state
directory (made under ``--state-dir``) and the application's internal topics are deleted at the end.
The last stdout line is one JSON object; exit 0 on success, 2 with one stderr line on errors.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from contender import add_common_arguments, require_topic, run_contender
from quixstreams import Application, State, message_context
from quixstreams.dataframe.windows.aggregations import Aggregator, Count
from quixstreams.models import TimestampType
from quixstreams.models.serializers import Deserializer, SerializationContext

CONTENDER = "quix_peer"
WINDOW = timedelta(minutes=5)
PROGRESS_EVERY_SECONDS = 10.0
KNOWN_SCHEMA_VERSIONS = frozenset({"1"})
REQUIRED_TEXT_FIELDS = ("event_id", "source", "schema_version", "type")


def parse_event(raw: bytes) -> dict[str, Any] | None:
    """A contract-v1 event as ``{event_id, type, user_id, time_ms}``, or ``None`` if the value is not one."""
    try:
        event = json.loads(raw.decode("utf-8"))
        if not isinstance(event, dict):
            return None
        if not all(isinstance(event.get(field), str) for field in REQUIRED_TEXT_FIELDS):
            return None
        data, text = event.get("data"), event.get("timestamp")
        if not event["event_id"] or event["schema_version"] not in KNOWN_SCHEMA_VERSIONS:
            return None
        if not isinstance(data, dict) or not isinstance(text, str):
            return None
        moment = datetime.fromisoformat(text)
    except (UnicodeDecodeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return {
        "event_id": event["event_id"],
        "type": event["type"],
        "user_id": data.get("user_id"),
        "time_ms": int(moment.timestamp() * 1000),
    }


class Totals:
    """What the pipeline saw, counted at each stage (all stages run in this one process)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.records = 0
        self.bytes = 0
        self.invalid = 0
        self.duplicates_dropped = 0
        self.repartitioned = 0
        self.windowed = 0
        self.late_dropped = 0
        self.accepted = 0
        self.window_keys: set[tuple[str, int]] = set()
        self.closed_windows = 0
        self.events_in_closed_windows = 0
        self.first_record_at = 0.0
        self.last_record_at = 0.0
        self.last_report_at = 0.0

    def input_done(self) -> bool:
        return bool(self.expected) and self.records >= self.expected and self.windowed >= self.repartitioned

    def report(self) -> None:
        if self.last_record_at - self.last_report_at >= PROGRESS_EVERY_SECONDS:
            rate = self.records / (self.last_record_at - self.first_record_at)
            closed = self.closed_windows
            print(f"[{CONTENDER}] {self.records} records, {rate:,.0f}/s, {closed} windows closed", file=sys.stderr)
            self.last_report_at = self.last_record_at


class EventDeserializer(Deserializer):
    """The contract check, done once per input record while the consumer deserializes it."""

    def __call__(self, value: bytes, ctx: SerializationContext) -> dict[str, Any] | None:
        return parse_event(value)


def event_time(value: Any, headers: Any, timestamp: int, timestamp_type: TimestampType) -> int:
    # An invalid record keeps its Kafka timestamp; it is filtered out before any window sees it.
    return value["time_ms"] if value is not None else timestamp


class DistinctUsers(Aggregator):
    """Exact distinct users: the window keeps the user ids themselves (a few dozen per window here)."""

    def initialize(self) -> list[str]:
        return []

    def agg(self, old: list[str], new: Any, timestamp: int) -> list[str]:
        user = new.get(self.column)
        if user is not None and user not in old:
            old.append(user)
        return old

    def result(self, value: list[str]) -> int:
        return len(value)


def build_pipeline(app: Application, topic: str, watermark: timedelta, totals: Totals) -> None:
    window_ms = int(WINDOW.total_seconds() * 1000)

    def take(value: Any, key: Any, timestamp: int, headers: Any) -> bool:
        totals.last_record_at = time.perf_counter()
        if not totals.records:
            totals.first_record_at = totals.last_report_at = totals.last_record_at
        if totals.expected and totals.records >= totals.expected:
            return False
        totals.records += 1
        totals.bytes += message_context().size + len(key or b"")
        totals.invalid += value is None
        totals.report()
        if totals.input_done():
            app.stop()
        return value is not None

    def first_sighting(event: dict[str, Any], state: State) -> bool:
        if state.exists(event["event_id"]):
            totals.duplicates_dropped += 1
            return False
        state.set(event["event_id"], True, ttl=watermark)
        totals.repartitioned += 1
        return True

    def count_windowed(event: dict[str, Any]) -> None:
        totals.last_record_at = time.perf_counter()
        totals.windowed += 1
        if totals.input_done():
            app.stop()

    def on_late(*_: Any) -> bool:
        totals.late_dropped += 1
        return False  # counted, not logged: a warning per late record would flood stderr

    def on_window_update(aggregated: Any, value: Any, key: Any, timestamp: int, headers: Any) -> bool:
        totals.accepted += 1
        totals.window_keys.add((key, timestamp - timestamp % window_ms))
        return False  # never close a window early

    def count_closed(window: dict[str, Any]) -> None:
        totals.closed_windows += 1
        totals.events_in_closed_windows += window["event_count"]

    events = app.dataframe(
        app.topic(topic, value_deserializer=EventDeserializer(), timestamp_extractor=event_time)
    )
    events = events.filter(take, metadata=True)
    events = events.filter(first_sighting, stateful=True)
    by_type = events.group_by("type")
    by_type = by_type.update(count_windowed)
    windows = by_type.tumbling_window(WINDOW, grace_ms=watermark, on_late=on_late, after_update=on_window_update)
    closed = windows.agg(event_count=Count(), distinct_users=DistinctUsers("user_id")).final()
    closed.update(count_closed)


def delete_internal_topics(bootstrap_servers: str, group: str) -> None:
    """Delete the repartition and changelog topics quixstreams created for this consumer group."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 2})
    names = [
        name
        for name in admin.list_topics(timeout=10).topics
        if name.startswith((f"repartition__{group}--", f"changelog__{group}--"))
    ]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--state-dir", default=None, help="parent of the run's state directory (default: system temp)")
    parser.add_argument(
        "--watermark-minutes", type=float, default=10.0, help="lateness allowed (default: 10, as the Spark job)"
    )
    parser.add_argument("--guarantee", choices=("exactly-once", "at-least-once"), default="exactly-once")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": args.bootstrap_servers, "log_level": 2})
    # Metadata for all topics, not for this one: asking for a single missing topic may create it.
    require_topic(args.topic, lambda: admin.list_topics(timeout=10).topics, args.bootstrap_servers, KafkaException)
    if args.state_dir:
        Path(args.state_dir).mkdir(parents=True, exist_ok=True)
    state_dir = tempfile.mkdtemp(prefix="quix-peer-", dir=args.state_dir)
    totals = Totals(args.expected)
    try:
        app = Application(
            broker_address=args.bootstrap_servers,
            consumer_group=args.group,
            auto_offset_reset="earliest",
            state_dir=state_dir,
            processing_guarantee=args.guarantee,
            loglevel="WARNING",
        )
        build_pipeline(app, args.topic, timedelta(minutes=args.watermark_minutes), totals)
        app.run(timeout=args.idle_timeout)
        stopped_at = time.perf_counter()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        delete_internal_topics(args.bootstrap_servers, args.group)
    finished = totals.input_done()
    end = stopped_at if finished else totals.last_record_at
    seconds = (end - totals.first_record_at) if totals.records else 0.0
    return {
        "contender": CONTENDER,
        "guarantee": args.guarantee,
        "records": totals.records,
        "bytes": totals.bytes,
        "valid": totals.records - totals.invalid,
        "invalid": totals.invalid,
        "duplicates_dropped": totals.duplicates_dropped,
        "late_dropped": totals.late_dropped,
        "windows": len(totals.window_keys),
        "events_counted": totals.accepted,
        "open_windows": len(totals.window_keys) - totals.closed_windows,
        "events_in_open_windows": totals.accepted - totals.events_in_closed_windows,
        "processing_seconds": round(seconds, 3),
        "records_per_second": round(totals.records / seconds, 1) if seconds else None,
        "stopped_by": "expected" if finished else "idle-timeout",
    }


def main(argv: list[str] | None = None) -> int:
    return run_contender(CONTENDER, run, parse_args(argv), errors=(KafkaException,))


if __name__ == "__main__":
    sys.exit(main())
