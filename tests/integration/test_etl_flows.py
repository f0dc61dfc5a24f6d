"""ETL flows of config (conf/etl/*.toml) against the real broker, real Spark and real Delta tables: the shipped
orders flow reads CSV with its own contract, enriches, masks, checks its expectations and keeps each order once."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from decimal import Decimal

import pytest
from delta.tables import DeltaTable

from eventlake.ops.reconcile_etl import reconcile_etl
from eventlake.pipeline.etl import etl_queries
from eventlake.pipeline.etl_flow import configure_etl, etl_flow
from eventlake.runtime.config import Settings, load_settings
from eventlake.runtime.runner import run_queries

from .helpers import PROJECT_ROOT, send

pytestmark = pytest.mark.integration

ORDERS_FLOW = PROJECT_ROOT / "conf" / "etl" / "orders.toml"
ORDERS_SAMPLE = PROJECT_ROOT / "conf" / "etl" / "orders-sample.csv"  # what docs/running.md sends
# (order, second after 11:00 in Paris, customer, email, amount, currency)
ORDERS = [
    ("o-1", 5, "c-1", "ann@example.com", "42.50", "EUR"),
    ("o-2", 10, "c-2", "bob@example.com", "10.00", "USD"),
    ("o-1", 5, "c-1", "ann@example.com", "42.50", "EUR"),  # sent again: silver keeps it once
    ("o-3", 15, "c-3", "", "0.00", "EUR"),  # fails positive_amount: quarantined
    ("o-4", 20, "c-4", "dan@example.com", "5.00", "JPY"),  # no rate for JPY: DIMENSION_MISS
    ("o-5", 25, "x-9", "eve@example.com", "7.00", "GBP"),  # fails known_customer: kept, counted
]


def order_line(order: str, second: int, customer: str, email: str, amount: str, currency: str) -> bytes:
    return f"{order},2026-01-01 11:00:{second:02d},{customer},{email},{amount},{currency},false".encode()


def orders_flow(kafka_bootstrap: str, topic: str, tmp_path, *overrides: str) -> tuple[str, Settings]:
    settings = load_settings(ORDERS_FLOW, [
        f"kafka.bootstrap_servers={kafka_bootstrap}", f"etl.source.topic={topic}",
        f"storage.tables_root={tmp_path / 'tables'}", f"storage.checkpoint_root={tmp_path / 'checkpoints'}",
        f"spark.jars_dir={PROJECT_ROOT / 'jars' / 'spark'}",
        f"etl.enrich.dimension_csv={PROJECT_ROOT / 'conf' / 'dimensions' / 'currencies.csv'}",
        *overrides,
    ])
    return configure_etl(settings)


def table(spark, settings: Settings, name: str):
    return spark.read.format("delta").load(settings.storage.table_path(name))


def test_the_shipped_orders_flow_runs_a_csv_topic_through_bronze_and_silver(
    spark, kafka_bootstrap, fresh_topic, tmp_path
):
    sample = ORDERS_SAMPLE.read_bytes().splitlines()
    assert sample == [order_line(*order) for order in ORDERS] + [b"o-6,late"]
    send(kafka_bootstrap, fresh_topic, [(None, line) for line in sample])
    name, settings = orders_flow(kafka_bootstrap, fresh_topic, tmp_path)
    assert name == "orders" and settings.kafka.topic == fresh_topic
    run_queries(spark, settings, name, etl_queries)

    assert table(spark, settings, "orders_bronze").count() == len(ORDERS) + 1  # every record, as received
    silver = {row.order_id: row for row in table(spark, settings, "orders_silver").collect()}
    assert sorted(silver) == ["o-1", "o-2", "o-5"]
    # Paris is UTC+1 in January; the rate of the currency dimension; the e-mail hashed with local.toml's salt "".
    assert silver["o-1"].event_time.isoformat() == "2026-01-01T10:00:05"
    assert str(silver["o-1"].event_date) == "2026-01-01" and silver["o-1"].order_hour == 10
    assert (silver["o-2"].amount_eur, silver["o-2"].currency_name) == (Decimal("8.60"), "US dollar")
    assert silver["o-1"].email == hashlib.sha256(b"ann@example.com").hexdigest()
    assert silver["o-1"].enriched is True

    dead = {row.error_code: row for row in table(spark, settings, "orders_dead_letters").collect()}
    assert sorted(dead) == ["DIMENSION_MISS", "EXPECTATION_FAILED", "NOT_CSV"]
    assert "positive_amount" in dead["EXPECTATION_FAILED"].error_message
    assert dead["DIMENSION_MISS"].raw_value == order_line(*ORDERS[4])

    intake = table(spark, settings, "orders_intake_batches").groupBy().sum("records", "valid", "invalid").first()
    assert tuple(intake) == (7, 4, 3)  # read = valid (o-1 twice, o-2, o-5) + dead letters
    figures = {row.expectation: row for row in table(spark, settings, "orders_expectation_batches").collect()}
    assert (figures["positive_amount"].failed, figures["positive_amount"].quarantined) == (1, 1)
    assert (figures["known_customer"].failed, figures["known_customer"].quarantined) == (1, 0)

    reconciled = reconcile_etl(settings.storage, etl_flow(settings))
    assert reconciled.problems() == []
    assert (reconciled.read, reconciled.bronze, reconciled.silver, reconciled.copies) == (7, 7, 3, 1)
    assert (reconciled.dead_letters, reconciled.quarantined) == (3, 1)
    # A bronze row gone is found, and named by its batch.
    [first] = table(spark, settings, "orders_bronze").orderBy("partition", "offset").limit(1).collect()
    DeltaTable.forPath(spark, settings.storage.table_path("orders_bronze")).delete(
        f"partition = {first.partition} AND offset = {first.offset}"
    )
    problems = reconcile_etl(settings.storage, etl_flow(settings)).problems()
    assert any(problem.endswith("7 records in orders_intake_batches, 6 rows in orders_bronze") for problem in problems)
    assert "orders's bronze holds 6 records, the intake read 7" in problems


def test_an_orders_flow_by_state_keeps_each_order_once_in_two_queries(spark, kafka_bootstrap, fresh_topic, tmp_path):
    send(kafka_bootstrap, fresh_topic, [(None, order_line(*order)) for order in ORDERS])
    # Expectations run in the ingest query of the merge mode only: this flow leaves them out.
    name, settings = orders_flow(
        kafka_bootstrap, fresh_topic, tmp_path, "etl.silver_dedup=state", "etl.expectations=[]"
    )
    run_queries(spark, settings, name, etl_queries)

    assert sorted(row.order_id for row in table(spark, settings, "orders_silver").collect()) == [
        "o-1", "o-2", "o-3", "o-5"
    ]
    [figures] = table(spark, settings, "orders_silver_batches").collect()
    assert (figures.job, figures.records, figures.duplicates, figures.silver_rows) == ("orders", 6, 1, 4)
    assert table(spark, settings, "orders_bronze").count() == len(ORDERS)
    reconciled = reconcile_etl(settings.storage, etl_flow(settings))
    assert reconciled.problems() == [] and (reconciled.valid, reconciled.silver, reconciled.invalid) == (5, 4, 1)


def etl_job(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "jobs" / "etl.py"), *arguments],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180,
    )


def test_mistakes_in_a_flow_stop_the_etl_job_with_one_line_naming_file_and_key(
    kafka_bootstrap, fresh_topic, tmp_path
):
    config = "conf/etl/orders.toml"
    unknown = etl_job("--config", config, "--set", "etl.source.contract=order")
    assert unknown.returncode == 2, unknown.stdout + unknown.stderr
    assert unknown.stderr.strip().splitlines()[-1] == (
        f"etl: error: {config}: etl.source.contract: no contract 'order' (known: events, orders)"
    )
    bad_column = etl_job(
        "--config", config, "--set", f"kafka.bootstrap_servers={kafka_bootstrap}",
        "--set", f"etl.source.topic={fresh_topic}", "--set", "etl.columns.amount_eur=amount * rate",
        "--set", f"storage.tables_root={tmp_path / 'tables'}", "--set", f"storage.checkpoint_root={tmp_path / 'cp'}",
    )
    assert bad_column.returncode == 2, bad_column.stdout + bad_column.stderr
    last = bad_column.stderr.strip().splitlines()[-1]
    assert last.startswith(f"orders: error: {config}: etl.columns.amount_eur: ") and "rate" in last, last


def test_a_flow_that_lost_its_checkpoint_resumes_from_its_intake_table(spark, kafka_bootstrap, fresh_topic, tmp_path):
    send(kafka_bootstrap, fresh_topic, [(None, line) for line in ORDERS_SAMPLE.read_bytes().splitlines()])
    name, settings = orders_flow(kafka_bootstrap, fresh_topic, tmp_path)
    run_queries(spark, settings, name, etl_queries)
    shutil.rmtree(settings.storage.checkpoint_root)  # lost; the tables stay
    send(kafka_bootstrap, fresh_topic, [(None, order_line("o-7", 30, "c-7", "", "3.00", "CHF")), (None, b"bad")])
    run_queries(spark, settings, name, etl_queries)

    assert table(spark, settings, "orders_bronze").count() == 9  # 7 + 2: none written twice
    assert sorted(row.order_id for row in table(spark, settings, "orders_silver").collect()) == [
        "o-1", "o-2", "o-5", "o-7"
    ]
    assert table(spark, settings, "orders_dead_letters").count() == 4  # 3 + the new bad record
    assert table(spark, settings, "orders_intake_batches").groupBy().sum("records").first()[0] == 9
