"""Late events: the events a windows query's watermark kept out of its windows, captured row for row.

Spark has no side output for late rows, so they are found again. In micro-batch N a stateful operator drops
the rows that are late against the watermark batch N-1 ran with (its offset log holds it), not the one N
computes: the de-duplication drops an event whose ``event_time`` is at or before it, a windowed aggregation a
row whose window ends at or before it. The rows batch N read are read again from the same files
(:func:`~eventlake.runtime.running_batch.batch_input`) and the same rules applied to them: the captured set
is what the aggregation dropped, because both come from the same rows and the same watermark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

LATE_EVENTS = "late_events"  # a job's table of late events: <job>_late_events
# The columns a late event gets besides its own (and the writer's writer_id and batch_id).
LATE_COLUMNS_SCHEMA = "window_start timestamp, window_end timestamp, watermark timestamp, late_by_seconds double"


@dataclass(frozen=True)
class LateRule:
    """How a windows query drops late rows. ``deduplicated``: a de-duplication with the watermark comes first
    (it drops every event at or before the watermark, whatever its window). ``prepare``: the stateless steps
    between the events and the aggregation (derived columns, filter, joins), which decide what reaches it.
    ``with_window``: adds ``window_start`` and ``window_end`` of each window a row falls in (a row per window
    for sliding windows); None when the windows are not known (a job of SQL), and they are left empty."""

    deduplicated: bool
    prepare: Callable[[DataFrame], DataFrame]
    with_window: Callable[[DataFrame], DataFrame] | None


def late_events(rows: DataFrame, watermark: datetime | Column, rule: LateRule) -> DataFrame:
    """A batch's input events -> those its windows query dropped as late against ``watermark`` (the watermark of
    the batch before): one row per event and window it would have fallen in, with the event's columns, then
    ``window_start``, ``window_end``, ``watermark`` and ``late_by_seconds`` (the watermark minus the event time)."""
    limit = watermark if isinstance(watermark, Column) else F.lit(watermark).cast("timestamp")
    columns = rows.columns
    if rule.deduplicated:
        late = _with_window(rows.where(F.col("event_time") <= limit), rule)
    else:
        # A window ends after its events: only an event before the watermark can be in a closed window.
        reaching = rule.prepare(rows.where(F.col("event_time") < limit))
        late = _with_window(reaching, rule).where(F.col("window_end") <= limit)
    late_by = (F.unix_micros(limit) - F.unix_micros("event_time")) / 1_000_000
    return late.select(
        *columns, "window_start", "window_end", limit.alias("watermark"), late_by.alias("late_by_seconds")
    )


def _with_window(rows: DataFrame, rule: LateRule) -> DataFrame:
    if rule.with_window is None:
        empty = F.lit(None).cast("timestamp")
        return rows.withColumns({"window_start": empty, "window_end": empty})
    return rule.with_window(rows)
