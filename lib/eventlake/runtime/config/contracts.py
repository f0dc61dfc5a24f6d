"""Contracts declared in config (``[contracts.<name>]``): the fields, the event time, the versions; read by
:mod:`eventlake.pipeline.contract`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class ContractField:
    """One field of a declared contract: its type (``string``, ``long``, ``double``, ``boolean``,
    ``decimal(p,s)``, ``timestamp``, ``object`` or ``variant``), whether a record must have it, and where the
    record holds it (``path``: a dotted name such as ``data.user_id``; the field's own name when empty)."""

    type: str = "string"
    required: bool = True
    path: str = ""


@dataclass(frozen=True)
class EventTimeSpec:
    """Which field holds a declared contract's event time, and in what form: ``iso8601`` (with an offset),
    ``epoch_seconds`` or ``epoch_millis`` (a number or a string of digits), or ``pattern`` (a Spark datetime
    ``pattern`` read in ``time_zone``)."""

    field: str = "timestamp"
    form: str = "iso8601"
    pattern: str = ""
    time_zone: str = "UTC"


@dataclass(frozen=True)
class ContractVersionSpec:
    """What one version of a declared contract changes: ``rename`` (field name -> the name records of this
    version use for it) and ``add`` (fields only this version has)."""

    rename: dict[str, str] = field(default_factory=dict)
    add: dict[str, ContractField] = field(default_factory=dict)


@dataclass(frozen=True)
class DeclaredContract:
    """A topic's records declared in config (``[contracts.<name>]``): the ``format`` (``json``, ``kv`` or
    ``csv`` with ``csv_columns`` in order, split by ``csv_delimiter``), or several ``formats`` chosen per
    record by its ``content-type`` header (``format`` for a record without one), the ``fields``, the
    ``id_field`` that de-duplicates (empty: none), the event time and its bounds, a size limit, and the
    versions (``version_field`` names the field that holds a record's version; ``versions`` what each
    version renames or adds; ``accepted_versions`` those read, empty: all). Records that break it go to the
    dead letters with their error code. ``eventlake.pipeline.contract``'s ``events.toml`` is the built-in
    one."""

    format: str = "json"
    formats: tuple[str, ...] = ()
    fields: dict[str, ContractField] = field(default_factory=dict)
    id_field: str = ""
    event_time: EventTimeSpec = field(default_factory=EventTimeSpec)
    csv_columns: tuple[str, ...] = ()
    csv_delimiter: str = ","
    max_record_bytes: int = 1_048_576
    max_event_time_ahead_of_job: timedelta = timedelta(minutes=5)
    max_event_time_ahead: timedelta | None = None  # after the record's Kafka timestamp; None: not checked
    min_event_time: str = ""  # an ISO-8601 time; empty: not checked
    version_field: str = ""
    versions: dict[str, ContractVersionSpec] = field(default_factory=dict)
    accepted_versions: tuple[str, ...] = ()
