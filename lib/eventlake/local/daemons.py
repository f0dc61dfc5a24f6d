"""Background JVM processes on 127.0.0.1 (the local Kafka broker, a local Spark standalone cluster):
start one with its output in a log file and its pid in a file, find it again from another command, stop it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def port_in_use(port: int) -> bool:
    """True when something on 127.0.0.1 holds ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def launch(command: list[str], log_file: Path, pid_file: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``command`` in its own session (a Ctrl-C meant for the caller does not reach it), appending its
    output to ``log_file`` and writing its pid to ``pid_file``."""
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
        )
    pid_file.write_text(str(process.pid))
    return process


def running_pid(pid_file: Path) -> int | None:
    """The pid written in ``pid_file`` if that process is alive, else None."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid


def is_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a finished child of ours is reaped, not counted as alive)."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by another command): fall back to a signal probe
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def terminate(pid_file: Path, timeout: float = 30.0) -> int | None:
    """Stop the process named in ``pid_file`` (SIGTERM, then SIGKILL after ``timeout``) and remove the file;
    return its pid, or None when it was not running."""
    pid = running_pid(pid_file)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and is_alive(pid):
            time.sleep(0.2)
        if is_alive(pid):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return pid
