"""Property-based tests of the event contract (:func:`eventlake.pipeline.contract.parse_events`).

Spark jobs are slow, so no test runs one job per record: every Hypothesis example is a *list* of
records, parsed as one Kafka-shaped DataFrame and collected once. Runs are reproducible
(``derandomize=True``, no example database).

The properties:

1. parsing never raises and the result can be collected, whatever the bytes;
2. every record comes out valid (no error, all event columns set) or invalid (a known error code and a
   message), never both and never neither;
3. every valid contract-v1 event parses to exactly the values it was written with;
4. targeted strategies, one per way of being invalid, each get their exact error code.

Plain regression tests for the bugs these properties found (since fixed in the contract engine) are at the
end of the file.
"""

from __future__ import annotations

import calendar
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from eventlake.pipeline.contract import REQUIRED_STRING_FIELDS, ErrorCode, parse_events
from eventlake.runtime.config import ContractSettings

# Kafka times here run to 2200, and a valid event may be ahead of its own: the bound against the job's clock
# (today) must not reject those. tests/unit/pipeline/test_contract.py tests that bound.
NO_JOB_CLOCK_BOUND = timedelta(days=366 * 300)
DEFAULT = ContractSettings(max_event_time_ahead_of_job=NO_JOB_CLOCK_BOUND)
SMALL = ContractSettings(max_record_bytes=500, max_event_time_ahead_of_job=NO_JOB_CLOCK_BOUND)
KAFKA_TIME = datetime(2026, 1, 1, 12, 0)  # naive datetimes are UTC: the test session runs with TZ=UTC
EPOCH = datetime(1970, 1, 1)
LATEST_KAFKA_TIME = datetime(2200, 1, 1)
KAFKA_TIMES = st.datetimes(min_value=EPOCH, max_value=LATEST_KAFKA_TIME)
CODES = {code.value for code in ErrorCode}
EVENT_FIELDS = ("event_id", "event_time", "source", "schema_version", "event_type")
RESERVED_KEYS = {*REQUIRED_STRING_FIELDS, "data", "event_type", "session_id"}  # version 2 reads the last two
ABSENT = object()  # a field left out of the JSON document


# A Spark job costs 0.3-1 s (analysing parse_events' plan, then the collect) whatever its size, so each
# example packs many records and the example counts stay low: about 70 jobs for the file in all.
# For a deeper search, multiply the counts: EVENTLAKE_PROPERTY_SCALE=10 pytest tests/unit/test_contract_properties.py
_SCALE = max(1, int(os.environ.get("EVENTLAKE_PROPERTY_SCALE", "1")))


def _property_settings(max_examples: int):
    return settings(
        max_examples=max_examples * _SCALE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


BROAD = _property_settings(8)
TARGETED = _property_settings(5)


# --- running the parser: one DataFrame, one job per Hypothesis example ---------------------------


def parse(kafka_rows, records, contract=DEFAULT, columns=None):
    """Parse ``records`` (pairs of raw value and Kafka timestamp) in one DataFrame and collect once.

    Returns the rows in record order; ``columns`` limits what is collected (the offset always comes).
    """
    raw = kafka_rows([value for value, _ in records], [kafka_time for _, kafka_time in records])
    parsed = parse_events(raw, contract)
    if columns is not None:
        parsed = parsed.select("offset", *columns)
    rows = sorted(parsed.collect(), key=lambda row: row.offset)
    assert [row.offset for row in rows] == list(range(len(records)))
    return rows


def assert_valid_or_invalid(row) -> None:
    """Property 2: valid (no error, all event columns) or invalid (known code and a message), exclusively."""
    if row.error_code is None:
        assert row.error_message is None, row
        missing = [name for name in EVENT_FIELDS if row[name] is None]
        assert not missing, f"valid record without {missing}: {row}"
    else:
        assert row.error_code in CODES, row
        assert row.error_message is not None and row.error_message.strip(), row


def assert_codes(rows, expected_codes, values) -> None:
    """Every row has its expected code; on failure, name the first few offending records."""
    wrong = [
        (value, expected, row.error_code, row.error_message)
        for row, expected, value in zip(rows, expected_codes, values, strict=True)
        if row.error_code != expected
    ]
    assert not wrong, f"{len(wrong)} of {len(rows)} records got the wrong code, first: {wrong[:3]}"


def is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- strategies: JSON values, ISO-8601 times, contract-v1 events ----------------------------------

# Python's json and Spark agree on these exactly (int64 integers, finite doubles, text without lone surrogates).
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
# Strings with something other than whitespace in them (by Python's broad, Unicode definition).
NON_BLANK = st.text(min_size=1, max_size=20).filter(lambda text: text.strip() != "")
NON_STRING_JSON = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(JSON_VALUES, max_size=3),
    st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3),
)


def format_local_time(local: datetime, digits: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` plus ``digits`` fractional digits (strftime does not pad years below 1000)."""
    text = (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
        f"T{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    )
    return text + ("." + f"{local.microsecond:06d}"[:digits] if digits else "")


@st.composite
def iso_timestamps(draw, earliest: datetime, latest: datetime, with_offset: bool = True):
    """(ISO-8601 text, the UTC instant it denotes): Z or a ±HH:MM offset up to ±18:00, 0-6 fractional digits."""
    moment = draw(st.datetimes(min_value=earliest, max_value=latest))
    digits = draw(st.integers(0, 6))
    unit = 10 ** (6 - digits)
    moment = moment.replace(microsecond=moment.microsecond // unit * unit)  # what the digits can say
    if not with_offset:
        return format_local_time(moment, digits), moment
    offset = draw(st.one_of(st.just(None), st.integers(-18 * 60, 18 * 60)))
    if offset is None:
        return format_local_time(moment, digits) + "Z", moment
    sign = "-" if offset < 0 or (offset == 0 and draw(st.booleans())) else "+"
    local = moment + timedelta(minutes=offset)
    return format_local_time(local, digits) + f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}", moment


@dataclass
class Example:
    """A contract-v1 event: its JSON document, the raw value, the Kafka timestamp and the parsed values."""

    document: dict[str, Any]
    value: bytes
    kafka_time: datetime
    expected: dict[str, Any]
    data: Any  # the `data` payload as written, or ABSENT


def encode(draw, document: dict[str, Any]) -> bytes:
    """JSON text with the keys in any order, ASCII-escaped or raw UTF-8, compact or indented."""
    order = draw(st.permutations(list(document)))
    ensure_ascii = draw(st.booleans())
    indent = draw(st.sampled_from([None, 2]))
    return json.dumps({key: document[key] for key in order}, ensure_ascii=ensure_ascii, indent=indent).encode()


@st.composite
def valid_events(draw, kafka_times=KAFKA_TIMES):
    """Any valid contract-v1 event and a Kafka timestamp it is valid for.

    The event time lies between 1970 and the Kafka timestamp plus the allowed tolerance (both ends
    included); ``data`` is absent, null or an object with an optional (string or null) ``user_id`` and
    any other payload; unknown top-level keys are allowed too.
    """
    kafka_time = draw(kafka_times)
    timestamp, event_time = draw(iso_timestamps(EPOCH, kafka_time + DEFAULT.max_event_time_ahead))
    event_id, source, event_type = draw(NON_BLANK), draw(NON_BLANK), draw(NON_BLANK)
    document: dict[str, Any] = {
        "event_id": event_id,
        "timestamp": timestamp,
        "source": source,
        "schema_version": "1",
        "type": event_type,
    }
    user_id = None
    data = draw(
        st.one_of(
            st.just(ABSENT),
            st.none(),
            st.dictionaries(st.text(max_size=10).filter(lambda key: key != "user_id"), JSON_VALUES, max_size=5),
        )
    )
    if isinstance(data, dict):
        user = draw(st.one_of(st.just(ABSENT), st.none(), st.text(max_size=20)))
        if user is not ABSENT:
            data["user_id"] = user
            user_id = user
        data = {key: data[key] for key in draw(st.permutations(list(data)))}
    if data is not ABSENT:
        document["data"] = data
    extra_keys = st.text(max_size=10).filter(lambda key: key not in RESERVED_KEYS)
    document.update(draw(st.dictionaries(extra_keys, JSON_VALUES, max_size=3)))
    expected = {
        "event_id": event_id,
        "event_time": event_time,
        "source": source,
        "schema_version": "1",
        "event_type": event_type,
        "user_id": user_id,
    }
    return Example(document, encode(draw, document), kafka_time, expected, data)


# --- 1 + 2: anything in, every record valid or with a known code -----------------------------------

# Timestamp-like strings, right and wrong. Years stay within 1000-8999: an event time in year 0/1 or
# beyond 9999 in UTC cannot be collected at all (see test_bug_collecting_out_of_range_event_times).
TIMESTAMP_LIKE = st.from_regex(
    r"[1-8][0-9]{3}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?",
    fullmatch=True,
)


@st.composite
def mutated_events(draw):
    """A valid event with one field removed or replaced by any JSON value, any text or a timestamp-like string."""
    example = draw(valid_events())
    document = dict(example.document)
    name = draw(st.sampled_from([*REQUIRED_STRING_FIELDS, "data"]))
    replacement = draw(st.one_of(st.just(ABSENT), JSON_VALUES, st.text(max_size=10), TIMESTAMP_LIKE))
    if replacement is ABSENT:
        document.pop(name, None)
    else:
        document[name] = replacement
    return json.dumps(document).encode()


@st.composite
def cut_events(draw):
    """A valid event cut off somewhere (a truncated Kafka value)."""
    value = draw(valid_events()).value
    return value[: draw(st.integers(0, len(value)))]


ANY_RECORD = st.one_of(
    st.none(),
    st.just(b""),
    st.binary(max_size=200),
    st.text(max_size=100).map(str.encode),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    valid_events().map(lambda example: example.value),
    mutated_events(),
    cut_events(),
)
ANY_KAFKA_TIME = st.datetimes(min_value=EPOCH, max_value=LATEST_KAFKA_TIME)


class _NotStrictJson(ValueError):
    """Text that Python's strict JSON reader refuses."""


def strict_json(text: str) -> Any:
    """Parse ``text`` as RFC 8259 JSON that Spark can read too, or raise _NotStrictJson.

    Stricter than ``json.loads``: no NaN/Infinity, no duplicate keys, no lone surrogates, and within
    Jackson's limits (1000 levels of nesting, 1000-digit numbers).
    """

    def pairs(items):
        keys = [key for key, _ in items]
        if len(set(keys)) != len(keys):
            raise _NotStrictJson("duplicate keys")
        return dict(items)

    def constant(name):
        raise _NotStrictJson(name)

    def number(kind):
        def parse_number(text):
            if len(text) > 1000:
                raise _NotStrictJson("number too long")
            return kind(text)

        return parse_number

    try:
        value = json.loads(
            text, object_pairs_hook=pairs, parse_constant=constant, parse_int=number(int), parse_float=number(float)
        )
    except (ValueError, RecursionError) as error:
        raise _NotStrictJson(str(error)) from None

    def walk(node, depth):
        if depth > 900:
            raise _NotStrictJson("too deep")
        if isinstance(node, str) and re.search("[\ud800-\udfff]", node):
            raise _NotStrictJson("lone surrogate")
        children = list(node.items()) if isinstance(node, dict) else node if isinstance(node, list) else []
        for child in children:
            if isinstance(child, tuple):
                walk(child[0], depth + 1)
                child = child[1]
            walk(child, depth + 1)

    walk(value, 1)
    return value


@BROAD
@given(records=st.lists(st.tuples(ANY_RECORD, ANY_KAFKA_TIME), min_size=30, max_size=150))
def test_any_record_is_either_valid_or_has_a_known_error(kafka_rows, records):
    rows = parse(kafka_rows, records)  # property 1: no exception, everything collected

    for row, (value, _) in zip(rows, records, strict=True):
        assert_valid_or_invalid(row)
        # Independent checks of the first steps, from the raw bytes alone.
        if not value:
            assert row.error_code == ErrorCode.EMPTY_VALUE, (value, row)
            continue
        assert row.error_code != ErrorCode.EMPTY_VALUE, (value, row)
        if not is_utf8(value):
            assert row.error_code == ErrorCode.INVALID_UTF8, (value, row)
            continue
        assert row.error_code != ErrorCode.INVALID_UTF8, (value, row)
        try:
            document = strict_json(value.decode("utf-8"))
        except _NotStrictJson:
            continue  # NOT_JSON or UNREADABLE_JSON expected; see the regression tests for trailing data
        assert row.error_code not in (ErrorCode.NOT_JSON, ErrorCode.UNREADABLE_JSON), (value, row)
        assert (row.error_code == ErrorCode.NOT_OBJECT) == (not isinstance(document, dict)), (value, row)


# --- 3: valid events parse to exactly their values -------------------------------------------------


@BROAD
@given(examples=st.lists(valid_events(), min_size=20, max_size=60))
def test_every_valid_event_parses_to_its_values(kafka_rows, examples):
    rows = parse(kafka_rows, [(example.value, example.kafka_time) for example in examples])

    for row, example in zip(rows, examples, strict=True):
        assert_valid_or_invalid(row)
        assert (row.error_code, row.error_message) == (None, None), (example.value, example.kafka_time, row)
        actual = {name: row[name] for name in example.expected}
        assert actual == example.expected, example.value
        # data is the document's VARIANT; absent and JSON null are both NULL.
        data = None if row.data is None else json.loads(row.data.toJson())
        assert data == (None if example.data is ABSENT else example.data), (example.value, row.data)


# --- 4: targeted strategies, one exact error code each --------------------------------------------


@TARGETED
@given(
    records=st.lists(st.tuples(st.sampled_from([None, b""]), ANY_KAFKA_TIME), min_size=5, max_size=40),
    key=st.one_of(st.none(), st.binary(max_size=20)),
)
def test_no_value_is_empty_value(kafka_rows, records, key):
    """A null or zero-byte value (a tombstone) is EMPTY_VALUE, whatever the record's key."""
    raw = kafka_rows([value for value, _ in records], [kafka_time for _, kafka_time in records])
    if key is not None:
        raw = raw.withColumn("key", F.lit(bytearray(key)))
    rows = raw.transform(parse_events, DEFAULT).collect()

    assert len(rows) == len(records)
    for row in rows:
        assert_valid_or_invalid(row)
        assert (row.error_code, row.error_message) == (ErrorCode.EMPTY_VALUE, "the record has no value")
        assert row.key == (None if key is None else bytearray(key))


INVALID_UTF8_SEQUENCES = [
    b"\x80",  # continuation byte without a lead byte
    b"\xbf",
    b"\xc0\xaf",  # overlong encoding of '/'
    b"\xc1\xbf",
    b"\xe0\x80\x80",  # overlong NUL
    b"\xed\xa0\x80",  # UTF-16 surrogate D800 encoded in UTF-8 (CESU-8)
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80",  # five-byte form
    b"\xfe",
    b"\xff",
    b"\xe2\x82",  # three-byte character cut after two bytes
    b"\xc3",  # two-byte character cut after one byte
]


@st.composite
def invalid_utf8_values(draw):
    """A valid event (or any bytes) with invalid UTF-8 spliced in somewhere."""
    value = draw(st.one_of(valid_events().map(lambda example: example.value), st.binary(max_size=100)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(st.sampled_from(INVALID_UTF8_SEQUENCES)) + value[at:]
    return value


@TARGETED
@given(
    records=st.lists(
        st.tuples(
            st.one_of(invalid_utf8_values(), st.binary(min_size=1, max_size=100)).filter(lambda v: not is_utf8(v)),
            ANY_KAFKA_TIME,
        ),
        min_size=15,
        max_size=80,
    )
)
def test_invalid_utf8_is_invalid_utf8(kafka_rows, records):
    rows = parse(kafka_rows, records, columns=["error_code", "error_message"])
    assert_codes(rows, [ErrorCode.INVALID_UTF8] * len(rows), [value for value, _ in records])
    assert {row.error_message for row in rows} == {"the record is not valid UTF-8"}


@TARGETED
@given(
    values=st.lists(
        st.one_of(
            st.binary(min_size=1, max_size=1_000),  # anything, above or below the limit
            st.binary(min_size=495, max_size=505),  # around the limit
            valid_events().map(lambda example: example.value),
        ),
        min_size=15,
        max_size=80,
    )
)
def test_records_above_the_limit_are_too_large(kafka_rows, values):
    """With ``max_record_bytes = 500``: above 500 bytes is TOO_LARGE (whatever the bytes), 500 or less never."""
    limit = SMALL.max_record_bytes
    rows = parse(kafka_rows, [(value, KAFKA_TIME) for value in values], SMALL, ["error_code", "error_message"])

    for row, value in zip(rows, values, strict=True):
        if len(value) > limit:
            assert row.error_code == ErrorCode.TOO_LARGE, (len(value), row)
            assert row.error_message == f"the record is {len(value)} bytes, above the limit of {limit}"
        else:
            assert row.error_code != ErrorCode.TOO_LARGE, (len(value), row)


# Both of Spark's JSON readers (try_parse_json for the document, get_json_object for "is this JSON at all")
# are Jackson parsers with StreamReadConstraints.maxNestingDepth = 1000: a document nested 1000 levels deep
# (counting the outer object) is read, 1001 levels is rejected by *both*. parse_events also checks that a
# record is exactly one JSON value by wrapping it in an array, one level more: so documents of up to 999
# levels are accepted and deeper ones are NOT_JSON, as the README says.
DEEP_NESTING_CODE = ErrorCode.NOT_JSON
JACKSON_MAX_DEPTH = 1000
MAX_ACCEPTED_DEPTH = JACKSON_MAX_DEPTH - 1


@st.composite
def nested_events(draw, levels):
    """A valid event whose ``data.nested`` holds ``levels`` nested arrays/objects (mixed); returns
    (value, total nesting depth of the document)."""
    example = draw(valid_events(kafka_times=st.just(KAFKA_TIME)))
    n = draw(levels)
    kinds = draw(st.lists(st.booleans(), min_size=n, max_size=n))  # True: array, False: object
    leaf = json.dumps(draw(JSON_SCALARS))
    inner = "".join("[" if is_array else '{"k":' for is_array in kinds) + leaf
    inner += "".join("]" if is_array else "}" for is_array in reversed(kinds))
    document = {key: value for key, value in example.document.items() if key != "data"}
    text = json.dumps(document)[:-1] + ', "data": {"user_id": "u", "nested": ' + inner + "}}"
    return text.encode(), n + 2  # the outer object and `data` are two more levels


@TARGETED
@given(
    deep=st.lists(nested_events(st.integers(MAX_ACCEPTED_DEPTH - 1, 3_000)), min_size=3, max_size=10),
    shallow=st.lists(nested_events(st.integers(1, MAX_ACCEPTED_DEPTH - 2)), min_size=1, max_size=4),
)
def test_deeply_nested_data_is_rejected_without_crashing(kafka_rows, deep, shallow):
    records = [(value, KAFKA_TIME) for value, _ in deep + shallow]
    rows = parse(kafka_rows, records)  # all columns: the job must survive the deep documents

    for row, (_value, depth) in zip(rows, deep + shallow, strict=True):
        assert_valid_or_invalid(row)
        if depth > MAX_ACCEPTED_DEPTH:
            assert row.error_code == DEEP_NESTING_CODE, (depth, row.error_code, row.error_message)
        else:
            assert (row.error_code, row.user_id) == (None, "u"), (depth, row.error_code, row.error_message)


@st.composite
def wrongly_typed_events(draw):
    """A valid event with some required fields absent, null or of another JSON type, and maybe a wrong
    ``data`` or ``data.user_id``; returns (value, expected code, expected message pattern)."""
    example = draw(valid_events(kafka_times=st.just(KAFKA_TIME)))
    document = dict(example.document)
    broken = draw(st.sets(st.sampled_from(REQUIRED_STRING_FIELDS), max_size=len(REQUIRED_STRING_FIELDS)))
    data_fault = draw(st.sampled_from(["none", "data", "user_id"]))
    if not broken and data_fault == "none":
        broken = {draw(st.sampled_from(REQUIRED_STRING_FIELDS))}
    replacements = {}
    for name in broken:
        replacements[name] = draw(st.one_of(st.just(ABSENT), st.none(), NON_STRING_JSON))
        if replacements[name] is ABSENT:
            del document[name]
        else:
            document[name] = replacements[name]
    if data_fault == "data":  # anything but an object (null counts as absent: allowed)
        document["data"] = draw(NON_STRING_JSON.filter(lambda value: not isinstance(value, dict)) | st.text(max_size=5))
    elif data_fault == "user_id":
        payload = example.data if isinstance(example.data, dict) else {}
        document["data"] = {**payload, "user_id": draw(NON_STRING_JSON)}

    # The first failing check wins: schema_version first (the other fields depend on it), then every
    # MISSING_FIELD check before every WRONG_TYPE check.
    order = ["schema_version", *(name for name in REQUIRED_STRING_FIELDS if name != "schema_version")]
    missing = [name for name in order if name in broken and replacements[name] in (ABSENT, None)]
    wrong = [name for name in order if name in broken and name not in missing]
    if "schema_version" in wrong:
        missing = []
    if missing:
        return encode(draw, document), ErrorCode.MISSING_FIELD, re.escape(
            f"required field '{missing[0]}' is missing or null"
        )
    if wrong:
        name, kind, right = wrong[0], "a string", "STRING"
    else:
        name, kind, right = {
            "data": ("data", "an object", "OBJECT"),
            "user_id": ("data.user_id", "a string", "STRING"),
        }[data_fault]
    # The JSON type it got: BIGINT, DOUBLE, DECIMAL(p,s), BOOLEAN, ARRAY, OBJECT, STRING, but never the right one.
    pattern = re.escape(f"field '{name}' must be {kind}, got ") + rf"(?!{right}$)[A-Z]+(\(\d+,\d+\))?"
    return encode(draw, document), ErrorCode.WRONG_TYPE, pattern


@TARGETED
@given(cases=st.lists(wrongly_typed_events(), min_size=10, max_size=60))
def test_required_fields_of_the_wrong_json_type(kafka_rows, cases):
    """Numbers, booleans, arrays, objects where a string belongs are WRONG_TYPE; null or absent is MISSING_FIELD."""
    rows = parse(kafka_rows, [(value, KAFKA_TIME) for value, _, _ in cases], columns=["error_code", "error_message"])

    assert_codes(rows, [code for _, code, _ in cases], [value for value, _, _ in cases])
    for row, (value, _, pattern) in zip(rows, cases, strict=True):
        assert re.fullmatch(pattern, row.error_message), (value, row.error_message, pattern)


def _with_timestamp(example: Example, timestamp: str) -> bytes:
    return json.dumps({**example.document, "timestamp": timestamp}).encode()


@st.composite
def impossible_times(draw):
    """Times that match the ISO-8601 shape but are no real time: Feb 30, month 13, hour 24, second 60, ..."""
    year = draw(st.integers(1970, 2025))
    field = draw(st.sampled_from(["day", "month", "hour", "minute", "second", "offset"]))
    month, day, hour, minute, second = 1, 15, 10, 30, 30
    offset = "Z"
    if field == "day":
        month = draw(st.integers(1, 12))
        last_day = calendar.monthrange(year, month)[1]
        day = draw(st.sampled_from([0, *range(last_day + 1, 32)]))
    elif field == "month":
        month = draw(st.sampled_from([0, *range(13, 100)]))
    elif field == "hour":
        hour = draw(st.integers(24, 99))
    elif field == "minute":
        minute = draw(st.integers(60, 99))
    elif field == "second":
        second = draw(st.integers(60, 99))  # a leap second included: Spark cannot represent it
    else:
        offset = draw(st.sampled_from(["+", "-"])) + f"{draw(st.integers(0, 17)):02d}:{draw(st.integers(60, 99)):02d}"
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{offset}"


@st.composite
def bad_timestamps(draw):
    """(value, timestamp) of an event whose timestamp is not ISO-8601 with an offset."""
    example = draw(valid_events(kafka_times=st.just(KAFKA_TIME)))
    local, _ = draw(iso_timestamps(EPOCH, KAFKA_TIME, with_offset=False))
    timestamp = draw(
        st.one_of(
            st.just(local),  # no offset at all: a local time of unknown zone
            st.just(local.replace("T", " ") + "Z"),  # a space instead of the T
            st.just(local[:19] + ".1234567Z"),  # more digits than Spark keeps
            st.just(local[:10]),  # a date only
            impossible_times(),
        )
    )
    return _with_timestamp(example, timestamp), timestamp


@TARGETED
@given(cases=st.lists(bad_timestamps(), min_size=15, max_size=80))
def test_timestamps_without_offset_or_impossible_are_bad_timestamp(kafka_rows, cases):
    rows = parse(kafka_rows, [(value, KAFKA_TIME) for value, _ in cases], columns=["error_code", "error_message"])

    assert_codes(rows, [ErrorCode.BAD_TIMESTAMP] * len(rows), [value for value, _ in cases])
    for row, (_, timestamp) in zip(rows, cases, strict=True):
        assert row.error_message.startswith(f"timestamp '{timestamp}' is not an ISO-8601 time with a UTC offset")


AHEAD_TOLERANCES = st.sampled_from([timedelta(0), timedelta(seconds=1), timedelta(minutes=5), timedelta(days=1)])


@st.composite
def future_events(draw, tolerance: timedelta):
    """(value, Kafka timestamp) of an event more than ``tolerance`` after its Kafka timestamp, or just at it."""
    example = draw(valid_events())
    kafka_time = example.kafka_time
    # At least a whole second beyond: dropping fractional digits can only move the time earlier.
    timestamp, _ = draw(iso_timestamps(kafka_time + tolerance + timedelta(seconds=1), datetime(9000, 1, 1)))
    return _with_timestamp(example, timestamp), kafka_time


@TARGETED
@given(data=st.data(), tolerance=AHEAD_TOLERANCES)
def test_event_times_beyond_the_tolerance_are_in_the_future(kafka_rows, data, tolerance):
    contract = ContractSettings(max_event_time_ahead=tolerance, max_event_time_ahead_of_job=NO_JOB_CLOCK_BOUND)
    future = data.draw(st.lists(future_events(tolerance), min_size=15, max_size=60), label="future")
    # Exactly at the tolerance is still accepted.
    at_limit = data.draw(
        st.lists(valid_events().map(lambda example: (example, example.kafka_time + tolerance)), max_size=10),
        label="at the limit",
    )
    boundary = [
        (_with_timestamp(example, format_local_time(limit, 6) + "Z"), example.kafka_time) for example, limit in at_limit
    ]
    records = future + boundary
    rows = parse(kafka_rows, records, contract, ["error_code", "error_message"])

    expected = [ErrorCode.EVENT_TIME_IN_FUTURE] * len(future) + [None] * len(boundary)
    assert_codes(rows, expected, [value for value, _ in records])


@st.composite
def early_events(draw):
    """(value, timestamp) of an event before 1970-01-01T00:00:00Z (in UTC; its local date may say 1970)."""
    example = draw(valid_events(kafka_times=st.just(KAFKA_TIME)))
    # From year 2 on: year 1 and earlier cannot be collected (see test_bug_collecting_out_of_range_event_times);
    # only the codes are collected here anyway.
    timestamp, _ = draw(iso_timestamps(datetime(2, 1, 2), EPOCH - timedelta(microseconds=1)))
    return _with_timestamp(example, timestamp), timestamp


@TARGETED
@given(cases=st.lists(early_events(), min_size=15, max_size=80))
def test_event_times_before_1970_are_too_early(kafka_rows, cases):
    rows = parse(kafka_rows, [(value, KAFKA_TIME) for value, _ in cases], columns=["error_code", "error_message"])

    assert_codes(rows, [ErrorCode.EVENT_TIME_TOO_EARLY] * len(rows), [value for value, _ in cases])
    for row, (_, timestamp) in zip(rows, cases, strict=True):
        assert row.error_message == f"timestamp '{timestamp}' is before {DEFAULT.min_event_time}"


def in_version(document: dict[str, Any], version: str) -> dict[str, Any]:
    """A version-1 document rewritten as ``version``: version 2 calls ``type`` ``event_type``."""
    document = {**document, "schema_version": version}
    if version == "2":
        document["event_type"] = document.pop("type")
    return document


@TARGETED
@given(
    data=st.data(),
    versions=st.sampled_from([("1",), ("2",), ("1", "2"), ("2", "1")]),
)
def test_schema_versions_not_configured_are_unknown(kafka_rows, data, versions):
    contract = ContractSettings(schema_versions=versions)
    cases = data.draw(
        st.lists(
            st.tuples(
                valid_events(kafka_times=st.just(KAFKA_TIME)),
                st.one_of(NON_BLANK.filter(lambda version: version not in versions), st.sampled_from(["1", "2"])),
            ),
            min_size=15,
            max_size=80,
        ),
        label="events",
    )
    values = [json.dumps(in_version(example.document, version)).encode() for example, version in cases]
    records = [(value, KAFKA_TIME) for value in values]
    rows = parse(kafka_rows, records, contract, ["error_code", "error_message", "schema_version", "event_type"])

    expected = [None if version in versions else ErrorCode.UNKNOWN_SCHEMA_VERSION for _, version in cases]
    assert_codes(rows, expected, values)
    for row, (example, version) in zip(rows, cases, strict=True):
        if version not in versions:
            assert row.error_message == f"schema_version '{version}' is not one of {', '.join(versions)}"
        else:
            assert (row.schema_version, row.event_type) == (version, example.document["type"])


def escaped_key(key: str) -> str:
    """``key`` as a JSON string with every character \\u-escaped: the same key, spelled differently."""
    utf16 = key.encode("utf-16-be")
    units = [int.from_bytes(utf16[i : i + 2], "big") for i in range(0, len(utf16), 2)]
    return '"' + "".join(f"\\u{unit:04x}" for unit in units) + '"'


def object_text(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"


@st.composite
def duplicate_key_events(draw):
    """A valid event in which one key appears twice in the same object: at the top level (a required
    field, ``data`` or an extra key) or inside ``data``; the copy may spell the key with escapes."""
    example = draw(valid_events(kafka_times=st.just(KAFKA_TIME)))
    document = dict(example.document)
    inside_data = draw(st.booleans())
    if inside_data and not (isinstance(document.get("data"), dict) and document["data"]):
        document["data"] = {"user_id": "u"}
    target = document["data"] if inside_data else document
    key = draw(st.sampled_from(list(target)))
    copy_value = draw(st.one_of(st.just(target[key]), JSON_VALUES))
    copy_key = escaped_key(key) if draw(st.booleans()) else json.dumps(key)
    pairs = [(json.dumps(k), json.dumps(v)) for k, v in target.items()]
    pairs.insert(draw(st.integers(0, len(pairs))), (copy_key, json.dumps(copy_value)))
    if inside_data:
        top = [(json.dumps(k), object_text(pairs) if k == "data" else json.dumps(v)) for k, v in document.items()]
    else:
        top = pairs
    return object_text(top).encode()


def _has_duplicate_keys(value: bytes) -> bool:
    try:
        strict_json(value.decode("utf-8"))
    except _NotStrictJson as error:
        return "duplicate keys" in str(error)
    return False


@TARGETED
@given(values=st.lists(duplicate_key_events(), min_size=15, max_size=80))
def test_duplicate_keys_are_unreadable_json(kafka_rows, values):
    assert all(_has_duplicate_keys(value) for value in values)  # the strategy does what it says
    rows = parse(kafka_rows, [(value, KAFKA_TIME) for value in values], columns=["error_code", "error_message"])

    assert_codes(rows, [ErrorCode.UNREADABLE_JSON] * len(rows), values)


# --- regression tests for bugs found by the properties above (they fail until contract.py is fixed) ----


def _event(**changes) -> dict:
    base = {
        "event_id": "e-1",
        "timestamp": "2026-01-01T10:00:00Z",
        "source": "web",
        "schema_version": "1",
        "type": "click",
        "data": {"user_id": "u-1"},
    }
    return {**base, **changes}


def test_regression_trailing_data_after_the_json_object_is_not_json(kafka_rows):
    """Regression (fixed): Spark's JSON readers stop after the first complete value and ignore what follows, so a record
    holding two events (JSON lines batched into one Kafka message) is accepted as the first event and the
    second is lost without a dead letter, against the "nothing lost" guarantee."""
    first, second = json.dumps(_event()), json.dumps(_event(event_id="e-2"))
    values = [
        f"{first}\n{second}".encode(),  # two JSON lines in one record
        f"{first}{second}".encode(),
        f"{first} trailing words".encode(),
        f"{first}}}".encode(),  # one closing brace too many
    ]
    rows = parse(kafka_rows, [(value, KAFKA_TIME) for value in values], columns=["error_code"])
    assert [row.error_code for row in rows] == [ErrorCode.NOT_JSON] * len(values)


def test_regression_timestamp_with_a_trailing_line_break_is_bad_timestamp(kafka_rows):
    """Regression (fixed): ISO_8601_WITH_OFFSET ends in `$`, which in Java regexes also matches before a final line
    terminator, and the timestamp cast then trims it: "...Z\\n" passes as a valid time. A trailing space
    or tab is already rejected."""
    timestamps = ["2026-01-01T10:00:00Z\n", "2026-01-01T10:00:00Z\r\n", "2026-01-01T10:00:00.5+01:00\r"]
    values = [json.dumps(_event(timestamp=timestamp)).encode() for timestamp in timestamps]
    rows = parse(kafka_rows, [(value, KAFKA_TIME) for value in values], columns=["error_code"])
    assert [row.error_code for row in rows] == [ErrorCode.BAD_TIMESTAMP] * len(values)


def test_regression_fields_of_only_whitespace_are_empty_field(kafka_rows):
    """Regression (fixed): the README says EMPTY_FIELD is "empty or blank", but Spark's trim() removes only spaces, so a
    tab or a line break passes as an event_id, source or type (and a blank schema_version is reported
    as UNKNOWN_SCHEMA_VERSION)."""
    changes = [{"event_id": "\t"}, {"source": "\n"}, {"type": " \r\n "}, {"schema_version": " \t "}]
    values = [json.dumps(_event(**change)).encode() for change in changes]
    rows = parse(kafka_rows, [(value, KAFKA_TIME) for value in values], columns=["error_code"])
    assert [row.error_code for row in rows] == [ErrorCode.EMPTY_FIELD] * len(values)


def test_regression_collecting_out_of_range_event_times(kafka_rows):
    """Regression (fixed): invalid records keep their parsed event_time; when that lies in year 0/1 or after 9999 in
    UTC, PySpark cannot turn it into a datetime and collect() raises "ValueError: year 0 is out of range"
    (or "year 10000"). Spark itself and the Delta sinks are fine; any Python collect of parse_events'
    output (debugging, foreachBatch, tests) crashes on such a record."""
    timestamps = [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:30:00+01:00",  # 0000-12-31T23:30Z
        "0000-06-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",  # 10000-01-01T00:59:59Z
    ]
    values = [json.dumps(_event(timestamp=timestamp)).encode() for timestamp in timestamps]
    rows = parse(kafka_rows, [(value, KAFKA_TIME) for value in values])  # all columns, event_time included
    assert [row.error_code for row in rows] == [ErrorCode.EVENT_TIME_TOO_EARLY] * 3 + [ErrorCode.EVENT_TIME_IN_FUTURE]
