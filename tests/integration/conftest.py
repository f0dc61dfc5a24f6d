"""Fixtures for integration tests: one real Kafka broker per test run, a fresh topic per test."""

from __future__ import annotations

import dataclasses
import uuid

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
