#!/usr/bin/env bash
# Sends generated contract-v1 events (or a JSON-lines file) to Kafka: scripts/produce.sh --help for the options.
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/.venv/bin/python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
exec "$root/.venv/bin/python" -m eventlake.local.producer "$@"
