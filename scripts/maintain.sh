#!/usr/bin/env bash
# Delta table maintenance: scripts/maintain.sh [report|optimize|vacuum] (--help for more; docs/maintenance.md).
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/.venv/bin/python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
exec "$root/.venv/bin/python" -m eventlake.ops.maintenance "$@"
