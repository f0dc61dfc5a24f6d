"""The streaming ETL pipeline: Kafka -> bronze (every record as received) and silver (clean events).

One streaming query, ``etl_ingest``, reads each record once and parses it once. Per micro-batch
(``foreachBatch``, the parsed batch cached while it is written) it

* appends every record as it came (key, value, headers, Kafka coordinates) to ``bronze_events``,
  partitioned by ingestion day;
* extracts (``contract.extractors``), validates the contract and runs the transform stages of
  ``etl.transforms`` (:mod:`eventlake.pipeline.etl_stages`), writes the rejected records to ``dead_letters``,
  inserts the new events into ``silver_events`` (partitioned by event day, deduplicated by ``event_id``
  within ``etl.silver_dedup_days`` event days)
  and counts the batch in ``intake_batches``, last.

With ``etl.silver_dedup = "state"`` two queries replace that one (:mod:`eventlake.pipeline.etl_by_state`):
one appends the records to bronze, the other parses them once and de-duplicates silver with its state.

Every write is idempotent per micro-batch and retried with exponential backoff on transient failures
(``retry``, the policy of every job's writes); when the retries run out the job stops, and a restart resumes
from the checkpoints.
"""

from __future__ import annotations

from functools import partial

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from eventlake.pipeline.contract import with_job_clock
from eventlake.pipeline.dimensions import ensure_dimension_table
from eventlake.pipeline.etl_by_state import SILVER_CHECKPOINT, state_dedup_starts
from eventlake.pipeline.etl_flow import BUILT_IN_FLOW, EtlFlow, configure_etl, etl_flow
from eventlake.pipeline.etl_stages import (
    StageContext,
    run_stages,
    to_bronze,
    to_silver,
    with_event_date,
    with_sql_columns,
)
from eventlake.pipeline.expectations import check_expectations, fails
from eventlake.pipeline.intake import BatchCounts, observe_dead_letters, write_intake_batch
from eventlake.pipeline.resume import resumed_kafka
from eventlake.pipeline.sinks import (
    BatchWriter,
    fits_one_file,
    insert_new_rows,
    run_together,
    start_batch_stream,
)
from eventlake.pipeline.sources import read_kafka_stream
from eventlake.runtime.config import ConfigError, RetrySettings, Settings, StorageSettings, resolve_secret
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.hadoop_files import HadoopFiles
from eventlake.runtime.retry import with_retries
from eventlake.runtime.runner import QueryPlan
from eventlake.runtime.storage_checks import claim_checkpoint, refuse_replaced_checkpoints, require_folder

# The built-in flow's job, tables and query (the flow of ``etl.name = "etl"``; :mod:`eventlake.pipeline.etl_flow`).
JOB = BUILT_IN_FLOW
BRONZE_TABLE = "bronze_events"
SILVER_TABLE = "silver_events"
INGEST_QUERY = f"{JOB}_ingest"


def write_bronze(
    rows: DataFrame,
    batch_id: int,
    records: int,
    *,
    flow: EtlFlow,
    storage: StorageSettings,
    writer: BatchWriter,
    retry: RetrySettings,
) -> None:
    """Append one micro-batch's ``records`` records, as received, to bronze, once, retried on transient failures."""
    bronze = rows.transform(to_bronze)
    with_retries(
        lambda: writer.append(
            bronze, storage.table_path(flow.bronze), batch_id, ["ingest_date"], one_file=fits_one_file(records)
        ),
        retry,
        f"{flow.job}: writing batch {batch_id} to {flow.bronze}",
    )


def write_silver_rows(
    rows: DataFrame, batch_id: int, *, flow: EtlFlow, storage: StorageSettings, retry: RetrySettings, dedup_days: int
) -> None:
    """Insert one micro-batch's valid events into silver, skipping ids it already holds within
    ``dedup_days`` event days (``etl.silver_dedup_days``)."""
    silver = to_silver(rows, flow.id_column)
    with_retries(
        lambda: insert_new_rows(silver, storage.table_path(flow.silver), flow.id_column, "event_date", dedup_days),
        retry,
        f"{flow.job}: writing batch {batch_id} to {flow.silver}",
    )


def write_lake_rows(
    rows: DataFrame,
    batch_id: int,
    counts: BatchCounts,
    *,
    flow: EtlFlow,
    storage: StorageSettings,
    writer: BatchWriter,
    retry: RetrySettings,
    silver_dedup_days: int,
) -> None:
    """The ETL's own writes of one micro-batch, between the dead letters and the intake counts and at the
    same time: every record to bronze, the valid events to silver."""
    writes = [
        lambda: write_bronze(rows, batch_id, counts.records, flow=flow, storage=storage, writer=writer, retry=retry)
    ]
    if counts.valid:
        writes.append(
            lambda: write_silver_rows(
                rows, batch_id, flow=flow, storage=storage, retry=retry, dedup_days=silver_dedup_days
            )
        )
    run_together(writes)


def silver_rows(raw: DataFrame, settings: Settings, context: StageContext, flow: EtlFlow) -> DataFrame:
    """Kafka rows -> extracted, validated and transformed rows (invalid ones marked, not removed): the
    contract, the stages, the SQL columns, the event day, the expectations."""
    etl = settings.etl
    parsed = raw.transform(flow.parse)
    try:
        staged = run_stages(parsed, etl.transforms, context)
    except (AnalysisException, ValueError) as error:
        raise ConfigError(f"etl.transforms {list(etl.transforms)} cannot run: {_first_line(error)}") from None
    for name, expr in etl.columns.items():  # one at a time, to name the column that cannot run
        try:
            staged = staged.transform(with_sql_columns, {name: expr})
        except AnalysisException as error:
            raise ConfigError(f"etl.columns.{name}: {_first_line(error)}") from None
    staged = staged.transform(with_event_date)
    for expectation in etl.expectations:  # one at a time, to name the rule that cannot run
        try:
            staged.where(fails(expectation)).schema  # noqa: B018 - analysing the plan is the check
        except AnalysisException as error:
            raise ConfigError(f"etl.expectations.{expectation.name}.rule: {_first_line(error)}") from None
    return staged.transform(check_expectations, etl.expectations)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def refuse_silver_of_merge(spark: SparkSession, storage: StorageSettings, checkpoint: str, silver_table: str) -> None:
    """Refuse to start the silver query on a new checkpoint when silver already has rows (written by the
    merge mode, or by a silver query whose checkpoint was removed): its empty state would not know their
    event ids, and it would append them again as it reads the topic."""
    silver = storage.table_path(silver_table)
    if HadoopFiles(spark).exists(f"{checkpoint.rstrip('/')}/commits"):
        return
    if DeltaTable.isDeltaTable(spark, silver) and not spark.read.format("delta").load(silver).isEmpty():
        raise EnvironmentProblem(
            f"etl.silver_dedup = 'state' starts a new silver query ({checkpoint}) but {silver} already has rows: "
            "the query's state would not know their event ids and would add them again. Keep "
            "etl.silver_dedup = 'merge' for this table, or start state mode on a new storage.tables_root."
        )


BROADCAST_THRESHOLD = "spark.sql.autoBroadcastJoinThreshold"


def never_broadcast_silver(spark: SparkSession, settings: Settings) -> None:
    """Plan silver's MERGE as a shuffle join, never a broadcast of silver: its target (the batch's event
    days of silver) grows all day, and Delta's MERGE broadcasts it from estimated sizes (delta-io/delta#1524):
    at 5,000 events/s the ETL failed after 10 minutes with "Not enough memory to build and broadcast the
    table" (1 GB driver, 3 million rows). The ETL's one other join, the enrichment, is hinted to broadcast,
    which this does not change. A threshold set in ``[spark.conf]`` is kept."""
    if BROADCAST_THRESHOLD not in settings.spark.conf:
        spark.conf.set(BROADCAST_THRESHOLD, "-1")


def etl_queries(spark: SparkSession, settings: Settings) -> QueryPlan:
    """The ETL flow's query (two with ``etl.silver_dedup = "state"``); checks the flow, the storage, the stages
    and the dimension table, and claims the checkpoints, before they start.

    Example::

        run_queries(spark, settings, "etl", etl_queries)  # what spark-submit jobs/etl.py does
    """
    job, settings = configure_etl(settings)
    storage, etl = settings.storage, settings.etl
    flow = etl_flow(settings)
    require_folder(storage.tables_root, "tables root")
    replaced = [storage.checkpoint_path(job, old) for old in ("bronze", "silver")]
    refuse_replaced_checkpoints(spark, replaced, job, flow.query("ingest"))
    dimension = ensure_dimension_table(spark, etl.enrich, storage) if "enrich" in etl.transforms else None
    context = StageContext(etl=etl, dimension=dimension, pii_salt=resolve_secret(etl.pii.salt))
    in_turn = etl.trigger == "availableNow"
    if etl.silver_dedup == "state":
        refuse_silver_of_merge(spark, storage, storage.checkpoint_path(job, SILVER_CHECKPOINT), flow.silver)
        starts, state_checkpoints = state_dedup_starts(
            spark, settings, flow=flow,
            stage_rows=lambda raw: silver_rows(raw, settings, context, flow),
            write_bronze=partial(write_bronze, flow=flow),
        )
        return QueryPlan(starts=starts, in_turn=in_turn, state_checkpoints=state_checkpoints)

    never_broadcast_silver(spark, settings)
    query = flow.query("ingest")
    checkpoint = storage.checkpoint_path(job, "ingest")
    checkpoint_id = claim_checkpoint(spark, checkpoint, job, "ingest", settings.kafka.topic)
    kafka = resumed_kafka(spark, settings.kafka, storage, job, checkpoint)
    rows = silver_rows(read_kafka_stream(spark, kafka).transform(with_job_clock), settings, context, flow)
    writer = BatchWriter.for_checkpoint(spark, query, checkpoint, checkpoint_id)

    def write_lake(parsed: DataFrame, batch_id: int, counts: BatchCounts) -> None:
        write_lake_rows(
            parsed, batch_id, counts, flow=flow, storage=storage, writer=writer, retry=settings.retry,
            silver_dedup_days=etl.silver_dedup_days,
        )

    def write_batch(parsed: DataFrame, batch_id: int) -> None:
        write_intake_batch(
            parsed, batch_id, job=job, storage=storage, writer=writer, retry=settings.retry,
            expectations=etl.expectations, write_records=write_lake,
        )

    def start_ingest():
        return start_batch_stream(rows.transform(observe_dead_letters), write_batch, query, checkpoint, etl.trigger)

    return QueryPlan(starts=(start_ingest,), in_turn=in_turn)
