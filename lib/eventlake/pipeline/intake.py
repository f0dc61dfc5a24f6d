"""The intake of a job: every Kafka record it read, accounted for per micro-batch and partition.

The intake query of a job writes, for each micro-batch and once, the invalid records to
``dead_letters`` and one row per Kafka partition to ``intake_batches``: the offsets read and how many
records were valid and invalid. Together they prove that every offset was read once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from eventlake.pipeline.contract import is_dead_letter, is_dropped
from eventlake.pipeline.expectations import (
    EXPECTATION_BATCHES,
    EXPECTATION_BATCHES_SCHEMA,
    expectation_figures,
    expectation_rows,
    raise_on_failed,
)
from eventlake.pipeline.sinks import BatchWriter, append_dead_letters, run_together, stored_with_count
from eventlake.runtime.config import Expectation, RetrySettings, StorageSettings
from eventlake.runtime.frames import rows_frame
from eventlake.runtime.job_tables import DEAD_LETTER_ROWS, INTAKE_BATCHES, job_table
from eventlake.runtime.retry import with_retries

INTAKE_TABLE = INTAKE_BATCHES
INTAKE_SCHEMA = (
    "job string, batch_id long, topic string, partition int, first_offset long, last_offset long,"
    " records long, valid long, invalid long"
)


def observe_dead_letters(parsed: DataFrame) -> DataFrame:
    """Report, with each micro-batch's progress, how many of its rows are invalid (become dead letters)."""
    if not parsed.isStreaming:
        return parsed
    return parsed.observe(DEAD_LETTER_ROWS, F.count(F.when(is_dead_letter(), 1)).alias("rows"))


def count_intake_per_partition(parsed: DataFrame, job: str, batch_id: int) -> DataFrame:
    """Rows of :func:`~eventlake.pipeline.contract.parse_events` -> one row per topic partition: the first and
    last offset read, the number of records, and how many were valid and invalid (NULL for Kafka rows not
    parsed: without ``error_code``). A row an expectation dropped is neither."""
    if "error_code" in parsed.columns:
        valid, invalid = F.count(F.when(F.col("error_code").isNull(), 1)), F.count(F.when(is_dead_letter(), 1))
    else:
        valid = invalid = F.lit(None).cast("long")
    return parsed.groupBy("topic", "partition").agg(
        F.lit(job).alias("job"),
        F.lit(batch_id).cast("long").alias("batch_id"),
        F.min("offset").alias("first_offset"),
        F.max("offset").alias("last_offset"),
        F.count(F.lit(1)).alias("records"),
        valid.alias("valid"),
        invalid.alias("invalid"),
    ).select("job", "batch_id", "topic", "partition", "first_offset", "last_offset", "records", "valid", "invalid")


def _empty_intake_row(job: str, batch_id: int) -> dict[str, object]:
    """The ``intake_batches`` row of a batch that read no record (no topic or partition)."""
    return {
        "job": job, "batch_id": batch_id, "topic": None, "partition": None, "first_offset": None,
        "last_offset": None, "records": 0, "valid": 0, "invalid": 0,
    }


@dataclass(frozen=True)
class BatchCounts:
    """How many records a micro-batch holds, how many of them are valid and invalid, and how many valid ones
    an expectation dropped."""

    records: int
    valid: int
    invalid: int
    dropped: int = 0


BATCH_COUNTS = ("records", "valid", "invalid", "dropped")


def _expectation_counts(expectations: Sequence[Expectation]) -> list:
    """The rows dropped and each expectation's figures; none without expectations (each is work on every row)."""
    if not expectations:
        return []
    return [F.count(F.when(is_dropped(), 1)).alias("dropped"), *expectation_figures(expectations)]


# A job's own writes of a micro-batch: (parsed rows, batch id, their counts) -> None; idempotent per batch id.
BatchWrites = Callable[[DataFrame, int, BatchCounts], None]


def write_intake_batch(
    parsed: DataFrame,
    batch_id: int,
    *,
    job: str,
    storage: StorageSettings,
    writer: BatchWriter,
    retry: RetrySettings,
    write_records: BatchWrites | None = None,
    expectations: Sequence[Expectation] = (),
) -> None:
    """Write one micro-batch: its dead letters and, at the same time, the job's own ``write_records``
    and the figures of its ``expectations`` (rows of :func:`~eventlake.pipeline.expectations.check_expectations`),
    then the intake counts, each once per batch (``writer``) and retried by the job's ``retry`` policy (the
    job's own writes retry themselves, with the same policy). The intake counts go last, so a batch with its
    ``intake_batches`` rows is a batch written whole.

    The batch is parsed once, here, and stored for the writes that follow; a table is not touched when
    the batch has nothing for it: every Delta commit costs, even an empty one.

    Example::

        def write_batch(parsed, batch_id):
            write_intake_batch(
                parsed, batch_id, job="analytics", storage=settings.storage, writer=writer, retry=settings.retry,
                write_records=write_events,  # the job's own tables: (parsed, batch_id, counts) -> None
            )

        start_batch_stream(parsed, write_batch, "analytics_intake", checkpoint, "availableNow")
    """
    # Parsed once: the writes read the stored rows through a plan of one node, not the contract's large
    # plan, and the batch's counts come with the same Spark job.
    observation = Observation(f"{job}-batch-{batch_id}")
    parsed = parsed.observe(
        observation,
        F.count(F.lit(1)).alias("records"),
        F.count(F.when(F.col("error_code").isNull(), 1)).alias("valid"),
        F.count(F.when(is_dead_letter(), 1)).alias("invalid"),
        *_expectation_counts(expectations),
    ).localCheckpoint(eager=True)
    observed = observation.get
    counts = BatchCounts(**{name: observed[name] for name in BATCH_COUNTS if name in observed})
    if expectations and counts.records:
        raise_on_failed(parsed, observed, expectations)
    if not counts.records:
        _append_intake(parsed, batch_id, 0, job=job, storage=storage, writer=writer, retry=retry)
        return

    def write_dead_letters() -> None:
        append_dead_letters(parsed, batch_id, counts.invalid, job=job, storage=storage, writer=writer, retry=retry)

    def write_expectation_figures() -> None:
        figures = rows_frame(
            parsed.sparkSession, expectation_rows(observed, expectations, job, batch_id), EXPECTATION_BATCHES_SCHEMA
        )
        with_retries(
            lambda: writer.append(
                figures, storage.table_path(job_table(job, EXPECTATION_BATCHES)), batch_id, one_file=True
            ),
            retry,
            f"{job}: writing the expectation figures of batch {batch_id}",
        )

    writes = [write_dead_letters] if counts.invalid else []
    if expectations:
        writes.append(write_expectation_figures)
    if write_records is not None:
        writes.append(lambda: write_records(parsed, batch_id, counts))
    run_together(writes)
    _append_intake(parsed, batch_id, counts.records, job=job, storage=storage, writer=writer, retry=retry)


def write_unparsed_intake_batch(
    raw: DataFrame,
    batch_id: int,
    *,
    job: str,
    storage: StorageSettings,
    writer: BatchWriter,
    retry: RetrySettings,
    write_records: Callable[[DataFrame, int, int], None],
) -> None:
    """Write one micro-batch of Kafka rows that another query parses: the job's own ``write_records(rows,
    batch_id, records)``, then the intake counts per partition (records and offsets; ``valid`` and ``invalid``
    NULL), each once per batch (``writer``). The rows are read from Kafka once and stored for both."""
    raw, records = stored_with_count(raw)
    if records:
        write_records(raw, batch_id, records)
    _append_intake(raw, batch_id, records, job=job, storage=storage, writer=writer, retry=retry)


def _append_intake(
    rows: DataFrame,
    batch_id: int,
    records: int,
    *,
    job: str,
    storage: StorageSettings,
    writer: BatchWriter,
    retry: RetrySettings,
) -> None:
    """Append the batch's ``intake_batches`` rows: one per partition of ``rows``, or one with no partition when
    the batch read no record (``records`` 0: offsets moved past records a consumer never sees, such as
    transaction markers): the batch is still accounted for, so the reconciliation finds every batch."""
    if not records:
        intake = rows_frame(rows.sparkSession, [_empty_intake_row(job, batch_id)], INTAKE_SCHEMA)
    else:
        intake = count_intake_per_partition(rows, job, batch_id)
    with_retries(
        lambda: writer.append(intake, storage.table_path(job_table(job, INTAKE_TABLE)), batch_id, one_file=True),
        retry,
        f"{job}: writing the intake counts of batch {batch_id}",
    )
