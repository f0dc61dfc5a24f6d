"""SQL over the Delta tables by name: every table under the configured tables root is queryable by its folder's
name, and the tables every job keeps (``dead_letters``, ``intake_batches``, ``pipeline_metrics``) by that name,
the rows of all jobs.

    scripts/query.sh "SELECT * FROM analytics_windows ORDER BY window_start"
    scripts/query.sh --tables
    scripts/query.sh --as-of-version 3 --format csv "SELECT * FROM analytics_windows"
    scripts/query.sh --as-of-time "2026-12-03 14:00:00" "SELECT count(*) FROM analytics_events"
    scripts/query.sh --engine spark "SELECT ..."

By default no JVM starts: delta-rs reads the tables and DuckDB runs the SQL (DuckDB's dialect, close to
Spark's for the usual SELECTs); ``--engine spark`` runs Spark SQL on a local session, for what delta-rs
cannot read or for Spark's dialect.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

import duckdb
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession

from eventlake.ops.lake import AsOf, Lake
from eventlake.runtime.config import ConfigError, load_settings, parse_utc_time
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import EVERY_JOB_TABLES, read_every_job
from eventlake.runtime.session import build_spark_session
from eventlake.runtime.tables_root import delta_tables


def register_tables(spark: SparkSession, tables_root: str, as_of: AsOf | None = None) -> dict[str, str]:
    """Make each Delta table under ``tables_root`` queryable by its name (a temporary view), and the tables
    every job keeps by their common name: ``dead_letters`` holds the rows of ``analytics_dead_letters`` and
    ``etl_dead_letters``. Returns the tables (name -> path)."""
    tables = delta_tables(spark, tables_root)
    reader = spark.read.format("delta")
    if as_of is not None and as_of.version is not None:
        reader = reader.option("versionAsOf", as_of.version)
    elif as_of is not None and as_of.time is not None:
        reader = reader.option("timestampAsOf", f"{as_of.time:%Y-%m-%d %H:%M:%S.%f}")
    for name, path in tables.items():
        reader.load(path).createOrReplaceTempView(name)
    for name in EVERY_JOB_TABLES:
        every_job = read_every_job(spark, tables, name)
        if name not in tables and every_job is not None:
            every_job.createOrReplaceTempView(name)
    return tables


DESCRIBE_COLUMNS = ("table", "version", "rows", "columns", "path")


def describe_tables(spark: SparkSession, tables: dict[str, str]) -> DataFrame:
    """One row per table: name, row count, columns, path (version NULL: Spark's views do not say)."""
    rows = [
        (name, None, spark.table(name).count(), ", ".join(spark.table(name).columns), path)
        for name, path in tables.items()
    ]
    return spark.createDataFrame(rows, "table string, version long, rows long, columns string, path string")


def describe_lake(lake: Lake) -> list[tuple[Any, ...]]:
    """One row per table of ``lake``: name, version read, row count, columns, path."""
    rows = []
    for name, path in lake.tables.items():
        relation = lake.sql(f'SELECT count(*) FROM "{name}"')
        [[count]] = relation.fetchall()
        columns = lake.sql(f'SELECT * FROM "{name}" LIMIT 0').columns
        rows.append((name, lake.versions[name], count, ", ".join(columns), path))
    return rows


def _json_value(value: Any) -> Any:
    """A JSON-ready value: bytes as base64 (raw Kafka bytes need not be text), times as ISO 8601."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return value


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes | bytearray | memoryview):
        # Raw Kafka bytes: text where they are UTF-8, \xNN for the rest and for control characters.
        text = bytes(value).decode("utf-8", errors="backslashreplace")
        return _CONTROL_CHARACTERS.sub(lambda found: f"\\x{ord(found.group()):02x}", text)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")
    return str(value)


def write_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], output: str, out: TextIO) -> None:
    """Print ``rows`` as an aligned ``table``, as ``csv`` (a header line, then one line a row) or as ``json``
    (JSON Lines: one object a row)."""
    if output == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if value is None else _text(value) for value in row] for row in rows])
    elif output == "json":
        for row in rows:
            out.write(json.dumps(dict(zip(columns, (_json_value(value) for value in row), strict=True))) + "\n")
    else:
        cells = [[_text(value) for value in row] for row in rows]
        widths = [max([len(name), *(len(row[index]) for row in cells)]) for index, name in enumerate(columns)]
        rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"
        line = lambda values: "| " + " | ".join(f"{v:<{w}}" for v, w in zip(values, widths, strict=True)) + " |"  # noqa: E731
        out.write("\n".join([rule, line(columns), rule, *(line(row) for row in cells), rule]) + "\n")
        out.write(f"{len(rows)} row{'s' if len(rows) != 1 else ''}\n")


def _as_of(arguments: argparse.Namespace) -> AsOf:
    try:
        moment = parse_utc_time(arguments.as_of_time, "--as-of-time") if arguments.as_of_time else None
    except ValueError as problem:
        raise ConfigError(str(problem)) from None
    return AsOf(version=arguments.as_of_version, time=moment)


# What a read-only console runs: a query, or a statement that shows without changing (first word).
_READING = ("select", "with", "from", "table", "values", "show", "describe", "desc", "explain", "summarize", "pivot")
_FIRST_WORD = re.compile(r"(?:\s|\(|/\*.*?\*/|--[^\n]*(?:\n|$))*(\w+)", re.DOTALL)
# A common table expression followed by a write: WITH t AS (...) INSERT / MERGE / UPDATE / DELETE.
_WRITE_AFTER_CTE = re.compile(r"\)\s*(insert|merge|update|delete)\b", re.IGNORECASE)


def read_only_problem(sql: str) -> str | None:
    """Why the console refuses ``sql``, or None: it reads only (a SELECT, WITH, SHOW, DESCRIBE, EXPLAIN ...).

    Example::

        read_only_problem("DELETE FROM silver_events")  # "scripts/query.sh reads only: 'DELETE' changes ..."
    """
    first = _FIRST_WORD.match(sql)
    word = first.group(1) if first else ""
    write = _WRITE_AFTER_CTE.search(sql)
    if word.lower() in _READING and write is None:
        return None
    shown = (write.group(1) if word.lower() in _READING and write else word).upper()
    return (
        f"scripts/query.sh reads only: {shown!r} changes tables or settings; the jobs are the tables' only writers"
        " (maintenance: scripts/maintain.sh)"
    )


def query_with_duckdb(
    sql: str | None, tables_root: str, as_of: AsOf, limit: int | None, *, external_access: bool = False
) -> tuple[list[str], list]:
    """The columns and (at most ``limit``) rows of ``sql``, or of the table list when ``sql`` is None."""
    lake = Lake(tables_root, as_of, external_access=external_access)
    try:
        if not lake.tables:
            raise EnvironmentProblem(f"no Delta tables under {tables_root} yet: run a job first (see docs/running.md)")
        if sql is None:
            return list(DESCRIBE_COLUMNS), describe_lake(lake)
        relation = lake.sql(sql)
        if relation is None:  # a statement with no result (SET, CREATE ...)
            return [], []
        return relation.columns, (relation.limit(limit) if limit is not None else relation).fetchall()
    finally:
        lake.close()


def query_with_spark(
    sql: str | None, settings_path: str, overrides: list[str], as_of: AsOf, limit: int | None
) -> tuple[list[str], list]:
    """The same with Spark SQL on a local session (starts a JVM)."""
    settings = load_settings(settings_path, overrides)
    spark = build_spark_session(settings.spark)
    tables = register_tables(spark, settings.storage.tables_root, as_of)
    if not tables:
        raise EnvironmentProblem(
            f"no Delta tables under {settings.storage.tables_root} yet: run a job first (see docs/running.md)"
        )
    result = describe_tables(spark, tables) if sql is None else spark.sql(sql)
    rows = result.limit(limit).collect() if limit is not None else result.collect()
    return result.columns, [tuple(row) for row in rows]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/query.sh", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sql", nargs="?", help="the query; tables are named after their folders")
    parser.add_argument("--tables", action="store_true", help="list the tables: version, rows, columns, path")
    parser.add_argument("--format", dest="output", choices=("table", "csv", "json"), default="table",
                        help="table (default), csv (with a header line) or json (JSON Lines, bytes as base64)")
    parser.add_argument("--limit", type=int, default=None,
                        help="rows to print at most (default: 100 as a table, all as csv or json)")
    moment = parser.add_mutually_exclusive_group()
    moment.add_argument("--as-of-version", type=int, metavar="N", help="read every table at its version N")
    moment.add_argument("--as-of-time", metavar="TIME",
                        help="read each table as it was at TIME (UTC, ISO 8601: 2026-12-03 14:00:00)")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                        help="duckdb (default: delta-rs + DuckDB, no JVM) or spark (Spark SQL; starts a JVM)")
    parser.add_argument("--external-access", action="store_true",
                        help="duckdb: let the query read files and URLs itself (read_csv, ...); off by default")
    parser.add_argument("--config", default="conf/local.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if not args.sql and not args.tables:
        parser.error("give a SQL query, or --tables")
    limit = args.limit if args.limit is not None else (100 if args.output == "table" else None)
    sql = None if args.tables else args.sql
    try:
        if sql is not None and (problem := read_only_problem(sql)):
            raise ConfigError(problem)
        as_of = _as_of(args)
        if args.engine == "spark":
            columns, rows = query_with_spark(sql, args.config, args.overrides, as_of, limit)
        else:
            settings = load_settings(args.config, args.overrides)
            columns, rows = query_with_duckdb(
                sql, settings.storage.tables_root, as_of, limit, external_access=args.external_access
            )
    except (ConfigError, EnvironmentProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except (PySparkException, duckdb.Error) as failure:
        first_line = str(failure).strip().splitlines()[0]
        print(f"error: the query failed: {first_line}", file=sys.stderr)
        return 1
    if columns:
        try:
            write_rows(columns, rows, args.output, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader (head, less) stopped early: not a failure
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
