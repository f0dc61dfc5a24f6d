"""Config SQL cannot reach the JVM or the machine: a call of reflect (or its kin) or a file read as a table is
refused when the config loads, with one line naming the key, however it is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventlake.runtime.config import ConfigError, load_settings
from eventlake.runtime.config.checks import sql_problem

CONF = Path(__file__).resolve().parents[3] / "conf"
GETENV = "reflect('java.lang.System', 'getenv', 'KAFKA_JAAS_CONFIG')"


@pytest.mark.parametrize(
    ("config", "override", "key"),
    [
        ("gold/ysb.toml", f"gold.columns.secret={GETENV}", "gold.columns.secret"),
        ("gold/ysb.toml", f"gold.filter=event_type = 'view' OR {GETENV} IS NULL", "gold.filter"),
        ("etl/orders.toml", f"etl.columns.secret={GETENV}", "etl.columns.secret"),
        ("local.toml", f"alerts.rules=[{{name = 'leak', when = \"{GETENV} IS NOT NULL\"}}]", "alerts.rules.leak.when"),
        ("etl/orders.toml", f"etl.expectations=[{{name = 'leak', rule = \"{GETENV} IS NULL\"}}]",
         "etl.expectations.leak.rule"),
    ],
)
def test_a_reflect_call_in_config_sql_is_refused_when_the_config_loads(config, override, key):
    with pytest.raises(ConfigError) as refused:
        load_settings(CONF / config, [override])
    assert str(refused.value).startswith(f"{key}: calls reflect, which reaches outside the data")


@pytest.mark.parametrize(
    "text",
    [
        "REFLECT('java.lang.System', 'getenv', 'HOME')",
        "`reflect`('java.lang.System', 'getenv', 'HOME')",
        "system.builtin.java_method('java.lang.System', 'getenv', 'HOME')",
        "try_reflect /* a comment */ ('java.lang.System', 'getenv', 'HOME')",
        "'--' || reflect -- a comment\n ('java.lang.System', 'getenv', 'HOME')",  # a comment start inside a literal
        "(SELECT count(*) FROM read_files('/etc/passwd'))",
    ],
)
def test_every_way_of_writing_a_call_outside_the_data_is_found(text):
    assert sql_problem("gold.columns.x", text) is not None


def test_a_file_read_as_a_table_and_a_statement_that_is_no_query_are_refused():
    assert "reads a file as a table (csv." in sql_problem("gold.sql", "SELECT * FROM csv.`/etc/passwd`", statement=True)
    assert sql_problem("gold.sql", "DROP TABLE silver_events", statement=True) == (
        "gold.sql: must be one query (SELECT ... or WITH ...), got 'DROP'"
    )


@pytest.mark.parametrize(
    ("text", "statement"),
    [
        ("amount * eur_per_unit", False),
        ("reflection_rate + 1", False),
        ("try_variant_get(data, '$.reflect', 'string')", False),
        ("-- counts per page\nSELECT page, count(*) FROM events GROUP BY page", True),
        ("WITH v AS (SELECT * FROM events) SELECT * FROM v", True),
    ],
)
def test_ordinary_sql_passes(text, statement):
    assert sql_problem("gold.sql", text, statement=statement) is None


def test_the_shipped_configs_pass():
    for config in [*CONF.glob("gold/*.toml"), *CONF.glob("etl/*.toml"), CONF / "local.toml"]:
        load_settings(config)
