"""The SparkSession every job and test uses: Delta enabled, UTC, quiet logs, the project's jars."""

from __future__ import annotations

import glob
import logging
import os
from typing import Any

from pyspark.sql import SparkSession

from eventlake.runtime.config import SparkSettings, resolve_secret
from eventlake.runtime.errors import EnvironmentProblem

KAFKA_SOURCE_CLASS = "org.apache.spark.sql.kafka010.KafkaSourceProvider"
DELTA_CATALOG_CLASS = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

_DEFAULTS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": DELTA_CATALOG_CLASS,
    # Windows, watermarks and printed times all in UTC, whatever the machine's zone.
    "spark.sql.session.timeZone": "UTC",
    # Laptop-sized defaults; the cluster example raises them. Delta rebuilds a table's state with
    # snapshotPartitions tasks (50 by default): on 2 cores that alone cost seconds per micro-batch.
    "spark.sql.shuffle.partitions": "2",
    "spark.databricks.delta.snapshotPartitions": "1",
    # A log checkpoint costs seconds here (rebuilding the table's state, then writing it) and the next
    # commit rebuilds the state again: every 100 commits instead of 10 (tables made by eventlake; readers
    # then replay up to 99 small JSON commits, milliseconds each).
    "spark.databricks.delta.properties.defaults.checkpointInterval": "100",
    # What else a small commit spends (a 2,500-row append: 365 -> 176 ms, scripts/bench.sh profile):
    # per-file min/max statistics (no data skipping on reads of these tables until an OPTIMIZE with
    # statistics on rewrites the files), a .crc file of the table's totals per commit (readers compute
    # them), and the operation metrics of DESCRIBE HISTORY. None of them decides what a table holds.
    "spark.databricks.delta.stats.collect": "false",
    "spark.databricks.delta.writeChecksumFile.enabled": "false",
    "spark.databricks.delta.history.metricsEnabled": "false",
    # Planning time per micro-batch (the ETL's: 1.3 s -> 0.3 s, Spark's RuleExecutor timings): dynamic
    # partition pruning searched every plan and never applied (no job joins on a partition column), and
    # Delta's file skipping by statistics ran a Spark job per scan of the dimension table while these
    # tables keep no statistics. Partition filters still prune files at planning time.
    "spark.sql.optimizer.dynamicPartitionPruning.enabled": "false",
    "spark.databricks.delta.stats.skipping": "false",
    "spark.sql.streaming.stateStore.providerClass": (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    ),
    # Upload only the changed state each batch instead of a RocksDB snapshot.
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
}


PROMETHEUS_PATH = "/metrics/prometheus"


def prometheus_conf(ui_port: int) -> dict[str, str]:
    """Spark settings that serve the driver's metrics, streaming queries included, in Prometheus' text
    format at ``http://<driver>:<ui_port>/metrics/prometheus`` (executors at /metrics/executors/prometheus)."""
    return {
        "spark.ui.enabled": "true",
        "spark.ui.port": str(ui_port),
        "spark.ui.prometheus.enabled": "true",
        "spark.sql.streaming.metricsEnabled": "true",
        "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
        "spark.metrics.conf.*.sink.prometheusServlet.path": PROMETHEUS_PATH,
        # Name the metrics after the app, not its id that changes on every run.
        "spark.metrics.namespace": "${spark.app.name}",
    }


def spark_conf(settings: SparkSettings) -> dict[str, str]:
    """Every Spark setting a job's session gets: eventlake's defaults, the Prometheus ones when asked for, then
    the config's ``spark.conf`` (which wins), its ``env:NAME`` values read from the environment (object
    store keys, endpoints)."""
    monitoring = prometheus_conf(settings.ui_port) if settings.prometheus else {}
    configured = {key: resolve_secret(value) for key, value in settings.conf.items()}
    return {**_DEFAULTS, **monitoring, **configured}


def build_spark_session(settings: SparkSettings) -> SparkSession:
    """Create (or reuse) the SparkSession described by ``settings`` and check its jars are loadable.

    Raises :class:`EnvironmentProblem` naming the fix when the Kafka or Delta classes are missing.
    """
    builder = SparkSession.builder.appName(settings.app_name)
    if settings.master:
        builder = builder.master(settings.master)
    jars = sorted(glob.glob(os.path.join(settings.jars_dir, "*.jar"))) if settings.jars_dir else []
    if jars:
        # Honoured when this process starts the JVM (python, pytest); spark-submit reads
        # spark-defaults.conf or --jars instead, which scripts/setup.sh prepares.
        builder = builder.config("spark.jars", ",".join(jars))
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.log_level)
    # PySpark also logs every query error as a page of JSON on stderr; our callers report them in one line.
    for noisy in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    _require_classes(spark, settings.jars_dir)
    return spark


def jvm_view(spark: SparkSession) -> Any:
    """The py4j view of the driver's JVM (always there in a classic, non-Connect session)."""
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise EnvironmentProblem("this Spark session has no JVM gateway (Spark Connect is not supported)")
    return jvm


def _require_classes(spark: SparkSession, jars_dir: str) -> None:
    jvm = jvm_view(spark)
    loader = jvm.Thread.currentThread().getContextClassLoader()
    for class_name, what in ((KAFKA_SOURCE_CLASS, "Spark's Kafka connector"), (DELTA_CATALOG_CLASS, "Delta Lake")):
        try:
            jvm.java.lang.Class.forName(class_name, False, loader)
        except Exception:  # py4j raises its own error type for a JVM ClassNotFoundException
            raise EnvironmentProblem(
                f"{what} is not on Spark's classpath ({class_name} not found). "
                f"Run scripts/setup.sh to fetch the jars into {jars_dir or 'jars/spark'}, "
                f"or pass them to spark-submit with --jars (or --packages on a cluster)."
            ) from None
