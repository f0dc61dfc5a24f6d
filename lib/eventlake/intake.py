"""The intake of a job: every Kafka record it read, accounted for per micro-batch and partition.

The intake query of a job writes, for each micro-batch and in an idempotent way, the invalid records to
``dead_letters`` and one row per Kafka partition to ``intake_batches``: the offsets read and how many
records were valid and invalid. Together they prove that every offset was read once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from eventlake.config import RetrySettings, StorageSettings
from eventlake.contract import invalid_records
from eventlake.dead_letters import DEAD_LETTERS_TABLE, to_dead_letters
from eventlake.retry import with_retries
from eventlake.sinks import append_once

INTAKE_TABLE = "intake_batches"
# Observed per batch (progress.observedMetrics) and recorded in pipeline_metrics.dead_letters.
DEAD_LETTER_ROWS = "dead_letter_rows"


def observe_dead_letters(parsed: DataFrame) -> DataFrame:
    """Report, with each micro-batch's progress, how many of its rows are invalid (become dead letters)."""
    if not parsed.isStreaming:
        return parsed
    return parsed.observe(DEAD_LETTER_ROWS, F.count(F.when(F.col("error_code").isNotNull(), 1)).alias("rows"))


def count_intake_per_partition(parsed: DataFrame, job: str, batch_id: int) -> DataFrame:
    """Rows of :func:`~eventlake.contract.parse_events` -> one row per topic partition: the first and
    last offset read, the number of records, and how many were valid and invalid."""
    is_valid = F.col("error_code").isNull()
    return parsed.groupBy("topic", "partition").agg(
        F.lit(job).alias("job"),
        F.lit(batch_id).cast("long").alias("batch_id"),
        F.min("offset").alias("first_offset"),
        F.max("offset").alias("last_offset"),
        F.count(F.lit(1)).alias("records"),
        F.count(F.when(is_valid, 1)).alias("valid"),
        F.count(F.when(~is_valid, 1)).alias("invalid"),
    ).select("job", "batch_id", "topic", "partition", "first_offset", "last_offset", "records", "valid", "invalid")


@dataclass(frozen=True)
class BatchCounts:
    """How many records a micro-batch holds, and how many of them are valid and invalid."""

    records: int
    valid: int
    invalid: int


# A job's own writes of a micro-batch: (parsed rows, batch id, their counts) -> None; idempotent per batch id.
BatchWrites = Callable[[DataFrame, int, BatchCounts], None]


def write_intake_batch(
    parsed: DataFrame,
    batch_id: int,
    *,
    job: str,
    storage: StorageSettings,
    writer_id: str,
    retry: RetrySettings = RetrySettings(max_attempts=1),
    write_records: BatchWrites | None = None,
) -> None:
    """Write one micro-batch: its dead letters, then the job's own ``write_records``, then the intake
    counts, each idempotent per batch id and retried on transient failures. The intake counts go last,
    so a batch with its ``intake_batches`` rows is a batch written whole.

    The batch is parsed once (it stays cached while it is written), and a table is not touched when the
    batch has nothing for it: every Delta commit costs, even an empty one.
    """
    parsed.persist()
    try:
        intake = count_intake_per_partition(parsed, job, batch_id)
        totals = intake.agg(
            *(F.coalesce(F.sum(name), F.lit(0)).alias(name) for name in ("records", "valid", "invalid"))
        ).first()
        counts = BatchCounts(records=totals.records, valid=totals.valid, invalid=totals.invalid)
        if not counts.records:
            return
        if counts.invalid:
            dead_letters = invalid_records(parsed).transform(to_dead_letters, job=job)
            with_retries(
                lambda: append_once(dead_letters, storage.table_path(DEAD_LETTERS_TABLE), writer_id, batch_id),
                retry,
                f"{job}: writing the dead letters of batch {batch_id}",
            )
        if write_records is not None:
            write_records(parsed, batch_id, counts)
        with_retries(
            lambda: append_once(intake, storage.table_path(INTAKE_TABLE), writer_id, batch_id),
            retry,
            f"{job}: writing the intake counts of batch {batch_id}",
        )
    finally:
        parsed.unpersist()
