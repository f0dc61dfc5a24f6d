"""What Spark knows about the micro-batch a ``foreachBatch`` function is writing, read while it writes.

A query's progress report (``StreamingQueryProgress``) comes after the batch is committed, so figures taken
from it are lost when the job dies between the commit and their write. Inside ``foreachBatch``, once the
batch's rows have been computed, the same figures are already in the query's current execution: its
observed metrics (``DataFrame.observe``), the SQL metrics of its stateful operators (rows dropped by the
watermark, duplicates dropped) and its offsets. Read here, they are written with the batch's own rows, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame, SparkSession


class RunningBatchUnavailable(RuntimeError):
    """The query or its current batch cannot be found (the Spark version exposes them differently)."""


@dataclass(frozen=True)
class RunningBatch:
    """The figures of one running micro-batch of a query (see :func:`running_batch`).

    ``start_offset`` and ``end_offset``: the query's first source offset before and after the batch, as
    Spark writes them in the checkpoint's offset log (JSON; ``start_offset`` None for a query's first
    batch). The next batch of the query starts where this one ended, so consecutive batches chain.
    ``watermark_ms``: the watermark the batch runs with; ``late_watermark_ms``: the one the batch before ran
    with (0 for a first batch), against which Spark's stateful operators drop this batch's late rows."""

    batch_id: int
    observed: dict[str, int]
    metrics: dict[str, int]
    watermark_ms: int
    start_offset: str | None
    end_offset: str | None
    late_watermark_ms: int = 0


def running_batch(
    spark: SparkSession, query_name: str, batch_id: int, observed: tuple[str, ...], metrics: tuple[str, ...]
) -> RunningBatch:
    """The figures of batch ``batch_id`` of the active query ``query_name``, read from ``foreachBatch`` after
    the batch's rows were computed: the ``rows`` of each ``observe(name, ...)`` in ``observed`` (0 when the
    batch reports none) and the total over the plan's operators of each SQL metric in ``metrics`` (such as
    ``numRowsDroppedByWatermark``)."""
    execution = _current_execution(spark, query_name, batch_id)
    engine = next(query for query in spark.streams.active if query.name == query_name)._jsq.streamingQuery()
    observed_metrics = execution.observedMetrics()
    plan = execution.executedPlan()
    return RunningBatch(
        batch_id=batch_id,
        observed={
            name: int(observed_metrics.apply(name).getLong(0)) if observed_metrics.contains(name) else 0
            for name in observed
        },
        metrics={name: _metric_total(plan, name) for name in metrics},
        watermark_ms=int(execution.offsetSeqMetadata().batchWatermarkMs()),
        start_offset=_logged_offset(engine, batch_id - 1),
        end_offset=_logged_offset(engine, batch_id),
        late_watermark_ms=_logged_watermark(engine, batch_id - 1),
    )


def batch_input(spark: SparkSession, query_name: str, batch_id: int, table_path: str) -> DataFrame | None:
    """The rows batch ``batch_id`` of the active query ``query_name`` read from the Delta table at
    ``table_path``, as a batch DataFrame over the same files, or None when the batch read none from it (it
    only moved the watermark). Read again from those files, they are the rows the batch's plan consumed."""
    execution = _current_execution(spark, query_name, batch_id)
    streaming_leaves = [leaf for leaf in _leaves(execution.logical()) if leaf.isStreaming()]
    relations = [leaf for leaf in streaming_leaves if leaf.getClass().getSimpleName() == "LogicalRelation"]
    others = [leaf.getClass().getSimpleName() for leaf in streaming_leaves if leaf not in relations]
    if any(name != "LocalRelation" for name in others):
        raise RunningBatchUnavailable(f"{query_name}: batch {batch_id} reads a source that is not a file source")
    wanted = table_path.rstrip("/").removeprefix("file:")
    relations = [leaf for leaf in relations if _root_path(leaf).rstrip("/").removeprefix("file:") == wanted]
    frames = [DataFrame(spark._jsparkSession.baseRelationToDataFrame(leaf.relation()), spark) for leaf in relations]
    return reduce(DataFrame.unionByName, frames) if frames else None


def _root_path(relation: Any) -> str:
    """The table path of a file source's relation (its index's one root path)."""
    return str(relation.relation().location().rootPaths().head().toString())


def _current_execution(spark: SparkSession, query_name: str, batch_id: int) -> Any:
    query = next((query for query in spark.streams.active if query.name == query_name), None)
    if query is None:
        raise RunningBatchUnavailable(f"no active query named {query_name!r}")
    execution = query._jsq.streamingQuery().lastExecution()
    if execution is None or execution.currentBatchId() != batch_id:
        raise RunningBatchUnavailable(f"{query_name}: batch {batch_id} is not the query's current execution")
    return execution


def _leaves(node: Any) -> list[Any]:
    children = node.children()
    if children.isEmpty():
        return [node]
    found, iterator = [], children.iterator()
    while iterator.hasNext():
        found.extend(_leaves(iterator.next()))
    return found


def _logged_watermark(engine: Any, batch_id: int) -> int:
    """The watermark batch ``batch_id`` ran with, from the query's offset log (0 before batch 0). Spark drops
    the late rows of a batch against the watermark of the batch before it."""
    if batch_id < 0:
        return 0
    logged = engine.offsetLog().get(batch_id)
    if not logged.isDefined():
        raise RunningBatchUnavailable(f"the offset log holds no batch {batch_id}")
    metadata = logged.get().metadataOpt()
    return int(metadata.get().batchWatermarkMs()) if metadata.isDefined() else 0


def _metric_total(node: Any, name: str) -> int:
    """The sum of SQL metric ``name`` over ``node`` and every node below it."""
    node_metrics = node.metrics()
    total = int(node_metrics.apply(name).value()) if node_metrics.contains(name) else 0
    children = node.children().iterator()
    while children.hasNext():
        total += _metric_total(children.next(), name)
    return total


def _logged_offset(engine: Any, batch_id: int) -> str | None:
    """The first source's offset after batch ``batch_id`` in the query's offset log (None before batch 0)."""
    if batch_id < 0:
        return None
    logged = engine.offsetLog().get(batch_id)
    if not logged.isDefined():
        raise RunningBatchUnavailable(f"the offset log holds no batch {batch_id}")
    offset = logged.get().offsets().apply(0)
    return str(offset.get().json()) if offset.isDefined() else None
