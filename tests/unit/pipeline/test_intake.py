from __future__ import annotations

import json

from chispa import assert_df_equality

from eventlake.pipeline.contract import parse_events
from eventlake.pipeline.intake import count_intake_per_partition
from eventlake.runtime.config import ContractSettings


def test_intake_counts_records_and_offsets_per_partition(spark):
    valid = json.dumps(
        {"event_id": "a", "timestamp": "2026-01-01T10:00:00Z", "source": "web", "schema_version": "1", "type": "click"}
    ).encode()
    raw = spark.createDataFrame(
        [(None, valid, "events", 0, 10), (None, b"nope", "events", 0, 11), (None, valid, "events", 1, 4)],
        "key binary, value binary, topic string, partition int, offset long",
    ).selectExpr("*", "timestamp '2026-01-01 12:00:00' AS timestamp")
    intake = raw.transform(parse_events, ContractSettings()).transform(count_intake_per_partition, "analytics", 7)
    expected = spark.createDataFrame(
        [("analytics", 7, "events", 0, 10, 11, 2, 1, 1), ("analytics", 7, "events", 1, 4, 4, 1, 1, 0)],
        "job string, batch_id long, topic string, partition int, first_offset long, last_offset long,"
        " records long, valid long, invalid long",
    )
    assert_df_equality(intake, expected, ignore_row_order=True, ignore_nullable=True)
