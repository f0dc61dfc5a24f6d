"""Writing streams to Delta tables: one named query and one checkpoint per table."""

from __future__ import annotations

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
