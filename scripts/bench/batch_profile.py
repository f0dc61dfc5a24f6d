"""Where one micro-batch's time goes, to the millisecond, for each job: Spark's phases, each table's Delta
write, the state store's commit, and what a Delta commit itself spends.

    scripts/bench.sh profile [--records-per-batch 2500] [--batches 12] [--jobs analytics,etl]

Produces ``--batches`` × N contract-v1 records (2% duplicates, 2% malformed) into a fresh topic and runs
each job in this process on it, N records a micro-batch (``availableNow``), timing:

- Spark's own phases of every batch (``durationMs``: latestOffset, queryPlanning, walCommit, addBatch,
  commitOffsets) and the state store's commit (``stateOperators``: commitTimeMs, per operator);
- inside ``addBatch``: the one parse of the batch (``localCheckpoint``), each table's write (the writes to
  dead letters and the job's own tables run at the same time), silver's MERGE;
- what one small Delta append costs on this machine, by parts: the Parquet write alone, a Delta append,
  and a Delta append that carries ``txnAppId`` (Delta 4.4 rebuilds the table's state to check it);
- with ``--floor``, the floor under the intake's batch: streaming queries on the same topic, the same batch
  size, that do a prefix of the intake's work (Kafka rows to Spark's ``noop`` sink; the contract's parse to
  ``noop``; the parse stored by ``foreachBatch``; stored and appended to one Delta table): what Spark and
  Delta cost per batch here before eventlake adds anything.

Prints the median of the warm batches (the third on) and the first batch, per job. A measuring script:
it wraps library functions with timers; nothing here is used by the jobs.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql.classic.dataframe import DataFrame  # the class a job's DataFrames are (not pyspark.sql's base)
from pyspark.sql.streaming import StreamingQuery, StreamingQueryListener

from eventlake.local.producer import generate_records, send_records
from eventlake.pipeline import analytics, contract, etl, gold, sinks, sources
from eventlake.runtime import runner
from eventlake.runtime.config import load_settings
from eventlake.runtime.kafka_admin import create_topic, delete_topic
from eventlake.runtime.session import build_spark_session

ROOT = Path(__file__).resolve().parents[2]
SPARK_PHASES = ("latestOffset", "queryPlanning", "walCommit", "addBatch", "commitOffsets", "triggerExecution")


class Timings:
    """Milliseconds per (query, batch, phase), filled by timers and by the progress listener."""

    def __init__(self):
        self.ms: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
        self.local = threading.local()  # the query and batch the current thread works for
        self.lock = threading.Lock()

    def add(self, phase: str, milliseconds: float, query: str | None = None, batch: int | None = None) -> None:
        query = query or getattr(self.local, "query", "?")
        batch = batch if batch is not None else getattr(self.local, "batch", -1)
        with self.lock:
            phases = self.ms[(query, batch)]
            phases[phase] = phases.get(phase, 0.0) + milliseconds

    @contextmanager
    def timed(self, phase: str):
        started = time.monotonic()
        try:
            yield
        finally:
            self.add(phase, 1000 * (time.monotonic() - started))


def instrument(timings: Timings) -> None:
    """Wrap the library's writes and the batch's parse with timers.

    Example::

        timings = Timings()
        instrument(timings)
        run_job("etl", spark, settings, timings)  # timings.ms: each batch's phases, in milliseconds
    """
    append, local_checkpoint, insert = sinks.BatchWriter.append, DataFrame.localCheckpoint, sinks.insert_new_rows
    submit = sinks.streaming.ThreadPoolExecutor.submit

    def timed_append(self, rows, table_path, batch_id, *args, **kwargs):
        with timings.timed(f"write {Path(table_path).name}"):
            return append(self, rows, table_path, batch_id, *args, **kwargs)

    def timed_checkpoint(self, *args, **kwargs):
        with timings.timed("parse and store (localCheckpoint)"):
            return local_checkpoint(self, *args, **kwargs)

    def timed_insert(rows, table_path, *args, **kwargs):
        with timings.timed(f"MERGE into {Path(table_path).name}"):
            return insert(rows, table_path, *args, **kwargs)

    def submit_with_context(pool, function, *args, **kwargs):
        # Writes run in threads of their own (run_together): carry the query and batch over.
        query, batch = getattr(timings.local, "query", "?"), getattr(timings.local, "batch", -1)

        def run():
            timings.local.query, timings.local.batch = query, batch
            return function(*args, **kwargs)

        return submit(pool, run)

    sinks.BatchWriter.append = timed_append
    DataFrame.localCheckpoint = timed_checkpoint
    etl.insert_new_rows = timed_insert  # the name the ETL calls: a patch of sinks.insert_new_rows reaches no caller
    sinks.streaming.ThreadPoolExecutor.submit = submit_with_context
    start_batch_stream = sinks.start_batch_stream

    def start_timed_stream(rows, write_batch, query_name, checkpoint, trigger):
        def timed_batch(batch, batch_id):
            timings.local.query, timings.local.batch = query_name, batch_id
            with timings.timed("foreachBatch function"):
                write_batch(batch, batch_id)

        return start_batch_stream(rows, timed_batch, query_name, checkpoint, trigger)

    gold.queries.start_batch_stream = start_timed_stream
    etl.start_batch_stream = start_timed_stream


class ProgressTimings(StreamingQueryListener):
    """Spark's phases and the state store's commit time of every batch."""

    def __init__(self, timings: Timings):
        self.timings = timings

    def onQueryStarted(self, event):
        """Nothing timed yet."""

    def onQueryProgress(self, event):
        progress = event.progress
        for phase in SPARK_PHASES:
            if phase in (progress.durationMs or {}):
                self.timings.add(f"spark {phase}", progress.durationMs[phase], progress.name, progress.batchId)
        for number, operator in enumerate(progress.stateOperators or []):
            self.timings.add(f"state store commit ({operator.operatorName} {number})", operator.commitTimeMs,
                             progress.name, progress.batchId)
        self.timings.add("rows", progress.numInputRows, progress.name, progress.batchId)

    def onQueryIdle(self, event):
        """Idle time is not a batch."""

    def onQueryTerminated(self, event):
        """Nothing more to time."""


def delta_commit_parts(spark, folder: Path, rows: int = 2500, repeats: int = 12) -> dict[str, float]:
    """Median milliseconds of a small write, warm: Parquet alone, a Delta append, and one with txnAppId."""
    frame = spark.range(rows).selectExpr("id", "uuid() AS event_id", "current_timestamp() AS at").localCheckpoint()
    results = {}
    for label, write in (
        ("Parquet write alone (same rows)", lambda path, n: frame.coalesce(1).write.mode("append").parquet(path)),
        ("Delta append (a blind append, as eventlake writes)",
         lambda path, n: frame.coalesce(1).write.format("delta").mode("append").save(path)),
        ("Delta append with txnAppId/txnVersion (Delta rebuilds the table state)",
         lambda path, n: frame.coalesce(1).write.format("delta").mode("append").option("txnAppId", "w")
         .option("txnVersion", n).save(path)),
    ):
        path = str(folder / f"commit-{len(results)}")
        times = []
        for number in range(repeats):
            started = time.monotonic()
            write(path, number)
            times.append(1000 * (time.monotonic() - started))
        results[label] = statistics.median(times[2:])
    return results


def floor_queries(spark, settings, folder: Path) -> dict[str, Callable[[], StreamingQuery]]:
    """Streaming queries that each do a prefix of the analytics intake's batch on the job's Kafka source, by
    name: Kafka rows to ``noop``; the contract to ``noop``; the contract stored in ``foreachBatch``
    (``localCheckpoint``, as the intake does); stored, then its valid events appended to one Delta table."""
    def kafka_rows():
        return sources.read_kafka_stream(spark, settings.kafka)

    def parsed():
        return kafka_rows().transform(contract.with_job_clock).transform(contract.parse_events, settings.contract)

    def to_noop(name, rows):
        return lambda: (rows().writeStream.queryName(name).format("noop")
                        .option("checkpointLocation", str(folder / name)).trigger(availableNow=True).start())

    def with_batches(name, write_batch):
        return lambda: sinks.start_batch_stream(parsed(), write_batch, name, str(folder / name), "availableNow")

    def store(batch, _batch_id):
        batch.localCheckpoint(eager=True)

    def store_and_append(batch, _batch_id):
        stored = batch.localCheckpoint(eager=True)
        contract.valid_events(stored).coalesce(1).write.format("delta").mode("append").save(str(folder / "events"))

    return {
        "floor_kafka_noop": to_noop("floor_kafka_noop", kafka_rows),
        "floor_contract_noop": to_noop("floor_contract_noop", parsed),
        "floor_contract_stored": with_batches("floor_contract_stored", store),
        "floor_stored_one_delta_append": with_batches("floor_stored_one_delta_append", store_and_append),
    }


def run_job(name: str, spark, settings, timings: Timings) -> None:
    plan = analytics.analytics_queries if name == "analytics" else etl.etl_queries
    listener = ProgressTimings(timings)
    spark.streams.addListener(listener)
    try:
        runner.run_queries(spark, settings, name, plan)
    finally:
        spark.streams.removeListener(listener)


def report(timings: Timings, queries: list[str]) -> str:
    lines = []
    for query in queries:
        batches = sorted(batch for (name, batch) in timings.ms if name == query and batch >= 0)
        with_rows = [batch for batch in batches if timings.ms[(query, batch)].get("rows")]
        if not with_rows:
            continue
        warm = with_rows[2:] or with_rows
        phases = sorted({phase for batch in batches for phase in timings.ms[(query, batch)]} - {"rows"})
        lines += [f"\n{query}: {len(with_rows)} batches with data; ms, median of batches {warm[0]}..{warm[-1]} "
                  f"and the first batch", "", "| phase | warm ms | first batch ms |", "|---|---:|---:|"]
        for phase in sorted(phases, key=lambda p: (not p.startswith("spark"), p)):
            values = [timings.ms[(query, batch)].get(phase, 0.0) for batch in warm]
            first = timings.ms[(query, with_rows[0])].get(phase, 0.0)
            lines.append(f"| {phase} | {statistics.median(values):,.0f} | {first:,.0f} |")
        without_rows = [batch for batch in batches if batch not in with_rows
                        and "spark triggerExecution" in timings.ms[(query, batch)]]
        if without_rows:
            # Batches that only move the watermark (the windows query closing its last windows).
            values = [timings.ms[(query, batch)]["spark triggerExecution"] for batch in without_rows]
            lines.append(f"| batches without data ({len(without_rows)}): spark triggerExecution, median "
                         f"| {statistics.median(values):,.0f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench.sh profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--records-per-batch", type=int, default=2500)
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--jobs", default="analytics,etl")
    parser.add_argument("--late", type=float, default=0.0, metavar="RATIO",
                        help="share of events produced behind the watermark (default: 0)")
    parser.add_argument("--floor", action="store_true",
                        help="also run the floor queries on the same topic (Spark and Delta alone, see above)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="another config override, e.g. analytics.late_events=true (repeatable)")
    args = parser.parse_args(argv)
    jobs = [job.strip() for job in args.jobs.split(",") if job.strip()]
    topic = f"bench-profile-{datetime.now(UTC).strftime('%Y%m%dt%H%M%S')}"
    create_topic(args.bootstrap_servers, topic, partitions=4, exist_ok=False)
    work = Path(tempfile.mkdtemp(prefix="eventlake-profile-", dir=ROOT / "data"))
    try:
        records = generate_records(
            args.records_per_batch * args.batches, 11, datetime.now(UTC) - timedelta(hours=2), timedelta(hours=2),
            duplicate_ratio=0.02, malformed_ratio=0.02, late_ratio=args.late,
        )
        send_records(records, args.bootstrap_servers, topic)
        settings = load_settings(ROOT / "conf" / "local.toml", [
            f"kafka.bootstrap_servers={args.bootstrap_servers}", f"kafka.topic={topic}",
            f"kafka.max_offsets_per_trigger={args.records_per_batch}",
            f"storage.tables_root={work / 'tables'}", f"storage.checkpoint_root={work / 'checkpoints'}",
            *args.overrides,
        ])
        spark = build_spark_session(dataclasses.replace(settings.spark, jars_dir=str(ROOT / "jars" / "spark")))
        timings = Timings()
        instrument(timings)
        queries = []
        for job in jobs:
            print(f"profile: running {job} on {len(records):,} records, {args.records_per_batch:,} a batch",
                  file=sys.stderr, flush=True)
            run_job(job, spark, settings, timings)
            queries += ["analytics_intake", "analytics_windows"] if job == "analytics" else ["etl_ingest"]
        if args.floor:
            listener = ProgressTimings(timings)
            spark.streams.addListener(listener)
            for name, start in floor_queries(spark, settings, work / "floor").items():
                print(f"profile: running {name}", file=sys.stderr, flush=True)
                start().awaitTermination()
                queries.append(name)
            spark.streams.removeListener(listener)
        print(report(timings, queries))
        print("\nA small Delta write on this machine, by parts (median ms of 10 warm writes of 2,500 rows):\n")
        print("| write | ms |\n|---|---:|")
        for label, milliseconds in delta_commit_parts(spark, work).items():
            print(f"| {label} | {milliseconds:,.0f} |")
    finally:
        delete_topic(args.bootstrap_servers, topic)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
