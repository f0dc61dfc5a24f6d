"""The two clocks an event time is checked against: the job's (the micro-batch's time) and the record's
Kafka timestamp, whose clock depends on the topic's ``timestampType``."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

JOB_TIME_COLUMN = "_job_time"  # set by :func:`with_job_clock`
RECORDS_READ = "records_read"  # observed by :func:`with_job_clock`, in progress.observedMetrics
# Whose clock a record's Kafka timestamp is, by the Kafka source's timestampType column.
KAFKA_TIMESTAMP_CLOCKS = {0: "CreateTime: the producer's clock", 1: "LogAppendTime: the broker's clock"}


def with_job_clock(raw: DataFrame) -> DataFrame:
    """Kafka rows -> the same rows with the job's clock in ``_job_time``, for the contract to read.

    In a micro-batch, ``current_timestamp()`` becomes the batch's time as a literal written into the
    generated Java code. Inside the contract's code (one large class) that made every micro-batch compile it
    anew, twice, and run it cold. Computed here, below an observation that Spark's code generation does not
    cross, only this small step changes from batch to batch: the contract's class is compiled once per job
    and stays warm. The observation counts the records read.

    Example::

        read_kafka_stream(spark, source).transform(with_job_clock).transform(parse_events, settings.contract)
    """
    return raw.withColumn(JOB_TIME_COLUMN, F.current_timestamp()).observe(
        RECORDS_READ, F.count(F.lit(1)).alias("rows")
    )


def job_time(rows: DataFrame) -> Column:
    """The job's clock: the column :func:`with_job_clock` added, or ``current_timestamp()`` without it.

    It is ``current_timestamp()``, not a Python clock or a UDF: in a streaming micro-batch Spark replaces it
    with the batch's timestamp, which it writes to the offset log with the batch's offsets before the batch
    runs, and reads back when it runs that batch again after a crash (MicroBatchExecution.constructNextBatch,
    runBatch, populateStartOffsets). So a batch run again sorts every record as its first run did, which
    exactly-once into Delta depends on. (In a batch query it is the time the query started.)
    """
    return F.col(JOB_TIME_COLUMN) if JOB_TIME_COLUMN in rows.columns else F.current_timestamp()


def kafka_clock(rows: DataFrame) -> Column:
    """Whose clock each record's Kafka timestamp is (:data:`KAFKA_TIMESTAMP_CLOCKS`), for the messages."""
    clock = F.lit("timestamp type unknown")
    if "timestampType" in rows.columns:
        for code, name in KAFKA_TIMESTAMP_CLOCKS.items():
            clock = F.when(F.col("timestampType") == code, F.lit(name)).otherwise(clock)
    return clock
