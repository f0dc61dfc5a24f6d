"""End-to-end latency of the streaming jobs: from an event's creation to the Delta commit that holds it.

    source .venv/bin/activate
    python scripts/bench/latency.py [--rates 2000,10000,50000] [--duration 60] [--trigger '1 second']
                                    [--modes stateless,windows,alerts-realtime,alerts-microbatch]
                                    [--job-set KEY=VALUE ...] [--keep]

For each mode and rate: a fresh topic and fresh table and checkpoint folders under the run directory
(default ``data/bench/latency/<timestamp>/``); the job is started with ``spark-submit`` and an interval
trigger; once its queries have committed their first batch, contract-v1 events are sent at a steady
rate for ``--duration`` seconds, each stamped with the time it is sent (its event time is "now").
The job runs on until everything sent is committed (or ``--drain-timeout``), then gets SIGINT, as a
Ctrl-C would, and stops cleanly.

Modes (run one after the other, never together: they would share the same few cores):

* ``stateless``: ``jobs/etl.py``; latency of a row of ``silver_events`` = the time of the Delta commit
  that added its data file - its ``event_time``.
* ``windows``: ``jobs/analytics.py`` with short windows so that windows close during the run; latency of
  a row of ``analytics_windows`` = its commit time - (``window_end`` + the watermark delay), measured from
  the earliest moment the window could be final.
* ``alerts-realtime`` / ``alerts-microbatch``: ``jobs/alerts.py`` in Spark's Real-Time Mode (``--master
  local[partitions + 2]``) or with the interval trigger, and one rule that every event matches; latency of
  an alert = the time the broker appended it to the alerts topic (the topic keeps LogAppendTime) - its
  source record's Kafka timestamp (the producer's send time), read with a plain consumer.

Commit times come from each commit's ``commitInfo`` in ``_delta_log/*.json``; rows are matched to the
commit that added their data file by the file's name (``_metadata.file_path`` of a Spark batch read of
the table). Event times and commit times come from the same machine's clock.

Prints one table and writes a JSON report (``--out``, default ``<run dir>/latency.json``). The tables
and checkpoints are deleted afterwards unless ``--keep``; the report and the jobs' logs stay.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from confluent_kafka import KafkaException, Producer

from eventlake.local.producer import format_event_time, generate_records, producer_config
from eventlake.pipeline import alerts, analytics, etl, etl_by_state
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.runtime.config import ConfigError, Settings, load_settings, parse_duration
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.kafka_admin import create_topic, delete_topic

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALERT_MODES = ("alerts-realtime", "alerts-microbatch")
MODES = ("stateless", "windows", *ALERT_MODES)
# The job, the table measured and the queries (checkpoint folders) of each mode.
JOB_SCRIPT = {
    "stateless": "jobs/etl.py", "windows": "jobs/analytics.py", **dict.fromkeys(ALERT_MODES, "jobs/alerts.py")
}
JOB_NAME = {"stateless": etl.JOB, "windows": analytics.JOB, **dict.fromkeys(ALERT_MODES, alerts.JOB)}
TABLE = {
    "stateless": etl.SILVER_TABLE, "windows": analytics.WINDOWS_TABLE, **dict.fromkeys(ALERT_MODES, alerts.ALERTS_TABLE)
}
QUERIES = {"stateless": ("ingest",), "windows": ("windows", "intake"), **dict.fromkeys(ALERT_MODES, ("detect", "copy"))}
# The query whose checkpoint says when a mode's table is complete (windows: the watermark it evicted with).
MEASURED_QUERY = {"stateless": "ingest", "windows": "windows", **dict.fromkeys(ALERT_MODES, "detect")}
def sample_rule(percent: int) -> str:
    """The alerts modes' one rule: ``percent`` of the events are alerts, told by the number that ends their
    event id (the producer numbers them), so that the harness knows how many to expect."""
    when = "true" if percent >= 100 else f"try_cast(substring_index(event_id, '-', -1) AS BIGINT) % 100 < {percent}"
    return f"[{{name = 'sample', when = \"{when}\", severity = 'low'}}]"


def alerts_expected(sent: int, percent: int) -> int:
    """How many of ``sent`` events (numbered 0 on) :func:`sample_rule` matches."""
    whole, rest = divmod(sent, 100)
    return whole * min(percent, 100) + min(rest, percent)
PERCENTILES = (0.5, 0.95, 0.99)
# Below this share of the asked rate the report says the producer did not hold it.
RATE_HELD_SHARE = 0.95
TEMPLATE_COUNT = 1000
COMMIT_FILE = re.compile(r"^\d{20}\.json$")


class BenchError(Exception):
    """A problem that ends the benchmark with one line on stderr (exit code 2)."""


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------- producer


@dataclass
class ProduceResult:
    """What the producer did in one run; ``windows_sent`` holds (window index, event type) pairs."""

    asked_rate: float
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    first_error: str | None = None
    seconds: float = 0.0
    max_event_ms: int = 0
    windows_sent: set[tuple[int, str]] = field(default_factory=set)

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class EventTemplate:
    """An encoded contract-v1 event cut around its ``event_id`` and ``timestamp`` values, so that a record
    is made at send time by joining four byte strings instead of encoding JSON."""

    key: bytes | None
    event_type: str
    head: bytes
    between: bytes
    tail: bytes


def event_templates(count: int) -> list[EventTemplate]:
    """Events from the project's own generator (types, users, data fields as in every other run), with
    placeholders where the per-record values go."""
    templates = []
    for record in generate_records(count, seed=7, start_time=datetime.now(UTC), span=timedelta(seconds=1)):
        event = json.loads(record.value or b"{}")
        event["event_id"], event["timestamp"] = "\0ID\0", "\0TS\0"
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        head, rest = text.split(b"\\u0000ID\\u0000", 1)
        between, tail = rest.split(b"\\u0000TS\\u0000", 1)
        templates.append(EventTemplate(record.key, event["type"], head, between, tail))
    return templates


def produce_steadily(
    bootstrap_servers: str, topic: str, rate: float, duration: float, window_ms: int | None, invalid_percent: int = 0
) -> ProduceResult:
    """Send events at ``rate`` per second for ``duration`` seconds, each stamped with the time it is sent,
    and wait until they are acknowledged; ``invalid_percent`` of the records (numbered 0 on: those whose number
    modulo 100 is below it) are not JSON, dead letters for the job. A producer that cannot keep up sends what
    it can: the result says how many and how fast."""
    result = ProduceResult(asked_rate=rate)
    templates = event_templates(TEMPLATE_COUNT)
    producer = Producer(producer_config(bootstrap_servers))
    prefix = uuid.uuid4().hex[:12]

    def on_delivery(error: Any, _message: Any) -> None:
        if error is None:
            result.delivered += 1
        else:
            result.failed += 1
            result.first_error = result.first_error or str(error)

    # The schedule is checked once per chunk of about 2 ms of records: often enough to send smoothly at low
    # rates, rarely enough that the checking does not cost throughput at high ones.
    chunk = max(1, round(rate / 500))
    last_ms, stamp = -1, b""
    started = time.monotonic()
    end = started + duration
    next_report = started + 10
    sent = 0
    while (now := time.monotonic()) < end:
        due = min(int((now - started) * rate) + 1, int(duration * rate))
        if sent >= due:
            # Ahead of schedule: wait for the next record's slot, serving delivery reports meanwhile.
            producer.poll(max(0.0, min(started + (sent + 1) / rate, end) - now))
            continue
        for _ in range(min(chunk, due - sent)):
            # The event time is read per record (cached per millisecond, the contract's precision), so that
            # it is the moment of sending even when the producer runs behind.
            now_ms = time.time_ns() // 1_000_000
            if now_ms != last_ms:
                last_ms, stamp = now_ms, format_event_time(datetime.fromtimestamp(now_ms / 1000, UTC)).encode()
            template = templates[sent % len(templates)]
            value = b"".join((template.head, f"{prefix}-{sent}".encode(), template.between, stamp, template.tail))
            if sent % 100 < invalid_percent:
                value = value[:-1]  # the closing brace cut off: NOT_JSON
            _produce(producer, topic, template.key, value, on_delivery)
            producer.poll(0)
            if window_ms:
                result.windows_sent.add((now_ms // window_ms, template.event_type))
            sent += 1
        result.max_event_ms = last_ms
        if now >= next_report:
            elapsed = now - started
            log(f"  sent {sent:,} in {elapsed:.0f} s ({sent / elapsed:,.0f}/s)")
            next_report += 10
    result.sent = sent
    result.seconds = time.monotonic() - started
    unsent = producer.flush(60)
    if unsent:
        result.failed += unsent
        result.first_error = result.first_error or f"{unsent} records not acknowledged within 60 s"
    return result


def _produce(producer: Producer, topic: str, key: bytes | None, value: bytes, on_delivery: Callable) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
            return
        except BufferError:
            # The local queue is full: serve deliveries until there is room again.
            producer.poll(0.05)


# ---------------------------------------------------------------------------------------- Delta and checkpoints


def delta_commits(table_path: Path) -> list[dict[str, Any]]:
    """Each commit of a Delta table: version, commit time (ms) and the data files it added with their row
    counts (from the file statistics; None when a file has none)."""
    commits = []
    log_dir = table_path / "_delta_log"
    if not log_dir.is_dir():
        return commits
    for path in sorted(log_dir.iterdir()):
        if not COMMIT_FILE.match(path.name):
            continue
        commit_ms: int | None = None
        added: list[tuple[str, int | None]] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "commitInfo" in action:
                info = action["commitInfo"]
                # With in-commit timestamps enabled, that is the commit's official time.
                commit_ms = info.get("inCommitTimestamp", info.get("timestamp"))
            elif "add" in action and action["add"].get("dataChange", True):
                stats = json.loads(action["add"].get("stats") or "{}")
                added.append((unquote(action["add"]["path"]).rsplit("/", 1)[-1], stats.get("numRecords")))
        commits.append({"version": int(path.stem), "commit_ms": commit_ms, "files": added})
    return commits


def committed_batches(checkpoint: Path) -> list[int]:
    """The batch ids a streaming query has committed (``commits/<id>`` files of its checkpoint)."""
    folder = checkpoint / "commits"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def committed_offsets(checkpoint: Path, topic: str) -> int:
    """How many records of ``topic`` a query has read in the batches it committed: the offsets its last
    committed batch ended at, summed over the partitions (the topics here are new, so offsets count records).
    The tables' own row counts are no help: eventlake writes files without statistics."""
    batches = committed_batches(checkpoint)
    if not batches:
        return 0
    lines = (checkpoint / "offsets" / str(batches[-1])).read_text(encoding="utf-8").splitlines()
    sources = [json.loads(line) for line in lines[2:] if line.startswith("{")]
    return sum(sum(source.get(topic, {}).values()) for source in sources)


def batches_settled(checkpoint: Path) -> bool:
    """True when every batch a query has planned (``offsets/<id>``) is also committed."""
    folder = checkpoint / "offsets"
    planned = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    committed = committed_batches(checkpoint)
    return not planned or (bool(committed) and committed[-1] >= max(planned))


def batch_watermark_ms(checkpoint: Path, batch_id: int) -> int:
    """The watermark a batch ran with (its offsets file's metadata line): state older than it is evicted,
    so windows ending at or before it have been written by the time the batch commits."""
    lines = (checkpoint / "offsets" / str(batch_id)).read_text(encoding="utf-8").splitlines()
    return int(json.loads(lines[1]).get("batchWatermarkMs", 0))


# ---------------------------------------------------------------------------------------------- the job


@dataclass
class RunPlan:
    mode: str
    rate: int
    topic: str
    folder: Path
    settings: Settings
    overrides: list[str]

    @property
    def table_path(self) -> Path:
        return Path(self.settings.storage.table_path(TABLE[self.mode]))

    def checkpoint(self, query: str) -> Path:
        return Path(self.settings.storage.checkpoint_path(JOB_NAME[self.mode], query))

    @property
    def queries(self) -> tuple[str, ...]:
        """The checkpoint folders of the job's queries (the ETL with state de-duplication runs two)."""
        if self.silver_by_state:
            return (etl_by_state.RAW_CHECKPOINT, etl_by_state.SILVER_CHECKPOINT)
        return QUERIES[self.mode]

    @property
    def measured_query(self) -> str:
        """The query whose checkpoint says when the measured table is complete."""
        return etl_by_state.SILVER_CHECKPOINT if self.silver_by_state else MEASURED_QUERY[self.mode]

    @property
    def silver_by_state(self) -> bool:
        return self.mode == "stateless" and self.settings.etl.silver_dedup == "state"


class Job:
    """A ``spark-submit`` job in its own process group, so that SIGINT reaches the driver and the Python
    process as a Ctrl-C in a terminal would."""

    def __init__(self, plan: RunPlan, spark_submit: str, submit_options: Sequence[str] = ()) -> None:
        self.plan = plan
        self.log_path = plan.folder / "job.log"
        command = [spark_submit, *submit_options, JOB_SCRIPT[plan.mode]]
        for override in plan.overrides:
            command += ["--set", override]
        self.log_file = self.log_path.open("w")
        self.process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def python_driver(self) -> int | None:
        """The pid of the Python process spark-submit started for the job script (a child of its JVM)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after it.
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and JOB_SCRIPT[self.plan.mode].encode() in cmdline:
                return int(entry.name)
        return None

    def running(self) -> bool:
        return self.process.poll() is None

    def last_line(self) -> str:
        lines = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        return (errors or lines or ["(no output)"])[-1]

    def stop(self) -> int:
        """SIGINT to the job's Python driver, then SIGTERM and SIGKILL to the whole group if it does not end;
        returns the exit code."""
        for sig, grace in ((signal.SIGINT, 120), (signal.SIGTERM, 30), (signal.SIGKILL, 30)):
            if self.process.poll() is not None:
                break
            try:
                if sig == signal.SIGINT and (driver := self.python_driver()):
                    # Only the Python side: it stops the queries between batches and exits 0, after which
                    # spark-submit's JVM ends. A SIGINT to the whole group (a terminal's Ctrl-C) also
                    # reaches the JVM, which then shuts down under the queries and the job exits 130.
                    os.kill(driver, sig)
                else:
                    os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                log(f"  the job did not stop within {grace} s of {sig.name}")
        self.log_file.close()
        return self.process.wait()


def wait_for(condition: Callable[[], bool], job: Job, timeout: float, what: str) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes (False); a job that dies is an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if not job.running():
            raise BenchError(
                f"the {JOB_NAME[job.plan.mode]} job exited (code {job.process.returncode}) while waiting for "
                f"{what}: {job.last_line()} (log: {job.log_path})"
            )
        time.sleep(0.5)
    return condition()


def topic_messages(bootstrap_servers: str, topic: str) -> int:
    """How many messages ``topic`` holds (the sum of its partitions' end offsets; the topics here are new)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"latency-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()


def quantile(ordered: Sequence[float], p: float) -> float:
    """The ``p`` quantile of sorted values, linearly interpolated (as Spark's ``percentile``)."""
    position = (len(ordered) - 1) * p
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


BATCH_LINE = re.compile(r"^\[(\w+)\] batch \d+: (\d+) rows in ([\d.]+) s(?:.*state rows (\d+))?", re.MULTILINE)


def batch_trend(job_log: Path, query: str, slice_seconds: float = 60.0) -> list[dict[str, Any]]:
    """The batches of ``query`` in a job's log (its per-batch lines), in consecutive slices of about
    ``slice_seconds`` of batch time: how many, their rows, median and longest duration, and the state rows
    after the last one (stateful queries). A run that keeps up has flat durations and state from slice to
    slice; one that falls behind has growing batches."""
    try:
        text = job_log.read_text(errors="replace")
    except OSError:
        return []
    slices: list[dict[str, Any]] = []
    elapsed, current = 0.0, None
    for name, rows, duration, state_rows in BATCH_LINE.findall(text):
        if name != query:
            continue
        if current is None or elapsed >= slice_seconds * len(slices):
            current = {"from_s": round(elapsed), "batches": 0, "rows": 0, "durations": [], "state_rows": None}
            slices.append(current)
        current["batches"] += 1
        current["rows"] += int(rows)
        current["durations"].append(float(duration))
        current["state_rows"] = int(state_rows) if state_rows else None
        elapsed += float(duration)
    for part in slices:
        durations = sorted(part.pop("durations"))
        part["median_s"] = round(durations[len(durations) // 2], 2)
        part["max_s"] = round(durations[-1], 2)
    return slices


def alert_latencies(
    bootstrap_servers: str, topic: str, expected: int, since_ms: float = 0, timeout: float = 120.0
) -> dict[str, Any]:
    """Read the alerts topic with a plain consumer: each alert's latency is the time the broker appended it
    (the topic keeps LogAppendTime) minus its source record's Kafka timestamp (the producer's send time).
    Alerts of records sent before ``since_ms`` (the warm-up) are read but not measured."""
    from confluent_kafka import Consumer

    consumer = Consumer({
        "bootstrap.servers": bootstrap_servers, "group.id": f"latency-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    latencies, sources, read = [], set(), 0
    deadline = time.monotonic() + timeout
    try:
        while read < expected and time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=1.0):
                if message.error():
                    continue
                alert = json.loads(message.value())
                source = alert["source"]
                created_ms = datetime.fromisoformat(source["timestamp"]).timestamp() * 1000
                read += 1
                sources.add((source["topic"], source["partition"], source["offset"]))
                if created_ms >= since_ms:
                    latencies.append(message.timestamp()[1] - created_ms)
    finally:
        consumer.close()
    result: dict[str, Any] = {"count": len(latencies), "commits": None, "duplicates": read - len(sources)}
    if latencies:
        ordered = sorted(latencies)
        for p in PERCENTILES:
            result[f"p{round(p * 100)}_ms"] = round(quantile(ordered, p), 1)
        result["max_ms"], result["min_ms"] = round(ordered[-1], 1), round(ordered[0], 1)
    return result


# -------------------------------------------------------------------------------------------- analysis


class Analyser:
    """Reads the measured tables with Spark in this process; the session starts on first use (after the
    first run, so it never competes with a job's start) and is reused for every run."""

    def __init__(self, settings: Settings) -> None:
        self.spark_settings = dataclasses.replace(settings.spark, app_name="eventlake-latency-bench", prometheus=False)
        self.spark: Any = None

    def latencies(
        self, plan: RunPlan, watermark_ms: int, since_ms: float = 0, table_path: Path | None = None
    ) -> dict[str, Any]:
        """The latency percentiles of the rows whose moment of readiness (event time; window end + the
        watermark delay; a dead letter's Kafka timestamp) is ``since_ms`` or later: the rows of the warm-up are
        not measured. ``table_path``: another table than the mode's (the dead letters)."""
        from pyspark.sql import functions as F

        from eventlake.runtime.session import build_spark_session

        if self.spark is None:
            log("starting a Spark session to read the tables")
            self.spark = build_spark_session(self.spark_settings)
        spark = self.spark
        table_path = table_path or plan.table_path
        commits = [
            (name, c["version"], c["commit_ms"]) for c in delta_commits(table_path) for name, _ in c["files"]
        ]
        if not commits:
            return {"count": 0, "commits": 0}
        files = spark.createDataFrame(commits, "file_name string, version long, commit_ms long")
        rows = spark.read.format("delta").load(str(table_path)).withColumn(
            "file_name", F.regexp_extract(F.col("_metadata.file_path"), r"[^/]+$", 0)
        )
        if "raw_value" in rows.columns:  # dead letters: the producer stamped the Kafka timestamp when it sent
            ready_ms = F.unix_millis(F.col("kafka_timestamp"))
        elif plan.mode == "stateless":
            ready_ms = F.unix_millis(F.col("event_time"))
        else:
            ready_ms = F.unix_millis(F.col("window_end")) + F.lit(watermark_ms)
        joined = rows.join(F.broadcast(files), "file_name", "left").withColumn(
            "latency_ms", F.col("commit_ms") - ready_ms
        ).where(ready_ms >= F.lit(int(since_ms)))
        quantiles = ", ".join(str(p) for p in PERCENTILES)
        summary = joined.agg(
            F.count(F.lit(1)).alias("rows"),
            F.count("commit_ms").alias("matched"),
            F.countDistinct("version").alias("commits"),
            F.expr(f"percentile(latency_ms, array({quantiles}))").alias("quantiles"),
            F.max("latency_ms").alias("max"),
            F.min("latency_ms").alias("min"),
        ).first()
        if summary["rows"] != summary["matched"]:
            raise BenchError(
                f"{summary['rows'] - summary['matched']} rows of {table_path} come from files no commit in "
                "its _delta_log added (was the table compacted or rewritten?)"
            )
        result: dict[str, Any] = {"count": summary["rows"], "commits": summary["commits"]}
        if summary["rows"]:
            for p, value in zip(PERCENTILES, summary["quantiles"], strict=True):
                result[f"p{round(p * 100)}_ms"] = round(value)
            result["max_ms"], result["min_ms"] = summary["max"], summary["min"]
        return result

    def close(self) -> None:
        if self.spark is not None:
            self.spark.stop()


# ---------------------------------------------------------------------------------------------- one run


def run_once(args: argparse.Namespace, mode: str, rate: int, run_dir: Path, analyser: Analyser) -> dict[str, Any]:
    """One mode at one rate, from a fresh topic to the latency figures."""
    started = time.monotonic()
    topic = f"{args.topic_prefix}{mode}-{rate}-{datetime.now(UTC):%H%M%S}"
    folder = run_dir / f"{mode}-{rate}"
    folder.mkdir(parents=True, exist_ok=True)
    trigger_key = {"stateless": "etl.trigger", "windows": "analytics.trigger"}.get(mode, "alerts.trigger")
    alerts_topic = f"{topic}-alerts"
    overrides = [
        f"kafka.bootstrap_servers={args.bootstrap_servers}",
        f"kafka.topic={topic}",
        "kafka.starting_offsets=latest",
        f"storage.tables_root={folder / 'tables'}",
        f"storage.checkpoint_root={folder / 'checkpoints'}",
        f"{trigger_key}={args.trigger}",
    ]
    if mode == "windows":
        overrides += [f"analytics.window={args.window}", f"analytics.watermark={args.watermark}"]
    submit_options: list[str] = []
    if mode in ALERT_MODES:
        overrides += [
            f"alerts.topic={alerts_topic}", f"alerts.dead_letters_topic={topic}-dead",
            f"alerts.rules={sample_rule(args.alert_percent)}", f"alerts.checkpoint_interval={args.checkpoint_interval}",
        ]
        # The topic is new: from its start, so that nothing sent before the detect query fixed its first
        # offsets is skipped (a Real-Time batch writes its offsets when it ends, a checkpoint interval later).
        overrides.append("kafka.starting_offsets=earliest")
        if mode == "alerts-realtime":
            overrides.append("alerts.trigger=realTime")
            # A task slot per partition for the long Real-Time tasks, and two for the copy query.
            submit_options = ["--master", f"local[{args.partitions + 2}]"]
    overrides += args.job_set
    plan = RunPlan(mode, rate, topic, folder, load_settings(args.config, overrides), overrides)
    (folder / "tables").mkdir(exist_ok=True)
    watermark_ms = round(plan.settings.analytics.watermark.total_seconds() * 1000)
    window_ms = round(plan.settings.analytics.window.total_seconds() * 1000) if mode == "windows" else None

    report: dict[str, Any] = {"mode": mode, "rate_asked": rate, "topic": topic, "job_log": str(folder / "job.log")}
    if mode == "stateless":
        report["silver_dedup"] = plan.settings.etl.silver_dedup
    # Other work on the machine slows the job's batches; the load says how busy it was.
    report["load_average_at_start"] = load_average()
    create_topic(args.bootstrap_servers, topic, partitions=args.partitions, exist_ok=False)
    if mode in ALERT_MODES:
        # The broker's clock stamps each alert as it is appended: the moment it arrives on the topic.
        create_topic(
            args.bootstrap_servers, alerts_topic, partitions=args.partitions, exist_ok=False,
            timestamp_type="LogAppendTime",
        )
    job: Job | None = None
    try:
        log(f"{mode} at {rate:,}/s: starting {JOB_SCRIPT[mode]} on topic {topic} (log: {folder / 'job.log'})")
        job = Job(plan, args.spark_submit, submit_options)
        checkpoints = [plan.checkpoint(query) for query in plan.queries]
        # With starting_offsets=latest, a record sent before a query has fixed its first offsets would be
        # skipped; once every query has committed its first (empty) batch, nothing sent after is missed. The
        # alerts modes read the new topic from its start; the copy query's first commit says the job is up.
        awaited = [plan.checkpoint("copy")] if mode in ALERT_MODES else checkpoints
        if not wait_for(lambda: all(committed_batches(c) for c in awaited), job, args.start_timeout, "its start"):
            raise BenchError(
                f"the job did not commit its first batch within {args.start_timeout:.0f} s (log: {job.log_path})"
            )
        report["start_to_first_commit_seconds"] = round(time.monotonic() - started, 1)
        log(f"  job started after {report['start_to_first_commit_seconds']:.0f} s; producing for {args.duration:.0f} s")

        measured_from_ms = time.time() * 1000 + args.warmup * 1000
        produced = produce_steadily(
            args.bootstrap_servers, topic, rate, args.duration, window_ms,
            args.invalid_percent if mode == "stateless" else 0,
        )
        report.update(
            rate_achieved=round(produced.achieved_rate),
            rate_held=produced.achieved_rate >= RATE_HELD_SHARE * rate,
            sent=produced.sent,
            delivered=produced.delivered,
            produce_seconds=round(produced.seconds, 2),
        )
        line = f"  sent {produced.sent:,} in {produced.seconds:.1f} s ({produced.achieved_rate:,.0f}/s)"
        if not report["rate_held"]:
            line += f": the producer did NOT hold {rate:,}/s"
        log(line)
        if produced.failed:
            raise BenchError(
                f"{produced.failed} of {produced.sent} records were not delivered to {topic} "
                f"(first error: {produced.first_error})"
            )

        measured = plan.checkpoint(plan.measured_query)
        if mode in ALERT_MODES:
            expected = alerts_expected(produced.delivered, args.alert_percent)

            def done() -> bool:
                return topic_messages(args.bootstrap_servers, alerts_topic) >= expected

            what = f"{expected:,} alerts on {alerts_topic}"
        elif mode == "stateless":
            expected = produced.delivered

            def done() -> bool:
                return committed_offsets(measured, topic) >= expected

            what = f"the {expected:,} records sent read and committed into {TABLE[mode]}"
        else:
            # Windows are written when the watermark (latest event time - delay) passes their end; with the
            # last event sent, the watermark stops at final_watermark and later windows stay open.
            final_watermark = produced.max_event_ms - watermark_ms
            assert window_ms is not None
            expected = sum(1 for index, _ in produced.windows_sent if (index + 1) * window_ms <= final_watermark)
            report["windows_open_at_end"] = len(produced.windows_sent) - expected

            def done() -> bool:
                batches = committed_batches(measured)
                return bool(batches) and batch_watermark_ms(measured, batches[-1]) >= final_watermark

            what = f"the watermark to reach the last event time - {args.watermark} ({expected} window rows)"
        report["rows_expected"] = expected
        drain_started = time.monotonic()
        complete = wait_for(done, job, args.drain_timeout, what)
        report["complete"] = complete
        # Stop between batches, not in the middle of one that is still writing its other tables (a Real-Time
        # batch lasts until its checkpoint interval: stopped in the middle, it runs again on the next start).
        if mode != "alerts-realtime":
            wait_for(lambda: all(batches_settled(c) for c in checkpoints), job, 60, "the running batches to commit")
        report["drain_seconds"] = round(time.monotonic() - drain_started, 1)
        log(
            f"  {'all committed' if complete else 'NOT all committed'} {report['drain_seconds']:.0f} s after "
            f"the last send (waited for {what})"
        )
        if mode in ALERT_MODES:
            report["latency"] = alert_latencies(args.bootstrap_servers, alerts_topic, expected, measured_from_ms)
    finally:
        if job is not None:
            code = job.stop()
            report["job_exit_code"] = code
            log(f"  job stopped (exit code {code})")
        for name in (topic, alerts_topic, f"{topic}-dead") if mode in ALERT_MODES else (topic,):
            try:
                delete_topic(args.bootstrap_servers, name)
            except EnvironmentProblem as problem:
                log(f"  warning: {problem}")

    if mode not in ALERT_MODES:
        report["latency"] = analyser.latencies(plan, watermark_ms if mode == "windows" else 0, measured_from_ms)
    if mode == "stateless" and args.invalid_percent:
        dead_letters = Path(plan.settings.storage.table_path(job_table(etl.JOB, DEAD_LETTERS_TABLE)))
        report["dead_letter_latency"] = analyser.latencies(plan, 0, measured_from_ms, dead_letters)
    report["rows_committed"] = report["latency"]["count"]
    trend_query = {"stateless": etl_by_state.SILVER_QUERY if plan.silver_by_state else etl.INGEST_QUERY,
                   "windows": analytics.WINDOWS_QUERY}.get(mode)
    if trend_query:
        report["batches"] = batch_trend(folder / "job.log", trend_query)
    if not args.keep:
        for name in ("tables", "checkpoints"):
            shutil.rmtree(folder / name, ignore_errors=True)
    report["run_seconds"] = round(time.monotonic() - started, 1)
    return report


# ------------------------------------------------------------------------------------------ reporting


def load_average() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "platform": platform.platform()}
    try:
        meminfo = Path("/proc/meminfo").read_text()
        total_kb = int(re.search(r"^MemTotal:\s+(\d+)", meminfo, re.MULTILINE).group(1))  # type: ignore[union-attr]
        info["memory_mb"] = total_kb // 1024
        model = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        info["cpu"] = model.group(1).strip() if model else None
        info["load_average_at_start"] = load_average()
    except (OSError, AttributeError, ValueError):
        pass  # not Linux: the report has fewer machine details
    return info


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("pyspark", "delta-spark", "confluent-kafka"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


def seconds(ms: Any) -> str:
    return f"{ms / 1000:.2f}" if isinstance(ms, (int, float)) else "-"


def print_trends(runs: Sequence[dict[str, Any]]) -> None:
    """Each run's batches over time (:func:`batch_trend`): whether the job kept up."""
    for run in runs:
        if not run.get("batches"):
            continue
        mode = run["mode"] + (f" ({run['silver_dedup']})" if "silver_dedup" in run else "")
        print(f"\n{mode} at {run['rate_asked']:,}/s, batches by minute of batch time (from s: count, rows, "
              "median s, max s, state rows):")
        for part in run["batches"]:
            state = "-" if part["state_rows"] is None else f"{part['state_rows']:,}"
            print(f"  {part['from_s']:>5}: {part['batches']:>3} {part['rows']:>10,} {part['median_s']:>7.2f} "
                  f"{part['max_s']:>7.2f} {state:>11}")


def print_table(runs: Sequence[dict[str, Any]]) -> None:
    header = ("mode", "asked/s", "achieved/s", "rows", "commits", "p50 s", "p95 s", "p99 s", "max s", "start s", "")
    lines = [header]
    for run in runs:
        latency = run.get("latency", {})
        notes = []
        if run.get("rate_held") is False:
            notes.append("rate not held")
        if run.get("complete") is False:
            notes.append("not all committed")
        if run.get("error"):
            notes.append(f"error: {run['error']}")
        mode = run["mode"] + (f" ({run['silver_dedup']})" if "silver_dedup" in run else "")
        paths = [(mode, latency)]
        if "dead_letter_latency" in run:
            paths.append((f"{mode} dead letters", run["dead_letter_latency"]))
        for name, figures in paths:
            lines.append((
                name, f"{run['rate_asked']:,}", f"{run['rate_achieved']:,}" if "rate_achieved" in run else "-",
                f"{figures['count']:,}" if "count" in figures else "-",
                "-" if figures.get("commits") is None else str(figures["commits"]),
                seconds(figures.get("p50_ms")), seconds(figures.get("p95_ms")), seconds(figures.get("p99_ms")),
                seconds(figures.get("max_ms")),
                f"{run['start_to_first_commit_seconds']:.0f}" if "start_to_first_commit_seconds" in run else "-",
                "; ".join(notes),
            ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        cells = [line[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(line[1:-1], widths[1:-1], strict=True)
        ]
        print("  ".join([*cells, line[-1]]).rstrip())


# ---------------------------------------------------------------------------------------------- CLI


def positive_list(text: str) -> list[int]:
    try:
        values = [int(float(part)) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not values or any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers separated by commas, got {text!r}")
    return values


def mode_list(text: str) -> list[str]:
    modes = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [mode for mode in modes if mode not in MODES]
    if not modes or unknown:
        raise argparse.ArgumentTypeError(f"modes are {', '.join(MODES)}; got {text!r}")
    return modes


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench/latency.py",
        description="End-to-end latency (event creation -> Delta commit) of the ETL and analytics jobs.",
    )
    add = parser.add_argument
    add("--bootstrap-servers", default="127.0.0.1:9092", metavar="HOST:PORT", help="default: 127.0.0.1:9092")
    add("--rates", type=positive_list, default=[2000, 10000, 50000], metavar="N,N,...",
        help="events per second, one run each (default: 2000,10000,50000)")
    add("--duration", type=float, default=60.0, metavar="SECONDS", help="seconds of sending per run (default: 60)")
    add("--trigger", default="1 second", help="the jobs' processing-time trigger (default: '1 second')")
    add("--modes", type=mode_list, default=["stateless", "windows"], metavar="MODES",
        help="stateless (ETL silver), windows (analytics), alerts-realtime and alerts-microbatch (jobs/alerts.py "
             "with a rule every event matches), separated by commas (default: stateless,windows)")
    add("--warmup", type=float, default=0.0, metavar="SECONDS",
        help="the first seconds of sending are not measured: the steady state without the start-up (default: 0)")
    add("--invalid-percent", type=int, default=0, metavar="P",
        help="stateless: this percentage of the records are not JSON, and the dead letters' latency (their "
        "commit - the record's Kafka timestamp) is reported beside silver's (default 0: none)")
    add("--alert-percent", type=int, default=100, metavar="P",
        help="alerts modes: the percentage of events the one rule matches (default: 100)")
    add("--checkpoint-interval", default="1 minute",
        help="alerts.checkpoint_interval of the alerts modes (default: '1 minute')")
    add("--window", default="10 seconds", help="analytics.window in windows mode (default: '10 seconds')")
    add("--watermark", default="5 seconds", help="analytics.watermark in windows mode (default: '5 seconds')")
    add("--job-set", action="append", default=[], metavar="KEY=VALUE",
        help="passed to the jobs as --set KEY=VALUE (repeatable), e.g. kafka.max_offsets_per_trigger=20000")
    add("--config", default="conf/local.toml", help="the jobs' config file (default: conf/local.toml)")
    add("--run-dir", type=Path, help="tables, checkpoints and logs (default: data/bench/latency/<timestamp>)")
    add("--out", type=Path, help="the JSON report (default: <run dir>/latency.json)")
    add("--keep", action="store_true", help="keep the tables and checkpoints (default: delete them, keep the report)")
    add("--topic-prefix", default="bench-latency-", help="prefix of the topics made for each run")
    add("--partitions", type=int, default=4, help="partitions of each topic (default: 4)")
    add("--start-timeout", type=float, default=300.0, metavar="SECONDS",
        help="how long a job may take to commit its first batch (default: 300)")
    add("--drain-timeout", type=float, default=300.0, metavar="SECONDS",
        help="how long to wait after sending for everything to be committed (default: 300)")
    args = parser.parse_args(argv)
    if args.duration <= 0:
        parser.error("--duration must be positive")
    if not 0 <= args.warmup < args.duration:
        parser.error("--warmup must be 0 or more and shorter than --duration")
    return args


def check_arguments(args: argparse.Namespace) -> None:
    """Fail before any run on what would fail in every run: the tools, the config, the durations."""
    spark_submit = shutil.which("spark-submit") or str(Path(sys.executable).parent / "spark-submit")
    if not os.access(spark_submit, os.X_OK):
        raise BenchError("spark-submit not found: run `source .venv/bin/activate` first (or scripts/setup.sh)")
    args.spark_submit = spark_submit
    for option in ("trigger", "window", "watermark"):
        try:
            parse_duration(getattr(args, option))
        except ValueError as error:
            raise BenchError(f"--{option}: {error}") from None
    if not 0 <= args.invalid_percent <= 100:
        raise BenchError("--invalid-percent must be between 0 and 100")
    args.config = str(Path(args.config).resolve())
    # The jobs' own config loading, so that a wrong --job-set key is reported now, not by a job later.
    load_settings(args.config, args.job_set)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    began = datetime.now(UTC)
    run_dir = (args.run_dir or PROJECT_ROOT / "data" / "bench" / "latency" / f"{began:%Y%m%dT%H%M%SZ}").resolve()
    out = (args.out or run_dir / "latency.json").resolve()
    report: dict[str, Any] = {
        "date": began.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": machine(),
        "versions": versions(),
        "settings": {
            "trigger": args.trigger,
            "duration_seconds": args.duration,
            "warmup_seconds": args.warmup,
            "window": args.window,
            "watermark": args.watermark,
            "partitions": args.partitions,
            "invalid_percent": args.invalid_percent,
            "job_set": args.job_set,
            "latency": {
                "stateless": "silver_events commit time - event_time (the producer's send time)",
                "windows": "analytics_windows commit time - (window_end + watermark delay)",
                "alerts": "the alert's arrival on the alerts topic (LogAppendTime) - its source record's Kafka "
                          "timestamp (the producer's send time)",
            },
        },
        "rates_asked": args.rates,
        "runs": [],
    }
    analyser: Analyser | None = None
    failed = False
    try:
        check_arguments(args)
        run_dir.mkdir(parents=True, exist_ok=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        analyser = Analyser(load_settings(args.config, args.job_set))
        log(f"run dir {run_dir}; {len(args.rates) * len(args.modes)} runs of {args.duration:.0f} s of sending")
        for mode in args.modes:
            for rate in args.rates:
                try:
                    run = run_once(args, mode, rate, run_dir, analyser)
                except BenchError as error:
                    # One broken run should not cost the others; the report and exit code say it failed.
                    log(f"  run failed: {error}")
                    run, failed = {"mode": mode, "rate_asked": rate, "error": str(error)}, True
                report["runs"].append(run)
                report["total_seconds"] = round((datetime.now(UTC) - began).total_seconds(), 1)
                out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    except (BenchError, ConfigError, EnvironmentProblem, KafkaException) as problem:
        print(f"latency: error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latency: interrupted (the running job was stopped and its topic deleted)", file=sys.stderr)
        return 130
    finally:
        if analyser is not None:
            analyser.close()
    report["rates_achieved"] = {f"{r['mode']}-{r['rate_asked']}": r.get("rate_achieved") for r in report["runs"]}
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print_table(report["runs"])
    print_trends(report["runs"])
    print(f"\nreport: {out}  (total {report['total_seconds']:.0f} s)")
    if not args.keep:
        print(f"tables and checkpoints deleted; job logs in {run_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
