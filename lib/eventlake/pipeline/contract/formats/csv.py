"""CSV records: one line of ``csv_columns`` in order, split by ``csv_delimiter``, every value a text; a
record with a column too few or too many, or a quote not closed, is ``NOT_CSV``."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from eventlake.pipeline.contract.declaration import CSV_END
from eventlake.pipeline.contract.errors import ErrorCode, error
from eventlake.runtime.config import DeclaredContract

NAME = "csv"
MEDIA_TYPE = "text/csv"
TEXTUAL = True


def read(rows: DataFrame, text: Column, column: str, contract: DeclaredContract, _paths: dict[str, bool]) -> DataFrame:
    # Columns c0..c<n+1>; a final line break is not part of the last column.
    count = len(contract.csv_columns)
    schema = ", ".join(f"c{position} string" for position in range(count + 2))
    record = F.regexp_replace(text, r"\r?\n\z", "")
    ended = F.concat(record, F.lit(contract.csv_delimiter + CSV_END))
    parts = f"{column}_parts"
    rows = rows.withColumn(parts, F.from_csv(ended, schema, {"sep": contract.csv_delimiter}))
    has_count = (F.col(f"{parts}.c{count}") == CSV_END) & F.col(f"{parts}.c{count + 1}").isNull()
    return rows.withColumn(column, F.when(has_count, F.col(parts))).drop(parts)


def failure(_text: Column, contract: DeclaredContract) -> Column:
    return error(
        ErrorCode.NOT_CSV,
        F.lit(
            f"the record is not {len(contract.csv_columns)} CSV columns separated by"
            f" {contract.csv_delimiter!r} (a column too few or too many, or a quote not closed)"
        ),
    )


def value_at(document: Column, path: str, contract: DeclaredContract) -> Column:
    # The column count is right, so a NULL column is an empty one.
    position = contract.csv_columns.index(path)
    return F.when(document.isNotNull(), F.coalesce(document.getField(f"c{position}"), F.lit("")).cast("variant"))
