# The eventlake image: Apache Spark's official image with Python, the Kafka connector and Delta jars in
# Spark's own jars folder, and the eventlake package. `docker compose build` builds it (see compose.yaml).

# Spark's version must equal the pyspark pin in pyproject.toml (scripts/check_container.sh checks it).
# Its images are built on Ubuntu 22.04, whose python3 is 3.10; eventlake needs 3.11 (tomllib): see below.
# scripts/container.sh builds on stand-ins made from Debian's packages and pip (container/*.Containerfile),
# for machines that cannot pull these: --build-arg SPARK_IMAGE=... --build-arg MAVEN_IMAGE=...
ARG SPARK_IMAGE=spark:4.2.0-scala2.13-java17-python3-ubuntu
ARG MAVEN_IMAGE=maven:3.9-eclipse-temurin-17
FROM ${SPARK_IMAGE} AS spark

# The Kafka connector, Delta and their dependencies, from the same pom as scripts/setup.sh.
FROM ${MAVEN_IMAGE} AS maven-jars
WORKDIR /build
COPY conf/jars/spark.pom.xml pom.xml
RUN mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=/build/jars

# Keep only the jars Spark does not already ship, with the script scripts/setup.sh uses too.
FROM spark AS spark-jars
# A build-only stage: nothing runs as root in the image itself.
# hadolint ignore=DL3002
USER root
COPY --from=maven-jars /build/jars /tmp/jars
COPY scripts/drop_jars_spark_ships.py /tmp/
RUN python3 /tmp/drop_jars_spark_ships.py /tmp/jars "$SPARK_HOME/jars"

FROM spark
USER root

# Python 3.11 from Ubuntu's own archive (universe), in a virtual environment so that it leaves the
# system's python3 alone. Distro packages follow the base image's security updates, hence no pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv
ENV PATH=$VIRTUAL_ENV/bin:$SPARK_HOME/bin:$PATH \
    PYTHONUNBUFFERED=1
# pyspark is the image's own Spark (no second copy from PyPI): a .pth file puts it and its py4j on the
# path, so that plain `python` (the query tool) finds it as spark-submit does. --upgrade-deps: a current
# pip in the environment rather than the distro's copy from 2022.
RUN python3.11 -m venv --upgrade-deps "$VIRTUAL_ENV" \
    && site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
    && printf '%s\n' "$SPARK_HOME/python" "$SPARK_HOME"/python/lib/py4j-*-src.zip >"$site/spark.pth"

COPY --from=spark-jars /tmp/jars/ $SPARK_HOME/jars/
# Spark reads log4j2.properties from its conf folder; without it every run starts with pages of INFO.
COPY conf/log4j2.properties $SPARK_HOME/conf/
# The contract's checks generate methods above HotSpot's 8,000-byte limit, which it otherwise never
# compiles: the contract runs about 28% faster (README, Performance). The warehouse folder moves to the
# writable volume, since Spark creates it at start and /opt/eventlake belongs to root.
RUN printf '%s\n' \
        "spark.pyspark.python $VIRTUAL_ENV/bin/python" \
        "spark.pyspark.driver.python $VIRTUAL_ENV/bin/python" \
        "spark.driver.extraJavaOptions -XX:-DontCompileHugeMethods" \
        "spark.executor.extraJavaOptions -XX:-DontCompileHugeMethods" \
        "spark.sql.warehouse.dir /opt/eventlake/data/spark-warehouse" \
        >"$SPARK_HOME/conf/spark-defaults.conf"

WORKDIR /opt/eventlake
# The runtime dependencies as pyproject.toml pins them (one place for versions), less pyspark, which the
# image has; delta-spark without its own requirements: pyspark, and importlib_metadata, which only its
# configure_spark_with_delta_pip uses (eventlake does not). Plus the report extra (matplotlib), so that
# the health report draws its chart in the container too.
COPY pyproject.toml README.md ./
RUN python -c 'import tomllib; project = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(*project["dependencies"], *project["optional-dependencies"]["report"], sep="\n")' >/tmp/deps.txt \
    && grep -v -e '^pyspark' -e '^delta-spark' /tmp/deps.txt >/tmp/deps-others.txt \
    && grep -e '^delta-spark' /tmp/deps.txt >/tmp/deps-delta.txt \
    && pip install --no-cache-dir -r /tmp/deps-others.txt \
    && pip install --no-cache-dir --no-deps -r /tmp/deps-delta.txt \
    && rm /tmp/deps*.txt

COPY lib/ lib/
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build lib/*.egg-info
COPY conf/ conf/
COPY jobs/ jobs/

# Tables and checkpoints: a named volume mounted here starts with this folder's owner, the spark user.
RUN mkdir data && chown spark:spark data
USER spark
CMD ["spark-submit", "jobs/analytics.py", "--config", "conf/container.toml"]
