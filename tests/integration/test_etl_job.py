"""The streaming ETL job against the real broker, real Spark and real Delta tables."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from eventlake.pipeline.contract import CONTENT_TYPE_HEADER
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.pipeline.etl import BRONZE_TABLE, SILVER_TABLE, etl_queries
from eventlake.pipeline.intake import INTAKE_TABLE
from eventlake.runtime.config import ConfigError, load_settings
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.metrics import METRICS_TABLE
from eventlake.runtime.runner import run_queries

from .helpers import PROJECT_ROOT, send

ETL_DEAD_LETTERS = job_table("etl", DEAD_LETTERS_TABLE)
ETL_INTAKE = job_table("etl", INTAKE_TABLE)
ETL_METRICS = job_table("etl", METRICS_TABLE)

pytestmark = pytest.mark.integration

KV = [(CONTENT_TYPE_HEADER, b"text/x-key-value")]
DAY = date(2026, 1, 1)


def json_event(event_id: str, user: str, version: str = "1", **data) -> tuple:
    """A valid JSON record keyed by user, on 2026-01-01 (UTC)."""
    document = {
        "event_id": event_id,
        "timestamp": "2026-01-01T10:00:00Z",
        "source": " Web ",
        "schema_version": version,
        ("event_type" if version == "2" else "type"): "PageView",
        "data": {"user_id": user, **data},
    }
    if version == "2":
        document["session_id"] = f"s-{event_id}"
    return user.encode(), json.dumps(document).encode()


def next_day_event(event_id: str, user: str) -> tuple:
    """A valid JSON record on 2026-01-02."""
    key, value = json_event(event_id, user)
    return key, value.replace(b"2026-01-01T", b"2026-01-02T")


def kv_event(event_id: str, user: str, version: str = "1", **data) -> tuple:
    """The same event as a key=value record."""
    type_key = "event_type" if version == "2" else "type"
    pairs = [f"event_id={event_id}", "timestamp=2026-01-01T10:00:00Z", "source=mobile", f"schema_version={version}",
             f"{type_key}=click", f"data.user_id={user}"]
    pairs += [f"data.{name}={value}" for name, value in data.items()]
    if version == "2":
        pairs.append(f"session_id=s-{event_id}")
    return user.encode(), "; ".join(pairs).encode(), KV


def hashed(user: str) -> str:
    return hashlib.sha256(user.encode()).hexdigest()


def read_table(spark, settings, table):
    return spark.read.format("delta").load(settings.storage.table_path(table))


def etl_settings(job_settings, *overrides):
    """The test's settings with ``key=value`` overrides applied the way --set applies them."""
    storage = job_settings.storage
    base = [
        f"kafka.bootstrap_servers={job_settings.kafka.bootstrap_servers}",
        f"kafka.topic={job_settings.kafka.topic}",
        f"storage.tables_root={storage.tables_root}",
        f"storage.checkpoint_root={storage.checkpoint_root}",
    ]
    settings = load_settings(PROJECT_ROOT / "conf" / "local.toml", [*base, *overrides])
    return dataclasses.replace(settings, spark=job_settings.spark)


def run_etl(spark, settings):
    return run_queries(spark, settings, "etl", etl_queries)


SILVER_COLUMNS = "event_id string, schema_version string, source string, event_type string, user_id string," \
    " session_id string, page string, amount decimal(12,2), category string, enriched boolean, event_date date"


def test_bronze_silver_and_dead_letters_from_two_formats_and_two_versions(
    spark, job_settings, kafka_bootstrap, fresh_topic
):
    first = send(
        kafka_bootstrap,
        fresh_topic,
        [
            json_event("j1", "u1", page="/products/1"),  # in the dimension
            json_event("j2", "u2", "2", page="/products/39"),  # version 2; a page the dimension lacks
            kv_event("k1", "u3", amount="12.5"),  # key=value, a number written as text
            kv_event("k2", "u1", "2"),  # key=value, version 2, no page
            json_event("j1", "u1", page="/products/1"),  # duplicate in the same batch
            (b"u9", b"this is not json"),
            (b"u9", b"event_id=x; event_id=y", KV),
            json_event("bad-amount", "u4", amount="lots"),
            (b"u9", json_event("v3", "u5", "3")[1]),
            (b"u9", json_event("csv", "u5")[1], [(CONTENT_TYPE_HEADER, b"text/csv")]),
        ],
    )
    run_etl(spark, job_settings)

    bronze = read_table(spark, job_settings, BRONZE_TABLE)
    assert sorted((row.partition, row.offset, bytes(row.value)) for row in bronze.collect()) == sorted(
        (record.partition, record.offset, record.value) for record in first
    )
    assert {row.ingest_date for row in bronze.select("ingest_date").collect()} == {
        bronze.select(F.to_date(F.max("ingested_at"))).first()[0]
    }
    assert bronze.where(F.size("headers") > 0).count() == 4

    expected_silver = [
        ("j1", "1", "web", "pageview", hashed("u1"), None, "/products/1", None, "bags", True, DAY),
        ("j2", "2", "web", "pageview", hashed("u2"), "s-j2", "/products/39", None, None, False, DAY),
        ("k1", "1", "mobile", "click", hashed("u3"), None, None, Decimal("12.50"), None, None, DAY),
        ("k2", "2", "mobile", "click", hashed("u1"), "s-k2", None, None, None, None, DAY),
    ]
    silver = read_table(spark, job_settings, SILVER_TABLE)
    assert_df_equality(
        silver.select([field.split()[0] for field in SILVER_COLUMNS.split(", ")]),
        spark.createDataFrame(expected_silver, SILVER_COLUMNS),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert "data" not in silver.columns and "value" not in silver.columns

    dead = read_table(spark, job_settings, ETL_DEAD_LETTERS)
    assert sorted((row.offset, row.partition, row.error_code, row.stage) for row in dead.collect()) == sorted(
        (record.offset, record.partition, code, stage)
        for record, (code, stage) in zip(
            first[5:],
            [("NOT_JSON", "extract"), ("NOT_KEY_VALUE", "extract"), ("FIELD_TYPE", "promote_fields"),
             ("UNKNOWN_SCHEMA_VERSION", "contract"), ("UNKNOWN_FORMAT", "extract")],
            strict=True,
        )
    )
    intake = read_table(spark, job_settings, ETL_INTAKE).groupBy().agg(
        F.sum("records").alias("records"), F.sum("valid").alias("valid"), F.sum("invalid").alias("invalid")
    ).first()
    assert (intake.records, intake.valid, intake.invalid) == (10, 5, 5)

    # A second run on the same checkpoints: only the new records are read; a duplicate of an event already
    # in silver is not inserted again, and a newly promoted field is added to silver's schema.
    second = send(
        kafka_bootstrap,
        fresh_topic,
        [json_event("j1", "u1", page="/products/1"), json_event("j3", "u6", page="/home", coupon="WINTER")],
    )
    run_etl(spark, etl_settings(job_settings, "etl.promote.coupon=string"))

    assert read_table(spark, job_settings, BRONZE_TABLE).count() == len(first) + len(second)
    silver = read_table(spark, job_settings, SILVER_TABLE)
    assert sorted(row.event_id for row in silver.collect()) == ["j1", "j2", "j3", "k1", "k2"]
    coupon_rows = silver.where("coupon IS NOT NULL OR event_id = 'j1'").collect()
    assert sorted((row.event_id, row.coupon, row.category) for row in coupon_rows) == [
        ("j1", None, "bags"), ("j3", "WINTER", "home"),
    ]
    assert read_table(spark, job_settings, ETL_DEAD_LETTERS).count() == 5


def test_back_pressure_bounds_every_batch(spark, job_settings, kafka_bootstrap, fresh_topic):
    send(kafka_bootstrap, fresh_topic, [json_event(f"e{n}", f"u{n % 3}") for n in range(23)])
    run_etl(spark, etl_settings(job_settings, "kafka.max_offsets_per_trigger=5", "etl.transforms=[\"normalise\"]"))

    metrics = read_table(spark, job_settings, ETL_METRICS).where("job = 'etl'")
    sizes = [row.input_rows for row in metrics.where(F.col("query_name") == "etl_ingest").orderBy("batch_id").collect()]
    assert sum(sizes) == 23 and max(sizes) <= 5 and len(sizes) >= 5, sizes
    assert read_table(spark, job_settings, SILVER_TABLE).count() == 23


@pytest.mark.slow
def test_a_failing_write_is_retried_then_stops_the_job_and_a_restart_resumes_exactly_once(
    spark, job_settings, kafka_bootstrap, fresh_topic, tmp_path
):
    # A first run makes the tables; the events of the next day will need a new silver partition folder.
    send(kafka_bootstrap, fresh_topic, [json_event("first", "u0")])
    run_etl(spark, job_settings)
    next_day = [next_day_event(f"e{n}", f"u{n}") for n in range(6)] + [(b"u9", b"not json")]
    send(kafka_bootstrap, fresh_topic, next_day)
    # The I/O error: a file stands where that folder must be created.
    blocker = Path(job_settings.storage.table_path(SILVER_TABLE)) / "event_date=2026-01-02"
    blocker.write_text("in the way")

    failed = run_etl_script(job_settings, "retry.max_attempts=2", "retry.initial_backoff=100ms")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert (
        "retry: etl: writing batch 1 to silver_events failed (attempt 1 of 2), trying again in 0.1 s: "
        "org.apache.hadoop.fs.FileAlreadyExistsException: Destination exists and is not a directory"
    ) in failed.stdout
    assert "etl: writing batch 1 to silver_events: gave up after 2 attempts" in failed.stderr

    # The restart retries as well; the blocker is removed once the first retry is announced.
    stderr_file = tmp_path / "etl-stderr.log"
    with stderr_file.open("w") as stderr:
        process = start_etl_script(job_settings, stderr, "retry.max_attempts=5", "retry.initial_backoff=2s")
    output: list[str] = []

    def watch():
        for line in process.stdout:
            output.append(line)
            if line.startswith("retry: ") and blocker.exists():
                blocker.unlink()

    watcher = threading.Thread(target=watch)
    watcher.start()
    returncode = process.wait(timeout=300)
    watcher.join()
    assert returncode == 0, "".join(output) + stderr_file.read_text()
    assert any(line.startswith("retry: etl: writing batch 1 to silver_events failed") for line in output)

    assert sorted(row.event_id for row in read_table(spark, job_settings, SILVER_TABLE).collect()) == [
        *(f"e{n}" for n in range(6)), "first"
    ]
    assert read_table(spark, job_settings, BRONZE_TABLE).count() == 1 + len(next_day)
    assert [row.error_code for row in read_table(spark, job_settings, ETL_DEAD_LETTERS).collect()] == ["NOT_JSON"]
    assert read_table(spark, job_settings, ETL_INTAKE).groupBy().sum("records").first()[0] == 1 + len(next_day)


def _script_arguments(job_settings, overrides) -> list[str]:
    storage = job_settings.storage
    arguments = [
        str(PROJECT_ROOT / ".venv" / "bin" / "python"), str(PROJECT_ROOT / "jobs" / "etl.py"),
        "--set", f"kafka.bootstrap_servers={job_settings.kafka.bootstrap_servers}",
        "--set", f"kafka.topic={job_settings.kafka.topic}",
        "--set", f"storage.tables_root={storage.tables_root}",
        "--set", f"storage.checkpoint_root={storage.checkpoint_root}",
    ]
    for override in overrides:
        arguments += ["--set", override]
    return arguments


def run_etl_script(job_settings, *overrides):
    """jobs/etl.py run by the project's python (it starts its own JVM), output captured."""
    return subprocess.run(
        _script_arguments(job_settings, overrides), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )


def start_etl_script(job_settings, stderr, *overrides):
    """jobs/etl.py started in the background; its stdout is a pipe read line by line, stderr goes to a file."""
    return subprocess.Popen(
        _script_arguments(job_settings, overrides), cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
        stderr=stderr, text=True, bufsize=1,
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["etl.pii.drop=['email']"], "etl.transforms ['normalise', 'promote_fields', 'enrich', 'mask_pii'] cannot run: "
                                     "etl.pii names 'email', which is not a column here"),
        (["etl.transforms=['normalise', 'enrich']"], "etl.transforms ['normalise', 'enrich'] cannot run: "),
        (["etl.transforms=['normalise', 'dedupe']"], "cannot run: unknown ETL stage 'dedupe'"),
        (["etl.expectations=[{name = 'known', rule = 'colour IS NOT NULL'}]"], "etl.expectations.known.rule: "),
    ],
)

def test_stages_that_cannot_run_stop_the_job_at_start(spark, job_settings, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        etl_queries(spark, etl_settings(job_settings, *overrides))
    assert not spark.streams.active


def test_expectations_run_after_the_stages_and_every_record_stays_in_bronze(
    spark, job_settings, kafka_bootstrap, fresh_topic
):
    records = send(kafka_bootstrap, fresh_topic, [
        json_event("e1", "u1", page="/products/1", amount="3"),
        json_event("e2", "u2", page="/products/1", amount="-3"),  # quarantined: a negative amount
        json_event("e3", "u3", page="/nowhere"),  # dropped: no category from the dimension
        json_event("e4", "u4", page="/home", amount="-1"),  # quarantined
    ])
    expectations = (
        "etl.expectations=[{name = 'amount_not_negative', rule = 'amount IS NULL OR amount >= 0',"
        " action = 'quarantine'}, {name = 'known_page', rule = \"category IS NOT NULL OR page = '/home'\","
        " action = 'drop'}, {name = 'has_amount', rule = 'amount IS NOT NULL'}]"
    )
    run_etl(spark, etl_settings(job_settings, expectations))

    assert read_table(spark, job_settings, BRONZE_TABLE).count() == len(records)
    assert sorted(row.event_id for row in read_table(spark, job_settings, SILVER_TABLE).collect()) == ["e1"]
    silver_columns = read_table(spark, job_settings, SILVER_TABLE).columns
    assert not [name for name in silver_columns if name.startswith("_expectation")]
    dead = read_table(spark, job_settings, ETL_DEAD_LETTERS).collect()
    assert sorted((row.error_code, row.stage, row.error_message) for row in dead) == [
        ("EXPECTATION_FAILED", "expectation", "expectation amount_not_negative failed: amount IS NULL OR amount >= 0"),
    ] * 2
    intake = read_table(spark, job_settings, ETL_INTAKE).groupBy().agg(
        F.sum("records").alias("records"), F.sum("valid").alias("valid"), F.sum("invalid").alias("invalid")
    ).first()
    assert (intake.records, intake.valid, intake.invalid) == (4, 1, 2)  # and 1 dropped
    figures = read_table(spark, job_settings, job_table("etl", "expectation_batches")).groupBy("expectation").agg(
        *(F.sum(name).alias(name) for name in ("checked", "failed", "dropped", "quarantined"))
    )
    assert {tuple(row) for row in figures.collect()} == {
        ("amount_not_negative", 4, 2, 0, 2), ("known_page", 4, 1, 1, 0), ("has_amount", 4, 1, 0, 0),
    }
