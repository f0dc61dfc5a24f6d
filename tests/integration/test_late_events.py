"""Late events kept exactly, on the real broker, Spark and Delta: what the windows query's watermark drops is
what lands in <job>_late_events, row for row, and the reconciliation counts it from there."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from eventlake.ops.completeness import window_completeness
from eventlake.ops.reconcile import gold_job, reconcile

from .helpers import PROJECT_ROOT, send
from .test_gold_jobs import T0, gold_settings, run_gold, session_event, table

pytestmark = pytest.mark.integration


def event(event_id: str, second: int) -> tuple:
    return b"one-partition", session_event(event_id, second, "u1", "/p")[1]


def test_late_events_are_what_the_aggregation_dropped_against_the_watermark_of_the_batch_before(
    spark, kafka_bootstrap, fresh_topic, tmp_path
):
    # Windows of 10 s, watermark 5 s; 4 records per intake batch and one intake batch per windows batch, so the
    # windows query runs three batches of data in a row. Batch 1 runs with watermark 26 s (latest 31 s of batch
    # 0) but Spark drops its late rows against batch 0's watermark (none yet): 8 s is counted in [0, 10), which
    # closes in that same batch. Batch 2 runs with watermark 35 s and drops against 26 s: 20 s and 26 s are late,
    # 27 s is counted. A comparison with the batch's own watermark would call 8 s and 27 s late too.
    job = gold_settings(
        "event_windows.toml",
        kafka_bootstrap,
        fresh_topic,
        tmp_path,
        "gold.window.size=10 seconds",
        "gold.watermark=5 seconds",
        "gold.late_events=true",
        "gold.max_files_per_trigger=1",
        "kafka.max_offsets_per_trigger=4",
    )
    batches = [
        [("a", 5), ("b", 15), ("c", 25), ("d", 31)],
        [("e", 8), ("f", 12), ("g", 40), ("b", 15)],  # b again: a duplicate
        [("h", 20), ("i", 26), ("j", 27), ("k", 50)],
    ]
    send(kafka_bootstrap, fresh_topic, [event(event_id, second) for batch in batches for event_id, second in batch])
    run_gold(spark, job)
    settings = job[1]

    late = table(spark, settings, "event_windows_late_events").collect()
    at = lambda second: T0 + timedelta(seconds=second)  # noqa: E731
    assert sorted(
        (row.event_id, row.window_start, row.window_end, row.watermark, row.late_by_seconds) for row in late
    ) == [
        ("h", at(20), at(30), at(26), 6.0),
        ("i", at(20), at(30), at(26), 0.0),
    ]
    assert {row.batch_id for row in late} == {2} and all(row.offset is not None for row in late)
    windows = {row.window_start: row.event_count for row in table(spark, settings, "event_windows").collect()}
    assert windows == {at(0): 2, at(10): 2, at(20): 2, at(30): 1}
    figures = table(spark, settings, "event_windows_window_batches").orderBy("batch_id").collect()
    assert [(row.batch_id, row.late_events) for row in figures] == [(0, 0), (1, 0), (2, 2)]

    reconciled = reconcile(settings.storage, job=gold_job(settings.gold), spark=spark)
    assert reconciled.problems() == [] and reconciled.late_kept == 2 and reconciled.pending_in_state == 2
    assert (reconciled.valid, reconciled.counted, reconciled.pending, reconciled.duplicates, reconciled.late) == (
        12,
        7,
        2,
        1,
        2,
    )
    completeness = window_completeness(settings.storage, gold_job(settings.gold))
    assert sorted((row.window_start, row.on_time, row.late, row.completeness) for row in completeness) == [
        (at(0), 2, 0, 1.0),
        (at(10), 2, 0, 1.0),
        (at(20), 2, 2, 0.5),
        (at(30), 1, 0, 1.0),
    ]
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "eventlake.ops.completeness",
            "--config",
            "conf/gold/event_windows.toml",
            "--set",
            f"storage.tables_root={tmp_path / 'tables'}",
            "--set",
            f"spark.jars_dir={PROJECT_ROOT / 'jars' / 'spark'}",
            "--windows",
            "2",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert shown.returncode == 0, shown.stderr
    lines = [line.split() for line in shown.stdout.splitlines()[1:]]
    assert lines == [
        ["2026-01-01", "10:00:30", "2026-01-01", "10:00:40", "1", "0", "100.00%"],
        ["2026-01-01", "10:00:20", "2026-01-01", "10:00:30", "2", "2", "50.00%"],
    ]
