"""The event producer: deterministic contract-v1 events (with chosen anomalies) or a JSON-lines file, to Kafka.

``generate_records`` is pure: the same seed and arguments give byte-identical records, so a test can
produce a stream and know exactly what a job must make of it. ``send_records`` sends them with an
idempotent producer (``acks=all``), keyed by user. ``python -m eventlake.local.producer --help`` for the CLI.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, Producer

from eventlake.pipeline.contract import CONTENT_TYPE_HEADER, EXTRACTOR_MEDIA_TYPES
from eventlake.runtime.config import parse_duration, parse_utc_time
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.kafka_admin import librdkafka_options, require_topic

# The ways a generated record can be malformed, and the contract error code each one must get.
MALFORMED_ERROR_CODES: dict[str, str] = {
    "not_json": "NOT_JSON",
    "truncated_json": "NOT_JSON",
    "json_array": "NOT_OBJECT",
    "missing_event_id": "MISSING_FIELD",
    "numeric_timestamp": "WRONG_TYPE",
    "timestamp_without_offset": "BAD_TIMESTAMP",
    "unknown_schema_version": "UNKNOWN_SCHEMA_VERSION",
    "empty_value": "EMPTY_VALUE",
    "invalid_utf8": "INVALID_UTF8",
}

# Out-of-order and duplicate records stay well inside the default 10-minute watermark; late ones fall
# far enough behind it to be dropped once the watermark has moved past them.
OUT_OF_ORDER_SHIFT_MS = (1_000, 4 * 60_000)
LATE_SHIFT_MS = (30 * 60_000, 60 * 60_000)
DUPLICATE_LOOKBACK = 10

KV_MEDIA_TYPE = EXTRACTOR_MEDIA_TYPES["kv"]

_KIND_ORDER = ("valid", "duplicate", "out_of_order", "late", "malformed")


@dataclass(frozen=True)
class ProducedRecord:
    """One Kafka record to send: key and value bytes, and what kind of record it is (for reconciling
    results): ``valid``, ``duplicate``, ``out_of_order``, ``late``, ``malformed:<what>`` or ``file``."""

    key: bytes | None
    value: bytes | None
    kind: str
    headers: tuple[tuple[str, bytes], ...] = ()


def format_event_time(moment: datetime) -> str:
    """A datetime as contract-v1 text: ISO-8601 in UTC with milliseconds and ``Z``, like 2026-01-31T12:00:00.000Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generate_records(
    count: int,
    seed: int,
    start_time: datetime,
    span: timedelta,
    users: int = 50,
    event_types: Sequence[str] = ("pageview", "click", "purchase", "signup"),
    duplicate_ratio: float = 0.0,
    out_of_order_ratio: float = 0.0,
    late_ratio: float = 0.0,
    malformed_ratio: float = 0.0,
    sources: Sequence[str] = ("web", "mobile"),
    kv_ratio: float = 0.0,
    v2_ratio: float = 0.0,
) -> list[ProducedRecord]:
    """``count`` records whose event times advance evenly from ``start_time`` across ``span``.

    Each ratio is the probability that a record is of that kind (their sum at most 1); the rest are valid.
    Independently, ``v2_ratio`` of the well-formed events are written in contract version 2 and
    ``kv_ratio`` of them as ``key=value`` lines (with a ``content-type: text/x-key-value`` header).
    A duplicate repeats the exact key and value of one of the last few valid records whose event time is
    at most 4 minutes earlier (when there is none, a valid record is made instead). A naive ``start_time``
    is taken as UTC. Deterministic: only ``random.Random(seed)`` is used.
    """
    ratios = {
        "duplicate": duplicate_ratio,
        "out_of_order": out_of_order_ratio,
        "late": late_ratio,
        "malformed": malformed_ratio,
    }
    _check_generator_arguments(count, users, event_types, sources, span, ratios, {"kv": kv_ratio, "v2": v2_ratio})
    if start_time.tzinfo is None:
        start_time = start_time.replace(tzinfo=UTC)
    # Every draw, in record order, comes from this one generator: any change to the order of the draws
    # changes the records of every seed.
    rng = random.Random(seed)
    recent_valid: deque[tuple[datetime, ProducedRecord]] = deque(maxlen=DUPLICATE_LOOKBACK)
    records = []
    for index in range(count):
        base_time = start_time + span * index / count
        kind = _draw_kind(rng, ratios)
        if kind == "duplicate":
            duplicate = _duplicate_of_recent(rng, recent_valid, base_time)
            if duplicate is not None:
                records.append(duplicate)
                continue
            kind = "valid"
        event = _event(rng, users, event_types, sources)
        if kind == "malformed":
            records.append(_malformed_record(rng, event, base_time))
            continue
        event_time = _shifted_event_time(rng, kind, base_time)
        record = _well_formed_record(rng, event, event_time, kind, kv_ratio=kv_ratio, v2_ratio=v2_ratio)
        records.append(record)
        if kind == "valid":
            recent_valid.append((event_time, record))
    return records


def _duplicate_of_recent(
    rng: random.Random, recent_valid: deque[tuple[datetime, ProducedRecord]], base_time: datetime
) -> ProducedRecord | None:
    """A copy of one of the recent valid records whose event time is at most 4 minutes before ``base_time``
    (inside the watermark, so that deduplication must catch it), or None when there is none."""
    candidates = [record for moment, record in recent_valid if base_time - moment <= timedelta(minutes=4)]
    if not candidates:
        return None
    original = rng.choice(candidates)
    return ProducedRecord(original.key, original.value, "duplicate", original.headers)


def _shifted_event_time(rng: random.Random, kind: str, base_time: datetime) -> datetime:
    """The event time of a well-formed record placed at ``base_time``: out-of-order and late records fall
    behind it (see OUT_OF_ORDER_SHIFT_MS and LATE_SHIFT_MS), valid ones are right on it."""
    if kind == "out_of_order":
        return base_time - timedelta(milliseconds=rng.randint(*OUT_OF_ORDER_SHIFT_MS))
    if kind == "late":
        return base_time - timedelta(milliseconds=rng.randint(*LATE_SHIFT_MS))
    return base_time


def _malformed_record(rng: random.Random, event: dict[str, Any], base_time: datetime) -> ProducedRecord:
    """``event`` broken in one of the ways of MALFORMED_ERROR_CODES, drawn at random; still keyed by user."""
    what = rng.choice(tuple(MALFORMED_ERROR_CODES))
    value = _malformed_value(rng, what, event, base_time)
    return ProducedRecord(event["data"]["user_id"].encode(), value, f"malformed:{what}")


def _well_formed_record(
    rng: random.Random, event: dict[str, Any], event_time: datetime, kind: str, *, kv_ratio: float, v2_ratio: float
) -> ProducedRecord:
    """``event`` at ``event_time``, in contract version 2 with probability ``v2_ratio`` and written as
    ``key=value`` text with probability ``kv_ratio`` (else as JSON)."""
    event["timestamp"] = format_event_time(event_time)
    # Drawn only when asked for, so that the records of a seed stay the same without these options.
    if v2_ratio and rng.random() < v2_ratio:
        event = _as_version_2(rng, event)
    key = event["data"]["user_id"].encode()
    if kv_ratio and rng.random() < kv_ratio:
        return ProducedRecord(key, _encode_key_value(event), kind, ((CONTENT_TYPE_HEADER, KV_MEDIA_TYPE.encode()),))
    return ProducedRecord(key, _encode(event), kind)


def _check_generator_arguments(
    count: int,
    users: int,
    event_types: Sequence[str],
    sources: Sequence[str],
    span: timedelta,
    ratios: dict[str, float],
    format_ratios: dict[str, float],
) -> None:
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    if users < 1:
        raise ValueError(f"users must be at least 1, got {users}")
    if not event_types or not sources:
        raise ValueError("event_types and sources must each name at least one value")
    if span < timedelta(0):
        raise ValueError(f"span must not be negative, got {span}")
    for name, ratio in ratios.items():
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"the {name} ratio must be between 0 and 1, got {ratio}")
    if sum(ratios.values()) > 1.0:
        raise ValueError(f"the ratios add up to {sum(ratios.values()):g}; together they must be at most 1")
    # The format ratios apply to the well-formed events whatever their kind: they have no sum to check.
    for name, ratio in format_ratios.items():
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"the {name} ratio must be between 0 and 1, got {ratio}")


def _draw_kind(rng: random.Random, ratios: dict[str, float]) -> str:
    draw, threshold = rng.random(), 0.0
    for kind, ratio in ratios.items():
        threshold += ratio
        if draw < threshold:
            return kind
    return "valid"


def _event(rng: random.Random, users: int, event_types: Sequence[str], sources: Sequence[str]) -> dict[str, Any]:
    """A contract-v1 event without its timestamp (filled in by the caller, which knows the event time)."""
    event_type = rng.choice(event_types)
    data: dict[str, Any] = {"user_id": f"user-{rng.randint(1, users):03d}"}
    if event_type == "pageview":
        data["page"] = f"/products/{rng.randint(1, 40)}"
    elif event_type == "click":
        data["page"] = f"/products/{rng.randint(1, 40)}"
        data["element"] = rng.choice(("add-to-cart", "buy-now", "details", "reviews"))
    elif event_type == "purchase":
        data["amount"] = rng.randint(100, 20_000) / 100
        data["currency"] = "EUR"
    elif event_type == "signup":
        data["plan"] = rng.choice(("free", "pro"))
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "timestamp": None,
        "source": rng.choice(sources),
        "schema_version": "1",
        "type": event_type,
        "data": data,
    }


def _as_version_2(rng: random.Random, event: dict[str, Any]) -> dict[str, Any]:
    """The event in contract version 2: ``type`` is called ``event_type``, and a ``session_id`` is added."""
    renamed = {("event_type" if key == "type" else key): value for key, value in event.items()}
    return {**renamed, "schema_version": "2", "session_id": f"session-{rng.randint(1, 999_999):06d}"}


def _encode_key_value(event: dict[str, Any]) -> bytes:
    """The event as ``key=value`` pairs separated by ``; `` (data fields as ``data.<name>``)."""
    pairs = [f"{key}={value}" for key, value in event.items() if key != "data"]
    pairs += [f"data.{key}={value}" for key, value in event.get("data", {}).items()]
    return "; ".join(pairs).encode("utf-8")


def _encode(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _malformed_value(rng: random.Random, what: str, event: dict[str, Any], event_time: datetime) -> bytes:
    event["timestamp"] = format_event_time(event_time)
    if what == "not_json":
        return f"{event['type']} by {event['data']['user_id']} at {event['timestamp']}".encode()
    if what == "truncated_json":
        text = _encode(event)
        # Any proper prefix of an object's text is unfinished JSON: the closing brace is the last byte.
        return text[: rng.randint(len(text) // 2, len(text) - 1)]
    if what == "json_array":
        return _encode([event])
    if what == "missing_event_id":
        del event["event_id"]
        return _encode(event)
    if what == "numeric_timestamp":
        event["timestamp"] = int(event_time.timestamp() * 1000)
        return _encode(event)
    if what == "timestamp_without_offset":
        event["timestamp"] = event_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return _encode(event)
    if what == "unknown_schema_version":
        event["schema_version"] = "99"
        return _encode(event)
    if what == "empty_value":
        return b""
    if what == "invalid_utf8":
        return b"\xff\xfe" + _encode(event)
    raise ValueError(f"unknown kind of malformed record: {what}")


def records_from_file(path: str | Path) -> list[ProducedRecord]:
    """Each non-blank line of a JSON-lines file as one record, bytes as they are (without the line end).

    The key is ``data.user_id`` when the line is a JSON object with a string ``data.user_id``, else None.
    """
    records = []
    for line in Path(path).read_bytes().split(b"\n"):
        line = line.removesuffix(b"\r")
        if line.strip():
            records.append(ProducedRecord(_user_key(line), line, "file"))
    return records


def _user_key(line: bytes) -> bytes | None:
    try:
        document = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    data = document.get("data") if isinstance(document, dict) else None
    user_id = data.get("user_id") if isinstance(data, dict) else None
    return user_id.encode("utf-8") if isinstance(user_id, str) else None


@dataclass(frozen=True)
class SendReport:
    """What :func:`send_records` did. ``counts`` is the number of records per kind."""

    topic: str
    bootstrap_servers: str
    sent: int
    failed: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: how many records went where, how fast, and of which kinds (malformed ones summed)."""
        grouped: Counter[str] = Counter()
        for kind, number in self.counts.items():
            grouped[kind.partition(":")[0]] += number
        ordered = [k for k in _KIND_ORDER if grouped[k]] + [k for k in grouped if k not in _KIND_ORDER]
        per_second = self.sent / self.seconds if self.seconds > 0 else 0.0
        kinds = ", ".join(f"{kind} {grouped[kind]}" for kind in ordered)
        line = (
            f"sent {self.sent} records to {self.topic} at {self.bootstrap_servers} "
            f"in {self.seconds:.2f} s ({per_second:.0f} records/s)"
        )
        return f"{line}: {kinds}" if kinds else line


def producer_config(bootstrap_servers: str, client_options: dict[str, str] | None = None) -> dict[str, Any]:
    """The confluent-kafka Producer settings: idempotent, ``acks=all``, lz4; ``client_options`` are
    Spark-style ``kafka.*`` options of which the security ones are passed on."""
    return {
        **librdkafka_options(bootstrap_servers, client_options),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # A broker that goes away mid-run fails the send within a minute rather than librdkafka's five.
        "message.timeout.ms": 60_000,
    }


def send_records(
    records: Sequence[ProducedRecord],
    bootstrap_servers: str,
    topic: str,
    rate: float = 0.0,
    client_options: dict[str, str] | None = None,
) -> SendReport:
    """Send ``records`` in order to ``topic`` and wait until every one is acknowledged.

    ``rate`` is records per second (0: as fast as possible). Raises EnvironmentProblem when the broker
    does not answer, the topic does not exist, or any record could not be delivered.
    """
    if rate < 0:
        raise ValueError(f"rate must be 0 (as fast as possible) or more records per second, got {rate}")
    require_topic(bootstrap_servers, topic, client_options)
    producer = Producer(producer_config(bootstrap_servers, client_options))
    failures = _Failures()
    started = time.monotonic()
    _produce_paced(producer, topic, records, rate, failures, started)
    # flush() waits for the acknowledgements still due; the failures among them are reported meanwhile.
    unsent = producer.flush()
    seconds = time.monotonic() - started
    failed = len(failures.errors) + unsent
    if failed:
        first = failures.errors[0] if failures.errors else "not acknowledged before the flush ended"
        raise EnvironmentProblem(
            f"{failed} of {len(records)} records could not be delivered to Kafka topic '{topic}' "
            f"at {bootstrap_servers} (first error: {first})"
        )
    return SendReport(topic, bootstrap_servers, len(records), 0, seconds, dict(Counter(r.kind for r in records)))


@dataclass
class _Failures:
    """The errors of records that were not delivered, in the order they became known (the first is shown)."""

    errors: list[str] = field(default_factory=list)

    def on_delivery(self, error: Any, _message: Any) -> None:
        """The producer's delivery report for one record, served by its poll() and flush()."""
        if error is not None:
            self.errors.append(str(error))

    def refused(self, error: KafkaException) -> None:
        """A record the producer refused at once (too large, unknown topic...): it never gets a report."""
        self.errors.append(str(error.args[0]))


def _produce_paced(
    producer: Any, topic: str, records: Sequence[ProducedRecord], rate: float, failures: _Failures, started: float
) -> None:
    """Hand ``records`` to the producer in order, at most ``rate`` a second from ``started`` (0: no limit),
    serving delivery reports as it goes."""
    # Pace in chunks of about 1/20 s of records (at most 200): smooth when slow, no per-record sleep when fast.
    chunk = max(1, min(200, round(rate / 20))) if rate > 0 else 0
    for number, record in enumerate(records, start=1):
        try:
            _produce(producer, topic, record, failures.on_delivery)
        except KafkaException as error:
            failures.refused(error)
        producer.poll(0)
        if chunk and number % chunk == 0:
            _wait_until(producer, started + number / rate)


def _produce(producer: Any, topic: str, record: ProducedRecord, on_delivery: Any) -> None:
    while True:
        try:
            producer.produce(
                topic, value=record.value, key=record.key, headers=list(record.headers) or None, on_delivery=on_delivery
            )
            return
        except BufferError:
            # The local queue is full: serve deliveries until there is room again.
            producer.poll(0.1)


def _wait_until(producer: Any, deadline: float) -> None:
    """Pace the send; polling instead of sleeping keeps delivery callbacks flowing meanwhile."""
    while (remaining := deadline - time.monotonic()) > 0:
        producer.poll(remaining)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/produce.sh",
        description="Send generated contract-v1 events (or a JSON-lines file) to a Kafka topic, keyed by user.",
    )
    add = parser.add_argument
    add("--bootstrap-servers", default="127.0.0.1:9092", metavar="HOST:PORT", help="default: 127.0.0.1:9092")
    add("--topic", default="events", help="topic to send to; it must exist (default: events)")
    add("--count", type=int, default=1000, metavar="N", help="number of records, anomalies included (default: 1000)")
    add("--rate", type=float, default=0.0, metavar="N", help="records per second; 0 (the default) for no limit")
    add("--seed", type=int, default=42, metavar="N", help="the same seed gives the same records (default: 42)")
    add("--start-time", metavar="TIME", help="ISO-8601 time of the first event, UTC without an offset "
        "(default: now minus --span, so every event time is in the past)")
    add("--span", default="30 minutes", metavar="DURATION", help="event times spread over it (default: 30 minutes)")
    add("--users", type=int, default=50, metavar="N", help="number of distinct users (default: 50)")
    add("--duplicates", type=float, default=0.0, metavar="RATIO", help="records re-sent with the same event_id")
    add("--out-of-order", type=float, default=0.0, metavar="RATIO", help="events 1 second to 4 minutes behind")
    add("--late", type=float, default=0.0, metavar="RATIO", help="events 30 to 60 minutes behind")
    add("--malformed", type=float, default=0.0, metavar="RATIO", help="records that break the contract")
    add("--kv", type=float, default=0.0, metavar="RATIO", help="events sent as key=value lines instead of JSON")
    add("--v2", type=float, default=0.0, metavar="RATIO", help="events in contract version 2")
    add("--file", metavar="PATH", help="send this JSON-lines file line by line instead of generating events")
    return parser.parse_args(argv)


def _records(args: argparse.Namespace) -> list[ProducedRecord]:
    if args.file:
        try:
            return records_from_file(args.file)
        except OSError as error:
            raise ValueError(f"cannot read --file {args.file}: {error.strerror or error}") from None
    try:
        span = parse_duration(args.span)
    except ValueError as error:
        raise ValueError(f"--span: {error}") from None
    start_time = parse_utc_time(args.start_time, "--start-time") if args.start_time else datetime.now(UTC) - span
    return generate_records(
        args.count,
        args.seed,
        start_time,
        span,
        users=args.users,
        duplicate_ratio=args.duplicates,
        out_of_order_ratio=args.out_of_order,
        late_ratio=args.late,
        malformed_ratio=args.malformed,
        kv_ratio=args.kv,
        v2_ratio=args.v2,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The producer CLI; prints the summary line and returns the exit code (2 for a user or environment error)."""
    args = _arguments(argv)
    try:
        records = _records(args)
        report = send_records(records, args.bootstrap_servers, args.topic, rate=args.rate)
    except (ValueError, EnvironmentProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: records not yet acknowledged may be missing from the topic", file=sys.stderr)
        return 130
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
