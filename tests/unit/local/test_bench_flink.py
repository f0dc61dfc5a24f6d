"""The Flink benchmark contender (scripts/bench/flink_peer.py) and its place in the harnesses: what can be
checked without Flink, a broker or Spark (the SQL it submits, reading and checking its output files)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]
BENCH = PROJECT_ROOT / "scripts" / "bench"


def _load(name: str, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def peer():
    had = {name: name in sys.modules for name in ("contender", "flink_peer")}
    sys.path.insert(0, str(BENCH))
    try:
        module = _load("flink_peer", "bench_flink_peer")
    finally:
        sys.path.remove(str(BENCH))
    yield module
    sys.modules.pop("bench_flink_peer", None)
    for name, present in had.items():
        if not present:
            sys.modules.pop(name, None)


def test_arguments_follow_the_contender_protocol(peer):
    args = peer.parse_args(["--topic", "t", "--group", "g", "--expected", "5"])
    assert (args.workload, args.watermark_minutes, args.checkpoint_seconds) == ("analytics", 10.0, 5.0)
    assert (args.bootstrap_servers, args.expected, args.setup_only) == ("127.0.0.1:9092", 5, False)
    assert peer.parse_args(["--setup-only"]).setup_only  # no topic needed for that
    with pytest.raises(SystemExit):
        peer.parse_args(["--topic", "t", "--group", "g", "--workload", "other"])


def test_intervals_are_written_to_the_millisecond(peer):
    assert peer.interval(600) == "INTERVAL '0 00:10:00.000' DAY TO SECOND(3)"
    assert peer.interval(10.5) == "INTERVAL '0 00:00:10.500' DAY TO SECOND(3)"
    assert peer.interval(180 * 60 + 86_400) == "INTERVAL '1 03:00:00.000' DAY TO SECOND(3)"
    with pytest.raises(ValueError):
        peer.interval(-1)


def test_the_kafka_source_reads_the_backlog_once_and_bounded(peer):
    options = peer.kafka_options("h:1", "it's", "g")
    assert options["scan.startup.mode"] == "earliest-offset" and options["scan.bounded.mode"] == "latest-offset"
    assert options["json.ignore-parse-errors"] == "true"
    assert peer._with({"topic": "it's"}) == "WITH (\n  'topic' = 'it''s'\n)"


def test_analytics_sql(peer, tmp_path):
    ddl, inserts = peer.analytics_statements("h:1", "events-t", "g", tmp_path, 10.0)
    text = "\n".join(ddl)
    assert "WATERMARK FOR `timestamp` AS `timestamp` - INTERVAL '0 00:10:00.000' DAY TO SECOND(3)" in text
    assert f"'path' = '{(tmp_path / 'windows').as_uri()}'" in text and "'topic' = 'events-t'" in text
    windows, intake = inserts
    assert "ROW_NUMBER() OVER (PARTITION BY window_start, window_end, event_id" in windows
    assert "COUNT(DISTINCT data.user_id)" in windows and "schema_version = '1'" in windows
    assert "FILTER (WHERE" in intake


def test_ysb_sql(peer, tmp_path):
    ddl, inserts = peer.ysb_statements("h:1", "ysb-t", "g", tmp_path, tmp_path / "c.csv")
    text = "\n".join(ddl)
    assert "json.timestamp-format.standard" not in text
    assert "FOR SYSTEM_TIME AS OF e.ts" in text and "WHERE e.event_type = 'view'" in text
    assert "PRIMARY KEY (ad_id) NOT ENFORCED" in text
    assert "INTERVAL '10' SECOND" in inserts[0]


def test_configuration_is_exactly_once_on_two_slots(peer, tmp_path):
    conf = peer.flink_configuration([tmp_path / "a.jar", tmp_path / "b.jar"], tmp_path / "cp", 2.5)
    assert conf["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert conf["execution.checkpointing.interval"] == "2500 ms"
    assert conf["parallelism.default"] == "2" and conf["table.local-time-zone"] == "UTC"
    assert conf["pipeline.jars"] == f"{(tmp_path / 'a.jar').as_uri()};{(tmp_path / 'b.jar').as_uri()}"


def _part(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)


def test_only_committed_files_are_read(peer, tmp_path):
    out = tmp_path / "campaign_windows"
    _part(out, "part-1-0", '"c1","2026-12-07 04:55:00","2026-12-07 04:55:10",3\n')
    _part(out, "part-1-1", 'c2,"2026-12-07 04:55:10","2026-12-07 04:55:20",4\n\n')
    _part(out, ".part-1-2.inprogress.x", 'c3,"2026-12-07 04:55:10","2026-12-07 04:55:20",9\n')
    start = 1_796_619_300_000  # 2026-12-07 04:55:00 UTC
    assert peer.window_ms("2026-12-07 04:55:00") == start
    assert peer.read_campaign_windows(tmp_path) == {("c1", start): 3, ("c2", start + 10_000): 4}
    _part(out, "part-1-3", 'c1,"2026-12-07 04:55:00","2026-12-07 04:55:10",1\n')
    with pytest.raises(peer.RunCheckFailed, match="written twice"):
        peer.read_campaign_windows(tmp_path)
    _part(out, "part-1-3", "c1,too,few\n")
    with pytest.raises(peer.RunCheckFailed, match="expected 4 columns"):
        peer.read_campaign_windows(tmp_path)
    assert peer.read_campaign_windows(tmp_path / "missing") == {}


def test_analytics_totals_and_their_checks(peer, tmp_path):
    _part(tmp_path / "windows", "part-0-0", '"2026-12-07 04:55:00","2026-12-07 05:00:00",click,40,9\n'
                                            '"2026-12-07 04:55:00","2026-12-07 05:00:00",signup,8,5\n')
    _part(tmp_path / "intake", "part-0-0", '"2026-12-07 04:55:00",0,30,29,0,29\n"2026-12-07 04:55:00",1,22,21,0,21\n')
    totals = peer.AnalyticsTotals.read(tmp_path)
    assert totals == peer.AnalyticsTotals(windows=2, events_counted=48, rows_windowed=52, rows_valid=50)
    peer.check_analytics(55, totals)
    with pytest.raises(peer.RunCheckFailed, match="rows windowed"):
        peer.check_analytics(51, totals)
    with pytest.raises(peer.RunCheckFailed, match="no window"):
        peer.check_analytics(10, peer.AnalyticsTotals(0, 0, 0, 0))
    peer.check_ysb(10, {("c", 0): 10})
    with pytest.raises(peer.RunCheckFailed):
        peer.check_ysb(10, {})


def test_one_line_of_a_java_error(peer):
    class Java:
        def __init__(self, text, cause=None):
            self.text, self.cause = text, cause

        def getCause(self):
            return self.cause

        def toString(self):
            return self.text

    error = RuntimeError("An error occurred\n  at ...")
    assert peer.one_line(error) == "An error occurred"
    error.java_exception = Java("outer", Java("root: the cause\n\tat x"))
    assert peer.one_line(error) == "root: the cause"


@pytest.fixture(scope="module")
def ysb_harness():
    pytest.importorskip("psutil")  # scripts/bench/throughput.py needs it (the bench extras)
    had = {name: name in sys.modules for name in ("throughput", "flink_peer", "contender")}
    sys.path.insert(0, str(BENCH))
    try:
        module = _load("ysb", "bench_ysb_flink")
    finally:
        sys.path.remove(str(BENCH))
    yield module
    sys.modules.pop("bench_ysb_flink", None)
    for name, present in had.items():
        if not present:
            sys.modules.pop(name, None)


def test_ysb_harness_runs_flink_on_the_same_topic(ysb_harness, tmp_path):
    args = ysb_harness._arguments(["--events", "500", "--with-flink"])
    command = ysb_harness.flink_command(args, "ysb-t", tmp_path)
    assert command[1].endswith("flink_peer.py") and command[2:4] == ["--workload", "ysb"]
    assert command[command.index("--topic") + 1] == "ysb-t" and command[command.index("--expected") + 1] == "500"
    assert command[command.index("--out-dir") + 1] == str(tmp_path / "flink" / "out")
    assert not ysb_harness._arguments([]).with_flink


def test_ysb_harness_compares_windows_and_prints_both_rows(ysb_harness):
    expected = {("a", 0): 2, ("b", 0): 3}
    assert ysb_harness.compare_windows(expected, dict(expected)) == ""
    said = ysb_harness.compare_windows(expected, {("a", 0): 2, ("b", 0): 4, ("c", 0): 1})
    assert "0 missing, 1 extra, 1 with another count" in said
    run = ysb_harness.YsbRun(1_000_000, 2, "ysb-t", 4, 90.0, wall_seconds=100.0, exit_code=0, processing_seconds=50.0)
    flink = ysb_harness.FlinkRun(1_000_000, wall_seconds=40.0, exit_code=0, processing_seconds=25.0)
    text = ysb_harness.table(run, flink)
    assert "| eventlake gold | 1,000,000 | 2 | 100.0 | 10,000 | 5,000 | 50.0 | 20,000 | 10,000 |" in text
    assert "| Flink SQL | 1,000,000 | 2 | 40.0 | 25,000 | 12,500 | 25.0 | 40,000 | 20,000 |" in text
    assert "| 75,000 | 0.133 | 0.267 |" in text  # per core against Flink's published 75,000: gold, then Flink
    assert "Flink SQL per core: 20,000 events/s" in text
    failed = ysb_harness.FlinkRun(1_000, exit_code=2, wall_seconds=3.0, note="Flink: exit code 2: broken")
    text = ysb_harness.table(run, failed)
    assert "| Flink SQL | 1,000 | 2 | 3.0 | - | - | - | - | - |" in text and "| 0.133 | - |" in text
    assert "- Flink: exit code 2: broken" in text
    assert "Flink here" not in ysb_harness.table(run)


def test_throughput_knows_the_flink_contender(ysb_harness, tmp_path):
    throughput = sys.modules["throughput"]
    assert "flink" in throughput.CONTENDERS
    backlog = throughput.Backlog("h:1", "t", 4, 100, 0.02, 0.0)
    args = throughput._arguments(["--only", "flink"])
    command, what = throughput.contender_command("flink", backlog, tmp_path, args)
    assert command[1].endswith("flink_peer.py") and "Flink SQL" in what
    assert command[command.index("--expected") + 1] == "100"
    assert command[command.index("--workload") + 1] == "analytics"


def test_ysb_harness_checks_the_gold_tables_closed_windows(ysb_harness, spark, tmp_path):
    expected = {("a", 0): 2, ("a", 10_000): 3, ("b", 0): 1}
    assert ysb_harness.compare_closed_windows(expected, {("a", 0): 2, ("b", 0): 1}) == ""  # ("a", 10 s) still open
    said = ysb_harness.compare_closed_windows(expected, {("a", 0): 2, ("b", 0): 5, ("c", 0): 1})
    assert said == "the gold table's closed windows: 1 not expected, 1 with another count"
    table = str(tmp_path / "ysb_campaign_windows")
    windows = [("a", "1970-01-01 00:00:10", 3), ("b", "1970-01-01 00:00:00", 1)]
    rows = spark.createDataFrame(windows, "campaign_id string, start string, views long").selectExpr(
        "campaign_id", "to_timestamp(start) AS window_start", "views"
    )
    rows.write.format("delta").save(table)
    assert ysb_harness.read_gold_windows(tmp_path / "ysb_campaign_windows") == {("a", 10_000): 3, ("b", 0): 1}
    rows.write.format("delta").mode("append").save(table)
    with pytest.raises(ValueError, match="written twice"):
        ysb_harness.read_gold_windows(tmp_path / "ysb_campaign_windows")
