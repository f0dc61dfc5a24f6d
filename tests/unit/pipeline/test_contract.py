from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from eventlake.pipeline.contract import (
    CONTENT_TYPE_HEADER,
    ErrorCode,
    invalid_records,
    parse_events,
    valid_events,
    with_job_clock,
)
from eventlake.runtime.config import ContractSettings

CONTRACT = ContractSettings(schema_versions=("1", "2"), max_record_bytes=2_000)


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
    "unknown schema version": (encoded(event(schema_version="3")), ErrorCode.UNKNOWN_SCHEMA_VERSION),
    "timestamp without offset": (encoded(event(timestamp="2026-01-01T10:00:00")), ErrorCode.BAD_TIMESTAMP),
    "year-only timestamp": (encoded(event(timestamp="12345")), ErrorCode.BAD_TIMESTAMP),
    "impossible date": (encoded(event(timestamp="2026-02-30T10:00:00Z")), ErrorCode.BAD_TIMESTAMP),
    "space instead of T": (encoded(event(timestamp="2026-01-01 10:00:00Z")), ErrorCode.BAD_TIMESTAMP),
    "before 1970": (encoded(event(timestamp="1969-12-31T23:59:59Z")), ErrorCode.EVENT_TIME_TOO_EARLY),
    "far in the future": (encoded(event(timestamp="2026-01-01T12:06:00Z")), ErrorCode.EVENT_TIME_IN_FUTURE),
}


KV = [(CONTENT_TYPE_HEADER, b"text/x-key-value")]
KV_LINE = b"event_id=e-1; timestamp=2026-01-01T10:00:00Z; source=web; schema_version=1; type=click; data.user_id=u-1"

# Cases that need a content-type header: name -> (raw value, headers, expected code, stage).
FORMAT_CASES = {
    "unknown content type": (
        encoded(event()), [(CONTENT_TYPE_HEADER, b"text/csv")], ErrorCode.UNKNOWN_FORMAT, "extract"
    ),
    "kv without pairs": (b"just words", KV, ErrorCode.NOT_KEY_VALUE, "extract"),
    "kv pair without =": (KV_LINE + b"; loose", KV, ErrorCode.NOT_KEY_VALUE, "extract"),
    "kv empty key": (KV_LINE + b"; =x", KV, ErrorCode.NOT_KEY_VALUE, "extract"),
    "kv key twice": (KV_LINE + b"; source=mobile", KV, ErrorCode.NOT_KEY_VALUE, "extract"),
    "kv missing type": (KV_LINE.replace(b" type=click;", b""), KV, ErrorCode.MISSING_FIELD, "contract"),
    "kv bad timestamp": (KV_LINE.replace(b"10:00:00Z", b"10:00"), KV, ErrorCode.BAD_TIMESTAMP, "contract"),
    "json header, kv body": (KV_LINE, [(CONTENT_TYPE_HEADER, b"application/json")], ErrorCode.NOT_JSON, "extract"),
}
BOTH_FORMATS = dataclasses.replace(CONTRACT, extractors=("json", "kv"))


def test_every_error_code_has_a_case():
    codes = {code for _, code in INVALID_CASES.values()} | {case[2] for case in FORMAT_CASES.values()}
    # Its cases need Kafka timestamps of their own: test_an_event_ahead_of_the_job_clock_is_rejected...
    codes.add(ErrorCode.EVENT_TIME_AHEAD_OF_JOB_CLOCK)
    # The built-in contract reads no csv: test_declared_contract.py's csv cases have it.
    codes.add(ErrorCode.NOT_CSV)
    assert codes == set(ErrorCode)


def test_format_errors_get_their_code_and_stage(spark, kafka_rows):
    names = list(FORMAT_CASES)
    raw = kafka_rows([FORMAT_CASES[name][0] for name in names], headers=[FORMAT_CASES[name][1] for name in names])
    parsed = raw.transform(parse_events, BOTH_FORMATS)
    expected = spark.createDataFrame(
        [(offset, FORMAT_CASES[name][2].value, FORMAT_CASES[name][3]) for offset, name in enumerate(names)],
        "offset long, error_code string, error_stage string",
    )
    assert_df_equality(
        parsed.select("offset", "error_code", "error_stage"), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_kv_is_not_read_unless_configured(spark, kafka_rows):
    parsed = kafka_rows([KV_LINE], headers=[KV]).transform(parse_events, CONTRACT)
    row = parsed.first()
    assert (row.error_code, row.error_message) == (
        "UNKNOWN_FORMAT", "content-type 'text/x-key-value' is not one of application/json"
    )


def test_one_topic_carries_both_formats_and_both_versions(spark, kafka_rows):
    v2 = event(event_id="e-2", schema_version="2", event_type="pageview", session_id="s-9", type=REMOVED)
    values = [
        encoded(event()),
        KV_LINE.replace(b"e-1", b"e-3"),
        encoded(v2),
        b"event_id=e-4;timestamp=2026-01-01T10:00:00Z;source=web;schema_version=2;event_type=signup;session_id=s-1;"
        b"data.plan=pro",
    ]
    headers = [[(CONTENT_TYPE_HEADER, b"application/json; charset=utf-8")], KV, None, KV]
    parsed = kafka_rows(values, headers=headers).transform(parse_events, BOTH_FORMATS)
    expected = spark.createDataFrame(
        [
            ("e-1", "1", "click", "u-1", None, '{"page":"/home","user_id":"u-1"}'),
            ("e-3", "1", "click", "u-1", None, '{"user_id":"u-1"}'),
            ("e-2", "2", "pageview", "u-1", "s-9", '{"page":"/home","user_id":"u-1"}'),
            ("e-4", "2", "signup", None, "s-1", '{"plan":"pro"}'),
        ],
        "event_id string, schema_version string, event_type string, user_id string, session_id string, data string",
    )
    actual = valid_events(parsed).withColumn("data", F.to_json("data")).select(expected.columns)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert invalid_records(parsed).count() == 0


@pytest.mark.parametrize(
    "changes, code, message",
    [
        ({}, "MISSING_FIELD", "required field 'event_type' is missing or null"),
        (dict(event_type="click", session_id=5), "WRONG_TYPE", "field 'session_id' must be a string, got BIGINT"),
        (dict(event_type=" "), "EMPTY_FIELD", "field 'event_type' is empty"),
    ],
)
def test_version_2_rules(spark, kafka_rows, changes, code, message):
    document = event(schema_version="2", **changes)  # keeps version 1's "type": version 2 ignores it
    row = kafka_rows([encoded(document)]).transform(parse_events, CONTRACT).first()
    assert (row.error_code, row.error_message, row.error_stage) == (code, message, "contract")


def test_schema_version_is_checked_before_the_fields_it_decides(spark, kafka_rows):
    document = event(schema_version="3", event_id=REMOVED, type=REMOVED)
    row = kafka_rows([encoded(document)]).transform(parse_events, CONTRACT).first()
    assert row.error_code == "UNKNOWN_SCHEMA_VERSION"


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
    actual = valid_events(parsed).withColumn("data", F.to_json("data")).select(columns)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
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


def test_the_future_message_names_whose_clock_the_kafka_timestamp_is(spark, kafka_rows):
    raw = kafka_rows([encoded(event(timestamp="2026-01-01T12:06:00Z"))] * 3)
    # timestampType as Spark's Kafka source gives it: 0 CreateTime, 1 LogAppendTime (2: none the source knows).
    parsed = raw.withColumn("timestampType", F.col("offset").cast("int")).transform(parse_events, CONTRACT)
    expected = "timestamp '2026-01-01T12:06:00Z' is more than 300 seconds after the record's Kafka timestamp" \
        " 2026-01-01T12:00:00.000Z ({})"
    assert [(row.error_code, row.error_message) for row in parsed.orderBy("offset").collect()] == [
        ("EVENT_TIME_IN_FUTURE", expected.format("CreateTime: the producer's clock")),
        ("EVENT_TIME_IN_FUTURE", expected.format("LogAppendTime: the broker's clock")),
        ("EVENT_TIME_IN_FUTURE", expected.format("timestamp type unknown")),
    ]


def iso(moment: datetime) -> str:
    """A naive UTC datetime as an event's timestamp, to the second."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# A producer whose clock runs far ahead writes it into each record's Kafka timestamp (CreateTime): an event
# time just as far ahead passes the Kafka-timestamp bound.
FORGED_KAFKA_TIME = datetime(2100, 1, 1, 12, 0)


def test_an_event_ahead_of_the_job_clock_is_rejected_whatever_its_kafka_timestamp(spark, kafka_rows):
    now = datetime.now(UTC).replace(tzinfo=None)
    times = [FORGED_KAFKA_TIME, now + timedelta(minutes=6), now + timedelta(minutes=4)]
    raw = kafka_rows([encoded(event(timestamp=iso(moment))) for moment in times], times)

    rows = raw.transform(parse_events, CONTRACT).orderBy("offset").collect()
    assert [row.error_code for row in rows] == ["EVENT_TIME_AHEAD_OF_JOB_CLOCK"] * 2 + [None]
    assert rows[0].error_stage == "contract"
    message = re.fullmatch(
        r"timestamp '2100-01-01T12:00:00Z' is more than 300 seconds after the job's clock (\S+)"
        r" \(the micro-batch's time\)",
        rows[0].error_message,
    )
    assert message, rows[0].error_message
    job_time = datetime.fromisoformat(message.group(1)).astimezone(UTC).replace(tzinfo=None)
    assert now - timedelta(seconds=1) <= job_time <= datetime.now(UTC).replace(tzinfo=None)

    # The bound is contract.max_event_time_ahead_of_job.
    a_day = dataclasses.replace(CONTRACT, max_event_time_ahead_of_job=timedelta(days=1))
    assert [row.error_code for row in raw.transform(parse_events, a_day).orderBy("offset").collect()] == [
        "EVENT_TIME_AHEAD_OF_JOB_CLOCK", None, None
    ]


@pytest.mark.parametrize("clock", [with_job_clock, lambda raw: raw], ids=["with_job_clock", "current_timestamp"])
def test_a_batch_run_again_after_a_crash_judges_by_the_time_in_its_offset_log(spark, kafka_rows, tmp_path, clock):
    # A micro-batch's current_timestamp() is the time Spark wrote into the offset log with its offsets: a batch
    # run again must sort its records as the first run did, or a replay after a crash writes other rows. The
    # jobs read it through with_job_clock; parse_events alone reads current_timestamp() itself.
    kafka_rows([encoded(event(timestamp=iso(FORGED_KAFKA_TIME)))], [FORGED_KAFKA_TIME]).write.parquet(
        str(tmp_path / "source")
    )
    checkpoint = tmp_path / "checkpoint"

    def run() -> list[tuple]:
        seen: list[tuple] = []
        stream = spark.readStream.schema(spark.read.parquet(str(tmp_path / "source")).schema)
        query = (
            stream.parquet(str(tmp_path / "source"))
            .transform(clock)
            .transform(parse_events, CONTRACT)
            .writeStream.foreachBatch(
                lambda batch, batch_id: seen.extend(
                    (batch_id, row.error_code, row.error_message) for row in batch.collect()
                )
            )
            .option("checkpointLocation", str(checkpoint))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()
        return seen

    first = run()
    # The crash: batch 0 is in the offset log but not in the commit log, so the next start runs it again.
    for name in ("0", ".0.crc"):
        (checkpoint / "commits" / name).unlink()
    again = run()

    batch_ms = json.loads((checkpoint / "offsets" / "0").read_text().splitlines()[1])["batchTimestampMs"]
    batch_time = datetime.fromtimestamp(batch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    expected = (
        0,
        "EVENT_TIME_AHEAD_OF_JOB_CLOCK",
        f"timestamp '{iso(FORGED_KAFKA_TIME)}' is more than 300 seconds after the job's clock {batch_time}"
        " (the micro-batch's time)",
    )
    assert first == again == [expected]


def test_the_contracts_code_is_generated_once_not_in_every_micro_batch(spark, kafka_rows, tmp_path):
    # Spark writes a micro-batch's time into the generated Java code as a literal. Read in the contract's
    # checks, it made the whole contract (one class of about 200,000 characters) compile again, and run
    # cold, in every micro-batch; with_job_clock keeps it in a small class of its own.
    source = tmp_path / "source"
    for number in range(3):
        batch = kafka_rows([encoded(event(event_id=f"e{number}-{index}")) for index in range(3)])
        batch.coalesce(1).write.parquet(str(source / f"batch={number}"))
    code_by_batch: list[list[str]] = []

    def generated_code(_batch, _batch_id):
        (query,) = spark.streams.active
        stages = query._jsq.streamingQuery().lastExecution().debug().codegenToSeq()
        code_by_batch.append(sorted((stages.apply(index)._2() for index in range(stages.size())), key=len))

    stream = spark.readStream.schema(batch.schema).option("maxFilesPerTrigger", 1).parquet(str(source / "batch=*"))
    query = (
        stream.transform(with_job_clock)
        .transform(parse_events, CONTRACT)
        .writeStream.foreachBatch(generated_code)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()

    assert len(code_by_batch) == 3
    contract_code = {codes[-1] for codes in code_by_batch}
    assert len(contract_code) == 1, "the contract's generated code differs between micro-batches"
    clock_code = [codes[:-1] for codes in code_by_batch]
    assert all(len(code) < len(next(iter(contract_code))) / 10 for codes in clock_code for code in codes)


@pytest.mark.parametrize("versions, expected", [(("1",), "UNKNOWN_SCHEMA_VERSION"), (("1", "2"), None)])
def test_known_schema_versions_come_from_config(spark, kafka_rows, versions, expected):
    contract = ContractSettings(schema_versions=versions, max_event_time_ahead=timedelta(minutes=5))
    v2 = event(schema_version="2", event_type="click", type=REMOVED)
    parsed = kafka_rows([encoded(v2)]).transform(parse_events, contract)
    assert parsed.first().error_code == expected


def test_the_config_knows_the_versions_and_formats_the_contract_reads():
    # config.py lists them to reject a bad config before Spark starts; it cannot import contract.py.
    from eventlake.pipeline.contract import EXTRACTORS, shipped_events_contract
    from eventlake.runtime.config import KNOWN_EXTRACTORS, KNOWN_SCHEMA_VERSIONS

    shipped = shipped_events_contract()
    assert (set(KNOWN_SCHEMA_VERSIONS), set(KNOWN_EXTRACTORS)) == (set(shipped.versions), set(EXTRACTORS))
    assert set(shipped.formats) == set(EXTRACTORS)
