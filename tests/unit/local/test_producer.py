"""The pure parts of the producer: the record generator, JSON-lines files, the summary line, CLI errors."""

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlake.local.producer import (
    MALFORMED_ERROR_CODES,
    ProducedRecord,
    SendReport,
    generate_records,
    main,
    records_from_file,
)

START = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
SPAN = timedelta(minutes=30)
ISO_UTC_MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _base_time(index: int, count: int) -> datetime:
    """Where the generator places record ``index`` of ``count`` before any shift."""
    return START + SPAN * index / count


def _event_time(record: ProducedRecord) -> datetime:
    return datetime.fromisoformat(json.loads(record.value)["timestamp"])


def _mixed(count: int = 4000, seed: int = 7) -> list[ProducedRecord]:
    return generate_records(
        count, seed, START, SPAN, duplicate_ratio=0.1, out_of_order_ratio=0.1, late_ratio=0.05, malformed_ratio=0.05
    )


def test_same_seed_gives_identical_records():
    assert _mixed(500, seed=3) == _mixed(500, seed=3)


def test_different_seed_gives_different_records():
    first, second = _mixed(500, seed=3), _mixed(500, seed=4)
    assert [r.value for r in first] != [r.value for r in second]
    ids = [{json.loads(r.value)["event_id"] for r in records if r.kind == "valid"} for records in (first, second)]
    assert ids[0] and not ids[0] & ids[1]


def test_count_is_exact_and_kinds_follow_the_ratios():
    records = _mixed(4000)
    kinds = Counter(r.kind.partition(":")[0] for r in records)
    assert len(records) == 4000
    assert set(kinds) == {"valid", "duplicate", "out_of_order", "late", "malformed"}
    assert kinds["duplicate"] == pytest.approx(400, abs=80)
    assert kinds["out_of_order"] == pytest.approx(400, abs=80)
    assert kinds["late"] == pytest.approx(200, abs=60)
    assert kinds["malformed"] == pytest.approx(200, abs=60)
    assert kinds["valid"] == pytest.approx(2800, abs=150)


def test_no_ratios_gives_only_valid_records():
    records = generate_records(100, 1, START, SPAN)
    assert {r.kind for r in records} == {"valid"}


def test_valid_records_are_contract_v1_events_keyed_by_user():
    records = [r for r in _mixed(1000) if r.kind in ("valid", "out_of_order", "late")]
    assert records
    for record in records:
        event = json.loads(record.value.decode("utf-8"))
        assert list(event) == ["event_id", "timestamp", "source", "schema_version", "type", "data"]
        assert isinstance(event["event_id"], str) and event["event_id"]
        assert ISO_UTC_MILLIS.match(event["timestamp"]), event["timestamp"]
        assert event["schema_version"] == "1"
        assert event["source"] in ("web", "mobile")
        assert event["type"] in ("pageview", "click", "purchase", "signup")
        assert re.fullmatch(r"user-\d{3}", event["data"]["user_id"])
        assert record.key == event["data"]["user_id"].encode("utf-8")


def test_payload_depends_on_the_event_type():
    events = [json.loads(r.value) for r in generate_records(200, 5, START, SPAN)]
    by_type = {event["type"]: event["data"] for event in events}
    assert by_type["pageview"]["page"].startswith("/")
    assert isinstance(by_type["purchase"]["amount"], float)
    assert set(by_type) == {"pageview", "click", "purchase", "signup"}


def test_users_and_event_types_are_the_ones_asked_for():
    records = generate_records(300, 2, START, SPAN, users=3, event_types=("view",), sources=("iot",))
    events = [json.loads(r.value) for r in records]
    assert {e["data"]["user_id"] for e in events} == {"user-001", "user-002", "user-003"}
    assert {e["type"] for e in events} == {"view"}
    assert {e["source"] for e in events} == {"iot"}


def test_event_ids_are_unique_except_for_duplicates():
    records = [r for r in _mixed(2000) if r.kind != "duplicate" and r.kind.startswith(("valid", "out", "late"))]
    ids = [json.loads(r.value)["event_id"] for r in records]
    assert len(ids) == len(set(ids))


def test_valid_event_times_advance_evenly_from_start_across_span():
    records = _mixed(1000)
    valid = [(index, r) for index, r in enumerate(records) if r.kind == "valid"]
    times = [_event_time(r) for _, r in valid]
    assert times == sorted(times)
    assert all(_event_time(r) == _base_time(index, 1000) for index, r in valid)
    assert times[0] >= START and times[-1] < START + SPAN


def test_naive_start_time_is_taken_as_utc():
    naive = generate_records(20, 9, START.replace(tzinfo=None), SPAN)
    assert naive == generate_records(20, 9, START, SPAN)


def test_duplicates_repeat_a_recent_valid_record_exactly():
    records = _mixed(2000)
    duplicates = [(index, r) for index, r in enumerate(records) if r.kind == "duplicate"]
    assert duplicates
    for index, duplicate in duplicates:
        originals = [r for r in records[:index] if r.kind == "valid" and r.value == duplicate.value]
        assert [r.key for r in originals] == [duplicate.key]
        assert _base_time(index, 2000) - _event_time(originals[0]) <= timedelta(minutes=4)


def test_out_of_order_events_are_one_second_to_four_minutes_behind():
    records = _mixed(2000)
    shifts = [_base_time(i, 2000) - _event_time(r) for i, r in enumerate(records) if r.kind == "out_of_order"]
    assert shifts
    assert all(timedelta(seconds=1) <= shift <= timedelta(minutes=4) for shift in shifts)


def test_late_events_are_thirty_to_sixty_minutes_behind():
    records = _mixed(2000)
    shifts = [_base_time(i, 2000) - _event_time(r) for i, r in enumerate(records) if r.kind == "late"]
    assert shifts
    assert all(timedelta(minutes=30) <= shift <= timedelta(minutes=60) for shift in shifts)


def _json_or_none(value: bytes):
    try:
        return json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def test_every_kind_of_malformed_record_is_made_and_breaks_the_contract():
    records = generate_records(900, 11, START, SPAN, malformed_ratio=1.0)
    by_kind = {}
    for record in records:
        by_kind.setdefault(record.kind, []).append(record.value)
    assert set(by_kind) == {f"malformed:{what}" for what in MALFORMED_ERROR_CODES}
    for value in by_kind["malformed:not_json"] + by_kind["malformed:truncated_json"]:
        assert value and _json_or_none(value) is None
    assert all(isinstance(_json_or_none(v), list) for v in by_kind["malformed:json_array"])
    assert all("event_id" not in json.loads(v) for v in by_kind["malformed:missing_event_id"])
    assert all(isinstance(json.loads(v)["timestamp"], int) for v in by_kind["malformed:numeric_timestamp"])
    for value in by_kind["malformed:timestamp_without_offset"]:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", json.loads(value)["timestamp"])
    assert all(json.loads(v)["schema_version"] == "99" for v in by_kind["malformed:unknown_schema_version"])
    assert set(by_kind["malformed:empty_value"]) == {b""}
    for value in by_kind["malformed:invalid_utf8"]:
        with pytest.raises(UnicodeDecodeError):
            value.decode("utf-8")


def test_malformed_kinds_name_contract_error_codes():
    from eventlake.pipeline.contract import ErrorCode

    assert {ErrorCode(code) for code in MALFORMED_ERROR_CODES.values()} <= set(ErrorCode)


@pytest.mark.parametrize(
    "ratios",
    [{"duplicate_ratio": -0.1}, {"late_ratio": 1.5}, {"malformed_ratio": 0.6, "out_of_order_ratio": 0.6}],
)
def test_impossible_ratios_are_refused(ratios):
    with pytest.raises(ValueError, match="ratio"):
        generate_records(10, 1, START, SPAN, **ratios)


@settings(max_examples=50, deadline=None)
@given(
    count=st.integers(0, 300),
    seed=st.integers(0, 2**32),
    ratios=st.lists(st.floats(0, 0.25), min_size=4, max_size=4),
)
def test_any_arguments_give_exactly_count_records_of_known_kinds(count, seed, ratios):
    duplicate, out_of_order, late, malformed = ratios
    records = generate_records(
        count, seed, START, SPAN, duplicate_ratio=duplicate, out_of_order_ratio=out_of_order,
        late_ratio=late, malformed_ratio=malformed,
    )
    known = {"valid", "duplicate", "out_of_order", "late"} | {f"malformed:{what}" for what in MALFORMED_ERROR_CODES}
    assert len(records) == count
    assert {r.kind for r in records} <= known
    assert all(r.key is not None and r.value is not None for r in records)


def test_records_from_file_keeps_lines_byte_for_byte(tmp_path):
    lines = [
        '{"event_id": "a", "data": {"user_id": "user-7", "note": "caf\u00e9"}}  '.encode(),
        b"not json at all",
        b'{"event_id": "b", "data": {"user_id": 42}}',
        b'["an", "array"]',
        b"\xff\xfe broken",
        b'{"event_id":"c","data":{"user_id":"user-8"}}',
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines[:3]) + b"\n\n   \n" + b"\n".join(lines[3:5]) + b"\r\n" + lines[5])
    records = records_from_file(path)
    assert [r.value for r in records] == lines
    assert [r.key for r in records] == [b"user-7", None, None, None, None, b"user-8"]
    assert {r.kind for r in records} == {"file"}


def test_summary_names_topic_speed_and_kinds_with_malformed_summed():
    report = SendReport(
        topic="events", bootstrap_servers="127.0.0.1:9092", sent=1000, failed=0, seconds=1.25,
        counts={"valid": 900, "duplicate": 50, "malformed:not_json": 6, "out_of_order": 30, "late": 10,
                "malformed:empty_value": 4},
    )
    assert report.summary() == (
        "sent 1000 records to events at 127.0.0.1:9092 in 1.25 s (800 records/s): "
        "valid 900, duplicate 50, out_of_order 30, late 10, malformed 10"
    )


def test_summary_of_nothing_sent():
    report = SendReport(topic="t", bootstrap_servers="h:1", sent=0, failed=0, seconds=0.0, counts={})
    assert report.summary() == "sent 0 records to t at h:1 in 0.00 s (0 records/s)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--start-time", "yesterday"], "--start-time"),
        (["--span", "ten minutes"], "--span"),
        (["--late", "0.7", "--malformed", "0.7"], "ratios add up"),
        (["--file", "/no/such/file.jsonl"], "cannot read --file"),
    ],
)
def test_cli_user_errors_are_one_line_and_exit_2(argv, message, capsys):
    # These fail before any broker is contacted, so no broker is needed.
    assert main(["--bootstrap-servers", "127.0.0.1:1", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_kv_and_version_2_records_are_drawn_on_request_only():
    plain = generate_records(200, seed=3, start_time=START, span=SPAN)
    mixed = generate_records(200, seed=3, start_time=START, span=SPAN, kv_ratio=0.5, v2_ratio=0.5)
    assert all(record.headers == () for record in plain)
    kv = [record for record in mixed if record.headers == (("content-type", b"text/x-key-value"),)]
    documents = [json.loads(record.value) for record in mixed if not record.headers]
    assert 60 < len(kv) < 140
    assert 30 < sum(document["schema_version"] == "2" for document in documents) < 90


def test_a_version_2_event_renames_type_and_adds_a_session():
    record = generate_records(1, seed=5, start_time=START, span=SPAN, v2_ratio=1.0)[0]
    document = json.loads(record.value)
    assert document["schema_version"] == "2" and "type" not in document
    assert document["event_type"] in ("pageview", "click", "purchase", "signup")
    assert re.fullmatch(r"session-\d{6}", document["session_id"])


def test_a_kv_record_carries_the_same_fields_as_its_json_twin():
    as_json = generate_records(1, seed=8, start_time=START, span=SPAN)[0]
    as_kv = generate_records(1, seed=8, start_time=START, span=SPAN, kv_ratio=1.0)[0]
    document = json.loads(as_json.value)
    pairs = dict(pair.split("=", 1) for pair in as_kv.value.decode().split("; "))
    expected = {key: str(value) for key, value in document.items() if key != "data"}
    expected.update({f"data.{key}": str(value) for key, value in document["data"].items()})
    assert pairs == expected
    assert as_kv.key == as_json.key
