"""Writing micro-batches to Delta tables: each batch once per table, and as few commits as the data need."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from functools import partial

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from eventlake.runtime.config import RetrySettings, parse_duration, spark_interval
from eventlake.runtime.frames import struct_schema
from eventlake.runtime.hadoop_files import HadoopFiles
from eventlake.runtime.retry import with_retries


def with_trigger(writer: DataStreamWriter, trigger: str) -> DataStreamWriter:
    """``availableNow`` (the backlog, then stop) or a processing-time interval such as ``30 seconds``."""
    if trigger == "availableNow":
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=spark_interval(parse_duration(trigger)))


def start_batch_stream(
    rows: DataFrame,
    write_batch: Callable[[DataFrame, int], None],
    query_name: str,
    checkpoint: str,
    trigger: str,
) -> StreamingQuery:
    """Run ``write_batch(batch, batch_id)`` on each micro-batch (``foreachBatch``); the function must write a
    batch once however often it runs (see :class:`BatchWriter`), because a batch may run again after a crash."""
    writer = rows.writeStream.queryName(query_name).option("checkpointLocation", checkpoint).foreachBatch(write_batch)
    return with_trigger(writer, trigger).start()


def batch_writer_id(query_name: str, checkpoint: str, checkpoint_id: str | None) -> str:
    """The id a query's batch writes carry: its name plus the id of its checkpoint (``checkpoint_id``, from
    :func:`~eventlake.runtime.storage_checks.claim_checkpoint`). A checkpoint removed to start over and made
    again at the same path has another id, so the new query's batch 0 never finds the old one's rows and
    skips its own write; nor do two deployments of one query mistake each other's batches for their own.
    A checkpoint made before checkpoints had ids (``checkpoint_id`` None) keeps the id its rows carry: a
    digest of its path."""
    if checkpoint_id is None:
        return f"{query_name}-{hashlib.sha256(checkpoint.encode()).hexdigest()[:16]}"
    return f"{query_name}-{checkpoint_id}"


def pending_batch(spark: SparkSession, checkpoint: str) -> int | None:
    """The batch a query will run again when it starts from ``checkpoint``: one it began (``offsets/N``)
    but did not finish (no ``commits/N``) before it stopped, or None. Read through Hadoop's file system,
    so any checkpoint location works."""
    files = HadoopFiles(spark)
    started = files.log_entries(f"{checkpoint.rstrip('/')}/offsets")
    last = started[-1] if started else None
    return last if last is not None and last not in files.log_entries(f"{checkpoint.rstrip('/')}/commits") else None


# Up to this many rows, a batch's rows go to one file of a table.
ONE_FILE_ROWS = 200_000


def fits_one_file(rows: int) -> bool:
    """Whether ``rows`` rows are few enough to be written as one file (:data:`ONE_FILE_ROWS`)."""
    return rows <= ONE_FILE_ROWS


# The columns BatchWriter adds to every row it appends.
BATCH_COLUMNS_SCHEMA = "writer_id string, batch_id long"
BATCH_COLUMNS = ("writer_id", "batch_id")


class BatchWriter:
    """Appends the micro-batches of one query to Delta tables, each batch once per table.

    Every row carries ``writer_id`` and ``batch_id``. A batch is written a second time only when the query
    runs it again: after a crash, as the first batch of the next run (the checkpoint's pending batch, see
    :func:`pending_batch`), or when a write is retried after a failure that may have come after its commit.
    Only then does the writer look for the batch's rows, and skip a table that has them; every other batch
    is a plain append.

    Delta's own ``txnAppId``/``txnVersion`` would check every commit, and Delta 4.4 answers that check by
    rebuilding the table's state with Spark jobs: about 0.7 s of a 2-core machine per table and batch.
    """

    def __init__(self, writer_id: str, pending: int | None = None):
        self.writer_id = writer_id
        self._pending = pending
        self._uncertain: set[tuple[str, int]] = set()

    @classmethod
    def for_checkpoint(
        cls, spark: SparkSession, query_name: str, checkpoint: str, checkpoint_id: str | None
    ) -> BatchWriter:
        """The writer of the query ``query_name`` that runs on ``checkpoint`` (whose id ``checkpoint_id``
        :func:`~eventlake.runtime.storage_checks.claim_checkpoint` returned): its :func:`batch_writer_id`,
        and the batch it will run again first (:func:`pending_batch`)."""
        return cls(batch_writer_id(query_name, checkpoint, checkpoint_id), pending_batch(spark, checkpoint))

    def append(
        self, rows: DataFrame, table_path: str, batch_id: int, partition_by: Sequence[str] = (), one_file: bool = False
    ) -> None:
        """Append ``rows`` as batch ``batch_id`` unless the table already holds that batch of this writer.
        Columns the table lacks are added (``writer_id`` and ``batch_id`` too, to a table made before them).
        ``one_file``: the rows are few (see :func:`fits_one_file`); write them as one file."""
        replay = batch_id == self._pending or (table_path, batch_id) in self._uncertain
        if replay and self.written(rows.sparkSession, table_path, batch_id):
            return
        tagged = rows.withColumns({"writer_id": F.lit(self.writer_id), "batch_id": F.lit(batch_id).cast("long")})
        if one_file:
            tagged = tagged.coalesce(1)  # not a file per Kafka partition: fewer tasks now, fewer files to read later
        writer = tagged.write.format("delta").mode("append").option("mergeSchema", "true")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        try:
            writer.save(table_path)
        except Exception:
            # The commit may have happened before the failure: a retry of this batch checks first.
            self._uncertain.add((table_path, batch_id))
            raise
        self._uncertain.discard((table_path, batch_id))

    def written(self, spark: SparkSession, table_path: str, batch_id: int) -> bool:
        """Whether the table holds rows of batch ``batch_id`` of this writer (it reads the two columns; it
        runs only for a batch that runs again)."""
        if not DeltaTable.isDeltaTable(spark, table_path):
            return False
        table = spark.read.format("delta").load(table_path)
        if "writer_id" not in table.columns:
            return False
        return not table.where((F.col("writer_id") == self.writer_id) & (F.col("batch_id") == batch_id)).isEmpty()


def stored_with_count(rows: DataFrame) -> tuple[DataFrame, int]:
    """``rows`` computed once and stored (``localCheckpoint``), and how many they are, counted by the same
    Spark job: a count of stored rows is a Spark job of its own, about as dear as a small batch's work.

    Example::

        stored, count = stored_with_count(batch)
        if count:
            stored.write.format("delta").mode("append").save("data/tables/windows")
    """
    observation = Observation()
    stored = rows.observe(observation, F.count(F.lit(1)).alias("rows")).localCheckpoint(eager=True)
    return stored, int(observation.get["rows"])


def append_stored_rows(
    rows: DataFrame,
    count: int,
    batch_id: int,
    *,
    table_path: str,
    table: str,
    writer: BatchWriter,
    job: str,
    retry: RetrySettings,
) -> None:
    """Append a micro-batch's rows, stored and ``count`` of them (see :func:`stored_with_count`), with ``writer``,
    retried by ``retry``, and commit nothing when there are none (a batch of a stateful query often closes no
    window). Stored, because a stateful query's batch must not run twice: a retried write only writes the
    same rows again. ``table``: the table's name, for messages."""
    if count:
        with_retries(
            lambda: writer.append(rows, table_path, batch_id, one_file=fits_one_file(count)),
            retry,
            f"{job}: writing batch {batch_id} to {table}",
        )


def run_together(writes: Sequence[Callable[[], None]]) -> None:
    """Run independent writes (to different tables) at the same time, and raise the first failure once all
    have ended. A Delta write is mostly waiting (job scheduling, file system, commit), so two overlap well."""
    if len(writes) <= 1:
        for write in writes:
            write()
        return
    with ThreadPoolExecutor(max_workers=len(writes), thread_name_prefix="eventlake-write") as pool:
        futures = [pool.submit(write) for write in writes]
    for future in futures:
        future.result()


def ensure_table(spark: SparkSession, table_path: str, schema: str) -> None:
    """Create an empty Delta table with ``schema`` (a DDL string) at ``table_path`` unless one is there."""
    DeltaTable.createIfNotExists(spark).location(table_path).addColumns(struct_schema(schema)).execute()


def ensure_tables(spark: SparkSession, schemas: Mapping[str, str]) -> None:
    """:func:`ensure_table` for each path -> schema of ``schemas``, all at the same time: a job's first Delta
    commits are mostly one thread's work (class loading, the log's first listing), so two cores make two
    tables in about the time of one.

    Example::

        ensure_tables(spark, {"data/tables/a": "id long", "data/tables/b": "name string"})
    """
    run_together([partial(ensure_table, spark, path, schema) for path, schema in schemas.items()])


def day_ranges(days: Iterable[date], lookback_days: int) -> list[tuple[date, date]]:
    """The event days to search for keys of a batch with ``days``: each day and ``lookback_days`` either side,
    overlapping or adjacent ranges merged. A stray day far from the others adds its own short range instead of
    stretching one range over every day between."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        start, end = _shift(day, -lookback_days), _shift(day, lookback_days)
        if ranges and start <= _shift(ranges[-1][1], 1):
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    return ranges


def _shift(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def insert_new_rows(rows: DataFrame, table_path: str, key: str, partition_column: str, lookback_days: int = 1) -> None:
    """Insert the rows whose ``key`` is not in the Delta table yet (an insert-only MERGE), creating the
    table, partitioned by ``partition_column`` (a date), on first use. ``rows`` must hold each key once.

    A key matches an existing row of the same key dated within ``lookback_days`` of any of the batch's dates
    (:func:`day_ranges`): a copy of a key within ``lookback_days`` of the first is not inserted, one further away
    may be. The ranges are a predicate on the partition column alone, so the MERGE reads only those partitions,
    not the whole table. Running it again with the same rows inserts nothing: it is idempotent. Columns the
    table does not have yet are added (schema evolution)."""
    spark = rows.sparkSession
    dates = rows.select(F.to_date(partition_column)).distinct().collect()
    if not dates:
        return
    if not DeltaTable.isDeltaTable(spark, table_path):
        (
            DeltaTable.createIfNotExists(spark)
            .location(table_path)
            .addColumns(rows.schema)
            .partitionedBy(partition_column)
            .execute()
        )
    ranges = day_ranges((row[0] for row in dates if row[0] is not None), lookback_days)
    within = " OR ".join(
        f"existing.{partition_column} BETWEEN DATE'{first}' AND DATE'{last}'" for first, last in ranges
    )
    # Rows without a date (silver has none: every event has a time) leave no range to bound the search by.
    condition = f"({within}) AND existing.{key} = new.{key}" if within else f"existing.{key} = new.{key}"
    (
        DeltaTable.forPath(spark, table_path)
        .alias("existing")
        .merge(rows.alias("new"), condition)
        .whenNotMatchedInsertAll()
        .withSchemaEvolution()
        .execute()
    )
