"""The parts of the fault injection (eventlake.local.faults) that need no broker or job: where a kill landed,
read from checkpoint and Delta log files; the row-for-row comparison of two tables; the report's verdict."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eventlake.local.faults import (
    JOBS,
    FaultOptions,
    FaultReport,
    JobRecord,
    Kill,
    ReconcileResult,
    TableComparison,
    compare_rows,
    compare_table,
    main,
    split,
    table_key,
    where_it_stood,
)
from eventlake.runtime.config import StorageSettings

STARTED_NS = 1_700_000_000_000_000_000
SECOND_NS = 1_000_000_000


def test_split_keeps_every_record_in_order():
    parts = split(list(range(10)), 3)
    assert [len(part) for part in parts] == [3, 3, 4]
    assert [item for part in parts for item in part] == list(range(10))


def test_table_keys():
    assert table_key("analytics_windows", []) == ["window_start", "window_end", "event_type"]
    assert table_key("etl_dead_letters", []) == ["topic", "partition", "offset"]
    assert table_key("analytics_intake_batches", []) == ["batch_id", "topic", "partition"]
    assert table_key("some_table", ["a", "batch_id", "b"]) == ["a", "b"]


# --- where a kill landed -------------------------------------------------------------------------------------


def _file(path: Path, at_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    os.utime(path, ns=(at_ns, at_ns))


@pytest.fixture
def storage(tmp_path) -> StorageSettings:
    return StorageSettings(tables_root=str(tmp_path / "tables"), checkpoint_root=str(tmp_path / "checkpoints"))


def _checkpoint(storage: StorageSettings, query: str) -> Path:
    return Path(storage.checkpoint_path("analytics", query))


def _commit(storage: StorageSettings, table: str, version: int, at_ns: int) -> None:
    _file(Path(storage.table_path(table)) / "_delta_log" / f"{version:020d}.json", at_ns)


def _where(storage: StorageSettings, stdout: str = "analytics: starting 2 queries in turn\n", before=None):
    return where_it_stood(JOBS["analytics"], storage, stdout, STARTED_NS, before or {})


def test_a_kill_before_the_queries_start_is_at_start_up(storage):
    assert _where(storage, stdout="")[0] == "start-up"


def test_a_kill_after_the_start_line_and_before_any_batch(storage):
    assert _where(storage)[:2] == ("queries starting", "queries started, no batch begun by this run")


def test_a_kill_inside_a_batch_names_the_tables_committed_for_it(storage):
    intake = _checkpoint(storage, "intake")
    for batch in (0, 1):
        _file(intake / "offsets" / str(batch), STARTED_NS + batch * SECOND_NS)
    _file(intake / "commits" / "0", STARTED_NS + SECOND_NS // 2)
    _commit(storage, "analytics_events", 3, STARTED_NS + 2 * SECOND_NS)  # after offsets/1: batch 1's
    _commit(storage, "analytics_dead_letters", 0, STARTED_NS - SECOND_NS)  # before the run
    _commit(storage, "analytics_pipeline_metrics", 5, STARTED_NS + 2 * SECOND_NS)  # monitoring: left out
    moment, detail, partly = _where(storage)
    assert moment == "in a batch" and partly
    assert detail == "during analytics_intake batch 1; committed so far: analytics_events"


def test_a_batch_an_earlier_run_began_is_run_again(storage):
    _file(_checkpoint(storage, "intake") / "offsets" / "4", STARTED_NS - SECOND_NS)
    moment, detail, partly = _where(storage, before={"analytics_intake": 4})
    assert (moment, partly) == ("in a batch run again", False)
    assert detail == "during analytics_intake batch 4, run again; no table committed yet"


def test_a_kill_during_the_windows_query(storage):
    intake, windows = _checkpoint(storage, "intake"), _checkpoint(storage, "windows")
    _file(intake / "offsets" / "6", STARTED_NS + SECOND_NS)
    _file(intake / "commits" / "6", STARTED_NS + 2 * SECOND_NS)
    _file(windows / "offsets" / "0", STARTED_NS + 3 * SECOND_NS)
    assert _where(storage)[1] == "during analytics_windows batch 0; no table committed yet"


def test_a_kill_between_batches_names_the_last_batch_committed(storage):
    intake = _checkpoint(storage, "intake")
    _file(intake / "offsets" / "2", STARTED_NS + SECOND_NS)
    _file(intake / "commits" / "2", STARTED_NS + 2 * SECOND_NS)
    assert _where(storage)[:2] == (
        "between batches", "between batches: analytics_intake batch 2 committed, the next not begun"
    )


# --- the comparison --------------------------------------------------------------------------------------------


def _rows(spark, rows: list[tuple]):
    schema = "topic string, partition int, offset long, end_offset string, batch_id long, writer_id string"
    return spark.createDataFrame(rows, schema)


def _offsets(table_id: str, version: int) -> str:
    return f'{{"sourceVersion":1,"reservoirId":"{table_id}","reservoirVersion":{version},"index":-1}}'


def test_tables_equal_but_for_the_writer_and_the_table_id_in_offsets(spark):
    first, second = ("t", 0, 1, _offsets("a", 3), 0, "w1"), ("t", 0, 2, None, 1, "w1")
    # Another writer, another table id in the offsets, another order: the same rows.
    killed = [(*second[:5], "w2"), ("t", 0, 1, _offsets("b", 3), 0, "w2")]
    comparison = compare_rows("analytics", "x_dead_letters", _rows(spark, [first, second]), _rows(spark, killed))
    assert comparison.equal, comparison
    assert (comparison.reference_rows, comparison.killed_rows) == (2, 2)


def test_a_row_written_twice_lost_or_of_another_batch_is_found(spark):
    rows = [("t", 0, 1, None, 0, "w"), ("t", 0, 2, None, 1, "w")]
    reference = _rows(spark, rows)

    twice = compare_rows("etl", "etl_dead_letters", reference, _rows(spark, [*rows, rows[1]]))
    assert (twice.equal, twice.missing, twice.extra, twice.repeated) == (False, 0, 1, 1)
    assert any(example.startswith("repeated:") for example in twice.examples)
    assert compare_rows("etl", "etl_dead_letters", reference, _rows(spark, rows[:1])).missing == 1
    moved = compare_rows("etl", "etl_dead_letters", reference, _rows(spark, [rows[0], ("t", 0, 2, None, 2, "w")]))
    assert (moved.missing, moved.extra, moved.repeated) == (1, 1, 0)
    assert any("'batch_id': 2" in example for example in moved.examples)


def test_a_table_only_one_run_has_is_a_difference(spark, tmp_path):
    _rows(spark, [("t", 0, 1, None, 0, "w")]).write.format("delta").save(str(tmp_path / "only"))
    comparison = compare_table(spark, "etl", "etl_dead_letters", str(tmp_path / "only"), None)
    assert not comparison.equal and comparison.problem == "DIFFERENT: only the reference run has it"


# --- the verdict -------------------------------------------------------------------------------------------------


def _report(tables: list[TableComparison], kills: int = 2, reconcile_exit: int = 0) -> FaultReport:
    options = FaultOptions(kills=2, jobs=("analytics",))
    record = JobRecord("analytics", StorageSettings(), StorageSettings())
    record.kills = [Kill("analytics", n, 1, f"run-{n}", 20.0, "aimed", "in a batch", "during") for n in range(kills)]
    return FaultReport(options, "topic", "valid 10", [record], tables, ReconcileResult(reconcile_exit, "table"))


def test_the_report_exit_codes():
    equal = TableComparison("analytics", "analytics_windows", 10, 10)
    assert _report([equal]).exit_code() == 0
    assert "RESULT: every table equal row for row" in _report([equal]).summary()
    different = TableComparison("analytics", "analytics_windows", 10, 11, extra=1)
    assert _report([different]).exit_code() == 1
    assert "FAILED: analytics: analytics_windows" in _report([different]).summary()
    assert _report([equal], reconcile_exit=1).exit_code() == 1
    short = _report([equal], kills=1)
    assert short.exit_code() == 2 and "1 kills of the 2 asked" in short.summary()


def test_wrong_arguments_stop_before_anything_starts(capsys):
    assert main(["--jobs", "analytics,nightly"]) == 2
    assert "--jobs" in capsys.readouterr().err
    assert main(["--max-batches-before-kill", "-1"]) == 2
