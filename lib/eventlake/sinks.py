"""Writing streams to Delta tables: one named query and one checkpoint per table."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from eventlake.config import parse_duration, spark_interval


def with_trigger(writer: DataStreamWriter, trigger: str) -> DataStreamWriter:
    """``availableNow`` (the backlog, then stop) or a processing-time interval such as ``30 seconds``."""
    if trigger == "availableNow":
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=spark_interval(parse_duration(trigger)))


def start_delta_stream(
    rows: DataFrame, table_path: str, query_name: str, checkpoint: str, trigger: str
) -> StreamingQuery:
    """Append a stream to the Delta table at ``table_path``, exactly once: the Delta sink commits each
    micro-batch with the query's id and batch id, so a batch replayed after a crash is skipped."""
    writer = (
        rows.writeStream.format("delta")
        .queryName(query_name)
        .outputMode("append")
        .option("checkpointLocation", checkpoint)
    )
    return with_trigger(writer, trigger).start(table_path)


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
