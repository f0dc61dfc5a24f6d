"""Exactly once under SIGKILL: the analytics job killed mid-stream at chosen moments and restarted on the same
checkpoints produces the same Delta tables as a run that never failed.

One steady stream goes to a fresh topic while ``spark-submit jobs/analytics.py`` (processing-time trigger,
small batches) runs against it. The job is killed with SIGKILL (the whole process group: JVM and Python
driver) at three moments of the windows query, each observed through its checkpoint and Delta log files:

a) during a batch: ``offsets/N`` written, ``commits/N`` not yet;
b) right after a Delta commit: a new ``_delta_log`` version of ``analytics_windows`` whose batch has no
   ``commits/N`` yet (the window is a few milliseconds wide: the state actually hit is recorded);
c) between batches: right after a new ``commits/N``, before ``offsets/N+1``.

After each kill the same command restarts on the same checkpoints; after the last one (and the end of the
stream) an ``availableNow`` run drains the backlog and stops. A reference run that never failed reads the
same topic with its own tables and checkpoints; both must have the same rows.

The stream has no late events: which events are late depends on micro-batch boundaries, and those differ
between the two runs. Duplicates, out-of-order events and malformed records do not.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from eventlake.analytics import JOB, WINDOWS_TABLE, start_analytics_queries
from eventlake.config import Settings, StorageSettings
from eventlake.dead_letters import DEAD_LETTERS_TABLE
from eventlake.producer import ProducedRecord, generate_records, send_records
from eventlake.runner import await_queries

from .helpers import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20260101
START_TIME = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
SPAN = timedelta(minutes=40)
RECORD_COUNT = 2400
SENT_BEFORE_START = 900  # batches 0..2 of 300 are waiting when the job starts, so moment a) comes quickly
STREAM_RATE = 40.0  # records/s for the rest: about 40 s of steady stream, while the three kills happen
MAX_OFFSETS_PER_TRIGGER = 300

WAIT_SECONDS = 120  # for any one thing to happen; a hang fails the test instead of blocking CI
DRAIN_SECONDS = 240  # for the final availableNow run: start-up and the backlog left by the killed runs
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


def _venv_environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PATH"] = f"{PROJECT_ROOT / '.venv' / 'bin'}:{environment.get('PATH', '')}"
    environment["VIRTUAL_ENV"] = str(PROJECT_ROOT / ".venv")
    return environment


class JobRun:
    """One ``spark-submit jobs/analytics.py`` in its own process group, stdout and stderr in files."""

    def __init__(self, name: str, settings: Settings, trigger: str, logs: Path):
        logs.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.stdout_path, self.stderr_path = logs / f"{name}.stdout", logs / f"{name}.stderr"
        storage = settings.storage
        command = [
            str(PROJECT_ROOT / ".venv" / "bin" / "spark-submit"),
            str(PROJECT_ROOT / "jobs" / "analytics.py"),
            "--set", f"kafka.bootstrap_servers={settings.kafka.bootstrap_servers}",
            "--set", f"kafka.topic={settings.kafka.topic}",
            "--set", f"kafka.max_offsets_per_trigger={MAX_OFFSETS_PER_TRIGGER}",
            "--set", f"storage.tables_root={storage.tables_root}",
            "--set", f"storage.checkpoint_root={storage.checkpoint_root}",
            "--set", f"analytics.trigger={trigger}",
            # Block manager and RocksDB working files of killed runs stay under tmp_path.
            "--set", f"spark.conf.spark.local.dir={logs / 'spark-local'}",
        ]
        with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=_venv_environment(), stdout=stdout, stderr=stderr,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (the JVM and the Python driver it started) and reap the JVM."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name}: still running after {timeout:.0f} s; killed\n{self.logs()}")

    def logs(self, lines: int = 40) -> str:
        def tail(path: Path) -> str:
            text = path.read_text(errors="replace") if path.exists() else ""
            return "\n".join(text.splitlines()[-lines:])

        return f"--- {self.stdout_path}\n{tail(self.stdout_path)}\n--- {self.stderr_path}\n{tail(self.stderr_path)}"


# --- what the windows query has done, read from its files ------------------------------------------------


@dataclass(frozen=True)
class WindowsProgress:
    """The windows query's progress on disk: batches started (offsets), finished (commits), Delta versions."""

    offsets: frozenset[int]
    commits: frozenset[int]
    delta_versions: frozenset[int]
    delta_batch: int | None  # the batch id the latest Delta version committed (its txn version)

    @property
    def latest_offsets(self) -> int:
        return max(self.offsets, default=-1)

    @property
    def latest_commit(self) -> int:
        return max(self.commits, default=-1)

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
                f"after the Delta commit of batch {batch} (version {self.latest_delta_version}), "
                "before its checkpoint commit"
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

    def batch_of_delta_version(self, version: int) -> int | None:
        """The streaming batch id a Delta version committed: the version of its ``txn`` action."""
        path = self.delta_log / f"{version:020d}.json"
        if version < 0 or not path.exists():
            return None
        for line in path.read_text().splitlines():
            action = json.loads(line)
            if "txn" in action:
                return int(action["txn"]["version"])
        return None

    def progress(self) -> WindowsProgress:
        versions = self.delta_versions()
        return WindowsProgress(
            self.offsets(), self.commits(), versions, self.batch_of_delta_version(max(versions, default=-1))
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


# --- the test --------------------------------------------------------------------------------------------


def _with_storage(settings: Settings, root: Path, trigger: str = "availableNow") -> Settings:
    return dataclasses.replace(
        settings,
        storage=StorageSettings(tables_root=str(root / "tables"), checkpoint_root=str(root / "checkpoints")),
        analytics=dataclasses.replace(settings.analytics, trigger=trigger),
    )


def _table(spark, settings: Settings, table: str):
    return spark.read.format("delta").load(settings.storage.table_path(table))


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
    kills: list[tuple[str, str, WindowsProgress, float]] = []  # wanted moment, its meaning, state at death, when
    began = time.monotonic()

    def record_kill(wanted: str, meaning: str) -> None:
        kills.append((wanted, meaning, files.progress(), time.monotonic() - began))

    def kill_report() -> str:
        lines = [
            f"kill {wanted}) at {seconds:.1f} s, wanted {meaning}; hit {state.moment()}): {state.describe()}"
            for wanted, meaning, state, seconds in kills
        ]
        return "kill moments:\n  " + "\n  ".join(lines or ["none"])

    send_records(records[:SENT_BEFORE_START], kafka_bootstrap, fresh_topic)
    stream_errors: list[BaseException] = []

    def stream_the_rest() -> None:
        try:
            send_records(records[SENT_BEFORE_START:], kafka_bootstrap, fresh_topic, rate=STREAM_RATE)
        except BaseException as error:  # reported by the test thread
            stream_errors.append(error)

    stream = threading.Thread(target=stream_the_rest, name="steady-stream", daemon=True)
    stream.start()
    runs: list[JobRun] = []

    def start(name: str, trigger: str = "1 second") -> JobRun:
        runs.append(JobRun(name, crashed, trigger, logs))
        return runs[-1]

    try:
        # a) during a batch: offsets/N (N >= 2) written, commits/N not yet.
        run = start("run-1")
        kill_when(
            run,
            lambda: (batch := max(files.offsets(), default=-1)) >= 2 and batch not in files.commits(),
            "batch N >= 2 in progress",
        )
        record_kill("a", "during a batch")

        # b) right after a Delta commit of the windows table, before the checkpoint commit of its batch.
        versions_before = files.delta_versions()
        run = start("run-2")
        kill_when(
            run,
            lambda: bool(files.delta_versions() - versions_before),
            "new Delta version of analytics_windows",
            poll=FAST_POLL_SECONDS,
        )
        record_kill("b", "after a Delta commit, before the checkpoint commit")

        # c) between batches: a batch of this run committed and the next one not started.
        commits_before = max(files.commits(), default=-1)
        run = start("run-3")

        def between_batches() -> bool:
            offsets, commits = files.offsets(), files.commits()
            latest = max(offsets, default=-1)
            return latest > commits_before and latest in commits

        kill_when(run, between_batches, "a new commits/N with no offsets/N+1")
        record_kill("c", "between batches")
        print(kill_report())

        # The end of the stream, then a last run that drains the backlog and stops.
        stream.join(timeout=WAIT_SECONDS)
        assert not stream.is_alive(), "the steady stream did not finish sending"
        assert not stream_errors, f"the steady stream failed: {stream_errors[0]}"
        run = start("final", trigger="availableNow")
        exit_code = run.wait(timeout=DRAIN_SECONDS)
        assert exit_code == 0, f"the final availableNow run exited with {exit_code}\n{run.logs()}\n{kill_report()}"
        assert "analytics: done" in run.stdout_path.read_text()
        print(f"final run done at {time.monotonic() - began:.1f} s")
    finally:
        for leftover in runs:
            if leftover.running():
                leftover.kill()

    # The reference: the same topic, its own tables and checkpoints, never killed.
    await_queries(start_analytics_queries(spark, reference))

    report = kill_report()
    expected_windows = _table(spark, reference, WINDOWS_TABLE)
    actual_windows = _table(spark, crashed, WINDOWS_TABLE)
    assert expected_windows.count() > 0, "the reference run wrote no windows: the test proves nothing"
    _assert_equal(actual_windows, expected_windows, report)

    malformed = sum(record.kind.startswith("malformed") for record in records)
    expected_dead = _table(spark, reference, DEAD_LETTERS_TABLE).select(DEAD_LETTER_COLUMNS)
    actual_dead = _table(spark, crashed, DEAD_LETTERS_TABLE).select(DEAD_LETTER_COLUMNS)
    assert expected_dead.count() == malformed, report
    _assert_equal(actual_dead, expected_dead, report)

    twice = actual_dead.groupBy("partition", "offset").count().where(F.col("count") > 1).collect()
    assert not twice, f"records in dead_letters more than once: {twice}\n{report}"
    twice = actual_windows.groupBy("window_start", "event_type").count().where(F.col("count") > 1).collect()
    assert not twice, f"windows written more than once: {twice}\n{report}"
