#!/usr/bin/env bash
# The whole thing on this machine, from nothing: set up, start the local Kafka broker, send a sample stream
# (with duplicates, out-of-order, late and malformed records, in two formats and two contract versions), run
# the analytics job and the ETL job over it, replay fixable dead letters, and print what they wrote to Delta (read
# without a JVM). The demo keeps to its own topic and folders (demo-events, data/demo/) and starts them afresh on
# every run, so it never touches your own tables.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
topic=demo-events
demo=(--set "kafka.topic=$topic" --set storage.tables_root=data/demo/tables --set storage.checkpoint_root=data/demo/checkpoints)
step() { printf '\n== %s\n' "$*"; }

step "setup"
bash scripts/setup.sh

step "Kafka broker"
scripts/kafka.sh start
scripts/kafka.sh delete-topic "$topic" >/dev/null 2>&1 || true
rm -rf data/demo
scripts/kafka.sh create-topic "$topic" --partitions 4

step "sample stream: 5,000 events over the last 40 minutes (10% as key=value lines, 20% in contract version 2)"
scripts/produce.sh --topic "$topic" --count 5000 --span "40 minutes" --seed 7 \
    --duplicates 0.05 --out-of-order 0.05 --late 0.01 --malformed 0.02 --kv 0.1 --v2 0.2

step "spark-submit jobs/analytics.py (availableNow, at most 2,500 records a micro-batch, a windows batch per intake
   batch; the topic is quiet once its newest record is 10 s old: then the last windows are written too)"
source .venv/bin/activate
spark-submit jobs/analytics.py "${demo[@]}" --set kafka.max_offsets_per_trigger=2500 \
    --set analytics.max_files_per_trigger=1 --set analytics.idle_timeout="10 seconds"

step "analytics_windows, read back from Delta"
scripts/query.sh "${demo[@]}" --limit 200 \
    "SELECT window_start, window_end, event_type, event_count, distinct_users
     FROM analytics_windows ORDER BY window_start, event_type"

step "reconciliation of the analytics job: every record read is accounted for"
scripts/reconcile.sh "${demo[@]}"

step "dead letters replayed: BAD_TIMESTAMP records (a time without a UTC offset) repaired and sent again, each once"
scripts/replay.sh "${demo[@]}" --job analytics --fix timestamp_as_utc
scripts/replay.sh "${demo[@]}" --job analytics --fix timestamp_as_utc  # again: nothing left to send

step "20 events from 40 to 30 minutes ago, after their windows were written; the analytics job again (it reads the
   replayed copies too)"
scripts/produce.sh --topic "$topic" --count 20 --seed 8 --span "10 minutes" \
    --start-time "$(date -u -d '40 minutes ago' +%Y-%m-%dT%H:%M:%S)"
spark-submit jobs/analytics.py "${demo[@]}" --set analytics.max_files_per_trigger=1

step "late events kept in analytics_late_events, and how complete the windows are"
scripts/query.sh "${demo[@]}" \
    "SELECT window_start, count(*) AS late_events, round(avg(late_by_seconds)) AS late_by_seconds_avg
     FROM analytics_late_events GROUP BY window_start ORDER BY window_start"
scripts/completeness.sh "${demo[@]}" --windows 10
scripts/reconcile.sh "${demo[@]}"

step "spark-submit jobs/etl.py (bronze, silver, dead letters; at most 2,500 records a micro-batch)"
spark-submit jobs/etl.py "${demo[@]}" --set kafka.max_offsets_per_trigger=2500

step "silver_events by day and type: events, contract versions, enrichment"
scripts/query.sh "${demo[@]}" \
    "SELECT event_date, event_type, count(*) AS events, count(*) FILTER (WHERE schema_version = '2') AS version_2,
            count(*) FILTER (WHERE enriched) AS enriched, count(*) FILTER (WHERE NOT enriched) AS dimension_misses
     FROM silver_events GROUP BY event_date, event_type ORDER BY event_date, event_type"

step "records in bronze, events in silver"
scripts/query.sh "${demo[@]}" \
    "SELECT (SELECT count(*) FROM bronze_events) AS bronze_records,
            (SELECT count(*) FROM silver_events) AS silver_events,
            (SELECT count(*) FROM dead_letters WHERE job = 'etl') AS etl_dead_letters"

step "dead_letters by job, stage and error code"
scripts/query.sh "${demo[@]}" \
    "SELECT job, stage, error_code, count(*) AS records, min(error_message) AS example
     FROM dead_letters GROUP BY job, stage, error_code ORDER BY job, records DESC"

step "health report: per job figures, and charts in data/demo/health.png"
scripts/health.sh "${demo[@]}" --out data/demo/health.png

step "table maintenance report: files, small files, log and checkpoint sizes (scripts/maintain.sh optimize|vacuum act)"
scripts/maintain.sh "${demo[@]}"

printf '\nThe broker keeps running (scripts/kafka.sh stop ends it). Query the tables yourself:\n'
printf '  scripts/query.sh %s "SELECT * FROM silver_events LIMIT 5"\n' "${demo[*]}"
