"""Exactly once under SIGKILL: the analytics job killed mid-stream at chosen moments and restarted on the same
checkpoints produces the same Delta tables as a run that never failed.

One steady stream goes to a fresh topic while ``spark-submit jobs/analytics.py`` (processing-time trigger,
small batches) runs against it. The job is killed with SIGKILL (the whole process group: JVM and Python
driver) at three moments of the windows query, each observed through its checkpoint and Delta log files:

a) during a batch: ``offsets/N`` written, ``commits/N`` not yet;
b) right after a Delta commit: a new ``_delta_log`` version adding rows to ``analytics_windows`` whose batch
   has no ``commits/N`` yet (the gap is milliseconds wide: up to three tries, the state actually hit is
   recorded);
c) between batches: right after a new ``commits/N``, before ``offsets/N+1``.

After each kill the same command restarts on the same checkpoints; after the last one (and the end of the
stream) an ``availableNow`` run drains the backlog and stops. A reference run that never failed reads the
same topic with its own tables and checkpoints; both must have the same rows, and the killed run's
accounting must reconcile.

The stream has no late events: which events are late depends on micro-batch boundaries, and those differ
between the two runs. Duplicates, out-of-order events and malformed records do not.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from eventlake.local.job_process import JobRun
from eventlake.local.producer import ProducedRecord, generate_records, send_records
from eventlake.ops.reconcile import reconcile
from eventlake.pipeline.analytics import JOB, WINDOWS_TABLE, analytics_queries
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.runtime.config import Settings, StorageSettings
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.runner import run_plan

ANALYTICS_DEAD_LETTERS = job_table("analytics", DEAD_LETTERS_TABLE)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20260101
START_TIME = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
SPAN = timedelta(minutes=40)
RECORD_COUNT = 2400
SENT_BEFORE_START = 900  # batches 0..2 of 300 are waiting when the job starts, so moment a) comes quickly
# The rest goes out while the job runs, in chunks at STREAM_RATE records/s: slow enough to last through the
# kills on a busy machine (2.5 minutes at most), sent as fast as possible once the last kill is done.
STREAM_RATE = 10.0
STREAM_CHUNK = 20
MAX_OFFSETS_PER_TRIGGER = 300
DELTA_COMMIT_ATTEMPTS = 3  # kills aimed at moment b) before settling for the state actually hit

# Bounds, generous for a busy 2-core machine (a restart takes 10 s idle, over a minute when loaded):
# a hang fails the test instead of blocking CI.
WAIT_SECONDS = 180  # for any one moment to come after a (re)start
DRAIN_SECONDS = 300  # for the final availableNow run: start-up and the backlog left by the killed runs
POLL_SECONDS = 0.02
# A Delta commit is followed by the checkpoint commit within milliseconds: watch for it more closely.
FAST_POLL_SECONDS = 0.001

DEAD_LETTER_COLUMNS = [
    "raw_key", "raw_value", "error_code", "error_message", "stage", "job",
    "topic", "partition", "offset", "kafka_timestamp",
]  # everything but ingested_at, the time the row was written

_DELTA_COMMIT = re.compile(r"^(\d{20})\.json$")


def stream_records() -> list[ProducedRecord]:
    """The deterministic stream: duplicates, out-of-order events and malformed records, no late events."""
    return generate_records(
        RECORD_COUNT,
        SEED,
        START_TIME,
        SPAN,
        users=40,
        duplicate_ratio=0.05,
        out_of_order_ratio=0.08,
        late_ratio=0.0,
        malformed_ratio=0.01,
    )


# --- the job as a real process ---------------------------------------------------------------------------


def start_job(name: str, settings: Settings, trigger: str, logs: Path) -> JobRun:
    """``spark-submit jobs/analytics.py`` on ``settings``' topic and storage, in its own process group."""
    storage = settings.storage
    overrides = [
        f"kafka.bootstrap_servers={settings.kafka.bootstrap_servers}",
        f"kafka.topic={settings.kafka.topic}",
        f"kafka.max_offsets_per_trigger={MAX_OFFSETS_PER_TRIGGER}",
        f"storage.tables_root={storage.tables_root}",
        f"storage.checkpoint_root={storage.checkpoint_root}",
        f"analytics.trigger={trigger}",
        # Block manager and RocksDB working files of killed runs stay under tmp_path.
        f"spark.conf.spark.local.dir={logs / 'spark-local'}",
    ]
    return JobRun(name, JOB, overrides, logs)


# --- what the windows query has done, read from its files ------------------------------------------------


@dataclass(frozen=True)
class WindowsProgress:
    """The windows query's progress on disk: batches started (offsets), finished (commits), Delta versions."""

    offsets: frozenset[int]
    commits: frozenset[int]
    delta_versions: frozenset[int]
    delta_batch: int | None  # the batch id the latest Delta version belongs to
    delta_files_added: int  # data files the latest Delta version added (0: the batch emitted no windows)

    @property
    def latest_offsets(self) -> int:
        return max(self.offsets, default=-1)

    @property
    def latest_delta_version(self) -> int:
        return max(self.delta_versions, default=-1)

    def describe(self) -> str:
        """Where the query stood, in the terms of the kill moments."""
        batch = self.latest_offsets
        if batch < 0:
            return "before the first batch"
        if batch in self.commits:
            return f"between batches: batch {batch} committed, batch {batch + 1} not started"
        if self.delta_batch == batch:
            return (
                f"after the Delta commit of batch {batch} (version {self.latest_delta_version}, "
                f"{self.delta_files_added} data files), before its checkpoint commit"
            )
        return f"during batch {batch}: offsets written, no Delta commit yet"

    def moment(self) -> str:
        """a, b or c: the moment this state belongs to."""
        batch = self.latest_offsets
        if batch in self.commits:
            return "c"
        return "b" if self.delta_batch == batch else "a"


class WindowsQueryFiles:
    def __init__(self, settings: Settings):
        self.checkpoint = Path(settings.storage.checkpoint_path(JOB, "windows"))
        self.delta_log = Path(settings.storage.table_path(WINDOWS_TABLE)) / "_delta_log"

    @staticmethod
    def _numbers(folder: Path) -> frozenset[int]:
        # Spark writes "N" through a hidden temporary file and a rename; only the final names count.
        try:
            return frozenset(int(name) for name in os.listdir(folder) if name.isdigit())
        except FileNotFoundError:
            return frozenset()

    def offsets(self) -> frozenset[int]:
        return self._numbers(self.checkpoint / "offsets")

    def commits(self) -> frozenset[int]:
        return self._numbers(self.checkpoint / "commits")

    def delta_versions(self) -> frozenset[int]:
        try:
            names = os.listdir(self.delta_log)
        except FileNotFoundError:
            return frozenset()
        return frozenset(int(match.group(1)) for name in names if (match := _DELTA_COMMIT.match(name)))

    def delta_actions(self, version: int) -> list[dict]:
        """The actions of one Delta version (written whole: Delta renames a complete file into place)."""
        path = self.delta_log / f"{version:020d}.json"
        if version < 0 or not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def batch_of(self, version: int, actions: list[dict], offsets: frozenset[int]) -> int | None:
        """The streaming batch a Delta version belongs to: the version of its ``txn`` action where it has one;
        otherwise the last batch started before it."""
        batch = next((int(action["txn"]["version"]) for action in actions if "txn" in action), None)
        if batch is not None or version < 0:
            return batch
        committed_at = (self.delta_log / f"{version:020d}.json").stat().st_mtime_ns
        started = [n for n in offsets if (self.checkpoint / "offsets" / str(n)).stat().st_mtime_ns <= committed_at]
        return max(started, default=None)

    @staticmethod
    def files_added(actions: list[dict]) -> int:
        return sum("add" in action for action in actions)

    def progress(self) -> WindowsProgress:
        """Read once the run is dead, so that the files no longer change."""
        offsets, versions = self.offsets(), self.delta_versions()
        latest = max(versions, default=-1)
        actions = self.delta_actions(latest)
        return WindowsProgress(
            offsets, self.commits(), versions, self.batch_of(latest, actions, offsets), self.files_added(actions)
        )


def kill_when(run: JobRun, condition: Callable[[], bool], what: str, poll: float = POLL_SECONDS) -> None:
    """Poll ``condition`` until it holds, then SIGKILL the run at once; fail when the run ends by itself
    or the condition does not come within WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if not run.running():
            pytest.fail(f"{run.name}: exited with {run.process.returncode} while waiting for {what}\n{run.logs()}")
        if time.monotonic() > deadline:
            run.kill()
            pytest.fail(f"{run.name}: no {what} within {WAIT_SECONDS} s; killed\n{run.logs()}")
        time.sleep(poll)
    run.kill()


class SteadyStream(threading.Thread):
    """Sends records in chunks at STREAM_RATE, each chunk acknowledged before the next (so in order);
    :meth:`finish` sends the rest at full speed and waits for the end."""

    def __init__(self, records: list[ProducedRecord], bootstrap: str, topic: str):
        super().__init__(name="steady-stream", daemon=True)
        self.records, self.bootstrap, self.topic = records, bootstrap, topic
        self.sent = 0
        self.error: BaseException | None = None
        self._hurry, self._cancelled = threading.Event(), threading.Event()

    def run(self) -> None:
        try:
            while self.sent < len(self.records) and not self._cancelled.is_set():
                if self._hurry.is_set():  # the rest in one go: a producer per chunk costs time
                    chunk, rate = self.records[self.sent :], 0.0
                else:
                    chunk, rate = self.records[self.sent : self.sent + STREAM_CHUNK], STREAM_RATE
                send_records(chunk, self.bootstrap, self.topic, rate=rate)
                self.sent += len(chunk)
        except BaseException as error:  # re-raised in the test's thread by finish()
            self.error = error

    def finish(self) -> None:
        self._hurry.set()
        self.join(timeout=WAIT_SECONDS)
        assert not self.is_alive(), f"the stream did not finish within {WAIT_SECONDS} s"
        if self.error:
            raise AssertionError(f"the stream failed after {self.sent} records: {self.error}") from self.error

    def cancel(self) -> None:
        """Stop after the chunk being sent (when the test fails before the end of the stream)."""
        self._cancelled.set()
        self.join(timeout=30)


# --- the test --------------------------------------------------------------------------------------------


def _with_storage(settings: Settings, root: Path, trigger: str = "availableNow") -> Settings:
    return dataclasses.replace(
        settings,
        storage=StorageSettings(tables_root=str(root / "tables"), checkpoint_root=str(root / "checkpoints")),
        analytics=dataclasses.replace(settings.analytics, trigger=trigger),
    )


def _table(spark, settings: Settings, table: str):
    """The table's rows without the writer and batch that wrote them: batches differ between runs."""
    return spark.read.format("delta").load(settings.storage.table_path(table)).drop("writer_id", "batch_id")


def _assert_equal(actual, expected, report: str) -> None:
    try:
        assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    except AssertionError as difference:
        raise AssertionError(f"{difference}\n\n{report}") from None


def test_killed_and_restarted_job_writes_the_same_tables_as_one_that_never_failed(
    spark, job_settings, kafka_bootstrap, fresh_topic, tmp_path
):
    records = stream_records()
    crashed = _with_storage(job_settings, tmp_path / "crashed")
    reference = _with_storage(job_settings, tmp_path / "reference")
    files = WindowsQueryFiles(crashed)
    logs = tmp_path / "logs"
    stream = SteadyStream(records[SENT_BEFORE_START:], kafka_bootstrap, fresh_topic)
    runs: list[JobRun] = []
    kills: list[str] = []
    began = time.monotonic()

    def start(trigger: str = "1 second") -> JobRun:
        runs.append(start_job(f"run-{len(runs) + 1}", crashed, trigger, logs))
        return runs[-1]

    def record_kill(wanted: str, meaning: str) -> WindowsProgress:
        state = files.progress()
        sent = SENT_BEFORE_START + stream.sent
        kills.append(
            f"kill {wanted}) at {time.monotonic() - began:.0f} s, {sent} of {len(records)} records sent: "
            f"wanted {meaning}; hit {state.moment()}) {state.describe()}"
        )
        return state

    def kill_report() -> str:
        return "kill moments:\n  " + "\n  ".join(kills or ["none"])

    send_records(records[:SENT_BEFORE_START], kafka_bootstrap, fresh_topic)
    stream.start()
    try:
        # a) during a batch: offsets/N (N >= 2) written, commits/N not yet.
        run = start()
        kill_when(
            run,
            lambda: (batch := max(files.offsets(), default=-1)) >= 2 and batch not in files.commits(),
            "batch N >= 2 in progress",
        )
        record_kill("a", "during a batch")

        # b) right after a Delta commit of the windows table, before the checkpoint commit of its batch.
        # The gap is milliseconds wide: when the kill lands after the checkpoint commit, try again.
        # Only a commit that adds rows tells a skipped replay from a repeated one.
        for _attempt in range(DELTA_COMMIT_ATTEMPTS):
            seen = set(files.delta_versions())
            run = start()

            def delta_commit_with_rows(seen: set[int] = seen) -> bool:
                new = sorted(files.delta_versions() - seen)
                seen.update(new)
                return any(files.files_added(files.delta_actions(version)) for version in new)

            kill_when(run, delta_commit_with_rows, "a Delta commit adding rows to analytics_windows",
                      poll=FAST_POLL_SECONDS)
            if record_kill("b", "after a Delta commit, before the checkpoint commit").moment() == "b":
                break

        # c) between batches: a batch of this run committed and the next one not started.
        commits_before = max(files.commits(), default=-1)
        run = start()

        def between_batches() -> bool:
            latest = max(files.offsets(), default=-1)
            return latest > commits_before and latest in files.commits()

        kill_when(run, between_batches, "a new commits/N with no offsets/N+1")
        record_kill("c", "between batches")
        print(kill_report())

        # The rest of the stream, then a last run that drains the backlog and stops; meanwhile the
        # reference, never killed, reads the same topic into its own tables.
        stream.finish()
        final = start(trigger="availableNow")
        run_plan(analytics_queries(spark, reference))
        exit_code = final.wait(timeout=DRAIN_SECONDS)
        assert exit_code == 0, f"the final availableNow run exited with {exit_code}\n{final.logs()}\n{kill_report()}"
        assert "analytics: done" in final.stdout_path.read_text()
        print(f"final run done at {time.monotonic() - began:.0f} s")
    finally:
        stream.cancel()
        for leftover in runs:
            if leftover.running():
                leftover.kill()

    report = kill_report()
    expected_windows = _table(spark, reference, WINDOWS_TABLE)
    actual_windows = _table(spark, crashed, WINDOWS_TABLE)
    expected_dead = _table(spark, reference, ANALYTICS_DEAD_LETTERS).select(DEAD_LETTER_COLUMNS)
    actual_dead = _table(spark, crashed, ANALYTICS_DEAD_LETTERS).select(DEAD_LETTER_COLUMNS)

    twice = actual_windows.groupBy("window_start", "event_type").count().where(F.col("count") > 1).collect()
    assert not twice, f"windows written more than once: {twice}\n{report}"
    twice = actual_dead.groupBy("partition", "offset").count().where(F.col("count") > 1).collect()
    assert not twice, f"records in dead_letters more than once: {twice}\n{report}"

    assert expected_windows.count() > 0, "the reference run wrote no windows: the test proves nothing"
    _assert_equal(actual_windows, expected_windows, report)
    malformed = sum(record.kind.startswith("malformed") for record in records)
    assert expected_dead.count() == malformed, f"the reference run has not every malformed record\n{report}"
    _assert_equal(actual_dead, expected_dead, report)

    # The accounting survived the kills too: every batch of both queries has its figures, once, and they add up.
    figures = reconcile(crashed.storage, spark=spark)
    assert figures.problems() == [], f"{figures.table()}\n{figures.problems()}\n{report}"
    assert figures.read == len(records), f"{figures.table()}\n{report}"
