"""The Delta tables under a tables root, read without a JVM: delta-rs reads each table (its log, its files,
deletion vectors applied) into Arrow, and DuckDB runs SQL on that Arrow data. A query loads only the tables
it names, once each; the tables every job keeps (``dead_letters``, ``intake_batches``, ``pipeline_metrics``)
are also views over all jobs' copies, as in :mod:`eventlake.ops.query`'s Spark path.

DuckDB's own Delta extension would download itself at run time; reading through delta-rs needs nothing
beyond the Python packages. Local tables roots only (a path or ``file:`` URI): object stores go through
Spark (``--engine spark``), whose Hadoop settings already reach them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import EVERY_JOB_TABLES, tables_of_every_job


@dataclass(frozen=True)
class AsOf:
    """Which version of the tables to read: ``version`` (of every table read) or ``time`` (each table as its
    newest commit at or before it: one consistent moment across tables); neither: the latest."""

    version: int | None = None
    time: datetime | None = None

    def __post_init__(self) -> None:
        if self.version is not None and self.time is not None:
            raise ValueError("give a version or a time to read the tables as of, not both")


LATEST = AsOf()

T = TypeVar("T")
_MISSING_TABLE = re.compile(r"Table with name (\w+) does not exist")


def local_root(tables_root: str) -> Path | None:
    """The folder of a tables root on this machine's disk, or None for another file system (``s3a:``...)."""
    parsed = urlparse(tables_root)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else tables_root)
    if len(parsed.scheme) == 1:  # a Windows drive letter, not a scheme
        return Path(tables_root)
    return None


def local_delta_tables(tables_root: str) -> dict[str, str]:
    """Table name -> path of every Delta table directly under the local folder ``tables_root``, by name."""
    root = local_root(tables_root)
    if root is None:
        raise EnvironmentProblem(
            f"{tables_root} is not on this machine's disk: read it with --engine spark (its Hadoop settings reach "
            "object stores)"
        )
    if not root.is_dir():
        return {}
    with os.scandir(root) as entries:
        found = {
            entry.name: entry.path for entry in entries if entry.is_dir() and Path(entry.path, "_delta_log").is_dir()
        }
    return dict(sorted(found.items()))


class Lake:
    """The Delta tables under one tables root, as DuckDB tables of the same names (no JVM). DuckDB itself reads
    no file and no URL (``enable_external_access`` off: ``read_csv('/etc/passwd')``, ``COPY ... TO`` and extension
    installs fail) unless ``external_access``; the tables come in through delta-rs."""

    def __init__(self, tables_root: str, as_of: AsOf = LATEST, *, external_access: bool = False):
        self.tables_root = tables_root
        self.tables = local_delta_tables(tables_root)
        self.as_of = as_of
        self.versions: dict[str, int] = {}
        self._connection = duckdb.connect(config={"enable_external_access": external_access})
        # Timestamps print as Spark prints them (UTC), whatever the machine's zone.
        self._connection.execute("SET TimeZone = 'UTC'")

    def __contains__(self, name: str) -> bool:
        return name in self.tables or name in self._every_job_names()

    def _every_job_names(self) -> list[str]:
        return [name for name in EVERY_JOB_TABLES if tables_of_every_job(self.tables, name)]

    def delta_table(self, name: str) -> DeltaTable:
        """The table ``name`` at the version this lake reads; an EnvironmentProblem when it had none then."""
        path = self.tables[name]
        try:
            if self.as_of.version is not None:
                latest = DeltaTable(path).version()
                if not 0 <= self.as_of.version <= latest:
                    raise EnvironmentProblem(f"{name} has no version {self.as_of.version}: its versions are 0-{latest}")
                return DeltaTable(path, version=self.as_of.version)
            table = DeltaTable(path)
            if self.as_of.time is not None:
                _load_as_of_time(table, name, self.as_of.time)
            return table
        except EnvironmentProblem:
            raise
        except Exception as failure:  # delta-rs raises one DeltaError for every problem
            first_line = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
            raise EnvironmentProblem(f"cannot read {name} {self._as_of_text()}: {first_line}") from failure

    def _as_of_text(self) -> str:
        if self.as_of.version is not None:
            return f"at version {self.as_of.version}"
        return f"as of {self.as_of.time:%Y-%m-%d %H:%M:%S} UTC" if self.as_of.time else "(latest version)"

    def arrow(self, name: str) -> pa.Table:
        """The rows of table ``name`` as Arrow. ``scan`` applies deletion vectors (``to_pyarrow_table`` refuses
        tables that have them)."""
        table = self.delta_table(name)
        self.versions[name] = table.version()
        return table.scan().read_all()

    def _loaded(self) -> set[str]:
        views = self._connection.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        return {view for (view,) in views} | set(self.versions)

    def load(self, names: Iterable[str]) -> None:
        """Make the tables ``names`` (and every-job views among them) queryable, each read once."""
        registered = self._loaded()
        for name in names:
            if name in registered:
                continue
            if name in self.tables:
                self._connection.register(name, self.arrow(name))
                registered.add(name)
            elif name in EVERY_JOB_TABLES and tables_of_every_job(self.tables, name):
                parts = list(tables_of_every_job(self.tables, name))
                self.load(part for part in parts if part not in registered)
                union = " UNION ALL BY NAME ".join(f'SELECT * FROM "{part}"' for part in parts)
                self._connection.execute(f'CREATE VIEW "{name}" AS {union}')
                registered.add(name)

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run ``query`` (DuckDB SQL) over the tables it names, loading those first."""
        return self._loading_tables(lambda: self._connection.sql(query), query)

    def rows(self, query: str, *parameters: Any) -> list[tuple[Any, ...]]:
        """The rows of ``query`` with ``?`` placeholders bound to ``parameters``."""
        return self._loading_tables(lambda: self._connection.execute(query, list(parameters)), query).fetchall()

    def records(self, query: str, *parameters: Any) -> list[SimpleNamespace]:
        """The rows of ``query`` as objects with one attribute per column, times as naive UTC (as the jobs'
        Spark sessions, in UTC, return them)."""
        result = self._loading_tables(lambda: self._connection.execute(query, list(parameters)), query)
        columns = [column[0] for column in result.description]
        return [
            SimpleNamespace(**{name: _naive_utc(value) for name, value in zip(columns, row, strict=True)})
            for row in result.fetchall()
        ]

    def _loading_tables(self, run: Callable[[], T], query: str) -> T:
        """``run()`` once the tables ``query`` names are loaded. DuckDB's parser lists most of them up front;
        one it misses (or a query it cannot list without binding) shows up as a missing table, loaded then."""
        with contextlib.suppress(duckdb.Error):
            self.load(duckdb.get_table_names(query))
        while True:
            try:
                return run()
            except duckdb.CatalogException as missing:
                found = _MISSING_TABLE.search(str(missing))
                name = found.group(1) if found else None
                if name is None or name not in self or name in self._loaded():
                    raise
                self.load([name])

    def value(self, query: str, *parameters: Any) -> Any:
        """The one value of a one-row, one-column ``query``."""
        [[found]] = self.rows(query, *parameters)
        return found

    def close(self) -> None:
        self._connection.close()


def _naive_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _load_as_of_time(table: DeltaTable, name: str, moment: datetime) -> None:
    """Move ``table`` to its newest commit at or before ``moment``; delta-rs would silently read version 0
    for a moment before the table existed, so that is an EnvironmentProblem here."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    commits = sorted((entry["version"], entry["timestamp"]) for entry in table.history())
    first_version, first_millis = commits[0]
    if moment.timestamp() * 1000 < first_millis:
        created = datetime.fromtimestamp(first_millis / 1000, UTC)
        what = "was created" if first_version == 0 else f"keeps history (from version {first_version})"
        raise EnvironmentProblem(
            f"{name} {what} at {created:%Y-%m-%d %H:%M:%S} UTC, after {moment:%Y-%m-%d %H:%M:%S} UTC"
        )
    table.load_as_version(moment)
