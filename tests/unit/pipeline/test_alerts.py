from __future__ import annotations

import json
from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from eventlake.pipeline.alerts import (
    RULE_HEADER,
    alerts_from_messages,
    check_rules,
    dead_letters_from_messages,
    to_alert_messages,
    with_wall_clock,
)
from eventlake.pipeline.contract import parse_events
from eventlake.runtime.config import AlertRule, ConfigError, ContractSettings

from ...conftest import KAFKA_SCHEMA

CONTRACT = ContractSettings(schema_versions=("1", "2"))
RULES = (
    AlertRule(
        "large_purchase", "event_type = 'purchase' AND try_variant_get(data, '$.amount', 'double') >= 150", "high"
    ),
    AlertRule("any_purchase", "event_type = 'purchase'", "low"),
    AlertRule("mobile", "source = 'mobile'", "medium"),
)


def event(event_id: str, event_type: str, source: str = "web", **data) -> bytes:
    return json.dumps({
        "event_id": event_id, "timestamp": "2026-01-01T11:59:00Z", "source": source, "schema_version": "1",
        "type": event_type, "data": {"user_id": "u-1", **data},
    }).encode()


RECORDS = [
    event("big", "purchase", amount=180.0),      # large_purchase, any_purchase
    event("small", "purchase", amount=12.5),     # any_purchase
    event("phone", "click", source="mobile"),    # mobile
    event("nothing", "click"),                   # no rule
    event("no-amount", "purchase", source="mobile"),  # any_purchase, mobile: large_purchase is NULL, not a match
    b"not json",                                 # a dead letter
]


@pytest.fixture
def messages(kafka_rows):
    raw = kafka_rows(RECORDS, topic="events", headers=[None] * 5 + [[("trace", b"t-1")]])
    parsed = raw.transform(with_wall_clock).transform(parse_events, CONTRACT)
    return to_alert_messages(parsed, RULES, "alerts", "alerts-dead")


def test_each_valid_event_gives_one_message_per_matching_rule_and_each_invalid_record_one_dead_letter(spark, messages):
    got = messages.select(
        "topic", F.col("key").cast("string").alias("key"),
        F.get_json_object(F.col("value").cast("string"), "$.rule").alias("rule"),
    )
    expected = spark.createDataFrame(
        [
            ("alerts", "big", "large_purchase"), ("alerts", "big", "any_purchase"),
            ("alerts", "small", "any_purchase"), ("alerts", "phone", "mobile"),
            ("alerts", "no-amount", "any_purchase"), ("alerts", "no-amount", "mobile"),
            ("alerts-dead", None, None),
        ],
        "topic string, key string, rule string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_an_alert_message_carries_the_event_its_source_and_when_it_was_detected(messages):
    [message] = messages.where(F.col("key").cast("string") == "big").where(
        F.get_json_object(F.col("value").cast("string"), "$.rule") == "large_purchase"
    ).collect()
    alert = json.loads(message.value)
    assert alert["severity"] == "high"
    assert alert["event"]["event_id"] == "big" and alert["event"]["event_type"] == "purchase"
    assert alert["event"]["data"] == {"user_id": "u-1", "amount": 180.0}
    assert alert["source"] == {"topic": "events", "partition": 0, "offset": 0, "timestamp": "2026-01-01T12:00:00.000Z"}
    assert datetime.fromisoformat(alert["detected_at"]).year >= 2026
    assert [(header.key, bytes(header.value)) for header in message.headers] == [(RULE_HEADER, b"large_purchase")]


def as_kafka_rows(spark, messages, first_offset=100):
    """The messages as Spark's Kafka source reads them back (one partition, offsets in order)."""
    rows = [
        (message.key, message.value, message.topic, 0, first_offset + index, datetime(2026, 1, 1, 12, 0, 1), 0,
         message.headers)
        for index, message in enumerate(messages.collect())
    ]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def test_alert_messages_read_back_as_rows_with_an_id_per_source_record_and_rule(spark, messages):
    alerts = alerts_from_messages(as_kafka_rows(spark, messages.where(F.col("topic") == "alerts")))
    expected = spark.createDataFrame(
        [
            ("events/0/0/large_purchase", "large_purchase", "high", "big", "purchase", 0),
            ("events/0/0/any_purchase", "any_purchase", "low", "big", "purchase", 0),
            ("events/0/1/any_purchase", "any_purchase", "low", "small", "purchase", 1),
            ("events/0/2/mobile", "mobile", "medium", "phone", "click", 2),
            ("events/0/4/any_purchase", "any_purchase", "low", "no-amount", "purchase", 4),
            ("events/0/4/mobile", "mobile", "medium", "no-amount", "purchase", 4),
        ],
        "alert_id string, rule string, severity string, event_id string, event_type string, source_offset long",
    )
    assert_df_equality(alerts.select(expected.columns), expected, ignore_row_order=True, ignore_nullable=True)
    assert alerts.where(
        F.col("event_time").isNull() | F.col("detected_at").isNull() | (F.col("source_date") != F.lit("2026-01-01"))
    ).isEmpty()


def test_a_dead_letter_reads_back_with_raw_bytes_error_and_original_coordinates(spark, messages):
    [dead] = dead_letters_from_messages(as_kafka_rows(spark, messages.where(F.col("topic") == "alerts-dead"))).collect()
    assert bytes(dead.raw_value) == b"not json"
    assert (dead.error_code, dead.stage, dead.job) == ("NOT_JSON", "extract", "alerts")
    assert (dead.topic, dead.partition, dead.offset, dead.record_id) == ("events", 0, 5, "events/0/5")
    assert dead.kafka_timestamp == datetime(2026, 1, 1, 12)
    assert [(header.key, bytes(header.value)) for header in dead.raw_headers] == [("trace", b"t-1")]
    assert dead.error_message


def test_a_rule_that_cannot_run_is_named_before_anything_is_read(kafka_rows):
    parsed = kafka_rows([event("a", "click")]).transform(parse_events, CONTRACT)
    check_rules(parsed, RULES)
    with pytest.raises(ConfigError, match=r"alerts.rules.typo.when .* cannot run"):
        check_rules(parsed, (AlertRule("typo", "evnt_type = 'click'"),))
