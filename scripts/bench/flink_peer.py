"""Benchmark contender "flink_peer": the analytics job or the Yahoo Streaming Benchmark as a Flink SQL job.

Measures what Apache Flink costs on this machine for the same work as eventlake's jobs, with PyFlink's Table
API running Flink SQL (no Python function on any record: the per-record work is Flink's, in its JVM) in a
local mini cluster inside this process, parallelism 2, reading the topic from the earliest offsets to the
latest ones at the start (``scan.bounded.mode = latest-offset``): the job ends when the backlog is read.

``--workload analytics`` (the default), on the contract-v1 events of ``throughput.py``:
- the Kafka source parses each value with Flink's JSON format (``json.ignore-parse-errors``: a value that is
  not JSON, not an object, or has a field of the wrong form, such as a timestamp without ``Z``, is dropped
  without a trace); the event's ``timestamp`` (ISO-8601 in UTC) is the event time, with a watermark 10 minutes
  behind it (``--watermark-minutes``), per Kafka partition as Flink's Kafka source keeps it;
- a filter keeps the rows the contract would (``event_id`` not empty, ``type``, ``source`` and ``data``
  present, ``schema_version = '1'``); missing fields are NULL in Flink's JSON format, so they are dropped here;
- duplicates are dropped by ``event_id`` with Flink's window deduplication (keep the first row per event_id
  and 5-minute window): a duplicate repeats its original's timestamp, so it falls into the same window;
- per 5-minute tumbling window and event type, ``event_count`` and the exact ``COUNT(DISTINCT user_id)``,
  written as CSV files by Flink's filesystem sink; a second, small output counts per window and Kafka
  partition the rows the source produced (and how many of them the filter kept), for the totals below.

``--workload ysb``, on the ad events of ``python -m eventlake.local.ysb``: keep ``event_type = 'view'``, map
``ad_id`` to ``campaign_id`` through ``--campaigns`` (an event-time temporal join on the CSV as a versioned
table, valid from the epoch), count per campaign in 10-second tumbling event-time windows with a 10-second
watermark (conf/gold/ysb.toml), written as CSV files. ``event_time`` must be a number: Flink's watermark
assigner stops the job on a row without an event time.

Exactly once: checkpoints every ``--checkpoint-seconds`` (5) in EXACTLY_ONCE mode hold the Kafka offsets and
the operators' state (Flink's default heap state backend), and the filesystem sink makes its part files
visible only when the checkpoint that covers them completes (in-progress files before that); at the end of
the bounded input Flink takes a last checkpoint, which commits the last files.

The Flink environment is the contender's own: Flink pins numpy, pandas and pyarrow versions of its own, so
``apache-flink`` (FLINK_VERSION) lives in a virtual environment of its own (``data/flink/venv``), made on the
first run, and the Kafka SQL connector is fetched with Maven from ``conf/jars/flink.pom.xml`` into
``jars/flink``. Started with any Python, the script makes sure of both (``--setup-only``: only that) and runs
itself again with that environment's Python.

The last stdout line is one JSON object: the records on the topic that the job read (from the partitions'
offsets), the rows and windows the outputs hold, and the seconds from the job's submission to its end; the
run fails (exit 2 with one stderr line) when the output is empty or does not account for the records.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contender import SetupError, add_common_arguments, require_topic, run_contender

CONTENDER = "flink_peer"
ROOT = Path(__file__).resolve().parents[2]
FLINK_VERSION = "2.2.1"  # the Kafka connector of conf/jars/flink.pom.xml is built for Flink 2.2
# Flink's own Python environment also needs a Kafka client for the topic check and the offsets.
FLINK_REQUIREMENTS = (f"apache-flink=={FLINK_VERSION}", "confluent-kafka>=2.6,<3")
FLINK_PYTHONS = ((3, 9), (3, 12))  # the Pythons apache-flink 2.2 publishes wheels for
VENV = ROOT / "data" / "flink" / "venv"
POM = ROOT / "conf" / "jars" / "flink.pom.xml"
JARS = ROOT / "jars" / "flink"
CAMPAIGNS_CSV = ROOT / "conf" / "dimensions" / "ysb_campaigns.csv"
WORKLOADS = ("analytics", "ysb")
ANALYTICS_WINDOW_MINUTES = 5
YSB_WINDOW_SECONDS = 10
YSB_WATERMARK_SECONDS = 10
PARALLELISM = 2


class RunCheckFailed(Exception):
    """The job ran but its output does not account for its input."""


# The environment: Flink's own virtual environment and the connector jar, made on first use.


def _stamp_matches(stamp: Path, want: str) -> bool:
    return stamp.is_file() and stamp.read_text().strip() == want


def _in_flink_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _run_logged(command: list[str], log: Path, what: str) -> None:
    """Run ``command`` with its output in ``log``; SetupError naming the log when it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    if code != 0:
        raise SetupError(f"{what} failed (exit code {code}); see {log}")


def ensure_venv() -> Path:
    """Flink's virtual environment, made (or brought up to FLINK_REQUIREMENTS) when needed; its Python."""
    python = VENV / "bin" / "python"
    stamp, want = VENV / ".stamp", " ".join(FLINK_REQUIREMENTS)
    if python.is_file() and _stamp_matches(stamp, want):
        return python
    low, high = FLINK_PYTHONS
    if not low <= sys.version_info[:2] <= high:
        raise SetupError(f"apache-flink {FLINK_VERSION} needs Python {low[0]}.{low[1]} to {high[0]}.{high[1]}, "
                         f"this is {sys.version.split()[0]}")
    print(f"{CONTENDER}: installing {', '.join(FLINK_REQUIREMENTS)} into {VENV.relative_to(ROOT)} "
          "(once; about 800 MB)", file=sys.stderr, flush=True)
    log = VENV.parent / "install.log"
    if not python.is_file():
        _run_logged([sys.executable, "-m", "venv", str(VENV)], log, "creating the virtual environment")
    _run_logged([str(python), "-m", "pip", "install", "--disable-pip-version-check", *FLINK_REQUIREMENTS],
                log, "pip install")
    stamp.write_text(want + "\n")
    return python


def ensure_jars() -> list[Path]:
    """The jars of conf/jars/flink.pom.xml in jars/flink, fetched with Maven when the pom changed."""
    stamp = JARS / ".stamp"
    want = hashlib.sha256(POM.read_bytes()).hexdigest()
    if not _stamp_matches(stamp, want):
        if shutil.which("mvn") is None:
            raise SetupError("Maven (mvn) is needed to fetch the Flink Kafka connector; run scripts/setup.sh")
        print(f"{CONTENDER}: fetching the jars of {POM.relative_to(ROOT)} into {JARS.relative_to(ROOT)}",
              file=sys.stderr, flush=True)
        shutil.rmtree(JARS, ignore_errors=True)
        JARS.mkdir(parents=True)
        _run_logged(["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", "-DincludeScope=runtime",
                     f"-DoutputDirectory={JARS}"], JARS.parent / "flink-fetch.log", "mvn dependency:copy-dependencies")
        stamp.write_text(want + "\n")
    jars = sorted(JARS.glob("*.jar"))
    if not jars:
        raise SetupError(f"no jar in {JARS}; delete {stamp} and run again")
    return jars


# The SQL: pure functions of the options, so that they can be read (and tested) without Flink.


def _quote(text: str) -> str:
    """``text`` as a Flink SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _with(options: dict[str, str]) -> str:
    return "WITH (\n  " + ",\n  ".join(f"{_quote(k)} = {_quote(v)}" for k, v in options.items()) + "\n)"


def kafka_options(bootstrap_servers: str, topic: str, group: str) -> dict[str, str]:
    """The Kafka source: from the earliest offsets to the latest ones at the start, values as JSON."""
    return {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": bootstrap_servers,
        "properties.group.id": group,
        "scan.startup.mode": "earliest-offset",
        "scan.bounded.mode": "latest-offset",
        "format": "json",
        "json.ignore-parse-errors": "true",
        "json.timestamp-format.standard": "ISO-8601",
    }


def interval(seconds: float) -> str:
    """``seconds`` as a Flink SQL interval literal, to the millisecond (``INTERVAL '600' SECOND`` is refused:
    more than two digits before the point)."""
    ms = round(seconds * 1000)
    if ms < 0:
        raise ValueError(f"an interval must not be negative, got {seconds}")
    days, ms = divmod(ms, 86_400_000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{ms // 1000:02d}.{ms % 1000:03d}' DAY TO SECOND(3)"


def _csv_sink(path: Path) -> dict[str, str]:
    return {"connector": "filesystem", "path": path.as_uri(), "format": "csv"}


# Each output: its columns, in the order the CSV files hold them.
ANALYTICS_WINDOWS_COLUMNS = ("window_start", "window_end", "event_type", "event_count", "distinct_users")
ANALYTICS_INTAKE_COLUMNS = ("window_start", "kafka_partition", "records", "valid", "first_offset", "last_offset")
YSB_COLUMNS = ("campaign_id", "window_start", "window_end", "views")


def analytics_statements(
    bootstrap_servers: str, topic: str, group: str, out_dir: Path, watermark_minutes: float
) -> tuple[list[str], list[str]]:
    """The analytics job: the DDL statements, then the INSERTs (one statement set, the source read once)."""
    window = f"INTERVAL '{ANALYTICS_WINDOW_MINUTES}' MINUTE"
    valid = ("event_id IS NOT NULL AND event_id <> '' AND `type` IS NOT NULL AND source IS NOT NULL "
             "AND schema_version = '1' AND data IS NOT NULL")
    ddl = [
        f"""CREATE TABLE events (
  event_id STRING, `timestamp` TIMESTAMP_LTZ(3), `type` STRING, source STRING, schema_version STRING,
  data ROW<user_id STRING>,
  `partition` INT METADATA VIRTUAL, `offset` BIGINT METADATA VIRTUAL,
  WATERMARK FOR `timestamp` AS `timestamp` - {interval(watermark_minutes * 60)}
) {_with(kafka_options(bootstrap_servers, topic, group))}""",
        f"""CREATE TABLE windows_out (
  window_start TIMESTAMP(3), window_end TIMESTAMP(3), event_type STRING, event_count BIGINT, distinct_users BIGINT
) {_with(_csv_sink(out_dir / 'windows'))}""",
        f"""CREATE TABLE intake_out (
  window_start TIMESTAMP(3), kafka_partition INT, records BIGINT, `valid` BIGINT, first_offset BIGINT,
  last_offset BIGINT
) {_with(_csv_sink(out_dir / 'intake'))}""",
        f"""CREATE TEMPORARY VIEW windowed AS
SELECT * FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(`timestamp`), {window}))""",
    ]
    inserts = [
        f"""INSERT INTO windows_out
SELECT window_start, window_end, `type`, COUNT(*), COUNT(DISTINCT data.user_id) FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, event_id ORDER BY `timestamp`) AS row_num
  FROM windowed WHERE {valid}
) WHERE row_num = 1
GROUP BY window_start, window_end, `type`""",
        f"""INSERT INTO intake_out
SELECT window_start, `partition`, COUNT(*), COUNT(*) FILTER (WHERE {valid}), MIN(`offset`), MAX(`offset`)
FROM windowed
GROUP BY window_start, window_end, `partition`""",
    ]
    return ddl, inserts


def ysb_statements(
    bootstrap_servers: str, topic: str, group: str, out_dir: Path, campaigns_csv: Path
) -> tuple[list[str], list[str]]:
    """The YSB job: the DDL statements, then its one INSERT. ``campaigns_csv``: ``ad_id,campaign_id`` lines
    without a header (Flink's CSV format has no option to skip one)."""
    kafka = kafka_options(bootstrap_servers, topic, group)
    del kafka["json.timestamp-format.standard"]
    ddl = [
        f"""CREATE TABLE ad_events (
  user_id STRING, page_id STRING, ad_id STRING, ad_type STRING, event_type STRING, event_time STRING,
  ip_address STRING,
  ts AS TO_TIMESTAMP_LTZ(CAST(event_time AS BIGINT), 3),
  WATERMARK FOR ts AS ts - INTERVAL '{YSB_WATERMARK_SECONDS}' SECOND
) {_with(kafka)}""",
        # A versioned table for the event-time temporal join: every ad's campaign holds from the epoch on.
        f"""CREATE TABLE campaigns (
  ad_id STRING, campaign_id STRING,
  valid_from AS TO_TIMESTAMP_LTZ(0, 3),
  WATERMARK FOR valid_from AS valid_from,
  PRIMARY KEY (ad_id) NOT ENFORCED
) {_with({'connector': 'filesystem', 'path': campaigns_csv.as_uri(), 'format': 'csv'})}""",
        f"""CREATE TABLE campaign_windows_out (
  campaign_id STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), `views` BIGINT
) {_with(_csv_sink(out_dir / 'campaign_windows'))}""",
        """CREATE TEMPORARY VIEW campaign_views AS
SELECT e.ts, c.campaign_id
FROM ad_events AS e JOIN campaigns FOR SYSTEM_TIME AS OF e.ts AS c ON e.ad_id = c.ad_id
WHERE e.event_type = 'view'""",
    ]
    inserts = [
        f"""INSERT INTO campaign_windows_out
SELECT campaign_id, window_start, window_end, COUNT(*)
FROM TABLE(TUMBLE(TABLE campaign_views, DESCRIPTOR(ts), INTERVAL '{YSB_WINDOW_SECONDS}' SECOND))
GROUP BY campaign_id, window_start, window_end"""
    ]
    return ddl, inserts


def flink_configuration(jars: Iterable[Path], checkpoint_dir: Path, checkpoint_seconds: float) -> dict[str, str]:
    """The job's Flink settings: local mini cluster of PARALLELISM, exactly-once checkpoints, UTC windows."""
    return {
        "parallelism.default": str(PARALLELISM),
        "pipeline.jars": ";".join(jar.as_uri() for jar in jars),
        "pipeline.name": CONTENDER,
        "execution.checkpointing.interval": f"{round(checkpoint_seconds * 1000)} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": checkpoint_dir.as_uri(),
        "table.local-time-zone": "UTC",
        # The Kafka client's threads log once more after the job's class loader is closed: not a leak to report.
        "classloader.check-leaked-classloader": "false",
    }


# The outputs: committed part files only (Flink names in-progress and pending files with a leading dot).


def committed_files(directory: Path) -> list[Path]:
    """The part files of a filesystem sink's ``directory`` that a checkpoint committed."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))


def read_rows(directory: Path, columns: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """The rows of the CSV part files in ``directory``, as dicts of ``columns``."""
    for path in committed_files(directory):
        with path.open(newline="", encoding="utf-8") as source:
            for values in csv.reader(source):
                if values:
                    if len(values) != len(columns):
                        raise RunCheckFailed(f"{path}: expected {len(columns)} columns, got {values}")
                    yield dict(zip(columns, values, strict=True))


def window_ms(text: str) -> int:
    """A window bound as Flink's CSV writes a TIMESTAMP(3) in UTC (``2026-12-07 04:55:00``), in epoch ms."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def read_campaign_windows(out_dir: Path) -> dict[tuple[str, int], int]:
    """The YSB output: (campaign id, window start ms) -> views, as ``count_views_per_campaign_window`` counts."""
    counts: dict[tuple[str, int], int] = {}
    for row in read_rows(out_dir / "campaign_windows", YSB_COLUMNS):
        key = (row["campaign_id"], window_ms(row["window_start"]))
        if key in counts:
            raise RunCheckFailed(f"campaign window {key} written twice")
        counts[key] = int(row["views"])
    return counts


@dataclass(frozen=True)
class AnalyticsTotals:
    """What the analytics job's two outputs add up to."""

    windows: int
    events_counted: int
    rows_windowed: int
    rows_valid: int

    @classmethod
    def read(cls, out_dir: Path) -> AnalyticsTotals:
        windows = list(read_rows(out_dir / "windows", ANALYTICS_WINDOWS_COLUMNS))
        keys = {(row["window_start"], row["event_type"]) for row in windows}
        if len(keys) != len(windows):
            raise RunCheckFailed("a window and event type written more than once")
        intake = list(read_rows(out_dir / "intake", ANALYTICS_INTAKE_COLUMNS))
        return cls(
            windows=len(windows),
            events_counted=sum(int(row["event_count"]) for row in windows),
            rows_windowed=sum(int(row["records"]) for row in intake),
            rows_valid=sum(int(row["valid"]) for row in intake),
        )


def check_analytics(records: int, totals: AnalyticsTotals) -> None:
    """RunCheckFailed unless the outputs hang together: windows when there were records, every count at most
    the one before it (records >= windowed >= valid >= counted)."""
    if records and not totals.windows:
        raise RunCheckFailed(f"read {records} records but wrote no window")
    chain = [("records", records), ("rows windowed", totals.rows_windowed), ("valid rows", totals.rows_valid),
             ("events counted", totals.events_counted)]
    for (name, value), (next_name, next_value) in itertools.pairwise(chain):
        if next_value > value:
            raise RunCheckFailed(f"{next_name} ({next_value}) exceed {name} ({value})")


def check_ysb(records: int, counts: dict[tuple[str, int], int]) -> None:
    if records and not counts:
        raise RunCheckFailed(f"read {records} records but wrote no campaign window")
    if sum(counts.values()) > records:
        raise RunCheckFailed(f"{sum(counts.values())} views counted from {records} records")


# The run.


def topic_records(bootstrap_servers: str, topic: str) -> int:
    """Records between the earliest and the latest offsets of ``topic``'s partitions: what a bounded read takes.
    SetupError when the broker does not answer or the topic does not exist."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 2})
    # Metadata for all topics, not for this one: asking for a single missing topic may create it.
    require_topic(topic, lambda: admin.list_topics(timeout=10).topics, bootstrap_servers, KafkaException)
    partitions = admin.list_topics(timeout=10).topics[topic].partitions
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"{CONTENDER}-offsets",
                         "enable.auto.commit": False, "log_level": 2})
    try:
        total = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def _campaigns_without_header(source: Path, target: Path) -> None:
    lines = source.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].replace(" ", "") != "ad_id,campaign_id":
        raise SetupError(f"{source}: the first line must be the header ad_id,campaign_id")
    target.write_text("".join(line + "\n" for line in lines[1:] if line.strip()), encoding="utf-8")


def run_flink(ddl: list[str], inserts: list[str], configuration: dict[str, str]) -> float:
    """Run the statements in a local mini cluster; the seconds from the job's submission to its end."""
    import pyflink.java_gateway
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    # PyFlink starts its JVM (the mini cluster) as a child process and never waits for it: its CPU time would be
    # nobody's. Keep the process, so that it can be ended and waited for at the end (see end_jvm).
    launch = pyflink.java_gateway.launch_gateway_server_process

    def launch_and_keep(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = launch(*args, **kwargs)
        JVMS.append(process)
        return process

    pyflink.java_gateway.launch_gateway_server_process = launch_and_keep
    conf = Configuration()
    for key, value in configuration.items():
        conf.set_string(key, value)
    settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(conf).build()
    try:  # Flink's errors come through py4j, each with a Java stack trace
        tables = TableEnvironment.create(settings)
        for statement in ddl:
            tables.execute_sql(statement)
        statements = tables.create_statement_set()
        for insert in inserts:
            statements.add_insert_sql(insert)
        started = time.perf_counter()
        print(f"[{CONTENDER}] job submitted", file=sys.stderr, flush=True)
        statements.execute().wait()
    except Exception as error:
        raise RunCheckFailed(f"the Flink job failed: {one_line(error)}") from error
    return time.perf_counter() - started


JVMS: list[subprocess.Popen[bytes]] = []


def end_jvm(timeout: float = 30.0) -> None:
    """End the JVM PyFlink started and wait for it, so that its CPU time counts as this process's children's:
    its gateway exits when its standard input closes."""
    for process in JVMS:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def one_line(error: BaseException) -> str:
    """A Flink error in one line: the deepest Java cause of a py4j error, else the first line of its text."""
    cause = getattr(error, "java_exception", None)
    if cause is not None:
        while cause.getCause() is not None:
            cause = cause.getCause()
        return str(cause.toString()).splitlines()[0]
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    jars = ensure_jars()
    records = topic_records(args.bootstrap_servers, args.topic)
    if args.expected and records != args.expected:
        raise RunCheckFailed(f"topic {args.topic} holds {records} records, {args.expected} expected")
    if args.state_dir:
        Path(args.state_dir).mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="flink-peer-", dir=args.state_dir))
    out_dir = Path(args.out_dir).resolve() if args.out_dir else state_dir / "out"
    if out_dir.exists() and any(out_dir.iterdir()):
        raise SetupError(f"--out-dir {out_dir} is not empty")
    try:
        configuration = flink_configuration(jars, state_dir / "checkpoints", args.checkpoint_seconds)
        if args.workload == "analytics":
            ddl, inserts = analytics_statements(
                args.bootstrap_servers, args.topic, args.group, out_dir, args.watermark_minutes
            )
        else:
            campaigns = state_dir / "campaigns.csv"
            _campaigns_without_header(Path(args.campaigns), campaigns)
            ddl, inserts = ysb_statements(args.bootstrap_servers, args.topic, args.group, out_dir, campaigns)
        seconds = run_flink(ddl, inserts, configuration)
        result: dict[str, Any] = {
            "contender": CONTENDER,
            "workload": args.workload,
            "flink": FLINK_VERSION,
            "parallelism": PARALLELISM,
            "guarantee": "exactly-once",
            "records": records,
        }
        if args.workload == "analytics":
            totals = AnalyticsTotals.read(out_dir)
            check_analytics(records, totals)
            result |= {
                "windows": totals.windows,
                "events_counted": totals.events_counted,
                # Dropped by the JSON format (not JSON, wrong form) or behind the watermark: Flink does not say.
                "not_windowed": records - totals.rows_windowed,
                "filtered": totals.rows_windowed - totals.rows_valid,
                "duplicates_dropped": totals.rows_valid - totals.events_counted,
            }
        else:
            counts = read_campaign_windows(out_dir)
            check_ysb(records, counts)
            result |= {"windows": len(counts), "views": sum(counts.values())}
        result |= {
            "output_rows": result["windows"],
            "output_dir": str(out_dir) if args.out_dir else None,
            "startup_seconds": round(time.perf_counter() - started - seconds, 3),
            "processing_seconds": round(seconds, 3),
            "records_per_second": round(records / seconds, 1) if seconds else None,
            "stopped_by": "end-of-input",
        }
        return result
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    if "--setup-only" in (sys.argv[1:] if argv is None else argv):
        parser.add_argument("--setup-only", action="store_true")
        args, _ = parser.parse_known_args(argv)
        return args
    add_common_arguments(parser)
    parser.add_argument("--setup-only", action="store_true",
                        help="only make Flink's environment and fetch the connector, then exit")
    parser.add_argument("--workload", choices=WORKLOADS, default="analytics")
    parser.add_argument("--watermark-minutes", type=float, default=10.0,
                        help="analytics: lateness allowed (default: 10, as the Spark job)")
    parser.add_argument("--campaigns", default=str(CAMPAIGNS_CSV), help="ysb: the ad_id,campaign_id CSV")
    parser.add_argument("--checkpoint-seconds", type=float, default=5.0, help="checkpoint interval (default: 5)")
    parser.add_argument("--state-dir", default=None, help="parent of the run's checkpoints (default: system temp)")
    parser.add_argument("--out-dir", default=None,
                        help="where the output files go, kept (default: beside the checkpoints, deleted)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not _in_flink_venv():
        try:
            python = ensure_venv()
            ensure_jars()
        except SetupError as error:
            print(f"{CONTENDER}: {error}", file=sys.stderr)
            return 2
        if args.setup_only:
            print('{"ready": true}')
            return 0
        # The same process (the harness measures it), from here on with Flink's Python.
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *(sys.argv[1:] if argv is None else argv)])
    if args.setup_only:
        print('{"ready": true}')
        return 0
    code = run_contender(CONTENDER, run, args, errors=(RunCheckFailed,))
    sys.stdout.flush()
    sys.stderr.flush()
    end_jvm()
    # Without the interpreter's shutdown: PyFlink's Java objects would call their gone JVM from it.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
