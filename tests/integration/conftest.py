"""Fixtures for integration tests: one real Kafka broker per test run, a fresh topic per test."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from eventlake.local.broker import LocalBroker, start, stop
from eventlake.local.daemons import free_port
from eventlake.runtime.config import Settings, load_settings
from eventlake.runtime.kafka_admin import create_topic

from .helpers import PROJECT_ROOT


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> LocalBroker:
    """A single-node KRaft broker on free loopback ports, started once and stopped after the run."""
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port())
    start(broker)
    yield broker
    stop(broker)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker) -> str:
    return kafka_broker.bootstrap_servers


@pytest.fixture
def fresh_topic(kafka_bootstrap) -> str:
    """A new, empty topic with 2 partitions, for this test only."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    create_topic(kafka_bootstrap, name, partitions=2, exist_ok=False)
    return name


@pytest.fixture
def job_settings(kafka_bootstrap, fresh_topic, tmp_path) -> Settings:
    """conf/local.toml pointed at the test broker and topic, with tables and checkpoints under tmp_path."""
    settings = load_settings(
        PROJECT_ROOT / "conf" / "local.toml",
        [
            f"kafka.bootstrap_servers={kafka_bootstrap}",
            f"kafka.topic={fresh_topic}",
            f"storage.tables_root={tmp_path / 'tables'}",
            f"storage.checkpoint_root={tmp_path / 'checkpoints'}",
        ],
    )
    jars = dataclasses.replace(settings.spark, jars_dir=str(PROJECT_ROOT / "jars" / "spark"))
    return dataclasses.replace(settings, spark=jars)


# The container test's images (scripts/container.sh --build-only: minutes of downloads and podman builds,
# mostly waiting) are built in the background from the start of the run, while the other tests run. With
# several workers (pytest-xdist) the first to claim the run's build folder starts it, and whichever worker
# runs the container test waits for the exit code the build leaves there.
CONTAINER_TEST = "tests/integration/test_container.py"
CONTAINER_BUILDS = PROJECT_ROOT / "data" / "container"
RUN_ID = pytest.StashKey[str]()


def _run_id(config: pytest.Config) -> str:
    """One id for the whole test run, the same in every worker."""
    if RUN_ID not in config.stash:
        workerinput = getattr(config, "workerinput", None)
        config.stash[RUN_ID] = workerinput["testrunuid"] if workerinput else uuid.uuid4().hex
    return config.stash[RUN_ID]


def _build_folder(config: pytest.Config) -> Path:
    return CONTAINER_BUILDS / f"build-during-tests-{_run_id(config)}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the container test last: its images build in the background for as long as possible."""
    items.sort(key=lambda item: item.nodeid.startswith(CONTAINER_TEST))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start building the container's images when the container test is among the tests to run."""
    selected = any(item.nodeid.startswith(CONTAINER_TEST) for item in session.items)
    if os.geteuid() == 0 and selected and not session.config.option.collectonly:
        _start_container_build(_build_folder(session.config))


def _start_container_build(folder: Path) -> None:
    """Build the images in the background, once per run: the first caller to make ``folder`` starts it."""
    CONTAINER_BUILDS.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir()
    except FileExistsError:
        return
    script = 'bash scripts/container.sh --build-only > "$0/build.log" 2>&1; echo $? > "$0/rc"'
    build = subprocess.Popen(
        ["bash", "-c", script, str(folder)], cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    (folder / "pid").write_text(str(build.pid))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop a build still running when the whole run ends (the controller's end, with several workers)."""
    if hasattr(session.config, "workerinput"):
        return
    folder = _build_folder(session.config)
    if (folder / "pid").exists() and not (folder / "rc").exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int((folder / "pid").read_text()), signal.SIGTERM)


@pytest.fixture
def container_images(request) -> str:
    """The container's images, built: waits for the build started with the run (or builds them now), and
    returns what the build printed. Fails the test when the build failed."""
    folder = _build_folder(request.config)
    _start_container_build(folder)
    deadline = time.monotonic() + 3600
    while not (folder / "rc").exists() and time.monotonic() < deadline:
        time.sleep(2)  # a process of another worker: nothing to wait on but its exit code's file
    printed = (folder / "build.log").read_text()
    assert (folder / "rc").exists(), "the container build did not end within an hour:\n" + printed[-4000:]
    assert (folder / "rc").read_text().strip() == "0", printed[-4000:]
    return printed
