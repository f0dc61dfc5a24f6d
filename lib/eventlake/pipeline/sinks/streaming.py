"""Starting a ``foreachBatch`` query with its trigger, and running a batch's independent writes together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import DataFrame
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from eventlake.runtime.config import parse_duration, spark_interval


def with_trigger(writer: DataStreamWriter, trigger: str) -> DataStreamWriter:
    """``availableNow`` (the backlog, then stop) or a processing-time interval such as ``30 seconds``.

    Example::

        with_trigger(messages.writeStream.format("kafka"), "10 seconds").start()
    """
    if trigger == "availableNow":
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=spark_interval(parse_duration(trigger)))


def start_batch_stream(
    rows: DataFrame,
    write_batch: Callable[[DataFrame, int], None],
    query_name: str,
    checkpoint: str,
    trigger: str,
) -> StreamingQuery:
    """Run ``write_batch(batch, batch_id)`` on each micro-batch (``foreachBatch``); the function must write a
    batch once however often it runs (see :class:`~eventlake.pipeline.sinks.BatchWriter`), because a batch may
    run again after a crash.

    Example::

        start_batch_stream(parsed, write_batch, "analytics_intake", "data/checkpoints/analytics/intake", "availableNow")
    """
    writer = rows.writeStream.queryName(query_name).option("checkpointLocation", checkpoint).foreachBatch(write_batch)
    return with_trigger(writer, trigger).start()


def run_together(writes: Sequence[Callable[[], None]]) -> None:
    """Run independent writes (to different tables) at the same time, and raise the first failure once all
    have ended. A Delta write is mostly waiting (job scheduling, file system, commit), so two overlap well.

    Example::

        run_together([write_bronze, write_silver])  # both run; the first failure is raised after both end
    """
    if len(writes) <= 1:
        for write in writes:
            write()
        return
    with ThreadPoolExecutor(max_workers=len(writes), thread_name_prefix="eventlake-write") as pool:
        futures = [pool.submit(write) for write in writes]
    for future in futures:
        future.result()
