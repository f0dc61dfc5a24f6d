"""Table maintenance against real Delta tables: OPTIMIZE, a VACUUM that keeps what a stream still reads, the
refusal while a job may write, and the report's figures."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from eventlake.ops import maintenance
from eventlake.ops.maintenance import session_conf, storage_report
from eventlake.runtime.config import Settings, load_settings
from eventlake.runtime.running_lock import hold_while_running, maintenance_lock

from .helpers import PROJECT_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path) -> Settings:
    return load_settings(
        PROJECT_ROOT / "conf" / "local.toml",
        [f"storage.tables_root={tmp_path / 'tables'}", f"storage.checkpoint_root={tmp_path / 'checkpoints'}"],
    )


def command(action: str, **options) -> argparse.Namespace:
    """The parsed arguments of ``scripts/maintain.sh action`` with ``options`` (the command's defaults else)."""
    defaults = {
        "json": False, "tables": [], "small_file_mb": 32.0, "retention_hours": None, "dry_run": False,
        "force": False, "quiet_minutes": 10.0,
    }
    return argparse.Namespace(action=action, **{**defaults, **options})


def append_small_commits(spark, path: str, commits: int, first: int = 0) -> None:
    """``commits`` appends of 10 rows each, one file each (ids from ``first * 10`` on)."""
    for number in range(first, first + commits):
        spark.range(number * 10, number * 10 + 10).coalesce(1).write.format("delta").mode("append").save(path)


def ids(spark, path: str) -> list[int]:
    return sorted(row.id for row in spark.read.format("delta").load(path).collect())


def stream(spark, table: str, checkpoint: str, into: str, conf: dict[str, str] | None = None) -> None:
    """Stream the Delta table into the Delta table at ``into`` from ``checkpoint``, one file a batch, until done."""
    with session_conf(spark, conf or {}):  # read by the query when it starts; the session is shared
        query = (
            spark.readStream.format("delta").option("maxFilesPerTrigger", 1).load(table)
            .writeStream.format("delta").option("checkpointLocation", checkpoint)
            .trigger(availableNow=True).start(into)
        )
    query.awaitTermination()
    assert query.exception() is None


def test_optimize_compacts_small_files_and_the_report_counts_them(spark, settings, capsys):
    path = settings.storage.table_path("clicks")
    append_small_commits(spark, path, 6)
    before = storage_report(settings).tables[0]
    assert (before.name, before.version, before.live_files, before.small_files) == ("clicks", 5, 6, 6)
    assert (before.log_commits, before.unreferenced_files) == (6, 0)
    assert before.disk_bytes > before.live_bytes + before.log_bytes  # and the .crc files beside them

    assert maintenance.run(settings, command("optimize", quiet_minutes=0), spark) == 0

    after = storage_report(settings).tables[0]
    assert (after.version, after.live_files, after.small_files) == (6, 1, 1)
    assert (after.unreferenced_files, after.unreferenced_bytes) == (6, before.live_bytes)
    assert ids(spark, path) == list(range(60))
    assert "optimize clicks: 6 -> 1 files, version 6" in capsys.readouterr().out


def test_optimize_is_refused_while_a_job_may_write(spark, settings, capsys):
    path = settings.storage.table_path("clicks")
    append_small_commits(spark, path, 2)

    # A commit seconds ago: a job is probably running.
    assert maintenance.run(settings, command("optimize"), spark) == 2
    assert "not optimizing while a job may be writing (table clicks committed" in capsys.readouterr().err
    # Quiet for long enough, but a job holds the running lock.
    with hold_while_running(settings.storage.checkpoint_root):
        assert maintenance.run(settings, command("optimize", quiet_minutes=0), spark) == 2
    assert "a job holds the running lock" in capsys.readouterr().err
    assert storage_report(settings).tables[0].version == 1
    # And a job cannot start while maintenance holds the lock.
    with maintenance_lock(settings.storage.checkpoint_root) as free, pytest.raises(Exception) as error:
        assert free
        with hold_while_running(settings.storage.checkpoint_root):
            pytest.fail("a job took the running lock while maintenance held it")
    assert "table maintenance is running" in str(error.value)

    assert maintenance.run(settings, command("optimize", force=True), spark) == 0
    assert storage_report(settings).tables[0].live_files == 1


def test_vacuum_keeps_the_files_a_stream_still_reads(spark, settings, capsys, tmp_path):
    path = settings.storage.table_path("clicks")
    checkpoint = settings.storage.checkpoint_path("gold", "clicks")
    append_small_commits(spark, path, 2)
    stream(spark, path, checkpoint, str(tmp_path / "copy"))  # reads versions 0 and 1
    append_small_commits(spark, path, 3, first=2)  # versions 2-4: not read yet
    assert maintenance.run(settings, command("optimize", quiet_minutes=0), spark) == 0  # version 5

    # Asked for no retention at all: the stream still has versions 2-4 to read, whose files OPTIMIZE removed.
    assert maintenance.run(settings, command("vacuum", retention_hours=0), spark) == 0
    out = capsys.readouterr().out
    assert "gold/clicks still reads from version 2" in out and "deleted 0 files" in out
    report = storage_report(settings)
    assert report.tables[0].version == 5  # OPTIMIZE's commit; VACUUM made none
    assert report.tables[0].unreferenced_files == 5

    stream(spark, path, checkpoint, str(tmp_path / "copy"))  # reads the removed files of versions 2-4
    assert ids(spark, str(tmp_path / "copy")) == list(range(50))

    # Caught up, the stream needs no old files: the requested retention holds, and VACUUM deletes them.
    assert maintenance.run(settings, command("vacuum", retention_hours=0, quiet_minutes=0), spark) == 0
    assert "retention 0.0 h" in capsys.readouterr().out
    assert storage_report(settings).tables[0].unreferenced_files == 0
    assert ids(spark, path) == list(range(50))


def test_vacuum_keeps_delta_default_and_the_files_of_a_running_write(spark, settings, capsys):
    path = settings.storage.table_path("clicks")
    append_small_commits(spark, path, 2)
    stray = Path(path, "part-99999-left-by-a-write-not-committed-yet.snappy.parquet")
    stray.write_bytes(b"not committed")

    assert maintenance.run(settings, command("vacuum"), spark) == 0
    assert "retention 168.0 h (168.0 h: the table's deleted file retention" in capsys.readouterr().out
    # 0 h asked for, but a job committed moments ago: files of its next commit are kept.
    assert maintenance.run(settings, command("vacuum", retention_hours=0), spark) == 0
    assert "retention 1.0 h" in capsys.readouterr().out
    assert stray.exists()


def test_checkpoint_logs_stay_bounded_by_min_batches_to_retain(spark, settings, tmp_path):
    path = settings.storage.table_path("clicks")
    checkpoint = settings.storage.checkpoint_path("gold", "clicks")
    append_small_commits(spark, path, 8)

    stream(spark, path, checkpoint, str(tmp_path / "copy"), {"spark.sql.streaming.minBatchesToRetain": "3"})

    [report] = storage_report(settings).checkpoints
    assert ids(spark, str(tmp_path / "copy")) == list(range(80))  # eight batches of one file
    # Spark purges the entries older than minBatchesToRetain after each batch (a few more may stay
    # when the next purge has not run yet), instead of keeping all eight.
    assert 3 <= report.offsets <= 4 and 3 <= report.commits <= 4
    assert spark.conf.get("spark.sql.streaming.minBatchesToRetain") == "100"
