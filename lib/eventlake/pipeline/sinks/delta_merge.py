"""The insert-only MERGE into Delta: a row whose key the table holds within a few days of the row's own is not
inserted again, so a batch run twice, or a message delivered twice, is kept once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def day_ranges(days: Iterable[date], lookback_days: int) -> list[tuple[date, date]]:
    """The event days to search for keys of a batch with ``days``: each day and ``lookback_days`` either side,
    overlapping or adjacent ranges merged. A stray day far from the others adds its own short range instead of
    stretching one range over every day between.

    Example::

        day_ranges([date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 20)], 1)
        # [(date(2026, 3, 1), date(2026, 3, 4)), (date(2026, 3, 19), date(2026, 3, 21))]
    """
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        start, end = _shift(day, -lookback_days), _shift(day, lookback_days)
        if ranges and start <= _shift(ranges[-1][1], 1):
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    return ranges


def _shift(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def insert_new_rows(rows: DataFrame, table_path: str, key: str, partition_column: str, lookback_days: int = 1) -> None:
    """Insert the rows whose ``key`` is not in the Delta table yet (an insert-only MERGE), creating the
    table, partitioned by ``partition_column`` (a date), on first use. ``rows`` must hold each key once.

    A key matches an existing row of the same key dated within ``lookback_days`` of any of the batch's dates
    (:func:`day_ranges`): a copy of a key within ``lookback_days`` of the first is not inserted, one further away
    may be. The ranges are a predicate on the partition column alone, so the MERGE reads only those partitions,
    not the whole table. Running it again with the same rows inserts nothing: it is idempotent. Columns the
    table does not have yet are added (schema evolution).

    Example::

        silver = to_silver(rows, "event_id")
        insert_new_rows(silver, "data/tables/silver_events", "event_id", "event_date", lookback_days=1)
    """
    spark = rows.sparkSession
    dates = rows.select(F.to_date(partition_column)).distinct().collect()
    if not dates:
        return
    if not DeltaTable.isDeltaTable(spark, table_path):
        (
            DeltaTable.createIfNotExists(spark)
            .location(table_path)
            .addColumns(rows.schema)
            .partitionedBy(partition_column)
            .execute()
        )
    ranges = day_ranges((row[0] for row in dates if row[0] is not None), lookback_days)
    within = " OR ".join(
        f"existing.{partition_column} BETWEEN DATE'{first}' AND DATE'{last}'" for first, last in ranges
    )
    # Rows without a date (silver has none: every event has a time) leave no range to bound the search by.
    condition = f"({within}) AND existing.{key} = new.{key}" if within else f"existing.{key} = new.{key}"
    (
        DeltaTable.forPath(spark, table_path)
        .alias("existing")
        .merge(rows.alias("new"), condition)
        .whenNotMatchedInsertAll()
        .withSchemaEvolution()
        .execute()
    )
