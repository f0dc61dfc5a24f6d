"""YSB benchmark: the gold job on the Yahoo Streaming Benchmark's ad events, per core, beside published figures.

    scripts/bench.sh ysb [--events 1000000] [--cores N] [--partitions 4] [--rate 10000] [--job-set KEY=VALUE]
                         [--with-flink]

Makes sure the local broker answers (starting it when it is down, and stopping it at the end only then),
creates a fresh topic (``ysb-<time>``), produces ``--events`` ad events in YSB's published JSON form
(:mod:`eventlake.local.ysb`: ads of ``conf/dimensions/ysb_campaigns.csv``, event times ``1000/--rate`` ms
apart and all in the past), then runs the gold job on it once, from a cold start with fresh tables and
checkpoints, with ``availableNow``:

    spark-submit jobs/gold.py --config conf/gold/ysb.toml --set gold.source.topic=<topic>
        --set storage.tables_root=<run>/tables --set storage.checkpoint_root=<run>/checkpoints
        --set spark.master=local[<cores>] ...

It measures the job from outside as ``throughput`` does (wall time with the JVM's start, CPU seconds, peak
memory of the process tree), and from inside: the time from the start of the intake query's first batch
with records to the end of the job's last batch, from the queries' progress reports (the job's
``pipeline_metrics``, read afterwards by ``delta_totals.py``, as ``batches`` does). Events/s per core = events /
seconds / cores. Prints both, then the published YSB figures per core (see PUBLISHED) beside them, and writes
the same as JSON. The expected answer (views per campaign and 10-second window) is counted independently and
kept in the JSON for a check of the gold table.

With ``--with-flink`` the same topic is then read by the same query in Flink SQL (``flink_peer.py --workload
ysb``: PyFlink, a local mini cluster of parallelism 2, exactly-once checkpoints, CSV files), measured the same
way from outside and from the job's submission to its end; its output is checked against the expected answer
window by window, and its row is printed beside the gold job's.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flink_peer
from deltalake import DeltaTable
from throughput import (
    BENCH,
    PYTHON,
    ROOT,
    SPARK_SUBMIT,
    last_json,
    machine,
    make_run_dir,
    prepare_flink,
    run_measured,
    with_notes,
)

from eventlake.local import broker as local_broker
from eventlake.local import ysb
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.kafka_admin import admin_client, create_topic, delete_topic, topic_partitions

JOB = "jobs/gold.py"
CONFIG = "conf/gold/ysb.toml"
LOCAL_BOOTSTRAP = "127.0.0.1:9092"


@dataclass(frozen=True)
class Published:
    """A published YSB throughput and the cores it took (see the source for what the run included)."""

    system: str
    events_per_second: float
    cores: int
    setup: str
    source: str

    @property
    def per_core(self) -> float:
        return self.events_per_second / self.cores


# Published YSB figures that can be stated per core. Found in stored copies of these sources (details, and what
# was looked for but not found, in the brief's /tmp/el/ysb_published.md):
# - data Artisans (Jamie Grier), "Extending the Yahoo! Streaming Benchmark", 2016, as restated by Frank McSherry,
#   "The Yahoo Streaming Benchmark", 2018 (github.com/frankmcsherry/blog, posts/2018-02-11.md); hardware from
#   Grier's slides (slideshare "extending-the-yahoo-streaming-benchmark"): 10 nodes x 1 Xeon E3-1230 v2, 4 cores.
# - Drizzle (Venkataraman et al., SOSP 2017; 128-node EC2 cluster), as restated by McSherry: 128 computers, 512
#   cores, 20 M events/s at ~100 ms latency with a workload-specific pre-aggregation, JSON parsed.
# - Structured Streaming (Armbrust et al., SIGMOD 2018: "outperform Apache Flink by up to 2x and Apache Kafka
#   Streams by 90x"), restated with the cluster size ("five machines and forty cores") in a secondary summary.
# - Databricks, "Making Apache Spark the Fastest Open Source Streaming Engine", 2017-06-06: 10 r3.xlarge (40
#   cores), data generated in the framework; 60 M records/s as restated by McSherry.
PUBLISHED = (
    Published("Flink, JSON from Kafka (data Artisans 2016)", 3_000_000, 40,
              "10 nodes x 4 cores; bound by a 1 GbE Kafka link", "Grier 2016, via McSherry 2018"),
    Published("Drizzle (Spark), JSON, 100 ms latency (SOSP 2017)", 20_000_000, 512,
              "128 EC2 machines; no Kafka", "Venkataraman et al. 2017, via McSherry 2018"),
    Published("Flink, generated in job (data Artisans 2016)", 15_000_000, 40,
              "10 nodes x 4 cores; no Kafka", "Grier 2016, via McSherry 2018"),
    Published("Structured Streaming, no JSON (Databricks 2017)", 60_000_000, 40,
              "10 r3.xlarge; data generated in the job", "Databricks blog 2017-06-06, via McSherry 2018"),
    Published("Structured Streaming (SIGMOD 2018)", 65_000_000, 40, "5 machines", "Armbrust et al. 2018"),
    Published("Flink (SIGMOD 2018)", 33_000_000, 40, "5 machines", "Armbrust et al. 2018"),
    Published("Kafka Streams (SIGMOD 2018)", 700_000, 40, "5 machines", "Armbrust et al. 2018"),
)


class EventRates:
    """Events/s of a run with ``events``, ``wall_seconds`` and ``processing_seconds`` (None: not known)."""

    events: int
    wall_seconds: float
    processing_seconds: float | None

    @property
    def wall_events_per_second(self) -> float:
        return self.events / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def processing_events_per_second(self) -> float | None:
        return self.events / self.processing_seconds if self.processing_seconds else None


@dataclass
class YsbRun(EventRates):
    """One run of the gold job on the YSB topic: what it read and what it took."""

    events: int
    cores: int
    topic: str
    partitions: int
    produce_seconds: float
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    exit_code: int = -1
    processing_seconds: float | None = None
    intake_query: str = ""
    records_read: int | None = None
    closed_windows: int | None = None  # the windows in the gold table (the rest are open in the job's state)
    closed_views: int | None = None
    batches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    note: str = ""


@dataclass
class FlinkRun(EventRates):
    """The Flink SQL job's run on the same topic (``flink_peer.py --workload ysb``)."""

    events: int
    cores: int = flink_peer.PARALLELISM
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    exit_code: int = -1
    processing_seconds: float | None = None
    result: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def compare_windows(expected: dict[tuple[str, int], int], got: dict[tuple[str, int], int]) -> str:
    """"" when ``got`` is ``expected``, else what differs, in a few words."""
    if got == expected:
        return ""
    missing = len(expected.keys() - got.keys())
    extra = len(got.keys() - expected.keys())
    wrong = sum(1 for key in expected.keys() & got.keys() if expected[key] != got[key])
    return (f"{len(got)} campaign windows with {sum(got.values())} views, {len(expected)} with "
            f"{sum(expected.values())} expected: {missing} missing, {extra} extra, {wrong} with another count")


def compare_closed_windows(expected: dict[tuple[str, int], int], got: dict[tuple[str, int], int]) -> str:
    """"" when every window in ``got`` (the gold table: the windows its watermark closed) holds the expected
    views, else what differs. The windows not in ``got`` are still open in the job's state: a streaming job
    closes a window once its watermark passes it, and the backlog's last windows wait for later events."""
    extra = len(got.keys() - expected.keys())
    wrong = sum(1 for key in got.keys() & expected.keys() if expected[key] != got[key])
    if not extra and not wrong:
        return ""
    return f"the gold table's closed windows: {extra} not expected, {wrong} with another count"


def read_gold_windows(table_path: Path) -> dict[tuple[str, int], int]:
    """The gold table of ``conf/gold/ysb.toml``: (campaign id, window start ms) -> views; a window written twice
    is an error."""
    counts: dict[tuple[str, int], int] = {}
    windows = DeltaTable(str(table_path)).to_pyarrow_table(columns=["campaign_id", "window_start", "views"])
    for row in windows.to_pylist():
        key = (row["campaign_id"], int(row["window_start"].timestamp() * 1000))
        if key in counts:
            raise ValueError(f"campaign window {key} written twice to {table_path.name}")
        counts[key] = int(row["views"])
    return counts


def processing_span(batches: dict[str, list[dict[str, Any]]]) -> tuple[float, str] | None:
    """Seconds from the start of the intake query's first batch with records to the end of the last batch of
    any query, and the intake query's name; None without a batch with records.

    ``batches``: per query, its batches with ``batch_time`` (start, seconds), ``batch_duration_ms`` and
    ``input_rows`` (as ``delta_totals.py`` gives them). The intake query is the one whose name ends with
    ``intake``, else the one that read the most records.
    """
    read = {query: sum(b["input_rows"] or 0 for b in rows) for query, rows in batches.items()}
    if not any(read.values()):
        return None
    named = [query for query in batches if query.endswith("intake") and read[query]]
    intake = named[0] if named else max(read, key=lambda query: read[query])
    first = min(b["batch_time"] for b in batches[intake] if b["input_rows"] and b["batch_time"] is not None)
    last = max(
        b["batch_time"] + (b["batch_duration_ms"] or 0) / 1000
        for rows in batches.values() for b in rows if b["batch_time"] is not None
    )
    return last - first, intake


def answers(bootstrap_servers: str) -> bool:
    """True when a Kafka broker answers a metadata request at ``bootstrap_servers``."""
    try:
        topic_partitions(admin_client(bootstrap_servers), bootstrap_servers, timeout=3.0)
    except EnvironmentProblem:
        return False
    return True


def ensure_broker(bootstrap_servers: str) -> local_broker.LocalBroker | None:
    """Make sure a broker answers at ``bootstrap_servers``. The local one (scripts/kafka.sh's, data/kafka) is
    started when it is down and returned, for the caller to stop at the end; None when a broker already answered."""
    if answers(bootstrap_servers):
        return None
    if bootstrap_servers != LOCAL_BOOTSTRAP:
        raise EnvironmentProblem(f"no Kafka broker answers at {bootstrap_servers}")
    broker = local_broker.LocalBroker(ROOT / "data" / "kafka")
    print(f"bench: {local_broker.start(broker)}", file=sys.stderr, flush=True)
    return broker


def produce(args: argparse.Namespace, topic: str) -> tuple[float, int, dict[tuple[str, int], int]]:
    """Send the run's events to ``topic``; return the seconds it took, the first event time (ms) and the
    expected answer (views per campaign and window), counted independently. The last event time is a minute
    ago: every event is in the past."""
    campaigns = ysb.read_campaigns_csv(args.campaigns)
    start_ms = int(time.time() * 1000) - 60_000 - ysb.event_time_span_ms(args.events, args.rate)
    started = time.monotonic()
    sent = ysb.send_ad_events(
        args.bootstrap_servers, topic, ysb.ad_events(campaigns, args.events, start_ms, args.rate, args.seed)
    )
    seconds = time.monotonic() - started
    print(f"bench: produced {sent:,} YSB ad events into {topic} in {seconds:.1f} s", file=sys.stderr, flush=True)
    expected = ysb.count_views_per_campaign_window(
        ysb.ad_events(campaigns, args.events, start_ms, args.rate, args.seed), campaigns
    )
    return seconds, start_ms, expected


def job_command(args: argparse.Namespace, topic: str, run_dir: Path) -> list[str]:
    """``spark-submit jobs/gold.py --config <config> --set ...`` for this run."""
    sets = [
        f"gold.source.topic={topic}",
        f"storage.tables_root={run_dir / 'tables'}",
        f"storage.checkpoint_root={run_dir / 'checkpoints'}",
        f"spark.master=local[{args.cores}]",
        f"kafka.bootstrap_servers={args.bootstrap_servers}",
        "kafka.starting_offsets=earliest",
        "gold.trigger=availableNow",
        *args.job_set,
    ]
    return [SPARK_SUBMIT, JOB, "--config", args.config, *[part for s in sets for part in ("--set", s)]]


def _venv_environment() -> dict[str, str]:
    """The project's .venv first on PATH, as a user's shell has it (spark-submit finds Spark through it)."""
    venv = ROOT / ".venv"
    return {"PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(venv)}


def run_job(args: argparse.Namespace, run: YsbRun, run_dir: Path) -> None:
    """Run the gold job on the topic and fill in ``run``: outside figures, then the batches and records read."""
    command = job_command(args, run.topic, run_dir)
    print(f"bench: running {shlex.join(command)}", file=sys.stderr, flush=True)
    code, wall, cpu, peak, stdout = run_measured(command, run_dir / "logs", "gold", env=_venv_environment())
    run.exit_code, run.wall_seconds, run.cpu_seconds, run.peak_rss_mb = code, wall, cpu, peak / 1e6
    if code != 0:
        said = next((line.strip() for line in reversed(stdout.splitlines()) if line.strip()), "")
        run.note = f"exit code {code}{': ' + said if said else ''}; logs in {run_dir / 'logs'}/gold.out and .err"
        return
    tables = str(run_dir / "tables")
    _, _, _, _, stdout = run_measured(
        [SPARK_SUBMIT, str(BENCH / "delta_totals.py"), tables], run_dir / "logs", "delta-totals",
        env=_venv_environment(),
    )
    totals = last_json(stdout).get(tables, {})
    run.batches = totals.get("batches", {})
    run.records_read = totals.get("intake_batches", {}).get("records")
    span = processing_span(run.batches)
    if span is None:
        run.note = "no batch with records in pipeline_metrics: only the wall time is measured"
    else:
        run.processing_seconds, run.intake_query = round(span[0], 3), span[1]
    if run.records_read is not None and run.records_read != run.events:
        run.note = (run.note + "; " if run.note else "") + f"intake_batches holds {run.records_read} records"


def flink_command(args: argparse.Namespace, topic: str, run_dir: Path) -> list[str]:
    """``flink_peer.py --workload ysb`` on the run's topic, its outputs kept under ``<run>/flink``."""
    return [
        PYTHON, str(BENCH / "flink_peer.py"), "--workload", "ysb", "--bootstrap-servers", args.bootstrap_servers,
        "--topic", topic, "--group", f"bench-flink-{topic}", "--expected", str(args.events),
        "--campaigns", str(Path(args.campaigns).resolve()), "--state-dir", str(run_dir / "flink" / "state"),
        "--out-dir", str(run_dir / "flink" / "out"),
    ]


def check_gold_windows(
    args: argparse.Namespace, run: YsbRun, run_dir: Path, expected: dict[tuple[str, int], int]
) -> None:
    """Compare the gold table's windows with the expected answer: each closed window exact, none twice."""
    output = tomllib.loads((ROOT / args.config).read_text())["gold"]["output"]
    got = read_gold_windows(run_dir / "tables" / output)
    run.closed_windows, run.closed_views = len(got), sum(got.values())
    difference = compare_closed_windows(expected, got)
    if difference:
        run.note = (run.note + "; " if run.note else "") + difference


def run_flink(args: argparse.Namespace, topic: str, run_dir: Path, expected: dict[tuple[str, int], int]) -> FlinkRun:
    """Run the Flink SQL job on the topic, measured as the gold job is, and check its output."""
    command = flink_command(args, topic, run_dir)
    print(f"bench: running {shlex.join(command)}", file=sys.stderr, flush=True)
    code, wall, cpu, peak, stdout = run_measured(command, run_dir / "logs", "flink")
    run = FlinkRun(args.events, wall_seconds=wall, cpu_seconds=cpu, peak_rss_mb=peak / 1e6, exit_code=code)
    run.result = last_json(stdout)
    if code != 0:
        said = (run_dir / "logs" / "flink.err").read_text(errors="replace").strip().splitlines()
        run.note = f"Flink: exit code {code}{': ' + said[-1] if said else ''}"
        return run
    run.processing_seconds = run.result.get("processing_seconds")
    difference = compare_windows(expected, flink_peer.read_campaign_windows(run_dir / "flink" / "out"))
    if difference:
        run.note = f"Flink: {difference}"
    return run


def _figure(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _row(job: str, run: YsbRun | FlinkRun) -> tuple[str, float]:
    """A table row for ``run`` and its per-core rate (from the steady part when known, else the wall time;
    0 for a failed run)."""
    ok = run.exit_code == 0
    wall = run.wall_events_per_second if ok else None
    processing = run.processing_events_per_second if ok else None
    row = (
        f"| {job} | {run.events:,} | {run.cores} | {run.wall_seconds:.1f} | {_figure(wall)} | "
        f"{_figure(wall and wall / run.cores)} | {_figure(run.processing_seconds, 1)} | "
        f"{_figure(processing)} | {_figure(processing and processing / run.cores)} |"
    )
    return row, (processing or wall or 0.0) / run.cores


def table(run: YsbRun, flink: FlinkRun | None = None) -> str:
    """The run (and the Flink run), then the published figures per core with the run's per-core rate as a
    fraction of each (from the first batch to the end when the batches are known, else from the wall time;
    none for a failed run)."""
    gold_row, per_core = _row("eventlake gold", run)
    lines = [
        "| job | events | cores | job wall s | events/s (wall) | per core | first batch → end s | events/s "
        "| per core |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        gold_row,
    ]
    flink_per_core = 0.0
    if flink is not None:
        flink_row, flink_per_core = _row("Flink SQL", flink)
        lines.append(flink_row)
    lines += [
        "",
        "| published YSB figure | events/s | cores | events/s per core | this run per core ÷ it |"
        + (" Flink here ÷ it |" if flink is not None else "") + " setup | source |",
        "|---|---:|---:|---:|---:|" + ("---:|" if flink is not None else "") + "---|---|",
    ]
    for figure in PUBLISHED:
        ratio = f"{per_core / figure.per_core:.3f}" if per_core else "-"
        if flink is not None:
            ratio += f" | {flink_per_core / figure.per_core:.3f}" if flink_per_core else " | -"
        lines.append(
            f"| {figure.system} | {figure.events_per_second:,.0f} | {figure.cores} | {figure.per_core:,.0f} | "
            f"{ratio} | {figure.setup} | {figure.source} |"
        )
    processing = run.exit_code == 0 and run.processing_events_per_second
    wall = run.exit_code == 0 and run.wall_events_per_second
    basis = "first batch → end" if processing else "wall time, JVM start included" if wall else ""
    notes = [f"- {run.note}"] if run.note else []
    if basis:
        notes.append(f"- this run per core: {per_core:,.0f} events/s ({basis})")
    if run.closed_windows is not None and not run.note:
        notes.append(f"- the gold table: {run.closed_windows:,} campaign windows with {run.closed_views:,} views, each "
                     "as expected; the later ones are open in the job's state until its watermark passes them")
    if flink is not None:
        if flink.note:
            notes.append(f"- {flink.note}")
        if flink_per_core:
            notes.append(f"- Flink SQL per core: {flink_per_core:,.0f} events/s (its first batch → end column: "
                         "from the job's submission to its end, after the JVM's start and the planning)")
    return with_notes(lines, notes)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench.sh ysb", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--bootstrap-servers", default=LOCAL_BOOTSTRAP, metavar="HOST:PORT", help=f"default: {LOCAL_BOOTSTRAP}")
    add("--events", type=int, default=1_000_000, metavar="N", help="ad events to produce (default: 1,000,000)")
    add("--cores", type=int, default=os.cpu_count() or 1, metavar="N",
        help="the job's spark.master=local[N] (default: this machine's cores)")
    add("--partitions", type=int, default=4, metavar="N", help="partitions of the topic (default: 4)")
    add("--rate", type=float, default=10_000.0, metavar="R",
        help="events per second of event time: event times 1000/R ms apart (default: 10,000)")
    add("--seed", type=int, default=7, metavar="N", help="the events' seed (default: 7)")
    add("--campaigns", default=str(ysb.CAMPAIGNS_CSV), metavar="PATH",
        help="campaigns CSV the events' ads come from (default: conf/dimensions/ysb_campaigns.csv)")
    add("--config", default=CONFIG, metavar="PATH", help=f"the gold job's config (default: {CONFIG})")
    add("--job-set", action="append", default=[], metavar="KEY=VALUE",
        help="another config override for the job, e.g. kafka.max_offsets_per_trigger=200000 (repeatable)")
    add("--run-dir", help="where logs, tables and checkpoints go (default: data/bench/ysb-<time>)")
    add("--keep-topic", action="store_true", help="do not delete the topic at the end")
    add("--with-flink", action="store_true",
        help="then run the same query in Flink SQL on the same topic (flink_peer.py; installs Flink on first use)")
    args = parser.parse_args(argv)
    if args.events < 1 or args.cores < 1 or args.partitions < 1 or not args.rate > 0:
        parser.error("--events, --cores and --partitions must be at least 1, --rate more than 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    missing = [path for path in (JOB, args.config, args.campaigns) if not (ROOT / path).is_file()]
    if missing:
        print(f"bench: error: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    stamp, run_dir = make_run_dir(args.run_dir, "ysb")
    topic = f"ysb-{stamp.lower()}"
    started_broker = None
    topic_made = False
    flink = None
    try:
        if args.with_flink:
            prepare_flink()
        started_broker = ensure_broker(args.bootstrap_servers)
        topic_made = create_topic(args.bootstrap_servers, topic, args.partitions, exist_ok=False)
        produce_seconds, start_ms, expected = produce(args, topic)
        run = YsbRun(args.events, args.cores, topic, args.partitions, round(produce_seconds, 1))
        run_job(args, run, run_dir)
        if run.exit_code == 0:
            check_gold_windows(args, run, run_dir, expected)
        if args.with_flink:
            flink = run_flink(args, topic, run_dir, expected)
    except (EnvironmentProblem, ValueError, OSError) as problem:
        print(f"bench: error: {problem}", file=sys.stderr)
        return 2
    finally:
        if topic_made and not args.keep_topic:
            try:
                delete_topic(args.bootstrap_servers, topic)
            except EnvironmentProblem as problem:
                print(f"bench: {problem}", file=sys.stderr)
        if started_broker is not None:
            print(f"bench: {local_broker.stop(started_broker)} (this run started it)", file=sys.stderr)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "scripts/bench.sh ysb " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "job": job_command(args, topic, run_dir),
        "run": {**asdict(run), "wall_events_per_second": round(run.wall_events_per_second),
                "processing_events_per_second": run.processing_events_per_second and
                round(run.processing_events_per_second)},
        "expected": {"first_event_time_ms": start_ms, "windows": len(expected), "views": sum(expected.values()),
                     "views_per_campaign_window": [[c, w, n] for (c, w), n in sorted(expected.items())]},
        "published": [{**asdict(figure), "per_core": round(figure.per_core)} for figure in PUBLISHED],
    }
    if flink is not None:
        report["flink"] = {**asdict(flink), "command": flink_command(args, topic, run_dir),
                           "wall_events_per_second": round(flink.wall_events_per_second),
                           "processing_events_per_second": flink.processing_events_per_second and
                           round(flink.processing_events_per_second)}
    out = run_dir / "ysb.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(run, flink))
    print(f"\nbench: {run.events:,} events, {run.partitions} partitions, local[{run.cores}] on a machine of "
          f"{report['machine']['cores']} cores; expected {sum(expected.values()):,} views in {len(expected):,} "
          f"campaign windows; JSON in {out}")
    flink_ok = flink is None or (flink.exit_code == 0 and not flink.note)
    return 0 if run.exit_code == 0 and not run.note and flink_ok else 1


if __name__ == "__main__":
    sys.exit(main())
