from __future__ import annotations

import dataclasses

from eventlake.pipeline.etl import BROADCAST_THRESHOLD, never_broadcast_silver
from eventlake.runtime.config import Settings, SparkSettings


def test_silver_is_never_broadcast_unless_the_config_says_so(spark):
    before = spark.conf.get(BROADCAST_THRESHOLD)
    try:
        spark.conf.set(BROADCAST_THRESHOLD, "10485760")
        never_broadcast_silver(spark, Settings())
        assert spark.conf.get(BROADCAST_THRESHOLD) == "-1"

        spark.conf.set(BROADCAST_THRESHOLD, "10485760")
        chosen = dataclasses.replace(Settings(), spark=SparkSettings(conf={BROADCAST_THRESHOLD: "20m"}))
        never_broadcast_silver(spark, chosen)  # the session was built with it: it stays as configured
        assert spark.conf.get(BROADCAST_THRESHOLD) == "10485760"
    finally:
        spark.conf.set(BROADCAST_THRESHOLD, before)
