"""The Spark limit for scripts/bench.sh: one *batch* job over the whole topic doing the analytics job's work.

    spark-submit scripts/bench/spark_batch_limit.py --set kafka.topic=bench-... --set storage.tables_root=...

It reads every record of the topic at once (``spark.read``, earliest to latest offsets), runs the same
contract parsing, deduplication and windowed counts as ``jobs/analytics.py`` (the same library functions,
so the two differ only in streaming machinery: checkpoints, state store, micro-batches, idempotent
commits), and overwrites the Delta table ``bench_batch_windows``. A batch job has no watermark, so late
events are counted here and dropped by the streaming job; the difference is a fraction of a percent.
The last line on stdout is a JSON object with what it read and wrote.
"""

from __future__ import annotations

import json
import sys
import time

from pyspark.sql import functions as F

from eventlake.pipeline.analytics import analytics_windows
from eventlake.pipeline.contract import parse_events, valid_events
from eventlake.pipeline.sources import kafka_source_options
from eventlake.runtime.config import load_settings
from eventlake.runtime.runner import job_arguments
from eventlake.runtime.session import build_spark_session

TABLE = "bench_batch_windows"


def main(argv: list[str] | None = None) -> int:
    args = job_arguments("Batch read + parse + windowed counts of a Kafka topic into Delta.", argv)
    settings = load_settings(args.config, args.overrides)
    spark = build_spark_session(settings.spark)
    started = time.monotonic()
    options = kafka_source_options(settings.kafka)
    # Streaming-only options are refused (or ignored) by the batch reader.
    for key in ("maxOffsetsPerTrigger", "minOffsetsPerTrigger", "maxTriggerDelay"):
        options.pop(key, None)
    raw = spark.read.format("kafka").options(**options).option("endingOffsets", "latest").load()
    windows = valid_events(parse_events(raw, settings.contract)).transform(analytics_windows, settings.analytics)
    path = settings.storage.table_path(TABLE)
    windows.write.format("delta").mode("overwrite").save(path)
    totals = spark.read.format("delta").load(path).agg(
        F.count(F.lit(1)).alias("windows"), F.sum("event_count").alias("events_counted")
    ).first()
    print(json.dumps({
        "contender": "spark-batch",
        "windows": totals["windows"],
        "events_counted": totals["events_counted"],
        "processing_seconds": round(time.monotonic() - started, 3),
    }))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
