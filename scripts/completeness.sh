#!/usr/bin/env bash
# How complete each final window is: events counted on time, late events kept after it closed.
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/.venv/bin/python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
exec "$root/.venv/bin/python" -m eventlake.ops.completeness "$@"
