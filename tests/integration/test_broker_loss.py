"""The broker goes away while the analytics job runs: the job waits it out and nothing is lost or doubled.

The test runs its own broker (the session's serves the other tests), stops it while ``spark-submit
jobs/analytics.py`` runs with a processing-time trigger, checks the job is still alive during the outage,
starts the broker again on the same data and ports, sends the rest of the stream, and drains it. The tables
must equal those of a run that never saw an outage, and every record read must be accounted for.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality

from eventlake.local.broker import LocalBroker, start, stop
from eventlake.local.daemons import free_port
from eventlake.local.producer import generate_records, send_records
from eventlake.ops.reconcile import reconcile
from eventlake.pipeline.analytics import JOB, WINDOWS_TABLE, analytics_queries
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.runtime.config import StorageSettings
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.kafka_admin import create_topic
from eventlake.runtime.runner import run_queries

from .helpers import PROJECT_ROOT, venv_environment

ANALYTICS_DEAD_LETTERS = job_table("analytics", DEAD_LETTERS_TABLE)


# Which writer and batch wrote a row: batches differ between two runs of the same stream.
BATCH_COLUMNS = ("writer_id", "batch_id")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_SECONDS = 15
WAIT_SECONDS = 180


def wait_for(condition, what: str, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.05)


def job_command(broker: LocalBroker, topic: str, storage: StorageSettings, trigger: str) -> list[str]:
    return [
        str(PROJECT_ROOT / ".venv" / "bin" / "spark-submit"), str(PROJECT_ROOT / "jobs" / "analytics.py"),
        "--set", f"kafka.bootstrap_servers={broker.bootstrap_servers}", "--set", f"kafka.topic={topic}",
        "--set", f"storage.tables_root={storage.tables_root}",
        "--set", f"storage.checkpoint_root={storage.checkpoint_root}",
        "--set", f"analytics.trigger={trigger}", "--set", "kafka.max_offsets_per_trigger=200",
    ]


def test_the_job_rides_through_a_broker_outage(spark, job_settings, tmp_path):
    broker = LocalBroker(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    start(broker)
    job = None
    try:
        topic = "outage"
        create_topic(broker.bootstrap_servers, topic, partitions=2)
        records = generate_records(
            1200, 7, datetime(2026, 1, 1, 10, tzinfo=UTC), timedelta(minutes=30),
            duplicate_ratio=0.05, out_of_order_ratio=0.05, malformed_ratio=0.03,
        )
        send_records(records[:600], broker.bootstrap_servers, topic)
        storage = dataclasses.replace(
            job_settings.storage, tables_root=str(tmp_path / "tables"), checkpoint_root=str(tmp_path / "checkpoints")
        )
        with (tmp_path / "job.log").open("w") as log:
            job = subprocess.Popen(
                job_command(broker, topic, storage, "1 second"), cwd=PROJECT_ROOT, env=venv_environment(),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        commits = Path(storage.checkpoint_path(JOB, "windows")) / "commits"
        wait_for(lambda: (commits / "1").exists() or job.poll() is not None, "the job's second batch")
        assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]

        stop(broker)
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        wait_for(lambda: time.monotonic() > outage_ends or job.poll() is not None, "the outage", OUTAGE_SECONDS + 5)
        assert job.poll() is None, "the job stopped during the outage:\n" + (tmp_path / "job.log").read_text()[-3000:]

        start(broker)
        send_records(records[600:], broker.bootstrap_servers, topic)
        intake_commits = Path(storage.checkpoint_path(JOB, "intake")) / "commits"
        # Both queries catch up with the whole stream (1200 records in batches of at most 200 per query).
        wait_for(lambda: len(list(commits.glob("[0-9]*"))) >= 6 and len(list(intake_commits.glob("[0-9]*"))) >= 6,
                 "the job to catch up after the outage")
        assert job.poll() is None
        os.killpg(job.pid, signal.SIGTERM)
        job.wait(60)

        drained = subprocess.run(
            job_command(broker, topic, storage, "availableNow"), cwd=PROJECT_ROOT, env=venv_environment(),
            capture_output=True, text=True, timeout=WAIT_SECONDS,
        )
        assert drained.returncode == 0, drained.stdout + drained.stderr

        reference_settings = dataclasses.replace(
            job_settings,
            kafka=dataclasses.replace(job_settings.kafka, bootstrap_servers=broker.bootstrap_servers, topic=topic),
            storage=dataclasses.replace(
                storage, tables_root=str(tmp_path / "reference"), checkpoint_root=str(tmp_path / "reference-cp")
            ),
        )
        run_queries(spark, reference_settings, JOB, analytics_queries)
    finally:
        if job is not None and job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        stop(broker)

    def table(root: str, name: str, *drop: str):
        return spark.read.format("delta").load(f"{root}/{name}").drop(*drop)

    assert_df_equality(
        table(storage.tables_root, WINDOWS_TABLE, *BATCH_COLUMNS),
        table(reference_settings.storage.tables_root, WINDOWS_TABLE, *BATCH_COLUMNS),
        ignore_row_order=True, ignore_nullable=True,
    )
    assert_df_equality(
        table(storage.tables_root, ANALYTICS_DEAD_LETTERS, "ingested_at", *BATCH_COLUMNS),
        table(reference_settings.storage.tables_root, ANALYTICS_DEAD_LETTERS, "ingested_at", *BATCH_COLUMNS),
        ignore_row_order=True, ignore_nullable=True,
    )
    # The intake accounts for every record. (The killed run may not have recorded the metrics of its last
    # batches, so the windows' half of the reconciliation is not asserted here.)
    figures = reconcile(storage, spark=spark)
    assert figures.read == figures.valid + figures.dead_letters == 1200
