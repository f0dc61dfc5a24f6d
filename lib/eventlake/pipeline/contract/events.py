"""The built-in event contract: the StreamingEvent of the design, versions 1 and 2, in JSON or ``key=value``
records. It is a contract of config like any other (``events.toml`` beside this module, read by the one
engine); ``[contract]`` in a job's config (:class:`~eventlake.runtime.config.ContractSettings`) chooses the
versions and formats read and the limits.

Version 2 renames ``type`` to ``event_type`` and adds the optional ``session_id``; both come out as the same
typed columns (:data:`EVENT_COLUMNS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from eventlake.pipeline.contract.clock import JOB_TIME_COLUMN
from eventlake.pipeline.contract.declaration import contract_problems
from eventlake.pipeline.contract.engine import parse_declared
from eventlake.pipeline.contract.errors import ERROR_COLUMNS, is_dead_letter
from eventlake.pipeline.contract.formats import FORMATS
from eventlake.runtime.config import ContractSettings, DeclaredContract, declared_contracts

BUILT_IN_CONTRACT = "events"
EVENT_COLUMNS = (
    "event_id", "event_time", "source", "schema_version", "event_type", "user_id", "session_id", "data"
)
KAFKA_COLUMNS = ("topic", "partition", "offset", "kafka_timestamp")
REQUIRED_STRING_FIELDS = ("event_id", "timestamp", "source", "schema_version", "type")  # version 1
# The formats the built-in contract reads, and the media type in a record's content-type header of each.
EXTRACTORS = ("json", "kv")
EXTRACTOR_MEDIA_TYPES = {name: FORMATS[name].media_type for name in EXTRACTORS}


@lru_cache(maxsize=1)
def shipped_events_contract() -> DeclaredContract:
    """The built-in contract as ``events.toml`` declares it: every version and format it can read."""
    text = resources.files(__package__).joinpath("events.toml").read_text(encoding="utf-8")
    return declared_contracts(text)[BUILT_IN_CONTRACT]


@lru_cache(maxsize=16)
def events_contract(settings: ContractSettings) -> DeclaredContract:
    """The built-in contract with a job's ``[contract]`` settings: the versions and formats it accepts, and
    its limits.

    Example::

        events_contract(ContractSettings(schema_versions=("1", "2"), extractors=("json", "kv")))
    """
    return dataclasses.replace(
        shipped_events_contract(),
        format=settings.default_format,
        formats=settings.extractors,
        accepted_versions=settings.schema_versions,
        max_record_bytes=settings.max_record_bytes,
        max_event_time_ahead=settings.max_event_time_ahead,
        max_event_time_ahead_of_job=settings.max_event_time_ahead_of_job,
        min_event_time=settings.min_event_time,
    )


def named_contract_problems(key: str, name: str, contracts: Mapping[str, DeclaredContract]) -> list[str]:
    """What is wrong with the contract ``name`` a job's ``key`` names: none for the built-in one, else it must be
    one of ``contracts`` (the ``[contracts.<name>]`` of the config) and have no :func:`contract_problems`.

    Example::

        named_contract_problems("etl.source.contract", "order", settings.contracts)
        # ["etl.source.contract: no contract 'order' (known: events, orders)"]
    """
    if name == BUILT_IN_CONTRACT:
        return []
    if name not in contracts:
        return [f"{key}: no contract {name!r} (known: {', '.join([BUILT_IN_CONTRACT, *contracts])})"]
    return [f"contracts.{name}.{problem}" for problem in contract_problems(contracts[name])]


def parse_events(raw: DataFrame, contract: ContractSettings) -> DataFrame:
    """Kafka rows (key, value, topic, partition, offset, timestamp, headers...) -> the same rows with
    ``error_code``/``error_message``/``error_stage`` (NULL when the record is valid) and the typed event
    columns (:data:`EVENT_COLUMNS`; ``data`` a VARIANT, NULL on invalid rows). ``contract.extractors`` name the
    formats read (:data:`EXTRACTORS`).

    Never raises for bad input: every record comes out either valid or with an error code. In a streaming
    query, apply :func:`~eventlake.pipeline.contract.clock.with_job_clock` to the Kafka rows first (the jobs
    do), so the contract's code is generated once, not in every micro-batch.

    Example::

        parsed = raw.transform(parse_events, ContractSettings(schema_versions=("1", "2")))
        parsed.transform(valid_events).show()
    """
    unknown = [name for name in contract.extractors if name not in EXTRACTORS]
    if unknown:
        raise ValueError(f"unknown extractor {unknown[0]!r} (known: {', '.join(EXTRACTORS)})")
    if contract.default_format not in contract.extractors:
        raise ValueError(
            f"the default format {contract.default_format!r} must be one of the extractors"
            f" {', '.join(contract.extractors)}"
        )
    parsed = parse_declared(raw, events_contract(contract))
    kept = [name for name in raw.columns if name != JOB_TIME_COLUMN]
    return parsed.select(*kept, *ERROR_COLUMNS, *EVENT_COLUMNS)


def valid_events(parsed: DataFrame) -> DataFrame:
    """Valid rows of :func:`parse_events`, as events with their Kafka coordinates.

    Example::

        raw.transform(parse_events, settings.contract).transform(valid_events)
    """
    return parsed.where(F.col("error_code").isNull()).select(
        *EVENT_COLUMNS, "topic", "partition", "offset", F.col("timestamp").alias("kafka_timestamp")
    )


def invalid_records(parsed: DataFrame) -> DataFrame:
    """Invalid rows of :func:`parse_events` (or :func:`~eventlake.pipeline.contract.engine.parse_declared`),
    raw record and error kept.

    Example::

        raw.transform(parse_events, settings.contract).transform(invalid_records).transform(to_dead_letters, job="etl")
    """
    return parsed.where(is_dead_letter())
