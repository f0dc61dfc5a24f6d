"""ETL flows declared in config: which topic, which contract, which tables.

    spark-submit jobs/etl.py --config conf/etl/orders.toml

``[etl]`` names a flow (``etl.name``) and its source (``[etl.source]``: a topic and the contract it is read
with). The built-in flow, ``etl``, reads the built-in event contract into ``bronze_events`` and
``silver_events``; a flow of another name writes ``<name>_bronze`` and ``<name>_silver``, and keeps its own
dead letters, intake counts and metrics (``<name>_dead_letters``, ...) like every job. Everything else (stages,
SQL columns, enrichment, PII, expectations, the de-duplication of silver) is the same ``[etl]`` for every flow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from pyspark.sql import DataFrame

from eventlake.pipeline.contract import BUILT_IN_CONTRACT, named_contract_problems, parse_declared, parse_events
from eventlake.runtime.config import ConfigError, Settings
from eventlake.runtime.job_tables import BUILT_IN_JOBS

BUILT_IN_FLOW = "etl"
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class EtlFlow:
    """One ETL flow: its ``job`` name (checkpoints, queries, its own tables), its ``bronze`` and ``silver``
    tables, the ``id_column`` silver keeps once, and ``parse`` (Kafka rows -> rows with the contract's columns
    and the error columns).

    Example::

        flow = etl_flow(settings)
        parsed = raw.transform(flow.parse)
        flow.silver, flow.query("ingest")  # ("silver_events", "etl_ingest") for the built-in flow
    """

    job: str
    bronze: str
    silver: str
    id_column: str
    parse: Callable[[DataFrame], DataFrame]

    def query(self, role: str) -> str:
        """The name of the flow's query ``role`` (``ingest``, ``raw``, ``silver``): ``<job>_<role>``."""
        return f"{self.job}_{role}"


def etl_flow(settings: Settings) -> EtlFlow:
    """The flow ``settings.etl`` declares (its problems, if any, raised by :func:`configure_etl` first).

    Example::

        etl_flow(load_settings("conf/etl/orders.toml")).bronze  # "orders_bronze"
    """
    etl = settings.etl
    contract = etl.source.contract
    if contract == BUILT_IN_CONTRACT:
        parse, id_column = partial(parse_events, contract=settings.contract), "event_id"
    else:
        declared = settings.contracts[contract]
        parse, id_column = partial(parse_declared, contract=declared), declared.id_field
    if etl.name == BUILT_IN_FLOW:
        bronze, silver = "bronze_events", "silver_events"
    else:
        bronze, silver = f"{etl.name}_bronze", f"{etl.name}_silver"
    return EtlFlow(job=etl.name, bronze=bronze, silver=silver, id_column=id_column, parse=parse)


def etl_problems(settings: Settings) -> list[str]:
    """What is wrong in ``[etl]``'s name and source that needs no Spark: each problem one sentence naming its
    key. Empty when the flow can run.

    Example::

        etl_problems(load_settings("conf/etl/orders.toml"))  # []
    """
    etl, problems = settings.etl, []
    if not _NAME.fullmatch(etl.name):
        problems.append(f"etl.name: {etl.name!r} must be lower-case letters, digits and '_' (it names the tables)")
    elif etl.name != BUILT_IN_FLOW and etl.name in BUILT_IN_JOBS:
        problems.append(
            f"etl.name: {etl.name!r} is the built-in {etl.name} job's: the two would share tables and checkpoints"
        )
    contract = etl.source.contract
    named = named_contract_problems("etl.source.contract", contract, settings.contracts)
    problems.extend(named)
    if not named and contract != BUILT_IN_CONTRACT and not settings.contracts[contract].id_field:
        problems.append(
            f"etl.source.contract: contract {contract!r} has no id_field, and silver keeps each event once by it"
        )
    for name, expr in etl.columns.items():
        if not expr.strip():
            problems.append(f"etl.columns.{name} is empty")
    return problems


def configure_etl(settings: Settings) -> tuple[str, Settings]:
    """The flow's job name and its settings with the source's topic as ``kafka.topic``; raises ConfigError
    with the first problem of :func:`etl_problems`.

    Example::

        name, settings = configure_etl(load_settings("conf/etl/orders.toml"))  # "orders", kafka.topic "orders"
    """
    problems = etl_problems(settings)
    if problems:
        raise ConfigError.first_of(problems)
    topic = settings.etl.source.topic or settings.kafka.topic
    return settings.etl.name, replace(settings, kafka=replace(settings.kafka, topic=topic))
