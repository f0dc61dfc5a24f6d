from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from eventlake.pipeline.sources import kafka_source_options
from eventlake.runtime.config import (
    AnalyticsSettings,
    ConfigError,
    load_settings,
    parse_duration,
    resolve_secret,
    spark_interval,
)

LOCAL = Path(__file__).resolve().parents[3] / "conf" / "local.toml"


@pytest.mark.parametrize(
    "text, expected",
    [("10 minutes", timedelta(minutes=10)), ("30s", timedelta(seconds=30)), ("1 hour", timedelta(hours=1)),
     ("250 ms", timedelta(milliseconds=250)), ("2 days", timedelta(days=2)), ("5 mins", timedelta(minutes=5))],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["ten minutes", "10", "10 fortnights", "", "1.5 hours"])
def test_bad_durations_are_rejected(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_spark_intervals():
    assert spark_interval(timedelta(minutes=10)) == "600 seconds"
    assert spark_interval(timedelta(milliseconds=1500)) == "1500 milliseconds"


def test_local_config_loads_with_typed_values_and_absolute_paths():
    settings = load_settings(LOCAL)
    assert settings.analytics.watermark == timedelta(minutes=10)
    assert settings.analytics.slide is None
    assert settings.kafka.fail_on_data_loss is True
    assert settings.contract.schema_versions == ("1", "2")
    assert Path(settings.storage.tables_root).is_absolute()
    assert settings.storage.checkpoint_path("analytics", "windows").endswith("/checkpoints/analytics/windows")


def test_overrides_are_typed_like_the_file():
    settings = load_settings(
        LOCAL,
        ["analytics.slide=1 minute", "kafka.max_offsets_per_trigger=500", "kafka.fail_on_data_loss=false",
         "contract.schema_versions=['1', '2']", "analytics.trigger=30 seconds"],
    )
    assert settings.analytics.slide == timedelta(minutes=1)
    assert settings.kafka.max_offsets_per_trigger == 500
    assert settings.kafka.fail_on_data_loss is False
    assert settings.contract.schema_versions == ("1", "2")
    assert settings.analytics.trigger == "30 seconds"


def test_dotted_keys_of_free_form_tables_stay_whole():
    settings = load_settings(LOCAL, ["spark.conf.spark.sql.shuffle.partitions=8", "kafka.options.kafka.client.id=me"])
    assert settings.spark.conf["spark.sql.shuffle.partitions"] == "8"
    assert settings.kafka.options == {"kafka.client.id": "me"}


@pytest.mark.parametrize(
    "override, message",
    [
        ("analytics.windw=5 minutes", "unknown config key 'analytics.windw'"),
        ("analytics.window=soon", "config key 'analytics.window': not a duration"),
        ("kafka.max_offsets_per_trigger=many", "config key 'kafka.max_offsets_per_trigger'"),
        ("analytics.trigger=sometimes", "analytics.trigger must be 'availableNow' or an interval"),
        ("analytics.slide=10 minutes", "analytics.slide must not be longer than analytics.window"),
        ("nonsense", "--set takes key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(LOCAL, [override])


@pytest.mark.parametrize(
    "override, message",
    [
        ("kafka.fail_on_data_loss=yes", "config key 'kafka.fail_on_data_loss': expected true or false, got 'yes'"),
        ("kafka.min_offsets_per_trigger=true",
         "config key 'kafka.min_offsets_per_trigger': expected a whole number, got True"),
        ("kafka.topic=[1, 2]", "config key 'kafka.topic': expected text, got [1, 2]"),
        ("spark.conf=5", "config key 'spark.conf': expected a table, got 5"),
        ("retry=[1]", "[retry] must be a table of keys, got [1]"),
        ("kafka.topic.name=x", "--set kafka.topic.name: topic is not a section"),
    ],
)
def test_values_of_the_wrong_type_name_the_key_and_what_was_expected(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(LOCAL, [override])


@pytest.mark.parametrize(
    "text, message",
    [
        ("[retry]\nmax_attempts = 'lots'", "config key 'retry.max_attempts': invalid literal for int()"),
        ("[etl.pii]\npepper = ''", "unknown config key 'etl.pii.pepper' (known keys here: drop, hash, salt)"),
        ("[etl]\nenrich = 'pages'", "[etl.enrich] must be a table of keys, got 'pages'"),
        ("[spark]\nui_port = 4040.0", "config key 'spark.ui_port': expected a whole number, got 4040.0"),
        # A misspelt key is reported before the values beside it: it may be why they look wrong.
        ("[spark]\nui_port = 'x'\nmastr = ''", "unknown config key 'spark.mastr'"),
    ],
)
def test_mistakes_in_a_file_name_the_dotted_key_of_nested_tables(tmp_path, text, message):
    config = tmp_path / "mistaken.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(config)


def test_the_bound_against_the_job_clock_is_a_contract_duration(tmp_path):
    assert load_settings(LOCAL).contract.max_event_time_ahead_of_job == timedelta(minutes=5)
    config = tmp_path / "empty.toml"
    config.write_text("")
    assert load_settings(config).contract.max_event_time_ahead_of_job == timedelta(minutes=5)  # the default
    settings = load_settings(LOCAL, ["contract.max_event_time_ahead_of_job=30 seconds"])
    assert settings.contract.max_event_time_ahead_of_job == timedelta(seconds=30)
    message = "config key 'contract.max_event_time_ahead_of_job': not a duration"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(LOCAL, ["contract.max_event_time_ahead_of_job=soon"])


def test_values_written_as_text_are_read_as_their_type(tmp_path):
    config = tmp_path / "text.toml"
    config.write_text(
        "[spark]\nui_port = '4041'\nprometheus = 'TRUE'\n[spark.conf]\n'spark.ui.enabled' = false\n"
        "[kafka]\nmax_trigger_delay = '30 seconds'\n"
    )
    settings = load_settings(config, ["contract.schema_versions=1,2", "kafka.max_trigger_delay="])
    assert (settings.spark.ui_port, settings.spark.prometheus) == (4041, True)
    assert settings.spark.conf == {"spark.ui.enabled": "false"}  # as Spark writes it
    assert settings.contract.schema_versions == ("1", "2")
    assert settings.kafka.max_trigger_delay is None  # empty: not set
    assert settings.analytics == AnalyticsSettings()  # a section not written keeps its defaults


def test_missing_and_broken_files_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[kafka\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(broken)


def test_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("EVENTLAKE_TEST_SECRET", "s3cret")
    assert resolve_secret("env:EVENTLAKE_TEST_SECRET") == "s3cret"
    assert resolve_secret("plain") == "plain"
    monkeypatch.delenv("EVENTLAKE_TEST_SECRET")
    with pytest.raises(ConfigError, match="EVENTLAKE_TEST_SECRET is not set"):
        resolve_secret("env:EVENTLAKE_TEST_SECRET")


def test_the_etl_section_loads_typed():
    etl = load_settings(LOCAL).etl
    assert etl.silver_dedup_days == 1 and load_settings(LOCAL, ["etl.silver_dedup_days=3"]).etl.silver_dedup_days == 3
    assert (etl.silver_dedup, etl.silver_dedup_within) == ("merge", timedelta(hours=1))
    by_state = load_settings(LOCAL, ["etl.silver_dedup=state", "etl.silver_dedup_within='10 minutes'"]).etl
    assert (by_state.silver_dedup, by_state.silver_dedup_within) == ("state", timedelta(minutes=10))
    contract = load_settings(LOCAL).contract
    assert contract.extractors == ("json", "kv") and contract.default_format == "json"
    assert etl.transforms == ("normalise", "promote_fields", "enrich", "mask_pii")
    assert etl.promote["amount"] == "decimal(12,2)"
    assert Path(etl.enrich.dimension_csv).is_absolute() and Path(etl.enrich.dimension_csv).is_file()
    promoted = load_settings(LOCAL, ["etl.promote.coupon=string"]).etl.promote
    assert promoted["coupon"] == "string" and "page" in promoted


@pytest.mark.parametrize(
    "override, message",
    [
        ("contract.extractors=['json', 'csv']", "contract.extractors: 'csv' is not one of json, kv"),
        ("contract.default_format=kv", None),
        ("contract.extractors=['json']", None),
        ("etl.enrich.on_miss=drop", "etl.enrich.on_miss: 'drop' is not one of keep, dead_letter"),
        ("etl.silver_dedup_days=-1", "etl.silver_dedup_days must be 0 (the same event day only) or more"),
        ("etl.silver_dedup_days=0", None),
        ("etl.silver_dedup=window", "etl.silver_dedup: 'window' is not one of merge, state"),
        ("etl.silver_dedup_within='0 seconds'", "etl.silver_dedup_within must be a positive duration"),
        ("retry.max_attempts=0", "retry.max_attempts must be at least 1"),
        ("etl.trigger=soon", "etl.trigger must be 'availableNow' or an interval"),
        ("contract.schema_versions=['1', '7']", "contract.schema_versions: '7' is not one of 1, 2"),
        ("kafka.min_offsets_per_trigger=-1", "kafka.min_offsets_per_trigger must be 0 (no limit) or more"),
    ],
)
def test_bad_etl_settings_name_the_key(override, message):
    if message is None:  # each of these is fine on its own
        load_settings(LOCAL, [override])
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(LOCAL, [override])


def test_one_retry_policy_for_every_job_from_the_retry_section(tmp_path):
    retry = load_settings(LOCAL).retry
    assert (retry.max_attempts, retry.initial_backoff, retry.max_backoff) == (5, timedelta(seconds=1),
                                                                             timedelta(seconds=30))
    assert load_settings(LOCAL, ["retry.max_attempts=2"]).retry.max_attempts == 2


def test_the_old_etl_retry_keys_still_set_the_retry_policy(tmp_path):
    old = tmp_path / "old.toml"
    old.write_text("[etl.retry]\nmax_attempts = 3\ninitial_backoff = '2 seconds'\n")
    retry = load_settings(old).retry
    assert (retry.max_attempts, retry.initial_backoff) == (3, timedelta(seconds=2))
    assert load_settings(LOCAL, ["etl.retry.max_attempts=2"]).retry.max_attempts == 2
    with pytest.raises(ConfigError, match=re.escape("retry.max_attempts must be at least 1")):
        load_settings(old, ["etl.retry.max_attempts=0"])


def test_a_file_with_both_retry_sections_is_refused_naming_the_new_one(tmp_path):
    both = tmp_path / "both.toml"
    both.write_text("[retry]\nmax_attempts = 3\n[etl.retry]\nmax_attempts = 4\n")
    with pytest.raises(ConfigError, match=re.escape("has both [etl.retry] and [retry]: [retry] is the retry policy")):
        load_settings(both)


def test_a_default_format_that_is_not_read_is_refused():
    with pytest.raises(ConfigError, match=re.escape("contract.default_format: 'kv' is not one of json")):
        load_settings(LOCAL, ["contract.extractors=['json']", "contract.default_format=kv"])


def test_back_pressure_settings_become_kafka_source_options():
    settings = load_settings(
        LOCAL,
        ["kafka.max_offsets_per_trigger=1000", "kafka.min_offsets_per_trigger=200",
         "kafka.max_trigger_delay=30 seconds"],
    )
    options = kafka_source_options(settings.kafka)
    assert (options["maxOffsetsPerTrigger"], options["minOffsetsPerTrigger"], options["maxTriggerDelay"]) == (
        "1000", "200", "30 seconds"
    )
    defaults = kafka_source_options(load_settings(LOCAL).kafka)
    assert not {"maxOffsetsPerTrigger", "minOffsetsPerTrigger", "maxTriggerDelay"} & set(defaults)


def test_the_cluster_example_loads_and_its_secrets_reach_each_client(monkeypatch):
    from eventlake.runtime.kafka_admin import librdkafka_options
    from eventlake.runtime.session import spark_conf

    jaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="eventlake" password="pw";'
    monkeypatch.setenv("KAFKA_JAAS_CONFIG", jaas)
    monkeypatch.setenv("S3_ENDPOINT", "http://127.0.0.1:9000")
    settings = load_settings(LOCAL.parent / "cluster-s3.toml")
    assert settings.spark.master == "" and settings.spark.jars_dir == ""
    assert settings.storage.table_path("silver_events") == "s3a://eventlake-lake/tables/silver_events"
    assert settings.storage.checkpoint_path("etl", "silver") == "s3a://eventlake-lake/checkpoints/etl/silver"
    assert settings.etl.enrich.dimension_csv.startswith("s3a://")
    assert kafka_source_options(settings.kafka)["kafka.sasl.jaas.config"] == jaas
    assert spark_conf(settings.spark)["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    topic_check = librdkafka_options(settings.kafka.bootstrap_servers, settings.kafka.options)
    assert (topic_check["security.protocol"], topic_check["sasl.username"]) == ("SASL_SSL", "eventlake")


def test_alert_rules_are_read_in_order_with_their_severity():
    rules = "[{name = 'a', when = 'true'}, {name = 'b', when = 'false', severity = 'critical'}]"
    settings = load_settings(LOCAL, [f"alerts.rules={rules}"])
    assert [(rule.name, rule.when, rule.severity) for rule in settings.alerts.rules] == [
        ("a", "true", "medium"), ("b", "false", "critical"),
    ]


@pytest.mark.parametrize(
    "override, message",
    [
        ("alerts.trigger=sometimes", "alerts.trigger must be 'realTime' or 'availableNow' or an interval"),
        ("alerts.trigger=2 seconds", None),
        ("alerts.checkpoint_interval=1 second", "alerts.checkpoint_interval must be at least 5 seconds"),
        ("alerts.dead_letters_topic=alerts", "alerts.topic and alerts.dead_letters_topic must be two different"),
        ("alerts.rules=[{name = 'a', when = 'true'}, {name = 'a', when = 'false'}]", "two rules are named 'a'"),
        ("alerts.rules=[{name = 'a b', when = 'true'}]", "the name 'a b' must be letters"),
        ("alerts.rules=[{name = 'a', when = ' '}]", "alerts.rules.a.when is empty"),
        ("alerts.rules=[{name = 'a', when = 'true', severity = 'urgent'}]",
         "alerts.rules.a.severity: 'urgent' is not one of low, medium, high, critical"),
        ("alerts.rules=[{name = 'a'}]", "config key 'alerts.rules"),
    ],
)
def test_bad_alerts_settings_name_the_key(override, message):
    if message is None:
        load_settings(LOCAL, [override])
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(LOCAL, [override])
