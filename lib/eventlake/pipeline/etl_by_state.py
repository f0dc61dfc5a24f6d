"""The ETL with ``etl.silver_dedup = "state"``: silver de-duplicated by a stateful query, not by a MERGE.

Two queries read the topic:

* ``etl_raw`` appends every record as it came to ``bronze_events`` and counts it in ``etl_intake_batches``
  (records and offsets per partition; it parses nothing, so ``valid`` and ``invalid`` are NULL);
* ``etl_silver`` parses each record once, runs the stages, drops the repeated copies of valid events with its
  state (:func:`~eventlake.pipeline.etl_stages.drop_repeated_events`), and writes per micro-batch, once each:
  the first copies to ``silver_events``, the invalid records to ``etl_dead_letters`` and the batch's
  figures to ``etl_silver_batches`` (records read, valid, invalid, duplicates dropped, silver rows), so that
  every record the query read is accounted for: ``valid = silver rows + duplicates``, ``invalid`` = its dead
  letters.

The MERGE reads ``etl.silver_dedup_days`` of silver for every batch, a cost that grows with the table; the
state holds the ids of the last ``etl.silver_dedup_within`` of the job's clock, and each batch is an append.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from eventlake.pipeline.contract import JOB_TIME_COLUMN, RECORDS_READ, with_job_clock
from eventlake.pipeline.etl_flow import BUILT_IN_FLOW, EtlFlow
from eventlake.pipeline.etl_stages import DEDUP_TIME_COLUMN, drop_repeated_events, silver_columns
from eventlake.pipeline.intake import observe_dead_letters, write_unparsed_intake_batch
from eventlake.pipeline.resume import resumed_kafka
from eventlake.pipeline.sinks import BatchWriter, append_dead_letters, fits_one_file, run_together, start_batch_stream
from eventlake.pipeline.sources import read_kafka_stream
from eventlake.runtime.config import RetrySettings, Settings, StorageSettings
from eventlake.runtime.frames import rows_frame
from eventlake.runtime.job_tables import DEAD_LETTER_ROWS, job_table
from eventlake.runtime.retry import with_retries
from eventlake.runtime.running_batch import running_batch
from eventlake.runtime.storage_checks import claim_checkpoint

# Query roles and checkpoint folders (not "bronze" or "silver": an earlier eventlake's queries of those names are
# refused). The built-in flow's queries are etl_raw and etl_silver; a flow's are <name>_raw and <name>_silver.
RAW_CHECKPOINT = "raw"
SILVER_CHECKPOINT = "silver_state"
RAW_QUERY = f"{BUILT_IN_FLOW}_{RAW_CHECKPOINT}"
SILVER_QUERY = f"{BUILT_IN_FLOW}_silver"
SILVER_BATCHES = "silver_batches"  # <job>_silver_batches
SILVER_BATCHES_TABLE = f"{BUILT_IN_FLOW}_{SILVER_BATCHES}"
SILVER_BATCHES_SCHEMA = (
    "job string, batch_id long, records long, valid long, invalid long, duplicates long, silver_rows long,"
    " start_offset string, end_offset string"
)
# The de-duplication's SQL metric of the rows it drops.
DROPPED_DUPLICATES_METRIC = "numDroppedDuplicateRows"


def write_silver_batch(
    rows: DataFrame,
    batch_id: int,
    *,
    spark: SparkSession,
    flow: EtlFlow,
    storage: StorageSettings,
    writer: BatchWriter,
    retry: RetrySettings,
) -> None:
    """``foreachBatch`` function of the silver query: the batch's first copies to silver, its invalid records to
    the dead letters and its figures (``<job>_silver_batches``), at the same time, each once (``writer``):
    a batch run again after a crash skips the tables that hold it and writes the others. The rows are computed
    once and stored: a stateful batch must not run twice. A batch that read nothing (it only moved the
    watermark, evicting old ids) writes nothing. ``spark``: the job's session, which runs the query (a batch's
    own session is another).

    Example::

        write_silver = partial(write_silver_batch, spark=spark, flow=flow, storage=storage, writer=writer, retry=retry)
        start_batch_stream(first_copies, write_silver, "etl_silver", checkpoint, "availableNow")
    """
    rows = rows.localCheckpoint(eager=True)
    job, silver_table, figures_table = flow.job, flow.silver, job_table(flow.job, SILVER_BATCHES)
    batch = running_batch(
        spark, flow.query("silver"), batch_id,
        observed=(RECORDS_READ, DEAD_LETTER_ROWS), metrics=(DROPPED_DUPLICATES_METRIC,),
    )
    records, invalid = batch.observed[RECORDS_READ], batch.observed[DEAD_LETTER_ROWS]
    if not records:
        return
    silver = rows.transform(silver_columns)
    silver_rows = silver.count()
    writes: list[Callable[[], None]] = []
    if silver_rows:
        writes.append(partial(
            with_retries,
            lambda: writer.append(
                silver, storage.table_path(silver_table), batch_id, ["event_date"], one_file=fits_one_file(silver_rows)
            ),
            retry,
            f"{job}: writing batch {batch_id} to {silver_table}",
        ))
    if invalid:
        writes.append(
            lambda: append_dead_letters(rows, batch_id, invalid, job=job, storage=storage, writer=writer, retry=retry)
        )
    figures = {
        "job": job, "batch_id": batch_id, "records": records, "valid": records - invalid, "invalid": invalid,
        "duplicates": batch.metrics[DROPPED_DUPLICATES_METRIC], "silver_rows": silver_rows,
        "start_offset": batch.start_offset, "end_offset": batch.end_offset,
    }
    row = rows_frame(spark, [figures], SILVER_BATCHES_SCHEMA)
    writes.append(partial(
        with_retries,
        lambda: writer.append(row, storage.table_path(figures_table), batch_id, one_file=True),
        retry,
        f"{job}: writing the figures of batch {batch_id} to {figures_table}",
    ))
    run_together(writes)


def state_dedup_starts(
    spark: SparkSession,
    settings: Settings,
    *,
    flow: EtlFlow,
    stage_rows: Callable[[DataFrame], DataFrame],
    write_bronze: Callable[..., None],
) -> tuple[tuple[Callable[[], StreamingQuery], ...], dict[str, str]]:
    """The two queries' start functions (raw first) and the silver query's state checkpoint by name.
    ``stage_rows``: Kafka rows -> rows after the contract and the stages; ``write_bronze(rows, batch_id,
    records, storage=, writer=, retry=)``: the flow's bronze append.

    Example::

        starts, state_checkpoints = state_dedup_starts(
            spark, settings, flow=flow, stage_rows=lambda raw: silver_rows(raw, settings, context, flow),
            write_bronze=partial(write_bronze, flow=flow),
        )  # starts: (start_raw, start_silver); state_checkpoints: {"etl_silver": ".../etl/silver_state"}
    """
    storage, etl, job = settings.storage, settings.etl, flow.job
    raw_query, silver_query = flow.query(RAW_CHECKPOINT), flow.query("silver")
    raw_checkpoint = storage.checkpoint_path(job, RAW_CHECKPOINT)
    silver_checkpoint = storage.checkpoint_path(job, SILVER_CHECKPOINT)
    raw_id = claim_checkpoint(spark, raw_checkpoint, job, RAW_CHECKPOINT, settings.kafka.topic)
    silver_id = claim_checkpoint(spark, silver_checkpoint, job, SILVER_CHECKPOINT, settings.kafka.topic)
    raw_writer = BatchWriter.for_checkpoint(spark, raw_query, raw_checkpoint, raw_id)

    def write_raw_records(raw: DataFrame, batch_id: int, records: int) -> None:
        write_bronze(raw, batch_id, records, storage=storage, writer=raw_writer, retry=settings.retry)

    def write_raw(raw: DataFrame, batch_id: int) -> None:
        write_unparsed_intake_batch(
            raw, batch_id, job=job, storage=storage, writer=raw_writer, retry=settings.retry,
            write_records=write_raw_records,
        )

    write_silver = partial(
        write_silver_batch, spark=spark, flow=flow, storage=storage, retry=settings.retry,
        writer=BatchWriter.for_checkpoint(spark, silver_query, silver_checkpoint, silver_id),
    )

    def start_raw():
        kafka = resumed_kafka(spark, settings.kafka, storage, job, raw_checkpoint)
        return start_batch_stream(read_kafka_stream(spark, kafka), write_raw, raw_query, raw_checkpoint, etl.trigger)

    def start_silver():
        raw = read_kafka_stream(spark, settings.kafka).transform(with_job_clock)
        staged = stage_rows(raw.withColumn(DEDUP_TIME_COLUMN, F.col(JOB_TIME_COLUMN)))
        first_copies = staged.transform(observe_dead_letters).transform(
            drop_repeated_events, etl.silver_dedup_within, flow.id_column
        )
        return start_batch_stream(first_copies, write_silver, silver_query, silver_checkpoint, etl.trigger)

    return (start_raw, start_silver), {silver_query: silver_checkpoint}
