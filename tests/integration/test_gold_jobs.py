"""Gold jobs of config against the real broker, Spark and Delta: the Yahoo Streaming Benchmark counted
exactly, sessions across batches and restarts, the analytics job's windows as a config, config mistakes."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from eventlake.local import ysb
from eventlake.ops.health import job_health
from eventlake.ops.lake import Lake
from eventlake.ops.reconcile import gold_job, reconcile
from eventlake.pipeline.analytics import WINDOW_COLUMNS, WINDOWS_TABLE, analytics_queries
from eventlake.pipeline.etl import etl_queries
from eventlake.pipeline.gold import configure_gold, gold_queries
from eventlake.runtime.config import Expectation, Settings, load_settings
from eventlake.runtime.runner import describe_failure, run_queries

from .helpers import PROJECT_ROOT, send

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, 10, 0, 0)


def gold_settings(config: str, bootstrap: str, topic: str, tmp_path, *overrides: str) -> tuple[str, Settings]:
    """A shipped gold config pointed at the test broker and topic, tables and checkpoints under tmp_path."""
    settings = load_settings(
        PROJECT_ROOT / "conf" / "gold" / config,
        [
            f"kafka.bootstrap_servers={bootstrap}",
            f"gold.source.topic={topic}",
            f"storage.tables_root={tmp_path / 'tables'}",
            f"storage.checkpoint_root={tmp_path / 'checkpoints'}",
            f"spark.jars_dir={PROJECT_ROOT / 'jars' / 'spark'}",
            *overrides,
        ],
    )
    return configure_gold(settings)


def run_gold(spark, job: tuple[str, Settings]) -> None:
    name, settings = job
    run_queries(spark, settings, name, gold_queries)


def table(spark, settings: Settings, name: str):
    return spark.read.format("delta").load(settings.storage.table_path(name))


def test_the_yahoo_streaming_benchmark_counts_views_per_campaign_exactly(
    spark, kafka_bootstrap, fresh_topic, tmp_path
):
    campaigns = ysb.read_campaigns_csv(PROJECT_ROOT / "conf" / "dimensions" / "ysb_campaigns.csv")
    start_ms = (int(time.time() * 1000) - 120_000) // 10_000 * 10_000 + 3_000  # windows of 10 s, a partial first
    events = list(ysb.ad_events(campaigns, count=3_000, start_ms=start_ms, events_per_second=100, seed=11))
    records = [(None, ysb.encode(event)) for event in events]
    records += [(None, b"not json"), (None, json.dumps({**events[0], "event_time": "soon"}).encode())]
    send(kafka_bootstrap, fresh_topic, records)
    job = gold_settings("ysb.toml", kafka_bootstrap, fresh_topic, tmp_path)
    run_gold(spark, job)

    settings = job[1]
    watermark_ms = max(int(event["event_time"]) for event in events) - 10_000
    expected = {
        key: count
        for key, count in ysb.count_views_per_campaign_window(events, campaigns).items()
        if key[1] + 10_000 <= watermark_ms
    }
    rows = table(spark, settings, "ysb_campaign_windows").collect()
    found = {(row.campaign_id, int(row.window_start.timestamp() * 1000)): row.views for row in rows}
    assert len(expected) > 100 and found == expected
    assert all(row.window_end - row.window_start == timedelta(seconds=10) for row in rows)
    dead_letters = table(spark, settings, "ysb_dead_letters").select("error_code").collect()
    assert sorted(row.error_code for row in dead_letters) == ["BAD_TIMESTAMP", "NOT_JSON"]
    intake = table(spark, settings, "ysb_intake_batches").agg(F.sum("records"), F.sum("valid")).first()
    assert tuple(intake) == (len(records), len(events))
    figures = table(spark, settings, "ysb_window_batches").agg(F.sum("input_rows"), F.sum("deduplicated_rows")).first()
    assert tuple(figures) == (len(events), len(events))  # YSB events have no id: none de-duplicated
    reconciled = reconcile(settings.storage, job=gold_job(settings.gold), spark=spark)
    assert reconciled.problems() == [] and reconciled.counted == sum(expected.values())
    assert reconciled.kept_out == len(events) - sum(event["event_type"] == "view" for event in events)


def session_event(event_id: str, second: int, user: str, page: str, event_type: str = "pageview"):
    document = {
        "event_id": event_id, "timestamp": (T0 + timedelta(seconds=second)).isoformat() + "Z", "source": "web",
        "schema_version": "1", "type": event_type, "data": {"user_id": user, "page": page},
    }
    return user.encode(), json.dumps(document).encode()


def test_sessions_across_batches_and_a_restart_come_out_once_and_whole(spark, kafka_bootstrap, fresh_topic, tmp_path):
    # Gap 60 s, watermark 30 s: a session closes when the watermark (latest event - 30 s) passes its last event + 60 s.
    job = gold_settings(
        "user_sessions.toml", kafka_bootstrap, fresh_topic, tmp_path,
        "gold.window.gap=1 minute", "gold.watermark=30 seconds", "kafka.max_offsets_per_trigger=2",
    )
    send(kafka_bootstrap, fresh_topic, [
        session_event("a1", 0, "u1", "/home"), session_event("a2", 40, "u1", "/cart"),
        session_event("b1", 5, "u2", "/home"), session_event("c1", 100, "u9", "/x"),
    ])
    run_gold(spark, job)
    sessions = table(spark, job[1], "user_sessions").collect()
    assert [row.user_id for row in sessions] == ["u2"]  # u1's session is still open (watermark 70 s)

    send(kafka_bootstrap, fresh_topic, [
        session_event("a4", 80, "u1", "/pay", "purchase"),
        session_event("a3", 75, "u1", "/late"),   # out of order but within the watermark: joins the session
        session_event("a3", 75, "u1", "/late"),   # a copy: counted once
        session_event("a0", 20, "u1", "/too-late"),  # behind the watermark: dropped, counted as late
        session_event("c2", 300, "u9", "/x"),     # moves the watermark to 270 s: u1's session closes
    ])
    run_gold(spark, job)  # a restart in mid-session, several batches (2 records each)
    sessions = table(spark, job[1], "user_sessions").collect()  # read again: a DataFrame keeps its table version
    rows = {row.user_id + "@" + str(row.window_start.time()): row for row in sessions}
    assert sorted(rows) == ["u1@10:00:00", "u2@10:00:05", "u9@10:01:40"]
    u1 = rows["u1@10:00:00"]
    assert (u1.window_end, u1.events, u1.duration_seconds) == (T0 + timedelta(seconds=140), 4, 80.0)
    assert (u1.distinct_pages, u1.first_page, u1.last_page, u1.converted) == (4, "/home", "/pay", True)
    assert (rows["u2@10:00:05"].events, rows["u2@10:00:05"].converted) == (1, False)
    figures = table(spark, job[1], "user_sessions_window_batches").agg(
        F.sum("input_rows"), F.sum("dropped_duplicates"), F.sum("dropped_late")
    ).first()
    assert tuple(figures) == (9, 1, 1)
    reconciled = reconcile(job[1].storage, job=gold_job(job[1].gold), spark=spark)
    assert reconciled.problems() == []
    assert (reconciled.valid, reconciled.counted, reconciled.pending) == (9, 6, 1)  # u9's session at 300 s is open


def test_the_analytics_windows_as_a_gold_config_equal_the_analytics_job(
    spark, kafka_bootstrap, fresh_topic, tmp_path, job_settings
):
    send(kafka_bootstrap, fresh_topic, [
        session_event(f"e{number}", number * 37, f"u{number % 5}", "/p", ("pageview", "click")[number % 2])
        for number in range(60)
    ] + [session_event("e3", 3 * 37, "u3", "/p", "click"), (None, b"{")])
    run_queries(spark, job_settings, "analytics", analytics_queries)
    job = gold_settings("event_windows.toml", kafka_bootstrap, fresh_topic, tmp_path / "gold")
    run_gold(spark, job)
    analytics = table(spark, job_settings, WINDOWS_TABLE).select(*WINDOW_COLUMNS)
    gold = table(spark, job[1], "event_windows").select(*WINDOW_COLUMNS)
    assert analytics.count() > 5
    assert sorted(analytics.collect()) == sorted(gold.collect())


def gold_job_error(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "jobs" / "gold.py"), *arguments],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180,
    )


def test_config_mistakes_stop_the_gold_job_with_one_line_naming_file_and_key(kafka_bootstrap, fresh_topic, tmp_path):
    unknown = gold_job_error("--config", "conf/gold/ysb.toml", "--set", "gold.window.sise=10 seconds")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines()[-1].startswith(
        "gold: error: conf/gold/ysb.toml: unknown config key 'gold.window.sise'"
    )
    bad_filter = gold_job_error(
        "--config", "conf/gold/ysb.toml", "--set", f"kafka.bootstrap_servers={kafka_bootstrap}",
        "--set", f"gold.source.topic={fresh_topic}", "--set", "gold.filter=event_kind = 'view'",
        "--set", f"storage.tables_root={tmp_path / 'tables'}", "--set", f"storage.checkpoint_root={tmp_path / 'cp'}",
    )
    assert bad_filter.returncode == 2, bad_filter.stdout + bad_filter.stderr
    last = bad_filter.stderr.strip().splitlines()[-1]
    assert last.startswith("ysb: error: conf/gold/ysb.toml: gold.filter: ") and "event_kind" in last, last


ORDERS_CONTRACT = """
[contracts.orders]
format = "csv"
csv_columns = ["order_id", "placed_at", "customer", "amount", "express"]
id_field = "order_id"

[contracts.orders.event_time]
field = "placed_at"
form = "pattern"
pattern = "yyyy-MM-dd HH:mm:ss"
time_zone = "Europe/Paris"

[contracts.orders.fields]
order_id = { type = "string" }
placed_at = { type = "string" }
customer = { type = "string" }
amount = { type = "decimal(12,2)" }
express = { type = "boolean", required = false }
"""

ORDERS_GOLD = """
include = ["{local}", "orders_contract.toml"]

[gold]
name = "orders"
output = "orders_per_customer"
watermark = "30 seconds"
filter = "amount > 0"
group_by = ["customer", "region"]

[gold.source]
contract = "orders"

[gold.columns]
day_part = "CASE WHEN hour(event_time) < 12 THEN 'am' ELSE 'pm' END"

[[gold.joins]]
name = "customers"
csv = "{customers}"
on = ["customer"]
how = "left"

[gold.window]
kind = "sliding"
size = "1 minute"
slide = "30 seconds"

[[gold.measures]]
name = "orders"
fn = "count"

[[gold.measures]]
name = "revenue"
fn = "sum"
expr = "amount"

[[gold.measures]]
name = "day_parts"
fn = "count_distinct"
expr = "day_part"
"""


def test_a_csv_topic_and_a_sliding_window_need_only_config_files(spark, kafka_bootstrap, fresh_topic, tmp_path):
    # The example of docs/gold.md: a CSV contract, a derived column, a filter, a left join, sliding windows.
    (tmp_path / "customers.csv").write_text("customer,region\nc1,north\nc2,south\n")
    (tmp_path / "orders_contract.toml").write_text(ORDERS_CONTRACT)
    config = tmp_path / "orders.toml"
    local, customers = PROJECT_ROOT / "conf" / "local.toml", tmp_path / "customers.csv"
    config.write_text(ORDERS_GOLD.format(local=local, customers=customers))
    # Paris is UTC+1 in January: 11:00:00 there is 10:00:00 UTC.
    orders = [("o1", 5, "c1", "12.50"), ("o2", 20, "c1", "7.50"), ("o3", 40, "c2", "3.00"), ("o4", 45, "c3", "1.00"),
              ("o5", 50, "c1", "0.00"), ("o1", 5, "c1", "12.50"), ("o6", 200, "c2", "2.00")]
    lines = [f"{order},2026-01-01 11:{second // 60:02d}:{second % 60:02d},{customer},{amount},false".encode()
             for order, second, customer, amount in orders]
    send(kafka_bootstrap, fresh_topic, [(None, line) for line in lines] + [(None, b"o7,2026-01-01 11:00:00,c1")])
    settings = load_settings(config, [
        f"kafka.bootstrap_servers={kafka_bootstrap}", f"gold.source.topic={fresh_topic}",
        f"storage.tables_root={tmp_path / 'tables'}", f"storage.checkpoint_root={tmp_path / 'checkpoints'}",
        f"spark.jars_dir={PROJECT_ROOT / 'jars' / 'spark'}",
    ])
    job = configure_gold(settings)
    run_gold(spark, job)

    rows = table(spark, job[1], "orders_per_customer").collect()
    found = {(row.window_start.strftime("%H:%M:%S"), row.customer, row.region): (row.orders, str(row.revenue))
             for row in rows}
    # The watermark ends at 200 s - 30 s = 10:02:50: windows ending by then are final. o1 counted once, o5 (amount
    # 0) filtered out, c3 has no customer row (left join: region NULL).
    assert found == {
        ("09:59:30", "c1", "north"): (2, "20.00"),
        ("10:00:00", "c1", "north"): (2, "20.00"),
        ("10:00:00", "c2", "south"): (1, "3.00"),
        ("10:00:00", "c3", None): (1, "1.00"),
        ("10:00:30", "c2", "south"): (1, "3.00"),
        ("10:00:30", "c3", None): (1, "1.00"),
    }
    assert all(row.day_parts == 1 for row in rows)
    [dead_letter] = table(spark, job[1], "orders_dead_letters").collect()
    assert dead_letter.error_code == "NOT_CSV"


SILVER_GOLD = """
include = ["{local}"]

[gold]
name = "silver_pages"
output = "page_views"
watermark = "1 minute"
group_by = ["page"]

[gold.source]
table = "silver_events"

[gold.window]
kind = "tumbling"
size = "1 minute"

[[gold.measures]]
name = "events"
fn = "count"

[[gold.measures]]
name = "users"
fn = "count_distinct"
expr = "user_id"
"""


def test_a_gold_job_may_stream_the_etl_silver_table(spark, kafka_bootstrap, fresh_topic, tmp_path, job_settings):
    send(kafka_bootstrap, fresh_topic, [
        session_event(f"s{number}", number * 13, f"u{number % 3}", f"/p{number % 2}") for number in range(40)
    ] + [session_event("s5", 5 * 13, "u2", "/p1"), (None, b"[]")])
    run_queries(spark, job_settings, "etl", etl_queries)
    config = tmp_path / "silver_pages.toml"
    config.write_text(SILVER_GOLD.format(local=PROJECT_ROOT / "conf" / "local.toml"))
    settings = load_settings(config, [
        f"storage.tables_root={job_settings.storage.tables_root}", f"storage.checkpoint_root={tmp_path / 'gold'}",
        f"spark.jars_dir={PROJECT_ROOT / 'jars' / 'spark'}", f"kafka.bootstrap_servers={kafka_bootstrap}",
    ])
    job = configure_gold(settings)
    assert job[1].kafka.topic == ""  # no topic is read
    run_gold(spark, job)

    silver = table(spark, job_settings, "silver_events")
    assert silver.count() == 40  # the copy of s5 is not in silver
    # The events of the windows the watermark closed (latest event 507 s - 1 minute), counted from silver itself.
    closed = silver.where(F.col("event_time") < F.lit(T0 + timedelta(seconds=420)))
    expected = closed.groupBy(F.window("event_time", "1 minute").start.alias("window_start"), "page").agg(
        F.count(F.lit(1)).alias("events"), F.count_distinct("user_id").alias("users")
    )
    found = table(spark, job[1], "page_views").select("window_start", "page", "events", "users")
    assert sorted(found.collect()) == sorted(expected.collect()) and found.count() > 10


EXPECTING_GOLD = """
include = ["{local}", "orders_contract.toml"]

[gold]
name = "orders"
output = "orders_per_customer"
watermark = "30 seconds"
group_by = ["customer"]

[gold.source]
contract = "orders"

[gold.window]
kind = "tumbling"
size = "1 minute"

[[gold.measures]]
name = "orders"
fn = "count"

[[gold.expectations]]
name = "positive_amount"
rule = "amount > 0"
action = "drop"

[[gold.expectations]]
name = "known_customer"
rule = "customer RLIKE '^c[0-9]+$'"
action = "quarantine"

[[gold.expectations]]
name = "express_given"
rule = "express IS NOT NULL"
action = "warn"
"""


def orders_job(tmp_path, kafka_bootstrap, topic, *overrides: str) -> tuple[str, Settings]:
    (tmp_path / "orders_contract.toml").write_text(ORDERS_CONTRACT)
    config = tmp_path / "orders.toml"
    config.write_text(EXPECTING_GOLD.format(local=PROJECT_ROOT / "conf" / "local.toml"))
    return configure_gold(load_settings(config, [
        f"kafka.bootstrap_servers={kafka_bootstrap}", f"gold.source.topic={topic}",
        f"storage.tables_root={tmp_path / 'tables'}", f"storage.checkpoint_root={tmp_path / 'checkpoints'}",
        f"spark.jars_dir={PROJECT_ROOT / 'jars' / 'spark'}", *overrides,
    ]))


def test_expectations_warn_drop_and_quarantine_rows_and_every_record_is_accounted_for(
    spark, kafka_bootstrap, fresh_topic, tmp_path
):
    orders = [("o1", 5, "c1", "12.50", "false"), ("o2", 10, "c1", "0.00", "true"), ("o3", 15, "zz", "3.00", "false"),
              ("o4", 20, "zz", "-1.00", ""), ("o5", 25, "c2", "4.00", ""), ("o6", 200, "c2", "2.00", "true")]
    lines = [f"{order},2026-01-01 11:{second // 60:02d}:{second % 60:02d},{customer},{amount},{express}".encode()
             for order, second, customer, amount, express in orders]
    send(kafka_bootstrap, fresh_topic, [(None, line) for line in lines] + [(None, b"o7,not csv")])
    job = orders_job(tmp_path, kafka_bootstrap, fresh_topic)
    run_gold(spark, job)
    settings = job[1]

    # o2 (amount 0) is dropped; o3 and o4 (customer zz) are quarantined, o4 too though its amount fails as well.
    assert sorted(row.order_id for row in table(spark, settings, "orders_events").collect()) == ["o1", "o5", "o6"]
    dead = {row.raw_value.decode().split(",")[0]: (row.error_code, row.stage, row.error_message, row.offset)
            for row in table(spark, settings, "orders_dead_letters").collect()}
    assert dead["o3"][:3] == ("EXPECTATION_FAILED", "expectation", "expectation known_customer failed: "
                              "customer RLIKE '^c[0-9]+$'")
    assert dead["o4"][0] == "EXPECTATION_FAILED" and dead["o7"][0] == "NOT_CSV" and len(dead) == 3
    figures = table(spark, settings, "orders_expectation_batches").groupBy("expectation", "action").agg(
        *(F.sum(name).alias(name) for name in ("checked", "failed", "dropped", "quarantined"))
    )
    assert {tuple(row) for row in figures.collect()} == {
        ("positive_amount", "drop", 6, 2, 1, 0),
        ("known_customer", "quarantine", 6, 2, 0, 2),
        ("express_given", "warn", 6, 2, 0, 0),  # o4 and o5 have no express flag; o5 is kept
    }
    windows = {(row.customer, row.orders) for row in table(spark, settings, "orders_per_customer").collect()}
    assert windows == {("c1", 1), ("c2", 1)}  # o1 and o5 in the closed window of 10:00; o6's is open
    metrics = table(spark, settings, "orders_pipeline_metrics").where("query_name = 'orders_intake'")
    assert metrics.agg(F.sum("expectations_failed")).first()[0] == 4  # rows failing any rule: o2, o3, o4, o5
    reconciliation = reconcile(settings.storage, job=gold_job(settings.gold))
    assert reconciliation.problems() == [], reconciliation.table()
    assert (reconciliation.read, reconciliation.dropped, reconciliation.quarantined) == (7, 1, 2)
    assert "dropped by expectations" in reconciliation.table()
    lake = Lake(settings.storage.tables_root)
    [health] = [job for job in job_health(lake) if job.job == "orders"]
    lake.close()
    assert "  expectations: express_given (warn) 2 of 6 failed, known_customer (quarantine) 2 of 6 failed," \
        " positive_amount (drop) 2 of 6 failed" in health.lines()


def test_a_fail_expectation_stops_the_job_naming_the_rule_and_the_record(spark, kafka_bootstrap, fresh_topic, tmp_path):
    send(kafka_bootstrap, fresh_topic, [(None, b"o1,2026-01-01 11:00:05,c1,1.00,true"),
                                        (None, b"o2,2026-01-01 11:00:06,c1,-4.00,true")])
    job = orders_job(tmp_path, kafka_bootstrap, fresh_topic, "gold.expectations=[]")
    name, settings = job
    failing = (Expectation(name="positive_amount", rule="amount > 0", action="fail"),)
    settings = dataclasses.replace(settings, gold=dataclasses.replace(settings.gold, expectations=failing))
    with pytest.raises(Exception) as failure:
        run_queries(spark, settings, name, gold_queries)
    line = describe_failure(failure.value)
    assert "ExpectationFailed: expectation positive_amount (amount > 0) failed on 1 rows" in line, line
    assert re.search(rf"the first {fresh_topic}/\d+@\d+", line), line
    events = settings.storage.table_path("orders_events")
    assert spark.read.format("delta").load(events).count() == 0  # the batch was not written: o1 neither
