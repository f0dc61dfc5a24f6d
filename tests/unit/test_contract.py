from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from chispa import assert_df_equality

from eventlake.config import ContractSettings
from eventlake.contract import ErrorCode, invalid_records, parse_events, valid_events

CONTRACT = ContractSettings(max_record_bytes=2_000)


def event(**changes) -> dict:
    base = {
        "event_id": "e-1",
        "timestamp": "2026-01-01T10:00:00Z",
        "source": "web",
        "schema_version": "1",
        "type": "click",
        "data": {"user_id": "u-1", "page": "/home"},
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not REMOVED}


REMOVED = object()


def encoded(document) -> bytes:
    return json.dumps(document).encode()


# One case per error code (and per field for the field rules): name -> (raw value, expected code).
INVALID_CASES = {
    "null value": (None, ErrorCode.EMPTY_VALUE),
    "empty value": (b"", ErrorCode.EMPTY_VALUE),
    "too large": (encoded(event(data={"user_id": "u", "blob": "x" * 3_000})), ErrorCode.TOO_LARGE),
    "invalid utf-8": (b'{"event_id": "\xff\xfe"}', ErrorCode.INVALID_UTF8),
    "not json": (b"hello world", ErrorCode.NOT_JSON),
    "truncated json": (encoded(event())[:-5], ErrorCode.NOT_JSON),
    "duplicate keys": (b'{"event_id": "a", "event_id": "b"}', ErrorCode.UNREADABLE_JSON),
    "array": (b"[1, 2]", ErrorCode.NOT_OBJECT),
    "string": (b'"just text"', ErrorCode.NOT_OBJECT),
    "json null": (b"null", ErrorCode.NOT_OBJECT),
    "missing event_id": (encoded(event(event_id=REMOVED)), ErrorCode.MISSING_FIELD),
    "null timestamp": (encoded(event(timestamp=None)), ErrorCode.MISSING_FIELD),
    "missing source": (encoded(event(source=REMOVED)), ErrorCode.MISSING_FIELD),
    "missing schema_version": (encoded(event(schema_version=REMOVED)), ErrorCode.MISSING_FIELD),
    "missing type": (encoded(event(type=REMOVED)), ErrorCode.MISSING_FIELD),
    "numeric event_id": (encoded(event(event_id=12345)), ErrorCode.WRONG_TYPE),
    "numeric timestamp": (encoded(event(timestamp=12345)), ErrorCode.WRONG_TYPE),
    "boolean source": (encoded(event(source=True)), ErrorCode.WRONG_TYPE),
    "numeric schema_version": (encoded(event(schema_version=1)), ErrorCode.WRONG_TYPE),
    "object type": (encoded(event(type={"name": "click"})), ErrorCode.WRONG_TYPE),
    "data not an object": (encoded(event(data=[1])), ErrorCode.WRONG_TYPE),
    "numeric user_id": (encoded(event(data={"user_id": 7})), ErrorCode.WRONG_TYPE),
    "empty event_id": (encoded(event(event_id="")), ErrorCode.EMPTY_FIELD),
    "blank type": (encoded(event(type="   ")), ErrorCode.EMPTY_FIELD),
    "unknown schema version": (encoded(event(schema_version="2")), ErrorCode.UNKNOWN_SCHEMA_VERSION),
    "timestamp without offset": (encoded(event(timestamp="2026-01-01T10:00:00")), ErrorCode.BAD_TIMESTAMP),
    "year-only timestamp": (encoded(event(timestamp="12345")), ErrorCode.BAD_TIMESTAMP),
    "impossible date": (encoded(event(timestamp="2026-02-30T10:00:00Z")), ErrorCode.BAD_TIMESTAMP),
    "space instead of T": (encoded(event(timestamp="2026-01-01 10:00:00Z")), ErrorCode.BAD_TIMESTAMP),
    "before 1970": (encoded(event(timestamp="1969-12-31T23:59:59Z")), ErrorCode.EVENT_TIME_TOO_EARLY),
    "far in the future": (encoded(event(timestamp="2026-01-01T12:06:00Z")), ErrorCode.EVENT_TIME_IN_FUTURE),
}


def test_every_error_code_has_a_case():
    assert {code for _, code in INVALID_CASES.values()} == set(ErrorCode)


def test_each_invalid_record_gets_its_error_code(spark, kafka_rows):
    names = list(INVALID_CASES)
    raw = kafka_rows([INVALID_CASES[name][0] for name in names])
    parsed = raw.transform(parse_events, CONTRACT)
    actual = parsed.select("offset", "error_code")
    expected = spark.createDataFrame(
        [(offset, INVALID_CASES[name][1].value) for offset, name in enumerate(names)], "offset long, error_code string"
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert parsed.where("error_message is null").count() == 0


def test_valid_events_are_typed_and_keep_their_kafka_coordinates(spark, kafka_rows):
    values = [
        encoded(event()),
        encoded(event(event_id="e-2", timestamp="2026-01-01T12:30:00.250+02:00", type="pageview", data=REMOVED)),
        encoded(event(event_id="e-3", timestamp="2026-01-01T12:04:59Z", data={"page": "/x"})),
    ]
    parsed = kafka_rows(values).transform(parse_events, CONTRACT)
    expected = spark.createDataFrame(
        [
            ("e-1", datetime(2026, 1, 1, 10, 0), "web", "1", "click", "u-1", '{"page":"/home","user_id":"u-1"}', 0),
            ("e-2", datetime(2026, 1, 1, 10, 30, 0, 250_000), "web", "1", "pageview", None, None, 1),
            ("e-3", datetime(2026, 1, 1, 12, 4, 59), "web", "1", "click", None, '{"page":"/x"}', 2),
        ],
        "event_id string, event_time timestamp, source string, schema_version string, event_type string,"
        " user_id string, data string, offset long",
    )
    columns = ["event_id", "event_time", "source", "schema_version", "event_type", "user_id", "data", "offset"]
    assert_df_equality(
        valid_events(parsed).select(columns), expected, ignore_row_order=True, ignore_nullable=True
    )
    assert invalid_records(parsed).count() == 0


def test_error_message_names_the_field(spark, kafka_rows):
    parsed = kafka_rows([encoded(event(timestamp=12345)), encoded(event(source=REMOVED))]).transform(
        parse_events, CONTRACT
    )
    messages = [row.error_message for row in parsed.orderBy("offset").collect()]
    assert messages == [
        "field 'timestamp' must be a string, got BIGINT",
        "required field 'source' is missing or null",
    ]


def test_future_tolerance_is_measured_from_the_kafka_timestamp(spark, kafka_rows):
    kafka_time = datetime(2026, 1, 1, 12, 0)
    values = [
        encoded(event(timestamp="2026-01-01T12:05:00Z")),  # exactly the tolerance: accepted
        encoded(event(timestamp="2026-01-01T12:05:01Z")),  # one second beyond: rejected
    ]
    parsed = kafka_rows(values, [kafka_time, kafka_time]).transform(parse_events, CONTRACT)
    assert [row.error_code for row in parsed.orderBy("offset").collect()] == [None, "EVENT_TIME_IN_FUTURE"]


@pytest.mark.parametrize("versions, expected", [(("1",), "UNKNOWN_SCHEMA_VERSION"), (("1", "2"), None)])
def test_known_schema_versions_come_from_config(spark, kafka_rows, versions, expected):
    contract = ContractSettings(schema_versions=versions, max_event_time_ahead=timedelta(minutes=5))
    parsed = kafka_rows([encoded(event(schema_version="2"))]).transform(parse_events, contract)
    assert parsed.first().error_code == expected
