#!/usr/bin/env bash
# Benchmarks (not tests): scripts/bench.sh throughput|batches|profile|latency|ysb|ops [options]
#   throughput: eventlake against the raw Kafka and Spark limits, the lesson's consumer, quixstreams and
#               Flink SQL, on one backlog of 2 million events (about 250 bytes each) - about half an hour on 2 cores;
#   batches:    the time of one micro-batch per job at 500, 2,500 and 50,000 records a batch, beside spark-plain;
#   profile:    where one micro-batch's time goes, to the millisecond, per job (Spark's phases, each Delta write);
#   latency:    end-to-end latency percentiles at steady producer rates, for ETL silver and for windows;
#   ysb:        the gold job on 1 million Yahoo Streaming Benchmark ad events: events/s per core, beside the
#               published YSB figures per core (--with-flink: the same query in Flink SQL on the same topic);
#   ops:        time to first answer of query.sh (delta-rs + DuckDB beside Spark SQL), reconcile, health and
#               completeness, on the demo's tables (no broker needed).
# Sets up what is missing (the benchmark's own Python packages too) and starts the local broker if needed.
# --help after the mode lists its options. Results: a table on stdout and JSON under data/bench/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
mode=${1:-}
case "$mode" in
    throughput|batches|profile|latency|ysb|ops) shift ;;
    *) echo "usage: scripts/bench.sh throughput|batches|profile|latency|ysb|ops [--help | options]" >&2; exit 2 ;;
esac
bash scripts/setup.sh >&2
[ "$mode" = ops ] && exec .venv/bin/python scripts/bench/ops_answers.py "$@"  # reads tables: no broker
if ! .venv/bin/python -c 'import kafka, quixstreams, psutil' 2>/dev/null; then
    echo "bench: installing the benchmark's contenders (kafka-python, quixstreams, psutil) into .venv" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,bench]"
fi
scripts/kafka.sh start >&2
source .venv/bin/activate
script=$mode
[ "$mode" = profile ] && script=batch_profile  # not profile.py: that name is a module of Python's own
exec python "scripts/bench/$script.py" "$@"
