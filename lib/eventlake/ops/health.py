"""The health report: how each job is doing, from ``pipeline_metrics`` and ``dead_letters``, in numbers
and in a chart.

    scripts/health.sh [--config conf/local.toml] [--set ...] [--out data/health.png]

Prints, per job, its last batch, throughput, Kafka lag, late and duplicate drops, dead letters and the
most frequent error codes, and writes a PNG with throughput, batch duration, lag and dead letters over
time. The chart needs matplotlib, from the ``report`` extra (``scripts/setup.sh`` installs it). Exits 2
when there is nothing to report (no ``pipeline_metrics`` yet), or when matplotlib is missing: then the
figures are printed and one line says how to get the chart.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from eventlake.ops.lake import Lake
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.pipeline.expectations import EXPECTATION_BATCHES
from eventlake.runtime.config import ConfigError, StorageSettings, load_settings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.metrics import METRICS_TABLE

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TOP_ERRORS = 3

# Not "pip install eventlake[report]": eventlake is installed from its checkout, not from an index.
MATPLOTLIB_MISSING = (
    "the health chart needs matplotlib: pip install -e '.[report]' in the project folder (or run scripts/setup.sh)"
)


class ChartUnavailable(EnvironmentProblem):
    """The chart cannot be drawn on this machine (matplotlib is not installed); the figures still can."""


@dataclass(frozen=True)
class QueryHealth:
    """One streaming query over all its recorded batches (each batch once, whatever the restarts)."""

    name: str
    batches: int
    last_batch_time: datetime
    rows_read: int
    rows_per_second: float
    kafka_lag: int | None


@dataclass(frozen=True)
class JobHealth:
    """One job: its queries, what its watermark and deduplication dropped, and its dead letters."""

    job: str
    queries: tuple[QueryHealth, ...]
    dropped_late: int
    dropped_duplicates: int
    dead_letters: int
    top_errors: tuple[tuple[str, int], ...]
    # (name, action, rows checked, rows failing) of each expectation of the job, over all its batches.
    expectations: tuple[tuple[str, str, int, int], ...] = ()

    def lines(self) -> list[str]:
        last = max(query.last_batch_time for query in self.queries)
        errors = ", ".join(f"{code} {count}" for code, count in self.top_errors) or "none"
        lines = [
            f"job {self.job}: last batch {last:%Y-%m-%d %H:%M:%S} UTC",
            f"  dead letters {self.dead_letters} (top: {errors}), late dropped {self.dropped_late},"
            f" duplicates dropped {self.dropped_duplicates}",
        ]
        if self.expectations:
            figures = ", ".join(
                f"{name} ({action}) {failed} of {checked} failed" for name, action, checked, failed in self.expectations
            )
            lines.append(f"  expectations: {figures}")
        for query in self.queries:
            lag = "-" if query.kafka_lag is None else str(query.kafka_lag)
            lines.append(
                f"  {query.name}: {query.batches} batches, {query.rows_read} rows read,"
                f" {query.rows_per_second:.0f} rows/s while busy, lag now {lag}"
            )
        return lines


# A batch replayed after a restart may be reported twice: count it once.
PER_BATCH = (
    "SELECT * FROM pipeline_metrics QUALIFY row_number() OVER (PARTITION BY query_id, batch_id ORDER BY batch_time) = 1"
)


def job_health(lake: Lake) -> list[JobHealth]:
    """The health of every job found in ``pipeline_metrics`` (and its rows of ``dead_letters``)."""
    queries = _query_totals(lake)
    errors = _error_counts_by_job(lake) if DEAD_LETTERS_TABLE in lake else {}
    jobs = dict.fromkeys(row.job for row in queries)  # in the order of the rows: by job name
    return [
        dataclasses.replace(
            _job_health(job, [row for row in queries if row.job == job], errors.get(job, [])),
            expectations=_expectation_totals(lake, job),
        )
        for job in jobs
    ]


def _expectation_totals(lake: Lake, job: str) -> tuple[tuple[str, str, int, int], ...]:
    """(name, action, rows checked, rows failing) per expectation of ``job``, from its expectation batches."""
    table = job_table(job, EXPECTATION_BATCHES)
    if table not in lake:
        return ()
    rows = lake.rows(
        f'SELECT expectation, any_value(action), sum(checked), sum(failed) FROM "{table}"'
        " GROUP BY expectation ORDER BY expectation"
    )
    return tuple((name, action, int(checked), int(failed)) for name, action, checked, failed in rows)


def _query_totals(lake: Lake) -> list[SimpleNamespace]:
    """One row per job and query: its batch count, last batch time, the sums of its batches, and its
    latest Kafka lag; ordered by job and query."""
    return lake.records(
        f"""
        SELECT job, query_name, count(*) AS batches, max(batch_time) AS last_batch_time,
               coalesce(sum(input_rows), 0) AS rows_read, coalesce(sum(batch_duration_ms), 0) AS busy_ms,
               arg_max_null(kafka_lag, (batch_time, batch_id)) AS kafka_lag,
               coalesce(sum(dropped_late), 0) AS dropped_late,
               coalesce(sum(dropped_duplicates), 0) AS dropped_duplicates
        FROM ({PER_BATCH}) GROUP BY job, query_name ORDER BY job, query_name
        """
    )


def _error_counts_by_job(lake: Lake) -> dict[str, list[tuple[str, int]]]:
    """Job -> its (error code, dead letters) pairs, most frequent first (ties by code)."""
    counts = lake.rows(
        "SELECT job, error_code, count(*) AS n FROM dead_letters GROUP BY job, error_code "
        "ORDER BY job, n DESC, error_code"
    )
    errors: dict[str, list[tuple[str, int]]] = {}
    for job, code, count in counts:
        errors.setdefault(job, []).append((code, count))
    return errors


def _job_health(job: str, queries: list[SimpleNamespace], errors: list[tuple[str, int]]) -> JobHealth:
    """One job from the totals of its queries and its error counts (most frequent first)."""
    return JobHealth(
        job=job,
        queries=tuple(_query_health(row) for row in queries),
        dropped_late=sum(row.dropped_late for row in queries),
        dropped_duplicates=sum(row.dropped_duplicates for row in queries),
        dead_letters=sum(count for _, count in errors),
        top_errors=tuple(errors[:TOP_ERRORS]),
    )


def _query_health(totals: SimpleNamespace) -> QueryHealth:
    return QueryHealth(
        name=totals.query_name,
        batches=totals.batches,
        last_batch_time=totals.last_batch_time,
        rows_read=int(totals.rows_read),
        # Rows per second of processing time (not wall time): idle time between batches does not count.
        rows_per_second=totals.rows_read / (totals.busy_ms / 1000) if totals.busy_ms else 0.0,
        kafka_lag=totals.kafka_lag,
    )


def plot_health(lake: Lake, path: Path) -> None:
    """Write a PNG of four charts over time: rows/s, batch duration, Kafka lag (per query) and dead
    letters per minute (per job). Raises :class:`ChartUnavailable` when matplotlib is not installed."""
    _use_matplotlib_for_files()
    import matplotlib.pyplot as plt

    series = _batch_series(lake)
    figure, axes = plt.subplots(2, 2, figsize=(13, 8), sharex=False)
    for axis, (title, value) in zip((axes[0][0], axes[0][1], axes[1][0]), _QUERY_CHARTS, strict=True):
        _plot_per_query(axis, title, series, value)
    _plot_dead_letters(axes[1][1], lake)
    for row_axes in axes:
        for each in row_axes:
            each.tick_params(axis="x", labelrotation=30, labelsize="small")
    figure.suptitle(f"eventlake health, {datetime.utcnow():%Y-%m-%d %H:%M} UTC")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _use_matplotlib_for_files() -> None:
    """Select matplotlib's file-only backend (no display needed); :class:`ChartUnavailable` when matplotlib
    is not installed, since it is an optional extra."""
    try:
        import matplotlib
    except ImportError:
        raise ChartUnavailable(MATPLOTLIB_MISSING) from None
    matplotlib.use("Agg")


# The charts drawn per query: title, and the value of a batch (None: no point for that batch).
_QUERY_CHARTS: tuple[tuple[str, Callable[[SimpleNamespace], Any]], ...] = (
    ("rows per second (processed)", lambda row: row.processed_rows_per_second),
    ("batch duration (s)", lambda row: (row.batch_duration_ms or 0) / 1000),
    ("Kafka lag (records)", lambda row: row.kafka_lag),
)


def _batch_series(lake: Lake) -> list[SimpleNamespace]:
    """The figures the charts draw, one row per batch, in time order."""
    return lake.records(
        "SELECT job, query_name, batch_time, processed_rows_per_second, batch_duration_ms, kafka_lag"
        f" FROM ({PER_BATCH}) ORDER BY batch_time"
    )


def _plot_per_query(
    axis: Axes, title: str, series: list[SimpleNamespace], value: Callable[[SimpleNamespace], Any]
) -> None:
    """One line per query of ``value`` over batch time; batches without a value are left out."""
    for job, query in sorted({(row.job, row.query_name) for row in series}):
        points = [(row.batch_time, value(row)) for row in series if (row.job, row.query_name) == (job, query)]
        points = [(time, number) for time, number in points if number is not None]
        if points:
            axis.plot(*zip(*points, strict=True), marker=".", label=query)
    axis.set_title(title)
    axis.legend(fontsize="small")


def _plot_dead_letters(axis: Axes, lake: Lake) -> None:
    """Bars of dead letters per minute, one colour per job (an empty chart when there is no table)."""
    if DEAD_LETTERS_TABLE in lake:
        per_minute = lake.records(
            "SELECT job, date_trunc('minute', ingested_at) AS minute, count(*) AS n FROM dead_letters"
            " GROUP BY ALL ORDER BY minute"
        )
        for job in sorted({row.job for row in per_minute}):
            points = [(row.minute, row.n) for row in per_minute if row.job == job]
            # width is in days: 0.0006 (52 s) leaves a gap between the bars of adjacent minutes.
            axis.bar([time for time, _ in points], [count for _, count in points], width=0.0006, label=job)
        axis.legend(fontsize="small")
    axis.set_title("dead letters per minute")


def health_lake(storage: StorageSettings) -> Lake:
    """The tables the report reads (no JVM); an EnvironmentProblem when no job has written its metrics yet."""
    lake = Lake(storage.tables_root)
    if METRICS_TABLE not in lake:
        lake.close()
        raise EnvironmentProblem(
            f"there is no {METRICS_TABLE} table of any job under {storage.tables_root}: run a job first"
        )
    return lake


def main(argv: Sequence[str] | None = None) -> int:
    """The health CLI: prints the figures and writes the chart; returns the exit code (2 when there is
    nothing to report, or no matplotlib to draw the chart with)."""
    parser = argparse.ArgumentParser(prog="scripts/health.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="conf/local.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default="data/health.png", help="where to write the chart (default: data/health.png)")
    args = parser.parse_args(argv)
    chart = Path(args.out)
    try:
        settings = load_settings(args.config, args.overrides)
        lake = health_lake(settings.storage)
        report = job_health(lake)
    except (ConfigError, EnvironmentProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    for job in report:
        print("\n".join(job.lines()))
    # After the figures: without matplotlib they are still worth having.
    try:
        plot_health(lake, chart)
    except ChartUnavailable as problem:
        print(f"error: {problem}; no chart written", file=sys.stderr)
        return 2
    finally:
        lake.close()
    print(f"chart: {chart.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
