"""The benchmark's ``spark-plain`` contender: the analytics job's outputs written the way a Spark user would
write them in one file, with Spark's and Delta's defaults.

    spark-submit scripts/bench/spark_plain.py --bootstrap-servers H:P --topic T --out DIR [--max-offsets N]

Two streaming queries on the topic, each reading and parsing it: windows (``from_json`` with a schema, a
timestamp regex, watermark, ``dropDuplicatesWithinWatermark``, exact distinct users with
``size(collect_set(...))``, Delta sink) and dead letters (the records that fail the same checks, Delta
sink). ``availableNow``; no eventlake code. Prints one line per batch, then a JSON line with every batch's
progress.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

SCHEMA = (
    "event_id string, timestamp string, source string, schema_version string, type string,"
    " data struct<user_id: string>"
)
ISO_8601 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", required=True, help="folder for the tables and checkpoints")
    parser.add_argument("--max-offsets", type=int, default=0, help="maxOffsetsPerTrigger (0: no limit)")
    args = parser.parse_args(argv)

    spark = (
        SparkSession.builder.appName("spark-plain")
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap_servers)
        .option("subscribe", args.topic)
        .option("startingOffsets", "earliest")
    )
    if args.max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", args.max_offsets)
    raw = reader.load()

    parsed = raw.select(
        "key", "value", "topic", "partition", "offset", F.from_json(F.col("value").cast("string"), SCHEMA).alias("e")
    )
    checks = (
        F.col("e.event_id").isNotNull()
        & F.col("e.source").isNotNull()
        & F.col("e.type").isNotNull()
        & F.col("e.schema_version").isin("1")
        & F.col("e.timestamp").rlike(ISO_8601)
    )
    parsed = parsed.withColumn("valid", F.coalesce(checks, F.lit(False)))
    events = parsed.where("valid").select(
        "e.event_id", F.try_to_timestamp("e.timestamp").alias("event_time"), F.col("e.type").alias("event_type"),
        F.col("e.data.user_id").alias("user_id"),
    ).where(F.col("event_time").isNotNull())
    windows = (
        events.withWatermark("event_time", "10 minutes")
        .dropDuplicatesWithinWatermark(["event_id"])
        .groupBy(F.window("event_time", "5 minutes").alias("window"), "event_type")
        .agg(F.count(F.lit(1)).alias("event_count"), F.size(F.collect_set("user_id")).alias("distinct_users"))
        .select("window.start", "window.end", "event_type", "event_count", "distinct_users")
    )
    dead_letters = parsed.where(~F.col("valid")).select(
        "key", "value", "topic", "partition", "offset", F.lit("invalid").alias("reason")
    )
    queries = [
        windows.writeStream.format("delta").queryName("plain_windows").outputMode("append")
        .option("checkpointLocation", f"{args.out}/checkpoints/windows").trigger(availableNow=True)
        .start(f"{args.out}/tables/windows"),
        dead_letters.writeStream.format("delta").queryName("plain_dead_letters")
        .option("checkpointLocation", f"{args.out}/checkpoints/dead_letters").trigger(availableNow=True)
        .start(f"{args.out}/tables/dead_letters"),
    ]
    reported: dict[str, int] = {}
    while any(query.isActive for query in queries):
        time.sleep(0.5)
        _print_new_progress(queries, reported)
    _print_new_progress(queries, reported)
    for query in queries:
        if query.exception():
            print(f"spark-plain: {query.name} failed: {query.exception()}", file=sys.stderr)
            return 1
    progress = {query.name: [json.loads(p.json) for p in query.recentProgress] for query in queries}
    print(json.dumps({"progress": progress}))
    return 0


def _print_new_progress(queries, reported: dict[str, int]) -> None:
    for query in queries:
        for progress in query.recentProgress:
            if progress.batchId > reported.get(query.name, -1):
                reported[query.name] = progress.batchId
                print(f"[{query.name}] batch {progress.batchId}: {progress.numInputRows} rows in "
                      f"{progress.batchDuration / 1000:.2f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
