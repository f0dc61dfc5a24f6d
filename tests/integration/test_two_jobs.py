"""Both jobs at once on one table set, each in its own ``spark-submit`` (its own JVM), as a user runs them.

Each job writes its own dead letters, intake counts and metrics (``analytics_dead_letters``,
``etl_dead_letters``, ...): two JVMs committing to one Delta table on local disk can overwrite each other's
commit. Every row is there once, and the common names (``dead_letters``...) show both jobs' rows.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from pyspark.sql import functions as F

from eventlake.ops.lake import Lake
from eventlake.ops.query import register_tables
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.pipeline.intake import INTAKE_TABLE
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.tables_root import require_tables_of_this_version

from .helpers import PROJECT_ROOT, send, venv_environment

pytestmark = pytest.mark.integration


def record(number: int) -> tuple[bytes, bytes]:
    document = {
        "event_id": f"e{number}", "timestamp": f"2026-01-01T10:{number % 60:02d}:00Z", "source": "web",
        "schema_version": "1", "type": "click", "user_id": f"u{number % 7}", "data": {"page": "/home"},
    }
    return f"u{number % 7}".encode(), json.dumps(document).encode()


def test_both_jobs_at_once_write_every_row_once(spark, job_settings, kafka_bootstrap, fresh_topic):
    malformed = [(None, f"not json {number}".encode()) for number in range(7)]
    delivered = send(kafka_bootstrap, fresh_topic, [record(number) for number in range(60)] + malformed)
    storage = job_settings.storage

    def spark_submit(job: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                str(PROJECT_ROOT / ".venv" / "bin" / "spark-submit"), str(PROJECT_ROOT / "jobs" / f"{job}.py"),
                "--set", f"kafka.bootstrap_servers={kafka_bootstrap}", "--set", f"kafka.topic={fresh_topic}",
                "--set", f"storage.tables_root={storage.tables_root}",
                "--set", f"storage.checkpoint_root={storage.checkpoint_root}",
                "--set", "kafka.max_offsets_per_trigger=20",  # several commits each, interleaved
            ],
            cwd=PROJECT_ROOT, env=venv_environment(), capture_output=True, text=True, timeout=600,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(("analytics", "etl"), pool.map(spark_submit, ("analytics", "etl")), strict=True))
    for job, result in results.items():
        assert result.returncode == 0, f"{job}:\n{result.stdout}\n{result.stderr}"

    bad = sorted((record.partition, record.offset) for record in delivered[60:])
    for job in ("analytics", "etl"):
        dead = spark.read.format("delta").load(storage.table_path(job_table(job, DEAD_LETTERS_TABLE)))
        assert sorted((row.partition, row.offset) for row in dead.collect()) == bad, job
        intake = spark.read.format("delta").load(storage.table_path(job_table(job, INTAKE_TABLE)))
        assert intake.agg(F.sum("records")).first()[0] == len(delivered), job
        assert intake.groupBy("writer_id", "batch_id", "partition").count().where("count > 1").isEmpty(), job

    # The common names hold every job's rows: what scripts/query.sh and the demo query.
    register_tables(spark, storage.tables_root)
    by_job = {row.job: row["count"] for row in spark.table(DEAD_LETTERS_TABLE).groupBy("job").count().collect()}
    assert by_job == {"analytics": len(bad), "etl": len(bad)}
    # And read without a JVM (delta-rs + DuckDB), the way scripts/query.sh reads them by default.
    lake_rows = Lake(storage.tables_root).rows(f"SELECT job, count(*) FROM {DEAD_LETTERS_TABLE} GROUP BY job")
    assert dict(lake_rows) == by_job


def test_a_table_set_shared_by_an_earlier_version_stops_the_job(spark, tmp_path):
    spark.range(1).write.format("delta").save(str(tmp_path / DEAD_LETTERS_TABLE))
    with pytest.raises(EnvironmentProblem, match=r"eventlake shared between the jobs.*\(etl_dead_letters\)"):
        require_tables_of_this_version(spark, str(tmp_path), "etl")
    require_tables_of_this_version(spark, str(tmp_path / "empty"), "etl")  # a new root is fine
