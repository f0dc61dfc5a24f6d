from __future__ import annotations

import json

from pyspark.sql.streaming.listener import StreamingQueryProgress

from eventlake.runtime.progress import format_progress, kafka_lag


def progress(latest: dict, end: dict, state_operators=()) -> StreamingQueryProgress:
    document = {
        "id": "0f0f0f0f-0000-0000-0000-000000000000", "runId": "1f1f1f1f-0000-0000-0000-000000000000",
        "name": "analytics_windows", "timestamp": "2026-01-01T10:00:00.000Z", "batchId": 3,
        "batchDuration": 1500, "durationMs": {"triggerExecution": 1500},
        "eventTime": {"watermark": "2026-01-01T09:50:00.000Z"}, "stateOperators": list(state_operators),
        "sources": [{
            "description": "KafkaV2[Subscribe[events]]", "startOffset": None, "endOffset": json.dumps(end),
            "latestOffset": json.dumps(latest), "numInputRows": 120, "inputRowsPerSecond": 100.0,
            "processedRowsPerSecond": 80.0, "metrics": {},
        }],
        "sink": {"description": "DeltaSink", "numOutputRows": -1}, "numInputRows": 120,
        "inputRowsPerSecond": 100.0, "processedRowsPerSecond": 80.0, "observedMetrics": {},
    }
    return StreamingQueryProgress.fromJson(document)


def test_lag_is_latest_minus_processed_offsets_over_partitions():
    batch = progress({"events": {"0": 100, "1": 50}}, {"events": {"0": 90, "1": 50}})
    assert kafka_lag(batch.sources) == 10


def test_progress_line_names_query_batch_rows_lag_and_watermark():
    line = format_progress(progress({"events": {"0": 10}}, {"events": {"0": 4}}))
    assert line == (
        "[analytics_windows] batch 3: 120 rows in 1.50 s (80 rows/s), lag 6, watermark 2026-01-01T09:50:00.000Z"
    )


def test_metrics_row_sums_state_operators_and_keeps_times_in_utc():
    from datetime import datetime

    from eventlake.runtime.metrics import progress_row

    operators = [
        {"operatorName": "dedupeWithinWatermark", "numRowsTotal": 10, "numRowsUpdated": 0, "allUpdatesTimeMs": 0,
         "numRowsRemoved": 0, "allRemovalsTimeMs": 0, "commitTimeMs": 0, "memoryUsedBytes": 100,
         "numRowsDroppedByWatermark": 2, "numShufflePartitions": 2, "numStateStoreInstances": 2,
         "customMetrics": {"numDroppedDuplicateRows": 3}},
        {"operatorName": "stateStoreSave", "numRowsTotal": 4, "numRowsUpdated": 0, "allUpdatesTimeMs": 0,
         "numRowsRemoved": 0, "allRemovalsTimeMs": 0, "commitTimeMs": 0, "memoryUsedBytes": 50,
         "numRowsDroppedByWatermark": 1, "numShufflePartitions": 2, "numStateStoreInstances": 2,
         "customMetrics": {}},
    ]
    row = progress_row(progress({"events": {"0": 10}}, {"events": {"0": 4}}, operators), job="analytics")
    state = (row["state_rows"], row["state_memory_bytes"], row["dropped_late"], row["dropped_duplicates"])
    assert state == (14, 150, 3, 3)
    assert (row["batch_id"], row["input_rows"], row["kafka_lag"], row["job"]) == (3, 120, 6, "analytics")
    assert row["batch_time"] == datetime(2026, 1, 1, 10, 0)
    assert row["watermark"] == datetime(2026, 1, 1, 9, 50)


def test_a_python_error_in_a_batch_function_is_described_by_its_own_line():
    from eventlake.runtime.runner import describe_failure

    text = (
        "[FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in foreach batch sink.\n"
        "Reason: An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):\n"
        '  File "x.py", line 1, in call\n    raise Py4JJavaError\n'
        "py4j.protocol.Py4JJavaError: An error occurred while calling o1.execute.\n"
        ": java.io.IOException: Mkdirs failed\n\tat org.apache.hadoop.fs.Foo(Foo.java:1)\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n"
        '  File "retry.py", line 60, in with_retries\n'
        "eventlake.runtime.retry.RetriesExhausted: etl: writing batch 0 to silver_events: gave up after 2 attempts\n"
        "\tat org.apache.spark.Foo(Foo.scala:1)\n"
    )
    assert describe_failure(RuntimeError(text)) == (
        "eventlake.runtime.retry.RetriesExhausted: etl: writing batch 0 to silver_events: gave up after 2 attempts"
    )
