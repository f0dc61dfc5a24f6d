"""The container files, checked without a Docker engine: scripts/check_container.sh passes on the project's
files and fails on broken copies of them; conf/container.toml loads; the jar filter the image shares
with scripts/setup.sh keeps only what Spark lacks."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eventlake.runtime.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check_container.sh"
# What the checks read: the container files, the pins, and what the Dockerfile copies into the image.
CHECKED = ["Dockerfile", "compose.yaml", ".dockerignore", "pyproject.toml", "README.md", "conf", "jobs", "lib",
           "scripts/drop_jars_spark_ships.py"]


def check(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CHECK), str(folder)], capture_output=True, text=True, timeout=300)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the checked files, to break one at a time."""
    for name in CHECKED:
        source, target = ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(source, target)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is no longer in {path.name}: update this test"
    path.write_text(text.replace(old, new, 1))


def test_the_project_files_pass():
    result = check(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("hadolint Dockerfile", "compose.yaml schema", "cross-file checks"):
        assert f"check_container: {name}: ok" in result.stdout


def test_an_unchanged_copy_passes(copy):
    result = check(copy)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_dockerfile_lint_error_fails(copy):
    edit(copy / "Dockerfile", "apt-get install -y --no-install-recommends", "apt-get install")
    result = check(copy)
    assert result.returncode == 1
    assert "DL3014" in result.stdout  # apt-get install without -y waits for an answer that never comes
    assert "check_container: hadolint Dockerfile: FAILED" in result.stdout


def test_a_compose_key_outside_the_specification_fails(copy):
    edit(copy / "compose.yaml", "healthcheck:", "health_check:")
    result = check(copy)
    assert result.returncode == 1
    assert "'health_check' was unexpected" in result.stdout
    assert "check_container: compose.yaml schema: FAILED" in result.stdout


def test_an_undeclared_service_or_volume_fails(copy):
    # Valid by the schema, wrong all the same: only the cross-file checks see it.
    edit(copy / "compose.yaml", "      producer:\n        condition:", "      produce:\n        condition:")
    edit(copy / "compose.yaml", "  lake:\n", "  lakes:\n")
    result = check(copy)
    assert result.returncode == 1
    assert "check_container: compose.yaml schema: ok" in result.stdout
    assert "service analytics depends on produce, which is not a service" in result.stdout
    assert "service analytics mounts volume lake, which is not declared under volumes" in result.stdout


def test_a_config_or_copy_source_missing_from_the_image_fails(copy):
    (copy / "conf" / "container.toml").unlink()
    edit(copy / ".dockerignore", ".git\n", ".git\nREADME.md\n")
    result = check(copy)
    assert result.returncode == 1
    assert "runs with --config conf/container.toml, which is not in" in result.stdout
    assert "COPY README.md: left out of the build context by .dockerignore" in result.stdout


def test_a_spark_image_other_than_the_pyspark_pin_fails(copy):
    edit(copy / "Dockerfile", "ARG SPARK_IMAGE=spark:4.2.0-", "ARG SPARK_IMAGE=spark:4.1.1-")
    result = check(copy)
    assert result.returncode == 1
    assert "is Spark 4.1.1, but pyproject.toml pins pyspark 4.2.0" in result.stdout


def test_the_container_config_loads_for_the_containers():
    settings = load_settings(ROOT / "conf" / "container.toml")
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.spark.jars_dir == ""  # the image keeps the jars in Spark's own jars folder
    assert settings.storage.tables_root == "/opt/eventlake/data/tables"
    assert settings.storage.checkpoint_root == "/opt/eventlake/data/checkpoints"


def test_the_container_config_is_the_local_one_but_for_broker_jars_and_storage():
    container = load_settings(ROOT / "conf" / "container.toml")
    local = load_settings(ROOT / "conf" / "local.toml")
    assert dataclasses.replace(
        container,
        kafka=dataclasses.replace(container.kafka, bootstrap_servers=local.kafka.bootstrap_servers),
        spark=dataclasses.replace(container.spark, jars_dir=local.spark.jars_dir),
        storage=local.storage,
    ) == local


def test_the_jar_filter_keeps_only_what_spark_lacks(tmp_path):
    jars, spark_jars = tmp_path / "jars", tmp_path / "spark-jars"
    jars.mkdir()
    spark_jars.mkdir()
    for name in ("kafka-clients-3.9.2.jar", "delta-spark_4.2_2.13-4.4.0.jar", "jackson-core-2.15.0.jar",
                 "scala-library-2.13.16.jar", "notes.txt"):
        (jars / name).touch()
    for name in ("jackson-core-2.18.2.jar", "scala-library-2.13.17.jar", "spark-core_2.13-4.2.0.jar"):
        (spark_jars / name).touch()
    script = ROOT / "scripts" / "drop_jars_spark_ships.py"
    subprocess.run([sys.executable, str(script), str(jars), str(spark_jars)], check=True)
    assert sorted(path.name for path in jars.iterdir()) == [
        "delta-spark_4.2_2.13-4.4.0.jar", "kafka-clients-3.9.2.jar", "notes.txt"
    ]
