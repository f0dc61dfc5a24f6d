"""Fault injection: each job killed with SIGKILL at random moments and restarted, over a stream with duplicates,
late, out-of-order and malformed records; its tables compared row for row with those of a run never killed,
and the killed analytics run reconciled.

    scripts/faults.sh [--kills 20] [--records 10000] [--jobs analytics,etl,etl-state] [--seed N] [--keep] ...

For each job, in each phase of the stream:

1. the phase's records go to the topic (all of them, before any run of the phase);
2. the reference run, never killed, processes them (``availableNow``, in this process's SparkSession) into
   its own tables and checkpoints;
3. the killed run: ``spark-submit jobs/<job>.py`` on its own tables and checkpoints, SIGKILLed (the whole
   process group) at a random moment, restarted on the same checkpoints, killed again, ... until the phase's
   kills are made; then a last run processes the rest and ends by itself (exit 0). A run that ends by itself
   before its kill hands the kill on to the next phase. The moments are drawn from a generator seeded with
   ``--seed``, most of them counted from the moment the run's queries started (a JVM's start-up takes 10 s
   on a quiet 2-core machine and a minute on a busy one), some during start-up.

Then every table of each job (but ``<job>_pipeline_metrics``, monitoring) must hold the same rows in both
runs, none twice, and ``scripts/reconcile.sh`` must find the killed analytics run exact.

Why the two runs must agree row for row, late events included: both use ``availableNow`` with
``kafka.max_offsets_per_trigger``, over a backlog that is all in the topic before either starts, so the
intake's batches are the same offset ranges in both (a killed batch runs again with the offsets its
checkpoint logged); the windows query starts once the intake has drained the topic, so each of its
batches reads the same ``analytics_events`` versions. Which events are late depends on those batches only.
The stream comes in phases because within one phase the windows query reads the whole backlog in one batch,
before its watermark has moved, and drops nothing as late: only from the second phase on are events dropped
as late, and duplicates matched against state that was kept across kills.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from eventlake.local import broker as local_broker
from eventlake.local.daemons import free_port
from eventlake.local.job_process import PROJECT_ROOT, JobRun, JobRunTimeout, job_environment
from eventlake.local.producer import ProducedRecord, generate_records, send_records
from eventlake.pipeline.analytics import INTAKE_QUERY, WINDOWS_QUERY, analytics_queries
from eventlake.pipeline.etl import INGEST_QUERY, etl_queries
from eventlake.pipeline.etl_by_state import RAW_CHECKPOINT, RAW_QUERY, SILVER_CHECKPOINT, SILVER_QUERY
from eventlake.runtime.config import ConfigError, Settings, StorageSettings, load_settings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import PIPELINE_METRICS
from eventlake.runtime.kafka_admin import create_topic
from eventlake.runtime.runner import PlanQueries, run_plan
from eventlake.runtime.session import build_spark_session

CONFIG = PROJECT_ROOT / "conf" / "local.toml"

# Columns that say when or by which checkpoint a row was written, not what it holds: they differ between
# the runs by design. batch_id is compared: the batches are the same in both runs.
IGNORED_COLUMNS = ("writer_id", "ingested_at", "ingest_date")
# What identifies a row of each table: a key found twice in the killed run is a row written twice.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "analytics_windows": ("window_start", "window_end", "event_type"),
    "analytics_events": ("topic", "partition", "offset"),
    "analytics_window_batches": ("batch_id",),
    "analytics_late_events": ("topic", "partition", "offset", "window_start"),
    "bronze_events": ("topic", "partition", "offset"),
    "silver_events": ("event_id",),
    "etl_silver_batches": ("batch_id",),
    "dim_pages": ("page",),
}
KEYS_BY_SUFFIX: dict[str, tuple[str, ...]] = {
    "_dead_letters": ("topic", "partition", "offset"),
    "_intake_batches": ("batch_id", "topic", "partition"),
}

_DELTA_COMMIT = re.compile(r"^\d{20}\.json$")
# A progress line of a job (eventlake.runtime.progress): "[analytics_intake] batch 7: 99 rows in 2.42 s (...)".
_BATCH_LINE = re.compile(r"^\[\w+\] batch \d+: \d+ rows in ([\d.]+) s", re.MULTILINE)
# A Delta source's offsets (analytics_window_batches.start_offset, end_offset) name the table they read by its
# id, which each run's analytics_events has its own of: compared without it.
_TABLE_ID = r'"reservoirId":"[^"]*"'



@dataclass(frozen=True)
class JobSpec:
    """A job as the fault run sees it: how to plan its queries in-process (the reference run), and its
    queries with their checkpoint folders (``<checkpoint_root>/<job>/<folder>``) in the order data flows.
    ``name``: what the fault run calls it; ``job``: the job it runs (``jobs/<job>.py``; default ``name``),
    with ``overrides`` (``key=value``) on top of the config."""

    name: str
    plan: PlanQueries
    queries: tuple[tuple[str, str], ...]
    job: str = ""
    overrides: tuple[str, ...] = ()

    @property
    def job_name(self) -> str:
        return self.job or self.name


JOBS = {
    "analytics": JobSpec("analytics", analytics_queries, ((INTAKE_QUERY, "intake"), (WINDOWS_QUERY, "windows"))),
    "etl": JobSpec("etl", etl_queries, ((INGEST_QUERY, "ingest"),)),
    # The ETL with silver de-duplicated by state: two queries, the raw one first.
    "etl-state": JobSpec(
        "etl-state", etl_queries, ((RAW_QUERY, RAW_CHECKPOINT), (SILVER_QUERY, SILVER_CHECKPOINT)),
        job="etl", overrides=("etl.silver_dedup=state",),
    ),
}


@dataclass(frozen=True)
class FaultOptions:
    """What a fault run does: ``kills`` per job, each at a random moment of a run (see
    :meth:`JobFaults.run_killed`); ``run_timeout`` bounds any one run."""

    kills: int = 20
    records: int = 9000
    seed: int = 15
    jobs: tuple[str, ...] = ("analytics", "etl")
    max_offsets_per_trigger: int = 200
    phases: int = 3
    max_batches_before_kill: int = 2  # a kill comes after the run began 0 to this many batches of its own...
    startup_share: float = 0.15  # ...or, for this share of the kills, during its start-up
    run_timeout: float = 900.0
    span: timedelta = timedelta(hours=2)
    duplicate_ratio: float = 0.05
    late_ratio: float = 0.03
    malformed_ratio: float = 0.02
    out_of_order_ratio: float = 0.05
    start_time: datetime | None = None  # of the first event; None: the hour before now, minus a day

    def check(self) -> None:
        unknown = [job for job in self.jobs if job not in JOBS]
        if unknown or not self.jobs or len(set(self.jobs)) < len(self.jobs):
            raise ValueError(f"--jobs: one or more of {', '.join(JOBS)}, got {','.join(self.jobs) or 'none'}")
        if self.kills < 0 or self.records < 1 or self.max_offsets_per_trigger < 1:
            raise ValueError("--kills must be 0 or more, --records and --max-offsets-per-trigger 1 or more")
        if not 1 <= self.phases <= self.records:
            raise ValueError(f"--phases must be between 1 and the number of records, got {self.phases}")
        if self.max_batches_before_kill < 0:
            raise ValueError(f"--max-batches-before-kill must be 0 or more, got {self.max_batches_before_kill}")
        if not 0 <= self.startup_share <= 1:
            raise ValueError(f"--startup-share must be between 0 and 1, got {self.startup_share}")


def stream_records(options: FaultOptions) -> list[ProducedRecord]:
    """The stream: contract-v1 events with duplicates, out-of-order, late and malformed records."""
    start = options.start_time or datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    return generate_records(
        options.records,
        options.seed,
        start,
        options.span,
        users=40,
        duplicate_ratio=options.duplicate_ratio,
        out_of_order_ratio=options.out_of_order_ratio,
        late_ratio=options.late_ratio,
        malformed_ratio=options.malformed_ratio,
    )


def split(items: Sequence, parts: int) -> list[Sequence]:
    """``items`` in ``parts`` consecutive slices of (nearly) equal length."""
    return [items[len(items) * part // parts : len(items) * (part + 1) // parts] for part in range(parts)]


def kinds(records: Sequence[ProducedRecord]) -> str:
    """'valid 5200, duplicate 290, ...' (malformed ones summed)."""
    counts = Counter(record.kind.partition(":")[0] for record in records)
    return ", ".join(f"{kind} {number}" for kind, number in counts.most_common())


# --- where a kill landed, read from the killed run's checkpoints and Delta logs ----------------------------


def _batches(folder: Path) -> dict[int, int]:
    """Batch number -> modification time (ns) of ``offsets/N`` or ``commits/N`` files in ``folder`` (Spark
    writes them through a hidden temporary file and a rename: only the final names count)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return {}
    return {int(entry.name): entry.stat().st_mtime_ns for entry in entries if entry.name.isdigit()}


def tables_written_since(tables_root: str, since_ns: int) -> list[str]:
    """The tables under ``tables_root`` (monitoring tables left out) with a Delta commit since ``since_ns``."""
    written = []
    root = Path(tables_root)
    for table in sorted(root.iterdir()) if root.is_dir() else []:
        log = table / "_delta_log"
        if table.name.endswith(f"_{PIPELINE_METRICS}") or not log.is_dir():
            continue
        if any(_DELTA_COMMIT.match(entry.name) and entry.stat().st_mtime_ns >= since_ns for entry in os.scandir(log)):
            written.append(table.name)
    return written


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: of which job and run, how long after the run's start, and where the job stood."""

    job: str
    number: int
    phase: int
    run: str
    seconds: float
    aimed: str  # the moment drawn, as :meth:`JobFaults.run_killed` draws it
    moment: str  # one of MOMENTS
    detail: str
    partly_written: bool = False  # in a batch, with some of its tables already committed

    def line(self, of: int) -> str:
        when = f"{self.seconds:.1f} s after start ({self.aimed})"
        return f"{self.job} kill {self.number}/{of} (phase {self.phase}, {self.run}): {when}, {self.detail}"


MOMENTS = ("start-up", "queries starting", "in a batch run again", "in a batch", "between batches")


def where_it_stood(spec: JobSpec, storage: StorageSettings, stdout: str, started_ns: int,
                   before: dict[str, int]) -> tuple[str, str, bool]:
    """(moment, description, partly written) of a run just killed. ``before``: each query's latest
    ``offsets/N`` when the run started (-1: none)."""
    if f"{spec.job_name}: starting" not in stdout:
        return "start-up", "during start-up (JVM, session, checks: no query started)", False
    advanced: tuple[str, int] | None = None
    for query, folder in spec.queries:
        checkpoint = Path(storage.checkpoint_path(spec.job_name, folder))
        offsets, commits = _batches(checkpoint / "offsets"), _batches(checkpoint / "commits")
        latest = max(offsets, default=-1)
        if latest >= 0 and latest not in commits:
            written = tables_written_since(storage.tables_root, max(offsets[latest], started_ns))
            wrote = f"; committed so far: {', '.join(written)}" if written else "; no table committed yet"
            if latest <= before.get(query, -1):  # begun by an earlier run that was killed in it
                return "in a batch run again", f"during {query} batch {latest}, run again{wrote}", bool(written)
            return "in a batch", f"during {query} batch {latest}{wrote}", bool(written)
        if commits and commits[max(commits)] >= started_ns:
            advanced = (query, max(commits))
    if advanced is None:
        return "queries starting", "queries started, no batch begun by this run", False
    query, batch = advanced
    return "between batches", f"between batches: {query} batch {batch} committed, the next not begun", False


# --- one job: its reference run and its killed run ---------------------------------------------------------


class JobFailed(RuntimeError):
    """A run of the killed job ended with an error, or did not end: what the fault run exists to find."""


@dataclass
class JobRecord:
    """What happened to one job during the fault run."""

    job: str
    reference: StorageSettings
    killed: StorageSettings
    kills: list[Kill] = field(default_factory=list)
    runs: int = 0
    ran_to_the_end: int = 0
    killed_seconds: float = 0.0  # the killed run's processes, start to end, summed
    reference_seconds: float = 0.0

    def moments(self) -> str:
        counts = Counter(kill.moment for kill in self.kills)
        parts = []
        for moment in MOMENTS:
            if counts[moment]:
                partly = sum(kill.partly_written for kill in self.kills if kill.moment == moment)
                parts.append(f"{counts[moment]} {moment}" + (f" ({partly} with tables committed)" if partly else ""))
        return ", ".join(parts) or "none"


class JobFaults:
    """The reference and the killed run of one job, each with its own tables and checkpoints under ``work``."""

    def __init__(self, spec: JobSpec, options: FaultOptions, bootstrap: str, topic: str, work: Path,
                 out: Callable[[str], None]):
        self.spec, self.options, self.out = spec, options, out
        self.folder = work / spec.name
        self.common = [
            f"kafka.bootstrap_servers={bootstrap}",
            f"kafka.topic={topic}",
            f"kafka.max_offsets_per_trigger={options.max_offsets_per_trigger}",
            "analytics.trigger=availableNow",
            "etl.trigger=availableNow",
            f"spark.jars_dir={PROJECT_ROOT / 'jars' / 'spark'}",
            f"etl.enrich.dimension_csv={PROJECT_ROOT / 'conf' / 'dimensions' / 'pages.csv'}",
        ]
        self.reference = self._settings("reference")
        self.killed = self._settings("killed")
        self.record = JobRecord(spec.name, self.reference.storage, self.killed.storage)
        self.rng = random.Random(f"{options.seed}:{spec.name}")
        self.startup_seconds = 10.0  # from a run's start to its queries' start: the latest seen
        self.batch_seconds: deque[float] = deque(maxlen=30)  # the latest batch durations the runs reported
        self.current: JobRun | None = None
        self.stopping = threading.Event()

    def _overrides(self, run: str) -> list[str]:
        root = self.folder / run
        storage = [f"storage.tables_root={root / 'tables'}", f"storage.checkpoint_root={root / 'checkpoints'}"]
        return [*self.common, *self.spec.overrides, *storage]

    def _settings(self, run: str) -> Settings:
        (self.folder / run / "tables").mkdir(parents=True, exist_ok=True)
        return load_settings(CONFIG, self._overrides(run))

    def run_reference(self, spark: SparkSession, phase: int) -> None:
        began = time.monotonic()
        run_plan(self.spec.plan(spark, self.reference))
        if self.stopping.is_set():
            raise JobFailed(f"{self.spec.name}: stopped")
        seconds = time.monotonic() - began
        self.record.reference_seconds += seconds
        self.out(f"{self.spec.name} phase {phase}: reference run (never killed) done in {seconds:.0f} s")

    def _latest_offsets(self) -> dict[str, int]:
        storage = self.killed.storage
        return {
            query: max(_batches(Path(storage.checkpoint_path(self.spec.job_name, folder)) / "offsets"), default=-1)
            for query, folder in self.spec.queries
        }

    def _start(self) -> JobRun:
        if self.stopping.is_set():
            raise JobFailed(f"{self.spec.name}: stopped")
        self.record.runs += 1
        overrides = [*self._overrides("killed"), f"spark.conf.spark.local.dir={self.folder / 'spark-local'}"]
        self.current = JobRun(
            f"run-{self.record.runs:02d}", self.spec.job_name, overrides, self.folder / "logs", str(CONFIG)
        )
        return self.current

    def _ended(self, run: JobRun, phase: int, aimed: str | None) -> None:
        code = run.process.returncode
        self.record.killed_seconds += run.seconds()
        if self.stopping.is_set():
            raise JobFailed(f"{self.spec.name}: stopped")
        if code != 0 or f"{self.spec.job_name}: done" not in run.stdout():
            raise JobFailed(f"{self.spec.name} {run.name} (phase {phase}) exited with {code} after a restart\n"
                            f"{run.logs()}")
        self.record.ran_to_the_end += 1
        planned = f", before its kill ({aimed})" if aimed is not None else ""
        self.out(f"{self.spec.name} phase {phase}: {run.name} ran to the end after {run.seconds():.0f} s{planned}")

    def _wait_for(self, run: JobRun, reached: Callable[[], bool], what: str) -> float | None:
        """Seconds from the run's start until ``reached()``, or None when the run ended first."""
        while run.running():
            if reached():
                return run.seconds()
            if self.stopping.is_set():
                raise JobFailed(f"{self.spec.name}: stopped")
            if run.seconds() > self.options.run_timeout:
                run.kill()
                raise JobFailed(f"{self.spec.name} {run.name}: no {what} within {run.seconds():.0f} s\n{run.logs()}")
            time.sleep(0.02)
        return None

    def _batches_begun(self, before: dict[str, int]) -> int:
        """Batches the job's queries began since ``before`` (their latest ``offsets/N`` then)."""
        latest = self._latest_offsets()
        return sum(max(latest[query] - before.get(query, -1), 0) for query in latest)

    def _learn_batch_time(self, run: JobRun) -> None:
        """Keep the durations of the batches the run reported (its progress lines): a kill comes a fraction of
        a typical batch after a batch began."""
        self.batch_seconds.extend(float(seconds) for seconds in _BATCH_LINE.findall(run.stdout()))

    def _typical_batch_seconds(self) -> float:
        return statistics.median(self.batch_seconds) if self.batch_seconds else 3.0

    def _run_until(self, run: JobRun, before: dict[str, int], batches: int, delay: float) -> bool:
        """Let the run start its queries, begin ``batches`` batches of its own, then go on for ``delay`` s.
        True when it ended meanwhile."""
        queries_at = self._wait_for(run, lambda: f"{self.spec.job_name}: starting" in run.stdout(), "query start")
        if queries_at is None:
            return True
        self.startup_seconds = queries_at
        if self._wait_for(run, lambda: self._batches_begun(before) >= batches, f"batch {batches}") is None:
            return True
        return run.ended_within(delay)

    def run_killed(self, phase: int, kills: int) -> int:
        """Kill and restart the job ``kills`` times in this phase, or until a run ends by itself; then let the
        last run end. Returns the kills not made (a run ended before its kill).

        Each kill comes at a moment drawn from the job's generator (seeded with ``--seed``): ``startup_share``
        of them during start-up (between 1 s and the time the run before took to start its queries); the
        others once the run has begun 0 to ``max_batches_before_kill`` batches of its own (0: once its
        queries started, while a batch left unfinished by the kill before runs again), a random fraction of a
        typical batch later. Counted in batches, the moments spread over the whole run whatever the machine's
        speed and the job's batch time, and every run that is not killed at start-up gets somewhere."""
        options = self.options
        while True:
            before, started_ns = self._latest_offsets(), time.time_ns()
            run = self._start()
            if kills == 0:
                try:
                    run.wait(options.run_timeout)
                except JobRunTimeout as timeout:
                    raise JobFailed(str(timeout)) from None
                self._ended(run, phase, None)
                return 0
            # Every draw every time, so that the moments drawn do not depend on which branch was taken.
            at_startup = self.rng.random() < options.startup_share
            startup_delay = self.rng.uniform(1.0, max(1.0, self.startup_seconds))
            batches = self.rng.randint(0, options.max_batches_before_kill)
            fraction = self.rng.random()
            if at_startup:
                aimed = f"aimed at start-up: {startup_delay:.1f} s after start"
                ended = run.ended_within(startup_delay)
            else:
                delay = fraction * self._typical_batch_seconds()
                since = "its queries started" if batches == 0 else f"it began batch {batches} of its own"
                aimed = f"aimed at {delay:.1f} s ({fraction:.2f} of a batch) after {since}"
                ended = self._run_until(run, before, batches, delay)
            self._learn_batch_time(run)
            if ended:
                self._ended(run, phase, aimed)
                return kills
            run.kill()
            self.record.killed_seconds += run.seconds()
            moment, detail, partly = where_it_stood(self.spec, self.killed.storage, run.stdout(), started_ns, before)
            kill = Kill(
                self.spec.name, len(self.record.kills) + 1, phase, run.name, run.seconds(), aimed, moment, detail,
                partly,
            )
            self.record.kills.append(kill)
            self.out(kill.line(options.kills))
            kills -= 1

    def stop(self) -> None:
        """Kill the run going on, if any, and end :meth:`run_killed` (Ctrl-C, or another job failed)."""
        self.stopping.set()
        if self.current is not None and self.current.running():
            self.current.kill()


# --- the comparison ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableComparison:
    """One table of a job in the reference and the killed run. ``missing``: rows of the reference the killed
    run lacks; ``extra``: rows of the killed run the reference lacks; ``repeated``: keys (:data:`TABLE_KEYS`)
    the killed run holds more than once."""

    job: str
    table: str
    reference_rows: int
    killed_rows: int
    missing: int = 0
    extra: int = 0
    repeated: int = 0
    problem: str = ""
    examples: tuple[str, ...] = ()

    @property
    def equal(self) -> bool:
        return not (self.problem or self.missing or self.extra or self.repeated)

    def line(self) -> str:
        verdict = "equal" if self.equal else (
            self.problem or f"DIFFERENT: {self.missing} missing, {self.extra} extra, {self.repeated} keys repeated"
        )
        return f"  {self.table:<28} {self.reference_rows:>9} {self.killed_rows:>9}  {verdict}"


def delta_tables_under(root: str) -> dict[str, str]:
    """Table name -> path of the Delta tables in a local tables root, monitoring tables left out."""
    folder = Path(root)
    paths = sorted(folder.iterdir()) if folder.is_dir() else []
    return {
        path.name: str(path)
        for path in paths
        if (path / "_delta_log").is_dir() and not path.name.endswith(f"_{PIPELINE_METRICS}")
    }


def table_key(table: str, columns: Sequence[str]) -> list[str]:
    key = TABLE_KEYS.get(table) or next((key for suffix, key in KEYS_BY_SUFFIX.items() if table.endswith(suffix)), ())
    return list(key) if key else [column for column in columns if column != "batch_id"]


def _examples(frame: DataFrame, what: str) -> list[str]:
    return [f"{what}: {str(row.asDict())[:300]}" for row in frame.limit(3).collect()]


def _comparable(frame: DataFrame, columns: Sequence[str]) -> DataFrame:
    """The columns compared, Delta source offsets without their table's id."""
    offsets = [name for name, kind in frame.dtypes if name.endswith("_offset") and kind == "string"]
    return frame.withColumns({name: F.regexp_replace(name, _TABLE_ID, '"reservoirId":""') for name in offsets}).select(
        *columns
    )


def compare_table(spark: SparkSession, job: str, table: str, reference_path: str | None,
                  killed_path: str | None) -> TableComparison:
    """The table in both runs, its rows as multisets over every column but :data:`IGNORED_COLUMNS`: how often
    each distinct row is in each run, counted in one pass; then the keys the killed run holds twice."""
    if reference_path is None or killed_path is None:
        only = "reference" if killed_path is None else "killed"
        rows = spark.read.format("delta").load(reference_path or killed_path).count()
        counts = (rows, 0) if killed_path is None else (0, rows)
        return TableComparison(job, table, *counts, problem=f"DIFFERENT: only the {only} run has it")
    return compare_rows(
        job, table, spark.read.format("delta").load(reference_path), spark.read.format("delta").load(killed_path)
    )


def compare_rows(job: str, table: str, reference: DataFrame, killed: DataFrame) -> TableComparison:
    """:func:`compare_table` for the rows of the table in both runs."""
    columns = sorted(set(reference.columns) - set(IGNORED_COLUMNS))
    if columns != sorted(set(killed.columns) - set(IGNORED_COLUMNS)):
        return TableComparison(job, table, reference.count(), killed.count(),
                               problem=f"DIFFERENT columns: {reference.columns} / {killed.columns}")
    reference, killed = _comparable(reference, columns), _comparable(killed, columns)
    side = "__faults_side"
    both = reference.withColumn(side, F.lit(0)).unionByName(killed.withColumn(side, F.lit(1)))
    counted = both.groupBy(*columns).agg(
        F.count(F.when(F.col(side) == 0, 1)).alias("__in_reference"),
        F.count(F.when(F.col(side) == 1, 1)).alias("__in_killed"),
    )
    surplus = F.col("__in_killed") - F.col("__in_reference")
    [totals] = counted.agg(
        *(F.coalesce(F.sum(value), F.lit(0)).alias(name) for name, value in (
            ("reference", F.col("__in_reference")),
            ("killed", F.col("__in_killed")),
            ("missing", F.greatest(-surplus, F.lit(0))),
            ("extra", F.greatest(surplus, F.lit(0))),
        ))
    ).collect()
    repeated = killed.groupBy(*table_key(table, columns)).count().where(F.col("count") > 1)
    comparison = TableComparison(
        job, table, totals.reference, totals.killed, totals.missing, totals.extra, repeated.count()
    )
    if comparison.equal:
        return comparison
    examples = (
        _examples(counted.where(surplus < 0), "missing")
        + _examples(counted.where(surplus > 0), "extra")
        + _examples(repeated, "repeated")
    )
    return TableComparison(**{**comparison.__dict__, "examples": tuple(examples)})


def compare_job(spark: SparkSession, faults: JobFaults) -> list[TableComparison]:
    reference = delta_tables_under(faults.reference.storage.tables_root)
    killed = delta_tables_under(faults.killed.storage.tables_root)
    return [
        compare_table(spark, faults.spec.name, table, reference.get(table), killed.get(table))
        for table in sorted(set(reference) | set(killed))
    ]


@dataclass(frozen=True)
class ReconcileResult:
    exit_code: int
    output: str


def reconcile_run(storage: StorageSettings, timeout: float = 600.0) -> ReconcileResult:
    """``scripts/reconcile.sh`` on a run's tables (its own JVM, as an operator runs it): exit 0 when exact."""
    command = [
        sys.executable, "-m", "eventlake.ops.reconcile", "--config", str(CONFIG),
        "--set", f"storage.tables_root={storage.tables_root}",
        "--set", f"storage.checkpoint_root={storage.checkpoint_root}",
    ]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=job_environment(), capture_output=True, text=True,
                            timeout=timeout)
    output = result.stdout.strip()
    if result.returncode not in (0, 1):
        output = f"{output}\n{result.stderr.strip()[-2000:]}".strip()
    return ReconcileResult(result.returncode, output)


# --- the whole run ---------------------------------------------------------------------------------------------


@dataclass
class FaultReport:
    """Everything a fault run found; :attr:`ok` when every table is equal, the reconciliation exact and every
    kill asked for made."""

    options: FaultOptions
    topic: str
    stream: str
    jobs: list[JobRecord] = field(default_factory=list)
    tables: list[TableComparison] = field(default_factory=list)
    reconciliation: ReconcileResult | None = None
    failure: str = ""
    seconds: float = 0.0

    def differences(self) -> list[str]:
        found = [self.failure] if self.failure else []
        found += [f"{t.job}: {t.table}: {t.line().split(maxsplit=3)[-1]}" for t in self.tables if not t.equal]
        if self.reconciliation is not None and self.reconciliation.exit_code != 0:
            found.append(f"the killed analytics run does not reconcile (exit {self.reconciliation.exit_code})")
        return found

    def shortfalls(self) -> list[str]:
        return [
            f"{job.job}: {len(job.kills)} kills of the {self.options.kills} asked: runs ended before their kill "
            "(raise --records or lower --max-delay)"
            for job in self.jobs if len(job.kills) < self.options.kills
        ]

    @property
    def ok(self) -> bool:
        return not self.differences() and not self.shortfalls()

    def exit_code(self) -> int:
        return 1 if self.differences() else 2 if self.shortfalls() else 0

    def summary(self) -> str:
        options = self.options
        lines = [
            "",
            "== fault injection: summary ==",
            f"stream: {options.records} records to topic {self.topic} in {options.phases} phases ({self.stream}); "
            f"at most {options.max_offsets_per_trigger} offsets a batch; seed {options.seed}; "
            f"kills once a run began 0 to {options.max_batches_before_kill} batches of its own, a random part of a "
            f"batch later ({options.startup_share:.0%} aimed at start-up instead)",
        ]
        for job in self.jobs:
            lines.append(
                f"{job.job}: {len(job.kills)} kills, {job.runs} runs ({job.ran_to_the_end} ran to the end); "
                f"kills landed: {job.moments()}; killed runs {job.killed_seconds:.0f} s of processes, "
                f"reference {job.reference_seconds:.0f} s"
            )
        if self.tables:
            ignored = ", ".join(IGNORED_COLUMNS)
            lines.append(f"tables ({ignored} not compared)      reference    killed")
            lines += [table.line() for table in self.tables]
            lines += [f"    {example}" for table in self.tables for example in table.examples]
        if self.reconciliation is not None:
            lines.append(f"reconciliation of the killed analytics run (exit {self.reconciliation.exit_code}):")
            lines += [f"  {line}" for line in self.reconciliation.output.splitlines()]
        lines.append(f"time: {self.seconds / 60:.1f} minutes")
        problems = self.differences() + self.shortfalls()
        if problems:
            lines += [f"FAILED: {problem}" for problem in problems]
        else:
            lines.append("RESULT: every table equal row for row to the unkilled run, the reconciliation exact")
        return "\n".join(lines)


def run_phase(spark: SparkSession, jobs: Sequence[JobFaults], phase: int, kills: dict[str, int]) -> dict[str, int]:
    """One phase, at the same time in threads: the reference runs of the jobs one after the other, and each
    job's killed run (``kills[job]`` kills). Returns the kills each job could not make. When one fails (or on
    Ctrl-C), the others are stopped."""
    with ThreadPoolExecutor(max_workers=len(jobs) + 1, thread_name_prefix="faults") as pool:

        def reference_runs() -> None:
            for job in jobs:
                job.run_reference(spark, phase)

        references = pool.submit(reference_runs)
        killed = {job.spec.name: pool.submit(job.run_killed, phase, kills[job.spec.name]) for job in jobs}
        every: list[Future] = [references, *killed.values()]
        try:
            for future in as_completed(every):
                future.result()
        except BaseException:
            for job in jobs:
                job.stop()
            while not references.done():  # each query the reference runs start, stopped
                for query in spark.streams.active:
                    query.stop()
                time.sleep(0.5)
            raise
    return {name: future.result() for name, future in killed.items()}


def run_faults(options: FaultOptions, spark: SparkSession, bootstrap: str, topic: str, work: Path,
               out: Callable[[str], None] = print) -> FaultReport:
    """The fault run on ``topic`` (existing and empty) at ``bootstrap``, with every file under ``work``;
    ``spark`` runs the reference runs and the comparison. Prints as it goes through ``out``."""
    options.check()
    began = time.monotonic()
    records = stream_records(options)
    report = FaultReport(options, topic, kinds(records))
    jobs = [JobFaults(JOBS[name], options, bootstrap, topic, work, out) for name in options.jobs]
    report.jobs = [job.record for job in jobs]
    owed = dict.fromkeys(options.jobs, 0)
    out(f"fault injection: {len(records)} records ({report.stream}) in {options.phases} phases; "
        f"{options.kills} kills per job of {', '.join(options.jobs)}; work folder {work}")
    try:
        for number, chunk in enumerate(split(records, options.phases)):
            phase = number + 1
            sent = send_records(chunk, bootstrap, topic)
            out(f"phase {phase}/{options.phases}: {sent.summary()}")
            planned = options.kills * (number + 1) // options.phases - options.kills * number // options.phases
            owed = run_phase(spark, jobs, phase, {name: planned + kills for name, kills in owed.items()})
    except JobFailed as failure:
        report.failure = str(failure)
    if not report.failure:
        out("comparing the tables of the killed runs with the reference runs")
        report.tables = [table for job in jobs for table in compare_job(spark, job)]
        analytics = next((job for job in jobs if job.spec.name == "analytics"), None)
        if analytics is not None:
            out("reconciling the killed analytics run (scripts/reconcile.sh)")
            report.reconciliation = reconcile_run(analytics.killed.storage)
    report.seconds = time.monotonic() - began
    out(report.summary())
    return report


# --- the command line ----------------------------------------------------------------------------------------


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = FaultOptions()
    parser = argparse.ArgumentParser(
        prog="scripts/faults.sh",
        description="Fault injection: each job SIGKILLed at random moments and restarted each time, over a stream "
        "with duplicates, late and malformed records; its tables compared row for row with a run never killed, and "
        "the killed analytics run reconciled.",
    )
    add = parser.add_argument
    add("--kills", type=int, default=defaults.kills, metavar="N", help=f"SIGKILLs per job (default {defaults.kills})")
    add("--records", type=int, default=defaults.records, metavar="N",
        help=f"records in the stream (default {defaults.records})")
    add("--seed", type=int, default=defaults.seed, metavar="N", help="the stream and the kill delays (default 15)")
    add("--jobs", default=",".join(defaults.jobs), metavar="JOBS",
        help="analytics, etl (the default: both), etl-state (the ETL with etl.silver_dedup=state)")
    add("--max-offsets-per-trigger", type=int, default=defaults.max_offsets_per_trigger, metavar="N",
        help=f"records per micro-batch at most (default {defaults.max_offsets_per_trigger})")
    add("--phases", type=int, default=defaults.phases, metavar="N",
        help=f"the stream goes to the topic in N parts, each processed to the end before the next is sent "
        f"(default {defaults.phases})")
    add("--max-batches-before-kill", type=int, default=defaults.max_batches_before_kill, metavar="N",
        help="a kill comes once the run has begun 0 to N batches of its own, a random part of a batch later "
        f"(default {defaults.max_batches_before_kill})")
    add("--startup-share", type=float, default=defaults.startup_share, metavar="RATIO",
        help=f"share of the kills aimed at start-up instead (default {defaults.startup_share:g})")
    add("--partitions", type=int, default=2, metavar="N", help="partitions of the topic (default 2)")
    add("--bootstrap-servers", metavar="HOST:PORT",
        help="a running broker to use, on which a new topic faults-<id> is made and left (default: start a broker of "
        "its own on free ports, stopped at the end)")
    add("--work-dir", metavar="PATH", help="where tables, checkpoints and logs go (default: a new folder under "
        "data/faults/, removed at the end unless --keep or a failure)")
    add("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args(argv)


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when every table is equal and the reconciliation exact, 1 when anything differs, 2 for a usage
    or environment problem, or when fewer kills than asked were made."""
    args = _arguments(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated run stops its jobs too: they run in their own groups
    options = FaultOptions(
        kills=args.kills, records=args.records, seed=args.seed,
        jobs=tuple(job.strip() for job in args.jobs.split(",") if job.strip()),
        max_offsets_per_trigger=args.max_offsets_per_trigger, phases=args.phases,
        max_batches_before_kill=args.max_batches_before_kill, startup_share=args.startup_share,
    )
    try:
        options.check()
    except ValueError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.work_dir:
        work = Path(args.work_dir).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        (PROJECT_ROOT / "data" / "faults").mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=PROJECT_ROOT / "data" / "faults"))
    broker = None
    report = None
    try:
        bootstrap = args.bootstrap_servers
        if not bootstrap:
            broker = local_broker.LocalBroker(work / "broker", port=free_port(), controller_port=free_port())
            print(local_broker.start(broker), flush=True)
            bootstrap = broker.bootstrap_servers
        topic = f"faults-{uuid.uuid4().hex[:10]}"
        create_topic(bootstrap, topic, partitions=args.partitions, exist_ok=False)
        settings = load_settings(CONFIG, [f"spark.jars_dir={PROJECT_ROOT / 'jars' / 'spark'}"])
        spark = build_spark_session(settings.spark)
        spark.sparkContext.setLogLevel("ERROR")  # the reference runs' Delta warnings would drown the figures
        report = run_faults(options, spark, bootstrap, topic, work, out=lambda line: print(line, flush=True))
    except (ConfigError, EnvironmentProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the job runs were killed", file=sys.stderr)
        return 130
    finally:
        if broker is not None:
            local_broker.stop(broker)
        if report is not None and report.exit_code() == 0 and not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work folder kept: {work}", flush=True)
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main())
