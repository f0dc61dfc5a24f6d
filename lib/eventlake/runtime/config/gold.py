"""``[gold]``: a gold job's source, joins, window, measures and expectations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from eventlake.runtime.config.sections import Expectation


@dataclass(frozen=True)
class GoldSource:
    """Where a gold job's events come from: a Kafka ``topic`` (empty: ``kafka.topic``) read with ``contract``,
    the name of a ``[contracts.<name>]`` declaration or ``events`` for the built-in event contract; or a Delta
    ``table`` under ``storage.tables_root`` streamed as it grows (``silver_events``, written by the ETL job).
    ``columns``: the contract's columns kept in the job's events table, in order (empty: all of them); the
    Kafka coordinates are always kept."""

    topic: str = ""
    contract: str = "events"
    table: str = ""
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class GoldJoin:
    """A dimension joined to each event (a stream-static join): a CSV file with a header (``csv``, every
    column text) or a Delta table (``delta``), joined ``on`` columns both have, ``inner`` or ``left``."""

    name: str
    on: tuple[str, ...]
    csv: str = ""
    delta: str = ""
    how: str = "inner"


@dataclass(frozen=True)
class GoldWindow:
    """The event-time window: ``tumbling`` (``size``), ``sliding`` (``size`` every ``slide``) or ``session``
    (closed after ``gap`` without events of its group; ``gap_expr``, a SQL expression giving an interval,
    sets the gap per row instead)."""

    kind: str = "tumbling"
    size: timedelta | None = None
    slide: timedelta | None = None
    gap: timedelta | None = None
    gap_expr: str = ""


@dataclass(frozen=True)
class GoldMeasure:
    """One column of a gold table: ``fn`` (``count``, ``sum``, ``min``, ``max``, ``avg``, ``count_distinct``,
    ``approx_count_distinct``, ``first``, ``last`` (by event time), ``any``) of the SQL expression ``expr``
    (``count`` without one counts events)."""

    name: str
    fn: str
    expr: str = ""


@dataclass(frozen=True)
class GoldSettings:
    """A gold job of config (``jobs/gold.py``): events of ``source``, de-duplicated on the contract's id
    field, with ``columns`` added (name -> SQL), ``joins``, ``filter`` (SQL), grouped by ``group_by`` and
    ``window``, with ``measures``, into the Delta table ``output``; or ``sql``, a Spark SQL statement over the
    events as the view ``events``. ``name`` names the job (its tables and checkpoints). ``late_events``: keep
    the events the watermark drops in ``<name>_late_events``; ``max_files_per_trigger``: files of the events
    table a windows batch reads at most (0: Delta's default, 1000); ``idle_timeout``: when the topic has been
    quiet this long, close the open windows (None: wait for events, as Spark does); ``rebuild`` (``--rebuild``):
    on a windows checkpoint with no batches, empty the output, the window batches and the late events and compute
    them again from the events (:mod:`eventlake.pipeline.resume`)."""

    name: str = ""
    output: str = ""
    source: GoldSource = field(default_factory=GoldSource)
    watermark: timedelta = timedelta(minutes=10)
    columns: dict[str, str] = field(default_factory=dict)
    joins: tuple[GoldJoin, ...] = ()
    filter: str = ""
    window: GoldWindow = field(default_factory=GoldWindow)
    group_by: tuple[str, ...] = ()
    measures: tuple[GoldMeasure, ...] = ()
    sql: str = ""
    trigger: str = "availableNow"
    late_events: bool = False
    max_files_per_trigger: int = 0
    idle_timeout: timedelta | None = None
    rebuild: bool = False
    expectations: tuple[Expectation, ...] = ()
