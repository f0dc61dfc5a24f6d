"""Windows that close on a quiet topic (``idle_timeout``).

Spark's watermark moves only with new events, so the last windows of a topic that goes quiet stay open. With
``idle_timeout`` set, the windows query also streams ``<job>_heartbeats``, unioned with the events before the
watermark. When the topic has been quiet that long (processing time), the job appends one heartbeat whose
event time puts the watermark past every open window: the next batch finalizes and writes them, once, like
any window. An event that comes later for one of them is late (:mod:`eventlake.pipeline.late_events`).

The heartbeats are dropped right after the watermark has seen them, by a condition on ``event_time``: Spark
pushes a condition that does not name the event time down below the watermark, where it would remove the
heartbeats before the watermark sees them.

Quiet means: with an interval trigger, the windows query has read no event for ``idle_timeout``; with
``availableNow``, the newest event the job has (its Kafka timestamp, or the newest commit of a table source)
is older than ``idle_timeout`` when the windows query has caught up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from eventlake.runtime.config import ConfigError
from eventlake.runtime.hadoop_files import HadoopFiles

HEARTBEATS = "heartbeats"  # a job's table of heartbeats: <job>_heartbeats
HEARTBEATS_SCHEMA = "event_time timestamp, written_at timestamp"
HEARTBEAT_COLUMN = "_heartbeat"


def with_heartbeats(events: DataFrame, heartbeats: DataFrame) -> DataFrame:
    """The events and the heartbeats in one stream, a heartbeat being a row with only ``event_time`` and
    ``_heartbeat`` true; union it before the watermark."""
    marked = events.withColumn(HEARTBEAT_COLUMN, F.lit(False))
    empty = [F.lit(None).cast(f.dataType).alias(f.name) for f in events.schema if f.name != "event_time"]
    beats = heartbeats.select(
        *empty,
        "event_time",
        F.lit(True).alias(HEARTBEAT_COLUMN),
    )
    return marked.unionByName(beats.select(*marked.columns))


def without_heartbeats(rows: DataFrame) -> DataFrame:
    """Drop the heartbeats, after the watermark. The condition names ``event_time`` so that Spark keeps it
    above the watermark (see the module's note)."""
    heartbeat = F.col(HEARTBEAT_COLUMN) & F.col("event_time").isNotNull()
    return rows.where(~heartbeat).drop(HEARTBEAT_COLUMN)


def heartbeat_time(watermark: datetime, delay: timedelta, span: timedelta) -> datetime:
    """The event time of a heartbeat that closes every open window: the latest event seen is at most
    ``watermark + delay``, and a window ends at most ``span`` (its size, or a session's gap) after its last
    event, so the watermark must reach ``watermark + delay + span``."""
    return watermark + 2 * delay + span


def append_heartbeat(spark: SparkSession, heartbeats_path: str, event_time: datetime) -> None:
    """Append one heartbeat (the windows query reads it once, from its checkpoint's position)."""
    row = spark.range(1).select(
        F.timestamp_micros(F.lit(_micros(event_time))).alias("event_time"), F.current_timestamp().alias("written_at")
    )
    row.write.format("delta").mode("append").save(heartbeats_path)


def _micros(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1_000_000)


def _parse_progress_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


@dataclass
class QuietTopic:
    """Closes the windows of the windows query ``query_name`` when it has read no event for ``idle_timeout``:
    :meth:`tick` is called every second or so while the job runs (an interval trigger) and looks every
    quarter of ``idle_timeout`` (1 to 5 s). One heartbeat per quiet spell; the clock starts when the job does."""

    spark: SparkSession
    query_name: str
    events_path: str
    heartbeats_path: str
    idle_timeout: timedelta
    delay: timedelta
    span: timedelta
    clock: Callable[[], float] = time.time
    _last_events: float = 0.0
    _closed_after: float = -1.0
    _seen_batches: int = -1
    _next_check: float = 0.0

    def __post_init__(self) -> None:
        self._last_events = self.clock()

    def tick(self) -> None:
        now = self.clock()
        if now < self._next_check:
            return
        # Every few seconds, not every second: the progress reports are read from the JVM at each check.
        self._next_check = now + max(1.0, min(5.0, self.idle_timeout.total_seconds() / 4))
        query = next((query for query in self.spark.streams.active if query.name == self.query_name), None)
        if query is None:
            return
        self._note_events(query)
        if now - self._last_events < self.idle_timeout.total_seconds() or self._closed_after == self._last_events:
            return
        watermark = progress_watermark(query)
        if watermark is None:
            return  # no event yet: no window is open
        append_heartbeat(self.spark, self.heartbeats_path, heartbeat_time(watermark, self.delay, self.span))
        self._closed_after = self._last_events
        print(f"{self.query_name}: no event for {self.idle_timeout}: closing the open windows", flush=True)

    def _note_events(self, query: StreamingQuery) -> None:
        """Move the time of the last events to the newest batch that read events (not heartbeats)."""
        for report in query.recentProgress:
            progress = json.loads(report.json)
            if progress["batchId"] <= self._seen_batches:
                continue
            self._seen_batches = progress["batchId"]
            source = next((s for s in progress["sources"] if self.events_path in s["description"]), None)
            if source and source["numInputRows"]:
                self._last_events = max(
                    self._last_events, _parse_progress_time(progress["timestamp"]).replace(tzinfo=UTC).timestamp()
                )


def newest_arrival(spark: SparkSession, events_path: str) -> float | None:
    """When the newest event of the table at ``events_path`` arrived, in seconds since the epoch: its largest
    Kafka timestamp, or for a table without one its newest commit (None: no event)."""
    events = spark.read.format("delta").load(events_path)
    if "kafka_timestamp" in events.columns:
        return _seconds(events.agg(F.max(F.unix_micros("kafka_timestamp"))))
    if not events.limit(1).count():
        return None
    return _seconds(DeltaTable.forPath(spark, events_path).history(1).select(F.unix_micros("timestamp")))


def last_heartbeat(spark: SparkSession, heartbeats_path: str) -> float | None:
    """When the newest heartbeat was written, in seconds since the epoch (None: never)."""
    return _seconds(spark.read.format("delta").load(heartbeats_path).agg(F.max(F.unix_micros("written_at"))))


def _seconds(micros: DataFrame) -> float | None:
    """The one value of ``micros`` (microseconds since the epoch) in seconds, None when empty or NULL."""
    row = micros.first()
    return None if row is None or row[0] is None else row[0] / 1_000_000


def close_if_quiet(
    spark: SparkSession,
    *,
    events_path: str,
    watermark: datetime | None,
    heartbeats_path: str,
    idle_timeout: timedelta,
    delay: timedelta,
    span: timedelta,
    now: float,
) -> bool:
    """For an ``availableNow`` run, once the windows query has caught up: append a heartbeat when the newest
    event arrived ``idle_timeout`` or more before ``now`` (seconds since the epoch), no heartbeat came since,
    and an event has set the watermark (``watermark``: the windows query's, None before any). Returns
    whether it did: the windows query then runs once more to write the windows."""
    arrived = newest_arrival(spark, events_path)
    if watermark is None or arrived is None or now - arrived < idle_timeout.total_seconds():
        return False
    beat = last_heartbeat(spark, heartbeats_path)
    if beat is not None and beat >= arrived:
        return False  # closed already: another heartbeat would only move the watermark on
    append_heartbeat(spark, heartbeats_path, heartbeat_time(watermark, delay, span))
    return True


def _last_offsets(spark: SparkSession, checkpoint: str) -> list[str] | None:
    """The lines of the newest entry of a checkpoint's offset log: version, metadata, one per source."""
    return HadoopFiles(spark).newest_log_entry(f"{checkpoint.rstrip('/')}/offsets")


def checkpoint_watermark(spark: SparkSession, checkpoint: str) -> datetime | None:
    """The watermark of a query's last batch, from its checkpoint's offset log (naive UTC); None before an
    event set one. A run that read nothing new has no progress to tell it."""
    lines = _last_offsets(spark, checkpoint)
    watermark_ms = json.loads(lines[1]).get("batchWatermarkMs", 0) if lines and len(lines) > 1 else 0
    return datetime.fromtimestamp(watermark_ms / 1000, UTC).replace(tzinfo=None) if watermark_ms > 0 else None


def streams_heartbeats(spark: SparkSession, checkpoint: str, idle_timeout: timedelta | None) -> bool:
    """Whether the windows query of ``checkpoint`` streams the heartbeats: Spark refuses a checkpoint whose
    query gained or lost a source, so a query started with them keeps them (idle_timeout off only means no
    heartbeat is written), and one started without them cannot take them on (a ConfigError)."""
    lines = _last_offsets(spark, checkpoint)
    if lines is None:
        return idle_timeout is not None
    if len(lines) - 2 > 1:
        return True
    if idle_timeout is not None:
        raise ConfigError(
            f"idle_timeout: the windows query's checkpoint {checkpoint} was started without it, and Spark does "
            "not let a query take on a source (the heartbeats): leave idle_timeout empty, or start that "
            "checkpoint and the job's tables afresh"
        )
    return False


def progress_watermark(query: StreamingQuery) -> datetime | None:
    """The watermark of ``query``'s last progress (naive UTC), None before an event set one."""
    progress = json.loads(query.lastProgress.json) if query.lastProgress else {}
    watermark = (progress.get("eventTime") or {}).get("watermark")
    if not watermark:
        return None
    moment = _parse_progress_time(watermark)
    return None if moment.year <= 1970 else moment
