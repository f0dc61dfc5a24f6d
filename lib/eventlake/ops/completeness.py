"""How complete each final window of a windowed job is: the events it counted on time, and the late events
that came for it after it closed (kept in ``<job>_late_events``), read from the tables as they are now.

    scripts/completeness.sh [--config conf/local.toml] [--set ...] [--windows N]

Prints the latest windows first. A window whose every event came late has no row in the windows table but
has one here, with nothing on time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from eventlake.ops.query import delta_tables
from eventlake.ops.reconcile import WindowedJob, windowed_job
from eventlake.pipeline.job_tables import job_table
from eventlake.pipeline.late_events import LATE_EVENTS
from eventlake.runtime.config import ConfigError, StorageSettings, load_settings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.session import build_spark_session

WINDOW = ["window_start", "window_end"]


def window_completeness(spark: SparkSession, storage: StorageSettings, job: WindowedJob) -> DataFrame:
    """One row per window: ``window_start``, ``window_end``, ``on_time`` (events counted in it, over its groups),
    ``late`` (its rows in the late events table) and ``completeness`` (on time / (on time + late))."""
    if job.counted_column is None:
        raise ConfigError(f"{job.job}: its windows count no events (no count measure without expr)")
    tables = delta_tables(spark, storage.tables_root)
    late_table = job_table(job.job, LATE_EVENTS)
    missing = [name for name in (job.windows_table, late_table) if name not in tables]
    if missing:
        raise EnvironmentProblem(
            f"tables {', '.join(missing)} are missing under {storage.tables_root}: run the {job.job} job first"
            + (f" (with {job.job}'s late_events = true)" if late_table in missing else "")
        )
    on_time = (
        spark.read.format("delta").load(tables[job.windows_table])
        .groupBy(*WINDOW).agg(F.sum(job.counted_column).cast("long").alias("on_time"))
    )
    late = (
        spark.read.format("delta").load(tables[late_table])
        .where(F.col("window_start").isNotNull())
        .groupBy(*WINDOW).agg(F.count(F.lit(1)).alias("late"))
    )
    return (
        on_time.join(late, WINDOW, "full")
        .fillna(0, ["on_time", "late"])
        .withColumn("completeness", F.col("on_time") / (F.col("on_time") + F.col("late")))
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/completeness.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="conf/local.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--windows", type=int, default=20, metavar="N", help="the latest N windows (default: 20)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, args.overrides)
        job, _ = windowed_job(settings)
        spark = build_spark_session(settings.spark)
        rows = window_completeness(spark, settings.storage, job).orderBy(F.desc("window_start")).limit(args.windows)
        found = rows.collect()
    except (ConfigError, EnvironmentProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(f"{'window start':<20}  {'window end':<20}  {'on time':>10}  {'late':>8}  complete")
    for row in found:
        window = f"{row.window_start!s:<20}  {row.window_end!s:<20}"
        print(f"{window}  {row.on_time:>10}  {row.late:>8}  {row.completeness:.2%}")
    if not found:
        print("no final window yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
