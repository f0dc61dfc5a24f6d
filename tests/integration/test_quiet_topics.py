"""Windows that close on a quiet topic (idle_timeout), on the real broker, Spark and Delta: the last window is
written without new events, once, and an event that comes for it afterwards is a late event."""

from __future__ import annotations

import threading
import time

import pytest
from delta.tables import DeltaTable

from eventlake.ops.reconcile import gold_job, reconcile
from eventlake.pipeline.gold import gold_queries
from eventlake.runtime.config import ConfigError

from .helpers import send
from .test_gold_jobs import T0, gold_settings, run_gold, session_event, table

pytestmark = pytest.mark.integration

# Windows of 10 s, watermark 5 s: after events at 5, 15 and 25 s the watermark is 20 s and [20 s, 30 s) stays open.
WINDOWS = ("gold.window.size=10 seconds", "gold.watermark=5 seconds", "gold.late_events=true")


def event(event_id: str, second: int) -> tuple:
    return b"one-partition", session_event(event_id, second, "u1", "/p")[1]


def window_counts(spark, settings) -> dict:
    return {
        (row.window_start - T0).seconds: row.event_count for row in table(spark, settings, "event_windows").collect()
    }


def test_an_available_now_run_closes_the_windows_of_a_quiet_topic_once(spark, kafka_bootstrap, fresh_topic, tmp_path):
    send(kafka_bootstrap, fresh_topic, [event("a", 5), event("b", 15), event("c", 25), event("d", 26)])
    waiting = gold_settings(
        "event_windows.toml", kafka_bootstrap, fresh_topic, tmp_path, *WINDOWS, "gold.idle_timeout=1 hour"
    )
    run_gold(spark, waiting)
    assert window_counts(spark, waiting[1]) == {0: 1, 10: 1}  # the topic is not quiet for an hour yet

    quiet = gold_settings(
        "event_windows.toml", kafka_bootstrap, fresh_topic, tmp_path, *WINDOWS, "gold.idle_timeout=1 second"
    )
    time.sleep(1)  # the newest record must be a second old: idle_timeout is processing time
    run_gold(spark, quiet)  # no new record: the heartbeat alone closes [20 s, 30 s)
    assert window_counts(spark, quiet[1]) == {0: 1, 10: 1, 20: 2}
    run_gold(spark, quiet)  # quiet still, but closed already: no second heartbeat
    assert table(spark, quiet[1], "event_windows_heartbeats").count() == 1

    send(kafka_bootstrap, fresh_topic, [event("e", 27), event("f", 61)])  # 27 s: its window was written
    run_gold(spark, waiting)
    late = table(spark, quiet[1], "event_windows_late_events").collect()
    assert [(row.event_id, (row.window_start - T0).seconds) for row in late] == [("e", 20)]
    assert window_counts(spark, waiting[1]) == {0: 1, 10: 1, 20: 2}  # written once: 27 s did not reopen it
    reconciled = reconcile(quiet[1].storage, job=gold_job(quiet[1].gold), spark=spark)
    assert reconciled.problems() == [] and (reconciled.late, reconciled.pending_in_state) == (1, 1)
    # idle_timeout off again: the windows query keeps its heartbeats source (Spark refuses one source less).
    run_gold(spark, gold_settings("event_windows.toml", kafka_bootstrap, fresh_topic, tmp_path, *WINDOWS))


def test_idle_timeout_on_a_windows_checkpoint_started_without_it_is_one_line(
    spark, kafka_bootstrap, fresh_topic, tmp_path
):
    send(kafka_bootstrap, fresh_topic, [event("a", 5)])
    run_gold(spark, gold_settings("event_windows.toml", kafka_bootstrap, fresh_topic, tmp_path, *WINDOWS))
    _, settings = gold_settings(
        "event_windows.toml", kafka_bootstrap, fresh_topic, tmp_path, *WINDOWS, "gold.idle_timeout=1 minute"
    )
    with pytest.raises(ConfigError, match=r"idle_timeout: the windows query.s checkpoint .* was started without it"):
        gold_queries(spark, settings)


def test_an_interval_trigger_closes_the_last_window_once_the_topic_is_quiet(
    spark, kafka_bootstrap, fresh_topic, tmp_path
):
    job = gold_settings(
        "event_windows.toml", kafka_bootstrap, fresh_topic, tmp_path, *WINDOWS,
        "gold.idle_timeout=3 seconds", "gold.trigger=1 second",
    )
    failures: list[BaseException] = []

    def run() -> None:
        try:
            run_gold(spark, job)
        except BaseException as failure:
            failures.append(failure)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        send(kafka_bootstrap, fresh_topic, [event("a", 5), event("b", 15), event("c", 25)])
        deadline = time.monotonic() + 120
        found: dict = {}
        while time.monotonic() < deadline and not failures:
            found = window_counts(spark, job[1]) if _exists(spark, job[1]) else {}
            if 20 in found:
                break
            time.sleep(1)
        assert not failures
        assert found == {0: 1, 10: 1, 20: 1}  # the last window, written with no event after it
    finally:
        for query in spark.streams.active:
            query.stop()
        runner.join(timeout=60)
    assert table(spark, job[1], "event_windows_heartbeats").count() == 1


def _exists(spark, settings) -> bool:
    return DeltaTable.isDeltaTable(spark, settings.storage.table_path("event_windows"))
