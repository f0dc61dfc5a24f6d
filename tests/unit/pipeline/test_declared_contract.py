from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from eventlake.pipeline.contract import (
    ErrorCode,
    contract_problems,
    declared_columns,
    invalid_records,
    parse_declared,
    parse_events,
    shipped_events_contract,
    valid_declared_events,
)
from eventlake.pipeline.dead_letters import to_dead_letters
from eventlake.runtime.config import (
    ContractField,
    ContractSettings,
    ContractVersionSpec,
    DeclaredContract,
    EventTimeSpec,
    declared_contracts,
)
from tests.conftest import PROJECT_ROOT


def ysb_contract() -> DeclaredContract:
    return declared_contracts((PROJECT_ROOT / "conf" / "contracts" / "ysb_ad_event.toml").read_text())["ysb_ad_event"]


YSB = ysb_contract()


def ysb(**changes) -> bytes:
    event = {
        "user_id": "u-1", "page_id": "p-1", "ad_id": "a-1", "ad_type": "banner", "event_type": "view",
        "event_time": "1767261600000", "ip_address": "1.2.3.4",  # 2026-01-01T10:00:00Z
    }
    event.update(changes)
    return json.dumps({key: value for key, value in event.items() if value is not REMOVED}).encode()


REMOVED = object()


def by_offset(parsed) -> dict:
    """offset -> the parsed row, all columns, in one Spark job."""
    return {row.offset: row for row in parsed.collect()}


def codes(rows: dict) -> dict[int, str | None]:
    return {offset: row.error_code for offset, row in rows.items()}


def stages(rows: dict) -> dict[int, tuple[str | None, str | None]]:
    return {offset: (row.error_code, row.error_stage) for offset, row in rows.items()}


def test_a_ysb_record_from_the_declared_config_is_typed(kafka_rows):
    assert contract_problems(YSB) == []
    assert declared_columns(YSB) == {
        "user_id": "string", "page_id": "string", "ad_id": "string", "ad_type": "string", "event_type": "string",
        "ip_address": "string", "event_time": "timestamp",
    }
    parsed = kafka_rows([ysb(), ysb(ip_address=REMOVED)], topic="ads").transform(parse_declared, YSB)
    events = valid_declared_events(parsed, YSB).orderBy("offset").collect()
    assert [row.asDict() for row in events] == [
        {
            "user_id": "u-1", "page_id": "p-1", "ad_id": "a-1", "ad_type": "banner", "event_type": "view",
            "ip_address": ip, "event_time": datetime(2026, 1, 1, 10), "topic": "ads", "partition": 0,
            "offset": offset, "kafka_timestamp": datetime(2026, 1, 1, 12),
        }
        for offset, ip in enumerate(["1.2.3.4", None])
    ]
    # Every raw column is kept for the dead letters, then the errors, then the event columns.
    kafka = ["key", "value", "topic", "partition", "offset", "timestamp", "timestampType", "headers"]
    assert parsed.columns[:8] == kafka
    assert parsed.columns[8:11] == ["error_code", "error_message", "error_stage"]


# name -> (raw value, expected code, stage), against the YSB contract (max_record_bytes = 4096)
YSB_CASES = {
    "null value": (None, ErrorCode.EMPTY_VALUE, "extract"),
    "empty value": (b"", ErrorCode.EMPTY_VALUE, "extract"),
    "too large": (ysb(ip_address="x" * 5_000), ErrorCode.TOO_LARGE, "extract"),
    "invalid utf-8": (b'{"user_id": "\xff"}', ErrorCode.INVALID_UTF8, "extract"),
    "not json": (b"user_id=u-1", ErrorCode.NOT_JSON, "extract"),
    "two objects": (ysb() + ysb(), ErrorCode.NOT_JSON, "extract"),
    "duplicate keys": (b'{"ad_id": "a", "ad_id": "b"}', ErrorCode.UNREADABLE_JSON, "extract"),
    "array": (b"[1]", ErrorCode.NOT_OBJECT, "extract"),
    "missing ad_id": (ysb(ad_id=REMOVED), ErrorCode.MISSING_FIELD, "contract"),
    "null ad_id": (ysb(ad_id=None), ErrorCode.MISSING_FIELD, "contract"),
    "numeric ad_id": (ysb(ad_id=12), ErrorCode.WRONG_TYPE, "contract"),
    "numeric event_time": (ysb(event_time=1767261600000), ErrorCode.WRONG_TYPE, "contract"),
    "blank ad_type": (ysb(ad_type="  "), ErrorCode.EMPTY_FIELD, "contract"),
    "event_time not digits": (ysb(event_time="17x"), ErrorCode.BAD_TIMESTAMP, "contract"),
    "event_time negative": (ysb(event_time="-5"), ErrorCode.BAD_TIMESTAMP, "contract"),
    "event_time past year 9999": (ysb(event_time="9" * 20), ErrorCode.BAD_TIMESTAMP, "contract"),
    "event_time ahead of the job": (
        ysb(event_time="32503680000000"), ErrorCode.EVENT_TIME_AHEAD_OF_JOB_CLOCK, "contract"
    ),
    "valid": (ysb(), None, None),
}


def test_each_invalid_record_gets_its_error_code_and_stage(kafka_rows):
    names = list(YSB_CASES)
    parsed = kafka_rows([YSB_CASES[name][0] for name in names]).transform(parse_declared, YSB)
    rows = by_offset(parsed)
    assert {name: stages(rows)[offset] for offset, name in enumerate(names)} == {
        name: (code and str(code), stage) for name, (_value, code, stage) in YSB_CASES.items()
    }
    # Invalid rows keep no event column; the message names the field as the record does, and the form.
    assert [row.error_code is None for row in rows.values()] == [row.event_time is not None for row in rows.values()]
    text = {offset: row.error_message for offset, row in rows.items()}
    assert text[names.index("missing ad_id")] == "required field 'ad_id' is missing or null"
    assert text[names.index("numeric ad_id")] == "field 'ad_id' must be a string, got BIGINT"
    assert text[names.index("event_time not digits")] == "event_time '17x' is not epoch milliseconds"
    assert text[names.index("event_time ahead of the job")].startswith(
        "event_time '32503680000000' is more than 300 seconds after the job's clock "
    )


TYPES = DeclaredContract(
    fields={
        "n": ContractField("long"),
        "x": ContractField("double", required=False),
        "d": ContractField("decimal(5,2)", required=False),
        "b": ContractField("boolean", required=False),
        "at": ContractField("timestamp", required=False),
        "o": ContractField("object", required=False),
        "v": ContractField("variant", required=False),
        "ts": ContractField("string", path="meta.time"),
    },
    event_time=EventTimeSpec(field="ts"),
)


def typed(**values) -> bytes:
    return json.dumps({"n": 1, "meta": {"time": "2026-01-01T10:00:00+01:00"}, **values}).encode()


def test_json_values_must_have_their_declared_type(kafka_rows):
    values = [
        typed(x=2, d=1.5, b=True, at="2026-01-02T03:04:05Z", o={"k": [1]}, v="anything"),
        typed(x=None, o=None),  # JSON null is absent
        typed(n="12"),  # a number as a string is no long
        typed(n=1.5),
        typed(x="2.5"),
        typed(d=1234.5),  # does not fit decimal(5,2)
        typed(b="true"),
        typed(at="2026-01-02"),
        typed(o=[1]),
        json.dumps({"n": 1, "meta": "no object"}).encode(),  # so meta.time is missing
    ]
    parsed = kafka_rows(values).transform(parse_declared, TYPES)
    rows = by_offset(parsed)
    assert codes(rows) == {0: None, 1: None, **dict.fromkeys(range(2, 9), "WRONG_TYPE"), 9: "MISSING_FIELD"}
    assert rows[2].error_message == "field 'n' must be an integer, got the string '12'"
    assert rows[5].error_message == "field 'd' must be a number that fits decimal(5,2), got DECIMAL(5,1)"
    assert rows[9].error_message == "required field 'meta.time' is missing or null"
    first, second = rows[0], rows[1]
    assert (first.n, first.x, first.d, first.b) == (1, 2.0, Decimal("1.50"), True)
    assert first.at == datetime(2026, 1, 2, 3, 4, 5)
    assert (json.loads(first.o.toJson()), first.v.toJson()) == ({"k": [1]}, '"anything"')
    assert first.ts == "2026-01-01T10:00:00+01:00"
    assert first.event_time == datetime(2026, 1, 1, 9)
    assert (second.x, second.o, second.v) == (None, None, None)
    assert valid_declared_events(parsed, TYPES).schema.simpleString() == (
        "struct<n:bigint,x:double,d:decimal(5,2),b:boolean,at:timestamp,o:variant,v:variant,ts:string,"
        "event_time:timestamp,topic:string,partition:int,offset:bigint,kafka_timestamp:timestamp>"
    )


KV = DeclaredContract(
    format="kv",
    fields={
        "id": ContractField("string"),
        "amount": ContractField("decimal(10,2)"),
        "count": ContractField("long", required=False),
        "ok": ContractField("boolean", required=False),
        "user": ContractField("string", required=False, path="data.user_id"),
        "extra": ContractField("object", required=False),
        "when": ContractField("string", path="ts"),
    },
    event_time=EventTimeSpec(field="when", form="epoch_seconds"),
)


def test_kv_values_are_text_read_in_their_type(kafka_rows):
    line = "id=e-1; amount= 12.5 ; count=3; ok=true; data.user_id=u-1; extra={\"a\": 1}; ts=1767261600.25"
    values = [
        line,
        "id=e-2; amount=1; ts=1767261600",
        "id=e-3; amount=; ts=1767261600",  # blank for a decimal: missing
        "id=; amount=1; ts=1767261600",  # blank for a string: empty
        "id=e-5; amount=1; count=three; ts=1767261600",
        "id=e-6; amount=1; extra=[1]; ts=1767261600",
        "id=e-7; amount=1; ts=1767261600; id=e-8",
        "id=e-9; amount=1; loose; ts=1767261600",
        "id=e-10; amount=1; ts=2026-01-01",
    ]
    rows = by_offset(kafka_rows([value.encode() for value in values]).transform(parse_declared, KV))
    assert stages(rows) == {
        0: (None, None), 1: (None, None), 2: ("MISSING_FIELD", "contract"), 3: ("EMPTY_FIELD", "contract"),
        4: ("WRONG_TYPE", "contract"), 5: ("WRONG_TYPE", "contract"), 6: ("NOT_KEY_VALUE", "extract"),
        7: ("NOT_KEY_VALUE", "extract"), 8: ("BAD_TIMESTAMP", "contract"),
    }
    assert rows[4].error_message == "field 'count' must be an integer, got 'three'"
    assert rows[8].error_message == "ts '2026-01-01' is not epoch seconds"
    row = rows[0]
    assert (row.id, row.amount, row["count"], row.ok, row.user, row.extra.toJson(), row.when) == (
        "e-1", Decimal("12.50"), 3, True, "u-1", '{"a":1}', "1767261600.25"
    )
    assert row.event_time == datetime(2026, 1, 1, 10, 0, 0, 250_000)


CSV = DeclaredContract(
    format="csv",
    csv_columns=("id", "ts", "amount", "note"),
    fields={
        "id": ContractField("string"),
        "time": ContractField("string", path="ts"),
        "amount": ContractField("double"),
        "note": ContractField("string", required=False),
    },
    event_time=EventTimeSpec(field="time", form="epoch_millis"),
)


def test_csv_records_must_have_the_declared_columns(kafka_rows):
    values = [
        'e-1,1767261600000,2.5,"a, quoted note"\n',
        "e-2,1767261600000,2.5,",  # an empty optional column
        "e-3,1767261600000,2.5",  # a column too few
        "e-4,1767261600000,2.5,x,y",  # a column too many
        'e-5,1767261600000,2.5,"not closed',
        "e-6,1767261600000,,x",  # a blank double is missing
        "e-7,1767261600000,lots,x",
    ]
    rows = by_offset(kafka_rows([value.encode() for value in values]).transform(parse_declared, CSV))
    not_csv = (str(ErrorCode.NOT_CSV), "extract")
    assert stages(rows) == {
        0: (None, None), 1: (None, None), 2: not_csv, 3: not_csv, 4: not_csv,
        5: ("MISSING_FIELD", "contract"), 6: ("WRONG_TYPE", "contract"),
    }
    assert rows[2].error_message == (
        "the record is not 4 CSV columns separated by ',' (a column too few or too many, or a quote not closed)"
    )
    assert [(row.id, row.time, row.amount, row.note, row.event_time) for row in (rows[0], rows[1])] == [
        ("e-1", "1767261600000", 2.5, "a, quoted note", datetime(2026, 1, 1, 10)),
        ("e-2", "1767261600000", 2.5, "", datetime(2026, 1, 1, 10)),
    ]


def test_event_time_in_epoch_seconds_or_a_pattern_read_in_its_time_zone(kafka_rows):
    seconds = dataclasses.replace(
        TYPES, fields={"ts": ContractField("variant")}, event_time=EventTimeSpec(field="ts", form="epoch_seconds")
    )
    raw = kafka_rows([b'{"ts": 1767261600.5}', b'{"ts": "1767261600"}', b'{"ts": true}', b'{"ts": -1}'])
    rows = by_offset(raw.transform(parse_declared, seconds))
    assert codes(rows) == {0: None, 1: None, 2: "BAD_TIMESTAMP", 3: "BAD_TIMESTAMP"}
    assert rows[0].event_time == datetime(2026, 1, 1, 10, 0, 0, 500_000)
    assert rows[1].event_time == datetime(2026, 1, 1, 10)

    paris = DeclaredContract(
        fields={"ts": ContractField("string")},
        event_time=EventTimeSpec(field="ts", form="pattern", pattern="yyyy-MM-dd HH:mm:ss", time_zone="Europe/Paris"),
    )
    raw = kafka_rows([b'{"ts": "2025-07-01 12:00:00"}', b'{"ts": "2026-01-01 11:00:00"}', b'{"ts": "2026-01-01"}'])
    rows = by_offset(raw.transform(parse_declared, paris))
    assert codes(rows) == {0: None, 1: None, 2: "BAD_TIMESTAMP"}
    assert rows[2].error_message == "ts '2026-01-01' is not a time of the pattern 'yyyy-MM-dd HH:mm:ss'"
    # Paris is UTC+2 in summer, UTC+1 in winter.
    assert (rows[0].event_time, rows[1].event_time) == (datetime(2025, 7, 1, 10), datetime(2026, 1, 1, 10))


# The built-in contract as shipped, JSON only: version 2 renames type to event_type and adds session_id.
BUILT_IN = dataclasses.replace(shipped_events_contract(), formats=())


def event(**changes) -> bytes:
    base = {"event_id": "e-1", "timestamp": "2026-01-01T10:00:00Z", "source": "web", "schema_version": "1",
            "type": "click", "data": {"user_id": "u-1", "page": "/home"}}
    base.update(changes)
    return json.dumps({key: value for key, value in base.items() if value is not REMOVED}).encode()


def test_the_built_in_contract_declared_gives_the_same_events_and_errors(kafka_rows):
    v2 = {"schema_version": "2", "type": REMOVED, "event_type": "view"}
    values = [
        event(),
        event(data=REMOVED),
        event(**v2, session_id="s-1"),
        event(**v2),
        event(**v2, session_id=7),
        event(type=REMOVED, event_type="view"),  # version 1 needs type
        event(**{**v2, "event_type": REMOVED, "type": "view"}),  # version 2 needs event_type
        event(schema_version="3"),
        event(schema_version=2),
        event(schema_version=" "),
        event(schema_version=REMOVED),
        event(event_id=REMOVED, source=12),
        event(source=12, type=""),
        event(data=[1]),
        event(data={"user_id": 7}),
        event(event_id=" "),
        event(timestamp=" "),
        event(timestamp="2026-01-01T10:00:00"),
        event(timestamp=1),
    ]
    raw = kafka_rows(values)
    declared = raw.transform(parse_declared, BUILT_IN)
    built_in = raw.transform(parse_events, ContractSettings(schema_versions=("1", "2")))
    columns = ["offset", "error_code", "error_stage", "error_message", "event_id", "event_type", "user_id",
               "session_id", "event_time", "schema_version"]
    assert declared.select(columns).orderBy("offset").collect() == built_in.select(columns).orderBy("offset").collect()
    assert {row.error_code for row in declared.select("error_code").collect()} == {
        None, "MISSING_FIELD", "WRONG_TYPE", "EMPTY_FIELD", "UNKNOWN_SCHEMA_VERSION", "BAD_TIMESTAMP"
    }


def test_declared_columns_put_the_event_time_and_version_last():
    assert declared_columns(BUILT_IN) == {
        "event_id": "string", "source": "string", "event_type": "string", "data": "variant", "user_id": "string",
        "session_id": "string", "event_time": "timestamp", "schema_version": "string",
    }
    assert declared_columns(KV) == {
        "id": "string", "amount": "decimal(10,2)", "count": "bigint", "ok": "boolean", "user": "string",
        "extra": "variant", "when": "string", "event_time": "timestamp",
    }


def test_contract_problems_name_each_mistake():
    fields = {"amount": ContractField("money"), "ts": ContractField("string", required=False)}
    bad = DeclaredContract(
        format="xml",
        fields={**fields, "topic": ContractField(), "event_time": ContractField(), "_x": ContractField()},
        id_field="id",
        event_time=EventTimeSpec(field="when", form="pattern", time_zone="Mars/Olympus"),
        versions={"2": ContractVersionSpec(rename={"x": "y"}, add={"amount": ContractField()})},
        max_record_bytes=0,
    )
    assert contract_problems(bad) == [
        "format: 'xml' is not one of json, kv, csv",
        "fields.amount.type: 'money' is not one of string, long, double, boolean, decimal(p,s), timestamp, object,"
        " variant",
        "fields.topic: 'topic' is a column the parsed rows already have: name it otherwise, with path",
        "fields.event_time: only the event time field may be called event_time (it is the parsed time)",
        "fields._x: a field's name must not be empty, start with '_' or hold a '.' (set its path)",
        "versions needs version_field (the field that holds a record's version)",
        "versions.2.rename: 'x' is not a field",
        "versions.2.add.amount: 'amount' is already a field",
        "event_time.field: 'when' is not a field",
        "event_time.pattern is required with form = 'pattern'",
        "event_time.time_zone: 'Mars/Olympus' is not a time zone (like Europe/Paris, UTC or +01:00)",
        "id_field: 'id' is not a field",
        "max_record_bytes must be positive, got 0",
    ]
    csv = DeclaredContract(format="csv", fields={"ts": ContractField("long")}, event_time=EventTimeSpec(field="ts"))
    assert contract_problems(csv) == [
        "csv_columns must list the columns of a csv record",
        "fields.ts: 'ts' is not one of csv_columns (set its path)",
        "event_time.form: 'iso8601' cannot read field 'ts' of type 'long'",
    ]
    unversioned = dataclasses.replace(BUILT_IN, version_field="", versions={})
    assert contract_problems(dataclasses.replace(unversioned, version_field="v")) == [
        "version_field needs versions (a [versions.<version>] table for each accepted one)"
    ]
    with_pattern = EventTimeSpec("event_time", "epoch_millis", pattern="yyyy")
    assert contract_problems(dataclasses.replace(YSB, event_time=with_pattern)) == [
        "event_time.pattern applies to form = 'pattern' only"
    ]
    with pytest.raises(ValueError, match="format: 'xml'"):
        parse_declared(None, bad)  # type: ignore[arg-type]


def test_invalid_records_become_dead_letters(kafka_rows):
    values = [ysb(), ysb(ad_id=REMOVED), b"nope"]
    parsed = kafka_rows(values, topic="ads").transform(parse_declared, YSB)
    dead = invalid_records(parsed).transform(to_dead_letters, job="ysb").orderBy("offset").collect()
    assert [(bytes(row.raw_value), row.error_code, row.stage, row.topic, row.offset) for row in dead] == [
        (values[1], "MISSING_FIELD", "contract", "ads", 1),
        (b"nope", "NOT_JSON", "extract", "ads", 2),
    ]


def test_the_job_clock_column_is_read_and_dropped(kafka_rows):
    from eventlake.pipeline.contract import JOB_TIME_COLUMN, with_job_clock

    ahead = dataclasses.replace(YSB, max_event_time_ahead_of_job=timedelta(days=365 * 100))
    parsed = kafka_rows([ysb(event_time="4102444800000")]).transform(with_job_clock).transform(parse_declared, ahead)
    assert JOB_TIME_COLUMN not in parsed.columns
    assert [row.error_code for row in parsed.select("error_code").collect()] == [None]


MIXED = DeclaredContract(
    format="json",
    formats=("json", "kv", "csv"),
    csv_columns=("id", "amount", "ts"),
    fields={"id": ContractField("string"), "amount": ContractField("long"), "ts": ContractField("string")},
    event_time=EventTimeSpec(field="ts", form="epoch_seconds"),
    min_event_time="2020-01-01T00:00:00Z",
    max_event_time_ahead=timedelta(minutes=5),
)


def test_a_contract_of_several_formats_reads_each_record_in_the_one_its_header_names(kafka_rows):
    json_header, kv_header, csv_header = (
        [("content-type", media.encode())] for media in ("application/json", "text/x-key-value", "text/csv")
    )
    values = [
        b'{"id": "j", "amount": 12, "ts": "1767261600"}',  # no header: format
        b'{"id": "j", "amount": "12", "ts": "1767261600"}',  # JSON keeps its types: "12" is no long
        b"id=k; amount=12; ts=1767261600",
        b"id=k; amount=twelve; ts=1767261600",
        b"c,12,1767261600",
        b"c,12",
        b"id=k",  # a kv record sent as JSON
        b'{"id": "x"}',
        b'{"id": "early", "amount": 1, "ts": "1500000000"}',  # 2017
        b'{"id": "ahead", "amount": 1, "ts": "1767262000"}',  # 400 s after its Kafka timestamp
    ]
    headers = [None, json_header, kv_header, kv_header, csv_header, csv_header, json_header,
               [("content-type", b"application/xml")], None, None]
    kafka_time = datetime(2026, 1, 1, 10, 0)
    rows = by_offset(kafka_rows(values, [kafka_time] * len(values), headers=headers).transform(parse_declared, MIXED))
    assert stages(rows) == {
        0: (None, None), 1: ("WRONG_TYPE", "contract"), 2: (None, None), 3: ("WRONG_TYPE", "contract"),
        4: (None, None), 5: ("NOT_CSV", "extract"), 6: ("NOT_JSON", "extract"), 7: ("UNKNOWN_FORMAT", "extract"),
        8: ("EVENT_TIME_TOO_EARLY", "contract"), 9: ("EVENT_TIME_IN_FUTURE", "contract"),
    }
    assert [(rows[n].id, rows[n].amount) for n in (0, 2, 4)] == [("j", 12), ("k", 12), ("c", 12)]
    assert rows[1].error_message == "field 'amount' must be an integer, got the string '12'"
    assert rows[3].error_message == "field 'amount' must be an integer, got 'twelve'"
    assert rows[7].error_message == (
        "content-type 'application/xml' is not one of application/json, text/x-key-value, text/csv"
    )
    assert rows[8].error_message == "ts '1500000000' is before 2020-01-01T00:00:00Z"
    assert rows[9].error_message == (
        "ts '1767262000' is more than 300 seconds after the record's Kafka timestamp 2026-01-01T10:00:00.000Z"
        " (CreateTime: the producer's clock)"
    )


def test_accepted_versions_narrow_what_a_contract_reads(kafka_rows):
    only_v2 = dataclasses.replace(BUILT_IN, accepted_versions=("2",))
    values = [event(), event(schema_version="2", type=REMOVED, event_type="view")]
    rows = by_offset(kafka_rows(values).transform(parse_declared, only_v2))
    assert codes(rows) == {0: "UNKNOWN_SCHEMA_VERSION", 1: None}
    assert rows[0].error_message == "schema_version '1' is not one of 2"
    assert "session_id" in declared_columns(only_v2)  # the layout keeps every declared version


def test_the_new_keys_are_checked_too():
    bad = dataclasses.replace(
        YSB, formats=("json", "xml"), format="kv", accepted_versions=("9",), min_event_time="yesterday",
        max_event_time_ahead=timedelta(minutes=-1),
    )
    assert contract_problems(bad) == [
        "formats: 'xml' is not one of json, kv, csv",
        "format: 'kv' (of records without a content-type) must be one of formats",
        "accepted_versions: '9' is not one of the versions (none)",
        "max_event_time_ahead must not be negative",
        "min_event_time: 'yesterday' is not an ISO-8601 time with a UTC offset",
    ]


def test_a_key_value_record_may_write_its_object_as_json_text(kafka_rows):
    kv = [("content-type", b"text/x-key-value")]
    base = "event_id=e-1; timestamp=2026-01-01T10:00:00Z; source=web; schema_version=1; type=click"
    values = [f"{base}; data.user_id=u-1".encode(), f'{base}; data={{"user_id": "u-2"}}'.encode(),
              f"{base}; data=[1]".encode()]
    parsed = kafka_rows(values, headers=[kv] * 3).transform(parse_events, ContractSettings(extractors=("json", "kv")))
    rows = by_offset(parsed)
    assert [(rows[n].error_code, rows[n].user_id) for n in (0, 1)] == [(None, "u-1"), (None, "u-2")]
    assert (rows[2].error_code, rows[2].error_message) == ("WRONG_TYPE", "field 'data' must be an object, got '[1]'")
