"""ETL flows of config: the tables and the id a flow's name and contract give, and its mistakes in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from eventlake.pipeline.etl_flow import configure_etl, etl_flow, etl_problems
from eventlake.runtime.config import ConfigError, EtlSource, load_settings

CONF = Path(__file__).resolve().parents[3] / "conf"


def test_the_built_in_flow_writes_bronze_events_and_silver_events_by_event_id():
    flow = etl_flow(load_settings(CONF / "local.toml"))
    assert (flow.job, flow.bronze, flow.silver, flow.id_column) == ("etl", "bronze_events", "silver_events", "event_id")
    assert (flow.query("ingest"), flow.query("raw"), flow.query("silver")) == ("etl_ingest", "etl_raw", "etl_silver")


def test_conf_etl_events_declares_the_flow_jobs_etl_runs_without_a_config():
    assert load_settings(CONF / "etl" / "events.toml") == load_settings(CONF / "local.toml")


def test_the_shipped_orders_flow_reads_its_topic_with_its_contract():
    name, settings = configure_etl(load_settings(CONF / "etl" / "orders.toml"))
    flow = etl_flow(settings)
    assert (name, settings.kafka.topic) == ("orders", "orders")
    assert (flow.bronze, flow.silver, flow.id_column) == ("orders_bronze", "orders_silver", "order_id")


def flow_settings(**etl):
    settings = load_settings(CONF / "etl" / "orders.toml")
    return dataclasses.replace(settings, etl=dataclasses.replace(settings.etl, **etl))


@pytest.mark.parametrize(
    ("etl", "problem"),
    [
        ({"name": "Orders"}, "etl.name: 'Orders' must be lower-case letters, digits and '_' (it names the tables)"),
        ({"source": EtlSource(contract="order")}, "etl.source.contract: no contract 'order' (known: events, orders)"),
        ({"columns": {"amount_eur": " "}}, "etl.columns.amount_eur is empty"),
        ({"name": "analytics"}, "etl.name: 'analytics' is the built-in analytics job's: the two would share tables and"
         " checkpoints"),
    ],
)
def test_each_mistake_in_a_flow_is_one_sentence_naming_its_key(etl, problem):
    settings = flow_settings(**etl)
    assert etl_problems(settings) == [problem]
    with pytest.raises(ConfigError, match="^" + problem.replace("(", r"\(").replace(")", r"\)") + "$"):
        configure_etl(settings)


def test_a_flow_needs_a_contract_with_an_id_field_to_keep_each_event_once_in_silver():
    settings = flow_settings()
    contracts = {**settings.contracts, "orders": dataclasses.replace(settings.contracts["orders"], id_field="")}
    [problem] = etl_problems(dataclasses.replace(settings, contracts=contracts))
    assert problem.startswith("etl.source.contract: contract 'orders' has no id_field")
