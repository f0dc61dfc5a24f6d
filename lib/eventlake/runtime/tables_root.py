"""What a tables root holds, read through Hadoop's file system (any root a job writes, object stores included),
and the check every job makes of it at start. Apart from :mod:`eventlake.ops.query`, so that a job starting
does not load DuckDB and Arrow (a third of a second) to make it."""

from __future__ import annotations

from pyspark.sql import SparkSession

from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import job_table, shared_tables_of_earlier_versions
from eventlake.runtime.session import jvm_view


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


def require_tables_of_this_version(spark: SparkSession, tables_root: str, job: str) -> None:
    """Stop a job whose tables root holds the tables that earlier versions shared between the jobs: this
    version writes each job's own (see :mod:`eventlake.runtime.job_tables`)."""
    shared = shared_tables_of_earlier_versions(delta_tables(spark, tables_root))
    if shared:
        own = ", ".join(job_table(job, name) for name in shared)
        raise EnvironmentProblem(
            f"{tables_root} holds {', '.join(shared)}, which earlier versions of eventlake shared between the jobs;"
            f" this version writes each job's own ({own}), because two jobs committing to one Delta table can lose"
            " a commit. Start on new storage.tables_root and storage.checkpoint_root folders"
            " (docs/running.md, 'Upgrading')"
        )
