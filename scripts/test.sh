#!/usr/bin/env bash
# Sets up whatever is missing, checks lint (ruff) and types (mypy), then runs the whole test suite (unit and
# integration; the integration tests start their own Kafka broker on free loopback ports). Arguments go to pytest: scripts/test.sh -m "not slow".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
echo "== ruff (lint, import order) and mypy (types of lib/)"
.venv/bin/ruff check lib jobs tests scripts
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
