"""Expectations on small in-memory batches: what each action does to a row, the figures, a fail rule stopping."""

from __future__ import annotations

import pytest
from chispa import assert_column_equality, assert_df_equality
from pyspark.sql import functions as F

from eventlake.pipeline.contract import is_dead_letter, is_dropped
from eventlake.pipeline.expectations import (
    ExpectationFailed,
    check_expectations,
    expectation_figures,
    expectation_rows,
    fails,
    raise_on_failed,
    without_expectation_columns,
)
from eventlake.runtime.config import ConfigError, Expectation
from eventlake.runtime.config import check_expectations as check_config

SCHEMA = (
    "topic string, partition int, offset long, amount int, customer string,"
    " error_code string, error_message string, error_stage string"
)
ROWS = [
    ("orders", 0, 1, 5, "c1", None, None, None),  # passes every rule
    ("orders", 0, 2, -1, "c1", None, None, None),  # fails positive (drop)
    ("orders", 0, 3, 4, "x9", None, None, None),  # fails known_customer (quarantine)
    ("orders", 1, 4, -2, "x9", None, None, None),  # fails both: quarantined, not dropped
    ("orders", 1, 5, None, "c2", None, None, None),  # NULL amount: positive does not hold
    ("orders", 1, 6, None, None, "NOT_CSV", "the record is not 5 CSV columns", "contract"),  # invalid already
]
POSITIVE = Expectation(name="positive", rule="amount > 0", action="drop")
KNOWN = Expectation(name="known_customer", rule="customer LIKE 'c%'", action="quarantine")
SMALL = Expectation(name="small", rule="amount < 5", action="warn")


@pytest.fixture
def batch(spark):
    return spark.createDataFrame(ROWS, SCHEMA)


def test_a_rule_fails_only_valid_rows_it_does_not_hold_for(spark):
    rows = spark.createDataFrame(
        [(5, None, False), (-1, None, True), (None, None, True), (-1, "NOT_CSV", False)],
        "amount int, error_code string, expected boolean",
    ).withColumn("got", fails(POSITIVE))
    assert_column_equality(rows, "got", "expected")


def test_each_action_marks_the_rows_it_catches(batch):
    checked = batch.transform(check_expectations, [POSITIVE, KNOWN, SMALL]).orderBy("offset")
    got = checked.select(
        "offset", "error_code", "error_stage", is_dead_letter().alias("dead"), is_dropped().alias("dropped")
    )
    expected = batch.sparkSession.createDataFrame(
        [
            (1, None, None, False, False),
            (2, "_DROPPED_BY_EXPECTATION", "expectation", False, True),
            (3, "EXPECTATION_FAILED", "expectation", True, False),
            (4, "EXPECTATION_FAILED", "expectation", True, False),
            (5, "_DROPPED_BY_EXPECTATION", "expectation", False, True),
            (6, "NOT_CSV", "contract", True, False),
        ],
        "offset long, error_code string, error_stage string, dead boolean, dropped boolean",
    )
    assert_df_equality(got, expected, ignore_nullable=True)
    [message] = [row.error_message for row in checked.collect() if row.offset == 3]
    assert message == "expectation known_customer failed: customer LIKE 'c%'"
    assert checked.transform(without_expectation_columns).columns == batch.columns


def test_the_figures_count_each_rule_and_each_dropped_or_quarantined_row_once(batch):
    twice = Expectation(name="not_negative", rule="amount >= 0", action="drop")  # drops what positive drops
    rules = [POSITIVE, KNOWN, SMALL, twice]
    [observed] = batch.transform(check_expectations, rules).agg(*expectation_figures(rules)).collect()
    rows = {row["expectation"]: row for row in expectation_rows(observed.asDict(), rules, "orders", 7)}
    figures = {name: (row["checked"], row["failed"], row["dropped"], row["quarantined"]) for name, row in rows.items()}
    assert figures == {
        "positive": (5, 3, 2, 0),  # offsets 2, 4, 5 fail; 4 is quarantined, not dropped
        "known_customer": (5, 2, 0, 2),
        "small": (5, 2, 0, 0),  # offset 1 (5) and 5 (NULL: not met); the invalid row is not checked
        "not_negative": (5, 3, 0, 0),  # the same rows, dropped by positive before it
    }
    small = rows["small"]
    assert (small["action"], small["rule"], small["batch_id"], small["job"]) == ("warn", "amount < 5", 7, "orders")


def test_a_fail_rule_stops_the_batch_naming_the_rule_and_the_first_record(batch):
    must_be_known = Expectation(name="must_be_known", rule="customer LIKE 'c%'", action="fail")
    checked = batch.transform(check_expectations, [must_be_known])
    [observed] = checked.agg(*expectation_figures([must_be_known])).collect()
    with pytest.raises(ExpectationFailed, match=r"must_be_known \(customer LIKE 'c%'\) failed on 2 rows.*orders/0@3"):
        raise_on_failed(checked, observed.asDict(), [must_be_known])
    assert checked.where(F.col("error_code").isNull()).count() == 5  # a fail rule marks nothing


def test_no_expectations_leave_the_rows_as_they_are(batch):
    assert_df_equality(batch.transform(check_expectations, []), batch)


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        (Expectation(name="1st", rule="x > 0"), "must be a letter"),
        (Expectation(name="ok", rule=" "), "gold.expectations.ok.rule is empty"),
        (Expectation(name="ok", rule="x > 0", action="skip"), "'skip' is not one of warn, drop, quarantine, fail"),
    ],
)
def test_config_mistakes_in_an_expectation_are_one_line(expectation, message):
    with pytest.raises(ConfigError, match=message):
        check_config("gold.expectations", [expectation])
    with pytest.raises(ConfigError, match="two expectations are named 'a'"):
        check_config("gold.expectations", [Expectation(name="a", rule="x"), Expectation(name="a", rule="y")])
