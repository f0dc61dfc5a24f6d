"""``key=value`` records: pairs separated by ``;``, keys and values trimmed, every value a text. An object
is written as keys under its name (``data.user_id=u-1; data.page=/home``), or as JSON text under its name."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from eventlake.pipeline.contract.errors import ErrorCode, error
from eventlake.pipeline.contract.expressions import key_value_map, prefixed_object, variant_at
from eventlake.runtime.config import DeclaredContract

NAME = "kv"
MEDIA_TYPE = "text/x-key-value"
TEXTUAL = True


def read(rows: DataFrame, text: Column, column: str, _contract: DeclaredContract, paths: dict[str, bool]) -> DataFrame:
    # The pairs, then every value the contract reads from them, each a column computed once per record: the
    # map's lambdas run interpreted, and written into each field's expression they would run once per field.
    pairs = f"{column}_pairs"
    rows = rows.withColumn(pairs, key_value_map(text))
    values = F.struct(*(_value(F.col(pairs), path, is_object).alias(path) for path, is_object in paths.items()))
    return rows.withColumn(column, F.when(F.col(pairs).isNotNull(), values)).drop(pairs)


def failure(_text: Column, _contract: DeclaredContract) -> Column:
    return error(
        ErrorCode.NOT_KEY_VALUE,
        F.lit("the record is not key=value pairs separated by ';' (a pair without '=', an empty key, or a key twice)"),
    )


def value_at(document: Column, path: str, _contract: DeclaredContract) -> Column:
    return document.getField(path)


def _value(pairs: Column, path: str, is_object: bool) -> Column:
    value = F.try_element_at(pairs, F.lit(path)).cast("variant")
    top, *inner = path.split(".")
    if inner:  # data.user_id: its own key, or a key of the object written as JSON text under data
        value = F.coalesce(value, variant_at(F.try_parse_json(F.try_element_at(pairs, F.lit(top))), inner))
    return F.coalesce(prefixed_object(pairs, path), value) if is_object else value
