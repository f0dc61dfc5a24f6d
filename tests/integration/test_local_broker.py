from __future__ import annotations

import pytest

from eventlake.local.broker import LocalBroker, start, status, stop
from eventlake.local.daemons import free_port
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.kafka_admin import create_topic, require_topic

pytestmark = pytest.mark.integration


def test_a_taken_port_is_reported_clearly(kafka_broker, tmp_path):
    second = LocalBroker(tmp_path / "second", port=kafka_broker.port, controller_port=free_port())
    with pytest.raises(EnvironmentProblem, match=f"port {kafka_broker.port} on 127.0.0.1 is already in use"):
        start(second)


def test_status_lists_topics_and_a_stopped_broker_says_so(kafka_broker, fresh_topic, tmp_path):
    up, line = status(kafka_broker)
    assert up and f"{fresh_topic} (2 partitions)" in line
    never_started = LocalBroker(tmp_path / "idle", port=free_port(), controller_port=free_port())
    assert status(never_started) == (False, f"Kafka broker is not running (data in {tmp_path / 'idle'})")
    assert stop(never_started) == "Kafka broker is not running"


def test_topics_are_created_once_and_checked(kafka_bootstrap, fresh_topic):
    assert create_topic(kafka_bootstrap, fresh_topic) is False
    assert require_topic(kafka_bootstrap, fresh_topic) == 2
    with pytest.raises(EnvironmentProblem, match="Kafka topic 'absent' does not exist"):
        require_topic(kafka_bootstrap, "absent")


def test_an_unreachable_broker_is_reported_with_the_fix():
    with pytest.raises(
        EnvironmentProblem, match=r"Kafka broker not reachable at 127\.0\.0\.1:1 .*scripts/kafka\.sh start"
    ):
        require_topic("127.0.0.1:1", "events")
