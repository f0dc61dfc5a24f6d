"""The tables by name, read two ways: delta-rs + DuckDB (the default, no JVM) and Spark SQL (--engine spark)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from eventlake.ops import query
from eventlake.ops.lake import AsOf, Lake
from eventlake.ops.query import describe_tables, register_tables
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.tables_root import delta_tables
from tests.conftest import PROJECT_ROOT


def save(spark, rows, schema, path, mode="errorifexists"):
    spark.createDataFrame(rows, schema).write.format("delta").mode(mode).save(str(path))


def test_tables_under_the_root_are_queryable_by_name(spark, tmp_path):
    root = tmp_path / "tables"
    save(spark, [(1, "a"), (2, "b")], "n int, s string", root / "letters")
    spark.createDataFrame([(1,)], "n int").write.parquet(str(root / "not_delta"))

    tables = register_tables(spark, str(root))

    assert list(tables) == ["letters"]
    assert [tuple(row) for row in spark.sql("SELECT s FROM letters WHERE n = 2").collect()] == [("b",)]
    [description] = describe_tables(spark, tables).collect()
    assert (description.table, description.rows, description.columns) == ("letters", 2, "n, s")

    lake = Lake(str(root))
    assert list(lake.tables) == ["letters"]
    assert lake.rows("SELECT s FROM letters WHERE n = ?", 2) == [("b",)]
    assert query.describe_lake(lake) == [("letters", 0, 2, "n, s", str(root / "letters"))]


def test_a_missing_root_has_no_tables(spark, tmp_path):
    assert delta_tables(spark, str(tmp_path / "nothing-here")) == {}
    assert Lake(str(tmp_path / "nothing-here")).tables == {}


def test_the_tables_every_job_keeps_are_one_view_with_columns_by_name(spark, tmp_path):
    root = tmp_path / "tables"
    save(spark, [("analytics", "NOT_JSON", 1)], "job string, error_code string, offset long",
         root / "analytics_dead_letters")
    # An older table without the offset column, columns in another order: matched by name, NULL where missing.
    save(spark, [("BAD_TIMESTAMP", "etl")], "error_code string, job string", root / "etl_dead_letters")

    rows = Lake(str(root)).rows('SELECT job, error_code, "offset" FROM dead_letters ORDER BY job')

    assert rows == [("analytics", "NOT_JSON", 1), ("etl", "BAD_TIMESTAMP", None)]


def test_rows_deleted_by_deletion_vectors_are_not_read(spark, tmp_path):
    path = tmp_path / "tables" / "events"
    spark.range(10).selectExpr("id", "id % 2 AS odd").coalesce(1).write.format("delta").option(
        "delta.enableDeletionVectors", "true"
    ).save(str(path))
    spark.sql(f"DELETE FROM delta.`{path}` WHERE odd = 1")
    table = DeltaTable(str(path))
    # The delete marked rows in a deletion vector instead of rewriting the file: the case to_pyarrow_table refuses.
    assert "deletionVectors" in (table.protocol().reader_features or [])
    [file] = pa.table(table.deletion_vectors()).to_pylist()
    assert file["selection_vector"] == [True, False] * 5
    with pytest.raises(Exception, match=r"(?i)deletion"):
        table.to_pyarrow_table()

    assert Lake(str(tmp_path / "tables")).rows("SELECT id FROM events ORDER BY id") == [(0,), (2,), (4,), (6,), (8,)]


def test_time_travel_by_version_and_by_time_across_tables(spark, tmp_path):
    root = tmp_path / "tables"
    save(spark, [(1,)], "n int", root / "first")
    between = datetime.now(UTC)
    time.sleep(0.05)
    save(spark, [(2,)], "n int", root / "first", mode="append")
    save(spark, [(9,)], "n int", root / "second")

    assert Lake(str(root), AsOf(version=0)).rows("SELECT n FROM first") == [(1,)]
    assert Lake(str(root), AsOf(version=1)).rows("SELECT n FROM first ORDER BY n") == [(1,), (2,)]
    assert Lake(str(root), AsOf(time=between)).rows("SELECT n FROM first") == [(1,)]
    assert Lake(str(root), AsOf(time=datetime.now(UTC))).rows("SELECT count(*) FROM first, second") == [(2,)]
    # A moment before a table existed, or a version it never had: one line, not a silent version 0.
    with pytest.raises(EnvironmentProblem, match=r"second was created at .* after"):
        Lake(str(root), AsOf(time=between)).rows("SELECT * FROM second")
    with pytest.raises(EnvironmentProblem, match=r"second has no version 1: its versions are 0-0"):
        Lake(str(root), AsOf(version=1)).rows("SELECT * FROM second")


@pytest.fixture
def sample_root(spark, tmp_path):
    root = tmp_path / "tables"
    save(
        spark,
        [(1, "a,b", b"\x00raw", datetime(2026, 12, 3, 14, 0)), (2, None, None, datetime(2026, 12, 3, 15, 30, 1))],
        "n int, s string, raw binary, seen_at timestamp",
        root / "sample",
    )
    return root


def run(capsys, root, *arguments):
    code = query.main(["--config", str(PROJECT_ROOT / "conf" / "local.toml"),
                       "--set", f"storage.tables_root={root}", *arguments])
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def test_the_cli_prints_a_table_csv_or_json_lines(capsys, sample_root):
    sql = "SELECT * FROM sample ORDER BY n"
    code, table, _ = run(capsys, sample_root, sql)
    assert code == 0
    assert table.splitlines()[1:4] == [
        "| n | s    | raw     | seen_at             |",
        "+---+------+---------+---------------------+",
        "| 1 | a,b  | \\x00raw | 2026-12-03 14:00:00 |",
    ]
    assert table.splitlines()[-1] == "2 rows"

    code, csv_text, _ = run(capsys, sample_root, "--format", "csv", sql)
    assert csv_text.splitlines() == [
        "n,s,raw,seen_at", '1,"a,b",\\x00raw,2026-12-03 14:00:00', "2,,,2026-12-03 15:30:01"
    ]

    code, lines, _ = run(capsys, sample_root, "--format", "json", "--limit", "1", sql)
    assert [json.loads(line) for line in lines.splitlines()] == [
        {"n": 1, "s": "a,b", "raw": "AHJhdw==", "seen_at": "2026-12-03T14:00:00+00:00"}
    ]


def test_the_cli_says_what_is_wrong_in_one_line(capsys, sample_root, tmp_path):
    code, _, err = run(capsys, sample_root, "SELECT nope FROM sample")
    assert (code, err.count("\n")) == (1, 1) and err.startswith("error: the query failed: Binder Error")
    code, _, err = run(capsys, tmp_path / "empty", "SELECT 1")
    assert code == 2 and "no Delta tables under" in err
    code, _, err = run(capsys, sample_root, "--as-of-time", "yesterday", "SELECT 1")
    assert code == 2 and "--as-of-time: not an ISO-8601 time" in err


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM sample",
        "  /* tidy */ DROP TABLE sample",
        "WITH gone AS (SELECT n FROM sample) DELETE FROM sample WHERE n IN (SELECT n FROM gone)",
        "COPY sample TO '/tmp/sample.csv'",
        "INSTALL httpfs",
    ],
)
def test_the_console_reads_only(capsys, sample_root, sql):
    code, _, err = run(capsys, sample_root, sql)
    assert code == 2 and err.startswith("error: scripts/query.sh reads only: "), err
    code, _, err = run(capsys, sample_root, "--engine", "spark", sql)
    assert code == 2 and err.startswith("error: scripts/query.sh reads only: "), err  # before a JVM starts


def test_duckdb_reads_no_file_of_the_machine_unless_asked(capsys, sample_root, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    reading = f"SELECT * FROM read_csv('{secret}')"
    code, _, err = run(capsys, sample_root, reading)
    assert code == 1 and "file system operations are disabled" in err, err
    code, out, _ = run(capsys, sample_root, "--external-access", "--format", "csv", reading)
    assert (code, out.splitlines()) == (0, ["password", "hunter2"])


def test_spark_sql_answers_the_same_as_duckdb(spark, capsys, sample_root, monkeypatch):
    # The CLI's own session would change the shared test session's settings.
    monkeypatch.setattr(query, "build_spark_session", lambda settings: spark)
    sql = "SELECT n, s, seen_at FROM sample ORDER BY n"
    answers = [run(capsys, sample_root, "--format", "csv", "--engine", engine, sql) for engine in ("duckdb", "spark")]
    assert answers[0] == answers[1] and answers[0][0] == 0
    old = [run(capsys, sample_root, "--as-of-version", "0", "--engine", engine, "SELECT count(*) AS n FROM sample")
           for engine in ("duckdb", "spark")]
    assert old[0] == old[1]
