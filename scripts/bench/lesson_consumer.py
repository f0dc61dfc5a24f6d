"""Benchmark contender "lesson_consumer": the windowed consumer of lesson 5.1, written as the lesson writes it.

Measures what the lesson's design costs: kafka-python's ``KafkaConsumer`` iterated one record at a
time, a synchronous offset commit (a broker round trip) after EVERY record, and windows held in memory
as ``dict[window_start, set[StreamingEvent]]``. It does the eventlake analytics job's work: per 5-minute
tumbling event-time window (aligned to the epoch) and event type, ``event_count`` and exact
``distinct_users``, after dropping duplicate event_ids, with a 10-minute watermark (``--watermark-minutes``).

Faithful to the lesson: the class names and their shape (``StreamingEvent``, ``StreamProcessor``,
``WindowedProcessor`` with ``_get_window_start`` / ``_process_expired_windows`` / ``_process_window``,
``EventConsumer`` with ``start_consuming`` / ``_parse_event`` / ``_commit_offset`` / ``_cleanup``), the
consumer settings (``enable_auto_commit=False``, ``auto_offset_reset='earliest'``), per-record
processing with ``self.consumer.commit()`` after each record, and duplicates dropped by the window's
``set`` (a set keeps one event per event_id).

Filled in or changed, because the lesson leaves it open or would not run:
- ``StreamingEvent`` gains ``type`` (contract v1 has it; the windows count per type) and hashes and
  compares by ``event_id``: a plain ``@dataclass`` is unhashable, so the lesson's ``set.add`` would fail.
- ``validate_schema`` checks the contract-v1 fields; ``_parse_event`` turns the ISO-8601 ``timestamp``
  into a naive UTC datetime (``_get_window_start`` subtracts the naive ``datetime.min``; 5-minute
  windows from ``datetime.min`` fall on the same boundaries as from the epoch).
- The lesson's ``value_deserializer`` lambda raises inside the consumer's iterator, where no per-record
  handler can catch it, so one malformed record would stop the consumer; here the deserializer returns
  ``None`` for such a value and ``_parse_event`` rejects it, counted by the ``error_handler``.
- Windows expire by a watermark (the latest event time seen minus the delay, as in the Spark job)
  instead of the current record's event time, and events older than the watermark are dropped as late
  (``is_late_arriving``); ``_process_window`` computes the per-type counts; ``flush`` emits the windows
  still open at the end. The Spark job in availableNow mode does not: ``open_windows`` and
  ``events_in_open_windows`` say how much of ``windows`` and ``events_counted`` they are.
- Stopping: ``consumer_timeout_ms`` ends the iteration after ``--idle-timeout`` seconds without a record;
  ``--expected``, ``--max-records`` and ``--max-seconds`` end it earlier. A commit per record makes the
  lesson slow, so the harness can measure a prefix with ``--max-records`` or ``--max-seconds``.

On a backlog, kafka-python returns the topic largely partition after partition, so event time jumps
back at each switch and, with the 10-minute watermark, most records of the later partitions are late
(Spark advances its watermark only between micro-batches and does not see this). A watermark longer
than the topic's event-time span makes every event count, for a comparison of equal work.

The last stdout line is one JSON object; exit 0 on success, 2 with one stderr line on errors.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from contender import SetupError, add_common_arguments, require_topic, run_contender
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.serializer import Deserializer

CONTENDER = "lesson_consumer"
WINDOW = timedelta(minutes=5)
PROGRESS_EVERY_SECONDS = 10.0
EVENT_SCHEMA: dict[str, type] = {
    "event_id": str,
    "timestamp": datetime,
    "source": str,
    "data": dict,
    "schema_version": str,
    "type": str,
}
KNOWN_SCHEMA_VERSIONS = frozenset({"1"})


class InvalidEvent(ValueError):
    """A record that is not a contract-v1 event."""


@dataclass
class StreamingEvent:
    """Represents a streaming event with key metadata"""

    event_id: str
    timestamp: datetime
    source: str
    data: dict[str, Any]
    schema_version: str
    type: str

    # Explicit, so that @dataclass keeps them: its generated __eq__ compares every field and leaves the
    # class unhashable, while the windows' sets must hold one event per event_id.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, StreamingEvent) and other.event_id == self.event_id

    def __hash__(self) -> int:
        return hash(self.event_id)

    def is_late_arriving(self, window_end: datetime) -> bool:
        """Check if event is late arriving"""
        return self.timestamp < window_end

    def validate_schema(self, schema: dict[str, type]) -> bool:
        """Validate event against schema"""
        return (
            all(isinstance(getattr(self, field), kind) for field, kind in schema.items())
            and bool(self.event_id)
            and self.schema_version in KNOWN_SCHEMA_VERSIONS
        )


class StreamProcessor:
    """Base class for stream processing"""

    # The lesson's validate/transform/emit pipeline in process_event is left out: WindowedProcessor
    # overrides process_event without calling it.
    def __init__(self, name: str):
        self.name = name
        self.processed_count = 0
        self.error_count = 0


class WindowResult(NamedTuple):
    window_start: datetime
    event_type: str
    event_count: int
    distinct_users: int


class WindowedProcessor(StreamProcessor):
    """Process events using time windows"""

    def __init__(self, name: str, window_size: timedelta, slide_interval: timedelta, watermark_delay: timedelta):
        super().__init__(name)
        self.window_size = window_size
        self.slide_interval = slide_interval
        self.windows: dict[datetime, set[StreamingEvent]] = {}
        self.watermark_delay = watermark_delay
        self.max_event_time = datetime.min
        self.duplicates_dropped = 0
        self.late_dropped = 0
        self.results: list[WindowResult] = []

    def process_event(self, event: StreamingEvent) -> None:
        """Process event and assign to windows"""
        self.processed_count += 1
        self.max_event_time = max(self.max_event_time, event.timestamp)
        watermark = self.max_event_time - self.watermark_delay
        if event.is_late_arriving(watermark):
            self.late_dropped += 1
            return

        window_start = self._get_window_start(event.timestamp)

        if window_start not in self.windows:
            self.windows[window_start] = set()

        if event in self.windows[window_start]:
            self.duplicates_dropped += 1
        self.windows[window_start].add(event)
        self._process_expired_windows(watermark)

    def _get_window_start(self, timestamp: datetime) -> datetime:
        """Calculate window start time"""
        return timestamp - (timestamp - datetime.min) % self.slide_interval

    def _process_expired_windows(self, current_time: datetime) -> None:
        """Process and remove expired windows"""
        expired = [start for start, events in self.windows.items() if start + self.window_size < current_time]

        for window_start in expired:
            self._process_window(window_start, self.windows[window_start])
            del self.windows[window_start]

    def _process_window(self, window_start: datetime, events: set[StreamingEvent]) -> None:
        """Process events in a window"""
        counts: Counter[str] = Counter()
        users: defaultdict[str, set[str]] = defaultdict(set)
        for event in events:
            counts[event.type] += 1
            # Events without a user are counted but add no distinct user, as in the Spark job.
            if (user := event.data.get("user_id")) is not None:
                users[event.type].add(user)
        for event_type, count in sorted(counts.items()):
            self.results.append(WindowResult(window_start, event_type, count, len(users[event_type])))

    def flush(self) -> None:
        """Emit the windows still open, oldest first."""
        for window_start in sorted(self.windows):
            self._process_window(window_start, self.windows.pop(window_start))


class JsonValueDeserializer(Deserializer):
    """The lesson's ``json.loads(m.decode('utf-8'))``, with ``None`` instead of an exception.

    A class, not the lesson's lambda: kafka-python 3 warns that bare callables are deprecated.
    """

    def deserialize(self, topic: str, headers: list[tuple[str, bytes]], data: bytes | None) -> Any:
        try:
            return json.loads(data.decode("utf-8"))  # type: ignore[union-attr]
        except (AttributeError, UnicodeDecodeError, ValueError):
            return None


def _parse_timestamp(text: Any) -> datetime:
    if not isinstance(text, str):
        raise InvalidEvent("timestamp is not a string")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEvent(f"timestamp is not ISO-8601: {text!r}") from None
    if moment.tzinfo is None:
        raise InvalidEvent(f"timestamp has no UTC offset: {text!r}")
    return moment.astimezone(UTC).replace(tzinfo=None)


class EventConsumer:
    """Generic event consumer"""

    def __init__(
        self,
        bootstrap_servers: list[str],
        topic: str,
        group_id: str,
        processor: StreamProcessor,
        error_handler: Callable[[Exception, ConsumerRecord], None] | None = None,
        *,
        idle_timeout: float = 30.0,
        stop_after_records: int = 0,
        max_seconds: float = 0.0,
    ):
        self.consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            value_deserializer=JsonValueDeserializer(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            consumer_timeout_ms=int(idle_timeout * 1000),
        )
        self.processor = processor
        self.error_handler = error_handler
        self.topic = topic
        self.stop_after_records = stop_after_records
        self.max_seconds = max_seconds
        self.records = 0
        self.bytes = 0
        self.commits = 0
        self.first_record_at = 0.0
        self.last_record_at = 0.0
        self.stopped_by = "idle-timeout"
        self._last_report = 0.0

    def start_consuming(self) -> None:
        """Start consuming events"""
        try:
            self._require_topic()
            for message in self.consumer:
                self._count(message)
                try:
                    event = self._parse_event(message.value)
                    self.processor.process_event(event)
                    self._commit_offset(message)
                except Exception as e:
                    if self.error_handler:
                        self.error_handler(e, message)
                    else:
                        raise
                if self._should_stop():
                    break
        finally:
            self._cleanup()

    def _parse_event(self, value: Any) -> StreamingEvent:
        """Parse message value into StreamingEvent"""
        if not isinstance(value, dict):
            raise InvalidEvent("value is not a JSON object")
        try:
            event = StreamingEvent(**{**value, "timestamp": _parse_timestamp(value.get("timestamp"))})
        except TypeError as error:
            raise InvalidEvent(f"fields do not match contract v1: {error}") from None
        if not event.validate_schema(EVENT_SCHEMA):
            raise InvalidEvent("fields have the wrong types or an unknown schema_version")
        return event

    def _commit_offset(self, message: ConsumerRecord) -> None:
        """Commit offset after successful processing"""
        self.consumer.commit()
        self.commits += 1

    def _cleanup(self) -> None:
        """Cleanup resources"""
        self.consumer.close()

    def _require_topic(self) -> None:
        # Metadata for every topic: the consumer itself would wait for a missing topic without a word.
        servers = ",".join(self.consumer.config["bootstrap_servers"])
        require_topic(self.topic, self.consumer.topics, servers)

    def _count(self, message: ConsumerRecord) -> None:
        self.last_record_at = time.perf_counter()
        if not self.records:
            self.first_record_at = self._last_report = self.last_record_at
        self.records += 1
        self.bytes += max(message.serialized_key_size, 0) + max(message.serialized_value_size, 0)
        if self.last_record_at - self._last_report >= PROGRESS_EVERY_SECONDS:
            rate = self.records / (self.last_record_at - self.first_record_at)
            print(f"[{CONTENDER}] {self.records} records, {rate:,.0f}/s", file=sys.stderr)
            self._last_report = self.last_record_at

    def _should_stop(self) -> bool:
        if self.stop_after_records and self.records >= self.stop_after_records:
            self.stopped_by = "records"
        elif self.max_seconds and self.last_record_at - self.first_record_at >= self.max_seconds:
            self.stopped_by = "max-seconds"
        else:
            return False
        return True


class InvalidRecords:
    """The consumer's error handler: counts records that are not events, lets anything else through."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, error: Exception, message: ConsumerRecord) -> None:
        if not isinstance(error, InvalidEvent):
            raise error
        self.count += 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--watermark-minutes", type=float, default=10.0, help="lateness allowed (default: 10, as the Spark job)"
    )
    parser.add_argument("--max-records", type=int, default=0, help="stop after this many records (0: all)")
    parser.add_argument(
        "--max-seconds", type=float, default=0.0, help="stop this long after the first record (0: no limit)"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    processor = WindowedProcessor("lesson-windows", WINDOW, WINDOW, timedelta(minutes=args.watermark_minutes))
    invalid = InvalidRecords()
    limits = [n for n in (args.expected, args.max_records) if n > 0]
    try:
        consumer = EventConsumer(
            args.bootstrap_servers.split(","),
            args.topic,
            args.group,
            processor,
            invalid,
            idle_timeout=args.idle_timeout,
            stop_after_records=min(limits, default=0),
            max_seconds=args.max_seconds,
        )
    except KafkaError as error:
        raise SetupError(f"Kafka broker not reachable at {args.bootstrap_servers}: {error}") from None
    consumer.start_consuming()
    closed = len(processor.results)
    flush_started = time.perf_counter()
    processor.flush()
    flush_seconds = time.perf_counter() - flush_started
    still_open = processor.results[closed:]
    if consumer.stopped_by == "records" and consumer.records == args.expected:
        consumer.stopped_by = "expected"
    seconds = (consumer.last_record_at - consumer.first_record_at + flush_seconds) if consumer.records else 0.0
    return {
        "contender": CONTENDER,
        "records": consumer.records,
        "bytes": consumer.bytes,
        "valid": processor.processed_count,
        "invalid": invalid.count,
        "duplicates_dropped": processor.duplicates_dropped,
        "late_dropped": processor.late_dropped,
        "windows": len(processor.results),
        "events_counted": sum(result.event_count for result in processor.results),
        "open_windows": len(still_open),
        "events_in_open_windows": sum(result.event_count for result in still_open),
        "commits": consumer.commits,
        "processing_seconds": round(seconds, 3),
        "records_per_second": round(consumer.records / seconds, 1) if seconds else None,
        "stopped_by": consumer.stopped_by,
    }


def main(argv: list[str] | None = None) -> int:
    return run_contender(CONTENDER, run, parse_args(argv), errors=(KafkaError,))


if __name__ == "__main__":
    sys.exit(main())
