"""The Spark settings a job's session is built with."""

from __future__ import annotations

import pytest

from eventlake.runtime.config import ConfigError, SparkSettings
from eventlake.runtime.session import spark_conf


def test_the_config_wins_over_the_defaults_and_reads_secrets_from_the_environment(monkeypatch):
    monkeypatch.setenv("S3_ENDPOINT", "http://127.0.0.1:9000")
    conf = spark_conf(
        SparkSettings(conf={"spark.sql.shuffle.partitions": "64", "spark.hadoop.fs.s3a.endpoint": "env:S3_ENDPOINT"})
    )
    assert conf["spark.sql.shuffle.partitions"] == "64"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.ui.enabled"] == "false"


def test_prometheus_turns_the_ui_on_at_its_port():
    conf = spark_conf(SparkSettings(prometheus=True, ui_port=4999))
    assert (conf["spark.ui.enabled"], conf["spark.ui.port"]) == ("true", "4999")


def test_an_unset_variable_is_named(monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        spark_conf(SparkSettings(conf={"spark.hadoop.fs.s3a.secret.key": "env:NOT_SET_ANYWHERE"}))
