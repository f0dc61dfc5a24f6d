"""A Spark standalone cluster on 127.0.0.1: one master and N workers, started with the ``spark-class`` of the
installed pyspark, to try (and test) the jobs the way they run on a real cluster.

Used by ``scripts/cluster.sh`` (start, stop, status) and by the cluster integration test. Everything it
writes (logs, pids, the workers' application folders) lives under one data folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pyspark

from eventlake.local.daemons import launch, port_in_use, running_pid, tail, terminate
from eventlake.runtime.errors import EnvironmentProblem

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class LocalCluster:
    """Where a local standalone cluster listens and keeps its files. Each worker offers ``worker_cores``
    cores and ``worker_memory`` to executors; worker i's web UI is on ``webui_port + i``."""

    data_dir: Path
    port: int = 7077
    webui_port: int = 8080
    workers: int = 2
    worker_cores: int = 1
    worker_memory: str = "2g"

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    @property
    def webui_url(self) -> str:
        return f"http://127.0.0.1:{self.webui_port}"

    @property
    def names(self) -> list[str]:
        return ["master", *(f"worker-{number}" for number in range(1, self.workers + 1))]

    def log_file(self, name: str) -> Path:
        return self.data_dir / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.data_dir / f"{name}.pid"

    def work_dir(self, worker: str) -> Path:
        """Where a worker keeps its executors' folders (``app-*/<executor>/stdout|stderr``)."""
        return self.data_dir / worker


def master_state(cluster: LocalCluster, timeout: float = 2.0) -> dict | None:
    """The master's state as its web UI serves it in JSON (workers, applications), or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{cluster.webui_url}/json/", timeout=timeout) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def alive_workers(cluster: LocalCluster) -> int:
    state = master_state(cluster)
    return int(state.get("aliveworkers", 0)) if state else 0


def _command(cluster: LocalCluster, name: str) -> list[str]:
    if name == "master":
        arguments = [MASTER_CLASS, "--webui-port", str(cluster.webui_port)]
        arguments += ["--port", str(cluster.port)]
    else:
        number = int(name.rsplit("-", 1)[1])
        arguments = [WORKER_CLASS, cluster.master_url, "--webui-port", str(cluster.webui_port + number)]
        arguments += ["--cores", str(cluster.worker_cores), "--memory", cluster.worker_memory]
        arguments += ["--work-dir", str(cluster.work_dir(name))]
    return [str(SPARK_CLASS), *arguments, "--host", "127.0.0.1"]


def start(cluster: LocalCluster, timeout: float = 120.0) -> str:
    """Start the master and the workers in the background and wait until every worker has registered;
    return a one-line status. Raises EnvironmentProblem (with a log's path) when a port is taken or a
    process does not come up."""
    if all(running_pid(cluster.pid_file(name)) for name in cluster.names) and alive_workers(cluster) == cluster.workers:
        return f"Spark cluster already running at {cluster.master_url} (web UI {cluster.webui_url})"
    ports = [cluster.port, *(cluster.webui_port + number for number in range(cluster.workers + 1))]
    for port in ports:
        if port_in_use(port):
            raise EnvironmentProblem(
                f"port {port} on 127.0.0.1 is already in use: another cluster or program holds it. "
                "Stop it, or choose other ports (scripts/cluster.sh start --port N --webui-port M)."
            )
    cluster.data_dir.mkdir(parents=True, exist_ok=True)
    # Daemons bind to loopback only and take Spark from the installed pyspark.
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": str(SPARK_CLASS.parent.parent)}
    processes = {}
    for name in cluster.names:
        if name != "master":
            cluster.work_dir(name).mkdir(exist_ok=True)
        processes[name] = launch(_command(cluster, name), cluster.log_file(name), cluster.pid_file(name), env)
        if name == "master":
            _wait(cluster, processes, timeout, lambda: master_state(cluster) is not None, "the master to answer")
    _wait(cluster, processes, timeout, lambda: alive_workers(cluster) == cluster.workers, "every worker to register")
    return (
        f"Spark cluster running at {cluster.master_url}: {cluster.workers} workers of {cluster.worker_cores} cores "
        f"and {cluster.worker_memory} (web UI {cluster.webui_url}, logs in {cluster.data_dir})"
    )


def _wait(cluster: LocalCluster, processes: dict, timeout: float, ready, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        failed = next((name for name, process in processes.items() if process.poll() is not None), None)
        if failed or time.monotonic() > deadline:
            stop(cluster)
            name = failed or list(processes)[-1]
            problem = (
                f"{name} exited with code {processes[name].returncode}"
                if failed
                else f"timed out after {timeout:.0f} s"
            )
            raise EnvironmentProblem(
                f"the Spark cluster did not start ({problem} waiting for {what}); "
                f"its log is {cluster.log_file(name)}:\n{tail(cluster.log_file(name))}"
            )
        time.sleep(0.5)


def stop(cluster: LocalCluster) -> str:
    """Stop the workers, then the master; return a one-line status."""
    stopped = [name for name in reversed(cluster.names) if terminate(cluster.pid_file(name)) is not None]
    return f"Spark cluster stopped ({', '.join(reversed(stopped))})" if stopped else "Spark cluster is not running"


def status(cluster: LocalCluster) -> tuple[bool, str]:
    """(is it up, a one-line description with its workers and applications)."""
    state = master_state(cluster)
    if state is None:
        return False, f"Spark cluster is not running at {cluster.master_url} (files in {cluster.data_dir})"
    running = ", ".join(app["name"] for app in state.get("activeapps", [])) or "none"
    return True, (
        f"Spark cluster running at {cluster.master_url}: {state.get('aliveworkers', 0)} workers, "
        f"{state.get('cores', 0)} cores; applications running: {running}; "
        f"finished: {len(state.get('completedapps', []))}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT / "data" / "cluster"), help="default: data/cluster")
    parser.add_argument("--port", type=int, default=7077, help="the master's port (default 7077)")
    parser.add_argument("--webui-port", type=int, default=8080, help="the master's web UI; workers use the next ports")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-cores", type=int, default=1)
    parser.add_argument("--worker-memory", default="2g")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start a master and the workers in the background; wait until they registered")
    commands.add_parser("stop", help="stop the workers and the master")
    commands.add_parser("status", help="is it running, its workers and applications (exit 1 when down)")
    args = parser.parse_args(argv)
    cluster = LocalCluster(
        Path(args.data_dir).resolve(), port=args.port, webui_port=args.webui_port, workers=args.workers,
        worker_cores=args.worker_cores, worker_memory=args.worker_memory,
    )
    try:
        if args.command == "start":
            print(start(cluster))
        elif args.command == "stop":
            print(stop(cluster))
        else:
            up, line = status(cluster)
            print(line)
            return 0 if up else 1
    except EnvironmentProblem as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
