#!/usr/bin/env bash
# The container, built and run for real with podman, from nothing: installs podman, debootstrap and runc
# (Debian's packages), makes a Debian base image, builds stand-ins for the Spark and Maven images the
# Dockerfile starts from (container/*.Containerfile), builds the project's image with the Dockerfile, runs
# jobs/analytics.py and jobs/etl.py in it against the local broker with the tables on a mounted folder, runs
# the same jobs locally over the same topic, and compares the two table sets row for row and reconciles the
# container's from outside. Prints each step's time. Images already built are kept (--rebuild builds again);
# --build-only stops once the images are built (the test suite builds them while other tests run).
#
#   scripts/container.sh [--rebuild] [--build-only] [--events N]
#
# Needs root (apt-get, debootstrap, rootful podman). Files in data/container/ (git-ignored).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
rebuild=0
build_only=0
events=2000
while [ $# -gt 0 ]; do
    case "$1" in
        --rebuild) rebuild=1 ;;
        --build-only) build_only=1 ;;
        --events) events=$2; shift ;;
        *) echo "usage: scripts/container.sh [--rebuild] [--build-only] [--events N]" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "container.sh: run as root (apt-get, debootstrap and podman's storage)" >&2; exit 2; }

started=$(date +%s)
step_started=
step() {
    local now; now=$(date +%s)
    [ -z "$step_started" ] || printf '   (%d s)\n' $((now - step_started))
    step_started=$now
    printf '\n== %s\n' "$*"
}
# crun (podman's default) refuses this kind of machine's cgroups, and the default ulimits are above what it
# allows: runc, cgroupfs and explicit limits work on both these machines and ordinary ones.
podman_=(podman --runtime runc --cgroup-manager=cgroupfs)
limits=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
base=localhost/eventlake-bookworm-min
spark_image=localhost/eventlake-spark-standin:4.2.0
maven_image=localhost/eventlake-maven-standin:latest
image=localhost/eventlake:dev
work=data/container
topic=container-events
needs_build() { [ "$rebuild" = 1 ] || ! "${podman_[@]}" image exists "$1"; }

step "tools: podman, debootstrap, runc (Debian's packages), the project's setup"
missing=()
for tool in podman debootstrap runc; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash scripts/setup.sh >/dev/null
podman --version

step "base image $base: a minimal Debian 12 made with debootstrap from the mirror apt uses"
if needs_build "$base"; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
    rm -rf "$work/rootfs" && mkdir -p "$work"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log"
    # Authorities this machine trusts beyond Debian's (a proxy's, a company's) are trusted in the images too.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$work/rootfs/usr/local/share/ca-certificates/"
        chroot "$work/rootfs" update-ca-certificates >/dev/null
    fi
    tar -C "$work/rootfs" -c . | "${podman_[@]}" import - "$base" >/dev/null
    rm -rf "$work/rootfs"
fi
echo "$base"

step "stand-in for Spark's image: $spark_image (Java 17, Python 3.11, Spark 4.2.0 from the pyspark wheel)"
if needs_build "$spark_image"; then
    "${podman_[@]}" build -q --network host "${limits[@]}" --build-arg "BASE_IMAGE=$base" \
        -f container/spark-standin.Containerfile -t "$spark_image" container
fi
version=$("${podman_[@]}" run --rm "${limits[@]}" "$spark_image" spark-submit --version 2>&1)
grep -m1 -o 'version [0-9.]*' <<<"$version"

step "stand-in for Maven's image: $maven_image (Maven and JDK 17)"
if needs_build "$maven_image"; then
    "${podman_[@]}" build -q --network host "${limits[@]}" --build-arg "BASE_IMAGE=$base" \
        -f container/maven-standin.Containerfile -t "$maven_image" container
fi

step "the project's image: $image, from the Dockerfile unchanged but for its two base images"
"${podman_[@]}" build -q --network host "${limits[@]}" --build-arg "SPARK_IMAGE=$spark_image" \
    --build-arg "MAVEN_IMAGE=$maven_image" -f Dockerfile -t "$image" .

if [ "$build_only" = 1 ]; then
    step "built in $(( $(date +%s) - started )) s"
    exit 0
fi

step "broker and topic $topic: $events sample events (duplicates, late and malformed ones among them)"
if ! scripts/kafka.sh status >/dev/null 2>&1; then
    trap 'scripts/kafka.sh stop >/dev/null' EXIT  # a broker this script started ends with it
fi
scripts/kafka.sh start >/dev/null
scripts/kafka.sh delete-topic "$topic" >/dev/null 2>&1 || true
scripts/kafka.sh create-topic "$topic" --partitions 2 >/dev/null
scripts/produce.sh --topic "$topic" --count "$events" --span "30 minutes" --seed 11 \
    --duplicates 0.05 --out-of-order 0.05 --late 0.01 --malformed 0.02
rm -rf "$work/lake" "$work/local"
# The image runs as its user spark (uid 185): the mounted folder must be theirs to write.
mkdir -p "$work/lake" && chown 185:185 "$work/lake"
run_in_container() {
    "${podman_[@]}" run --rm --network host "${limits[@]}" -v "$root/$work/lake:/opt/eventlake/data" "$image" \
        spark-submit "jobs/$1.py" --config conf/container.toml --set kafka.bootstrap_servers=127.0.0.1:9092 \
        --set "kafka.topic=$topic" --set kafka.max_offsets_per_trigger=1000
}
local_job() {
    (source .venv/bin/activate && spark-submit "jobs/$1.py" --set "kafka.topic=$topic" --set kafka.max_offsets_per_trigger=1000 \
        --set "storage.tables_root=$work/local/tables" --set "storage.checkpoint_root=$work/local/checkpoints")
}

step "spark-submit jobs/analytics.py in the container (tables in $work/lake)"
run_in_container analytics
step "spark-submit jobs/etl.py in the container"
run_in_container etl

step "the same jobs locally, over the same topic (tables in $work/local)"
local_job analytics >/dev/null
local_job etl >/dev/null

step "the container's tables read from outside: equal to the local run's, and reconciled"
.venv/bin/python -m eventlake.ops.compare_tables "$work/lake/tables" "$work/local/tables"
scripts/reconcile.sh --set "storage.tables_root=$work/lake/tables" --set "storage.checkpoint_root=$work/lake/checkpoints"
step "done in $(( $(date +%s) - started )) s"
