"""Expectations: row rules of config, each with what to do with a valid row that fails it, counted per batch.

``[[gold.expectations]]`` and ``[[etl.expectations]]`` name a rule (a Spark SQL condition a good row meets; NULL
is not met) and an action: ``warn`` keeps the row, ``drop`` leaves it out, ``quarantine`` makes it a dead letter
with code ``EXPECTATION_FAILED`` and the rule's name, ``fail`` stops the query naming the rule and the record.
Every rule checks every row the contract (and the ETL's stages) found valid, so each rule's count is its own;
a row that fails a ``quarantine`` rule is a dead letter even when a ``drop`` rule fails it too.

Per batch and rule, ``<job>_expectation_batches`` holds the rows checked, failing, dropped and quarantined,
written with the batch's other rows and before its intake counts; the intake counts a dropped row as neither
valid nor invalid but ``records = valid + invalid + dropped`` holds per batch (the reconciliation checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from eventlake.pipeline.contract import is_dropped, mark_invalid
from eventlake.pipeline.contract.errors import DROPPED_MARK, error, with_stage_error
from eventlake.runtime.config import Expectation
from eventlake.runtime.job_tables import EXPECTATION_FAILED_ROWS

EXPECTATION_STAGE = "expectation"
EXPECTATION_BATCHES = "expectation_batches"
EXPECTATION_BATCHES_SCHEMA = (
    "job string, batch_id long, expectation string, action string, rule string, checked long, failed long,"
    " dropped long, quarantined long"
)


class ExpectationCode(StrEnum):
    """The dead-letter code of a row a ``quarantine`` expectation sent there."""

    EXPECTATION_FAILED = "EXPECTATION_FAILED"


class ExpectationFailed(RuntimeError):
    """A ``fail`` expectation met a row that fails it: the query stops before the batch is written."""


FAILED_COLUMN_PREFIX = "_expectation_failed_"


def failed_column(index: int) -> str:
    """The column of :func:`check_expectations` that is true where the ``index``-th expectation fails."""
    return f"{FAILED_COLUMN_PREFIX}{index}"


def without_expectation_columns(rows: DataFrame) -> DataFrame:
    """Rows of :func:`check_expectations` without its :func:`failed_column` columns (the same rows without
    expectations).

    Example::

        checked.transform(without_expectation_columns).write...
    """
    return rows.drop(*(name for name in rows.columns if name.startswith(FAILED_COLUMN_PREFIX)))


def fails(expectation: Expectation) -> Column:
    """True for a row the contract found valid and ``expectation``'s rule does not hold for (NULL: does not hold).

    Example::

        rows.where(fails(Expectation(name="positive_amount", rule="amount > 0")))
    """
    # CASE, not AND: the rule is not evaluated on invalid rows, whose columns may make it raise (ANSI casts).
    return F.when(F.col("error_code").isNull(), ~F.coalesce(F.expr(expectation.rule), F.lit(False))).otherwise(False)


def check_expectations(rows: DataFrame, expectations: Sequence[Expectation]) -> DataFrame:
    """Rows with ``error_code`` (NULL when valid) -> the same rows with one :func:`failed_column` per expectation,
    quarantined rows marked ``EXPECTATION_FAILED`` (stage ``expectation``, the rule's name in the message), and
    dropped rows marked with :data:`~eventlake.pipeline.contract.errors.DROPPED_MARK`, so that the valid rows
    are the rows kept. ``fail`` rules only mark: :func:`raise_on_failed` stops the batch. No expectations: the
    rows as they are.

    Example::

        parsed.transform(check_expectations, [Expectation(name="positive", rule="amount > 0", action="drop")])
    """
    if not expectations:
        return rows
    rows = rows.withColumns({failed_column(index): fails(rule) for index, rule in enumerate(expectations)})
    quarantined = [
        (F.col(failed_column(index)), ExpectationCode.EXPECTATION_FAILED, _message(rule))
        for index, rule in enumerate(expectations)
        if rule.action == "quarantine"
    ]
    if quarantined:
        rows = rows.transform(mark_invalid, EXPECTATION_STAGE, quarantined)
    dropping = [F.col(failed_column(index)) for index, rule in enumerate(expectations) if rule.action == "drop"]
    if dropping:
        dropped = F.when(_any(dropping), error(DROPPED_MARK, F.lit("dropped by an expectation")))
        rows = rows.transform(with_stage_error, EXPECTATION_STAGE, dropped)
    if rows.isStreaming:
        failing = _any([F.col(failed_column(index)) for index in range(len(expectations))])
        rows = rows.observe(EXPECTATION_FAILED_ROWS, F.count(F.when(failing, 1)).alias("rows"))
    return rows


def _message(expectation: Expectation) -> Column:
    return F.lit(f"expectation {expectation.name} failed: {expectation.rule}")


def _any(columns: Sequence[Column]) -> Column:
    combined = columns[0]
    for column in columns[1:]:
        combined = combined | column
    return combined


def expectation_figures(expectations: Sequence[Expectation]) -> list[Column]:
    """Aggregate columns, over a batch of :func:`check_expectations`, of each rule's rows checked, failing,
    dropped and quarantined (named ``_e<index>_<figure>``), for one ``observe`` with the batch's counts. A row
    that several rules drop or quarantine is dropped or quarantined by the first of them, so each sums once."""
    checked = F.col("error_code").isNull() | (F.col("error_stage") == EXPECTATION_STAGE)
    quarantined = F.col("error_code") == str(ExpectationCode.EXPECTATION_FAILED)
    figures: list[Column] = []
    earlier: dict[str, list[Column]] = {"drop": [], "quarantine": []}
    for index, rule in enumerate(expectations):
        failed = F.col(failed_column(index))
        first = failed if not earlier.get(rule.action) else failed & ~_any(earlier[rule.action])
        dropped = F.count(F.when(first & is_dropped(), 1)) if rule.action == "drop" else F.lit(0).cast("long")
        held = F.count(F.when(first & quarantined, 1)) if rule.action == "quarantine" else F.lit(0).cast("long")
        figures += [
            F.count(F.when(checked, 1)).alias(f"_e{index}_checked"),
            F.count(F.when(failed, 1)).alias(f"_e{index}_failed"),
            dropped.alias(f"_e{index}_dropped"),
            held.alias(f"_e{index}_quarantined"),
        ]
        if rule.action in earlier:
            earlier[rule.action].append(failed)
    return figures


def expectation_rows(
    observed: dict[str, Any], expectations: Sequence[Expectation], job: str, batch_id: int
) -> list[dict[str, Any]]:
    """The ``<job>_expectation_batches`` rows of a batch from the figures of :func:`expectation_figures`."""
    return [
        {
            "job": job, "batch_id": batch_id, "expectation": rule.name, "action": rule.action, "rule": rule.rule,
            **{name: int(observed[f"_e{index}_{name}"]) for name in ("checked", "failed", "dropped", "quarantined")},
        }
        for index, rule in enumerate(expectations)
    ]


def raise_on_failed(rows: DataFrame, observed: dict[str, Any], expectations: Sequence[Expectation]) -> None:
    """Stop the batch when a ``fail`` expectation failed on one of ``rows`` (the stored batch of
    :func:`check_expectations`), naming the rule and the first such record's Kafka coordinates."""
    for index, rule in enumerate(expectations):
        if rule.action == "fail" and observed[f"_e{index}_failed"]:
            [first] = (
                rows.where(F.col(failed_column(index)))
                .select("topic", "partition", "offset")
                .orderBy("partition", "offset")
                .limit(1)
                .collect()
            )
            raise ExpectationFailed(
                f"expectation {rule.name} ({rule.rule}) failed on {observed[f'_e{index}_failed']} rows of the batch,"
                f" the first {first.topic}/{first.partition}@{first.offset}"
            )
