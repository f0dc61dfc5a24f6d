#!/usr/bin/env bash
# Sets up what eventlake needs on this machine and skips whatever is already in place:
#   Java 17+ and Maven (from the system's packages when missing and we are root),
#   the virtual environment .venv with the eventlake package, its Python dependencies and the extras
#   dev (tests and checks) and report (matplotlib, for the health chart that scripts/demo.sh draws),
#   the Spark jars (Kafka connector, Delta) in jars/spark, the Kafka broker jars in jars/kafka,
#   and a spark-defaults.conf so that `spark-submit jobs/<job>.py` finds jars/spark and .venv's Python
#   with no flags.
# Run it as often as you like: a second run checks stamps and does nothing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

# A stamp holds the hash of the inputs that produced a step's output; equal hash = nothing to do.
stamp_matches() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing $* with apt-get"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
            || die "apt-get could not install $*; install it by hand and run this again"
    else
        die "$1 is missing; install it (for example: sudo apt-get install $*) and run this again"
    fi
}

java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }

ensure_java() {
    command -v java >/dev/null || apt_install openjdk-17-jdk-headless
    local major; major=$(java_major)
    [ -n "$major" ] && [ "$major" -ge 17 ] \
        || die "Java 17 or newer is needed (found: $(java -version 2>&1 | head -n1)); install openjdk-17 and set JAVA_HOME"
}

ensure_maven() { command -v mvn >/dev/null || apt_install maven; }

find_python() {
    local candidate
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return
        fi
    done
    die "Python 3.11 or newer is needed and none was found on PATH"
}

# The extras .venv gets besides the runtime dependencies: part of the stamp, so that adding one reinstalls.
venv_extras=dev,report

ensure_venv() {
    local stamp=.venv/.eventlake-installed want
    want="$(hash_of pyproject.toml) $venv_extras"
    if [ ! -x .venv/bin/python ]; then
        local python; python=$(find_python)
        say "creating .venv with $($python --version)"
        "$python" -m venv .venv || die "could not create the virtual environment (.venv); is python3-venv installed?"
    fi
    if stamp_matches "$stamp" "$want"; then
        say ".venv is up to date"
        return
    fi
    say "installing eventlake and its dependencies into .venv (pyspark is large: a minute or two)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$venv_extras]" \
        || die "pip could not install the Python dependencies (see the messages above)"
    echo "$want" >"$stamp"
}

spark_home() { .venv/bin/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'; }

# Copies a pom's runtime dependencies into a jars folder, once per pom version,
# then runs the optional step given as the third argument on that folder.
fetch_jars() {
    local pom=$1 dest=$2 then=${3:-} stamp=$2/.stamp want
    want=$(hash_of "$pom")
    if stamp_matches "$stamp" "$want"; then
        say "$dest is up to date"
        return
    fi
    say "fetching the jars of $pom into $dest"
    rm -rf "$dest" && mkdir -p "$dest"
    # Debian's mvn prints colour resets even in batch mode; strip them (pipefail keeps mvn's exit code).
    mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$root/$dest" 2>&1 \
        | sed 's/\x1b\[[0-9;]*m//g' \
        || die "Maven could not fetch the jars of $pom (network or repository problem; see above) — run this again when it is reachable"
    [ -z "$then" ] || "$then" "$dest"
    echo "$want" >"$stamp"
}

# Spark already ships many of the connector's dependencies (Scala, Hadoop, Jackson, Parquet...);
# two copies of one library on the classpath is asking for trouble, so keep only what Spark lacks.
# The Dockerfile runs the same script, so the image selects its jars by the same rule.
drop_jars_spark_ships() {
    .venv/bin/python scripts/drop_jars_spark_ships.py "$1" "$(spark_home)/jars"
}

# spark-submit starts the JVM before our code runs, so jars named in the session builder come too late;
# spark-defaults.conf in the venv's Spark is read at launch, by spark-submit and by plain `python` alike.
write_spark_defaults() {
    local conf_dir; conf_dir="$(spark_home)/conf"
    mkdir -p "$conf_dir"
    local jars; jars=$(ls "$root"/jars/spark/*.jar | paste -sd, -)
    {
        echo "# Written by eventlake's scripts/setup.sh: the jars every eventlake job needs."
        echo "spark.jars $jars"
        echo "spark.pyspark.python $root/.venv/bin/python"
        echo "spark.pyspark.driver.python $root/.venv/bin/python"
        # The contract's checks generate methods above HotSpot's 8,000-byte limit, which it otherwise never
        # compiles (runs them interpreted): with this the contract runs about 28% faster (README, Performance).
        echo "spark.driver.extraJavaOptions -XX:-DontCompileHugeMethods"
        echo "spark.executor.extraJavaOptions -XX:-DontCompileHugeMethods"
    } >"$conf_dir/spark-defaults.conf"
    # Spark reads log4j2.properties from its conf folder; without it every run starts with pages of INFO.
    cp conf/log4j2.properties "$conf_dir/log4j2.properties"
}

# The virtual environment is made in the background while Maven fetches the jars: on a fresh machine each
# is minutes of downloads. venv_ready waits for it (once) and stops setup if it failed.
venv_job=""
venv_status=""
venv_ready() {
    if [ -z "$venv_status" ]; then
        venv_status=0
        wait "$venv_job" || venv_status=$?
    fi
    [ "$venv_status" = 0 ] || die "the virtual environment could not be set up (see the messages above)"
}

drop_jars_once_venv_is_ready() { venv_ready; drop_jars_spark_ships "$1"; }

main() {
    ensure_java
    ensure_maven
    ensure_venv &
    venv_job=$!
    fetch_jars conf/jars/kafka-broker.pom.xml jars/kafka
    fetch_jars conf/jars/spark.pom.xml jars/spark drop_jars_once_venv_is_ready
    venv_ready
    write_spark_defaults
    say "ready: $(ls jars/spark/*.jar | wc -l) Spark jars, $(ls jars/kafka/*.jar | wc -l) broker jars, $(.venv/bin/python --version)"
}

main "$@"
