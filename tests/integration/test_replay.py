"""Replaying dead letters against the real broker and Delta tables: each dead letter is sent once, across a crash
between sending and marking, and the replay's figures add up with the analytics job's."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from confluent_kafka import Consumer, TopicPartition
from deltalake import DeltaTable, write_deltalake

from eventlake.ops.replay import (
    RELEASED,
    REPLAY_FIX_HEADER,
    REPLAY_OF_HEADER,
    REPLAY_RUN_HEADER,
    REPLAYS_TABLE,
    SENDING,
    SENT,
    Selection,
    read_replays,
    replay,
    replay_figures,
)
from eventlake.pipeline.analytics import analytics_queries
from eventlake.runtime.runner import run_queries

from .helpers import PROJECT_ROOT, send

pytestmark = pytest.mark.integration

ANALYTICS = Selection(jobs=("analytics",))


class CrashBeforeMarking(RuntimeError):
    """Stands for the replay process dying after Kafka acknowledged its records, before it marked them."""


def crash() -> None:
    raise CrashBeforeMarking


def document(event_id: str, minute: int, **changes) -> dict:
    event = {
        "event_id": event_id,
        "timestamp": f"2026-01-01T10:{minute:02d}:00Z",
        "source": "web",
        "schema_version": "1",
        "type": "click",
        "data": {"user_id": "u1"},
    }
    event.update(changes)
    return {name: value for name, value in event.items() if value is not None}


def record(event: dict) -> tuple[bytes, bytes]:
    return event["data"]["user_id"].encode(), json.dumps(event).encode()


def read_topic(bootstrap: str, topic: str) -> list:
    """Every record of ``topic``, as confluent-kafka messages, in partition and offset order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "enable.partition.eof": True})
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        remaining = {p for p in partitions if ends[p] > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in remaining])
        messages = []
        while remaining:
            message = consumer.poll(10)
            assert message is not None, f"no record from {topic} in 10 s"
            if message.error():
                remaining.discard(message.partition())
                continue
            messages.append(message)
            if message.offset() + 1 >= ends[message.partition()]:
                remaining.discard(message.partition())
    finally:
        consumer.close()
    return sorted(messages, key=lambda m: (m.partition(), m.offset()))


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in sorted(partitions)}
    finally:
        consumer.close()


def replayed_copies(bootstrap: str, topic: str) -> dict[str, dict[str, bytes]]:
    """The records of ``topic`` a replay sent: their ``eventlake-replay-of`` -> all their headers."""
    copies = {}
    for message in read_topic(bootstrap, topic):
        headers = dict(message.headers() or ())
        if REPLAY_OF_HEADER in headers:
            key = headers[REPLAY_OF_HEADER].decode()
            assert key not in copies, f"{key} was replayed twice"
            copies[key] = {**headers, "at": f"{topic}/{message.partition()}/{message.offset()}".encode()}
    return copies


def table_rows(settings, table: str) -> list[dict]:
    reader = pa.RecordBatchReader.from_stream(DeltaTable(settings.storage.table_path(table)).scan())
    return reader.read_all().to_pylist()


def test_replay_with_a_fix_sends_each_dead_letter_once_across_a_crash_and_the_figures_add_up(
    spark, job_settings, kafka_bootstrap, fresh_topic
):
    fixable = [document("f1", 1, schema_version=None), document("f2", 2, schema_version=None)]
    fixed_but_still_bad = document("f3", 3, schema_version=None, timestamp="yesterday")
    sent = send(
        kafka_bootstrap,
        fresh_topic,
        [
            record(document("v1", 1)),
            record(document("v2", 2)),
            *(record(event) for event in fixable),
            record(fixed_but_still_bad),
            record(document(None, 4)),  # MISSING_FIELD without event_id: fill_schema_version cannot fix it
            (b"u1", b"not json"),
        ],
    )
    run_queries(spark, job_settings, "analytics", analytics_queries)
    originals = {f"{fresh_topic}/{d.partition}/{d.offset}": d for d in sent[2:5]}

    dry = replay(job_settings, ANALYTICS, fix_name="fill_schema_version", dry_run=True, out=lambda _: None)
    assert (dry.selected, dry.unfixable, len(dry.records), dry.sent) == (4, 1, 3, 0)
    before = end_offsets(kafka_bootstrap, fresh_topic)
    assert sum(before.values()) == 7

    # The first run dies once Kafka has acknowledged its three records, before marking them.
    started = time.monotonic()
    with pytest.raises(CrashBeforeMarking):
        replay(job_settings, ANALYTICS, fix_name="fill_schema_version", before_marking=crash, out=lambda _: None)
    sending_seconds = time.monotonic() - started
    after_crash = end_offsets(kafka_bootstrap, fresh_topic)
    assert sum(after_crash.values()) == 10
    assert {row["state"] for row in read_replays(job_settings.storage.tables_root).to_pylist()} == {SENDING}

    # The next run finds the crashed run's records in the topic, marks them where they are, and sends nothing.
    started = time.monotonic()
    lines: list[str] = []
    second = replay(job_settings, ANALYTICS, fix_name="fill_schema_version", out=lines.append)
    second_seconds = time.monotonic() - started
    assert (second.recovered, second.released, second.selected, second.unfixable, second.sent) == (3, 0, 1, 1, 0), lines
    assert end_offsets(kafka_bootstrap, fresh_topic) == after_crash

    copies = replayed_copies(kafka_bootstrap, fresh_topic)
    assert sorted(copies) == sorted(originals)
    assert {headers[REPLAY_FIX_HEADER] for headers in copies.values()} == {b"fill_schema_version"}
    assert len({headers[REPLAY_RUN_HEADER] for headers in copies.values()}) == 1

    replays = read_replays(job_settings.storage.tables_root).to_pylist()
    marks = [row for row in replays if row["state"] == SENT]
    assert sorted(f"{r['topic']}/{r['partition']}/{r['offset']}" for r in marks) == sorted(originals)
    assert all(copies[f"{r['topic']}/{r['partition']}/{r['offset']}"]["at"].decode()
               == f"{r['to_topic']}/{r['to_partition']}/{r['to_offset']}" for r in marks)
    assert not [row for row in replays if row["state"] == RELEASED]

    run_queries(spark, job_settings, "analytics", analytics_queries)
    events = table_rows(job_settings, "analytics_events")
    assert sorted(row["event_id"] for row in events) == ["f1", "f2", "v1", "v2"]
    dead = table_rows(job_settings, "analytics_dead_letters")
    assert sorted(row["error_code"] for row in dead) == ["BAD_TIMESTAMP", *["MISSING_FIELD"] * 4, "NOT_JSON"]

    # A third run, the command itself, has nothing left to send: the fixed ones are marked, the rest are not
    # fixable by this fix.
    started = time.monotonic()
    command = subprocess.run(
        [
            str(PROJECT_ROOT / "scripts" / "replay.sh"), "--config", str(PROJECT_ROOT / "conf" / "local.toml"),
            "--set", f"storage.tables_root={job_settings.storage.tables_root}",
            "--set", f"kafka.bootstrap_servers={kafka_bootstrap}", "--job", "analytics", "--fix", "fill_schema_version",
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )
    command_seconds = time.monotonic() - started
    assert command.returncode == 0, command.stderr
    assert command.stdout.startswith("selected 1 dead letters not replayed yet (analytics; MISSING_FIELD); 1 of them")
    assert "sent" not in command.stdout
    assert end_offsets(kafka_bootstrap, fresh_topic) == after_crash

    figures = replay_figures(job_settings.storage.tables_root, "analytics")
    assert (figures.dead_letters, figures.replayed, figures.arrived_valid, figures.dead_again, figures.not_read) == (
        6, 3, 2, 1, 0
    )
    assert (figures.still_open, figures.pending, figures.marked_twice) == (3, 0, 0)
    assert figures.adds_up
    # The job's own identity still holds: the copies are records read like any other.
    read = sum(row["records"] for row in table_rows(job_settings, "analytics_intake_batches"))
    assert read == len(events) + len(dead) == 10
    print(
        f"replay that sent 3: {sending_seconds:.2f} s; that resolved the crashed run: {second_seconds:.2f} s;"
        f" scripts/replay.sh sending nothing: {command_seconds:.2f} s"
    )


def dead_letters_table(topic: str, values: list[bytes]) -> pa.Table:
    """Rows of a ``<job>_dead_letters`` table (the columns the jobs write), offsets 0, 1, ... of partition 0."""
    now = datetime.now(UTC)
    count = len(values)
    return pa.table(
        {
            "raw_key": pa.array([b"u1"] * count, pa.binary()),
            "raw_value": pa.array(values, pa.binary()),
            "error_code": ["MISSING_FIELD"] * count,
            "error_message": ["schema_version is missing"] * count,
            "stage": ["contract"] * count,
            "job": ["analytics"] * count,
            "topic": [topic] * count,
            "partition": pa.array([0] * count, pa.int32()),
            "offset": pa.array(range(count), pa.int64()),
            "kafka_timestamp": pa.array([now] * count, pa.timestamp("us", tz="UTC")),
            "ingested_at": pa.array([now] * count, pa.timestamp("us", tz="UTC")),
            "writer_id": ["test"] * count,
            "batch_id": pa.array([0] * count, pa.int64()),
        }
    )


def test_a_run_that_stopped_before_sending_is_released_and_the_next_run_sends_its_records(
    job_settings, kafka_bootstrap, fresh_topic, monkeypatch
):
    values = [json.dumps(document(f"e{n}", n, schema_version=None)).encode() for n in range(3)]
    write_deltalake(job_settings.storage.table_path("analytics_dead_letters"), dead_letters_table(fresh_topic, values))

    class StopBeforeSending(RuntimeError):
        """The run stops here, as a crash after its intents and before its first record would."""

    def stop_before_sending(*_args, **_kwargs):
        raise StopBeforeSending

    with monkeypatch.context() as patched:
        patched.setattr("eventlake.ops.replay._send", stop_before_sending)
        with pytest.raises(StopBeforeSending):
            replay(job_settings, ANALYTICS, fix_name="fill_schema_version", out=lambda _: None)
    assert sum(end_offsets(kafka_bootstrap, fresh_topic).values()) == 0

    report = replay(job_settings, ANALYTICS, fix_name="fill_schema_version", out=lambda _: None)
    assert (report.recovered, report.released, report.selected, report.sent, report.marked) == (0, 3, 3, 3, 3)
    print(f"replay that released 3 and sent 3: {report.seconds:.2f} s")
    assert sorted(replayed_copies(kafka_bootstrap, fresh_topic)) == [f"{fresh_topic}/0/{n}" for n in range(3)]
    states = sorted(row["state"] for row in read_replays(job_settings.storage.tables_root).to_pylist())
    assert states == [RELEASED] * 3 + [SENDING] * 6 + [SENT] * 3
    assert replay(job_settings, ANALYTICS, out=lambda _: None).sent == 0
    assert DeltaTable(job_settings.storage.table_path(REPLAYS_TABLE)).version() == 3
