"""Throughput benchmark: eventlake against the limits, the lesson's consumer and a Python peer, on one topic.

    scripts/bench.sh throughput [--events 2000000] [--partitions 4] [--only NAME,...] [--job-set KEY=VALUE]

Produces a backlog of contract-v1 events (about 250 bytes each, 2% exact duplicates, event times spread
over two hours) into a fresh topic, then runs each contender on it one after the other, each a new process
from a cold start with a fresh consumer group or fresh checkpoints:

- ``kafka-perf``: Kafka's own ConsumerPerformance tool (Java) - the raw consume limit;
- ``python-read``: a tight confluent-kafka loop that only counts - how fast Python can read at all;
- ``spark-batch``: one Spark *batch* job doing the analytics job's parse + dedupe + windowed counts;
- ``spark-plain``: the analytics job's outputs as a Spark user would write them in one file (``from_json``,
  a timestamp regex, two streaming queries each reading the topic, Delta's defaults);
- ``eventlake-analytics`` and ``eventlake-etl``: ``spark-submit jobs/*.py`` with ``availableNow``;
- ``lesson``: the lesson's kafka-python consumer (per-record processing and commit), on a prefix;
- ``quixstreams``: the same deduplicated windowed count with quixstreams;
- ``flink``: the same in Flink SQL (``flink_peer.py``: PyFlink, a local mini cluster of parallelism 2, in an
  environment of its own that its first run installs, before anything is measured).

Each process is measured from outside: wall time (cold start included), CPU seconds of the process and the
children it waited for (``wait4``), peak resident memory of its whole process tree (sampled every 0.2 s).
Prints one table and writes the same figures as JSON. The Kafka broker's own CPU is not counted for anyone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from eventlake.local.producer import generate_records, send_records
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.kafka_admin import create_topic, delete_topic

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SPARK_SUBMIT = str(Path(PYTHON).parent / "spark-submit")
BENCH = ROOT / "scripts" / "bench"
CONTENDERS = (
    "kafka-perf", "python-read", "spark-batch", "spark-plain", "eventlake-analytics", "eventlake-etl", "lesson",
    "quixstreams", "flink",
)
REFERENCE = "eventlake-analytics"
# Generated in chunks so that two million records never sit in memory at once.
PRODUCE_CHUNK = 200_000
BACKLOG_SPAN_MINUTES = 120


@dataclass
class Measurement:
    """One contender's run: what it processed and what it cost."""

    contender: str
    what: str
    records: int
    megabytes: float
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    exit_code: int
    result: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def events_per_second(self) -> float:
        return self.records / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.megabytes / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.cpu_seconds / self.records if self.records else 0.0


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a child that ended between listing and reading
            total += member.memory_info().rss
    return total


def run_measured(
    command: list[str], log_dir: Path, name: str, env: dict[str, str] | None = None
) -> tuple[int, float, float, int, str]:
    """Run ``command`` to its end; return exit code, wall seconds, CPU seconds, peak tree RSS bytes and
    its stdout (stdout and stderr are also kept in ``log_dir``)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{name}.out", log_dir / f"{name}.err"
    (log_dir / f"{name}.cmd").write_text(shlex.join(command) + "\n")
    peak = 0
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT, env={**os.environ, **(env or {})})
        watched = psutil.Process(child.pid)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.2):
                try:
                    peak = max(peak, _tree_rss(watched))
                except psutil.Error:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # wait4 rather than Popen.wait: it also returns the CPU time of the process and its waited children.
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, wall, usage.ru_utime + usage.ru_stime, peak, out_path.read_text(errors="replace")


def last_json(stdout: str) -> dict[str, Any]:
    """The last line of ``stdout`` that is a JSON object, or {}."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return {}


@dataclass(frozen=True)
class Backlog:
    """The topic under test and what was produced into it."""

    bootstrap_servers: str
    topic: str
    partitions: int
    records: int
    megabytes: float
    produce_seconds: float


def produce_backlog(
    bootstrap_servers: str, topic: str, events: int, partitions: int, seed: int, malformed_ratio: float = 0.0
) -> Backlog:
    """Create ``topic`` and fill it with ``events`` contract-v1 records (2% duplicates, and ``malformed_ratio``
    malformed ones) over two hours of event time."""
    create_topic(bootstrap_servers, topic, partitions, exist_ok=False)
    span = timedelta(minutes=BACKLOG_SPAN_MINUTES)
    start = datetime.now(UTC) - span - timedelta(minutes=30)
    sent_bytes, seconds = 0, 0.0
    for first in range(0, events, PRODUCE_CHUNK):
        count = min(PRODUCE_CHUNK, events - first)
        records = generate_records(
            count, seed + first, start + span * first / events, span * count / events, duplicate_ratio=0.02,
            malformed_ratio=malformed_ratio,
        )
        sent_bytes += sum(len(r.key or b"") + len(r.value or b"") for r in records)
        seconds += send_records(records, bootstrap_servers, topic).seconds
        print(f"bench: produced {first + count:,} of {events:,} records", file=sys.stderr, flush=True)
    return Backlog(bootstrap_servers, topic, partitions, events, sent_bytes / 1e6, seconds)


def _job_overrides(backlog: Backlog, run_dir: Path, name: str, extra: list[str]) -> list[str]:
    sets = [
        f"kafka.bootstrap_servers={backlog.bootstrap_servers}",
        f"kafka.topic={backlog.topic}",
        "kafka.starting_offsets=earliest",
        f"storage.tables_root={run_dir / name / 'tables'}",
        f"storage.checkpoint_root={run_dir / name / 'checkpoints'}",
        "analytics.trigger=availableNow",
        "etl.trigger=availableNow",
        *extra,
    ]
    return [argument for setting in sets for argument in ("--set", setting)]


def contender_command(name: str, backlog: Backlog, run_dir: Path, args: argparse.Namespace) -> tuple[list[str], str]:
    """The command line that runs contender ``name`` on the backlog, and a short description of its work."""
    group = f"bench-{name}-{int(time.time())}"
    common = ["--bootstrap-servers", backlog.bootstrap_servers, "--topic", backlog.topic, "--group", group,
              "--expected", str(backlog.records)]
    if name == "kafka-perf":
        classpath = str(ROOT / "jars" / "kafka" / "*")
        return [
            "java", "-Xmx512m", "-cp", classpath, "org.apache.kafka.tools.ConsumerPerformance",
            "--bootstrap-server", backlog.bootstrap_servers, "--topic", backlog.topic, "--group", group,
            "--messages", str(backlog.records), "--timeout", "30000", "--hide-header",
        ], "Kafka's ConsumerPerformance (Java): consume only"
    if name == "python-read":
        return [PYTHON, str(BENCH / "kafka_limit.py"), *common], "confluent-kafka loop: consume and count only"
    if name == "spark-batch":
        return [SPARK_SUBMIT, str(BENCH / "spark_batch_limit.py"),
                *_job_overrides(backlog, run_dir, name, args.job_set)], \
            "Spark batch job: parse + dedupe + windowed counts -> Delta"
    if name == "spark-plain":
        return [SPARK_SUBMIT, str(BENCH / "spark_plain.py"), "--bootstrap-servers", backlog.bootstrap_servers,
                "--topic", backlog.topic, "--out", str(run_dir / name)], \
            "the analytics outputs written plainly: from_json, two queries, Delta defaults"
    if name == "eventlake-analytics":
        return [SPARK_SUBMIT, "jobs/analytics.py", *_job_overrides(backlog, run_dir, name, args.job_set)], \
            "jobs/analytics.py, availableNow: windows + dead letters + intake, exactly once"
    if name == "eventlake-etl":
        return [SPARK_SUBMIT, "jobs/etl.py", *_job_overrides(backlog, run_dir, name, args.job_set)], \
            "jobs/etl.py, availableNow: bronze + silver (MERGE dedupe, enrich, PII) + dead letters"
    # Python consumers read a backlog one partition after another, so event time jumps back by the whole
    # span at each switch; a watermark longer than the span makes them count every event, as Spark does.
    peer_watermark = ["--watermark-minutes", str(BACKLOG_SPAN_MINUTES + 60)]
    if name == "lesson":
        limit = ["--max-records", str(args.lesson_records)] if args.lesson_records else []
        return [PYTHON, str(BENCH / "lesson_consumer.py"), *common, *limit, *peer_watermark], \
            "the lesson's kafka-python consumer: per-record windows and commit"
    if name == "quixstreams":
        return [PYTHON, str(BENCH / "quix_peer.py"), *common, *peer_watermark,
                "--state-dir", str(run_dir / name / "state")], \
            "quixstreams: dedupe state + 5-minute windows"
    if name == "flink":
        # Flink's Kafka source keeps a watermark per partition: the Spark job's 10 minutes count every event.
        return [PYTHON, str(BENCH / "flink_peer.py"), *common, "--workload", "analytics",
                "--state-dir", str(run_dir / name / "state"), "--out-dir", str(run_dir / name / "out")], \
            "Flink SQL (PyFlink, local, parallelism 2): dedupe + 5-minute windows -> CSV files, exactly once"
    raise ValueError(f"unknown contender {name!r}; known: {', '.join(CONTENDERS)}")


def prepare_flink() -> None:
    """Make the Flink contender's environment (its own virtual environment, the Kafka connector) outside any
    measurement; the first time it downloads about 800 MB. EnvironmentProblem when it cannot."""
    print("bench: preparing the Flink contender's environment", file=sys.stderr, flush=True)
    done = subprocess.run([PYTHON, str(BENCH / "flink_peer.py"), "--setup-only"], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise EnvironmentProblem(said[-1] if said else f"flink_peer.py --setup-only: exit code {done.returncode}")


def _perf_records(stdout: str) -> tuple[int, dict[str, Any]]:
    """Records consumed, from ConsumerPerformance's CSV line (start, end, MB, MB/s, records, records/s, ...)."""
    for line in reversed(stdout.splitlines()):
        fields = [f.strip() for f in line.split(",")]
        if len(fields) >= 6:
            try:
                return int(fields[4]), {"mb": float(fields[2]), "tool_records_per_second": float(fields[5])}
            except ValueError:
                continue
    return 0, {}


def measure(name: str, backlog: Backlog, run_dir: Path, args: argparse.Namespace) -> Measurement:
    """Run one contender on the backlog and measure it."""
    command, what = contender_command(name, backlog, run_dir, args)
    print(f"bench: running {name}: {what}", file=sys.stderr, flush=True)
    code, wall, cpu, peak, stdout = run_measured(command, run_dir / "logs", name)
    if name == "kafka-perf":
        records, result = _perf_records(stdout)
    else:
        result = last_json(stdout)
        # Spark jobs print no count; the harness checks their tables afterwards (see check_eventlake).
        records = int(result.get("records", backlog.records if name.startswith(("spark", "eventlake")) else 0))
    megabytes = backlog.megabytes * records / backlog.records
    measurement = Measurement(name, what, records, megabytes, wall, cpu, peak / 1e6, code, result)
    if code != 0:
        measurement.note = f"exit code {code}; see {run_dir / 'logs' / name}.err"
    elif name == "flink" and records != backlog.records:
        measurement.note = f"read {records} of {backlog.records} records"
    print(
        f"bench: {name}: {records:,} records in {wall:.1f} s = {measurement.events_per_second:,.0f} events/s, "
        f"CPU {cpu:.1f} s, peak {peak / 1e6:,.0f} MB", file=sys.stderr, flush=True,
    )
    return measurement


def check_eventlake(measurements: list[Measurement], backlog: Backlog, run_dir: Path) -> None:
    """Read the Delta tables the Spark contenders wrote and note any run that did not account for every record."""
    roots = {m.contender: run_dir / m.contender / "tables" for m in measurements if m.contender.startswith("eventlake")}
    if not roots:
        return
    code, _, _, _, stdout = run_measured(
        [SPARK_SUBMIT, str(BENCH / "delta_totals.py"), *map(str, roots.values())], run_dir / "logs", "delta-totals"
    )
    totals = last_json(stdout)
    for measurement in measurements:
        if measurement.contender not in roots:
            continue
        tables = totals.get(str(roots[measurement.contender]), {})
        measurement.result["tables"] = tables
        read = tables.get("intake_batches", {}).get("records")
        bronze = tables.get("bronze_events", {}).get("rows")
        accounted = bronze if measurement.contender == "eventlake-etl" else read
        if code != 0 or accounted != backlog.records:
            measurement.note = (measurement.note + "; " if measurement.note else "") + (
                f"tables account for {accounted} of {backlog.records} records"
            )


def machine() -> dict[str, Any]:
    """Cores, memory and CPU model of this machine, for the record."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "cpu": model,
            "python": platform.python_version(), "os": platform.platform()}


def table(measurements: list[Measurement]) -> str:
    """The measurements as a Markdown table, with ratios to eventlake-analytics."""
    reference = next((m for m in measurements if m.contender == REFERENCE and m.records), None)
    lines = [
        "| contender | records | wall s | events/s | MB/s | CPU s | CPU µs/event | peak MB | events/s × "
        "| CPU/event × | memory × |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def ratio(value: float, base: float | None) -> str:
        return f"{value / base:.2f}" if base else "-"

    for m in measurements:
        lines.append(
            f"| {m.contender} | {m.records:,} | {m.wall_seconds:.1f} | {m.events_per_second:,.0f} | "
            f"{m.mb_per_second:.1f} | {m.cpu_seconds:.1f} | {m.cpu_us_per_event:.1f} | {m.peak_rss_mb:,.0f} | "
            f"{ratio(m.events_per_second, reference and reference.events_per_second)} | "
            f"{ratio(m.cpu_us_per_event, reference and reference.cpu_us_per_event)} | "
            f"{ratio(m.peak_rss_mb, reference and reference.peak_rss_mb)} |"
        )
    return with_notes(lines, [f"- {m.contender}: {m.note}" for m in measurements if m.note])


def bench_parser(mode: str, description: str, contenders: tuple[str, ...]) -> argparse.ArgumentParser:
    """The options every benchmark over a produced topic takes: the broker, the topic's partitions, the
    producer's seed and the contenders to run."""
    parser = argparse.ArgumentParser(prog=f"scripts/bench.sh {mode}", description=description.split("\n\n")[0])
    add = parser.add_argument
    add("--bootstrap-servers", default="127.0.0.1:9092", metavar="HOST:PORT")
    add("--partitions", type=int, default=4, metavar="N", help="partitions of the topic (default: 4)")
    add("--seed", type=int, default=7, metavar="N")
    add("--only", default=",".join(contenders), metavar="NAME,...",
        help=f"contenders to run, of: {', '.join(contenders)}")
    return parser


def with_notes(lines: list[str], notes: list[str]) -> str:
    """A Markdown table's ``lines``, then its ``notes`` (if any) after a blank line."""
    return "\n".join(lines + (["", *notes] if notes else []))


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser("throughput", __doc__, CONTENDERS)
    add = parser.add_argument
    add("--events", type=int, default=2_000_000, metavar="N", help="records in the backlog (default: 2,000,000)")
    add("--lesson-records", type=int, default=5_000, metavar="N",
        help="the lesson's consumer commits every record and is slow: measure it on this prefix (0: all)")
    add("--job-set", action="append", default=[], metavar="KEY=VALUE",
        help="config override for the Spark contenders, e.g. kafka.max_offsets_per_trigger=500000 (repeatable)")
    add("--topic", help="reuse this existing topic (with --events records in it) instead of producing a backlog; "
        "its MB figures then assume 250 bytes a record")
    add("--run-dir", help="where logs, tables and checkpoints go (default: data/bench/throughput-<time>)")
    add("--out", help="JSON file to write (default: <run dir>/throughput.json)")
    add("--keep-topic", action="store_true", help="do not delete the topic at the end")
    return parser.parse_args(argv)


def chosen_contenders(only: str, known: tuple[str, ...]) -> list[str] | None:
    """The contenders named in ``--only``, or None (the error printed) when one is not in ``known``."""
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        print(f"bench: error: unknown contender {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return None
    return names


def make_run_dir(given: str | None, kind: str) -> tuple[str, Path]:
    """A run's time stamp and its folder: ``given``, or data/bench/<kind>-<time>; created."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(given or ROOT / "data" / "bench" / f"{kind}-{stamp}").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    return stamp, run_dir


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    names = chosen_contenders(args.only, CONTENDERS)
    if names is None:
        return 2
    stamp, run_dir = make_run_dir(args.run_dir, "throughput")
    try:
        if "flink" in names:
            prepare_flink()
        if args.topic:
            backlog = Backlog(
                args.bootstrap_servers, args.topic, args.partitions, args.events, args.events * 250 / 1e6, 0.0
            )
        else:
            backlog = produce_backlog(
                args.bootstrap_servers, f"bench-{stamp.lower()}", args.events, args.partitions, args.seed
            )
            print(f"bench: produced {backlog.records:,} records ({backlog.megabytes:,.0f} MB) into {backlog.topic} "
                  f"in {backlog.produce_seconds:.0f} s", file=sys.stderr, flush=True)
        measurements = [measure(name, backlog, run_dir, args) for name in names]
        check_eventlake(measurements, backlog, run_dir)
    except EnvironmentProblem as problem:
        print(f"bench: error: {problem}", file=sys.stderr)
        return 2
    finally:
        if not args.topic and not args.keep_topic and "backlog" in locals():
            delete_topic(args.bootstrap_servers, backlog.topic)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "scripts/bench.sh throughput " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "backlog": asdict(backlog),
        "reference": REFERENCE,
        "results": [
            {**asdict(m), "events_per_second": round(m.events_per_second),
             "mb_per_second": round(m.mb_per_second, 2), "cpu_us_per_event": round(m.cpu_us_per_event, 2)}
            for m in measurements
        ],
    }
    out = Path(args.out or run_dir / "throughput.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(measurements))
    print(f"\nbench: {backlog.records:,} records, {backlog.partitions} partitions, {report['machine']['cores']} cores, "
          f"{report['machine']['memory_gb']} GB; JSON in {out}")
    return 0 if all(m.exit_code == 0 and not m.note for m in measurements) else 1


if __name__ == "__main__":
    sys.exit(main())
