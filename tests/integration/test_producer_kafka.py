"""The producer against the real broker: what is generated is what a consumer reads back."""

import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from eventlake.local.producer import generate_records, send_records

pytestmark = pytest.mark.integration


def _read_all(bootstrap_servers: str, topic: str, expected: int, timeout: float = 30.0) -> list:
    """Every record of ``topic`` from the beginning, waiting until ``expected`` have come (or the timeout)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"producer-test-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages, deadline = [], time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                assert message.error() is None, message.error()
                messages.append(message)
        return messages
    finally:
        consumer.close()


def test_sent_records_arrive_exactly_as_generated_in_order_per_key(kafka_bootstrap, fresh_topic):
    records = generate_records(
        200, 2026, datetime.now(UTC) - timedelta(minutes=30), timedelta(minutes=30),
        users=8, duplicate_ratio=0.1, malformed_ratio=0.15,
    )
    kinds = {r.kind.partition(":")[0] for r in records}
    assert {"valid", "duplicate", "malformed"} <= kinds

    report = send_records(records, kafka_bootstrap, fresh_topic)
    messages = _read_all(kafka_bootstrap, fresh_topic, len(records))

    assert (report.sent, report.failed) == (200, 0)
    assert len(messages) == 200
    expected, received, partitions_of_key = defaultdict(list), defaultdict(list), defaultdict(set)
    for record in records:
        expected[record.key].append(record.value)
    for message in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        received[message.key()].append(message.value())
        partitions_of_key[message.key()].add(message.partition())
    assert dict(received) == dict(expected)
    assert all(len(partitions) == 1 for partitions in partitions_of_key.values())
