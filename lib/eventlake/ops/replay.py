"""Replay dead letters: send chosen dead letters' raw records to Kafka again, optionally repaired by a named fix,
and mark each one replayed exactly once in ``dead_letter_replays``. No JVM: delta-rs reads and writes the tables.

    scripts/replay.sh --job analytics --error-code MISSING_FIELD --fix fill_schema_version --dry-run
    scripts/replay.sh --job analytics --error-code MISSING_FIELD --fix fill_schema_version

The jobs' dead letters tables are never written here (each has one writer: its job). A dead letter is known by
its Kafka coordinates (topic, partition, offset): a record dead for two jobs that read one topic is sent once.

Exactly once, across crashes: the run first appends ``sending`` rows (its intent, with the target topic's end
offsets), then sends each record with headers naming the original coordinates and the run, waits for every
acknowledgement, and appends ``sent`` rows with the new coordinates. A run that finds another run's ``sending``
rows without an outcome (it crashed) reads the target topic from the recorded end offsets: a record carrying
that run's header is marked ``sent`` where it is, a dead letter not found is ``released`` and may be sent again.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from deltalake import DeltaTable, write_deltalake

from eventlake.ops.lake import local_root
from eventlake.ops.replay_fixes import FIXES, CannotFix, Fix, fix_named
from eventlake.pipeline.analytics import EVENTS_TABLE as ANALYTICS_EVENTS
from eventlake.pipeline.analytics import JOB as ANALYTICS_JOB
from eventlake.pipeline.contract import CONTENT_TYPE_HEADER
from eventlake.pipeline.etl import BRONZE_TABLE
from eventlake.pipeline.etl import JOB as ETL_JOB
from eventlake.runtime.config import ConfigError, Settings, load_settings, parse_utc_time
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import DEAD_LETTERS, job_table
from eventlake.runtime.kafka_admin import librdkafka_options, require_topic

REPLAYS_TABLE = "dead_letter_replays"
REPLAY_OF_HEADER = "eventlake-replay-of"
REPLAY_RUN_HEADER = "eventlake-replay-run"
REPLAY_FIX_HEADER = "eventlake-replay-fix"
SENDING, SENT, RELEASED = "sending", "sent", "released"
TIME_COLUMNS = ("kafka_timestamp", "ingested_at")

REPLAYS_SCHEMA = pa.schema(
    [
        ("job", pa.string()),  # whose dead letters table the record was selected from
        ("topic", pa.string()),  # the dead letter's coordinates: what was replayed
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("error_code", pa.string()),
        ("fix", pa.string()),  # NULL: sent as it was
        ("run_id", pa.string()),
        ("state", pa.string()),  # sending (intent), sent (acknowledged, coordinates known) or released
        ("replayed_at", pa.timestamp("us", tz="UTC")),
        ("to_topic", pa.string()),  # where the copy went (to_partition and to_offset NULL until sent)
        ("to_partition", pa.int32()),
        ("to_offset", pa.int64()),
        ("scan_from", pa.string()),  # sending rows: the target topic's end offsets before sending, JSON
    ]
)

Coordinates = tuple[str, int, int]


def coordinates_text(topic: str, partition: int, offset: int) -> str:
    """``topic/partition/offset``: the value of the ``eventlake-replay-of`` header."""
    return f"{topic}/{partition}/{offset}"


def parse_coordinates(text: str) -> Coordinates:
    """The inverse of :func:`coordinates_text` (a topic name may not hold ``/``, so split from the right)."""
    topic, partition, offset = text.rsplit("/", 2)
    return topic, int(partition), int(offset)


@dataclass(frozen=True)
class Selection:
    """Which dead letters to replay: of ``jobs`` (empty: every job's table), with one of ``error_codes`` (empty:
    any), with ``time_column`` (``kafka_timestamp``: the record's time in Kafka, or ``ingested_at``: when the job
    wrote the dead letter) in [``since``, ``until``)."""

    jobs: tuple[str, ...] = ()
    error_codes: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    time_column: str = "kafka_timestamp"


@dataclass(frozen=True)
class Outgoing:
    """One dead letter to send again: its coordinates, and the record as it will be sent."""

    job: str
    topic: str
    partition: int
    offset: int
    error_code: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    to_topic: str

    @property
    def coordinates(self) -> Coordinates:
        return self.topic, self.partition, self.offset


@dataclass
class ReplayReport:
    """What one replay run did."""

    run_id: str
    selected: int = 0
    unfixable: int = 0
    sent: int = 0
    marked: int = 0
    recovered: int = 0
    released: int = 0
    seconds: float = 0.0
    records: list[Outgoing] = field(default_factory=list)


# ---- reading the tables (delta-rs, no JVM) ----


def _table_path(tables_root: str, table: str) -> str:
    return f"{tables_root.rstrip('/')}/{table}"


def dead_letter_tables(tables_root: str, jobs: Sequence[str] = ()) -> dict[str, str]:
    """Job -> path of the dead letters table of each of ``jobs``, or of every job under a local ``tables_root``
    when ``jobs`` is empty. Raises EnvironmentProblem naming a table that is missing."""
    if not jobs:
        root = local_root(tables_root)
        if root is None:
            raise EnvironmentProblem(f"name the jobs with --job: the tables under {tables_root} cannot be listed here")
        suffix = f"_{DEAD_LETTERS}"
        found = sorted(p.name for p in root.glob(f"*{suffix}") if (p / "_delta_log").is_dir()) if root.is_dir() else []
        if not found:
            raise EnvironmentProblem(f"no dead letters tables under {tables_root} (run a job first)")
        return {name.removesuffix(suffix): _table_path(tables_root, name) for name in found}
    tables = {job: _table_path(tables_root, job_table(job, DEAD_LETTERS)) for job in jobs}
    for job, path in tables.items():
        if not DeltaTable.is_deltatable(path):
            raise EnvironmentProblem(f"no dead letters table for job '{job}' at {path} (has the job run?)")
    return tables


def _scan(path: str, columns: Sequence[str] | None = None) -> pa.RecordBatchReader:
    """The rows of the Delta table at ``path`` as a stream (deletion vectors honoured); read it once."""
    return pa.RecordBatchReader.from_stream(DeltaTable(path).scan(columns=list(columns) if columns else None))


def _columns(path: str) -> list[str]:
    return [column.name for column in DeltaTable(path).schema().fields]


def read_replays(tables_root: str) -> pa.Table:
    """Every row of ``dead_letter_replays``; an empty table of its schema when there is none yet."""
    path = _table_path(tables_root, REPLAYS_TABLE)
    if not DeltaTable.is_deltatable(path):
        return REPLAYS_SCHEMA.empty_table()
    return _scan(path).read_all().select(REPLAYS_SCHEMA.names).cast(REPLAYS_SCHEMA)


def unresolved_intents(replays: pa.Table) -> pa.Table:
    """The ``sending`` rows with no ``sent`` or ``released`` row of the same run and dead letter: a run still
    sending, or one that stopped between its intent and its marks."""
    if not replays.num_rows:
        return replays
    connection = duckdb.connect()
    connection.register("replays", replays)
    return connection.sql(
        """
        SELECT i.* FROM replays i
        WHERE i.state = 'sending' AND NOT EXISTS (
            SELECT 1 FROM replays o
            WHERE o.state IN ('sent', 'released') AND o.run_id = i.run_id
              AND o.topic = i.topic AND o.partition = i.partition AND o.offset = i.offset)
        ORDER BY i.run_id, i.topic, i.partition, i.offset
        """
    ).to_arrow_table()


def taken_coordinates(replays: pa.Table) -> set[Coordinates]:
    """The dead letters a run must not send: replayed (``sent``), or in a run not resolved yet."""
    sent = {
        (row["topic"], row["partition"], row["offset"])
        for row in replays.select(["topic", "partition", "offset", "state"]).to_pylist()
        if row["state"] == SENT
    }
    pending = {(r["topic"], r["partition"], r["offset"]) for r in unresolved_intents(replays).to_pylist()}
    return sent | pending


def select_dead_letters(
    tables: dict[str, str], selection: Selection, taken: set[Coordinates]
) -> list[dict[str, Any]]:
    """The dead letters of ``tables`` (job -> path) that ``selection`` picks and that are not ``taken``, each
    Kafka record once (the first job by name keeps it), ordered by coordinates. Each row: ``job``, ``topic``,
    ``partition``, ``offset``, ``error_code``, ``raw_key``, ``raw_value``, ``content_type`` (from the dead
    letter's ``raw_headers`` when its table keeps them, else None)."""
    if selection.time_column not in TIME_COLUMNS:
        raise ValueError(f"the time column is one of {', '.join(TIME_COLUMNS)}, not '{selection.time_column}'")
    chosen: dict[Coordinates, dict[str, Any]] = {}
    for job in sorted(tables):
        for row in _matching_rows(tables[job], selection):
            coordinates = (row["topic"], row["partition"], row["offset"])
            if coordinates not in taken and coordinates not in chosen:
                content_type = _content_type(row.pop("raw_headers", None))
                chosen[coordinates] = {**row, "job": job, "content_type": content_type}
    return [chosen[coordinates] for coordinates in sorted(chosen)]


def _matching_rows(path: str, selection: Selection) -> list[dict[str, Any]]:
    """The rows of one dead letters table that ``selection`` picks (duckdb over delta-rs's stream)."""
    columns = ["topic", "partition", "offset", "error_code", "raw_key", "raw_value", selection.time_column]
    if "raw_headers" in _columns(path):  # dead letters written before they kept the record's headers have none
        columns.append("raw_headers")
    conditions: list[str] = ["TRUE"]
    params: list[Any] = []
    if selection.error_codes:
        conditions.append(f"error_code IN ({', '.join('?' for _ in selection.error_codes)})")
        params.extend(selection.error_codes)
    if selection.since is not None:
        conditions.append(f"{selection.time_column} >= ?")
        params.append(selection.since)
    if selection.until is not None:
        conditions.append(f"{selection.time_column} < ?")
        params.append(selection.until)
    connection = duckdb.connect()
    connection.register("dead_letters", _scan(path, columns))
    query = f"SELECT * EXCLUDE ({selection.time_column}) FROM dead_letters WHERE {' AND '.join(conditions)}"
    rows: list[dict[str, Any]] = connection.sql(query, params=params).to_arrow_table().to_pylist()
    connection.close()
    return rows


def _content_type(headers: list[dict[str, Any]] | None) -> bytes | None:
    for header in headers or ():
        if header.get("key") == CONTENT_TYPE_HEADER:
            return bytes(header["value"]) if header.get("value") is not None else None
    return None


# ---- what is sent ----


def outgoing_records(
    rows: Sequence[dict[str, Any]], fix: Fix | None, run_id: str, to_topic: str | None
) -> tuple[list[Outgoing], int]:
    """The records to send for the selected ``rows``, repaired by ``fix``, with the replay's headers, and how
    many rows the fix could not repair (left out). ``to_topic`` None: each record to its original topic."""
    outgoing, unfixable = [], 0
    for row in rows:
        value = row["raw_value"]
        if fix is not None:
            try:
                value = fix.apply(value)
            except CannotFix:
                unfixable += 1
                continue
        outgoing.append(
            Outgoing(
                job=row["job"], topic=row["topic"], partition=row["partition"], offset=row["offset"],
                error_code=row["error_code"], key=row["raw_key"], value=value,
                headers=replay_headers(row, fix, run_id), to_topic=to_topic or row["topic"],
            )
        )
    return outgoing, unfixable


def replay_headers(row: dict[str, Any], fix: Fix | None, run_id: str) -> tuple[tuple[str, bytes], ...]:
    """The headers of a replayed record: where it came from, which run sent it, the fix applied, and the
    original content-type when the dead letter kept it (the contract picks the record's format by it)."""
    headers = [
        (REPLAY_OF_HEADER, coordinates_text(row["topic"], row["partition"], row["offset"]).encode()),
        (REPLAY_RUN_HEADER, run_id.encode()),
    ]
    if fix is not None:
        headers.append((REPLAY_FIX_HEADER, fix.name.encode()))
    if row.get("content_type") is not None:
        headers.append((CONTENT_TYPE_HEADER, row["content_type"]))
    return tuple(headers)


def replay_rows(
    records: Sequence[Outgoing],
    *,
    state: str,
    run_id: str,
    fix: str | None,
    at: datetime,
    delivered: dict[Coordinates, tuple[int, int]] | None = None,
    scan_from: dict[str, dict[int, int]] | None = None,
) -> pa.Table:
    """Rows of ``dead_letter_replays`` for ``records``: ``delivered`` maps a record's coordinates to the
    partition and offset of its copy (``sent`` rows); ``scan_from`` the target topics' end offsets (``sending``)."""
    rows = []
    for record in records:
        partition, offset = (delivered or {}).get(record.coordinates, (None, None))
        start = (scan_from or {}).get(record.to_topic)
        rows.append(
            {
                "job": record.job, "topic": record.topic, "partition": record.partition, "offset": record.offset,
                "error_code": record.error_code, "fix": fix, "run_id": run_id, "state": state, "replayed_at": at,
                "to_topic": record.to_topic, "to_partition": partition, "to_offset": offset,
                "scan_from": json.dumps({str(p): o for p, o in sorted(start.items())}) if start is not None else None,
            }
        )
    return pa.Table.from_pylist(rows, schema=REPLAYS_SCHEMA)


def _append_replays(tables_root: str, rows: pa.Table) -> None:
    if rows.num_rows:
        write_deltalake(_table_path(tables_root, REPLAYS_TABLE), rows, mode="append")


# ---- Kafka ----


def _end_offsets(consumer: Any, topic: str) -> dict[int, int]:
    """Partition -> the offset the next record will get, for every partition of ``topic``."""
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}


def _consumer(settings: Settings, run_id: str) -> Any:
    return Consumer(
        {
            **librdkafka_options(settings.kafka.bootstrap_servers, settings.kafka.options),
            "group.id": f"eventlake-replay-{run_id}",  # assigned partitions only: the group commits nothing
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )


def find_replayed(
    settings: Settings, topic: str, scan_from: dict[int, int], run_id: str
) -> dict[Coordinates, tuple[int, int]]:
    """The copies run ``run_id`` left in ``topic`` at or after ``scan_from`` (partition -> offset; a partition
    not in it is read from its start): original coordinates -> (partition, offset) of the first copy."""
    # Asked first: asking a broker for the metadata of a topic it lacks may create it.
    require_topic(settings.kafka.bootstrap_servers, topic, settings.kafka.options)
    consumer = _consumer(settings, uuid.uuid4().hex)
    found: dict[Coordinates, tuple[int, int]] = {}
    try:
        ends = _end_offsets(consumer, topic)
        starts = {p: scan_from.get(p, 0) for p in ends}
        remaining = {p for p in ends if starts[p] < ends[p]}
        if not remaining:
            return found
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in sorted(remaining)])
        while remaining:
            message = consumer.poll(10)
            if message is None:
                raise EnvironmentProblem(f"reading {topic} to resolve replay run {run_id}: no record in 10 s")
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:  # read to its end
                    remaining.discard(message.partition())
                    continue
                raise EnvironmentProblem(f"reading {topic} to resolve replay run {run_id}: {message.error()}")
            headers = dict(message.headers() or ())
            if headers.get(REPLAY_RUN_HEADER) == run_id.encode() and REPLAY_OF_HEADER in headers:
                original = parse_coordinates(headers[REPLAY_OF_HEADER].decode())
                found.setdefault(original, (message.partition(), message.offset()))
            if message.offset() + 1 >= ends[message.partition()]:
                remaining.discard(message.partition())
    finally:
        consumer.close()
    return found


def _send(settings: Settings, records: Sequence[Outgoing]) -> tuple[dict[Coordinates, tuple[int, int]], list[str]]:
    """Send ``records`` with an idempotent producer and wait for every acknowledgement: where each landed, and
    the errors of those that were not acknowledged."""
    producer = Producer(
        {
            **librdkafka_options(settings.kafka.bootstrap_servers, settings.kafka.options),
            # Idempotent with acks=all, as eventlake's producer: a retry inside the run never writes a record twice.
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    delivered: dict[Coordinates, tuple[int, int]] = {}
    errors: list[str] = []

    def on_delivery_of(record: Outgoing) -> Callable[[Any, Any], None]:
        def on_delivery(error: Any, message: Any) -> None:
            if error is not None:
                errors.append(str(error))
            else:
                delivered[record.coordinates] = (message.partition(), message.offset())

        return on_delivery

    for record in records:
        while True:
            try:
                producer.produce(
                    record.to_topic, key=record.key, value=record.value, headers=list(record.headers),
                    on_delivery=on_delivery_of(record),
                )
                break
            except BufferError:  # the local queue is full: serve acknowledgements until there is room
                producer.poll(0.1)
            except KafkaException as error:
                errors.append(str(error.args[0]))
                break
        producer.poll(0)
    unsent = producer.flush(60)
    if unsent:
        errors.append(f"{unsent} records not acknowledged within 60 s")
    return delivered, errors


# ---- a run ----


def new_run_id() -> str:
    """A replay run's id: its start time (UTC) and a random suffix, so ids sort by time and never repeat."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@contextmanager
def _one_replay_at_a_time(tables_root: str) -> Iterator[None]:
    """Hold a lock while a run reads and writes ``dead_letter_replays``: a second run at the same time would take
    the first one's intents for a crashed run's. Local tables roots only; elsewhere, run one replay at a time."""
    root = local_root(tables_root)
    if root is None or not root.is_dir():
        yield
        return
    with open(root / f".{REPLAYS_TABLE}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EnvironmentProblem(f"another replay is running on {tables_root}; run one at a time") from None
        yield


def resolve_unfinished(
    settings: Settings, replays: pa.Table, out: Callable[[str], None] = print, run_id: str | None = None
) -> tuple[int, int]:
    """Give each unresolved intent (of run ``run_id``, or of every run) its outcome: ``sent`` where its copy is
    in the target topic after the end offsets the intent recorded, ``released`` where it is not. Returns how
    many were marked sent and released."""
    intents = [row for row in unresolved_intents(replays).to_pylist() if run_id in (None, row["run_id"])]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in intents:
        runs.setdefault((row["run_id"], row["to_topic"]), []).append(row)
    marked = released = 0
    at = datetime.now(UTC)
    for (run, topic), rows in sorted(runs.items()):
        scan_from = {int(p): o for p, o in json.loads(rows[0]["scan_from"] or "{}").items()}
        found = find_replayed(settings, topic, scan_from, run)
        outcomes = []
        for row in rows:
            where = found.get((row["topic"], row["partition"], row["offset"]))
            state = SENT if where is not None else RELEASED
            to_partition, to_offset = where if where is not None else (None, None)
            outcomes.append(
                {**row, "state": state, "replayed_at": at, "to_partition": to_partition, "to_offset": to_offset,
                 "scan_from": None}
            )
        _append_replays(settings.storage.tables_root, pa.Table.from_pylist(outcomes, schema=REPLAYS_SCHEMA))
        sent_here = sum(1 for row in outcomes if row["state"] == SENT)
        marked, released = marked + sent_here, released + len(outcomes) - sent_here
        out(
            f"resolved run {run}, which stopped before marking: {sent_here} found in {topic} and marked sent,"
            f" {len(outcomes) - sent_here} not sent and released"
        )
    return marked, released


def replay(
    settings: Settings,
    selection: Selection,
    *,
    fix_name: str | None = None,
    to_topic: str | None = None,
    dry_run: bool = False,
    out: Callable[[str], None] = print,
    before_marking: Callable[[], None] | None = None,
) -> ReplayReport:
    """Replay the dead letters ``selection`` picks that were not replayed yet, repaired by the fix ``fix_name``
    (its error codes when the selection names none), to ``to_topic`` (None: each to its original topic), and
    mark each one ``sent`` once. ``dry_run``: only select and report. ``before_marking`` runs between the last
    acknowledgement and the marks (tests make it raise, as a crash there).

    Raises EnvironmentProblem for a missing table or topic, or records not acknowledged; ValueError for an
    unknown fix or time column."""
    started = time.monotonic()
    fix = fix_named(fix_name) if fix_name else None
    if fix is not None and not selection.error_codes:
        selection = Selection(selection.jobs, fix.error_codes, selection.since, selection.until, selection.time_column)
    root = settings.storage.tables_root
    tables = dead_letter_tables(root, selection.jobs)
    report = ReplayReport(new_run_id())
    with _one_replay_at_a_time(root):
        replays = read_replays(root)
        pending = unresolved_intents(replays).num_rows
        if pending and dry_run:
            out(f"{pending} dead letters are in a replay run that stopped before marking; a replay resolves them first")
        elif pending:
            report.recovered, report.released = resolve_unfinished(settings, replays, out)
            replays = read_replays(root)
        rows = select_dead_letters(tables, selection, taken_coordinates(replays))
        records, report.unfixable = outgoing_records(rows, fix, report.run_id, to_topic)
        report.selected, report.records = len(rows), records
        codes = ", ".join(selection.error_codes) or "any error code"
        out(
            f"selected {len(rows)} dead letters not replayed yet ({', '.join(sorted(tables))}; {codes})"
            + (f"; {report.unfixable} of them not fixable by {fix.name}, left as they are" if fix else "")
        )
        if dry_run:
            for record in records:
                out(_describe(record))
        elif records:
            _send_and_mark(settings, records, report, fix_name, out, before_marking)
    report.seconds = time.monotonic() - started
    return report


def _send_and_mark(
    settings: Settings,
    records: Sequence[Outgoing],
    report: ReplayReport,
    fix_name: str | None,
    out: Callable[[str], None],
    before_marking: Callable[[], None] | None,
) -> None:
    """Intents, send, marks: see the module's docstring."""
    root, run_id = settings.storage.tables_root, report.run_id
    topics = sorted({record.to_topic for record in records})
    for topic in topics:
        require_topic(settings.kafka.bootstrap_servers, topic, settings.kafka.options)
    consumer = _consumer(settings, run_id)
    try:
        scan_from = {topic: _end_offsets(consumer, topic) for topic in topics}
    finally:
        consumer.close()
    rows_of_this_run = functools.partial(replay_rows, run_id=run_id, fix=fix_name)
    _append_replays(root, rows_of_this_run(records, state=SENDING, at=datetime.now(UTC), scan_from=scan_from))
    delivered, errors = _send(settings, records)
    report.sent = len(delivered)
    out(f"sent {len(delivered)} records to {', '.join(topics)} (run {run_id})")
    if before_marking is not None:
        before_marking()
    acknowledged = [record for record in records if record.coordinates in delivered]
    _append_replays(root, rows_of_this_run(acknowledged, state=SENT, at=datetime.now(UTC), delivered=delivered))
    report.marked = len(acknowledged)
    out(f"marked {len(acknowledged)} dead letters replayed in {REPLAYS_TABLE}")
    if errors:
        # A record not acknowledged may still have been written: look for it in the topic before giving up on it.
        found, released = resolve_unfinished(settings, read_replays(root), out, run_id=run_id)
        report.marked, report.released = report.marked + found, report.released + released
        raise EnvironmentProblem(
            f"{len(errors)} records were not acknowledged by Kafka at {settings.kafka.bootstrap_servers} (first"
            f" error: {errors[0]}); {found} of them were found in the topic and marked, {released} were released"
            " and will be sent by the next replay"
        )


def _describe(record: Outgoing) -> str:
    value = (record.value or b"").decode("utf-8", errors="replace")
    value = value if len(value) <= 100 else value[:97] + "..."
    original = coordinates_text(record.topic, record.partition, record.offset)
    return f"  {record.job} {original} {record.error_code} -> {record.to_topic}: {value}"


# ---- figures for the reconciliation ----


@dataclass(frozen=True)
class ReplayFigures:
    """One job's dead letters and their replays, each Kafka record once (by its coordinates).

    ``replayed`` = ``arrived_valid`` (the copy is among the job's valid events) + ``dead_again`` (the copy is a
    dead letter of the job) + ``not_read`` (the job has not read the copy yet, or does not read its topic);
    ``dead_letters`` = ``replayed`` + ``still_open``. ``pending``: open dead letters in a replay run that stopped
    before marking (the next replay resolves them). ``marked_twice``: dead letters with two ``sent`` rows (0)."""

    job: str
    dead_letters: int
    replayed: int
    arrived_valid: int
    dead_again: int
    not_read: int
    still_open: int
    pending: int
    marked_twice: int

    @property
    def adds_up(self) -> bool:
        return (
            self.replayed == self.arrived_valid + self.dead_again + self.not_read
            and self.dead_letters == self.replayed + self.still_open
            and self.marked_twice == 0
        )


def figures_tables(job: str) -> tuple[str | None, str | None]:
    """``(valid_table, read_table)`` of ``job`` for :func:`replay_figures`: the analytics job's and a gold job's
    ``<job>_events`` hold its valid events; the ETL's ``bronze_events`` every record it read."""
    if job == ANALYTICS_JOB:
        return ANALYTICS_EVENTS, None
    if job == ETL_JOB:
        return None, BRONZE_TABLE
    return f"{job}_events", None


def replay_figures(
    tables_root: str, job: str, *, valid_table: str | None = None, read_table: str | None = None
) -> ReplayFigures:
    """The replay figures of ``job`` from its dead letters, ``dead_letter_replays`` and either ``valid_table`` (its
    valid events) or ``read_table`` (every record it read: valid = read and not a dead letter), both with
    ``topic``, ``partition``, ``offset``; neither given: :func:`figures_tables`. Missing tables count as empty."""
    if valid_table is None and read_table is None:
        valid_table, read_table = figures_tables(job)
    dead = _coordinate_set(_table_path(tables_root, job_table(job, DEAD_LETTERS)))
    replays = read_replays(tables_root)
    copies: dict[Coordinates, list[Coordinates]] = {}
    for row in replays.to_pylist():
        if row["state"] == SENT and (row["topic"], row["partition"], row["offset"]) in dead:
            copy = (row["to_topic"], row["to_partition"], row["to_offset"])
            copies.setdefault((row["topic"], row["partition"], row["offset"]), []).append(copy)
    pending = {(r["topic"], r["partition"], r["offset"]) for r in unresolved_intents(replays).to_pylist()} & dead
    first_copies = {copy[0] for copy in copies.values()}
    events_table = valid_table or read_table
    found = _found_among(_table_path(tables_root, events_table), first_copies) if events_table else set()
    dead_again = first_copies & dead
    arrived_valid = found - dead if read_table and not valid_table else found
    not_read = first_copies - arrived_valid - dead_again
    return ReplayFigures(
        job=job,
        dead_letters=len(dead),
        replayed=len(copies),
        arrived_valid=len(arrived_valid),
        dead_again=len(dead_again),
        not_read=len(not_read),
        still_open=len(dead) - len(copies),
        pending=len(pending - copies.keys()),
        marked_twice=sum(1 for found_copies in copies.values() if len(found_copies) > 1),
    )


def _coordinate_set(path: str) -> set[Coordinates]:
    """The (topic, partition, offset) of every row of the Delta table at ``path`` (empty when there is none)."""
    if not DeltaTable.is_deltatable(path):
        return set()
    rows = _scan(path, ["topic", "partition", "offset"]).read_all().to_pylist()
    return {(row["topic"], row["partition"], row["offset"]) for row in rows}


def _found_among(path: str, wanted: set[Coordinates]) -> set[Coordinates]:
    """Those of ``wanted`` that are rows of the Delta table at ``path`` (streamed once through duckdb)."""
    if not wanted or not DeltaTable.is_deltatable(path):
        return set()
    topics, partitions, offsets = zip(*sorted(wanted), strict=True)
    connection = duckdb.connect()
    connection.register(
        "wanted",
        pa.table({"topic": list(topics), "partition": pa.array(partitions, pa.int32()), "offset": list(offsets)}),
    )
    connection.register("events", _scan(path, ["topic", "partition", "offset"]))
    rows = connection.sql(
        "SELECT DISTINCT w.topic, w.partition, w.offset FROM wanted w"
        " JOIN events e ON e.topic = w.topic AND e.partition = w.partition AND e.offset = w.offset"
    ).fetchall()
    connection.close()
    return {(topic, partition, offset) for topic, partition, offset in rows}


# ---- the command ----


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/replay.sh",
        description="Send dead letters to Kafka again (optionally repaired by a named fix), each exactly once.",
        epilog="fixes: " + "; ".join(f"{f.name} ({', '.join(f.error_codes)}): {f.summary}" for f in FIXES.values()),
    )
    add = parser.add_argument
    add("--job", dest="jobs", action="append", default=[], help="whose dead letters (repeatable; default: every job)")
    add("--error-code", dest="error_codes", action="append", default=[], metavar="CODE",
        help="only these error codes (repeatable; default: the fix's codes, or any)")
    add("--since", metavar="TIME", help="only dead letters whose --time-column is at or after TIME (ISO-8601, UTC)")
    add("--until", metavar="TIME", help="only dead letters whose --time-column is before TIME")
    add("--time-column", choices=TIME_COLUMNS, default="kafka_timestamp",
        help="kafka_timestamp (the record's time in Kafka, the default) or ingested_at (when the job wrote it)")
    add("--fix", metavar="NAME", help="repair each raw value with this fix before sending")
    add("--topic", help="send to this topic (default: each record's original topic)")
    add("--dry-run", action="store_true", help="list what would be sent; send and mark nothing")
    add("--config", default="conf/local.toml")
    add("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The replay CLI: progress lines on stdout; exit 2 with one line on stderr for a user or environment error."""
    args = _arguments(argv)
    try:
        settings = load_settings(args.config, args.overrides)
        selection = Selection(
            jobs=tuple(args.jobs),
            error_codes=tuple(args.error_codes),
            since=parse_utc_time(args.since, "--since") if args.since else None,
            until=parse_utc_time(args.until, "--until") if args.until else None,
            time_column=args.time_column,
        )
        report = replay(settings, selection, fix_name=args.fix, to_topic=args.topic, dry_run=args.dry_run)
    except (ConfigError, EnvironmentProblem, ValueError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except KafkaException as error:
        print(f"error: Kafka at the configured bootstrap servers: {error.args[0]}", file=sys.stderr)
        return 2
    print(f"done in {report.seconds:.2f} s" + (" (dry run: nothing sent or marked)" if args.dry_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
