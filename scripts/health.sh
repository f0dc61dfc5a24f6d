#!/usr/bin/env bash
# The health report: per job its last batch, throughput, lag, drops and dead letters, and a PNG of charts.
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/.venv/bin/python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
exec "$root/.venv/bin/python" -m eventlake.ops.health "$@"
