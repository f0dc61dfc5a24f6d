"""Why a record is invalid: the stable error codes, the two stages, and the columns that carry them.

A stage marks rows with the first of its ordered checks that fails (:func:`mark_invalid`); a row keeps the
error of the first stage that caught it. Later stages (the ETL's) mark rows the same way, with codes of their
own.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


class ErrorCode(StrEnum):
    """Why a record is invalid. Stable: stored in ``dead_letters.error_code`` and listed in docs/contract.md."""

    EMPTY_VALUE = "EMPTY_VALUE"
    TOO_LARGE = "TOO_LARGE"
    INVALID_UTF8 = "INVALID_UTF8"
    UNKNOWN_FORMAT = "UNKNOWN_FORMAT"
    NOT_JSON = "NOT_JSON"
    UNREADABLE_JSON = "UNREADABLE_JSON"
    NOT_OBJECT = "NOT_OBJECT"
    NOT_KEY_VALUE = "NOT_KEY_VALUE"
    NOT_CSV = "NOT_CSV"
    MISSING_FIELD = "MISSING_FIELD"
    WRONG_TYPE = "WRONG_TYPE"
    EMPTY_FIELD = "EMPTY_FIELD"
    UNKNOWN_SCHEMA_VERSION = "UNKNOWN_SCHEMA_VERSION"
    BAD_TIMESTAMP = "BAD_TIMESTAMP"
    EVENT_TIME_TOO_EARLY = "EVENT_TIME_TOO_EARLY"
    EVENT_TIME_IN_FUTURE = "EVENT_TIME_IN_FUTURE"
    EVENT_TIME_AHEAD_OF_JOB_CLOCK = "EVENT_TIME_AHEAD_OF_JOB_CLOCK"


EXTRACT_STAGE = "extract"
CONTRACT_STAGE = "contract"
ERROR_COLUMNS = ("error_code", "error_message", "error_stage")

# The mark of a valid row an expectation with ``action = "drop"`` left out: marked like an invalid row, so that
# every "valid rows" filter leaves it out, but never a dead letter (see :func:`is_dead_letter`).
DROPPED_MARK = "_DROPPED_BY_EXPECTATION"

# (fails, error code, message): the code is an ErrorCode or a later stage's own StrEnum.
Check = tuple[Column, StrEnum, Column]
_ERROR_TYPE = "struct<code: string, message: string>"


def error(code: StrEnum | str, message: Column) -> Column:
    """The error struct of ``code`` and ``message``, as :func:`first_failure` builds it.

    Example::

        error(ErrorCode.NOT_CSV, F.lit("the record is not 3 CSV columns"))
    """
    return F.struct(F.lit(str(code)).alias("code"), message.alias("message"))


def first_failure(checks: Sequence[Check]) -> Column:
    """One CASE over ordered (condition, code, message) checks: the code and message of the first check
    that holds, as a struct, or NULL when none does. A message is only built for the row it describes.

    Example::

        first_failure([(F.col("value").isNull(), ErrorCode.EMPTY_VALUE, F.lit("the record has no value"))])
    """
    if not checks:
        return F.lit(None).cast(_ERROR_TYPE)
    (condition, code, message), *rest = checks
    chain = F.when(condition, error(code, message))
    for condition, code, message in rest:
        chain = chain.when(condition, error(code, message))
    return chain


def is_dead_letter() -> Column:
    """True for a row that is a dead letter: invalid, and not a row an expectation dropped.

    Example::

        parsed.where(is_dead_letter())
    """
    return F.col("error_code").isNotNull() & (F.col("error_code") != DROPPED_MARK)


def is_dropped() -> Column:
    """True for a row an expectation with ``action = "drop"`` left out (see :data:`DROPPED_MARK`).

    Example::

        parsed.where(is_dropped()).count()
    """
    return F.coalesce(F.col("error_code") == DROPPED_MARK, F.lit(False))


def with_error_columns(rows: DataFrame) -> DataFrame:
    """Add empty ``error_code``, ``error_message`` and ``error_stage`` columns: every row starts valid.

    Example::

        raw.transform(with_error_columns)
    """
    return rows.withColumns({name: F.lit(None).cast("string") for name in ERROR_COLUMNS})


def with_stage_error(rows: DataFrame, stage: str, failure: Column) -> DataFrame:
    """Give each row that is still valid the code and message of ``failure`` (a struct from
    :func:`first_failure`, NULL when the row passes) and ``stage``. Rows already invalid keep the
    error of the stage that caught them first.

    Example::

        rows.transform(with_stage_error, "enrich", first_failure(checks))
    """
    rows = rows.withColumn("_stage_error", F.when(F.col("error_code").isNull(), failure))
    failed = F.col("_stage_error").isNotNull()
    return rows.withColumns(
        {
            "error_code": F.coalesce("error_code", "_stage_error.code"),
            "error_message": F.coalesce("error_message", "_stage_error.message"),
            "error_stage": F.when(failed, F.lit(stage)).otherwise(F.col("error_stage")),
        }
    ).drop("_stage_error")


def mark_invalid(rows: DataFrame, stage: str, checks: Sequence[Check]) -> DataFrame:
    """:func:`with_stage_error` with the first of ``checks`` that fails.

    Example::

        rows.transform(mark_invalid, "enrich", [(F.col("amount") < 0, MyCode.NEGATIVE, F.lit("negative"))])
    """
    return with_stage_error(rows, stage, first_failure(checks))
