from __future__ import annotations

import json

from pyspark.sql.streaming.listener import StreamingQueryProgress

from eventlake.progress import format_progress, kafka_lag


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
