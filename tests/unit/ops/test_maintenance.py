"""The pure parts of table maintenance: VACUUM's retention, what a checkpoint still needs, the report's text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from eventlake.ops.maintenance import (
    CheckpointReport,
    StorageReport,
    StreamNeed,
    TableReport,
    activity,
    format_report,
    human_bytes,
    main,
    needed_versions,
    parse_delta_interval,
    report_json,
    stream_safe_retention,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def test_without_streams_the_retention_is_the_tables():
    retention = stream_safe_retention(None, WEEK, [], NOW, jobs_may_write=False)
    assert retention.hours == 168
    assert retention.reasons == ("168.0 h: the table's deleted file retention",)


def test_a_stream_behind_raises_the_retention_to_its_oldest_version_plus_a_margin():
    behind = StreamNeed("gold/clicks", 12, NOW - timedelta(days=9, minutes=30))
    retention = stream_safe_retention(None, WEEK, [behind], NOW, jobs_may_write=False)
    assert retention.hours == 9 * 24 + 2  # 9.5 days + 1 h margin, rounded up to whole hours
    assert "gold/clicks still reads from version 12, committed 216.5 h ago (+1.0 h)" in retention.reasons[1]


def test_a_lower_retention_is_used_only_when_no_stream_needs_older_files():
    caught_up = StreamNeed("gold/clicks", 40, None)  # its next version is not committed yet
    assert stream_safe_retention(timedelta(0), WEEK, [caught_up], NOW, jobs_may_write=False).hours == 0
    behind = StreamNeed("gold/clicks", 39, NOW - timedelta(minutes=20))
    assert stream_safe_retention(timedelta(0), WEEK, [behind], NOW, jobs_may_write=False).hours == 2


def test_while_a_job_may_write_its_uncommitted_files_are_kept():
    retention = stream_safe_retention(timedelta(0), WEEK, [], NOW, jobs_may_write=True)
    assert retention.hours == 1
    assert retention.reasons[-1] == "1.0 h: a job may be writing files for its next commit"


def delta_offset(table_id: str, version: int, index: int = -1) -> str:
    return json.dumps({"sourceVersion": 1, "reservoirId": table_id, "reservoirVersion": version, "index": index})


def test_the_versions_a_checkpoint_needs_come_from_its_delta_offsets():
    entry = ["v1", '{"batchWatermarkMs":0}', delta_offset("events", 5), delta_offset("beats", 2, 3), "-"]
    assert needed_versions(entry) == {"events": 5, "beats": 2}
    # Kafka offsets name no table.
    assert needed_versions(["v1", "{}", '{"topic":{"0":12,"1":7}}']) == {}
    # Nothing committed yet: the query may still read the table from its first version.
    assert needed_versions(entry, from_start=True) == {"events": 0, "beats": 0}


def test_delta_intervals():
    assert parse_delta_interval("interval 2 days", WEEK) == timedelta(days=2)
    assert parse_delta_interval("interval 36 hours", WEEK) == timedelta(hours=36)
    assert parse_delta_interval(None, WEEK) == WEEK
    assert parse_delta_interval("soon", WEEK) == WEEK


def table(name: str, **figures) -> TableReport:
    defaults = dict(
        path=f"/t/{name}", table_id=f"id-{name}", version=5, live_files=6, live_bytes=6144, small_files=6,
        log_commits=6, log_files=12, log_bytes=2048, disk_files=30, disk_bytes=9000, unreferenced_files=0,
        unreferenced_bytes=0, newest_commit=1000.0,
    )
    return TableReport(name=name, **{**defaults, **figures})


def sample_report() -> StorageReport:
    windows = CheckpointReport(
        job="analytics", query="windows", path="/c/analytics/windows", files=95, bytes=374_740, offsets=7, commits=7,
        state_bytes=365_000, newest_entry=1100.0, delta_sources={"id-analytics_events": 5},
    )
    events = table("analytics_events", unreferenced_files=2, unreferenced_bytes=3072)
    return StorageReport("/t", "/c", [events], [windows])


def test_the_report_reads_as_two_tables_with_totals():
    text = format_report(sample_report())
    lines = text.splitlines()
    assert lines[0].split() == [
        "table", "version", "files", "size", "small", "commits", "log", "files", "log", "size", "unused", "unused",
        "size", "on", "disk",
    ]
    assert lines[1].split() == [
        "analytics_events", "5", "6", "6.0", "KiB", "6", "6", "12", "2.0", "KiB", "2", "3.0", "KiB", "8.8", "KiB",
    ]
    assert lines[2] == "1 tables: 8.8 KiB on disk, 6 small files (OPTIMIZE), 3.0 KiB in files no version uses (VACUUM)"
    assert "analytics/windows" in lines[5] and lines[5].endswith("analytics_events from v5")
    assert lines[-1] == "1 checkpoints: 366.0 KiB"
    assert json.loads(report_json(sample_report()))["checkpoints"][0]["delta_sources"] == {"id-analytics_events": 5}


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1023, 1536, 5 * 1024**3)] == ["0 B", "1023 B", "1.5 KiB", "5.0 GiB"]


def test_recent_commits_and_batches_count_as_activity():
    report = sample_report()
    assert activity(report, timedelta(minutes=10), now=1200.0) == [
        "query analytics/windows logged a batch 100 s ago",
        "table analytics_events committed 200 s ago",
    ]
    assert activity(report, timedelta(minutes=1), now=1200.0) == []


def test_a_missing_tables_root_is_one_line(tmp_path, capsys):
    assert main(["--set", f"storage.tables_root={tmp_path / 'none'}"]) == 2
    missing = tmp_path / "none"
    assert capsys.readouterr().err == f"error: no tables root {missing}: run a job first, or set storage.tables_root\n"
