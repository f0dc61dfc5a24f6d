"""The alerts job against the real broker, real Spark (micro-batches and Real-Time Mode) and real Delta tables."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from pyspark.sql import functions as F

from eventlake.pipeline.alerts import ALERTS_TABLE, DEAD_LETTERS_TABLE, alerts_queries
from eventlake.runtime.config import AlertRule, Settings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.kafka_admin import create_topic
from eventlake.runtime.runner import run_queries

from .helpers import send

pytestmark = pytest.mark.integration

RULES = (
    AlertRule(
        "large_purchase", "event_type = 'purchase' AND try_variant_get(data, '$.amount', 'double') >= 150", "high"
    ),
    AlertRule("mobile", "source = 'mobile'", "low"),
)


def event(event_id: str, event_type: str, source: str = "web", **data) -> tuple[bytes, bytes]:
    document = {
        "event_id": event_id, "timestamp": "2026-01-01T10:00:00Z", "source": source, "schema_version": "1",
        "type": event_type, "data": {"user_id": "u-1", **data},
    }
    return event_id.encode(), json.dumps(document).encode()


RECORDS = [
    event("big", "purchase", amount=180.0),               # large_purchase
    event("big-mobile", "purchase", "mobile", amount=900),  # large_purchase, mobile
    event("small", "purchase", amount=12.5),              # nothing
    event("phone", "click", "mobile"),                    # mobile
    (b"bad", b"{not json"),                               # a dead letter
    (b"old", json.dumps({"event_id": "x"}).encode()),     # a dead letter (fields missing)
]
EXPECTED_ALERTS = {("big", "large_purchase"), ("big-mobile", "large_purchase"), ("big-mobile", "mobile"),
                   ("phone", "mobile")}
EXPECTED_DEAD = {"NOT_JSON", "MISSING_FIELD"}


def alerts_settings(job_settings: Settings, **changes) -> Settings:
    topic = job_settings.kafka.topic
    alerts = dataclasses.replace(
        job_settings.alerts, topic=f"{topic}-alerts", dead_letters_topic=f"{topic}-dead", rules=RULES, **changes
    )
    return dataclasses.replace(job_settings, alerts=alerts)


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list:
    """The messages of ``topic`` (a plain consumer from the beginning), once ``expected`` have arrived or
    ``timeout`` has passed."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    messages, deadline = [], time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                messages.append(message)
        # A little longer: a message more than expected is a failure the test must see.
        end = time.monotonic() + 2
        while time.monotonic() < end:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                messages.append(message)
    finally:
        consumer.close()
    return messages


def alert_pairs(messages) -> list[tuple[str, str]]:
    return sorted((message.key().decode(), json.loads(message.value())["rule"]) for message in messages)


def table(spark, settings: Settings, name: str):
    return spark.read.format("delta").load(settings.storage.table_path(name))


def test_alerts_in_micro_batches_reach_the_topic_and_delta_and_invalid_records_the_dead_letters(
    spark, kafka_bootstrap, job_settings
):
    settings = alerts_settings(job_settings, trigger="availableNow")
    send(kafka_bootstrap, settings.kafka.topic, RECORDS)
    run_queries(spark, settings, "alerts", alerts_queries)

    messages = read_topic(kafka_bootstrap, settings.alerts.topic, len(EXPECTED_ALERTS))
    assert alert_pairs(messages) == sorted(EXPECTED_ALERTS)
    alerts = table(spark, settings, ALERTS_TABLE)
    assert {(row.event_id, row.rule) for row in alerts.collect()} == EXPECTED_ALERTS
    assert alerts.count() == len(EXPECTED_ALERTS)
    assert alerts.where(F.col("severity").isNull() | F.col("detected_at").isNull()).isEmpty()
    dead = table(spark, settings, DEAD_LETTERS_TABLE).collect()
    assert {row.error_code for row in dead} == EXPECTED_DEAD
    assert {bytes(row.raw_value) for row in dead} == {b"{not json", b'{"event_id": "x"}'}
    assert {row.topic for row in dead} == {settings.kafka.topic}


def test_a_restart_loses_no_alert_and_keeps_one_row_per_record_and_rule_in_delta(
    spark, kafka_bootstrap, job_settings
):
    """A crash after the alerts reached Kafka but before the batch was committed: the batch runs again,
    its alerts are on the topic twice, and the Delta table holds each once."""
    settings = alerts_settings(job_settings, trigger="availableNow")
    send(kafka_bootstrap, settings.kafka.topic, RECORDS)
    run_queries(spark, settings, "alerts", alerts_queries)
    detect_commits = Path(settings.storage.checkpoint_path("alerts", "detect")) / "commits"
    for commit in detect_commits.iterdir():
        if commit.name.isdigit() or commit.name.endswith(".crc"):
            commit.unlink()  # as if the job died before committing its batches
    send(kafka_bootstrap, settings.kafka.topic, [event("later", "click", "mobile")])
    run_queries(spark, settings, "alerts", alerts_queries)

    expected = EXPECTED_ALERTS | {("later", "mobile")}
    messages = read_topic(kafka_bootstrap, settings.alerts.topic, 2 * len(EXPECTED_ALERTS) + 1)
    assert len(messages) == 2 * len(EXPECTED_ALERTS) + 1  # the batch ran again: its alerts are there twice
    assert set(alert_pairs(messages)) == expected
    alerts = table(spark, settings, ALERTS_TABLE)
    assert alerts.count() == len(expected)
    assert {(row.event_id, row.rule) for row in alerts.collect()} == expected
    assert table(spark, settings, DEAD_LETTERS_TABLE).count() == len(EXPECTED_DEAD)


def test_real_time_mode_sends_alerts_as_records_arrive(spark, kafka_bootstrap, job_settings):
    topic = f"rt-{uuid.uuid4().hex[:10]}"
    create_topic(kafka_bootstrap, topic, partitions=1, exist_ok=False)  # one slot for it, one left for the copy
    settings = alerts_settings(
        dataclasses.replace(job_settings, kafka=dataclasses.replace(job_settings.kafka, topic=topic)),
        trigger="realTime",
    )
    plan = alerts_queries(spark, settings)
    detect = plan.starts[0]()
    try:
        send(kafka_bootstrap, topic, RECORDS)
        messages = read_topic(kafka_bootstrap, settings.alerts.topic, len(EXPECTED_ALERTS), timeout=120)
        dead = read_topic(kafka_bootstrap, settings.alerts.dead_letters_topic, len(EXPECTED_DEAD), timeout=30)
        assert detect.isActive, detect.exception()
    finally:
        detect.stop()
    assert alert_pairs(messages) == sorted(EXPECTED_ALERTS)
    assert len(dead) == len(EXPECTED_DEAD)
    copy_alone = dataclasses.replace(settings.alerts, copy_trigger="availableNow")
    copy_settings = dataclasses.replace(settings, alerts=copy_alone)
    copy = alerts_queries(spark, copy_settings).starts[1]()
    copy.awaitTermination()
    assert {(row.event_id, row.rule) for row in table(spark, settings, ALERTS_TABLE).collect()} == EXPECTED_ALERTS


def test_real_time_mode_without_a_task_slot_per_partition_says_what_to_do(spark, job_settings):
    settings = alerts_settings(job_settings, trigger="realTime")  # the test topic has 2 partitions, Spark 2 slots
    with pytest.raises(EnvironmentProblem, match=r"local\[3\]"):
        alerts_queries(spark, settings)
