"""The streaming ETL pipeline: Kafka -> bronze (every record as received) and silver (clean events).

Two streaming queries read the topic, each with its own checkpoint:

* ``etl_bronze`` appends every record as it came (key, value, headers, Kafka coordinates) to
  ``bronze_events``, partitioned by ingestion day.
* ``etl_silver`` extracts (``contract.extractors``), validates the contract, runs the transform stages of
  ``etl.transforms`` (:mod:`eventlake.etl_stages`), and per micro-batch writes the rejected records to
  ``dead_letters``, inserts the new events into ``silver_events`` (partitioned by event day,
  deduplicated by ``event_id`` against the whole table) and counts the batch in ``intake_batches``.

Every write is idempotent per micro-batch and retried with exponential backoff on transient failures
(``etl.retry``); when the retries run out the job stops, and a restart resumes from the checkpoints.
"""

from __future__ import annotations

from functools import partial

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from eventlake.config import ConfigError, RetrySettings, Settings, StorageSettings, resolve_secret
from eventlake.contract import parse_events
from eventlake.dimensions import ensure_dimension_table
from eventlake.etl_stages import StageContext, run_stages, to_bronze, to_silver
from eventlake.intake import observe_dead_letters, write_intake_batch
from eventlake.retry import with_retries
from eventlake.sinks import append_once, batch_writer_id, insert_new_rows, start_batch_stream
from eventlake.sources import read_kafka_stream
from eventlake.storage_checks import claim_checkpoint, require_folder

JOB = "etl"
BRONZE_TABLE = "bronze_events"
SILVER_TABLE = "silver_events"


def write_bronze_batch(
    bronze: DataFrame, batch_id: int, *, storage: StorageSettings, writer_id: str, retry: RetrySettings
) -> None:
    """Append one micro-batch of bronze rows, once per batch id, retried on transient failures."""
    with_retries(
        lambda: append_once(bronze, storage.table_path(BRONZE_TABLE), writer_id, batch_id, ["ingest_date"]),
        retry,
        f"{JOB}: writing batch {batch_id} to {BRONZE_TABLE}",
    )


def write_silver_rows(rows: DataFrame, batch_id: int, *, storage: StorageSettings, retry: RetrySettings) -> None:
    """Insert one micro-batch's valid events into silver, skipping event ids it already holds."""
    silver = to_silver(rows)
    with_retries(
        lambda: insert_new_rows(silver, storage.table_path(SILVER_TABLE), "event_id", "event_date"),
        retry,
        f"{JOB}: writing batch {batch_id} to {SILVER_TABLE}",
    )


def silver_rows(raw: DataFrame, settings: Settings, context: StageContext) -> DataFrame:
    """Kafka rows -> extracted, validated and transformed rows (invalid ones marked, not removed)."""
    etl = settings.etl
    parsed = raw.transform(parse_events, settings.contract)
    try:
        return run_stages(parsed, etl.transforms, context)
    except (AnalysisException, ValueError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise ConfigError(f"etl.transforms {list(etl.transforms)} cannot run: {first_line}") from None


def start_etl_queries(spark: SparkSession, settings: Settings) -> list[StreamingQuery]:
    """Start the ETL's two streaming queries; they run until the trigger says stop."""
    storage, etl = settings.storage, settings.etl
    require_folder(storage.tables_root, "tables root")
    for query in ("bronze", "silver"):
        claim_checkpoint(storage.checkpoint_path(JOB, query), JOB, query, settings.kafka.topic)
    dimension = ensure_dimension_table(spark, etl.enrich, storage) if "enrich" in etl.transforms else None
    context = StageContext(etl=etl, dimension=dimension, pii_salt=resolve_secret(etl.pii.salt))
    raw = read_kafka_stream(spark, settings.kafka)
    rows = silver_rows(raw, settings, context)

    bronze_checkpoint = storage.checkpoint_path(JOB, "bronze")
    silver_checkpoint = storage.checkpoint_path(JOB, "silver")
    write_bronze = partial(
        write_bronze_batch,
        storage=storage,
        writer_id=batch_writer_id(f"{JOB}_bronze", bronze_checkpoint),
        retry=etl.retry,
    )
    write_silver = partial(
        write_intake_batch,
        job=JOB,
        storage=storage,
        writer_id=batch_writer_id(f"{JOB}_silver", silver_checkpoint),
        retry=etl.retry,
        write_valid=partial(write_silver_rows, storage=storage, retry=etl.retry),
    )
    return [
        start_batch_stream(raw.transform(to_bronze), write_bronze, f"{JOB}_bronze", bronze_checkpoint, etl.trigger),
        start_batch_stream(
            rows.transform(observe_dead_letters), write_silver, f"{JOB}_silver", silver_checkpoint, etl.trigger
        ),
    ]
