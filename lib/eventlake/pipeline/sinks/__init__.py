"""Writing micro-batches to Delta tables: each batch once per table, and as few commits as the data need.

One module per sink or concern:

* :mod:`.delta_append`: appends, each batch once per table: the writer identity every row carries
  (:class:`BatchWriter`, :func:`batch_writer_id`, :func:`pending_batch`), a batch stored and counted once
  (:func:`stored_with_count`) and its append (:func:`append_stored_rows`);
* :mod:`.delta_merge`: the insert-only MERGE (:func:`insert_new_rows`) over the days of :func:`day_ranges`;
* :mod:`.dead_letters`: a batch's invalid records appended to ``<job>_dead_letters`` (:func:`append_dead_letters`);
* :mod:`.streaming`: a ``foreachBatch`` query started with its trigger (:func:`start_batch_stream`,
  :func:`with_trigger`) and a batch's writes run together (:func:`run_together`);
* :mod:`.tables`: empty tables made before the queries start (:func:`ensure_table`, :func:`ensure_tables`).

Other code imports from ``eventlake.pipeline.sinks``, which re-exports them.

Example::

    from eventlake.pipeline.sinks import BatchWriter, run_together, start_batch_stream

    writer = BatchWriter.for_checkpoint(spark, "analytics_intake", checkpoint, checkpoint_id)

    def write_batch(rows, batch_id):
        run_together([
            lambda: writer.append(rows, "data/tables/analytics_events", batch_id),
            lambda: writer.append(rows.groupBy("partition").count(), "data/tables/counts", batch_id, one_file=True),
        ])

    start_batch_stream(parsed, write_batch, "analytics_intake", checkpoint, "availableNow")
"""

from eventlake.pipeline.sinks.dead_letters import append_dead_letters, dead_letter_rows
from eventlake.pipeline.sinks.delta_append import (
    BATCH_COLUMNS,
    BATCH_COLUMNS_SCHEMA,
    ONE_FILE_ROWS,
    BatchWriter,
    append_stored_rows,
    batch_writer_id,
    fits_one_file,
    pending_batch,
    stored_with_count,
)
from eventlake.pipeline.sinks.delta_merge import day_ranges, insert_new_rows
from eventlake.pipeline.sinks.streaming import run_together, start_batch_stream, with_trigger
from eventlake.pipeline.sinks.tables import ensure_table, ensure_tables

__all__ = [
    "BATCH_COLUMNS",
    "BATCH_COLUMNS_SCHEMA",
    "ONE_FILE_ROWS",
    "BatchWriter",
    "append_dead_letters",
    "append_stored_rows",
    "batch_writer_id",
    "day_ranges",
    "dead_letter_rows",
    "ensure_table",
    "ensure_tables",
    "fits_one_file",
    "insert_new_rows",
    "pending_batch",
    "run_together",
    "start_batch_stream",
    "stored_with_count",
    "with_trigger",
]
