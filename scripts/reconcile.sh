#!/usr/bin/env bash
# Reconciles the analytics job's counts: records read = valid + dead letters; valid = counted + duplicates + late.
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/.venv/bin/python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
exec "$root/.venv/bin/python" -m eventlake.ops.reconcile "$@"
