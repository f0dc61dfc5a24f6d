"""The dead-letter sink of an intake query: a micro-batch's invalid records, shaped as rows of the job's
``<job>_dead_letters`` (:mod:`eventlake.pipeline.dead_letters`), appended once per batch."""

from __future__ import annotations

from pyspark.sql import DataFrame

from eventlake.pipeline.contract import invalid_records
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE, to_dead_letters
from eventlake.pipeline.sinks.delta_append import BatchWriter, fits_one_file
from eventlake.runtime.config import RetrySettings, StorageSettings
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.retry import with_retries


def dead_letter_rows(parsed: DataFrame, job: str) -> DataFrame:
    """Rows of a parse (:func:`~eventlake.pipeline.contract.parse_events` or a declared contract's) -> the
    job's dead letters: the invalid ones, raw record and error kept.

    Example::

        dead_letter_rows(parsed, "etl").select("error_code", "topic", "offset").show()
    """
    return invalid_records(parsed).transform(to_dead_letters, job=job)


def append_dead_letters(
    parsed: DataFrame,
    batch_id: int,
    invalid: int,
    *,
    job: str,
    storage: StorageSettings,
    writer: BatchWriter,
    retry: RetrySettings,
) -> None:
    """Append the dead letters of one micro-batch's parsed rows, ``invalid`` of them, to ``<job>_dead_letters``,
    once (``writer``), retried by ``retry``. The caller skips a batch without invalid rows: every Delta commit
    costs, even an empty one.

    Example::

        if counts.invalid:
            append_dead_letters(
                parsed, batch_id, counts.invalid, job="etl", storage=storage, writer=writer, retry=settings.retry
            )
    """
    rows = dead_letter_rows(parsed, job)
    with_retries(
        lambda: writer.append(
            rows, storage.table_path(job_table(job, DEAD_LETTERS_TABLE)), batch_id, one_file=fits_one_file(invalid)
        ),
        retry,
        f"{job}: writing the dead letters of batch {batch_id}",
    )
