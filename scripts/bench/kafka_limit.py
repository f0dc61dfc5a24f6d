"""Benchmark contender "kafka_limit": how fast can Python read the topic at all.

Measures the ceiling every Python contender sits under: a confluent-kafka (librdkafka) consumer that
only counts records and key+value bytes, with no parsing, no state and no commits. Built as a tight
loop over ``consume(num_messages=10000)`` so the per-call cost is paid once per batch, and with large
fetch and queue settings so librdkafka keeps a deep prefetch buffer while Python is counting.

Stops after exactly ``--expected`` records, or after ``--idle-timeout`` seconds without a new record.
The last stdout line is one JSON object; exit 0 on success, 2 with one stderr line on errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException
from contender import SetupError, add_common_arguments, require_topic, run_contender

CONTENDER = "kafka_limit"
PROGRESS_EVERY_SECONDS = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    return parser.parse_args(argv)


def consumer_config(bootstrap_servers: str, group: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap_servers,
        "group.id": group,
        "auto.offset.reset": "earliest",
        # librdkafka logs each failed connect; the one error line this script prints says it all.
        "log_level": 2,
        # Nothing is processed, so there is nothing to commit; commits would only add broker round trips.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # Big fetches and a deep local queue: the broker answers with megabytes at a time and librdkafka
        # refills its queue in the background while Python counts the previous batch. The queue is capped
        # at 128 MiB, twice the default: more adds to the peak memory the harness measures, not to speed.
        "fetch.min.bytes": 1_048_576,
        "fetch.wait.max.ms": 100,
        "fetch.max.bytes": 104_857_600,
        "max.partition.fetch.bytes": 10_485_760,
        "queued.min.messages": 1_000_000,
        "queued.max.messages.kbytes": 131_072,
    }


def consume(args: argparse.Namespace) -> dict[str, Any]:
    consumer = Consumer(consumer_config(args.bootstrap_servers, args.group))
    try:
        # Metadata for all topics, not for this one: asking for a single missing topic may create it.
        require_topic(
            args.topic, lambda: consumer.list_topics(timeout=10).topics, args.bootstrap_servers, KafkaException
        )
        consumer.subscribe([args.topic])
        records = size = 0
        first = 0.0
        last_record = last_report = time.perf_counter()
        while not args.expected or records < args.expected:
            batch = consumer.consume(num_messages=10_000, timeout=1.0)
            now = time.perf_counter()
            if not batch:
                if now - last_record >= args.idle_timeout:
                    break
                continue
            if not records:
                first = last_report = now
            for message in batch:
                if message.error() is not None:
                    raise SetupError(f"consuming '{args.topic}' failed: {message.error()}")
                size += len(message.value() or b"") + len(message.key() or b"")
                records += 1
                if records == args.expected:
                    break
            last_record = time.perf_counter()
            if last_record - last_report >= PROGRESS_EVERY_SECONDS:
                print(f"[{CONTENDER}] {records} records, {records / (last_record - first):,.0f}/s", file=sys.stderr)
                last_report = last_record
        seconds = (last_record - first) if records else 0.0
    finally:
        consumer.close()
    return {
        "contender": CONTENDER,
        "records": records,
        "bytes": size,
        "processing_seconds": round(seconds, 3),
        "records_per_second": round(records / seconds, 1) if seconds else None,
        "stopped_by": "expected" if args.expected and records >= args.expected else "idle-timeout",
    }


def main(argv: list[str] | None = None) -> int:
    return run_contender(CONTENDER, consume, parse_args(argv), errors=(KafkaException,))


if __name__ == "__main__":
    sys.exit(main())
