#!/usr/bin/env bash
# Builds dist/eventlake.zip (or the path given): the eventlake package for spark-submit --py-files, so a cluster
# whose Python has only pyspark and the driver's few dependencies runs the jobs. Rebuild it after changing lib/.
# eventlake.local (the development broker, cluster and producer) stays out: a job never needs it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=$root/.venv/bin/python
[ -x "$python" ] || python=python3
"$python" - "$root/lib" "${1:-$root/dist/eventlake.zip}" <<'PY'
import pathlib, sys, zipfile
lib, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.parent.mkdir(parents=True, exist_ok=True)
# Sources and the package's own data (the built-in contract's events.toml), in a fixed order with fixed
# times: the same lib/ gives the same zip.
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
    files = [*(lib / "eventlake").rglob("*.py"), *(lib / "eventlake").rglob("*.toml")]
    for source in sorted(files):
        if source.relative_to(lib).parts[1] == "local":
            continue
        entry = zipfile.ZipInfo(str(source.relative_to(lib)), (2020, 1, 1, 0, 0, 0))
        archive.writestr(entry, source.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
print(f"{out}: {len(archive.namelist())} modules")
PY
