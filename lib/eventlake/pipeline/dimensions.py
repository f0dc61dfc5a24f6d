"""Dimension tables: small Delta tables that enrich events, created from a CSV file shipped in ``conf/``."""

from __future__ import annotations

from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from eventlake.runtime.config import EnrichSettings, StorageSettings
from eventlake.runtime.errors import EnvironmentProblem


def dimension_from_csv(spark: SparkSession, csv_path: str, key: str) -> DataFrame:
    """Read a dimension CSV (a header line; every column a string, empty cells NULL) and check that
    ``key`` is a column whose values are present and unique."""
    if "://" not in csv_path and not Path(csv_path).is_file():
        raise EnvironmentProblem(f"dimension file not found: {csv_path} (set etl.enrich.dimension_csv)")
    rows = spark.read.option("header", True).option("inferSchema", False).csv(csv_path)
    if key not in rows.columns:
        raise EnvironmentProblem(
            f"dimension file {csv_path} has no column '{key}' (etl.enrich.key); its columns: {', '.join(rows.columns)}"
        )
    [problems] = rows.agg(
        F.count(F.when(F.col(key).isNull(), 1)).alias("missing"),
        (F.count(F.lit(1)) - F.count_distinct(key)).alias("repeated"),
    ).collect()
    if problems.missing or problems.repeated:
        raise EnvironmentProblem(
            f"dimension file {csv_path}: column '{key}' must be present and unique in every row "
            f"({problems.missing} rows without it, {problems.repeated} repeated values)"
        )
    return rows


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
