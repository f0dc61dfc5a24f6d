"""Alerts, record at a time: Kafka -> contract -> rules from config -> an alerts topic, and a Delta copy.

Two queries:

* ``alerts_detect`` (stateless; Spark's Real-Time Mode, or micro-batches): parses each record with the
  contract and evaluates every rule of ``alerts.rules`` (a SQL predicate over the contract's columns). Each
  (valid event, matching rule) becomes one JSON message on ``alerts.topic``; each invalid record goes as it
  came (key, value, headers) to ``alerts.dead_letters_topic``, with headers naming the error and its Kafka
  coordinates. Kafka's sink delivers at least once: after a crash a message may be written twice.
* ``alerts_copy`` (micro-batches, ``foreachBatch``): copies both topics into the Delta tables ``alerts`` and
  ``alerts_dead_letters``, keeping one row per source record and rule (an insert-only MERGE on ``alert_id``,
  and on ``record_id`` for the dead letters), so a message written twice is kept once.

Real-Time Mode holds one task per partition of the topic for as long as a batch lasts
(``alerts.checkpoint_interval``), so the job checks that Spark has a slot for each and one for the copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from eventlake.pipeline.contract import EVENT_COLUMNS, JOB_TIME_COLUMN, header_text, parse_events
from eventlake.pipeline.sinks import insert_new_rows, run_together, start_batch_stream, with_trigger
from eventlake.pipeline.sources import kafka_client_options, read_kafka_stream
from eventlake.runtime.config import (
    AlertRule,
    AlertsSettings,
    ConfigError,
    RetrySettings,
    Settings,
    StorageSettings,
    spark_interval,
)
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import DEAD_LETTERS, job_table
from eventlake.runtime.kafka_admin import create_topic, require_topic
from eventlake.runtime.retry import with_retries
from eventlake.runtime.runner import QueryPlan
from eventlake.runtime.storage_checks import claim_checkpoint, require_folder

JOB = "alerts"
ALERTS_TABLE = "alerts"
DEAD_LETTERS_TABLE = job_table(JOB, DEAD_LETTERS)
DETECT_QUERY = f"{JOB}_detect"
COPY_QUERY = f"{JOB}_copy"

# Headers of a dead letter on the dead letters topic (the record's own headers come first).
ERROR_HEADERS = {
    "error_code": "eventlake.error_code",
    "error_message": "eventlake.error_message",
    "stage": "eventlake.error_stage",
    "topic": "eventlake.source_topic",
    "partition": "eventlake.source_partition",
    "offset": "eventlake.source_offset",
    "kafka_timestamp_ms": "eventlake.source_timestamp_ms",
}
RULE_HEADER = "eventlake.rule"
# An alert message's value, as written (the event's fields in "event", data as JSON).
ALERT_MESSAGE_SCHEMA = (
    "rule string, severity string, event string,"
    " source struct<topic: string, partition: int, offset: long, timestamp: timestamp>, detected_at timestamp"
)
ALERT_EVENT_SCHEMA = "event_id string, event_time timestamp, event_type string, user_id string"
_MATCH_TYPE = "array<struct<rule: string, severity: string>>"


def wall_clock() -> Column:
    """The clock of the executor computing the row, in milliseconds. ``current_timestamp()`` is the time a
    batch started, fixed for the whole batch, and a Real-Time Mode batch lasts minutes."""
    return F.timestamp_millis(F.expr("reflect('java.lang.System', 'currentTimeMillis')").cast("long"))


def with_wall_clock(raw: DataFrame) -> DataFrame:
    """Kafka rows -> the same rows with the executor's clock as the job's clock of the contract's checks
    (see :func:`~eventlake.pipeline.contract.with_job_clock`)."""
    return raw.withColumn(JOB_TIME_COLUMN, wall_clock())


def matching_rules(rules: Sequence[AlertRule]) -> Column:
    """The rules whose predicate holds for the row, as an array of (rule, severity); a predicate that is
    NULL for the row does not hold."""
    if not rules:
        return F.array().cast(_MATCH_TYPE)
    matches = [
        F.when(F.expr(rule.when), F.struct(F.lit(rule.name).alias("rule"), F.lit(rule.severity).alias("severity")))
        for rule in rules
    ]
    return F.filter(F.array(*matches), lambda match: match.isNotNull())


def _text_header(name: str, value: Column) -> Column:
    return F.struct(F.lit(name).alias("key"), value.cast("string").cast("binary").alias("value"))


def to_alert_messages(
    parsed: DataFrame, rules: Sequence[AlertRule], alerts_topic: str, dead_letters_topic: str
) -> DataFrame:
    """Rows of :func:`~eventlake.pipeline.contract.parse_events` -> Kafka messages (``topic``, ``key``,
    ``value``, ``headers``): one per valid event and rule it matches, on ``alerts_topic`` (key: the event
    id; value: JSON with the rule, severity, event, source coordinates and detection time), and one per
    invalid record, as it came, on ``dead_letters_topic`` with the error and coordinates in headers."""
    is_valid = F.col("error_code").isNull()
    # One dead-letter placeholder for an invalid record: explode then yields exactly one message for it.
    no_rule = F.array(F.struct(F.lit(None).cast("string").alias("rule"), F.lit(None).cast("string").alias("severity")))
    exploded = parsed.withColumn("_match", F.explode(F.when(is_valid, matching_rules(rules)).otherwise(no_rule)))
    event = F.struct(*EVENT_COLUMNS)
    source = F.struct("topic", "partition", "offset", "timestamp")
    alert = F.to_json(
        F.struct(
            F.col("_match.rule").alias("rule"),
            F.col("_match.severity").alias("severity"),
            event.alias("event"),
            source.alias("source"),
            wall_clock().alias("detected_at"),
        )
    )
    error_headers = F.array(
        *(
            _text_header(header, F.unix_millis("timestamp") if column == "kafka_timestamp_ms" else F.col(column))
            for column, header in ERROR_HEADERS.items()
            if column != "stage"
        ),
        _text_header(ERROR_HEADERS["stage"], F.col("error_stage")),
    )
    own_headers = F.coalesce(F.col("headers"), F.array().cast("array<struct<key: string, value: binary>>"))
    return exploded.select(
        F.when(is_valid, F.lit(alerts_topic)).otherwise(F.lit(dead_letters_topic)).alias("topic"),
        F.when(is_valid, F.col("event_id").cast("binary")).otherwise(F.col("key")).alias("key"),
        F.when(is_valid, alert.cast("binary")).otherwise(F.col("value")).alias("value"),
        F.when(is_valid, F.array(_text_header(RULE_HEADER, F.col("_match.rule"))))
        .otherwise(F.concat(own_headers, error_headers))
        .alias("headers"),
    )


def alerts_from_messages(messages: DataFrame) -> DataFrame:
    """Kafka rows of the alerts topic -> rows of the Delta table ``alerts``: ``alert_id`` names the source
    record and the rule (the same for two copies of one message), ``published_at`` is the message's own
    Kafka timestamp."""
    alert = F.from_json(F.col("value").cast("string"), ALERT_MESSAGE_SCHEMA)
    rows = messages.select(
        alert.alias("alert"), F.col("timestamp").alias("published_at"),
        F.col("partition").alias("alert_partition"), F.col("offset").alias("alert_offset"),
    )
    event = F.from_json("alert.event", ALERT_EVENT_SCHEMA)
    source = F.col("alert.source")
    return rows.select(
        F.concat_ws("/", source.topic, source.partition, source.offset, F.col("alert.rule")).alias("alert_id"),
        F.col("alert.rule").alias("rule"),
        F.col("alert.severity").alias("severity"),
        event.event_id.alias("event_id"),
        event.event_type.alias("event_type"),
        event.event_time.alias("event_time"),
        event.user_id.alias("user_id"),
        F.col("alert.event").alias("event"),
        source.topic.alias("source_topic"),
        source.partition.alias("source_partition"),
        source.offset.alias("source_offset"),
        source.timestamp.alias("source_timestamp"),
        F.to_date(source.timestamp).alias("source_date"),
        F.col("alert.detected_at").alias("detected_at"),
        "published_at",
        "alert_partition",
        "alert_offset",
    )


def dead_letters_from_messages(messages: DataFrame) -> DataFrame:
    """Kafka rows of the dead letters topic -> rows of ``alerts_dead_letters``: the columns of every job's
    dead letters (the raw record, its error and its original coordinates) and ``record_id``, which names
    the original record (the same for two copies of one message)."""
    header = {column: header_text(name) for column, name in ERROR_HEADERS.items()}
    own_headers = F.filter("headers", lambda item: ~item.key.startswith("eventlake."))
    kafka_timestamp = F.timestamp_millis(header["kafka_timestamp_ms"].cast("long"))
    return messages.select(
        F.concat_ws("/", header["topic"], header["partition"], header["offset"]).alias("record_id"),
        F.col("key").alias("raw_key"),
        F.col("value").alias("raw_value"),
        F.when(F.size(own_headers) > 0, own_headers).alias("raw_headers"),
        header["error_code"].alias("error_code"),
        header["error_message"].alias("error_message"),
        header["stage"].alias("stage"),
        F.lit(JOB).alias("job"),
        header["topic"].alias("topic"),
        header["partition"].cast("int").alias("partition"),
        header["offset"].cast("long").alias("offset"),
        kafka_timestamp.alias("kafka_timestamp"),
        F.to_date(kafka_timestamp).alias("kafka_date"),
        F.current_timestamp().alias("ingested_at"),
    )


def check_rules(parsed: DataFrame, rules: Sequence[AlertRule]) -> None:
    """Raise ConfigError naming the rule whose predicate Spark cannot analyse (an unknown column, a
    syntax error, a type that is not a condition), before any record is read."""
    for rule in rules:
        try:
            parsed.where(F.expr(rule.when)).schema  # noqa: B018 - analysing is the check
        except (AnalysisException, ValueError) as error:
            first_line = str(error).strip().splitlines()[0]
            raise ConfigError(f"alerts.rules.{rule.name}.when {rule.when!r} cannot run: {first_line}") from None


def write_copy_batch(
    messages: DataFrame, batch_id: int, *, alerts: AlertsSettings, storage: StorageSettings, retry: RetrySettings
) -> None:
    """``foreachBatch`` function of the copy query: the batch's alert messages into ``alerts`` and its dead
    letters into ``alerts_dead_letters`` at the same time, each message once however often it was written
    to Kafka and however often this batch runs."""
    messages = messages.localCheckpoint(eager=True)
    copies = (
        (alerts.topic, alerts_from_messages, ALERTS_TABLE, "alert_id", "source_date"),
        (alerts.dead_letters_topic, dead_letters_from_messages, DEAD_LETTERS_TABLE, "record_id", "kafka_date"),
    )
    writes = []
    for topic, to_rows, table, key, day in copies:
        rows = messages.where(F.col("topic") == topic).transform(to_rows).dropDuplicates([key])
        writes.append(
            partial(
                with_retries,
                partial(insert_new_rows, rows, storage.table_path(table), key, day, 0),
                retry,
                f"{JOB}: copying batch {batch_id} into {table}",
            )
        )
    run_together(writes)


def require_task_slots(spark: SparkSession, source_partitions: int) -> None:
    """Real-Time Mode runs one long task per Kafka partition for the whole batch; the copy query needs a
    slot besides. Raise EnvironmentProblem, naming the fix, when Spark has fewer."""
    slots = spark.sparkContext.defaultParallelism
    needed = source_partitions + 1
    if slots < needed:
        raise EnvironmentProblem(
            f"alerts: Real-Time Mode needs a task slot for each of the topic's {source_partitions} partitions and one"
            f" for the copy query ({needed}), but Spark has {slots}: run with more (spark-submit --master"
            f" 'local[{needed}]' on one machine, or more executor cores), or set alerts.trigger to an interval"
        )


def alerts_queries(spark: SparkSession, settings: Settings) -> QueryPlan:
    """The job's two queries: detection (Real-Time Mode or micro-batches, as ``alerts.trigger`` says) and the
    copy into Delta. Checks the rules, the task slots and the storage, creates the output topics when
    missing and claims both checkpoints first."""
    alerts, storage, kafka = settings.alerts, settings.storage, settings.kafka
    require_folder(storage.tables_root, "tables root")
    real_time = alerts.trigger == "realTime"
    source_partitions = require_topic(kafka.bootstrap_servers, kafka.topic, kafka.options)
    if real_time:
        require_task_slots(spark, source_partitions)
    for topic in (alerts.topic, alerts.dead_letters_topic):
        create_topic(kafka.bootstrap_servers, topic, partitions=source_partitions, client_options=kafka.options)
    detect_checkpoint = storage.checkpoint_path(JOB, "detect")
    copy_checkpoint = storage.checkpoint_path(JOB, "copy")
    claim_checkpoint(spark, detect_checkpoint, JOB, "detect", kafka.topic)
    copy_topics = f"{alerts.topic},{alerts.dead_letters_topic}"
    claim_checkpoint(spark, copy_checkpoint, JOB, "copy", copy_topics)
    # Real-Time Mode reads as records come; Spark's limits per micro-batch do not apply to it.
    source = dataclasses.replace(kafka, max_offsets_per_trigger=0, min_offsets_per_trigger=0) if real_time else kafka
    parsed = read_kafka_stream(spark, source).transform(with_wall_clock).transform(parse_events, settings.contract)
    check_rules(parsed, alerts.rules)
    messages = to_alert_messages(parsed, alerts.rules, alerts.topic, alerts.dead_letters_topic)
    mode = (
        f"Real-Time Mode (progress checkpointed every {spark_interval(alerts.checkpoint_interval)})"
        if real_time else f"micro-batches ({alerts.trigger})"
    )
    print(f"{JOB}: {len(alerts.rules)} rules; detection runs in {mode}", flush=True)

    def start_detect() -> StreamingQuery:
        writer = (
            messages.writeStream.queryName(DETECT_QUERY)
            .format("kafka")
            .options(**kafka_client_options(kafka))
            .option("checkpointLocation", detect_checkpoint)
            .outputMode("update")
        )
        if real_time:
            # pyspark 4.2's overloads of trigger() do not list realTime yet; the method takes it.
            return writer.trigger(realTime=spark_interval(alerts.checkpoint_interval)).start()  # type: ignore[call-overload]
        return with_trigger(writer, alerts.trigger).start()

    copy_source = dataclasses.replace(kafka, topic=copy_topics, starting_offsets="earliest")
    write_copy = partial(write_copy_batch, alerts=alerts, storage=storage, retry=settings.retry)
    copy_trigger = "availableNow" if alerts.trigger == "availableNow" else alerts.copy_trigger

    def start_copy() -> StreamingQuery:
        return start_batch_stream(
            read_kafka_stream(spark, copy_source), write_copy, COPY_QUERY, copy_checkpoint, copy_trigger
        )

    return QueryPlan(starts=(start_detect, start_copy), in_turn=alerts.trigger == "availableNow")
