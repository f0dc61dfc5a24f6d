"""What Spark knows about the micro-batch a ``foreachBatch`` function is writing, read while it writes.

A query's progress report (``StreamingQueryProgress``) comes after the batch is committed, so figures taken
from it are lost when the job dies between the commit and their write. Inside ``foreachBatch``, once the
batch's rows have been computed, the same figures are already in the query's current execution: its
observed metrics (``DataFrame.observe``), the SQL metrics of its stateful operators (rows dropped by the
watermark, duplicates dropped) and its offsets. Read here, they are written with the batch's own rows, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession


class RunningBatchUnavailable(RuntimeError):
    """The query or its current batch cannot be found (the Spark version exposes them differently)."""


@dataclass(frozen=True)
class RunningBatch:
    """The figures of one running micro-batch of a query (see :func:`running_batch`).

    ``start_offset`` and ``end_offset``: the query's first source offset before and after the batch, as
    Spark writes them in the checkpoint's offset log (JSON; ``start_offset`` None for a query's first
    batch). The next batch of the query starts where this one ended, so consecutive batches chain."""

    batch_id: int
    observed: dict[str, int]
    metrics: dict[str, int]
    watermark_ms: int
    start_offset: str | None
    end_offset: str | None


def running_batch(
    spark: SparkSession, query_name: str, batch_id: int, observed: tuple[str, ...], metrics: tuple[str, ...]
) -> RunningBatch:
    """The figures of batch ``batch_id`` of the active query ``query_name``, read from ``foreachBatch`` after
    the batch's rows were computed: the ``rows`` of each ``observe(name, ...)`` in ``observed`` (0 when the
    batch reports none) and the total over the plan's operators of each SQL metric in ``metrics`` (such as
    ``numRowsDroppedByWatermark``)."""
    query = next((query for query in spark.streams.active if query.name == query_name), None)
    if query is None:
        raise RunningBatchUnavailable(f"no active query named {query_name!r}")
    engine = query._jsq.streamingQuery()
    execution = engine.lastExecution()
    if execution is None or execution.currentBatchId() != batch_id:
        raise RunningBatchUnavailable(f"{query_name}: batch {batch_id} is not the query's current execution")
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
    )


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
