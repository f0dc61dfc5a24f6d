"""Checks of tables and checkpoints before a job starts, so a wrong path fails at once and plainly.

A checkpoint holds the Kafka offsets and the state of one query: given to another query, or pointed at
another topic, it would silently skip or re-read data. Each checkpoint therefore carries a small marker
(``eventlake.json``) naming the job, query and topic it belongs to, checked on every start.
"""

from __future__ import annotations

import json
from pathlib import Path

from eventlake.errors import EnvironmentProblem

MARKER = "eventlake.json"


def _local(path: str) -> Path | None:
    """The local path, or None for a URI on another file system (those are checked by Spark itself)."""
    if "://" in path and not path.startswith("file://"):
        return None
    return Path(path.removeprefix("file://").removeprefix("file:"))


def require_folder(path: str, what: str) -> None:
    """Raise EnvironmentProblem when ``path`` exists but is not a folder."""
    local = _local(path)
    if local is not None and local.exists() and not local.is_dir():
        raise EnvironmentProblem(f"the {what} {local} is a file, not a folder: move it away or set another path")


def claim_checkpoint(path: str, job: str, query: str, topic: str) -> None:
    """Mark the checkpoint folder as this query's, or raise EnvironmentProblem if it belongs to another
    query or topic, or is a checkpoint eventlake did not make."""
    local = _local(path)
    if local is None:
        return
    require_folder(path, "checkpoint")
    owner = {"job": job, "query": query, "topic": topic}
    marker = local / MARKER
    if marker.exists():
        try:
            found = json.loads(marker.read_text())
        except (OSError, ValueError):
            raise EnvironmentProblem(f"the checkpoint marker {marker} is unreadable: is this the right checkpoint?") from None
        if found != owner:
            raise EnvironmentProblem(
                f"the checkpoint {local} belongs to {found.get('job')}/{found.get('query')} reading topic "
                f"'{found.get('topic')}', not to {job}/{query} reading '{topic}'. Use a new checkpoint folder "
                "(storage.checkpoint_root) for a different query or topic."
            )
        return
    if local.exists() and any(local.iterdir()):
        raise EnvironmentProblem(
            f"the checkpoint {local} was not made by eventlake's {job}/{query}: refusing to resume from it. "
            "Point storage.checkpoint_root elsewhere, or remove the folder to start over."
        )
    local.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(owner))
