"""The Java client's Kafka options (what Spark reads) turned into librdkafka's (the topic check, the producer)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlake.runtime.config import ConfigError
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.kafka_admin import jaas_login_options, librdkafka_options

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
        "sasl.password": 'p"w',
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


def jaas_user_and_password(jaas: str) -> tuple[object, object]:
    config = librdkafka_options("b:9093", {"kafka.sasl.jaas.config": jaas})
    return config.get("sasl.username"), config.get("sasl.password")


PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule required"


@pytest.mark.parametrize(
    "options, user, password",
    [
        ('username="analytics" password="p\\"w"', "analytics", 'p"w'),  # an escaped quote
        ('username="analytics" password="back\\\\slash"', "analytics", "back\\slash"),  # an escaped backslash
        ('username="u" password="\\q\\t\\n\\101\\477"', "u", "q\t\nA'7"),  # unknown escape, \t, \n, octal
        ("username='u' password='it\"s'", "u", 'it"s'),  # single quotes: the other quote needs no escape
        ('username="u" password="a;b = c // d"', "u", "a;b = c // d"),  # separators inside quotes are text
        ("username=analytics password=s3cr-et_$x.1", "analytics", "s3cr-et_$x.1"),  # unquoted words
        ('username = "u"\n  password =\t"p" ', "u", "p"),  # whitespace and new lines around them
        ('/* the service account */ username="u" // its password:\n password="p"', "u", "p"),  # comments
        ('serviceName="kafka" username="u" tokenauth=true password="p"', "u", "p"),  # several options
        ('password="" username=""', "", ""),
    ],
)
def test_jaas_option_values_are_read_as_kafkas_java_client_reads_them(options, user, password):
    assert jaas_user_and_password(f"{PLAIN} {options};") == (user, password)


def test_a_jaas_config_without_user_and_password_sets_neither():
    jaas = 'com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab="/etc/k.keytab";'
    assert jaas_user_and_password(jaas) == (None, None)


@pytest.mark.parametrize(
    "jaas, problem",
    [
        (f'{PLAIN} username="u" password="p"', "not terminated by semi-colon"),
        (f"{PLAIN} username=u password=123;", "Value not specified for key 'password'"),  # a number, not a word
        (f'{PLAIN} username="u" password;', "Value not specified for key 'password'"),
        (f'{PLAIN} username="u"; {PLAIN} username="v";', "contains 2 login modules, should be 1"),
        ('org.example.Module sometimes password="p";', "Invalid login module control flag 'sometimes'"),
    ],
)
def test_a_jaas_config_the_java_client_refuses_is_refused_without_showing_the_secret(jaas, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)) as refused:
        librdkafka_options("b:9093", {"kafka.sasl.jaas.config": jaas})
    assert "kafka.sasl.jaas.config" in str(refused.value) and '"p"' not in str(refused.value)


# Characters that mean something to the JAAS tokenizer, and some that do not, mixed into the examples.
JAAS_CHARACTERS = st.sampled_from([*"aZ09-_$.=;:@\"'\\/* \t\n\rnt37", "é", "\x85", "\xa0", "✓"])
JAAS_TEXT = st.text(JAAS_CHARACTERS, max_size=12)
JAAS_VALUE = st.one_of(
    JAAS_TEXT,
    JAAS_TEXT.map(lambda text: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    JAAS_TEXT.map(lambda text: f"'{text}'"),
)
JAAS_CONFIGS = st.one_of(
    st.text(JAAS_CHARACTERS, max_size=40),
    st.builds(
        lambda flag, pairs, end: f"{PLAIN.split()[0]} {flag} " + " ".join(f"{k}={v}" for k, v in pairs) + end,
        st.sampled_from(["required", "required", "Optional", "often", "1"]),
        st.lists(st.tuples(st.sampled_from(["username", "password", "x-y", "1"]), JAAS_VALUE), max_size=3),
        st.sampled_from([";", ";", " ; ", "; // done", "", ";;", '; a required b="c";']),
    ),
)


@pytest.fixture(scope="module")
def java_jaas_options(spark):
    """Kafka's own parser of sasl.jaas.config, in the JVM of the test session: options, or its error message."""
    jvm = spark.sparkContext._jvm

    def parse(jaas: str) -> dict[str, str] | str:
        configs = jvm.java.util.HashMap()
        configs.put("sasl.jaas.config", jvm.org.apache.kafka.common.config.types.Password(jaas))
        try:
            context = jvm.org.apache.kafka.common.security.JaasContext.loadClientContext(configs)
        except Exception as error:  # pyspark's IllegalArgumentException: the Java message, nothing more
            return str(error)
        [module] = context.configurationEntries()
        return {name: value for name, value in dict(module.getOptions()).items() if name is not None}

    return parse


def python_jaas_options(jaas: str) -> dict[str, str] | str:
    try:
        return jaas_login_options(jaas)
    except ValueError as error:
        return str(error)


@pytest.mark.parametrize(
    "jaas",
    [
        SCRAM_JAAS,
        f"{PLAIN} password='unclosed;",
        f'{PLAIN} password="line\nbreak";',
        f'{PLAIN} password="ends in a backslash\\',
        f"{PLAIN} password=a/b;",
        f"{PLAIN} password=p /* never closed",
        f"{PLAIN} password=-x;",
        f"{PLAIN} password=é✓;",
        "",
    ],
)
def test_the_jaas_reader_agrees_with_kafkas_java_client(java_jaas_options, jaas):
    assert python_jaas_options(jaas) == java_jaas_options(jaas)


@settings(max_examples=250, derandomize=True, database=None, deadline=None)
@given(jaas=JAAS_CONFIGS)
def test_the_jaas_reader_agrees_with_kafkas_java_client_on_any_text(java_jaas_options, jaas):
    assert python_jaas_options(jaas) == java_jaas_options(jaas)
