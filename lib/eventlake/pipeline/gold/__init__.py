"""Gold jobs declared in config: a topic read with a contract, windowed group-bys into a Delta table.

    spark-submit jobs/gold.py --config conf/gold/ysb.toml

A gold job is the analytics job's two queries with its steps taken from ``[gold]`` (see
:class:`~eventlake.runtime.config.GoldSettings`):

* ``<name>_intake`` reads the topic, parses each record once with the source's contract (the built-in event
  contract, or one declared in ``[contracts.<name>]``) and writes, once per batch, the dead letters, the valid
  events to ``<name>_events`` and the intake counts (:mod:`eventlake.pipeline.intake`);
* ``<name>_windows`` streams ``<name>_events`` through the watermark, the de-duplication on the contract's id
  field, the derived ``columns``, the ``filter``, the dimension ``joins`` and the window's group-by with its
  ``measures`` (or the ``sql`` statement over the view ``events``) into the ``output`` table, with each batch's
  figures in ``<name>_window_batches`` (:mod:`eventlake.pipeline.windowed`).

Every step is a Spark expression, checked against the events' columns before the job reads anything.

What a job reads is in :mod:`.source`, its steps in :mod:`.steps` with their aggregates in :mod:`.measures`,
the checks of its config in :mod:`.checks` and its two queries in :mod:`.queries`.

Example::

    from eventlake.pipeline.gold import configure_gold, gold_queries
    from eventlake.runtime.runner import run_job

    run_job("gold", gold_queries, ["--config", "conf/gold/ysb.toml"], configure=configure_gold)
"""

from eventlake.pipeline.gold.checks import (
    EVENTS,
    JOIN_KINDS,
    WINDOW_BATCHES,
    WINDOW_KINDS,
    check_gold_plan,
    configure_gold,
    gold_problems,
    own_tables,
)
from eventlake.pipeline.gold.measures import MEASURES, measure_column
from eventlake.pipeline.gold.queries import gold_queries, late_capture, late_events_schema, window_span
from eventlake.pipeline.gold.source import (
    BUILT_IN_COLUMNS,
    KAFKA_COLUMNS,
    EventSource,
    event_source,
    load_dimensions,
)
from eventlake.pipeline.gold.steps import (
    EVENTS_VIEW,
    aggregate_windows,
    gold_windows,
    join_dimensions,
    keep_rows,
    prepared_events,
    window_column,
    with_columns_of,
    with_window_bounds,
)

__all__ = [
    "BUILT_IN_COLUMNS",
    "EVENTS",
    "EVENTS_VIEW",
    "JOIN_KINDS",
    "KAFKA_COLUMNS",
    "MEASURES",
    "WINDOW_BATCHES",
    "WINDOW_KINDS",
    "EventSource",
    "aggregate_windows",
    "check_gold_plan",
    "configure_gold",
    "event_source",
    "gold_problems",
    "gold_queries",
    "gold_windows",
    "join_dimensions",
    "keep_rows",
    "late_capture",
    "late_events_schema",
    "load_dimensions",
    "measure_column",
    "own_tables",
    "prepared_events",
    "window_column",
    "window_span",
    "with_columns_of",
    "with_window_bounds",
]
