"""Small DataFrames a job builds of its own rows (figures, metrics, heartbeats) without Python workers."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType


def struct_schema(ddl: str) -> StructType:
    """The StructType of a DDL column list such as ``"id long, name string"``."""
    schema = StructType.fromDDL(ddl)
    if not isinstance(schema, StructType):
        raise ValueError(f"not a list of columns: {ddl!r}")
    return schema


def rows_frame(spark: SparkSession, rows: list[dict[str, Any]], schema: str) -> DataFrame:
    """A small DataFrame of ``rows`` (dicts with every column of ``schema``), built from literals in the
    JVM: ``createDataFrame`` of Python objects would start Python worker processes to unpickle them."""
    fields = struct_schema(schema).fields
    structs = [
        F.struct(*(F.lit(row[field.name]).cast(field.dataType).alias(field.name) for field in fields)) for row in rows
    ]
    return spark.range(1).select(F.inline(F.array(*structs)))
