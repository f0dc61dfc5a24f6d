#!/usr/bin/env bash
# SQL over the Delta tables by name: scripts/query.sh "SELECT * FROM analytics_windows" | --tables (--help for more).
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/.venv/bin/python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
exec "$root/.venv/bin/python" -m eventlake.ops.query "$@"
