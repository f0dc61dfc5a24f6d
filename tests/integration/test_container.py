"""The container for real: scripts/container.sh builds the image from nothing with podman (a Debian base from
debootstrap, stand-ins for the Spark and Maven images, then the project's Dockerfile), runs the analytics and
ETL jobs in it against a local broker, and compares their tables with a local run's."""

from __future__ import annotations

import os
import subprocess

import pytest

from .helpers import PROJECT_ROOT


@pytest.mark.slow
@pytest.mark.container
@pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap and podman's image store need root")
def test_the_image_builds_from_nothing_and_its_jobs_write_what_a_local_run_writes(container_images):
    # The images were built from nothing while the tests before this one ran (conftest.py): here they are
    # found built, and the project's image is built again from podman's layer cache.
    for built in ("localhost/eventlake-bookworm-min", "version 4.2.0", "the project's image"):
        assert built in container_images, container_images[-4000:]
    result = subprocess.run(
        ["bash", "scripts/container.sh", "--events", "1000"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=3600,
    )
    shown = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, shown
    assert "version 4.2.0" in result.stdout  # the stand-in's spark-submit
    assert "analytics: done" in result.stdout and "etl: done" in result.stdout  # both jobs, in the container
    [equal] = [line for line in result.stdout.splitlines() if line.startswith("equal row for row: ")]
    for table in ("analytics_events", "analytics_windows", "analytics_dead_letters", "silver_events", "bronze_events"):
        assert table in equal, equal
    assert "reconciled: every record read is accounted for" in result.stdout
