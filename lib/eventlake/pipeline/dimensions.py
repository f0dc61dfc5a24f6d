"""Dimension tables: small Delta tables that enrich events, created from a CSV file shipped in ``conf/``."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import reduce
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from eventlake.runtime.config import EnrichSettings, StorageSettings
from eventlake.runtime.errors import EnvironmentProblem


def dimension_from_csv(
    spark: SparkSession, csv_path: str, keys: str | Sequence[str], config_key: str = "etl.enrich"
) -> DataFrame:
    """Read a dimension CSV (a header line; every column a string, empty cells NULL) and check that ``keys``
    are columns whose values are present in every row and unique together. ``config_key``: the section
    that names the file and the keys, for the messages."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    if "://" not in csv_path and not Path(csv_path).is_file():
        raise EnvironmentProblem(f"dimension file not found: {csv_path} (set {config_key}.{_file_key(config_key)})")
    rows = spark.read.option("header", True).option("inferSchema", False).csv(csv_path)
    absent = [key for key in keys if key not in rows.columns]
    if absent:
        raise EnvironmentProblem(
            f"dimension file {csv_path} has no column '{absent[0]}' ({config_key}.{_keys_key(config_key)});"
            f" its columns: {', '.join(rows.columns)}"
        )
    [problems] = rows.agg(
        F.count(F.when(reduce(operator.or_, (F.col(key).isNull() for key in keys)), 1)).alias("missing"),
        (F.count(F.lit(1)) - F.count_distinct(*(F.col(key) for key in keys))).alias("repeated"),
    ).collect()
    if problems.missing or problems.repeated:
        what = f"column '{keys[0]}'" if len(keys) == 1 else f"columns {', '.join(repr(key) for key in keys)}"
        raise EnvironmentProblem(
            f"dimension file {csv_path}: {what} must be present and unique in every row "
            f"({problems.missing} rows without it, {problems.repeated} repeated values)"
        )
    return rows


def _file_key(config_key: str) -> str:
    return "dimension_csv" if config_key == "etl.enrich" else "csv"


def _keys_key(config_key: str) -> str:
    return "key" if config_key == "etl.enrich" else "on"


def ensure_dimension_table(spark: SparkSession, enrich: EnrichSettings, storage: StorageSettings) -> DataFrame:
    """The dimension table as a DataFrame. It is created from the CSV the first time; later runs keep the
    table as it is (update it with Delta, or delete it to load the CSV again)."""
    path = storage.table_path(enrich.table)
    if not DeltaTable.isDeltaTable(spark, path):
        rows = dimension_from_csv(spark, enrich.dimension_csv, enrich.key)
        rows.write.format("delta").mode("errorifexists").save(path)
        print(
            f"etl: created dimension table {enrich.table} from {enrich.dimension_csv} ({rows.count()} rows)", flush=True
        )
    dimension = spark.read.format("delta").load(path)
    if enrich.key not in dimension.columns:
        raise EnvironmentProblem(f"dimension table {path} has no column '{enrich.key}' (etl.enrich.key)")
    return dimension
