"""Where a batch's time goes: each stage of the contract and the analytics on one Kafka topic, in batch mode.

    source .venv/bin/activate
    python scripts/bench/parse_profile.py --topic TOPIC [--bootstrap-servers 127.0.0.1:9092] [--runs 3]

Reads the topic once into memory, then times each prefix of the pipeline with Spark's ``noop`` sink (the
best of ``--runs``, so the JIT is warm): extraction (the one parse), the field reads, the whole contract,
and deduplication + windows on the parsed rows. Used to decide what to tune; figures in the README's
Performance section.
"""

from __future__ import annotations

import argparse
import sys
import time

from pyspark.sql import DataFrame

from eventlake.pipeline import contract
from eventlake.pipeline.analytics import analytics_windows
from eventlake.pipeline.contract import engine
from eventlake.pipeline.sources import kafka_source_options
from eventlake.runtime.config import load_settings
from eventlake.runtime.session import build_spark_session


def best_seconds(frame: DataFrame, runs: int) -> float:
    """The shortest of ``runs`` full evaluations of ``frame``."""
    best = float("inf")
    for _ in range(runs):
        started = time.monotonic()
        frame.write.format("noop").mode("overwrite").save()
        best = min(best, time.monotonic() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    settings = load_settings(
        "conf/local.toml", [f"kafka.topic={args.topic}", f"kafka.bootstrap_servers={args.bootstrap_servers}"]
    )
    spark = build_spark_session(settings.spark)
    options = {**kafka_source_options(settings.kafka), "endingOffsets": "latest"}
    raw = spark.read.format("kafka").options(**options).load().cache()
    records = raw.count()
    # The engine's own stages (private: this profile looks inside them).
    reading = engine._Reading(contract.events_contract(settings.contract))
    extracted = engine._extract(raw, reading)
    parsed = contract.parse_events(raw, settings.contract)
    stages = {
        "records in memory": raw,
        "extract (text, format, one parse)": extracted,
        "+ field reads": extracted.transform(engine._read_values, reading),
        "whole contract (parse_events)": parsed,
        "contract + valid events": contract.valid_events(parsed),
    }
    print(f"{records:,} records of {args.topic}; best of {args.runs} runs, noop sink")
    for label, frame in stages.items():
        print(f"{label:<36} {best_seconds(frame, args.runs):7.2f} s", flush=True)
    valid = contract.valid_events(parsed).cache()
    valid.count()
    windows = valid.transform(analytics_windows, settings.analytics)
    print(f"{'dedupe + windows on parsed rows':<36} {best_seconds(windows, args.runs):7.2f} s")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
