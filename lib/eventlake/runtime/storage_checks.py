"""Checks of tables and checkpoints before a job starts, so a wrong path fails at once and plainly.

A checkpoint holds the Kafka offsets and the state of one query: given to another query, or pointed at
another topic, it would silently skip or re-read data. Each checkpoint therefore carries a small marker
(``eventlake.json``) naming the job, query and topic it belongs to, checked on every start.
"""

from __future__ import annotations

import json
from pathlib import Path

from eventlake.runtime.errors import EnvironmentProblem

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


def claim_checkpoint(path: str, job: str, query: str, topic: str, source: str = "kafka") -> None:
    """Mark the checkpoint folder as this query's, or raise EnvironmentProblem if it belongs to another
    query or topic, to this query as an earlier eventlake laid it out (another ``source``: what the query
    streams from, ``kafka`` or a Delta table's name), or is a checkpoint eventlake did not make."""
    local = _local(path)
    if local is None:
        return
    require_folder(path, "checkpoint")
    owner = {"job": job, "query": query, "topic": topic, "source": source}
    marker = local / MARKER
    if marker.exists():
        try:
            found = json.loads(marker.read_text())
        except (OSError, ValueError):
            raise EnvironmentProblem(
                f"the checkpoint marker {marker} is unreadable: is this the right checkpoint?"
            ) from None
        # Markers written before queries named their source all read Kafka.
        found = {"source": "kafka", **found}
        if found["source"] != source and {**found, "source": source} == owner:
            raise EnvironmentProblem(
                f"the checkpoint {local} is of {job}/{query} streaming from {found['source']}, as an earlier "
                f"eventlake ran it; this one streams {job}/{query} from {source}. Start it on new tables and "
                "checkpoints (storage.tables_root, storage.checkpoint_root), or remove both folders to start over."
            )
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


def refuse_replaced_checkpoints(paths: list[str], job: str, replaced_by: str) -> None:
    """Raise EnvironmentProblem when one of ``paths`` holds a checkpoint of queries an earlier eventlake ran
    and this one replaced: starting the new query beside them would read the topic again from the start."""
    found = [str(local) for path in paths if (local := _local(path)) is not None and (local / MARKER).exists()]
    if found:
        raise EnvironmentProblem(
            f"{', '.join(found)} hold checkpoints of {job} queries an earlier eventlake ran, which {replaced_by} "
            "replaces. Start it on new tables and checkpoints (storage.tables_root, storage.checkpoint_root), "
            "or remove both folders to start over."
        )
