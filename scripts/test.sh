#!/usr/bin/env bash
# Sets up whatever is missing, then runs the whole test suite (unit and integration; the integration tests
# start their own Kafka broker on free loopback ports). Arguments go to pytest: scripts/test.sh -m "not slow".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
exec .venv/bin/python -m pytest "$@"
