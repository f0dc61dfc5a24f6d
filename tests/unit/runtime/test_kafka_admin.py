"""The Java client's Kafka options (what Spark reads) turned into librdkafka's (the topic check, the producer)."""

from __future__ import annotations

import re

import pytest

from eventlake.runtime.config import ConfigError
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.kafka_admin import librdkafka_options

SCRAM_JAAS = (
    'org.apache.kafka.common.security.scram.ScramLoginModule required username="analytics" password="p\\"w";'
)


def test_plaintext_needs_nothing_but_the_servers():
    assert librdkafka_options("b:9092") == {"bootstrap.servers": "b:9092", "log_level": 0}


def test_sasl_ssl_with_a_jaas_secret_from_the_environment(monkeypatch):
    monkeypatch.setenv("KAFKA_JAAS", SCRAM_JAAS)
    options = {
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": "env:KAFKA_JAAS",
        "kafka.ssl.truststore.type": "PEM",
        "kafka.ssl.truststore.location": "/etc/kafka/ca.pem",
        "kafka.ssl.endpoint.identification.algorithm": "",
        "kafka.max.poll.records": "500",  # Java-only: not passed on
    }
    assert librdkafka_options("b:9093", options) == {
        "bootstrap.servers": "b:9093",
        "log_level": 0,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "analytics",
        "sasl.password": 'p\\"w',
        "ssl.ca.location": "/etc/kafka/ca.pem",
        "ssl.endpoint.identification.algorithm": "none",
    }


def test_explicit_user_and_password_win_over_the_jaas_ones():
    options = {"kafka.sasl.jaas.config": SCRAM_JAAS, "kafka.sasl.username": "other", "kafka.sasl.password": "x"}
    config = librdkafka_options("b:9093", options)
    assert (config["sasl.username"], config["sasl.password"]) == ("other", "x")


def test_a_jks_truststore_is_refused_with_the_fix():
    with pytest.raises(EnvironmentProblem, match=re.escape('ssl.truststore.type = "PEM"')):
        librdkafka_options("b:9093", {"kafka.ssl.truststore.location": "/etc/kafka/trust.jks"})


def test_an_unset_secret_names_the_variable(monkeypatch):
    monkeypatch.delenv("NO_SUCH_SECRET", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_SECRET"):
        librdkafka_options("b:9093", {"kafka.sasl.jaas.config": "env:NO_SUCH_SECRET"})
