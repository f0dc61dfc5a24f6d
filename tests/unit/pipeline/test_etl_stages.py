from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from eventlake.pipeline.contract import with_error_columns
from eventlake.pipeline.etl_stages import (
    DEDUP_TIME_COLUMN,
    STAGES,
    StageContext,
    drop_repeated_events,
    enrich_with_dimension,
    mask_pii,
    normalise_events,
    promote_data_fields,
    run_stages,
    to_bronze,
    to_silver,
    with_event_date,
    with_sql_columns,
)
from eventlake.runtime.config import EnrichSettings, EtlSettings, PiiSettings

ROWS_SCHEMA = (
    "event_id string, event_time timestamp, source string, event_type string, user_id string, data string,"
    " error_code string, error_message string, error_stage string"
)
T = datetime(2026, 1, 1, 23, 30)


def rows(spark, *values):
    """Working rows of the ETL: event columns (``data`` JSON text, a VARIANT as the contract gives it), then the
    error columns (NULL: valid)."""
    frame = spark.createDataFrame([(*value, None, None, None) for value in values], ROWS_SCHEMA)
    return frame.withColumn("data", F.try_parse_json("data"))


def context(**etl_changes) -> StageContext:
    return StageContext(etl=EtlSettings(**etl_changes))


def test_stages_are_registered_by_name():
    assert {"normalise", "promote_fields", "enrich", "mask_pii"} <= set(STAGES)
    with pytest.raises(ValueError, match="unknown ETL stage 'nope'"):
        run_stages(None, ["nope"], context())


def test_normalise_trims_and_lower_cases_enums_and_adds_the_utc_event_date(spark):
    actual = rows(spark, (" e-1 ", T, " Web ", "PageView", "u", None)).transform(normalise_events, context())
    expected = spark.createDataFrame(
        [("e-1", "web", "pageview", date(2026, 1, 1))],
        "event_id string, source string, event_type string, event_date date",
    )
    assert_df_equality(actual.select(expected.columns), expected, ignore_nullable=True)


def test_promote_reads_typed_columns_from_data(spark):
    promote = {"page": "string", "amount": "decimal(12,2)", "quantity": "int"}
    actual = rows(
        spark,
        ("e-1", T, "web", "purchase", "u", '{"page":"/a","amount":12.5,"quantity":2}'),
        ("e-2", T, "web", "purchase", "u", '{"amount":"7.25","quantity":"3"}'),  # the kv format: all strings
        ("e-3", T, "web", "click", "u", '{"amount":null}'),
        ("e-4", T, "web", "click", "u", None),
    ).transform(promote_data_fields, context(promote=promote))
    expected = spark.createDataFrame(
        [
            ("e-1", "/a", Decimal("12.50"), 2, None),
            ("e-2", None, Decimal("7.25"), 3, None),
            ("e-3", None, None, None, None),
            ("e-4", None, None, None, None),
        ],
        "event_id string, page string, amount decimal(12,2), quantity int, error_code string",
    )
    assert_df_equality(actual.select(expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_a_field_that_is_not_its_type_fails_the_promote_stage(spark):
    actual = rows(
        spark,
        ("e-1", T, "web", "purchase", "u", '{"amount":"lots"}'),
        ("e-2", T, "web", "purchase", "u", '{"amount":{"value":1}}'),
    ).transform(promote_data_fields, context(promote={"amount": "double"}))
    expected = spark.createDataFrame(
        [
            ("e-1", "FIELD_TYPE", 'data.amount must be double, got "lots"', "promote_fields"),
            ("e-2", "FIELD_TYPE", 'data.amount must be double, got {"value":1}', "promote_fields"),
        ],
        "event_id string, error_code string, error_message string, error_stage string",
    )
    assert_df_equality(actual.select(expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_rows_already_invalid_keep_their_first_error(spark):
    invalid = spark.createDataFrame(
        [("e-1", T, "web", "click", "u", '{"amount":"lots"}', "BAD_TIMESTAMP", "bad", "contract")], ROWS_SCHEMA
    ).withColumn("data", F.try_parse_json("data"))
    actual = invalid.transform(promote_data_fields, context(promote={"amount": "double"})).first()
    assert (actual.error_code, actual.error_message, actual.error_stage) == ("BAD_TIMESTAMP", "bad", "contract")


def test_promoting_over_an_existing_column_is_refused(spark):
    with pytest.raises(ValueError, match="'user_id' is already a column"):
        rows(spark).transform(promote_data_fields, context(promote={"user_id": "string"}))


def dimension(spark):
    return spark.createDataFrame([("/a", "shoes"), ("/b", "bags")], "page string, category string")


def test_enrich_joins_the_dimension_and_flags_misses(spark):
    events = spark.createDataFrame(
        [("e-1", "/a"), ("e-2", "/zzz"), ("e-3", None)], "event_id string, page string"
    ).transform(with_error_columns)
    ctx = StageContext(etl=EtlSettings(), dimension=dimension(spark))
    actual = events.transform(enrich_with_dimension, ctx)
    expected = spark.createDataFrame(
        [("e-1", "/a", "shoes", True, None), ("e-2", "/zzz", None, False, None), ("e-3", None, None, None, None)],
        "event_id string, page string, category string, enriched boolean, error_code string",
    )
    assert_df_equality(actual.select(expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_enrich_can_send_misses_to_dead_letters(spark):
    events = spark.createDataFrame([("e-1", "/a"), ("e-2", "/zzz")], "event_id string, page string").transform(
        with_error_columns
    )
    etl = EtlSettings(enrich=EnrichSettings(on_miss="dead_letter"))
    actual = events.transform(enrich_with_dimension, StageContext(etl=etl, dimension=dimension(spark)))
    expected = spark.createDataFrame(
        [("e-1", None, None, None), ("e-2", "DIMENSION_MISS", "page '/zzz' is not in dim_pages", "enrich")],
        "event_id string, error_code string, error_message string, error_stage string",
    )
    assert_df_equality(actual.select(expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_mask_pii_hashes_with_the_salt_and_drops(spark):
    etl = EtlSettings(pii=PiiSettings(hash=("user_id",), drop=("data",)))
    actual = rows(spark, ("e-1", T, "web", "click", "u-1", "{}"), ("e-2", T, "web", "click", None, "{}")).transform(
        mask_pii, StageContext(etl=etl, pii_salt="pepper")
    )
    digest = hashlib.sha256(b"pepperu-1").hexdigest()
    expected = spark.createDataFrame([("e-1", digest), ("e-2", None)], "event_id string, user_id string")
    assert_df_equality(actual.select(expected.columns), expected, ignore_row_order=True, ignore_nullable=True)
    assert "data" not in actual.columns


def test_mask_pii_refuses_a_column_that_does_not_exist(spark):
    etl = EtlSettings(pii=PiiSettings(drop=("email",)))
    with pytest.raises(ValueError, match=re.escape("etl.pii names 'email'")):
        rows(spark).transform(mask_pii, StageContext(etl=etl))


def test_bronze_keeps_the_record_as_received(spark, kafka_rows):
    raw = kafka_rows([b"anything \xff"], headers=[[("content-type", b"text/plain")]])
    bronze = raw.transform(to_bronze)
    row = bronze.first()
    assert (row.value, row.headers[0].value, row.offset, row.ingest_date) == (
        bytearray(b"anything \xff"), bytearray(b"text/plain"), 0, row.ingested_at.date()
    )
    assert bronze.columns == [
        "key", "value", "headers", "topic", "partition", "offset", "kafka_timestamp", "timestamp_type",
        "ingested_at", "ingest_date",
    ]


def test_silver_keeps_valid_events_once_without_raw_or_error_columns(spark):
    valid = ("e-1", T, "web", "click", "u", "{}", None, None, None)
    frame = spark.createDataFrame(
        [valid, valid, ("e-2", T, "web", "click", "u", "{}", "FIELD_TYPE", "no", "promote_fields")], ROWS_SCHEMA
    ).withColumn("timestamp", F.lit(T))
    silver = frame.transform(to_silver)
    assert [row.event_id for row in silver.collect()] == ["e-1"]
    assert not {"data", "error_code", "error_message", "error_stage", "timestamp"} & set(silver.columns)
    assert "kafka_timestamp" in silver.columns


@pytest.mark.parametrize("later_first", [True, False])
def test_silver_keeps_the_copy_with_the_earliest_event_time_whatever_the_order(spark, later_first):
    # One id on two event days in one batch: the earliest copy, whichever comes first; on a tie, the first in Kafka.
    copies = [(T.replace(day=2, hour=0), 0), (T, 1), (T, 2)]
    frame = spark.createDataFrame(
        [("e-1", time, "web", "click", "u", "{}", None, None, None, offset)
         for time, offset in (copies if later_first else copies[::-1])],
        f"{ROWS_SCHEMA}, offset long",
    ).withColumn("timestamp", F.lit(T))
    assert [(row.event_time, row.offset) for row in frame.transform(to_silver).collect()] == [(T, 1)]


def test_drop_repeated_events_keeps_one_copy_per_event_id_and_every_invalid_record(spark):
    schema = f"{ROWS_SCHEMA}, topic string, partition int, offset long, {DEDUP_TIME_COLUMN} timestamp"
    valid = ("e-1", T, "web", "click", "u", "{}", None, None, None)
    invalid = ("e-2", T, "web", "click", "u", "{}", "FIELD_TYPE", "no", "promote_fields")
    rows = spark.createDataFrame(
        [(*valid, "t", 0, 1, T), (*valid, "t", 1, 7, T), (*invalid, "t", 0, 2, T), (*invalid, "t", 0, 3, T)],
        schema,
    )
    kept = rows.transform(drop_repeated_events, timedelta(hours=1))
    assert DEDUP_TIME_COLUMN not in kept.columns and "_dedup_key" not in kept.columns
    assert sorted((row.event_id, row.offset) for row in kept.where("error_code IS NOT NULL").collect()) == [
        ("e-2", 2), ("e-2", 3),
    ]
    assert [row.event_id for row in kept.where("error_code IS NULL").collect()] == ["e-1"]


def test_sql_columns_are_added_to_valid_rows_and_null_on_invalid_ones(spark):
    frame = spark.createDataFrame(
        [("o1", Decimal("10.00"), None), ("o2", Decimal("4.00"), "NOT_CSV")],
        "order_id string, amount decimal(12,2), error_code string",
    )
    priced = frame.transform(with_sql_columns, {"doubled": "amount * 2"})
    expected = spark.createDataFrame(
        [("o1", Decimal("10.00"), None, Decimal("20.00")), ("o2", Decimal("4.00"), "NOT_CSV", None)],
        "order_id string, amount decimal(12,2), error_code string, doubled decimal(14,2)",
    )
    assert_df_equality(priced, expected, ignore_nullable=True)


def test_the_event_day_is_added_unless_a_stage_gave_it(spark):
    frame = spark.createDataFrame([(T,)], "event_time timestamp")
    assert frame.transform(with_event_date).first().event_date == date(2026, 1, 1)
    given = frame.withColumn("event_date", F.lit(date(2020, 5, 5)))
    assert given.transform(with_event_date).first().event_date == date(2020, 5, 5)


def test_silver_keeps_one_copy_per_id_column_of_a_declared_contract(spark):
    frame = spark.createDataFrame(
        [("o1", T, 2), ("o1", T - timedelta(minutes=1), 3), ("o2", T, 4)],
        "order_id string, event_time timestamp, offset long",
    ).withColumns({"error_code": F.lit(None).cast("string"), "timestamp": F.col("event_time")})
    silver = frame.transform(to_silver, "order_id")
    assert sorted((row.order_id, row.offset) for row in silver.collect()) == [("o1", 3), ("o2", 4)]
