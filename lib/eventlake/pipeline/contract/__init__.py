"""Contracts: Kafka records read into typed events, each record that breaks its contract marked with an
error code, a message and the stage that refused it.

One engine (:mod:`.engine`) reads every contract, declared in config (``[contracts.<name>]``) or built in
(:mod:`.events`, the StreamingEvent of the design); a format is a module of :mod:`.formats`; the column
functions are in :mod:`.expressions`, the codes in :mod:`.errors`.

Example::

    from eventlake.pipeline.contract import parse_events, valid_events, invalid_records, with_job_clock

    parsed = raw.transform(with_job_clock).transform(parse_events, settings.contract)
    events, dead = parsed.transform(valid_events), parsed.transform(invalid_records)
"""

from eventlake.pipeline.contract.clock import JOB_TIME_COLUMN, RECORDS_READ, job_time, with_job_clock
from eventlake.pipeline.contract.declaration import (
    DECLARED_FORMATS,
    EVENT_TIME_FORMS,
    FIELD_TYPES,
    contract_problems,
    declared_columns,
)
from eventlake.pipeline.contract.engine import CONTENT_TYPE_HEADER, parse_declared, valid_declared_events
from eventlake.pipeline.contract.errors import (
    CONTRACT_STAGE,
    ERROR_COLUMNS,
    EXTRACT_STAGE,
    Check,
    ErrorCode,
    first_failure,
    is_dead_letter,
    is_dropped,
    mark_invalid,
    with_error_columns,
    with_stage_error,
)
from eventlake.pipeline.contract.events import (
    BUILT_IN_CONTRACT,
    EVENT_COLUMNS,
    EXTRACTOR_MEDIA_TYPES,
    EXTRACTORS,
    KAFKA_COLUMNS,
    REQUIRED_STRING_FIELDS,
    events_contract,
    invalid_records,
    named_contract_problems,
    parse_events,
    shipped_events_contract,
    valid_events,
)
from eventlake.pipeline.contract.expressions import ISO_8601_WITH_OFFSET, header_text

__all__ = [
    "BUILT_IN_CONTRACT",
    "CONTENT_TYPE_HEADER",
    "CONTRACT_STAGE",
    "DECLARED_FORMATS",
    "ERROR_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_TIME_FORMS",
    "EXTRACTORS",
    "EXTRACTOR_MEDIA_TYPES",
    "EXTRACT_STAGE",
    "FIELD_TYPES",
    "ISO_8601_WITH_OFFSET",
    "JOB_TIME_COLUMN",
    "KAFKA_COLUMNS",
    "RECORDS_READ",
    "REQUIRED_STRING_FIELDS",
    "Check",
    "ErrorCode",
    "contract_problems",
    "declared_columns",
    "events_contract",
    "first_failure",
    "header_text",
    "invalid_records",
    "is_dead_letter",
    "is_dropped",
    "job_time",
    "mark_invalid",
    "named_contract_problems",
    "parse_declared",
    "parse_events",
    "shipped_events_contract",
    "valid_declared_events",
    "valid_events",
    "with_error_columns",
    "with_job_clock",
    "with_stage_error",
]
