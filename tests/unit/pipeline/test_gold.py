"""Gold jobs of config: the steps over small in-memory DataFrames, and the checks of a config."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from chispa import assert_df_equality

from eventlake.pipeline.gold import aggregate_windows, check_gold_plan, event_source, gold_problems, gold_windows
from eventlake.runtime.config import (
    ConfigError,
    GoldJoin,
    GoldMeasure,
    GoldSettings,
    GoldSource,
    GoldWindow,
    Settings,
    load_settings,
)
from tests.conftest import PROJECT_ROOT

EVENTS_SCHEMA = "event_id string, event_time timestamp, event_type string, user_id string, page string, amount double"


def at(second: int) -> datetime:
    return datetime(2026, 1, 1, 10, 0, 0) + timedelta(seconds=second)


def gold(**changes) -> GoldSettings:
    base = GoldSettings(
        name="test_gold", output="test_output", window=GoldWindow(kind="tumbling", size=timedelta(seconds=10)),
        group_by=("event_type",), measures=(GoldMeasure(name="events", fn="count"),),
    )
    return dataclasses.replace(base, **changes)


def test_tumbling_windows_with_every_measure(spark):
    events = spark.createDataFrame(
        [
            ("a", at(1), "view", "u1", "/home", 2.0),
            ("b", at(3), "view", "u1", "/cart", 4.0),
            ("c", at(2), "view", "u2", "/home", None),
            ("d", at(12), "view", "u3", "/pay", 1.0),
            ("e", at(4), "buy", "u2", "/pay", 10.0),
        ],
        EVENTS_SCHEMA,
    )
    measures = tuple(
        GoldMeasure(name=name, fn=fn, expr=expr)
        for name, fn, expr in (
            ("events", "count", ""), ("amounts", "count", "amount"), ("total", "sum", "amount"),
            ("low", "min", "amount"), ("high", "max", "amount"), ("mean", "avg", "amount"),
            ("users", "count_distinct", "user_id"), ("users_about", "approx_count_distinct", "user_id"),
            ("first_page", "first", "page"), ("last_page", "last", "page"), ("bought", "any", "event_type = 'buy'"),
        )
    )
    result = aggregate_windows(events, gold(measures=measures))
    expected = spark.createDataFrame(
        [
            (at(0), at(10), "buy", 1, 1, 10.0, 10.0, 10.0, 10.0, 1, 1, "/pay", "/pay", True),
            (at(0), at(10), "view", 3, 2, 6.0, 2.0, 4.0, 3.0, 2, 2, "/home", "/cart", False),
            (at(10), at(20), "view", 1, 1, 1.0, 1.0, 1.0, 1.0, 1, 1, "/pay", "/pay", False),
        ],
        "window_start timestamp, window_end timestamp, event_type string, events long, amounts long, total double,"
        " low double, high double, mean double, users long, users_about long, first_page string, last_page string,"
        " bought boolean",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_sessions_close_after_the_gap_and_measure_from_first_to_last_event(spark):
    events = spark.createDataFrame(
        [
            ("a", at(0), "view", "u1", "/home", None),
            ("b", at(20), "view", "u1", "/cart", None),
            ("c", at(45), "buy", "u1", "/pay", None),   # 25 s after b: within the 30-s gap, same session
            ("d", at(200), "view", "u1", "/home", None),  # a new session
            ("e", at(5), "view", "u2", "/home", None),
        ],
        EVENTS_SCHEMA,
    )
    settings = gold(
        window=GoldWindow(kind="session", gap=timedelta(seconds=30)), group_by=("user_id",),
        measures=(
            GoldMeasure(name="events", fn="count"), GoldMeasure(name="first_page", fn="first", expr="page"),
            GoldMeasure(name="last_page", fn="last", expr="page"),
            GoldMeasure(name="converted", fn="any", expr="event_type = 'buy'"),
        ),
    )
    result = aggregate_windows(events, settings)
    expected = spark.createDataFrame(
        [
            (at(0), at(75), "u1", 45.0, 3, "/home", "/pay", True),
            (at(200), at(230), "u1", 0.0, 1, "/home", "/home", False),
            (at(5), at(35), "u2", 0.0, 1, "/home", "/home", False),
        ],
        "window_start timestamp, window_end timestamp, user_id string, duration_seconds double, events long,"
        " first_page string, last_page string, converted boolean",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_session_gap_may_come_per_event_from_an_expression(spark):
    events = spark.createDataFrame(
        [("a", at(0), "view", "u1", "/a", None), ("b", at(20), "view", "u1", "/b", None),
         ("c", at(0), "view", "u2", "/a", None), ("d", at(20), "view", "u2", "/b", None)],
        EVENTS_SCHEMA,
    )
    gap = "CASE WHEN user_id = 'u1' THEN INTERVAL 10 SECONDS ELSE INTERVAL 30 SECONDS END"
    settings = gold(window=GoldWindow(kind="session", gap_expr=gap), group_by=("user_id",))
    rows = aggregate_windows(events, settings).orderBy("user_id", "window_start").collect()
    # u1's events are 20 s apart, more than its 10-s gap: two sessions; u2's gap of 30 s keeps one.
    assert [(row.user_id, row.events, row.window_end) for row in rows] == [
        ("u1", 1, at(10)), ("u1", 1, at(30)), ("u2", 2, at(50))
    ]


def test_sliding_windows_count_an_event_in_each_window_it_falls_in(spark):
    events = spark.createDataFrame([("a", at(12), "view", "u1", "/a", None)], EVENTS_SCHEMA)
    settings = gold(window=GoldWindow(kind="sliding", size=timedelta(seconds=10), slide=timedelta(seconds=5)))
    rows = aggregate_windows(events, settings).orderBy("window_start").collect()
    assert [(row.window_start, row.window_end, row.events) for row in rows] == [
        (at(5), at(15), 1), (at(10), at(20), 1)
    ]


def test_a_gold_job_deduplicates_derives_filters_and_joins_before_the_window(spark):
    events = spark.createDataFrame(
        [
            ("a", at(1), "view", "u1", "/home", None),
            ("a", at(1), "view", "u1", "/home", None),  # a copy: counted once
            ("b", at(2), "view", "u2", "/cart", None),
            ("c", at(3), "click", "u2", "/cart", None),  # filtered out
            ("d", at(4), "view", "u3", "/nowhere", None),  # no section: the inner join drops it
        ],
        EVENTS_SCHEMA,
    )
    sections = spark.createDataFrame([("/home", "front"), ("/cart", "checkout")], "path string, section string")
    settings = gold(
        columns={"path": "lower(page)"}, filter="event_type = 'view'",
        joins=(GoldJoin(name="sections", on=("path",)),), group_by=("section",),
    )
    result = gold_windows(events, settings, "event_id", {"sections": sections})
    expected = spark.createDataFrame(
        [(at(0), at(10), "checkout", 1), (at(0), at(10), "front", 1)],
        "window_start timestamp, window_end timestamp, section string, events long",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_gold_job_may_be_one_sql_statement_over_the_events(spark):
    events = spark.createDataFrame(
        [("a", at(1), "view", "u1", "/home", 1.0), ("b", at(2), "view", "u2", "/home", 3.0)], EVENTS_SCHEMA
    )
    statement = "SELECT page, sum(amount) AS total FROM events GROUP BY page"
    result = gold_windows(events, gold(measures=(), sql=statement), None, {})
    assert [tuple(row) for row in result.collect()] == [("/home", 4.0)]


def _settings(**gold_changes) -> Settings:
    settings = load_settings(PROJECT_ROOT / "conf" / "gold" / "ysb.toml")
    return dataclasses.replace(settings, gold=dataclasses.replace(settings.gold, **gold_changes))


def test_the_shipped_gold_configs_have_no_problems():
    for name in ("ysb", "user_sessions", "event_windows"):
        assert gold_problems(load_settings(PROJECT_ROOT / "conf" / "gold" / f"{name}.toml")) == [], name


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"name": "YSB job"}, "gold.name: 'YSB job' must be lower-case letters"),
        ({"output": "ysb_events"}, "gold.output: 'ysb_events' is one of the job's own tables"),
        ({"output": "silver_events"}, "gold.output: 'silver_events' is a table the etl job writes; a table has one"),
        ({"output": "analytics_windows"}, "gold.output: 'analytics_windows' is a table the analytics job writes"),
        ({"output": "dim_pages"}, "gold.output: 'dim_pages' is a table the etl job writes"),
        ({"name": "analytics"}, "gold.name: 'analytics' is the built-in analytics job's: the two would share"),
        ({"source": GoldSource(contract="nope")}, "gold.source.contract: no contract 'nope' (known: events, ysb_ad"),
        ({"window": GoldWindow(kind="hopping")}, "gold.window.kind: 'hopping' is not one of tumbling, sliding, sess"),
        ({"window": GoldWindow(kind="tumbling")}, "gold.window.size: a tumbling window needs a size"),
        ({"window": GoldWindow(kind="session")}, "gold.window: a session window needs one of gap"),
        ({"measures": (GoldMeasure(name="n", fn="median", expr="x"),)}, "gold.measures.n.fn: 'median' is not one of"),
        ({"measures": (GoldMeasure(name="n", fn="sum"),)}, "gold.measures.n.expr: sum needs an expression"),
        ({"sql": "SELECT 1"}, "gold: give either measures (with window and group_by) or sql"),
        ({"joins": (GoldJoin(name="c", on=("ad_id",)),)}, "gold.joins.c: give one of csv"),
        ({"trigger": "soon"}, "gold.trigger must be 'availableNow' or an interval"),
    ],
)
def test_config_mistakes_are_named_by_their_key(changes, problem):
    problems = gold_problems(_settings(**changes))
    assert any(found.startswith(problem) for found in problems), problems


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"filter": "event_kind = 'view'"}, "gold.filter: "),
        ({"filter": "event_type = = 'view'"}, "gold.filter: "),
        ({"group_by": ("campaign",)}, "gold.group_by: "),
        ({"measures": (GoldMeasure(name="n", fn="sum", expr="ad_type +* 1"),)}, "gold.measures.n: "),
        ({"columns": {"hour": "hour(no_such_column)"}}, "gold.columns.hour: "),
    ],
)
def test_expressions_are_checked_against_the_contract_before_the_job_reads(spark, changes, problem):
    settings = _settings(**changes)
    campaigns = spark.createDataFrame([("ad", "campaign")], "ad_id string, campaign_id string")
    with pytest.raises(ConfigError) as raised:
        check_gold_plan(spark, settings, {"campaigns": campaigns})
    assert str(raised.value).startswith(problem)
    assert "\n" not in str(raised.value)


def test_a_join_on_a_column_the_dimension_lacks_is_named(spark):
    campaigns = spark.createDataFrame([("ad", "campaign")], "ad string, campaign_id string")
    with pytest.raises(ConfigError, match=r"^gold.joins.campaigns.on: column 'ad_id' is not in both"):
        check_gold_plan(spark, _settings(), {"campaigns": campaigns})


def test_the_events_table_keeps_the_source_columns_asked_for(spark):
    kept = ("ad_id", "event_time", "event_type")
    source = event_source(_settings(source=GoldSource(topic="t", contract="ysb_ad_event", columns=kept)))
    assert list(source.columns) == [*kept, "topic", "partition", "offset", "kafka_timestamp"]
    unknown = _settings(source=GoldSource(contract="ysb_ad_event", columns=("ad", "event_time")))
    with pytest.raises(ConfigError, match=r"^gold.source.columns: 'ad' is not a column of the contract \(its col"):
        event_source(unknown)
    without_time = _settings(source=GoldSource(contract="ysb_ad_event", columns=("ad_id",)))
    with pytest.raises(ConfigError, match=r"^gold.source.columns must keep 'event_time'"):
        event_source(without_time)
