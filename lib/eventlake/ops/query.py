"""SQL over the Delta tables by name: every table under the configured tables root becomes a view, and the
tables every job keeps (``dead_letters``, ``intake_batches``, ``pipeline_metrics``) one view each, of all jobs.

    scripts/query.sh "SELECT * FROM analytics_windows ORDER BY window_start"
    scripts/query.sh --tables
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession

from eventlake.pipeline.job_tables import (
    EVERY_JOB_TABLES,
    job_table,
    read_every_job,
    shared_tables_of_earlier_versions,
)
from eventlake.runtime.config import ConfigError, load_settings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.session import build_spark_session, jvm_view


def delta_tables(spark: SparkSession, tables_root: str) -> dict[str, str]:
    """Table name -> path of every Delta table directly under ``tables_root`` (any Hadoop file system)."""
    jvm = jvm_view(spark)
    root = jvm.org.apache.hadoop.fs.Path(tables_root)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(root):
        return {}
    tables = {}
    for status in fs.listStatus(root):
        path = status.getPath()
        if status.isDirectory() and fs.exists(jvm.org.apache.hadoop.fs.Path(path, "_delta_log")):
            tables[path.getName()] = path.toString()
    return dict(sorted(tables.items()))


def register_tables(spark: SparkSession, tables_root: str) -> dict[str, str]:
    """Make each Delta table under ``tables_root`` queryable by its name (a temporary view), and the tables
    every job keeps by their common name: ``dead_letters`` holds the rows of ``analytics_dead_letters`` and
    ``etl_dead_letters``. Returns the tables (name -> path)."""
    tables = delta_tables(spark, tables_root)
    for name, path in tables.items():
        spark.read.format("delta").load(path).createOrReplaceTempView(name)
    for name in EVERY_JOB_TABLES:
        every_job = read_every_job(spark, tables, name)
        if name not in tables and every_job is not None:
            every_job.createOrReplaceTempView(name)
    return tables


def require_tables_of_this_version(spark: SparkSession, tables_root: str, job: str) -> None:
    """Stop a job whose tables root holds the tables that earlier versions shared between the jobs: this
    version writes each job's own (see :mod:`eventlake.pipeline.job_tables`)."""
    shared = shared_tables_of_earlier_versions(delta_tables(spark, tables_root))
    if shared:
        own = ", ".join(job_table(job, name) for name in shared)
        raise EnvironmentProblem(
            f"{tables_root} holds {', '.join(shared)}, which earlier versions of eventlake shared between the jobs;"
            f" this version writes each job's own ({own}), because two jobs committing to one Delta table can lose"
            " a commit. Start on new storage.tables_root and storage.checkpoint_root folders"
            " (docs/running.md, 'Upgrading')"
        )


def describe_tables(spark: SparkSession, tables: dict[str, str]) -> DataFrame:
    """One row per table: name, row count, columns, path."""
    rows = [
        (name, spark.table(name).count(), ", ".join(spark.table(name).columns), path) for name, path in tables.items()
    ]
    return spark.createDataFrame(rows, "table string, rows long, columns string, path string")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/query.sh", description=__doc__.splitlines()[0])
    parser.add_argument("sql", nargs="?", help="the query; tables are named after their folders")
    parser.add_argument("--tables", action="store_true", help="list the tables with their row counts and columns")
    parser.add_argument("--limit", type=int, default=100, help="rows to print at most (default 100)")
    parser.add_argument("--config", default="conf/local.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if not args.sql and not args.tables:
        parser.error("give a SQL query, or --tables")
    try:
        settings = load_settings(args.config, args.overrides)
        spark = build_spark_session(settings.spark)
        tables = register_tables(spark, settings.storage.tables_root)
        if not tables:
            raise EnvironmentProblem(
                f"no Delta tables under {settings.storage.tables_root} yet: run a job first (see docs/running.md)"
            )
        result = describe_tables(spark, tables) if args.tables else spark.sql(args.sql)
        result.show(args.limit, truncate=False)
    except (ConfigError, EnvironmentProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except PySparkException as failure:
        first_line = str(failure).strip().splitlines()[0]
        print(f"error: the query failed: {first_line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
