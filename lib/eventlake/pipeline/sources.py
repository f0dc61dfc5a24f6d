"""Reading streams: Kafka's raw records (key, value, topic, partition, offset, timestamp, headers), and
Delta tables that another query appends to."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from eventlake.runtime.config import KafkaSettings, resolve_secret, spark_interval
from eventlake.runtime.hadoop_files import HadoopFiles


def kafka_client_options(kafka: KafkaSettings) -> dict[str, str]:
    """The options Spark's Kafka source and sink both take: the brokers and the ``kafka.*`` client options
    of ``kafka.options`` (security), secrets resolved from the environment."""
    options = {"kafka.bootstrap.servers": kafka.bootstrap_servers}
    options.update({key: resolve_secret(value) for key, value in kafka.options.items() if key.startswith("kafka.")})
    return options


def kafka_source_options(kafka: KafkaSettings) -> dict[str, str]:
    """The options for Spark's Kafka source, secrets resolved from the environment."""
    options = {
        "kafka.bootstrap.servers": kafka.bootstrap_servers,
        "subscribe": kafka.topic,
        "startingOffsets": kafka.starting_offsets,
        "failOnDataLoss": str(kafka.fail_on_data_loss).lower(),
        "includeHeaders": "true",
    }
    if kafka.max_offsets_per_trigger > 0:
        options["maxOffsetsPerTrigger"] = str(kafka.max_offsets_per_trigger)
    if kafka.min_offsets_per_trigger > 0:
        # Wait for this many new records before a batch, but never longer than max_trigger_delay.
        options["minOffsetsPerTrigger"] = str(kafka.min_offsets_per_trigger)
    if kafka.max_trigger_delay is not None:
        options["maxTriggerDelay"] = spark_interval(kafka.max_trigger_delay)
    options.update({key: resolve_secret(value) for key, value in kafka.options.items()})
    return options


def read_kafka_stream(spark: SparkSession, kafka: KafkaSettings) -> DataFrame:
    """A streaming DataFrame of the topic's raw records, from the checkpoint's offsets or ``starting_offsets``."""
    return spark.readStream.format("kafka").options(**kafka_source_options(kafka)).load()


def read_delta_stream(spark: SparkSession, table_path: str, max_files_per_trigger: int = 0) -> DataFrame:
    """A streaming DataFrame of the rows appended to the Delta table at ``table_path``, from its first
    version on (or from the checkpoint's position); a batch reads at most ``max_files_per_trigger`` files
    (0: Delta's default).

    A new query reads the table's commits from version 0 when the log still has them, instead of Delta's
    "initial snapshot" (a Spark job that lists and sorts the table's files before the first batch): the
    same rows of an append-only table, found 3 to 6 s sooner on a cold job (docs/performance.md). A query
    with a checkpoint resumes from its offsets, where Delta ignores ``startingVersion``.

    Example::

        events = read_delta_stream(spark, "data/tables/analytics_events", max_files_per_trigger=1)
    """
    reader = spark.readStream.format("delta")
    if HadoopFiles(spark).exists(f"{table_path.rstrip('/')}/_delta_log/{0:020d}.json"):
        reader = reader.option("startingVersion", 0)
    if max_files_per_trigger > 0:
        reader = reader.option("maxFilesPerTrigger", max_files_per_trigger)
    return reader.load(table_path)
