#!/usr/bin/env bash
# Fault injection: each job SIGKILLed at random moments (20 times by default) over a stream with duplicates, late
# and malformed records, restarted each time; its tables compared row for row with a run never killed, and the
# killed analytics run reconciled. Prints every kill and a summary; exit 0 when all equal, 1 when anything differs.
# Starts a broker of its own on free ports. --help for the options (--kills, --records, --jobs, --seed, --keep...).
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/.venv/bin/python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
cd "$root"
exec "$root/.venv/bin/python" -m eventlake.local.faults "$@"
