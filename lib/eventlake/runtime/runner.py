"""Running a job's streaming queries to the end: checks before start, waiting, stopping cleanly."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.errors import PySparkException, StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from eventlake.runtime.config import ConfigError, Settings, load_settings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.kafka_admin import require_topic
from eventlake.runtime.metrics import MetricsRecorder, metrics_table
from eventlake.runtime.progress import ProgressPrinter
from eventlake.runtime.running_lock import hold_while_running
from eventlake.runtime.session import build_spark_session
from eventlake.runtime.storage_checks import state_partitions_note
from eventlake.runtime.tables_root import require_tables_of_this_version


@dataclass(frozen=True)
class QueryPlan:
    """A job's streaming queries in the order data flows through them: each of ``starts`` starts one.
    ``in_turn`` (``availableNow``): each query processes all its input and ends before the next one
    starts, so a query that streams another's Delta table sees everything that one wrote.
    ``state_checkpoints``: the checkpoint of each stateful query, by query name, whose state partitions
    are checked against the session's before it starts. A start may return None: it had nothing to run
    (a query started again only when needed). ``tick``: called about every second while the queries run."""

    starts: tuple[Callable[[], StreamingQuery | None], ...]
    in_turn: bool = False
    state_checkpoints: Mapping[str, str] = field(default_factory=dict)
    tick: Callable[[], None] | None = None


PlanQueries = Callable[[SparkSession, Settings], QueryPlan]


def job_arguments(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The arguments every job takes: ``--config FILE`` and repeated ``--set key=value``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default="conf/local.toml", help="TOML config file (default: conf/local.toml)")
    parser.add_argument(
        "--rebuild", action="store_true",
        help="compute the windows again from the job's events table, after their checkpoint was lost: the windows "
        "tables are emptied first (the analytics and gold jobs)",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key, e.g. --set analytics.trigger='30 seconds' (repeatable)",
    )
    return parser.parse_args(argv)


def await_queries(queries: list[StreamingQuery], tick: Callable[[], None] | None = None) -> bool:
    """Wait until every query ends (availableNow) or one fails or the user interrupts (interval triggers);
    raise the first failure after stopping the other queries. Returns False when interrupted. ``tick``:
    called after each second of waiting."""
    failure: Exception | None = None
    interrupted = False
    try:
        while failure is None and (active := [query for query in queries if query.isActive]):
            try:
                active[0].awaitTermination(timeout=1)
            except StreamingQueryException as error:
                failure = error
            failure = failure or next((query.exception() for query in queries if query.exception()), None)
            if tick is not None and failure is None:
                tick()
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: stopping the queries (the next run resumes from their checkpoints)", flush=True)
    finally:
        for query in queries:
            if query.isActive:
                query.stop()
    if failure is not None:
        raise failure
    return not interrupted


def run_plan(plan: QueryPlan, started: list[StreamingQuery] | None = None) -> list[StreamingQuery]:
    """Start the plan's queries and wait until they end (see :func:`await_queries`); returns them.
    ``started`` (when given) receives each query as it starts, for a caller that must see them on failure."""
    started = [] if started is None else started
    if not plan.in_turn:
        started.extend(query for start in plan.starts if (query := start()) is not None)
        await_queries(started, plan.tick)
        return started
    for start in plan.starts:
        query = start()
        if query is None:
            continue
        started.append(query)
        if not await_queries(started[-1:], plan.tick):
            break
    return started


_DATA_LOSS_HINT = (
    " — offsets the checkpoint needs are gone from Kafka (topic deleted or recreated, or retention ran out)."
    " See docs/operating.md, 'Data loss in Kafka': restart once with --set kafka.fail_on_data_loss=false to skip them,"
    " or use a new checkpoint for a recreated topic."
)


def _python_error(text: str) -> str | None:
    """The ``module.Error: message`` line of the last Python traceback in ``text`` (an error raised in a
    foreachBatch function reaches us inside Spark's own error; with a chain of causes, the last traceback
    is the error that was raised), or None."""
    lines = text.splitlines()
    starts = [number for number, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if not starts:
        return None
    return next((line.strip() for line in lines[starts[-1] + 1 :] if line.strip() and not line[:1].isspace()), None)


def describe_failure(failure: Exception) -> str:
    """The first line of a query failure (Spark appends the whole plan), with the fix for known causes."""
    text = str(failure)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = _python_error(text) or next(
        (line for line in lines if "Exception" in line or "Error" in line), lines[0] if lines else text
    )
    if "failOnDataLoss" in text or "data may have been missed" in text or "DATA_LOSS" in text:
        return first + _DATA_LOSS_HINT
    return first


def run_queries(spark: SparkSession, settings: Settings, job: str, plan_queries: PlanQueries) -> list[StreamingQuery]:
    """Run a job's queries with a progress line per batch and its ``<job>_pipeline_metrics`` recorded, wait
    until they end, and return them; raises the first query failure."""
    printer = ProgressPrinter()
    require_tables_of_this_version(spark, settings.storage.tables_root, job)
    recorder = MetricsRecorder(spark, settings.storage.table_path(metrics_table(job)), job=job)
    spark.streams.addListener(printer)
    spark.streams.addListener(recorder)
    queries: list[StreamingQuery] = []
    try:
        plan = plan_queries(spark, settings)
        print(f"{job}: starting {len(plan.starts)} queries{' in turn' if plan.in_turn else ''}", flush=True)
        for query, checkpoint in plan.state_checkpoints.items():
            # Spark itself only logs a warning among its own when it keeps the checkpoint's value.
            if note := state_partitions_note(spark, query, checkpoint):
                print(f"{job}: {note}", flush=True)
        # Held while the queries run: table maintenance does not commit to tables a running job writes.
        with hold_while_running(settings.storage.checkpoint_root):
            run_plan(plan, queries)
    finally:
        printer.wait_until_reported([str(query.id) for query in queries])
        recorder.close()
        for listener in (printer, recorder):
            spark.streams.removeListener(listener)
    return queries


# A job whose name and settings come from its config file (a gold job): settings -> (job name, settings to run).
Configure = Callable[[Settings], tuple[str, Settings]]


# The jobs with windows to rebuild, and the section whose ``rebuild`` --rebuild sets.
_REBUILT_SECTIONS = {"analytics": "analytics", "gold": "gold"}


def _rebuild_override(name: str, rebuild: bool) -> list[str]:
    if not rebuild:
        return []
    if name not in _REBUILT_SECTIONS:
        raise ConfigError(f"--rebuild: the {name} job has no windows to rebuild (the analytics and gold jobs do)")
    return [f"{_REBUILT_SECTIONS[name]}.rebuild=true"]


def run_job(
    name: str, plan_queries: PlanQueries, argv: Sequence[str] | None = None, configure: Configure | None = None
) -> int:
    """A job's whole life: arguments, config, checks, session, queries, wait. Returns the exit code.
    ``configure``: checks the settings and gives the job's name (``name`` until then) and settings to run.

    Problems of configuration or environment end the job with one line on stderr, not a stack trace; a
    configuration problem names the config file.
    """
    args = job_arguments(f"eventlake {name} job", argv)
    try:
        settings = load_settings(args.config, [*args.overrides, *_rebuild_override(name, args.rebuild)])
        if configure is not None:
            name, settings = configure(settings)
        if settings.kafka.topic:  # empty for a gold job that streams a table
            require_topic(settings.kafka.bootstrap_servers, settings.kafka.topic, settings.kafka.options)
        spark = build_spark_session(settings.spark)
        run_queries(spark, settings, name, plan_queries)
    except ConfigError as problem:
        where = "" if args.config in str(problem) else f"{args.config}: "
        print(f"{name}: error: {where}{problem}", file=sys.stderr)
        return 2
    except EnvironmentProblem as problem:
        print(f"{name}: error: {problem}", file=sys.stderr)
        return 2
    except PySparkException as failure:
        print(f"{name}: a streaming query failed: {describe_failure(failure)}", file=sys.stderr)
        return 1
    print(f"{name}: done", flush=True)
    return 0

