"""The formats a contract reads, one module each: how a record's text becomes its document, why a text
cannot, and where a path's value is in the document. A new format is one new module listed in
:data:`FORMATS`.

A document's values are VARIANTs: a JSON value as written, or a text (``kv``, ``csv``: ``textual``), which
the engine reads in the field's type (``"12"`` is a long there, not in JSON).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame

from eventlake.pipeline.contract.formats import csv, json, kv
from eventlake.runtime.config import DeclaredContract


@dataclass(frozen=True)
class Format:
    """One format. ``read(rows, text, column, contract, paths)`` adds ``column``: the document of ``text``
    (NULL where ``text`` is NULL or cannot be read; ``paths``: the paths the contract reads, each with
    whether an object is read there); ``failure(text, contract)`` is the error struct of a text ``read``
    could not read, built for those rows only; ``value_at(document, path, contract)`` is the VARIANT at
    ``path`` (SQL NULL when absent)."""

    name: str
    media_type: str
    textual: bool
    read: Callable[[DataFrame, Column, str, DeclaredContract, dict[str, bool]], DataFrame]
    failure: Callable[[Column, DeclaredContract], Column]
    value_at: Callable[[Column, str, DeclaredContract], Column]


FORMATS: dict[str, Format] = {
    module.NAME: Format(module.NAME, module.MEDIA_TYPE, module.TEXTUAL, module.read, module.failure, module.value_at)
    for module in (json, kv, csv)
}
