#!/usr/bin/env bash
# Send dead letters to Kafka again, each once: scripts/replay.sh --job analytics --error-code CODE [--fix NAME] [--dry-run] (--help for more).
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/.venv/bin/python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
exec "$root/.venv/bin/python" -m eventlake.ops.replay "$@"
