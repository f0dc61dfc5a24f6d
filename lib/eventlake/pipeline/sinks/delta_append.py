"""Delta appends, each micro-batch once per table: the writer identity every appended row carries
(``writer_id``, ``batch_id``), :class:`BatchWriter`, and the append of a batch stored and counted once."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from eventlake.runtime.config import RetrySettings
from eventlake.runtime.hadoop_files import HadoopFiles
from eventlake.runtime.retry import with_retries


def batch_writer_id(query_name: str, checkpoint: str, checkpoint_id: str | None) -> str:
    """The id a query's batch writes carry: its name plus the id of its checkpoint (``checkpoint_id``, from
    :func:`~eventlake.runtime.storage_checks.claim_checkpoint`). A checkpoint removed to start over and made
    again at the same path has another id, so the new query's batch 0 never finds the old one's rows and
    skips its own write; nor do two deployments of one query mistake each other's batches for their own.
    A checkpoint made before checkpoints had ids (``checkpoint_id`` None) keeps the id its rows carry: a
    digest of its path.

    Example::

        batch_writer_id("analytics_intake", "data/checkpoints/analytics/intake", "5c0e9f2a")
        # 'analytics_intake-5c0e9f2a'
    """
    if checkpoint_id is None:
        return f"{query_name}-{hashlib.sha256(checkpoint.encode()).hexdigest()[:16]}"
    return f"{query_name}-{checkpoint_id}"


def pending_batch(spark: SparkSession, checkpoint: str) -> int | None:
    """The batch a query will run again when it starts from ``checkpoint``: one it began (``offsets/N``)
    but did not finish (no ``commits/N``) before it stopped, or None. Read through Hadoop's file system,
    so any checkpoint location works.

    Example::

        pending_batch(spark, "data/checkpoints/analytics/intake")  # 7: offsets/7 is there, commits/7 is not
    """
    files = HadoopFiles(spark)
    started = files.log_entries(f"{checkpoint.rstrip('/')}/offsets")
    last = started[-1] if started else None
    return last if last is not None and last not in files.log_entries(f"{checkpoint.rstrip('/')}/commits") else None


# Up to this many rows, a batch's rows go to one file of a table.
ONE_FILE_ROWS = 200_000


def fits_one_file(rows: int) -> bool:
    """Whether ``rows`` rows are few enough to be written as one file (:data:`ONE_FILE_ROWS`).

    Example::

        writer.append(events, "data/tables/analytics_events", batch_id, one_file=fits_one_file(counts.valid))
    """
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

    Example::

        writer = BatchWriter.for_checkpoint(spark, "analytics_intake", checkpoint, checkpoint_id)
        writer.append(events, "data/tables/analytics_events", batch_id)  # a second call for batch_id: skipped
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
        and the batch it will run again first (:func:`pending_batch`).

        Example::

            checkpoint_id = claim_checkpoint(spark, checkpoint, "analytics", "intake", "events")
            writer = BatchWriter.for_checkpoint(spark, "analytics_intake", checkpoint, checkpoint_id)
        """
        return cls(batch_writer_id(query_name, checkpoint, checkpoint_id), pending_batch(spark, checkpoint))

    def append(
        self, rows: DataFrame, table_path: str, batch_id: int, partition_by: Sequence[str] = (), one_file: bool = False
    ) -> None:
        """Append ``rows`` as batch ``batch_id`` unless the table already holds that batch of this writer.
        Columns the table lacks are added (``writer_id`` and ``batch_id`` too, to a table made before them).
        ``one_file``: the rows are few (see :func:`fits_one_file`); write them as one file.

        Example::

            writer.append(bronze, "data/tables/bronze_events", batch_id, ["ingest_date"], one_file=True)
        """
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
        runs only for a batch that runs again).

        Example::

            writer.written(spark, "data/tables/analytics_events", 7)  # True once batch 7 was appended
        """
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
    same rows again. ``table``: the table's name, for messages.

    Example::

        windows, count = stored_with_count(windows)
        append_stored_rows(
            windows, count, batch_id, table_path=storage.table_path("analytics_windows"),
            table="analytics_windows", writer=writer, job="analytics", retry=settings.retry,
        )
    """
    if count:
        with_retries(
            lambda: writer.append(rows, table_path, batch_id, one_file=fits_one_file(count)),
            retry,
            f"{job}: writing batch {batch_id} to {table}",
        )
