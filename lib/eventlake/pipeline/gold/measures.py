"""A gold table's measures: each ``fn`` of ``[[gold.measures]]`` as the aggregate of a SQL expression."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F

from eventlake.runtime.config import GoldMeasure


def _measure(rows_fn: Callable[[Column], Column]) -> Callable[[str], Column]:
    return lambda expr: rows_fn(F.expr(expr))


# fn -> the aggregate of a SQL expression. Distinct counts are exact as in the analytics job; first and
# last are by event time.
MEASURES: dict[str, Callable[[str], Column]] = {
    "count": lambda expr: F.count(F.expr(expr) if expr else F.lit(1)),
    "sum": _measure(F.sum),
    "min": _measure(F.min),
    "max": _measure(F.max),
    "avg": _measure(F.avg),
    "count_distinct": _measure(lambda column: F.size(F.collect_set(column)).cast("long")),
    "approx_count_distinct": _measure(F.approx_count_distinct),
    "first": _measure(lambda column: F.min_by(column, F.col("event_time"))),
    "last": _measure(lambda column: F.max_by(column, F.col("event_time"))),
    "any": _measure(F.bool_or),
}


def measure_column(measure: GoldMeasure) -> Column:
    """The aggregate of one measure, named after it.

    Example::

        pages = measure_column(GoldMeasure(name="pages", fn="count_distinct", expr="page"))
        rows.groupBy("user_id").agg(pages)
    """
    return MEASURES[measure.fn](measure.expr).alias(measure.name)
