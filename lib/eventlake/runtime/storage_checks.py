"""Checks of tables and checkpoints before a job starts, so a wrong path fails at once and plainly.

A checkpoint holds the Kafka offsets and the state of one query: given to another query, or pointed at
another topic, it would silently skip or re-read data. Each checkpoint therefore carries a small marker
(``eventlake.json``) naming the job, query and topic it belongs to, checked on every start, and the id the
checkpoint got when it was made. The checks read the checkpoint through Hadoop's file system, as Spark does,
so they hold on a local disk, HDFS and object stores alike.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.hadoop_files import HadoopFiles

MARKER = "eventlake.json"
# The marker's key for the checkpoint's id: a random one, made with the marker. Markers written before
# checkpoints had ids lack it.
CHECKPOINT_ID = "checkpoint_id"
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"


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


def claim_checkpoint(
    spark: SparkSession, path: str, job: str, query: str, topic: str, source: str = "kafka"
) -> str | None:
    """Mark the checkpoint folder as this query's, or raise EnvironmentProblem if it belongs to another
    query or topic, to this query as an earlier eventlake laid it out (another ``source``: what the query
    streams from, ``kafka`` or a Delta table's name), or is a checkpoint eventlake did not make.

    Returns the checkpoint's id, made with its marker: a checkpoint made again at the same path (the old one
    removed to start over) gets another. None for a checkpoint made before checkpoints had ids."""
    files = HadoopFiles(spark)
    if files.is_file(path):
        raise EnvironmentProblem(f"the checkpoint {path} is a file, not a folder: move it away or set another path")
    owner = {"job": job, "query": query, "topic": topic, "source": source}
    marker = f"{path.rstrip('/')}/{MARKER}"
    if files.exists(marker):
        found = _read_marker(files, marker)
        checkpoint_id = found.pop(CHECKPOINT_ID, None)
        # Markers written before queries named their source all read Kafka.
        found = {"source": "kafka", **found}
        if found["source"] != source and {**found, "source": source} == owner:
            raise EnvironmentProblem(
                f"the checkpoint {path} is of {job}/{query} streaming from {found['source']}, as an earlier "
                f"eventlake ran it; this one streams {job}/{query} from {source}. Start it on new tables and "
                "checkpoints (storage.tables_root, storage.checkpoint_root), or remove both folders to start over."
            )
        if found != owner:
            raise EnvironmentProblem(
                f"the checkpoint {path} belongs to {found.get('job')}/{found.get('query')} reading topic "
                f"'{found.get('topic')}', not to {job}/{query} reading '{topic}'. Use a new checkpoint folder "
                "(storage.checkpoint_root) for a different query or topic."
            )
        return checkpoint_id
    if files.names(path):
        raise EnvironmentProblem(
            f"the checkpoint {path} was not made by eventlake's {job}/{query}: refusing to resume from it. "
            "Point storage.checkpoint_root elsewhere, or remove the folder to start over."
        )
    checkpoint_id = uuid.uuid4().hex
    try:
        files.create_text(marker, json.dumps({**owner, CHECKPOINT_ID: checkpoint_id}))
    except Py4JJavaError as error:  # no permission, or another job made the marker at the same moment
        raise EnvironmentProblem(
            f"the checkpoint marker {marker} cannot be written: {_java_message(error)}"
        ) from None
    return checkpoint_id


def _java_message(error: Py4JJavaError) -> str:
    """The Java exception's class and message, without py4j's stack trace."""
    return str(error.java_exception.toString())


def _read_marker(files: HadoopFiles, marker: str) -> dict[str, Any]:
    """The marker's fields; raises EnvironmentProblem when it cannot be read or is not a marker."""
    try:
        found = json.loads(files.read_text(marker))
    except (Py4JJavaError, ValueError):
        found = None
    if not isinstance(found, dict) or not isinstance(found.get(CHECKPOINT_ID, ""), str):
        raise EnvironmentProblem(f"the checkpoint marker {marker} is unreadable: is this the right checkpoint?")
    return found


def refuse_replaced_checkpoints(spark: SparkSession, paths: list[str], job: str, replaced_by: str) -> None:
    """Raise EnvironmentProblem when one of ``paths`` holds a checkpoint of queries an earlier eventlake ran
    and this one replaced: starting the new query beside them would read the topic again from the start."""
    files = HadoopFiles(spark)
    found = [path for path in paths if files.exists(f"{path.rstrip('/')}/{MARKER}")]
    if found:
        raise EnvironmentProblem(
            f"{', '.join(found)} hold checkpoints of {job} queries an earlier eventlake ran, which {replaced_by} "
            "replaces. Start it on new tables and checkpoints (storage.tables_root, storage.checkpoint_root), "
            "or remove both folders to start over."
        )


def kept_shuffle_partitions(spark: SparkSession, checkpoint: str) -> str | None:
    """The ``spark.sql.shuffle.partitions`` a query's checkpoint keeps: the value of the query's first start,
    which Spark records in every batch's ``offsets/N`` file and, for a stateful query, uses as its number of
    state partitions for as long as the checkpoint lives. None before the query's first batch."""
    lines = HadoopFiles(spark).newest_log_entry(f"{checkpoint.rstrip('/')}/offsets")
    if lines is None:
        return None
    try:  # the batch's metadata (line 2) holds the value in its "conf"
        value = json.loads(lines[1])["conf"][SHUFFLE_PARTITIONS]
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    return str(value)


def state_partitions_note(spark: SparkSession, query: str, checkpoint: str) -> str | None:
    """One line saying so when the checkpoint of the stateful ``query`` keeps another number of state
    partitions than the session's ``spark.sql.shuffle.partitions`` (which Spark then ignores for the query's
    state); None when they agree or the query has not run yet."""
    kept, configured = kept_shuffle_partitions(spark, checkpoint), spark.conf.get(SHUFFLE_PARTITIONS)
    if kept is None or configured is None or kept.strip() == configured.strip():
        return None
    return (
        f"{query} keeps the {kept} state partitions its checkpoint {checkpoint} was made with, not the configured "
        f"{SHUFFLE_PARTITIONS}={configured}: Spark fixes them at a stateful query's first start. To change them, "
        "start the job on new checkpoints and tables (docs/operating.md, 'State partitions')."
    )
