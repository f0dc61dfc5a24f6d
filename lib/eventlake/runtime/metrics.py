"""The ``pipeline_metrics`` table: one row per micro-batch of every query, from Spark's progress reports.

A :class:`MetricsRecorder` listens to the session's queries and appends their progress to Delta from a
background thread, so the job never waits for it; a failure to write is logged and the job goes on.
A batch that runs again after a restart is recorded once: the recorder skips batches the table holds.
"""

from __future__ import annotations

import queue
import sys
import threading
from datetime import datetime
from typing import Any, TextIO

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQueryListener

from eventlake.runtime.frames import rows_frame
from eventlake.runtime.job_tables import DEAD_LETTER_ROWS, EXPECTATION_FAILED_ROWS, PIPELINE_METRICS, job_table
from eventlake.runtime.progress import kafka_lag

METRICS_TABLE = PIPELINE_METRICS

METRICS_SCHEMA = (
    "job string, query_name string, query_id string, run_id string, batch_id long, batch_time timestamp,"
    " input_rows long, input_rows_per_second double, processed_rows_per_second double,"
    " batch_duration_ms long, add_batch_ms long, query_planning_ms long, latest_offset_ms long,"
    " wal_commit_ms long, commit_offsets_ms long, watermark timestamp, state_rows long,"
    " state_memory_bytes long, dropped_late long, dropped_duplicates long, windowed_rows long, kafka_lag long,"
    " dead_letters long, expectations_failed long"
)


def metrics_table(job: str) -> str:
    """The name of ``job``'s metrics table, ``<job>_pipeline_metrics``."""
    return job_table(job, METRICS_TABLE)


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
        "expectations_failed": _observed_rows(progress, EXPECTATION_FAILED_ROWS),
    }


def _observed_rows(progress: Any, name: str) -> int | None:
    """The ``rows`` of an ``observe(name, ...)`` metric of the batch; None when the batch reports none
    (a query that does not observe it, or a batch without data)."""
    observed = progress.observedMetrics or {}
    if name in observed:
        return int(observed[name]["rows"])
    return None


class MetricsRecorder(StreamingQueryListener):
    """Appends every batch's progress to ``pipeline_metrics`` at ``table_path``, off the job's path."""

    def __init__(
        self, spark: SparkSession, table_path: str, job: str, errors: TextIO = sys.stderr, flush_every: float = 10.0
    ):
        # Not the listener's own ``spark`` property, which Spark Connect sets and may leave empty.
        self.session, self.table_path, self.job, self.errors = spark, table_path, job, errors
        # Each write is a Delta commit, which costs Spark jobs on the cores the queries use: rows are gathered
        # and written every ``flush_every`` seconds, and when the recorder closes.
        self.flush_every = flush_every
        self._pending: queue.Queue[dict[str, Any]] = queue.Queue()
        self._recorded: dict[str, int] = {}  # per query id, the highest batch in the table
        self._closing = threading.Event()
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
        self._closing.set()
        self._writer.join(timeout)
        return not self._writer.is_alive()

    def _write_forever(self) -> None:
        while True:
            closing = self._closing.wait(self.flush_every)
            rows = []
            while not self._pending.empty():
                rows.append(self._pending.get())
            if rows:
                self._write(rows)
            if closing:
                return

    def _write(self, rows: list[dict[str, Any]]) -> None:
        by_query: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_query.setdefault(row["query_id"], []).append(row)
        try:
            new_rows = [
                row for query_id, query_rows in by_query.items() for row in self._not_recorded(query_id, query_rows)
            ]
            if new_rows:
                frame = rows_frame(self.session, new_rows, METRICS_SCHEMA)
                # A table written by an older version gains the new columns.
                frame.write.format("delta").mode("append").option("mergeSchema", "true").save(self.table_path)
                for row in new_rows:
                    self._recorded[row["query_id"]] = max(self._recorded[row["query_id"]], row["batch_id"])
        except Exception as error:  # metrics must never stop the job
            self._warn(f"could not write {len(rows)} rows to {METRICS_TABLE}: {error}")

    def _not_recorded(self, query_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows of batches the table does not hold yet. Progress arrives in batch order per query, so
        the highest batch recorded is all there is to know; it is read from the table once per run (a
        batch that ran again after a restart reports again)."""
        if query_id not in self._recorded:
            self._recorded[query_id] = self._highest_recorded_batch(query_id)
        return [row for row in rows if row["batch_id"] > self._recorded[query_id]]

    def _highest_recorded_batch(self, query_id: str) -> int:
        if not DeltaTable.isDeltaTable(self.session, self.table_path):
            return -1
        table = self.session.read.format("delta").load(self.table_path)
        [[highest]] = table.where(F.col("query_id") == query_id).agg(F.max("batch_id")).collect()
        return -1 if highest is None else highest

    def _warn(self, message: str) -> None:
        first_line = str(message).strip().splitlines()[0]
        print(f"warning: metrics: {first_line}", file=self.errors, flush=True)
