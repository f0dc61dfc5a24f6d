"""The analytics job on a real Spark standalone cluster: a master and two workers on 127.0.0.1, the package
shipped with ``--py-files`` to nodes whose Python has pyspark but not eventlake, submitted as the README
shows. It must write the same Delta rows as the job in local mode."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import sysconfig
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality

from eventlake.local.cluster import LocalCluster, master_state, start, status, stop
from eventlake.local.daemons import free_port
from eventlake.local.producer import generate_records, send_records
from eventlake.ops.reconcile import reconcile
from eventlake.pipeline.analytics import WINDOWS_TABLE, analytics_queries
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.runtime.config import Settings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.runner import run_queries

from .helpers import PROJECT_ROOT, venv_environment

ANALYTICS_DEAD_LETTERS = job_table("analytics", DEAD_LETTERS_TABLE)

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

SPARK_SUBMIT = PROJECT_ROOT / ".venv" / "bin" / "spark-submit"
# Everything a dead letter holds except the time it was written.
DEAD_LETTER_COLUMNS = [
    "raw_key", "raw_value", "error_code", "error_message", "stage", "job", "topic", "partition", "offset"
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), port=free_port(), webui_port=free_port())
    start(cluster)
    yield cluster
    stop(cluster)


@pytest.fixture(scope="module")
def node_python(tmp_path_factory) -> str:
    """A Python like a cluster node's: this one's libraries (pyspark, delta, confluent-kafka) without eventlake.

    A .pth line adds the site-packages folder to sys.path without reading the .pth files in it, so the
    editable install of eventlake (one of those) stays out."""
    folder = tmp_path_factory.mktemp("node-python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    node_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    Path(node_site, "libraries.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    check = subprocess.run(
        [str(python), "-c", "import pyspark, delta, confluent_kafka, eventlake"], capture_output=True, text=True
    )
    assert "No module named 'eventlake'" in check.stderr, check.stderr
    return str(python)


def produce(bootstrap: str, topic: str) -> None:
    """A seeded stream with every kind of trouble: duplicates, late and out-of-order events, malformed
    records, key=value lines and contract version 2."""
    records = generate_records(
        400, seed=3, start_time=datetime(2026, 1, 1, 10), span=timedelta(minutes=40), duplicate_ratio=0.05,
        out_of_order_ratio=0.05, late_ratio=0.02, malformed_ratio=0.03, kv_ratio=0.1, v2_ratio=0.2,
    )
    send_records(records, bootstrap, topic)


def submit_to(cluster: LocalCluster, node_python: str, package: Path, settings: Settings):
    """``spark-submit`` of jobs/analytics.py to the cluster, as the README's cluster section writes it."""
    return subprocess.run(
        [
            str(SPARK_SUBMIT), "--master", cluster.master_url,
            "--py-files", str(package),
            "--conf", f"spark.pyspark.python={node_python}",
            "--conf", f"spark.pyspark.driver.python={node_python}",
            str(PROJECT_ROOT / "jobs" / "analytics.py"),
            "--set", f"kafka.bootstrap_servers={settings.kafka.bootstrap_servers}",
            "--set", f"kafka.topic={settings.kafka.topic}",
            "--set", f"storage.tables_root={settings.storage.tables_root}",
            "--set", f"storage.checkpoint_root={settings.storage.checkpoint_root}",
        ],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900,
        env=venv_environment(SPARK_LOCAL_IP="127.0.0.1"),
    )


def test_the_job_on_a_standalone_cluster_writes_what_it_writes_in_local_mode(
    spark, cluster, node_python, job_settings, kafka_bootstrap, fresh_topic, tmp_path
):
    produce(kafka_bootstrap, fresh_topic)
    package = tmp_path / "eventlake.zip"
    subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "package.sh"), str(package)], check=True, capture_output=True
    )

    on_cluster = dataclasses.replace(
        job_settings,
        storage=dataclasses.replace(
            job_settings.storage,
            tables_root=str(tmp_path / "on-cluster" / "tables"),
            checkpoint_root=str(tmp_path / "on-cluster" / "checkpoints"),
        ),
    )
    run_queries(spark, job_settings, "analytics", analytics_queries)
    result = submit_to(cluster, node_python, package, on_cluster)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "analytics: done" in result.stdout

    # It ran on the cluster: one application, with an executor on each worker.
    finished = [app for app in master_state(cluster)["completedapps"] if app["name"] == "eventlake"]
    assert len(finished) == 1 and finished[0]["cores"] == 2, finished
    for worker in cluster.names[1:]:
        assert list(cluster.work_dir(worker).glob(f"{finished[0]['id']}/*/stderr")), f"no executor ran on {worker}"

    def table(settings, name):
        return spark.read.format("delta").load(settings.storage.table_path(name)).drop("writer_id", "batch_id")

    local_windows = table(job_settings, WINDOWS_TABLE)
    assert local_windows.count() > 5
    assert_df_equality(table(on_cluster, WINDOWS_TABLE), local_windows, ignore_row_order=True)
    local_dead = table(job_settings, ANALYTICS_DEAD_LETTERS).select(DEAD_LETTER_COLUMNS)
    assert local_dead.count() > 0
    assert_df_equality(
        table(on_cluster, ANALYTICS_DEAD_LETTERS).select(DEAD_LETTER_COLUMNS), local_dead, ignore_row_order=True
    )
    local_figures = reconcile(job_settings.storage, spark=spark)
    cluster_figures = reconcile(on_cluster.storage, spark=spark)
    assert cluster_figures.problems() == []
    assert (cluster_figures.read, cluster_figures.valid, cluster_figures.counted, cluster_figures.duplicates) == (
        local_figures.read, local_figures.valid, local_figures.counted, local_figures.duplicates
    )
    assert cluster_figures.read == 400


def test_a_taken_port_and_a_cluster_that_is_not_there_are_reported_clearly(cluster, tmp_path):
    second = LocalCluster(tmp_path / "second", port=cluster.port, webui_port=free_port())
    with pytest.raises(EnvironmentProblem, match=f"port {cluster.port} on 127.0.0.1 is already in use"):
        start(second)
    up, line = status(LocalCluster(tmp_path / "idle", port=free_port(), webui_port=free_port()))
    assert not up and "Spark cluster is not running" in line
    up, line = status(cluster)
    assert up and "2 workers, 2 cores" in line
