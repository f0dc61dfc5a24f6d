"""The windows query of a job: its events streamed from the job's events table through the watermark, the
de-duplication and a windowed aggregation, and each batch written with the batch's own figures.

The analytics job and every gold job of config (:mod:`eventlake.pipeline.gold`) write through here, so they
keep the same guarantees: the windows a batch closed and the batch's figures (events read, de-duplicated,
counted, dropped as duplicates and as late; its offsets) are appended once each, together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from eventlake.pipeline.intake import BatchCounts
from eventlake.pipeline.late_events import LateRule, late_events
from eventlake.pipeline.sinks import (
    BatchWriter,
    append_stored_rows,
    fits_one_file,
    run_together,
    stored_with_count,
)
from eventlake.runtime.config import RetrySettings, StorageSettings
from eventlake.runtime.frames import rows_frame
from eventlake.runtime.retry import with_retries
from eventlake.runtime.running_batch import batch_input, running_batch

# Observed per batch (DataFrame.observe): the events the windows query reads, and those that reach the window
# aggregation after the watermark, the de-duplication (and a gold job's filter and joins).
WINDOWS_INPUT_ROWS = "windows_input_rows"
WINDOWED_ROWS = "windowed_rows"
DEDUPLICATED_ROWS = "deduplicated_rows"
# One row per batch of the windows query that read anything: what the reconciliation adds up.
# deduplicated_rows: the events left after the de-duplication (windowed_rows unless a filter or an inner join
# kept some out); NULL in rows written before it was recorded. late_events: the rows the batch appended to the
# job's late events table (NULL when the job keeps none).
WINDOW_BATCHES_SCHEMA = (
    "job string, batch_id long, input_rows long, windowed_rows long, dropped_duplicates long, dropped_late long,"
    " watermark timestamp, start_offset string, end_offset string, deduplicated_rows long, late_events long"
)
# The stateful operators' SQL metrics of the rows they drop (the deduplication and the aggregation).
DROPPED_LATE_METRIC = "numRowsDroppedByWatermark"
DROPPED_DUPLICATES_METRIC = "numDroppedDuplicateRows"


@dataclass(frozen=True)
class WindowTables:
    """The names a windows query writes under: its ``job``, the ``query``, the ``output`` table of windows
    and the ``batches`` table of per-batch figures."""

    job: str
    query: str
    output: str
    batches: str


@dataclass(frozen=True)
class LateCapture:
    """Where a windows query keeps its late events (``table``) and how it finds them (``rule``, see
    :mod:`eventlake.pipeline.late_events`). ``drop``: the columns of the events table that are not the
    event's (the intake's own batch columns); ``events_path``: the events table the windows query streams."""

    table: str
    rule: LateRule
    events_path: str
    drop: tuple[str, ...] = ()


def observe_rows(rows: DataFrame, name: str) -> DataFrame:
    """Count a streaming DataFrame's rows per batch under ``name`` (read back by :func:`write_windows_batch`);
    a batch DataFrame is returned as it is."""
    return rows.observe(name, F.count(F.lit(1)).alias("rows")) if rows.isStreaming else rows


def write_windows_batch(
    windows: DataFrame,
    batch_id: int,
    *,
    tables: WindowTables,
    spark: SparkSession,
    storage: StorageSettings,
    writer: BatchWriter,
    retry: RetrySettings,
    late: LateCapture | None = None,
) -> None:
    """``foreachBatch`` function of a windows query: append the windows the batch closed and, at the same
    time, the batch's figures (``tables.batches``) and, with ``late``, the events it dropped as late, each
    once (``writer``). All come from the same execution of the batch, so a batch that runs again after a
    crash writes the same rows. A batch that read nothing (it only moved the watermark) has no figures row."""
    windows, window_count = stored_with_count(windows)
    batch = running_batch(
        spark, tables.query, batch_id, observed=(WINDOWS_INPUT_ROWS, DEDUPLICATED_ROWS, WINDOWED_ROWS),
        metrics=(DROPPED_LATE_METRIC, DROPPED_DUPLICATES_METRIC),
    )
    write_windows = partial(
        append_stored_rows, windows, window_count, batch_id, table_path=storage.table_path(tables.output),
        table=tables.output, writer=writer, job=tables.job, retry=retry,
    )
    if batch.start_offset == batch.end_offset and not batch.observed[WINDOWS_INPUT_ROWS]:
        write_windows()
        return
    writes = [write_windows]
    late_count = None
    if late is not None:
        # The operators dropped no row as late (their metric counts rows, or partial aggregates of them): none
        # to find, and no second read of the batch's files.
        dropped = batch.metrics[DROPPED_LATE_METRIC]
        late_rows, late_count = (
            _late_rows(spark, tables.query, batch_id, batch.late_watermark_ms, late) if dropped else (None, 0)
        )
        if late_rows is not None and late_count:
            writes.append(partial(
                with_retries,
                lambda: writer.append(
                    late_rows, storage.table_path(late.table), batch_id, one_file=fits_one_file(late_count)
                ),
                retry,
                f"{tables.job}: writing the late events of batch {batch_id} to {late.table}",
            ))
    figures = {
        "job": tables.job,
        "batch_id": batch_id,
        "input_rows": batch.observed[WINDOWS_INPUT_ROWS],
        "windowed_rows": batch.observed[WINDOWED_ROWS],
        "dropped_duplicates": batch.metrics[DROPPED_DUPLICATES_METRIC],
        "dropped_late": batch.metrics[DROPPED_LATE_METRIC],
        "watermark": datetime.fromtimestamp(batch.watermark_ms / 1000, UTC).replace(tzinfo=None)
        if batch.watermark_ms
        else None,
        "start_offset": batch.start_offset,
        "end_offset": batch.end_offset,
        "deduplicated_rows": batch.observed[DEDUPLICATED_ROWS],
        "late_events": late_count,
    }
    row = rows_frame(spark, [figures], WINDOW_BATCHES_SCHEMA)
    write_figures = partial(
        with_retries,
        lambda: writer.append(row, storage.table_path(tables.batches), batch_id, one_file=True),
        retry,
        f"{tables.job}: writing the figures of batch {batch_id} to {tables.batches}",
    )
    run_together([*writes, write_figures])


def _late_rows(
    spark: SparkSession, query: str, batch_id: int, watermark_ms: int, late: LateCapture
) -> tuple[DataFrame | None, int]:
    """The late events of the running batch, computed once and kept, and how many they are (None and 0 when no
    watermark is set yet)."""
    rows = batch_input(spark, query, batch_id, late.events_path) if watermark_ms else None
    if rows is None:
        return None, 0
    return stored_with_count(late_events(rows.drop(*late.drop), F.timestamp_millis(F.lit(watermark_ms)), late.rule))


def write_valid_events(
    parsed: DataFrame,
    batch_id: int,
    counts: BatchCounts,
    *,
    to_events: Callable[[DataFrame], DataFrame],
    table: str,
    job: str,
    storage: StorageSettings,
    writer: BatchWriter,
    retry: RetrySettings,
) -> None:
    """The intake's own write (:data:`~eventlake.pipeline.intake.BatchWrites`): append one micro-batch's valid
    events (``to_events`` of the parsed rows) to the events table the windows query streams, once, retried
    on transient failures."""
    if counts.valid:
        events = to_events(parsed)
        with_retries(
            lambda: writer.append(events, storage.table_path(table), batch_id, one_file=fits_one_file(counts.valid)),
            retry,
            f"{job}: writing batch {batch_id} to {table}",
        )
