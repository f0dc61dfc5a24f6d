"""Spark's Prometheus endpoint, switched on by config, serving the streaming queries' metrics."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request

import pytest

from eventlake.local.daemons import free_port

from .helpers import PROJECT_ROOT, send
from .test_analytics_job import event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INPUT_RATE = "metrics_eventlake_driver_spark_streaming_analytics_windows_inputRate_total_Value"


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics/prometheus", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def test_the_streaming_queries_are_scraped_while_the_job_runs(job_settings, kafka_bootstrap, fresh_topic, tmp_path):
    send(kafka_bootstrap, fresh_topic, [event(f"e{n}", n, "click", "u1") for n in range(5)])
    port, storage = free_port(), job_settings.storage
    with (tmp_path / "job.log").open("w") as log:
        job = subprocess.Popen(
            [str(PROJECT_ROOT / ".venv" / "bin" / "python"), str(PROJECT_ROOT / "jobs" / "analytics.py"),
             "--set", f"kafka.bootstrap_servers={kafka_bootstrap}", "--set", f"kafka.topic={fresh_topic}",
             "--set", f"storage.tables_root={storage.tables_root}",
             "--set", f"storage.checkpoint_root={storage.checkpoint_root}",
             "--set", "analytics.trigger=2 seconds", "--set", "spark.prometheus=true",
             "--set", f"spark.ui_port={port}"],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline, text = time.monotonic() + 240, ""
        while INPUT_RATE not in text and job.poll() is None and time.monotonic() < deadline:
            time.sleep(2)
            text = scrape(port)
        assert INPUT_RATE in text, (tmp_path / "job.log").read_text()[-3000:]
        for gauge in ("latency", "processingRate_total", "eventTime_watermark", "states_rowsTotal", "states_usedBytes"):
            assert f"metrics_eventlake_driver_spark_streaming_analytics_intake_{gauge}_Value" in text
        assert "metrics_eventlake_driver_spark_streaming_analytics_windows_states_usedBytes_Value" in text
    finally:
        job.send_signal(signal.SIGINT)
        job.wait(timeout=120)
    assert "interrupted: stopping the queries" in (tmp_path / "job.log").read_text()
