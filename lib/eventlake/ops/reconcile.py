"""Reconcile a job's run: every Kafka record read is valid or a dead letter, and every valid event is
counted in a window, dropped as a duplicate or as late, or waiting in a window that is not final yet.

    scripts/reconcile.sh [--config conf/local.toml] [--set ...]     # the analytics job
    scripts/reconcile.sh --config conf/gold/ysb.toml                # a gold job of config
    scripts/reconcile.sh --etl [--config conf/etl/orders.toml]      # an ETL flow (eventlake.ops.reconcile_etl)

Prints the figures and exits 1 when they do not add up (2 when the tables are missing).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.errors import PySparkException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from eventlake.ops.lake import Lake
from eventlake.ops.replay import ReplayFigures, replay_figures
from eventlake.pipeline.analytics import EVENTS_TABLE, JOB, WINDOW_BATCHES_TABLE, WINDOWS_QUERY, WINDOWS_TABLE
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.pipeline.etl_flow import configure_etl, etl_flow
from eventlake.pipeline.expectations import EXPECTATION_BATCHES
from eventlake.pipeline.gold import EVENTS, WINDOW_BATCHES
from eventlake.pipeline.intake import INTAKE_TABLE
from eventlake.pipeline.late_events import LATE_EVENTS
from eventlake.runtime.config import ConfigError, GoldSettings, Settings, StorageSettings, load_settings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.session import build_spark_session

if TYPE_CHECKING:
    from eventlake.ops.reconcile_etl import EtlReconciliation


@dataclass(frozen=True)
class WindowedJob:
    """The tables of a job whose windows query reads its intake's events table: the analytics job or a gold job.
    ``counted_column``: the column of ``windows_table`` that counts events (None: it has none)."""

    job: str
    events_table: str
    windows_table: str
    window_batches_table: str
    windows_query: str
    counted_column: str | None = "event_count"


ANALYTICS = WindowedJob(JOB, EVENTS_TABLE, WINDOWS_TABLE, WINDOW_BATCHES_TABLE, WINDOWS_QUERY)


def gold_job(gold: GoldSettings) -> WindowedJob:
    """The tables of the gold job ``gold``; events are counted by its first ``count`` measure of no expression."""
    counted = next((measure.name for measure in gold.measures if measure.fn == "count" and not measure.expr), None)
    return WindowedJob(
        gold.name, job_table(gold.name, EVENTS), gold.output, job_table(gold.name, WINDOW_BATCHES),
        f"{gold.name}_windows", counted,
    )


@dataclass(frozen=True)
class Reconciliation:
    """The figures of one job's run and the checks between them. ``unaccounted``: what is wrong with the
    per-batch records themselves (a batch of a query without its row, a batch recorded twice)."""

    read: int
    valid: int
    invalid: int
    dead_letters: int
    windows_read: int
    windowed: int
    duplicates: int
    late: int
    counted: int | None
    sliding: bool
    unaccounted: tuple[str, ...] = ()
    deduplicated: int | None = None
    job: WindowedJob = ANALYTICS
    late_kept: int | None = None
    pending_in_state: int | None = None
    replays: ReplayFigures | None = None
    dropped: int = 0
    quarantined: int = 0

    @property
    def kept_out(self) -> int:
        """Events a gold job's filter or inner joins left out of the windows (0 for the analytics job)."""
        return 0 if self.deduplicated is None else self.deduplicated - self.windowed

    @property
    def pending(self) -> int | None:
        """Events in windows the watermark has not closed yet (written when it does): counted in the windows
        query's state when it could be read (``pending_in_state``), else those that reached the windows
        minus those counted; None when the windows table counts no events."""
        if self.pending_in_state is not None:
            return self.pending_in_state
        return None if self.counted is None else self.windowed - self.counted

    def problems(self) -> list[str]:
        """What does not add up; empty when the run reconciles."""
        found = list(self.unaccounted)
        if self.read != self.valid + self.dead_letters + self.dropped:
            dropped = f" + dropped by expectations {self.dropped}" if self.dropped else ""
            found.append(f"records read {self.read} != valid {self.valid} + dead letters {self.dead_letters}{dropped}")
        job = self.job
        if self.invalid != self.dead_letters:
            found.append(f"invalid records {self.invalid} != rows in {job.job}_dead_letters {self.dead_letters}")
        if self.replays is not None and not self.replays.adds_up:
            found.append(_replays_problem(self.replays))
        if self.unaccounted:
            return found  # the sums would only repeat that batches are missing
        reached = self.windowed if self.deduplicated is None else self.deduplicated
        if self.windows_read != self.valid:
            found.append(
                f"{job.windows_query} read {self.windows_read} events, the intake found {self.valid} valid: the "
                f"windows have not caught up with {job.events_table}; run the job to the end (availableNow) and "
                "reconcile again"
            )
        elif self.valid != reached + self.duplicates + self.late:
            what = "windowed" if self.deduplicated is None else "de-duplicated"
            found.append(f"valid {self.valid} != {what} {reached} + duplicates {self.duplicates} + late {self.late}")
        if not self.sliding and self.pending is not None and self.pending < 0:
            found.append(f"windows count {self.counted} events, more than the {self.windowed} that reached them")
        if self.pending_in_state is not None and self.counted is not None:
            accounted = self.counted + self.pending_in_state + self.kept_out + self.duplicates + self.late
            if self.valid != accounted:
                found.append(
                    f"valid {self.valid} != counted {self.counted} + not final {self.pending_in_state} (in the "
                    f"windows' state) + left out {self.kept_out} + duplicates {self.duplicates} + late {self.late}"
                )
        return found

    def table(self) -> str:
        unknown = "n/a (sliding windows)" if self.sliding else "n/a (no count measure)"
        rows = [
            ("Kafka records read", self.read),
            ("  valid", self.valid),
            ("  dead letters", self.dead_letters),
            *([("    of them quarantined by expectations", self.quarantined)] if self.quarantined else []),
            *([("  dropped by expectations", self.dropped)] if self.dropped else []),
            ("valid events", self.valid),
            ("  counted in final windows", unknown if self.sliding or self.counted is None else self.counted),
            ("  in windows not final yet", unknown if self.sliding or self.pending is None else self.pending),
            *([("  left out by the filter and joins", self.kept_out)] if self.deduplicated is not None else []),
            ("  duplicates dropped", self.duplicates),
            ("  late events dropped", self.late),
            *([(f"    of them kept in {self.job.job}_{LATE_EVENTS}", self.late_kept)] if self.late_kept else []),
            *(_replay_rows(self.replays) if self.replays is not None and self.replays.replayed else []),
        ]
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value:>12}" if isinstance(value, int) else f"{label:<{width}}  {value}"
                         for label, value in rows)


def _replay_rows(replays: ReplayFigures) -> list[tuple[str, int]]:
    """The table's lines on replayed dead letters: each replay is a new Kafka record, read (and counted) again."""
    return [
        ("dead letters replayed (scripts/replay.sh)", replays.replayed),
        ("  their copies: valid events now", replays.arrived_valid),
        ("  their copies: dead letters again", replays.dead_again),
        ("  their copies: not read yet", replays.not_read),
        ("dead letters not replayed", replays.still_open),
    ]


def _replays_problem(replays: ReplayFigures) -> str:
    twice = f"; {replays.marked_twice} marked replayed twice" if replays.marked_twice else ""
    return (
        f"replayed {replays.replayed} != valid again {replays.arrived_valid} + dead again {replays.dead_again} + not "
        f"read {replays.not_read}, or dead letters {replays.dead_letters} != replayed + not replayed "
        f"{replays.still_open}{twice}"
    )


def missing_batches(batches: Iterable[tuple[str, int]], table: str) -> list[str]:
    """Problems with the batches ``(writer_id, batch_id)`` a query recorded, one row each, in ``table``:
    every batch from 0 to a writer's last must be there, and once."""
    per_writer: dict[str, list[int]] = {}
    for writer_id, batch_id in batches:
        per_writer.setdefault(writer_id, []).append(batch_id)
    found = []
    for writer_id, ids in sorted(per_writer.items()):
        twice = sorted({batch for batch in ids if ids.count(batch) > 1})
        if twice:
            found.append(f"{table} holds batches {twice} of {writer_id} more than once")
        missing = sorted(set(range(max(ids) + 1)) - set(ids))
        if missing:
            found.append(f"{table} lacks batches {_ranges(missing)} of {writer_id}: records not accounted for")
    return found


def broken_chains(batches: Iterable[tuple[str, int, str | None, str | None]], table: str) -> list[str]:
    """Problems with the batches ``(writer_id, batch_id, start_offset, end_offset)`` a query recorded in
    ``table``, where only batches that read something have a row: each writer's first batch starts at the
    beginning (no offset), each next one where the one before ended, and none is recorded twice."""
    per_writer: dict[str, list[tuple[int, str | None, str | None]]] = {}
    for writer_id, batch_id, start, end in batches:
        per_writer.setdefault(writer_id, []).append((batch_id, start, end))
    found = []
    for writer_id, rows in sorted(per_writer.items()):
        rows.sort()
        ids = [batch_id for batch_id, _, _ in rows]
        twice = sorted({batch for batch in ids if ids.count(batch) > 1})
        if twice:
            found.append(f"{table} holds batches {twice} of {writer_id} more than once")
            continue
        previous_end, previous_batch = None, None
        for batch_id, start, end in rows:
            if start != previous_end:
                after = f"after batch {previous_batch}" if previous_batch is not None else "before it"
                found.append(
                    f"{table} lacks the batches of {writer_id} between batch {batch_id} and the one {after}: "
                    "the events they read are not accounted for"
                )
            previous_end, previous_batch = end, batch_id
    return found


def _ranges(numbers: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(first) if first == last else f"{first}-{last}" for first, last in spans)


def reconcile(
    storage: StorageSettings, sliding: bool = False, job: WindowedJob = ANALYTICS, spark: SparkSession | None = None
) -> Reconciliation:
    """Read the job's tables (delta-rs and DuckDB, no JVM) and gather the figures: the intake's from
    ``intake_batches``, the windows query's from its window batches table, each batch's written with its rows,
    once. With ``spark``, the events in windows not final yet are read from the windows query's state too."""
    lake = Lake(storage.tables_root)
    try:
        return _reconcile(lake, storage, sliding, job, spark)
    finally:
        lake.close()


def _reconcile(
    lake: Lake, storage: StorageSettings, sliding: bool, job: WindowedJob, spark: SparkSession | None
) -> Reconciliation:
    intake_table, dead_letters_table = job_table(job.job, INTAKE_TABLE), job_table(job.job, DEAD_LETTERS_TABLE)
    # A job with no invalid record yet has no dead letters table.
    needed = (intake_table, job.window_batches_table, job.windows_table)
    missing = [name for name in needed if name not in lake.tables]
    if missing:
        raise EnvironmentProblem(
            f"tables {', '.join(missing)} are missing under {storage.tables_root}: run the {job.job} job first"
        )
    [totals] = lake.records(
        "SELECT coalesce(sum(records), 0) AS records, coalesce(sum(valid), 0) AS valid,"
        f' coalesce(sum(invalid), 0) AS invalid FROM "{intake_table}"'
    )
    # A batch has one intake row per partition it read: one (writer, batch) each.
    intake_batches = lake.rows(f'SELECT DISTINCT writer_id, batch_id FROM "{intake_table}" WHERE writer_id IS NOT NULL')
    dead_letters = lake.value(f'SELECT count(*) FROM "{dead_letters_table}"') if dead_letters_table in lake else 0
    window_batches = lake.records(f'SELECT * FROM "{job.window_batches_table}"')
    counted = None
    if job.counted_column is not None:
        counted = lake.value(f'SELECT coalesce(sum("{job.counted_column}"), 0) FROM "{job.windows_table}"')
    unaccounted = missing_batches(intake_batches, intake_table)
    unaccounted += broken_chains(
        ((row.writer_id, row.batch_id, row.start_offset, row.end_offset) for row in window_batches),
        job.window_batches_table,
    )
    # Rows written before deduplicated_rows was recorded hold NULL there: the analytics job's windows read
    # every de-duplicated event, so its figure is windowed_rows.
    deduplicated = None
    if job is not ANALYTICS:
        deduplicated = sum(row.deduplicated_rows for row in window_batches)
    # Late events: counted in the late events table, one per Kafka record (a row per window it missed); a batch
    # that kept none there (late_events NULL: written before, or with the capture off) by its operators' metric.
    late_table = job_table(job.job, LATE_EVENTS)
    late_kept = 0
    if late_table in lake:
        late_kept = lake.value(
            f'SELECT count(*) FROM (SELECT DISTINCT topic, "partition", "offset" FROM "{late_table}")'
        )
    late_uncaptured = sum(row.dropped_late for row in window_batches if getattr(row, "late_events", None) is None)
    dropped = quarantined = 0
    expectations_table = job_table(job.job, EXPECTATION_BATCHES)
    if expectations_table in lake:
        [figures] = lake.records(
            "SELECT coalesce(sum(dropped), 0) AS dropped, coalesce(sum(quarantined), 0) AS quarantined"
            f' FROM "{expectations_table}"'
        )
        dropped, quarantined = int(figures.dropped), int(figures.quarantined)
    pending_in_state = None
    if spark is not None and not sliding and job.counted_column is not None:
        pending_in_state = events_in_open_windows(spark, storage.checkpoint_path(job.job, "windows"))
    return Reconciliation(
        read=int(totals.records), valid=int(totals.valid), invalid=int(totals.invalid), dead_letters=dead_letters,
        windows_read=sum(row.input_rows for row in window_batches),
        windowed=sum(row.windowed_rows for row in window_batches),
        duplicates=sum(row.dropped_duplicates for row in window_batches),
        late=late_kept + late_uncaptured,
        counted=None if counted is None else int(counted), sliding=sliding, unaccounted=tuple(unaccounted),
        deduplicated=deduplicated, job=job, late_kept=late_kept if late_table in lake else None,
        pending_in_state=pending_in_state, replays=replay_figures(storage.tables_root, job.job),
        dropped=dropped, quarantined=quarantined,
    )


def events_in_open_windows(spark: SparkSession, checkpoint: str) -> int | None:
    """The events in the windows the windows query at ``checkpoint`` holds open, read from its aggregation's
    state (Spark's state data source): the sum of its ``count`` buffers. None when that cannot be told: no
    such checkpoint, a state other than one window aggregation (sessions), or not exactly one count
    buffer (another measure keeps one too)."""
    spark.streams.active  # noqa: B018 - the state reader needs the session's state store coordinator running
    try:
        operators = spark.read.format("state-metadata").load(checkpoint)
        saves = [row.operatorId for row in operators.where(F.col("operatorName") == "stateStoreSave").collect()]
        if len(saves) != 1:
            return None
        state = spark.read.format("statestore").option("operatorId", saves[0]).load(checkpoint)
    except PySparkException:
        return None  # a checkpoint without state yet
    value = state.schema["value"].dataType
    buffers = value.fieldNames() if isinstance(value, StructType) else []
    if buffers.count("count") != 1:
        return None
    [[events]] = state.agg(F.coalesce(F.sum("value.count"), F.lit(0))).collect()
    return int(events)


def windowed_job(settings: Settings) -> tuple[WindowedJob, bool]:
    """The windowed job a config runs (its ``[gold]`` job, else the analytics job) and whether its windows
    slide. A gold job that streams a table keeps no intake of its own: a ConfigError."""
    if settings.gold.source.table:
        raise ConfigError(
            f"gold job {settings.gold.name} streams the table {settings.gold.source.table} and keeps no intake of "
            "its own: reconcile the job that writes that table"
        )
    if settings.gold.name:
        return gold_job(settings.gold), settings.gold.window.kind == "sliding"
    return ANALYTICS, settings.analytics.slide is not None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/reconcile.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="conf/local.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--etl", action="store_true", help="reconcile the config's ETL flow (bronze, silver, dead letters)"
    )
    parser.add_argument(
        "--read-state", action="store_true",
        help="read the events in windows not final yet from the windows query's state (starts Spark: a JVM)",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, args.overrides)
        if args.etl:
            return _print_reconciled(_reconcile_etl(settings))
        job, sliding = windowed_job(settings)
        spark = build_spark_session(settings.spark) if args.read_state else None
        result = reconcile(settings.storage, sliding=sliding, job=job, spark=spark)
    except (ConfigError, EnvironmentProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return _print_reconciled(result)


def _reconcile_etl(settings: Settings) -> EtlReconciliation:
    from eventlake.ops.reconcile_etl import reconcile_etl  # it reuses this module's batch checks

    return reconcile_etl(settings.storage, etl_flow(configure_etl(settings)[1]))


def _print_reconciled(result: Reconciliation | EtlReconciliation) -> int:
    print(result.table())
    problems = result.problems()
    for mismatch in problems:
        print(f"DOES NOT ADD UP: {mismatch}")
    if not problems:
        print("reconciled: every record read is accounted for")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
