#!/usr/bin/env bash
# The local Kafka broker: scripts/kafka.sh start|stop|status|create-topic NAME|delete-topic NAME (--help for more).
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/.venv/bin/python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
exec "$root/.venv/bin/python" -m eventlake.local.broker "$@"
