"""The settings of a job's sections: ``[kafka]``, ``[contract]``, ``[spark]``, ``[storage]``, ``[retry]``,
``[analytics]``, ``[etl]`` and ``[alerts]``, each a frozen dataclass whose defaults are the documented ones
(``docs/configuration.md``, checked by a test).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class KafkaSettings:
    """Where events come from. ``options`` go to Spark's Kafka source as they are (``kafka.*`` keys
    reach the Kafka client); a value written ``env:NAME`` is read from the environment variable NAME,
    so secrets never sit in a config file."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "events"
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int = 0
    min_offsets_per_trigger: int = 0
    max_trigger_delay: timedelta | None = None
    fail_on_data_loss: bool = True
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractSettings:
    """The rules of the event contract that are configurable: the schema versions accepted, the formats
    read (extractors, chosen per record by its content-type header; ``default_format`` when it has none),
    and the limits. An event time may be at most ``max_event_time_ahead`` after its record's Kafka timestamp
    and at most ``max_event_time_ahead_of_job`` after the job's clock (the micro-batch's time): the second
    bound holds when the Kafka timestamp is the producer's own clock (CreateTime) and that clock is wrong."""

    schema_versions: tuple[str, ...] = ("1",)
    extractors: tuple[str, ...] = ("json",)
    default_format: str = "json"
    max_record_bytes: int = 1_048_576
    max_event_time_ahead: timedelta = timedelta(minutes=5)
    max_event_time_ahead_of_job: timedelta = timedelta(minutes=5)
    min_event_time: str = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class SparkSettings:
    """How the SparkSession is built. ``master`` empty leaves it to ``spark-submit --master`` (local[*] without
    one), so one config serves a laptop and a cluster; a master set here wins over spark-submit's.
    ``prometheus`` turns on Spark's UI on ``ui_port`` with its Prometheus endpoints and the streaming
    query metrics."""

    master: str = ""
    app_name: str = "eventlake"
    jars_dir: str = "jars/spark"
    log_level: str = "WARN"
    prometheus: bool = False
    ui_port: int = 4040
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StorageSettings:
    """Where Delta tables and streaming checkpoints live (local paths or any Hadoop URI)."""

    tables_root: str = "data/tables"
    checkpoint_root: str = "data/checkpoints"

    def table_path(self, table: str) -> str:
        return _join(self.tables_root, table)

    def checkpoint_path(self, job: str, query: str) -> str:
        return _join(self.checkpoint_root, f"{job}/{query}")


def _join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


@dataclass(frozen=True)
class AnalyticsSettings:
    """The windowed analytics job. ``slide`` empty means tumbling windows of ``window``;
    ``trigger`` is ``availableNow`` (process the backlog and stop) or an interval like ``30 seconds``;
    ``late_events``, ``max_files_per_trigger``, ``idle_timeout`` and ``rebuild`` as in :class:`GoldSettings`."""

    watermark: timedelta = timedelta(minutes=10)
    window: timedelta = timedelta(minutes=5)
    slide: timedelta | None = None
    trigger: str = "availableNow"
    late_events: bool = False
    max_files_per_trigger: int = 0
    idle_timeout: timedelta | None = None
    rebuild: bool = False


@dataclass(frozen=True)
class EnrichSettings:
    """The dimension table the ETL's ``enrich`` stage joins: a Delta table created from ``dimension_csv``
    when it does not exist yet, joined on ``key``. ``on_miss``: ``keep`` the event with empty dimension
    columns, or send it to ``dead_letter``."""

    dimension_csv: str = "conf/dimensions/pages.csv"
    table: str = "dim_pages"
    key: str = "page"
    on_miss: str = "keep"


@dataclass(frozen=True)
class PiiSettings:
    """Personal data in silver: columns replaced by a salted SHA-256 (``hash``) or left out (``drop``).
    ``salt`` is best given as ``env:NAME``."""

    hash: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    salt: str = ""


@dataclass(frozen=True)
class RetrySettings:
    """Retries of a failed table write, the same for every table of every job: ``max_attempts`` in all,
    waiting ``initial_backoff`` and then twice as long each time, at most ``max_backoff``. Only failures that
    may pass are retried (see :mod:`eventlake.runtime.retry`)."""

    max_attempts: int = 5
    initial_backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class Expectation:
    """A row rule of ``[[etl.expectations]]`` or ``[[gold.expectations]]``: ``rule`` is a Spark SQL condition
    over the rows' columns that a good row meets (NULL counts as not met); a valid row that fails it is kept
    and counted (``action = "warn"``), counted and left out (``drop``), sent to the dead letters with code
    ``EXPECTATION_FAILED`` (``quarantine``), or stops the query (``fail``)."""

    name: str
    rule: str
    action: str = "warn"


@dataclass(frozen=True)
class EtlSource:
    """The topic an ETL flow reads (empty: ``kafka.topic``) and the ``contract`` it reads it with: ``events``
    (the built-in event contract, with ``[contract]``) or the name of a ``[contracts.<name>]`` declaration."""

    topic: str = ""
    contract: str = "events"


@dataclass(frozen=True)
class EtlSettings:
    """A streaming ETL flow. ``name`` names the job, its checkpoints and its tables: ``etl`` (the built-in
    flow: ``bronze_events``, ``silver_events``) or any other (``<name>_bronze``, ``<name>_silver``), and
    ``source`` its topic and contract. Then the transform stages in order, the SQL ``columns`` added after them
    (name -> expression over the rows' columns), the ``data`` fields promoted to typed columns
    (name -> Spark type), and its enrichment and PII rules. (The formats it reads are the contract's
    ``extractors``.) ``silver_dedup_days``: how many event days apart two copies of one ``event_id`` may be
    and still be kept once in silver; each silver MERGE reads that many days of silver either side of the
    batch's event days.

    ``silver_dedup``: how silver keeps each ``event_id`` once. ``merge`` (an insert-only MERGE against
    ``silver_dedup_days`` of silver, in the one ingest query) or ``state`` (a second query reading the topic,
    ``dropDuplicatesWithinWatermark`` on the event id with the ids of the last ``silver_dedup_within`` of the
    job's clock in its state, and an append: a copy arriving later than that after the first is kept again)."""

    name: str = "etl"
    source: EtlSource = field(default_factory=EtlSource)
    trigger: str = "availableNow"
    transforms: tuple[str, ...] = ("normalise", "promote_fields", "enrich", "mask_pii")
    columns: dict[str, str] = field(default_factory=dict)
    promote: dict[str, str] = field(default_factory=dict)
    enrich: EnrichSettings = field(default_factory=EnrichSettings)
    pii: PiiSettings = field(default_factory=PiiSettings)
    silver_dedup_days: int = 1
    silver_dedup: str = "merge"
    silver_dedup_within: timedelta = timedelta(hours=1)
    expectations: tuple[Expectation, ...] = ()


@dataclass(frozen=True)
class AlertRule:
    """One alert rule: ``when`` is a Spark SQL predicate over the contract's columns (``event_type``,
    ``user_id``, ``data`` as a VARIANT...); each event it holds for becomes an alert named ``name``."""

    name: str
    when: str
    severity: str = "medium"


@dataclass(frozen=True)
class AlertsSettings:
    """The alerts job. ``trigger``: ``realTime`` (Spark's Real-Time Mode: each record as it arrives, progress
    checkpointed every ``checkpoint_interval``), an interval like ``1 second`` (micro-batches), or
    ``availableNow``. Alerts go to the Kafka topic ``topic``, invalid records to ``dead_letters_topic``; a
    micro-batch query (``copy_trigger``) copies both into the Delta tables ``alerts`` and ``alerts_dead_letters``."""

    trigger: str = "realTime"
    checkpoint_interval: timedelta = timedelta(minutes=1)
    topic: str = "alerts"
    dead_letters_topic: str = "alerts-dead-letters"
    copy_trigger: str = "10 seconds"
    rules: tuple[AlertRule, ...] = ()
