"""Delta tables made empty before a job's queries start, so a query can stream a table from its first version
and a table is there to query before any row is."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from eventlake.pipeline.sinks.streaming import run_together
from eventlake.runtime.frames import struct_schema


def ensure_table(spark: SparkSession, table_path: str, schema: str) -> None:
    """Create an empty Delta table with ``schema`` (a DDL string) at ``table_path`` unless one is there.

    Example::

        ensure_table(spark, "data/tables/ysb_heartbeats", "event_time timestamp, written_at timestamp")
    """
    DeltaTable.createIfNotExists(spark).location(table_path).addColumns(struct_schema(schema)).execute()


def ensure_tables(spark: SparkSession, schemas: Mapping[str, str]) -> None:
    """:func:`ensure_table` for each path -> schema of ``schemas``, all at the same time: a job's first Delta
    commits are mostly one thread's work (class loading, the log's first listing), so two cores make two
    tables in about the time of one.

    Example::

        ensure_tables(spark, {"data/tables/a": "id long", "data/tables/b": "name string"})
    """
    run_together([partial(ensure_table, spark, path, schema) for path, schema in schemas.items()])
