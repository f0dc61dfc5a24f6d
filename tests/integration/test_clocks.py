"""Whose clock a record's Kafka timestamp is, against the real broker: a producer that forges its CreateTime,
a topic with LogAppendTime, and the bound against the job's own clock."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from eventlake.local.producer import ProducedRecord, producer_config, send_records
from eventlake.pipeline.analytics import EVENTS_TABLE, analytics_queries
from eventlake.pipeline.contract import parse_events
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.runtime.config import ContractSettings
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.kafka_admin import create_topic
from eventlake.runtime.runner import run_queries

ANALYTICS_DEAD_LETTERS = job_table("analytics", DEAD_LETTERS_TABLE)


pytestmark = pytest.mark.integration

# The clock of a producer that runs far ahead, or lies.
FORGED = datetime(2100, 1, 1, 12, 0)
# A CreateTime topic of Kafka 4 refuses a timestamp more than message.timestamp.after.max.ms (1 hour) ahead of
# the broker's clock (INVALID_TIMESTAMP); within it, an event as far ahead moves a 10-minute watermark on.
SKEW = timedelta(minutes=50)


def document(event_id: str, event_time: datetime) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "timestamp": event_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": "web",
            "schema_version": "1",
            "type": "click",
        }
    ).encode()


def send_with_create_time(bootstrap: str, topic: str, values: list[bytes], create_time: datetime) -> None:
    """Produce ``values`` with ``create_time`` as their timestamp, as a producer with that clock would."""
    producer = Producer(producer_config(bootstrap))
    errors: list[str] = []
    milliseconds = int(create_time.replace(tzinfo=UTC).timestamp() * 1000)
    for value in values:
        producer.produce(
            topic, value=value, timestamp=milliseconds, on_delivery=lambda error, _: error and errors.append(str(error))
        )
    assert producer.flush(30) == 0 and not errors, errors


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as collect() gives times in this test session


def test_on_a_log_append_time_topic_a_forged_producer_clock_no_longer_counts(spark, job_settings, kafka_bootstrap):
    topic = f"test-{uuid.uuid4().hex[:10]}-append-time"
    assert create_topic(kafka_bootstrap, topic, partitions=1, exist_ok=False, timestamp_type="LogAppendTime")
    sent = utc_now()
    send_with_create_time(
        kafka_bootstrap, topic, [document("on-time", sent - timedelta(minutes=1)), document("forged", FORGED)], FORGED
    )
    settings = dataclasses.replace(job_settings, kafka=dataclasses.replace(job_settings.kafka, topic=topic))

    run_queries(spark, settings, "analytics", analytics_queries)

    received = utc_now()
    events = spark.read.format("delta").load(settings.storage.table_path(EVENTS_TABLE)).collect()
    assert [row.event_id for row in events] == ["on-time"]
    # The broker's time, not the 2100 the producer wrote.
    assert sent - timedelta(seconds=5) <= events[0].kafka_timestamp <= received
    (dead,) = spark.read.format("delta").load(settings.storage.table_path(ANALYTICS_DEAD_LETTERS)).collect()
    assert sent - timedelta(seconds=5) <= dead.kafka_timestamp <= received
    assert (dead.error_code, dead.stage, json.loads(dead.raw_value)["event_id"]) == (
        "EVENT_TIME_IN_FUTURE", "contract", "forged"
    )
    assert dead.error_message.startswith("timestamp '2100-01-01T12:00:00Z' is more than 300 seconds after the record's")
    assert dead.error_message.endswith(" (LogAppendTime: the broker's clock)")


def test_on_a_create_time_topic_the_job_clock_catches_a_skewed_producer_clock(spark, kafka_bootstrap, fresh_topic):
    sent = utc_now()
    # The project's producer sets no timestamp: librdkafka writes its machine's clock as CreateTime.
    send_records([ProducedRecord(None, document("honest", sent - timedelta(minutes=1)), "file")], kafka_bootstrap,
                 fresh_topic)
    skewed = (sent + SKEW).replace(microsecond=0)
    send_with_create_time(kafka_bootstrap, fresh_topic, [document("skewed", skewed)], skewed)
    raw = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", kafka_bootstrap)
        .option("subscribe", fresh_topic)
        .option("startingOffsets", "earliest")
        .load()
    )

    rows = sorted(raw.transform(parse_events, ContractSettings()).collect(), key=lambda row: row.timestamp)
    received = utc_now()

    honest, skewed_row = rows
    assert honest.timestampType == 0 and sent - timedelta(seconds=5) <= honest.timestamp <= received
    assert honest.error_code is None
    # The skewed event time passes the bound against its Kafka timestamp, which is just as skewed.
    assert (skewed_row.timestampType, skewed_row.timestamp) == (0, skewed)
    assert skewed_row.error_code == "EVENT_TIME_AHEAD_OF_JOB_CLOCK"
