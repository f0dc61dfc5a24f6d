"""A single-node Apache Kafka broker (KRaft) on 127.0.0.1, run from the jars scripts/setup.sh fetched.

Used by ``scripts/kafka.sh`` (start, stop, status, create-topic) and by the test suite (one broker per run).
Everything it writes (config, data, log, pid) lives under one data folder.
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from eventlake.local import daemons
from eventlake.local.daemons import launch, port_in_use, tail, terminate
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.kafka_admin import TIMESTAMP_TYPES, admin_client, create_topic, delete_topic, topic_partitions

PROJECT_ROOT = Path(__file__).resolve().parents[3]

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
"""


@dataclass(frozen=True)
class LocalBroker:
    """Where a local broker listens and keeps its files."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    jars_dir: Path = PROJECT_ROOT / "jars" / "kafka"
    heap: str = "512m"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "logs"


def running_pid(broker: LocalBroker) -> int | None:
    """The pid of this folder's broker process if it is alive, else None."""
    return daemons.running_pid(broker.pid_file)


def is_answering(broker: LocalBroker, timeout: float = 2.0) -> bool:
    """True when a broker answers a metadata request on the broker's port."""
    try:
        topic_partitions(admin_client(broker.bootstrap_servers), broker.bootstrap_servers, timeout=timeout)
    except EnvironmentProblem:
        return False
    return True


def _write_config(broker: LocalBroker) -> None:
    broker.properties_file.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{broker.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{broker.port},CONTROLLER://127.0.0.1:{broker.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{broker.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={broker.log_dirs}",
                "num.partitions=4",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "",
            ]
        )
    )
    (broker.data_dir / "log4j2.properties").write_text(_LOG4J2)


def _java(broker: LocalBroker, main_class: str, *args: str) -> list[str]:
    if not any(broker.jars_dir.glob("kafka_2.13-*.jar")):
        raise EnvironmentProblem(f"the Kafka broker jars are missing in {broker.jars_dir}: run scripts/setup.sh")
    return [
        "java",
        f"-Xmx{broker.heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={broker.data_dir / 'log4j2.properties'}",
        "-cp",
        f"{broker.jars_dir}/*",
        main_class,
        *args,
    ]


def _format_storage(broker: LocalBroker) -> None:
    if (broker.log_dirs / "meta.properties").exists():
        return
    cluster_id = "-"
    while cluster_id.startswith("-"):  # the storage tool would read a leading "-" as an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    command = _java(
        broker, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(broker.properties_file), "--standalone"
    )
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise EnvironmentProblem(f"formatting the broker's storage failed: {result.stderr.strip() or result.stdout}")


def start(broker: LocalBroker, timeout: float = 90.0) -> str:
    """Start the broker in the background and wait until it answers; return a one-line status.

    Raises EnvironmentProblem (with the log's path) when a port is taken or the broker does not come up.
    """
    if running_pid(broker) and is_answering(broker):
        return f"Kafka broker already running at {broker.bootstrap_servers} (pid {running_pid(broker)})"
    for port in (broker.port, broker.controller_port):
        if port_in_use(port):
            raise EnvironmentProblem(
                f"port {port} on 127.0.0.1 is already in use: another broker or program holds it. "
                f"Stop it, or choose other ports (scripts/kafka.sh start --port N --controller-port M)."
            )
    broker.data_dir.mkdir(parents=True, exist_ok=True)
    _write_config(broker)
    _format_storage(broker)
    process = launch(_java(broker, "kafka.Kafka", str(broker.properties_file)), broker.log_file, broker.pid_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EnvironmentProblem(
                f"the Kafka broker exited with code {process.returncode} while starting; "
                f"its log is {broker.log_file}:\n{tail(broker.log_file)}"
            )
        if is_answering(broker, timeout=1.0):
            return f"Kafka broker running at {broker.bootstrap_servers} (pid {process.pid}, log {broker.log_file})"
        time.sleep(0.5)
    stop(broker)
    raise EnvironmentProblem(
        f"the Kafka broker did not answer within {timeout:.0f} s; its log is {broker.log_file}:\n"
        f"{tail(broker.log_file)}"
    )


def stop(broker: LocalBroker, timeout: float = 30.0) -> str:
    """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); return a one-line status."""
    pid = terminate(broker.pid_file, timeout)
    return "Kafka broker is not running" if pid is None else f"Kafka broker stopped (pid {pid})"


def status(broker: LocalBroker) -> tuple[bool, str]:
    """(is it up, a one-line description with topics and partition counts)."""
    pid = running_pid(broker)
    if pid is None:
        return False, f"Kafka broker is not running (data in {broker.data_dir})"
    try:
        topics = topic_partitions(admin_client(broker.bootstrap_servers), broker.bootstrap_servers, timeout=5)
    except EnvironmentProblem:
        return False, f"Kafka broker process {pid} is alive but does not answer; see {broker.log_file}"
    listed = ", ".join(
        f"{name} ({count} partitions)" for name, count in sorted(topics.items()) if not name.startswith("__")
    )
    return True, f"Kafka broker running at {broker.bootstrap_servers} (pid {pid}); topics: {listed or 'none'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/kafka.sh", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=str(PROJECT_ROOT / "data" / "kafka"), help="broker files (default: data/kafka)"
    )
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--controller-port", type=int, default=9093)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start the broker in the background and wait until it answers")
    commands.add_parser("stop", help="stop the broker")
    commands.add_parser("status", help="is it running, and which topics it has (exit 1 when down)")
    create = commands.add_parser("create-topic", help="create a topic (nothing happens if it exists)")
    create.add_argument("topic")
    create.add_argument("--partitions", type=int, default=4)
    create.add_argument(
        "--timestamp-type",
        choices=TIMESTAMP_TYPES,
        help="the topic's message.timestamp.type: whose clock its Kafka timestamps are, the producer's (CreateTime, "
        "the broker's default) or the broker's (LogAppendTime: a producer's wrong clock cannot move them)",
    )
    remove = commands.add_parser("delete-topic", help="delete a topic")
    remove.add_argument("topic")
    args = parser.parse_args(argv)
    broker = LocalBroker(Path(args.data_dir).resolve(), port=args.port, controller_port=args.controller_port)
    try:
        if args.command == "start":
            print(start(broker))
        elif args.command == "stop":
            print(stop(broker))
        elif args.command == "status":
            up, line = status(broker)
            print(line)
            return 0 if up else 1
        elif args.command == "create-topic":
            created = create_topic(
                broker.bootstrap_servers, args.topic, args.partitions, timestamp_type=args.timestamp_type
            )
            outcome = f"created with {args.partitions} partitions" if created else "already exists"
            if created and args.timestamp_type:
                outcome += f" and {args.timestamp_type} timestamps"
            print(f"topic '{args.topic}' {outcome}")
        elif args.command == "delete-topic":
            delete_topic(broker.bootstrap_servers, args.topic)
            print(f"topic '{args.topic}' deleted")
    except EnvironmentProblem as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
