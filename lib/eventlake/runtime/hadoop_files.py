"""Small files and folders at any Hadoop URI (a local path, ``file:``, ``s3a:``, ``abfs:``, ``hdfs:``...) through
the file systems of the session's JVM: the same calls, and the same code path, whatever the scheme. Spark
reaches checkpoints the same way, so what these calls see is what a query will resume from."""

from __future__ import annotations

from typing import Any

from py4j.java_gateway import is_instance_of
from pyspark.sql import SparkSession

from eventlake.runtime.session import jvm_view


class HadoopFiles:
    """Reads, writes and lists with Hadoop's ``FileSystem`` API, configured as the session's Hadoop settings
    say (object store endpoints and keys included)."""

    def __init__(self, spark: SparkSession):
        self._jvm = jvm_view(spark)
        self._gateway = spark.sparkContext._gateway
        self._conf = spark._jsc.hadoopConfiguration()

    def _locate(self, path: str) -> tuple[Any, Any]:
        """The file system that holds ``path``, and the path as Hadoop's ``Path``."""
        hadoop_path = self._jvm.org.apache.hadoop.fs.Path(path)
        return hadoop_path.getFileSystem(self._conf), hadoop_path

    def exists(self, path: str) -> bool:
        file_system, hadoop_path = self._locate(path)
        return bool(file_system.exists(hadoop_path))

    def is_file(self, path: str) -> bool:
        """Whether ``path`` is a file (False for a folder, or nothing there)."""
        file_system, hadoop_path = self._locate(path)
        return bool(file_system.exists(hadoop_path) and file_system.getFileStatus(hadoop_path).isFile())

    def names(self, folder: str) -> list[str]:
        """The names of what ``folder`` holds; none when there is no such folder."""
        file_system, hadoop_path = self._locate(folder)
        if not file_system.exists(hadoop_path):
            return []
        return [str(status.getPath().getName()) for status in file_system.listStatus(hadoop_path)]

    def log_entries(self, folder: str) -> list[int]:
        """The numbers of a checkpoint log's entries (the files of ``offsets/`` or ``commits/`` named by
        batch id), in order; none when there is no such folder."""
        return sorted(int(name) for name in self.names(folder) if name.isdigit())

    def newest_log_entry(self, folder: str) -> list[str] | None:
        """The lines of a checkpoint log's newest entry (for ``offsets/``: a version line, the batch's metadata
        as JSON, one line per source); None when the log is empty."""
        entries = self.log_entries(folder)
        return self.read_text(f"{folder.rstrip('/')}/{entries[-1]}").splitlines() if entries else None

    def read_text(self, path: str) -> str:
        """The whole of a small UTF-8 file."""
        file_system, hadoop_path = self._locate(path)
        stream = file_system.open(hadoop_path)
        try:
            return bytes(stream.readAllBytes()).decode("utf-8")
        finally:
            stream.close()

    def create_text(self, path: str, text: str) -> None:
        """Write ``text`` to a new file at ``path`` (its folders made as needed); raises if one is there."""
        file_system, hadoop_path = self._locate(path)
        if is_instance_of(self._gateway, file_system, "org.apache.hadoop.fs.ChecksumFileSystem"):
            # On a local disk, no hidden .crc file beside it: a file edited by hand later stays readable.
            file_system = file_system.getRawFileSystem()
        stream = file_system.create(hadoop_path, False)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
