"""The running lock: a file under the checkpoint root that each job holds shared while its queries run and table
maintenance holds exclusively while it commits, so that maintenance never commits to a table a job is writing
(on local disk Delta serializes commits only within one JVM; see :mod:`eventlake.runtime.job_tables`). The
operating system releases a lock when its process ends, a killed one too."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from eventlake.runtime.errors import EnvironmentProblem

RUNNING_LOCK = ".eventlake-running.lock"


def _lock_file(checkpoint_root: str) -> Path | None:
    """The running lock's file, or None when the checkpoint root is not on this machine's file system."""
    if "://" in checkpoint_root and not checkpoint_root.startswith("file:"):
        return None
    return Path(checkpoint_root.removeprefix("file://").removeprefix("file:"), RUNNING_LOCK)


@contextlib.contextmanager
def hold_while_running(checkpoint_root: str) -> Iterator[None]:
    """For a job: hold the checkpoint root's running lock shared while its queries run, so that maintenance sees
    the job running (the lock ends with the process, a killed one too). Raises EnvironmentProblem while
    maintenance holds it. No lock for a checkpoint root on another file system."""
    path = _lock_file(checkpoint_root)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EnvironmentProblem(
                f"table maintenance is running on these tables ({path} is locked): start the job when it ends"
            ) from None
        yield


@contextlib.contextmanager
def maintenance_lock(checkpoint_root: str) -> Iterator[bool]:
    """Hold the running lock exclusively while maintenance commits. Yields False when a job holds it (running)."""
    path = _lock_file(checkpoint_root)
    if path is None or not path.parent.is_dir():
        yield True
        return
    handle: IO[str]
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
