"""The ``pipeline_metrics`` table: one row per micro-batch of every query, from Spark's progress reports.

A :class:`MetricsRecorder` listens to the session's queries and appends their progress to Delta from a
background thread, so the job never waits for it; a failure to write is logged and the job goes on.
Each write is idempotent per query and batch id, so a batch replayed after a restart is recorded once.
"""

from __future__ import annotations

import queue
import sys
import threading
from datetime import datetime
from typing import Any, TextIO

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.types import StructType

from eventlake.intake import DEAD_LETTER_ROWS
from eventlake.progress import kafka_lag
from eventlake.sinks import append_once

METRICS_TABLE = "pipeline_metrics"

METRICS_SCHEMA = (
    "job string, query_name string, query_id string, run_id string, batch_id long, batch_time timestamp,"
    " input_rows long, input_rows_per_second double, processed_rows_per_second double,"
    " batch_duration_ms long, add_batch_ms long, query_planning_ms long, latest_offset_ms long,"
    " wal_commit_ms long, commit_offsets_ms long, watermark timestamp, state_rows long,"
    " state_memory_bytes long, dropped_late long, dropped_duplicates long, windowed_rows long, kafka_lag long,"
    " dead_letters long"
)


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def progress_row(progress: Any, job: str) -> dict[str, Any]:
    """One ``pipeline_metrics`` row from a ``StreamingQueryProgress`` (times in UTC)."""
    durations = progress.durationMs or {}
    operators = progress.stateOperators or []
    watermark = (progress.eventTime or {}).get("watermark")
    return {
        "job": job,
        "query_name": progress.name,
        "query_id": str(progress.id),
        "run_id": str(progress.runId),
        "batch_id": progress.batchId,
        "batch_time": _timestamp(progress.timestamp),
        "input_rows": progress.numInputRows,
        "input_rows_per_second": float(progress.inputRowsPerSecond or 0.0),
        "processed_rows_per_second": float(progress.processedRowsPerSecond or 0.0),
        "batch_duration_ms": progress.batchDuration,
        "add_batch_ms": durations.get("addBatch"),
        "query_planning_ms": durations.get("queryPlanning"),
        "latest_offset_ms": durations.get("latestOffset"),
        "wal_commit_ms": durations.get("walCommit"),
        "commit_offsets_ms": durations.get("commitOffsets"),
        "watermark": _timestamp(watermark) if watermark and not watermark.startswith("1970-01-01T00:00:00") else None,
        "state_rows": sum(op.numRowsTotal for op in operators),
        "state_memory_bytes": sum(op.memoryUsedBytes for op in operators),
        "dropped_late": sum(op.numRowsDroppedByWatermark for op in operators),
        "dropped_duplicates": sum(int((op.customMetrics or {}).get("numDroppedDuplicateRows", 0)) for op in operators),
        "windowed_rows": _observed_rows(progress, "windowed_rows"),
        "kafka_lag": kafka_lag(progress.sources),
        "dead_letters": _observed_rows(progress, DEAD_LETTER_ROWS),
    }


def _observed_rows(progress: Any, name: str) -> int | None:
    """The ``rows`` of an ``observe(name, ...)`` metric of the batch; None when the batch reports none
    (a query that does not observe it, or a batch without data)."""
    observed = progress.observedMetrics or {}
    if name in observed:
        return int(observed[name]["rows"])
    return None


def rows_frame(spark: SparkSession, rows: list[dict[str, Any]], schema: str) -> DataFrame:
    """A small DataFrame of ``rows`` (dicts with every column of ``schema``), built from literals in the
    JVM: ``createDataFrame`` of Python objects would start Python worker processes to unpickle them."""
    fields = StructType.fromDDL(schema).fields
    structs = [
        F.struct(*(F.lit(row[field.name]).cast(field.dataType).alias(field.name) for field in fields)) for row in rows
    ]
    return spark.range(1).select(F.inline(F.array(*structs)))


class MetricsRecorder(StreamingQueryListener):
    """Appends every batch's progress to ``pipeline_metrics`` at ``table_path``, off the job's path."""

    def __init__(self, spark: SparkSession, table_path: str, job: str, errors: TextIO = sys.stderr):
        self.spark, self.table_path, self.job, self.errors = spark, table_path, job, errors
        # Rows to write; None asks the writer to finish what it has and stop.
        self._pending: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_forever, name="eventlake-metrics", daemon=True)
        self._writer.start()

    def onQueryStarted(self, event):
        """Nothing to record until a batch ends."""

    def onQueryProgress(self, event):
        try:
            self._pending.put(progress_row(event.progress, self.job))
        except Exception as error:  # a listener must never break the query it listens to
            self._warn(f"could not read the progress of batch {event.progress.batchId}: {error}")

    def onQueryIdle(self, event):
        """Idle time is not a batch."""

    def onQueryTerminated(self, event):
        """The last batch's progress has already arrived."""

    def close(self, timeout: float = 120.0) -> bool:
        """Write everything received so far and stop the writer; False when ``timeout`` ran out first."""
        self._pending.put(None)
        self._writer.join(timeout)
        return not self._writer.is_alive()

    def _write_forever(self) -> None:
        stopping = False
        while not stopping:
            items = [self._pending.get()]
            while not self._pending.empty():
                items.append(self._pending.get())
            stopping = None in items
            rows = [item for item in items if item is not None]
            if rows:
                self._write(rows)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        by_query: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_query.setdefault(row["query_id"], []).append(row)
        for query_id, query_rows in by_query.items():
            try:
                frame = rows_frame(self.spark, query_rows, METRICS_SCHEMA)
                # Progress arrives in batch order per query: the highest batch id is the write's version,
                # and Delta skips a later write of any batch at or below it (a replay after a restart).
                append_once(
                    frame, self.table_path, f"metrics-{query_id}", max(r["batch_id"] for r in query_rows),
                    merge_schema=True,  # a table written by an older version gains the new columns
                )
            except Exception as error:  # metrics must never stop the job
                self._warn(f"could not write {len(query_rows)} rows to {METRICS_TABLE}: {error}")

    def _warn(self, message: str) -> None:
        first_line = str(message).strip().splitlines()[0]
        print(f"warning: metrics: {first_line}", file=self.errors, flush=True)
