#!/bin/sh
# The stand-in's /opt/entrypoint.sh. The official Spark image's runs Spark on Kubernetes when given "driver" or
# "executor", and any other command as given; eventlake starts its jobs with spark-submit, so the stand-in
# only does the latter.
set -e
exec "$@"
