from __future__ import annotations

from datetime import datetime

from chispa import assert_df_equality
from pyspark.sql import functions as F

from eventlake.pipeline.contract import invalid_records, parse_events
from eventlake.pipeline.dead_letters import to_dead_letters
from eventlake.runtime.config import ContractSettings


def test_dead_letters_keep_raw_bytes_reason_and_kafka_coordinates(spark, kafka_rows):
    raw = kafka_rows([b"\xff not json", b'{"event_id": "x"}'], topic="events")
    dead = invalid_records(raw.transform(parse_events, ContractSettings())).transform(
        to_dead_letters, job="analytics"
    )
    expected = spark.createDataFrame(
        [
            (bytearray(b"\xff not json"), "INVALID_UTF8", "extract", "analytics", "events", 0, 0,
             datetime(2026, 1, 1, 12)),
            (bytearray(b'{"event_id": "x"}'), "MISSING_FIELD", "contract", "analytics", "events", 0, 1,
             datetime(2026, 1, 1, 12)),
        ],
        "raw_value binary, error_code string, stage string, job string, topic string, partition int, offset long,"
        " kafka_timestamp timestamp",
    )
    assert_df_equality(dead.select(expected.columns), expected, ignore_row_order=True, ignore_nullable=True)
    assert dead.where(F.col("ingested_at").isNull() | F.col("error_message").isNull()).count() == 0
    assert dead.columns == [
        "raw_key", "raw_value", "raw_headers", "error_code", "error_message", "stage", "job",
        "topic", "partition", "offset", "kafka_timestamp", "ingested_at",
    ]


def test_dead_letters_keep_the_records_headers_for_a_replay(spark, kafka_rows):
    key_value = [("content-type", b"text/x-key-value")]
    raw = kafka_rows([b"event_id=x;no_time=1"], headers=[key_value])
    [dead] = invalid_records(raw.transform(parse_events, ContractSettings(extractors=("json", "kv")))).transform(
        to_dead_letters, job="etl"
    ).collect()
    assert [(header.key, bytes(header.value)) for header in dead.raw_headers] == key_value
