"""Writing streams to Delta tables: one named query and one checkpoint per table."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery
from pyspark.sql.types import StructType

from eventlake.config import parse_duration, spark_interval


def with_trigger(writer: DataStreamWriter, trigger: str) -> DataStreamWriter:
    """``availableNow`` (the backlog, then stop) or a processing-time interval such as ``30 seconds``."""
    if trigger == "availableNow":
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=spark_interval(parse_duration(trigger)))


def append_new_rows(rows: DataFrame, batch_id: int, *, table_path: str, writer_id: str) -> None:
    """``foreachBatch`` function: append a micro-batch's rows with :func:`append_once`, and skip the
    commit when there are none (a batch of a stateful query often closes no window). The rows are
    computed once, cached: a stateful query's batch must not run twice."""
    rows.persist()
    try:
        if rows.count():
            append_once(rows, table_path, writer_id, batch_id)
    finally:
        rows.unpersist()


def ensure_table(spark: SparkSession, table_path: str, schema: str) -> None:
    """Create an empty Delta table with ``schema`` (a DDL string) at ``table_path`` unless one is there."""
    DeltaTable.createIfNotExists(spark).location(table_path).addColumns(StructType.fromDDL(schema)).execute()


def batch_writer_id(query_name: str, checkpoint: str) -> str:
    """The Delta ``txnAppId`` of a query's batch writes: its name plus a digest of its checkpoint, so two
    deployments of one query (two checkpoints) never mistake each other's batches for their own."""
    return f"{query_name}-{hashlib.sha256(checkpoint.encode()).hexdigest()[:16]}"


def append_once(
    rows: DataFrame,
    table_path: str,
    writer_id: str,
    batch_id: int,
    partition_by: Sequence[str] = (),
    merge_schema: bool = False,
) -> None:
    """Append ``rows`` to a Delta table unless batch ``batch_id`` of ``writer_id`` is already in it.

    Delta records (txnAppId, txnVersion) in the same commit as the rows and skips a write whose version
    is not newer, so a micro-batch that is replayed after a crash changes nothing.
    """
    writer = rows.write.format("delta").mode("append").option("txnAppId", writer_id).option("txnVersion", batch_id)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    writer.save(table_path)
    warm_table_state(rows.sparkSession, table_path)


# One background thread computes table states; a table waiting for it is not queued twice.
_warming = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eventlake-delta-state")
_queued: set[str] = set()
_queued_lock = threading.Lock()


def warm_table_state(spark: SparkSession, table_path: str) -> None:
    """Compute, in the background, the state of the table's newest version (its files and the writers'
    batch versions), which the next ``append_once`` or MERGE on it reads.

    Delta 4.4 answers ``txnAppId`` checks and MERGE's file list from that state and rebuilds it with Spark
    jobs (about 0.7 s here) for every new version: a commit creates the version, so without this every
    commit of a micro-batch would pay for a rebuild. Done between the batch's writes to this table, the
    rebuild is usually ready, on the idle core, when the next batch writes. Only an optimisation: a
    failure (the session stopping, another version committed meanwhile) just leaves the work to Delta.
    """
    with _queued_lock:
        if table_path in _queued:
            return
        _queued.add(table_path)
    _warming.submit(_compute_table_state, spark, table_path)


def _compute_table_state(spark: SparkSession, table_path: str) -> None:
    with _queued_lock:
        _queued.discard(table_path)
    with contextlib.suppress(Exception):  # see warm_table_state: an optimisation never fails a write
        delta_log = spark._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, table_path)
        delta_log.unsafeVolatileSnapshot().transactions()


def insert_new_rows(rows: DataFrame, table_path: str, key: str, partition_column: str) -> None:
    """Insert the rows whose ``key`` is not in the Delta table yet (an insert-only MERGE), creating the
    table, partitioned by ``partition_column``, on first use. Duplicates of a key are expected to share
    its partition (a duplicate is the same event again), which lets the MERGE read only the partitions
    of the batch. Running it again with the same rows inserts nothing: it is idempotent. Columns the
    table does not have yet are added (schema evolution)."""
    spark = rows.sparkSession
    partitions = [row[0] for row in rows.select(partition_column).distinct().collect()]
    if not partitions:
        return
    (
        DeltaTable.createIfNotExists(spark)
        .location(table_path)
        .addColumns(rows.schema)
        .partitionedBy(partition_column)
        .execute()
    )
    listed = ", ".join(f"'{value}'" for value in sorted(map(str, partitions)))
    condition = (
        f"existing.{partition_column} IN ({listed}) AND existing.{partition_column} = new.{partition_column}"
        f" AND existing.{key} = new.{key}"
    )
    (
        DeltaTable.forPath(spark, table_path)
        .alias("existing")
        .merge(rows.alias("new"), condition)
        .whenNotMatchedInsertAll()
        .withSchemaEvolution()
        .execute()
    )
    warm_table_state(spark, table_path)


def start_batch_stream(
    rows: DataFrame,
    write_batch: Callable[[DataFrame, int], None],
    query_name: str,
    checkpoint: str,
    trigger: str,
) -> StreamingQuery:
    """Run ``write_batch(batch, batch_id)`` on each micro-batch (``foreachBatch``); the function must be
    idempotent per batch id, as :func:`append_once` is, because a batch may run again after a crash."""
    writer = rows.writeStream.queryName(query_name).option("checkpointLocation", checkpoint).foreachBatch(write_batch)
    return with_trigger(writer, trigger).start()
