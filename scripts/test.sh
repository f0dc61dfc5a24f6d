#!/usr/bin/env bash
# Sets up whatever is missing, checks lint (ruff) and types (mypy), then runs the whole test suite (unit and
# integration; the integration tests start their own Kafka broker on free loopback ports) on a worker per core
# (pytest-xdist, up to 4; a test file's tests stay on one worker). Arguments go to pytest:
# scripts/test.sh -m "not slow", scripts/test.sh -n 0 (one process), scripts/test.sh -m container (a heavy chain alone: container, cluster, slow).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
echo "== ruff (lint, import order) and mypy (types of lib/)"
.venv/bin/ruff check lib jobs tests scripts
.venv/bin/mypy
exec .venv/bin/python -m pytest -n auto --maxprocesses 4 --dist loadfile "$@"
