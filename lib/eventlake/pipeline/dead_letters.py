"""The dead letters: every record a job could not use, with the reason and where it came from, in the job's own
``<job>_dead_letters`` table (see :mod:`eventlake.runtime.job_tables`)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from eventlake.runtime.job_tables import DEAD_LETTERS

DEAD_LETTERS_TABLE = DEAD_LETTERS


def to_dead_letters(invalid: DataFrame, job: str) -> DataFrame:
    """Rows with the raw Kafka columns and ``error_code``/``error_message``/``error_stage`` -> rows of
    ``dead_letters``. The record's Kafka headers are kept as ``raw_headers`` (when the rows have them): a replay
    sends the record with its ``content-type`` again, which picks its format.

    Example::

        raw.transform(parse_events, settings.contract).transform(invalid_records).transform(to_dead_letters, job="etl")
    """
    headers = [F.col("headers").alias("raw_headers")] if "headers" in invalid.columns else []
    return invalid.select(
        F.col("key").alias("raw_key"),
        F.col("value").alias("raw_value"),
        *headers,
        "error_code",
        "error_message",
        F.col("error_stage").alias("stage"),
        F.lit(job).alias("job"),
        "topic",
        "partition",
        "offset",
        F.col("timestamp").alias("kafka_timestamp"),
        F.current_timestamp().alias("ingested_at"),
    )
