#!/usr/bin/env bash
# A local Spark standalone cluster (a master and two workers on 127.0.0.1) to try the jobs as on a real one:
# scripts/cluster.sh start|stop|status (--help for ports, workers, cores and memory).
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/.venv/bin/python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
exec "$root/.venv/bin/python" -m eventlake.local.cluster "$@"
