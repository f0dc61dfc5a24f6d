"""The contract's column functions, one by one: each column against the column it should equal."""

from __future__ import annotations

from chispa import assert_column_equality
from pyspark.sql import functions as F

from eventlake.pipeline.contract.expressions import (
    header_text,
    is_object,
    is_one_json_value,
    iso_timestamp,
    json_type,
    key_value_map,
    prefixed_object,
    variant_at,
)


def test_key_value_map_reads_trimmed_pairs_and_refuses_what_is_not_pairs(spark):
    rows = spark.createDataFrame(
        [
            ("a=1; b = x ;", {"a": "1", "b": "x"}),
            ("a=1=2", {"a": "1=2"}),  # the first '=' splits
            ("a=1; a=2", None),  # a key twice
            ("a=1; loose", None),  # a pair without '='
            ("=1", None),  # an empty key
            (" ; ", None),  # no pair at all
        ],
        "text string, expected map<string,string>",
    ).withColumn("got", key_value_map(F.col("text")))
    assert_column_equality(rows, "got", "expected")


def test_prefixed_object_gathers_the_keys_under_a_name(spark):
    rows = spark.createDataFrame(
        [
            ("data.user_id=u-1; data.page=/home; other=x", '{"page":"/home","user_id":"u-1"}'),
            ("database=x; other=y", None),  # "data" is no prefix of "database"
        ],
        "text string, expected string",
    ).withColumn("got", F.to_json(prefixed_object(key_value_map(F.col("text")), "data")))
    assert_column_equality(rows, "got", "expected")


def test_is_one_json_value_refuses_what_follows_the_first_value(spark):
    rows = spark.createDataFrame(
        [('{"a": 1}', True), ('{"a": 1}{"b": 2}', False), ('{"a": 1} words', False), ("[1, 2]", True),
         ('{"a": ', False)],
        "text string, expected boolean",
    ).withColumn("got", is_one_json_value(F.col("text")))
    assert_column_equality(rows, "got", "expected")


def test_json_type_and_is_object_read_a_variant(spark):
    rows = spark.createDataFrame(
        [('"x"', "STRING", False), ("12", "BIGINT", False), ("1.5", "DECIMAL(2,1)", False), ("[1]", "ARRAY", False),
         ('{"a": 1}', "OBJECT", True), ("null", "VOID", False)],
        "text string, expected_type string, expected_object boolean",
    ).withColumn("value", F.parse_json("text"))
    typed = rows.withColumns({"got_type": json_type(F.col("value")), "got_object": is_object(F.col("value"))})
    assert_column_equality(typed, "got_type", "expected_type")
    assert_column_equality(typed, "got_object", "expected_object")


def test_variant_at_walks_object_keys(spark):
    rows = spark.createDataFrame(
        [('{"data": {"user_id": "u-1"}}', '"u-1"'), ('{"data": [1]}', None), ('{"other": 1}', None)],
        "text string, expected string",
    ).withColumn("got", F.to_json(variant_at(F.parse_json("text"), ["data", "user_id"])))
    assert_column_equality(rows, "got", "expected")


def test_iso_timestamp_needs_an_offset(spark):
    from datetime import datetime

    rows = spark.createDataFrame(
        [
            ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12)),
            ("2026-01-31T12:00:00.250+02:00", datetime(2026, 1, 31, 10, 0, 0, 250_000)),
            ("2026-01-31T12:00:00", None),  # no offset
            ("2026-01-31T12:00:00Z\n", None),  # a line break after it
            ("2026-01-31T12:00:00.1234567Z", None),  # past microseconds
        ],
        "text string, expected timestamp",
    ).withColumn("got", iso_timestamp(F.col("text")))
    assert_column_equality(rows, "got", "expected")


def test_header_text_is_the_first_header_of_that_name(kafka_rows):
    raw = kafka_rows(
        [b"a", b"b", b"c"],
        headers=[[("content-type", b"text/x-key-value"), ("content-type", b"x")], [("other", b"y")], None],
    )
    rows = raw.withColumns(
        {"got": header_text("content-type"), "expected": F.element_at(F.array(
            F.lit("text/x-key-value"), F.lit(None).cast("string"), F.lit(None).cast("string")
        ), (F.col("offset") + 1).cast("int"))}
    )
    assert_column_equality(rows, "got", "expected")
