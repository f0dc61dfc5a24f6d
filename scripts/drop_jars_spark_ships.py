#!/usr/bin/env python3
"""Deletes from a folder of jars those whose library Spark already ships.

    scripts/drop_jars_spark_ships.py JARS_DIR SPARK_JARS_DIR

Spark already ships many of the Kafka connector's and Delta's dependencies (Scala, Hadoop, Jackson,
Parquet...); two copies of one library on the classpath is asking for trouble, so only what Spark lacks
is kept. A jar is matched by its artifact name, its file name without the version. scripts/setup.sh and
the Dockerfile both use this script, so the local setup and the image keep the same jars.
Runs on Python 3.8+ (the Spark image's own Python runs it during the image build).
"""

import os
import re
import sys

_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*\.jar$")


def artifact(file_name: str) -> str:
    """``kafka-clients-3.9.2.jar`` -> ``kafka-clients``."""
    return _VERSION_SUFFIX.sub("", file_name)


def drop_jars_spark_ships(jars_dir: str, spark_jars_dir: str) -> list:
    """Delete the jars of ``jars_dir`` whose artifact is also in ``spark_jars_dir``; return their names."""
    shipped = {artifact(name) for name in os.listdir(spark_jars_dir)}
    dropped = sorted(name for name in os.listdir(jars_dir) if name.endswith(".jar") and artifact(name) in shipped)
    for name in dropped:
        os.remove(os.path.join(jars_dir, name))
    return dropped


def main(argv: list) -> int:
    if len(argv) != 2:
        print(f"usage: {os.path.basename(sys.argv[0])} JARS_DIR SPARK_JARS_DIR", file=sys.stderr)
        return 2
    for folder in argv:
        if not os.path.isdir(folder):
            print(f"error: not a folder: {folder}", file=sys.stderr)
            return 2
    drop_jars_spark_ships(*argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
