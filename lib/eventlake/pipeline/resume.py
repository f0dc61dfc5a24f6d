"""A query that starts without its checkpoint over tables that already hold rows: the tables are the truth.

A checkpoint lost or removed used to mean the topic read again from ``kafka.starting_offsets``: every record
written a second time (the new checkpoint's writer id finds none of the old rows). Now

* a query reading Kafka into a job's tables (an intake, the ETL's ingest or raw query) starts at the next offset
  of each partition that the job's ``<job>_intake_batches`` records (written last in every batch: a batch there is
  complete), so no record is written twice and none is skipped; a partition the table has never seen starts at
  ``kafka.starting_offsets``;
* a windows query, whose output would be appended again from the first event, is refused while its tables hold
  rows, unless asked to rebuild them (``--rebuild``): their rows are deleted, each table in one commit, and the
  windows computed again from ``<job>_events``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from eventlake.runtime.config import KafkaSettings, StorageSettings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.hadoop_files import HadoopFiles
from eventlake.runtime.job_tables import INTAKE_BATCHES, job_table
from eventlake.runtime.kafka_admin import require_topic

# Spark's startingOffsets for a partition: its earliest or its latest offset.
_EARLIEST, _LATEST = -2, -1


def has_batches(spark: SparkSession, checkpoint: str) -> bool:
    """True when the query of ``checkpoint`` has planned a batch: Spark resumes from it, not from options.

    Example::

        has_batches(spark, storage.checkpoint_path("analytics", "intake"))
    """
    return bool(HadoopFiles(spark).log_entries(f"{checkpoint.rstrip('/')}/offsets"))


def next_offsets(spark: SparkSession, intake_path: str, topic: str) -> dict[int, int]:
    """The offset after the last one ``<job>_intake_batches`` at ``intake_path`` records, per partition of
    ``topic``; empty when it records none.

    Example::

        next_offsets(spark, storage.table_path("analytics_intake_batches"), "events")  # {0: 1200, 1: 1187}
    """
    if not DeltaTable.isDeltaTable(spark, intake_path):
        return {}
    rows = (
        spark.read.format("delta").load(intake_path)
        .where((F.col("topic") == topic) & F.col("last_offset").isNotNull())
        .groupBy("partition").agg(F.max("last_offset").alias("last_offset"))
        .collect()
    )
    return {row.partition: row.last_offset + 1 for row in rows}


def resumed_kafka(
    spark: SparkSession, kafka: KafkaSettings, storage: StorageSettings, job: str, checkpoint: str
) -> KafkaSettings:
    """``kafka`` for a query of ``job`` that reads ``kafka.topic`` with ``checkpoint``: as it is when the
    checkpoint has batches or the job's intake table records none of the topic; else starting at the next
    offset of each partition the intake table records (the other partitions at ``kafka.starting_offsets``).
    Prints what it does: a lost checkpoint is worth a line.

    Example::

        kafka = resumed_kafka(spark, settings.kafka, settings.storage, "etl", storage.checkpoint_path("etl", "ingest"))
        read_kafka_stream(spark, kafka)
    """
    if kafka.starting_offsets.lstrip().startswith("{") or has_batches(spark, checkpoint):
        return kafka
    intake = job_table(job, INTAKE_BATCHES)
    recorded = next_offsets(spark, storage.table_path(intake), kafka.topic)
    if not recorded:
        return kafka
    partitions = require_topic(kafka.bootstrap_servers, kafka.topic, kafka.options)
    unseen = _EARLIEST if kafka.starting_offsets == "earliest" else _LATEST
    starts = {str(partition): recorded.get(partition, unseen) for partition in range(partitions)}
    where = ", ".join(f"{partition} at {offset}" for partition, offset in sorted(recorded.items()))
    print(
        f"{job}: {checkpoint} has no batches but {intake} records the topic '{kafka.topic}': resuming after it"
        f" (partition {where}), so no record is written twice",
        flush=True,
    )
    return dataclasses.replace(kafka, starting_offsets=json.dumps({kafka.topic: starts}))


def tables_with_rows(spark: SparkSession, paths: Sequence[str]) -> list[str]:
    """Those of the Delta tables at ``paths`` that hold rows.

    Example::

        tables_with_rows(spark, [storage.table_path("analytics_windows")])
    """
    return [
        path for path in paths
        if DeltaTable.isDeltaTable(spark, path) and not spark.read.format("delta").load(path).isEmpty()
    ]


def check_windows_start(
    spark: SparkSession, job: str, checkpoint: str, tables: dict[str, str], *, rebuild: bool
) -> None:
    """Before a windows query of ``job`` starts on ``checkpoint``: with batches in the checkpoint, nothing to do
    (``rebuild`` is refused: it computes the windows on a new checkpoint). Without, its ``tables`` (name -> path:
    the output, the batch figures, the late events) must be empty, or ``rebuild`` empties them, each in one commit
    (the old rows stay in the table's history); else the job stops with a line naming ``--rebuild``.

    Example::

        check_windows_start(spark, "analytics", cp, {"analytics_windows": path}, rebuild=False)
    """
    if has_batches(spark, checkpoint):
        if rebuild:
            raise EnvironmentProblem(
                f"--rebuild computes {job}'s windows again on a new checkpoint, and {checkpoint} has batches: "
                "remove that folder first (the windows query's only), or run without --rebuild"
            )
        return
    holding = tables_with_rows(spark, list(tables.values()))
    if not holding:
        return
    names = [name for name, path in tables.items() if path in holding]
    if not rebuild:
        raise EnvironmentProblem(
            f"{job}'s windows query has no checkpoint ({checkpoint}) but {', '.join(names)} hold rows: starting"
            f" over would write them again. Restore the checkpoint, or run with --rebuild to compute them again"
            f" from {job}_events"
        )
    for name, path in tables.items():
        if path in holding:
            DeltaTable.forPath(spark, path).delete()
            print(f"{job}: --rebuild: emptied {name} (its rows stay in the table's history)", flush=True)
