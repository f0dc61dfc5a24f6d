"""send_records without a broker: a fake confluent-kafka Producer that acknowledges or fails records as told.
(tests/integration/test_producer_kafka.py sends to the real broker.)"""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from eventlake.local import producer as producer_module
from eventlake.local.producer import ProducedRecord, send_records
from eventlake.runtime.errors import EnvironmentProblem

BOOTSTRAP = "127.0.0.1:1"
TOPIC = "events"


class FakeProducer:
    """Queues what produce() gets; poll() and flush() report each queued record's delivery (in order).

    ``refuse``: values whose produce() raises KafkaException; ``fail``: values whose delivery report carries
    an error; ``full_once``: values whose first produce() raises BufferError (the local queue is full);
    ``unsent``: what flush() returns as still unacknowledged."""

    def __init__(self, refuse=(), fail=(), full_once=(), unsent=0):
        self.refuse, self.fail, self.full_once, self.unsent = set(refuse), set(fail), set(full_once), unsent
        self.config: dict[str, Any] = {}
        self.produced: list[tuple[str, bytes | None, bytes | None, Any]] = []
        self.queued: list[tuple[Any, bytes | None]] = []
        self.polls: list[float] = []

    def __call__(self, config):  # stands in for the Producer class
        self.config = config
        return self

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None):
        if value in self.full_once:
            self.full_once.discard(value)
            raise BufferError("queue full")
        if value in self.refuse:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, f"refused {value!r}"))
        self.produced.append((topic, key, value, headers))
        self.queued.append((on_delivery, value))

    def _deliver(self) -> None:
        queued, self.queued = self.queued, []
        for on_delivery, value in queued:
            error = KafkaError(KafkaError._MSG_TIMED_OUT, f"timed out {value!r}") if value in self.fail else None
            on_delivery(error, None)

    def poll(self, timeout=0):
        self.polls.append(timeout)
        self._deliver()
        return 0

    def flush(self, timeout=None):
        self._deliver()
        return self.unsent


@pytest.fixture
def fake(monkeypatch):
    """Install a FakeProducer (configured by calling the fixture) and a topic check that always passes."""
    monkeypatch.setattr(producer_module, "require_topic", lambda bootstrap, topic, options=None: None)

    def install(**behaviour) -> FakeProducer:
        fake_producer = FakeProducer(**behaviour)
        monkeypatch.setattr(producer_module, "Producer", fake_producer)
        return fake_producer

    return install


def records(count: int, kind: str = "valid") -> list[ProducedRecord]:
    return [ProducedRecord(f"k{number}".encode(), f"v{number}".encode(), kind) for number in range(count)]


def test_records_are_sent_in_order_with_their_keys_and_headers(fake):
    fake_producer = fake()
    header = (("content-type", b"text/x-key-value"),)
    sent = [
        *records(3), ProducedRecord(None, b"kv", "valid", header), ProducedRecord(b"k", None, "malformed:empty_value")
    ]

    report = send_records(sent, BOOTSTRAP, TOPIC)

    assert fake_producer.produced == [
        (TOPIC, b"k0", b"v0", None), (TOPIC, b"k1", b"v1", None), (TOPIC, b"k2", b"v2", None),
        (TOPIC, None, b"kv", [("content-type", b"text/x-key-value")]), (TOPIC, b"k", None, None),
    ]
    assert (report.topic, report.bootstrap_servers, report.sent, report.failed) == (TOPIC, BOOTSTRAP, 5, 0)
    assert report.counts == {"valid": 4, "malformed:empty_value": 1}
    assert report.seconds >= 0
    assert fake_producer.config["enable.idempotence"] is True and fake_producer.config["acks"] == "all"


def test_a_full_local_queue_is_waited_out_and_the_record_sent_once(fake):
    fake_producer = fake(full_once={b"v1"})
    assert send_records(records(3), BOOTSTRAP, TOPIC).sent == 3
    assert [value for _, _, value, _ in fake_producer.produced] == [b"v0", b"v1", b"v2"]
    assert 0.1 in fake_producer.polls  # served deliveries while the queue was full


def test_undelivered_records_raise_one_error_naming_the_count_and_the_first_error(fake):
    # v1's delivery fails (reported at the next poll), v2 is refused at once, v4's delivery fails too.
    fake(fail={b"v1", b"v4"}, refuse={b"v2"})
    with pytest.raises(EnvironmentProblem) as raised:
        send_records(records(5), BOOTSTRAP, TOPIC)
    message = str(raised.value)
    assert message.startswith(f"3 of 5 records could not be delivered to Kafka topic '{TOPIC}' at {BOOTSTRAP}")
    assert "(first error: " in message and "timed out b'v1'" in message
    assert "refused" not in message


def test_records_left_unacknowledged_by_the_flush_count_as_undelivered(fake):
    fake(unsent=2)
    with pytest.raises(EnvironmentProblem, match=r"^2 of 4 records could not be delivered .*"
                       r"\(first error: not acknowledged before the flush ended\)$"):
        send_records(records(4), BOOTSTRAP, TOPIC)


def test_a_rate_paces_the_sending(fake):
    fake()
    started = time.monotonic()
    # 400 records/s: chunks of 20 records, the 40th due 0.1 s after the start.
    send_records(records(40), BOOTSTRAP, TOPIC, rate=400)
    assert time.monotonic() - started >= 0.1


def test_a_negative_rate_is_refused_before_connecting(fake):
    fake_producer = fake()
    with pytest.raises(ValueError, match="rate must be 0"):
        send_records(records(1), BOOTSTRAP, TOPIC, rate=-1)
    assert fake_producer.produced == [] and fake_producer.config == {}
