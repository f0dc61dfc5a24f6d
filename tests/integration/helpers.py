"""Helpers for integration tests: producing records and knowing where they landed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

from eventlake.local.producer import producer_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def venv_environment(**extra: str) -> dict[str, str]:
    """This process's environment with the project's .venv active, as a user's shell has it when they run
    ``spark-submit`` (its launcher finds Spark through the venv's python), plus ``extra`` variables."""
    return {
        **os.environ,
        "PATH": f"{PROJECT_ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(PROJECT_ROOT / ".venv"),
        **extra,
    }


@dataclass(frozen=True)
class Delivered:
    """Where a record landed in Kafka."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


def send(bootstrap: str, topic: str, records: list[tuple]) -> list[Delivered]:
    """Produce (key, value) or (key, value, headers) records in order, idempotently, and return where each
    one landed, in that order."""
    producer = Producer(producer_config(bootstrap))
    delivered: list[Delivered | None] = [None] * len(records)
    errors: list[str] = []

    def on_delivery_of(index: int):
        def on_delivery(error, message):
            if error:
                errors.append(str(error))
            else:
                delivered[index] = Delivered(message.key(), message.value(), message.partition(), message.offset())

        return on_delivery

    for index, (key, value, *headers) in enumerate(records):
        headers = headers[0] if headers else None
        producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery_of(index))
    producer.flush(30)
    assert not errors, errors
    assert all(delivered), "some records were not acknowledged"
    return delivered
