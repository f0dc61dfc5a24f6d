"""Table maintenance: a report of the Delta tables and query checkpoints (sizes, files, small files, what VACUUM
would free), OPTIMIZE (small files compacted) and a VACUUM that keeps every file a streaming query still has to
read. See docs/maintenance.md for when to run which.

    scripts/maintain.sh                          # the report; no JVM (delta-rs and the file system)
    scripts/maintain.sh --json
    scripts/maintain.sh optimize                 # refused while a job writes (--force to override)
    scripts/maintain.sh vacuum [--retention-hours 168] [--dry-run]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from eventlake.runtime.config import ConfigError, Settings, load_settings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.running_lock import maintenance_lock

# Files below this size count as small in the report (Delta's OPTIMIZE aims at 1 GiB files).
SMALL_FILE_BYTES = 32 * 1024 * 1024
# Delta's default delta.deletedFileRetentionDuration: VACUUM keeps removed files this long unless told otherwise.
DELTA_DEFAULT_RETENTION = timedelta(days=7)
# Added to the age of the oldest commit a stream still reads: covers the time VACUUM itself takes and clocks
# that differ between the machine that committed and this one.
STREAM_MARGIN = timedelta(hours=1)
# While a job may be writing, a file it wrote for a commit not made yet is in no version: VACUUM would delete
# it if older than the retention. A commit never takes this long.
IN_FLIGHT_FLOOR = timedelta(hours=1)
# A job that wrote a table commit or a checkpoint entry this recently counts as running.
DEFAULT_QUIET = timedelta(minutes=10)


# ---------------------------------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class StoredFile:
    """A file under a table or checkpoint folder: its path relative to the folder, size and modification time."""

    path: str
    size: int
    modified: float


def stored_files(folder: str) -> list[StoredFile]:
    """Every file under ``folder`` (recursively), read through pyarrow's file systems (a local path, s3://,
    gs://, hdfs://); none when there is no such folder."""
    from pyarrow import fs

    try:
        file_system, root = fs.FileSystem.from_uri(folder if "://" in folder else os.path.abspath(folder))
    except Exception as error:  # pyarrow raises ArrowInvalid or OSError for a scheme it cannot open
        raise EnvironmentProblem(f"cannot list {folder}: {error}") from None
    if file_system.get_file_info(root).type != fs.FileType.Directory:
        return []
    infos = file_system.get_file_info(fs.FileSelector(root, recursive=True))
    prefix = root.rstrip("/") + "/"
    return [
        StoredFile(info.path.removeprefix(prefix), info.size or 0, info.mtime.timestamp() if info.mtime else 0.0)
        for info in infos
        if info.type == fs.FileType.File
    ]


def _hidden(path: str) -> bool:
    """Whether Delta leaves the file alone in VACUUM: under a folder or named with ``_`` or ``.`` first."""
    return any(part.startswith(("_", ".")) for part in path.split("/"))


def _subfolders(folder: str) -> list[str]:
    local = Path(folder)
    return sorted(child.name for child in local.iterdir() if child.is_dir()) if local.is_dir() else []


# ---------------------------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class TableReport:
    """One Delta table: its version, the files of that version (live), the log, and what else is on disk.
    ``unreferenced``: data files in no current version (removed by OPTIMIZE or overwrites, or left by failed
    writes): what VACUUM frees once they are older than the retention."""

    name: str
    path: str
    table_id: str
    version: int
    live_files: int
    live_bytes: int
    small_files: int
    log_commits: int
    log_files: int
    log_bytes: int
    disk_files: int
    disk_bytes: int
    unreferenced_files: int
    unreferenced_bytes: int
    newest_commit: float
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointReport:
    """One query's checkpoint. ``offsets``/``commits``: entries of its two logs (Spark keeps the last
    ``spark.sql.streaming.minBatchesToRetain``, 100 by default); ``state_bytes``: its state store's files;
    ``delta_sources``: for each Delta table the query streams (by table id), the oldest version it still has
    to read."""

    job: str
    query: str
    path: str
    files: int
    bytes: int
    offsets: int
    commits: int
    state_bytes: int
    newest_entry: float
    delta_sources: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StorageReport:
    tables_root: str
    checkpoint_root: str
    tables: list[TableReport]
    checkpoints: list[CheckpointReport]


def table_report(name: str, path: str, small_file_bytes: int = SMALL_FILE_BYTES) -> TableReport:
    """The figures of the Delta table at ``path``, from delta-rs and a listing of its folder (no JVM)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    table = DeltaTable(path)
    actions = pa.table(table.get_add_actions(flatten=True))
    live = dict(
        zip(
            (unquote(item) for item in actions.column("path").to_pylist()),
            actions.column("size_bytes").to_pylist(),
            strict=True,
        )
    )
    on_disk = stored_files(path)
    log = [item for item in on_disk if item.path.startswith("_delta_log/")]
    commits = [item for item in log if re.fullmatch(r"_delta_log/\d{20}\.json", item.path)]
    unreferenced = [item for item in on_disk if not _hidden(item.path) and item.path not in live]
    return TableReport(
        name=name,
        path=path,
        table_id=str(table.metadata().id),
        version=table.version(),
        live_files=len(live),
        live_bytes=sum(live.values()),
        small_files=sum(1 for size in live.values() if size < small_file_bytes),
        log_commits=len(commits),
        log_files=len(log),
        log_bytes=sum(item.size for item in log),
        disk_files=len(on_disk),
        disk_bytes=sum(item.size for item in on_disk),
        unreferenced_files=len(unreferenced),
        unreferenced_bytes=sum(item.size for item in unreferenced),
        newest_commit=max((item.modified for item in commits), default=0.0),
        properties=dict(table.metadata().configuration),
    )


def delta_table_paths(tables_root: str) -> dict[str, str]:
    """Name -> path of every Delta table directly under ``tables_root`` (a folder with a ``_delta_log``)."""
    return {
        name: f"{tables_root.rstrip('/')}/{name}"
        for name in _subfolders(tables_root)
        if Path(tables_root, name, "_delta_log").is_dir()
    }


def checkpoint_paths(checkpoint_root: str) -> dict[tuple[str, str], str]:
    """(job, query) -> path of every query checkpoint, laid out as ``<root>/<job>/<query>``."""
    return {
        (job, query): f"{checkpoint_root.rstrip('/')}/{job}/{query}"
        for job in _subfolders(checkpoint_root)
        for query in _subfolders(f"{checkpoint_root}/{job}")
    }


def checkpoint_report(job: str, query: str, path: str) -> CheckpointReport:
    """The figures of one query checkpoint, and the Delta versions it still needs (:func:`needed_versions`)."""
    files = stored_files(path)
    entries = {
        log: {int(name): item for item in files if (name := item.path.removeprefix(f"{log}/")).isdigit()}
        for log in ("offsets", "commits")
    }
    offsets, commits = entries["offsets"], entries["commits"]
    start = _start_entry(sorted(offsets), sorted(commits))
    start_lines = [] if start is None else Path(path, "offsets", str(start)).read_text(encoding="utf-8").splitlines()
    return CheckpointReport(
        job=job,
        query=query,
        path=path,
        files=len(files),
        bytes=sum(item.size for item in files),
        offsets=len(offsets),
        commits=len(commits),
        state_bytes=sum(item.size for item in files if item.path.startswith("state/")),
        newest_entry=max((item.modified for log in entries.values() for item in log.values()), default=0.0),
        delta_sources=needed_versions(start_lines, from_start=not commits),
    )


def _start_entry(offsets: Sequence[int], commits: Sequence[int]) -> int | None:
    """The offsets entry the query's next batch starts from: that of its newest committed batch (a batch begun
    and not committed runs again from there); with none committed, the oldest entry."""
    done = [batch for batch in commits if batch in offsets]
    if done:
        return done[-1]
    return offsets[0] if offsets else None


def needed_versions(offsets_entry: Sequence[str], from_start: bool = False) -> dict[str, int]:
    """Table id -> the oldest version of each Delta table a query still reads, from the lines of the offsets entry
    its next batch starts from (a version line, the batch's metadata, one line per source; a Delta source's
    offset is ``{"reservoirId": table id, "reservoirVersion": v, "index": i, ...}``: version ``v`` is read from
    file ``i + 1`` on, so versions before ``v`` are done). ``from_start``: no batch is committed yet, so the
    query may still read every version (0)."""
    needed: dict[str, int] = {}
    for line in offsets_entry[2:]:
        try:
            offset = json.loads(line)
        except ValueError:
            continue  # "-": a source without an offset yet
        if isinstance(offset, dict) and "reservoirId" in offset and "reservoirVersion" in offset:
            version = 0 if from_start else int(offset["reservoirVersion"])
            table_id = str(offset["reservoirId"])
            needed[table_id] = min(version, needed.get(table_id, version))
    return needed


def storage_report(settings: Settings, small_file_bytes: int = SMALL_FILE_BYTES) -> StorageReport:
    """The report of every table under the tables root and every checkpoint under the checkpoint root."""
    storage = settings.storage
    if "://" not in storage.tables_root and not Path(storage.tables_root).is_dir():
        raise EnvironmentProblem(f"no tables root {storage.tables_root}: run a job first, or set storage.tables_root")
    tables = [
        table_report(name, path, small_file_bytes) for name, path in delta_table_paths(storage.tables_root).items()
    ]
    checkpoints = [
        checkpoint_report(job, query, path) for (job, query), path in checkpoint_paths(storage.checkpoint_root).items()
    ]
    return StorageReport(storage.tables_root, storage.checkpoint_root, tables, checkpoints)


def human_bytes(count: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _columns(header: Sequence[str], rows: Sequence[Sequence[object]], text_last: bool = False) -> list[str]:
    """Rows as text columns: names left-aligned (the first column, and the last when ``text_last``), figures
    right-aligned."""
    cells = [list(header), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[index]) for row in cells) for index in range(len(header))]
    left = {0, len(header) - 1} if text_last else {0}
    return [
        "  ".join(
            cell.ljust(width) if index in left else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in cells
    ]


def format_report(report: StorageReport) -> str:
    """The report as two readable tables: the Delta tables, then the checkpoints."""
    table_rows = [
        (
            table.name,
            table.version,
            table.live_files,
            human_bytes(table.live_bytes),
            table.small_files,
            table.log_commits,
            table.log_files,
            human_bytes(table.log_bytes),
            table.unreferenced_files,
            human_bytes(table.unreferenced_bytes),
            human_bytes(table.disk_bytes),
        )
        for table in report.tables
    ]
    header = (
        "table", "version", "files", "size", "small", "commits", "log files", "log size", "unused", "unused size",
        "on disk",
    )
    lines = _columns(header, table_rows)
    lines.append(
        f"{len(report.tables)} tables: {human_bytes(sum(table.disk_bytes for table in report.tables))} on disk, "
        f"{sum(table.small_files for table in report.tables)} small files (OPTIMIZE), "
        f"{human_bytes(sum(table.unreferenced_bytes for table in report.tables))} in files no version uses (VACUUM)"
    )
    names = {table.table_id: table.name for table in report.tables}
    checkpoint_rows = [
        (
            f"{checkpoint.job}/{checkpoint.query}",
            checkpoint.files,
            human_bytes(checkpoint.bytes),
            checkpoint.offsets,
            checkpoint.commits,
            human_bytes(checkpoint.state_bytes),
            ", ".join(
                f"{names.get(table_id, table_id)} from v{version}"
                for table_id, version in sorted(checkpoint.delta_sources.items())
            ) or "-",
        )
        for checkpoint in report.checkpoints
    ]
    lines.append("")
    columns = ("checkpoint", "files", "size", "offsets", "commits", "state", "streams Delta tables")
    lines.extend(_columns(columns, checkpoint_rows, text_last=True))
    lines.append(
        f"{len(report.checkpoints)} checkpoints: "
        f"{human_bytes(sum(checkpoint.bytes for checkpoint in report.checkpoints))}"
    )
    return "\n".join(lines)


def report_json(report: StorageReport) -> str:
    return json.dumps(dataclasses.asdict(report), indent=2, sort_keys=True)


# ---------------------------------------------------------------------------------------------------------------
# Is a job running?


def activity(report: StorageReport, quiet: timedelta, now: float) -> list[str]:
    """What was written within ``quiet`` before ``now``: table commits and checkpoint entries, each a phrase."""
    recent = [
        (now - table.newest_commit, f"table {table.name} committed") for table in report.tables
    ] + [
        (now - checkpoint.newest_entry, f"query {checkpoint.job}/{checkpoint.query} logged a batch")
        for checkpoint in report.checkpoints
    ]
    return [f"{what} {age:.0f} s ago" for age, what in sorted(recent) if age < quiet.total_seconds()]


# ---------------------------------------------------------------------------------------------------------------
# VACUUM's retention


@dataclass(frozen=True)
class StreamNeed:
    """A query that streams a table and still has to read it from ``version`` on; ``committed_at``: that
    version's commit time, None when the version is not committed yet (the query has read everything)."""

    query: str
    version: int
    committed_at: datetime | None


@dataclass(frozen=True)
class Retention:
    """The retention VACUUM uses, and why (one phrase per rule that set or checked it)."""

    duration: timedelta
    reasons: tuple[str, ...]

    @property
    def hours(self) -> float:
        return self.duration.total_seconds() / 3600


def stream_safe_retention(
    requested: timedelta | None,
    table_default: timedelta,
    needs: Sequence[StreamNeed],
    now: datetime,
    jobs_may_write: bool,
) -> Retention:
    """The retention of one table's VACUUM: the ``requested`` one (else the table's ``table_default``,
    its delta.deletedFileRetentionDuration), raised so that no file a stream still needs is deleted.

    A file a stream reading from version v needs is in version v or later; OPTIMIZE removed it at a commit after
    v, and VACUUM deletes a removed file only when its removal is older than the retention. So a retention of at
    least the age of v's commit (+ :data:`STREAM_MARGIN`) keeps it. ``jobs_may_write``: a job may be writing,
    so files of a commit not made yet must be kept too (:data:`IN_FLIGHT_FLOOR`). Whole hours, rounded up."""
    base = requested if requested is not None else table_default
    rules = [(base, "requested" if requested is not None else "the table's deleted file retention")]
    for need in needs:
        if need.committed_at is None:
            continue
        age = max(now - need.committed_at, timedelta(0))
        rules.append((age + STREAM_MARGIN, f"{need.query} still reads from version {need.version}, "
                                           f"committed {_hours(age)} ago (+{_hours(STREAM_MARGIN)})"))
    if jobs_may_write:
        rules.append((IN_FLIGHT_FLOOR, "a job may be writing files for its next commit"))
    # Delta takes whole hours (and rounds to the nearest): round up.
    duration = timedelta(hours=math.ceil(max(rule for rule, _ in rules).total_seconds() / 3600))
    reasons = tuple(f"{_hours(rule)}: {why}" for rule, why in rules)
    return Retention(duration, reasons)


def _hours(duration: timedelta) -> str:
    return f"{duration.total_seconds() / 3600:.1f} h"


_INTERVAL = re.compile(r"^\s*(?:interval\s+)?(\d+)\s*(second|minute|hour|day|week)s?\s*$", re.IGNORECASE)


def parse_delta_interval(text: str | None, default: timedelta) -> timedelta:
    """A Delta duration property (``interval 7 days``) as a timedelta; ``default`` when unset or unreadable."""
    match = _INTERVAL.match(text or "")
    if match is None:
        return default
    return timedelta(**{f"{match.group(2).lower()}s": int(match.group(1))})


def commit_time(table_path: str, version: int) -> datetime | None:
    """When ``version`` of the table was committed (its commitInfo timestamp, else the file's time); None when
    it is not committed yet. A version whose log file is gone already gives the oldest commit still there."""
    log = Path(table_path, "_delta_log")
    commits = sorted(log.glob("[0-9]" * 20 + ".json"))
    if not commits or version > int(commits[-1].stem):
        return None
    chosen = log / f"{version:020d}.json"
    chosen = chosen if chosen.exists() else commits[0]
    for line in chosen.read_text(encoding="utf-8").splitlines():
        info = json.loads(line).get("commitInfo") if line.strip() else None
        if isinstance(info, dict) and isinstance(info.get("timestamp"), int):
            return datetime.fromtimestamp(info["timestamp"] / 1000, UTC)
    return datetime.fromtimestamp(chosen.stat().st_mtime, UTC)


def stream_needs(table: TableReport, checkpoints: Sequence[CheckpointReport]) -> list[StreamNeed]:
    """The queries whose checkpoints stream ``table`` (matched by table id), with the version each still needs."""
    return [
        StreamNeed(f"{checkpoint.job}/{checkpoint.query}", version, commit_time(table.path, version))
        for checkpoint in checkpoints
        if (version := checkpoint.delta_sources.get(table.table_id)) is not None
    ]


# ---------------------------------------------------------------------------------------------------------------
# OPTIMIZE and VACUUM (Spark)


@contextlib.contextmanager
def session_conf(spark: Any, values: Mapping[str, str]) -> Iterator[None]:
    """Set Spark settings for the block and put back what was there (unset stays unset)."""
    before = {key: spark.conf.get(key, None) for key in values}
    for key, value in values.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def optimize_table(spark: Any, table: TableReport) -> TableReport:
    """Compact the table's small files (one OPTIMIZE commit, ``dataChange=false``: streams reading the table skip
    it); returns the table's figures after."""
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, table.path).optimize().executeCompaction()
    return table_report(table.name, table.path)


def vacuum_conf(spark: Any, retention: Retention) -> dict[str, str]:
    """The Spark settings VACUUM runs with (delta-spark 4.4; measured on 2 cores)."""
    conf = {
        # No commit: with logging on VACUUM adds VACUUM START/END commits, which on a local disk could overwrite
        # a running job's commit (see eventlake.runtime.job_tables); off, VACUUM only deletes files.
        "spark.databricks.delta.vacuum.logging.enabled": "false",
        # Delta 4.4 ignores RETAIN n HOURS (but 0) and uses the table's delta.deletedFileRetentionDuration unless
        # this is off: a retention raised for a stream would be silently dropped.
        "spark.databricks.delta.vacuum.retentionWindowIgnore.enabled": "false",
        # VACUUM lists the table with this many tasks (10,000 by default): 65-95 s a table here, 2-4 s with 2.
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(spark.sparkContext.defaultParallelism),
    }
    if retention.duration < DELTA_DEFAULT_RETENTION:
        # Delta refuses less than the table's retention unless its check is off; the retention was decided
        # by stream_safe_retention, which keeps what streams and running writers need.
        conf["spark.databricks.delta.retentionDurationCheck.enabled"] = "false"
    return conf


def vacuum_table(spark: Any, table: TableReport, retention: Retention, dry_run: bool) -> int:
    """VACUUM the table with ``retention``; returns how many files it deleted (or would, ``dry_run``)."""
    statement = f"VACUUM delta.`{table.path}` RETAIN {retention.hours:.0f} HOURS"
    with session_conf(spark, vacuum_conf(spark, retention)):
        if dry_run:
            return len(spark.sql(f"{statement} DRY RUN").collect())
        spark.sql(statement).collect()
    return table.unreferenced_files - table_report(table.name, table.path).unreferenced_files


def optimize(spark: Any, report: StorageReport, names: Sequence[str], force: bool, quiet: timedelta) -> int:
    """OPTIMIZE the tables (``names``, or all) that have more than one small file, printing a line per table;
    refused (exit 2) while a job may be writing, unless ``force``. Returns the exit code."""
    busy = activity(report, quiet, time.time())
    with maintenance_lock(report.checkpoint_root) as free:
        if not free:
            busy.insert(0, "a job holds the running lock")
        if busy and not force:
            print(
                f"error: not optimizing while a job may be writing ({'; '.join(busy[:3])}): a commit beside a running "
                f"job's can be lost on a local disk. Stop the jobs, wait {quiet.total_seconds() / 60:.0f} minutes "
                "after their last batch, or pass --force if no job writes these tables",
                file=sys.stderr,
            )
            return 2
        for table in _chosen(report.tables, names):
            started = time.monotonic()
            if table.small_files < 2:
                print(f"optimize {table.name}: {table.live_files} files, {table.small_files} small: nothing to do")
                continue
            after = optimize_table(spark, table)
            print(
                f"optimize {table.name}: {table.live_files} -> {after.live_files} files, "
                f"version {after.version} ({time.monotonic() - started:.1f} s)",
                flush=True,
            )
    return 0


def vacuum(
    spark: Any, report: StorageReport, names: Sequence[str], requested: timedelta | None, dry_run: bool,
    quiet: timedelta,
) -> int:
    """VACUUM the tables (``names``, or all) each with its :func:`stream_safe_retention`, printing the retention,
    why, and the files deleted. Returns the exit code."""
    now = datetime.now(UTC)
    jobs_may_write = bool(activity(report, quiet, now.timestamp()))
    with maintenance_lock(report.checkpoint_root) as free:
        jobs_may_write = jobs_may_write or not free
        for table in _chosen(report.tables, names):
            started = time.monotonic()
            table_default = parse_delta_interval(
                table.properties.get("delta.deletedFileRetentionDuration"), DELTA_DEFAULT_RETENTION
            )
            retention = stream_safe_retention(
                requested, table_default, stream_needs(table, report.checkpoints), now, jobs_may_write
            )
            deleted = vacuum_table(spark, table, retention, dry_run)
            print(
                f"vacuum {table.name}: retention {retention.hours:.1f} h ({'; '.join(retention.reasons)}); "
                f"{'would delete' if dry_run else 'deleted'} {deleted} files ({time.monotonic() - started:.1f} s)",
                flush=True,
            )
    return 0


def _chosen(tables: Sequence[TableReport], names: Sequence[str]) -> list[TableReport]:
    known = {table.name: table for table in tables}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise EnvironmentProblem(f"no table {', '.join(unknown)} under the tables root (known: {', '.join(known)})")
    return [known[name] for name in names] if names else list(tables)


# ---------------------------------------------------------------------------------------------------------------
# The command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/maintain.sh", description=__doc__.splitlines()[0])
    parser.add_argument("action", nargs="?", default="report", choices=("report", "optimize", "vacuum"))
    parser.add_argument("--json", action="store_true", help="the report as JSON")
    parser.add_argument("--table", dest="tables", action="append", default=[], help="only this table (repeatable)")
    parser.add_argument("--small-file-mb", type=float, default=SMALL_FILE_BYTES / 1024 / 1024)
    parser.add_argument(
        "--retention-hours", type=float, default=None,
        help="VACUUM's retention (default: the table's, 7 days); raised when a stream still needs older files",
    )
    parser.add_argument("--dry-run", action="store_true", help="VACUUM: count the files, delete none")
    parser.add_argument("--force", action="store_true", help="OPTIMIZE even when a job looks like it is running")
    parser.add_argument(
        "--quiet-minutes", type=float, default=DEFAULT_QUIET.total_seconds() / 60,
        help="a job that committed or logged a batch this recently counts as running (default 10)",
    )
    parser.add_argument("--config", default="conf/local.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if args.retention_hours is not None and args.retention_hours < 0:
        parser.error("--retention-hours must be 0 or more")
    try:
        settings = load_settings(args.config, args.overrides)
        return run(settings, args)
    except (ConfigError, EnvironmentProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2


def run(settings: Settings, args: argparse.Namespace, spark: Any = None) -> int:
    """Run the parsed command on ``settings``' storage; ``spark``: a session to use instead of building one."""
    started = time.monotonic()
    report = storage_report(settings, int(args.small_file_mb * 1024 * 1024))
    if args.action == "report":
        print(report_json(report) if args.json else format_report(report), flush=True)
        print(f"({time.monotonic() - started:.1f} s)", file=sys.stderr)
        return 0
    if spark is None:
        from eventlake.runtime.session import build_spark_session

        spark = build_spark_session(settings.spark)
    quiet = timedelta(minutes=args.quiet_minutes)
    if args.action == "optimize":
        return optimize(spark, report, args.tables, args.force, quiet)
    requested = timedelta(hours=args.retention_hours) if args.retention_hours is not None else None
    return vacuum(spark, report, args.tables, requested, args.dry_run, quiet)


if __name__ == "__main__":
    sys.exit(main())
