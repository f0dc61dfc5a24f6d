"""A job as a real process: ``spark-submit jobs/<job>.py`` in its own process group, to be waited for or
killed with SIGKILL (the JVM, the Python driver it started and the Python workers alike). Used by the fault
injection (:mod:`eventlake.local.faults`) and the crash-recovery test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
VENV = PROJECT_ROOT / ".venv"

# Short-lived driver JVMs: the quick JIT tier only, which about halves the CPU a start-up costs (on 2 cores,
# restarts otherwise take most of a fault run's time), with the usual code cache (that tier alone gets 48 MB,
# which Spark fills). No effect on what the job does.
QUICK_JIT = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"


def job_environment() -> dict[str, str]:
    """This process's environment with the project's .venv active, as a user's shell has it when they run
    ``spark-submit`` (its launcher finds Spark through the venv's python), and the quick JIT tier."""
    environment = {
        **os.environ,
        "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(VENV),
    }
    environment["SPARK_SUBMIT_OPTS"] = f"{environment.get('SPARK_SUBMIT_OPTS', '')} {QUICK_JIT}".strip()
    return environment


class JobRunTimeout(RuntimeError):
    """A run did not end within the time it was given (it has been killed)."""


class JobRun:
    """One ``spark-submit jobs/<job>.py --set ...`` started in its own process group from the project root,
    its stdout and stderr in ``logs/<name>.stdout`` and ``.stderr``."""

    def __init__(self, name: str, job: str, overrides: Sequence[str], logs: Path, config: str | None = None):
        logs.mkdir(parents=True, exist_ok=True)
        self.name, self.job = name, job
        self.stdout_path, self.stderr_path = logs / f"{name}.stdout", logs / f"{name}.stderr"
        command = [str(VENV / "bin" / "spark-submit"), str(PROJECT_ROOT / "jobs" / f"{job}.py")]
        if config:
            command += ["--config", config]
        for override in overrides:
            command += ["--set", override]
        self.started = time.monotonic()
        with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=job_environment(), stdout=stdout, stderr=stderr,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def running(self) -> bool:
        return self.process.poll() is None

    def seconds(self) -> float:
        """Seconds since the run was started."""
        return time.monotonic() - self.started

    def kill(self) -> None:
        """SIGKILL the whole process group (the JVM and the Python driver it started) and reap the JVM."""
        with contextlib.suppress(ProcessLookupError):  # already gone: nothing to kill
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        """The exit code, once the run ends; a run still going after ``timeout`` seconds is killed and
        :class:`JobRunTimeout` raised."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise JobRunTimeout(f"{self.name}: still running after {timeout:.0f} s; killed\n{self.logs()}") from None

    def ended_within(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True when the run ended meanwhile (by itself)."""
        try:
            self.process.wait(timeout=max(seconds, 0.0))
        except subprocess.TimeoutExpired:
            return False
        return True

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def logs(self, lines: int = 40) -> str:
        """The last ``lines`` lines of its stdout and stderr, for error messages."""

        def tail(path: Path) -> str:
            text = path.read_text(errors="replace") if path.exists() else ""
            return "\n".join(text.splitlines()[-lines:])

        return f"--- {self.stdout_path}\n{tail(self.stdout_path)}\n--- {self.stderr_path}\n{tail(self.stderr_path)}"
