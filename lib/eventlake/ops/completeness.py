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
from types import SimpleNamespace

from eventlake.ops.lake import Lake
from eventlake.ops.reconcile import WindowedJob, windowed_job
from eventlake.pipeline.late_events import LATE_EVENTS
from eventlake.runtime.config import ConfigError, StorageSettings, load_settings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import job_table

WINDOW = ["window_start", "window_end"]


def window_completeness(
    storage: StorageSettings, job: WindowedJob, windows: int | None = None
) -> list[SimpleNamespace]:
    """One row per window, the latest first (the latest ``windows`` only, when given): ``window_start``,
    ``window_end``, ``on_time`` (events counted in it, over its groups), ``late`` (its rows in the late events
    table) and ``completeness`` (on time / (on time + late)). Read with delta-rs and DuckDB (no JVM)."""
    if job.counted_column is None:
        raise ConfigError(f"{job.job}: its windows count no events (no count measure without expr)")
    lake = Lake(storage.tables_root)
    try:
        late_table = job_table(job.job, LATE_EVENTS)
        missing = [name for name in (job.windows_table, late_table) if name not in lake.tables]
        if missing:
            raise EnvironmentProblem(
                f"tables {', '.join(missing)} are missing under {storage.tables_root}: run the {job.job} job first"
                + (f" (with {job.job}'s late_events = true)" if late_table in missing else "")
            )
        return lake.records(
            f"""
            WITH on_time AS (
                SELECT window_start, window_end, CAST(sum("{job.counted_column}") AS BIGINT) AS on_time
                FROM "{job.windows_table}" GROUP BY ALL
            ), late AS (
                SELECT window_start, window_end, count(*) AS late FROM "{late_table}"
                WHERE window_start IS NOT NULL GROUP BY ALL
            )
            SELECT window_start, window_end, coalesce(on_time, 0) AS on_time, coalesce(late, 0) AS late,
                   coalesce(on_time, 0) / (coalesce(on_time, 0) + coalesce(late, 0)) AS completeness
            FROM on_time FULL JOIN late USING (window_start, window_end)
            ORDER BY window_start DESC, window_end DESC {'' if windows is None else f'LIMIT {int(windows)}'}
            """
        )
    finally:
        lake.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/completeness.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="conf/local.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--windows", type=int, default=20, metavar="N", help="the latest N windows (default: 20)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, args.overrides)
        job, _ = windowed_job(settings)
        found = window_completeness(settings.storage, job, args.windows)
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
