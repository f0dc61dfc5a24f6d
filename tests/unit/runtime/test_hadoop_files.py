from __future__ import annotations

from eventlake.runtime.hadoop_files import HadoopFiles


def test_a_checkpoint_log_is_read_by_batch_number_not_by_name(spark, tmp_path):
    offsets = tmp_path / "offsets"
    offsets.mkdir()
    for batch in (2, 9, 10):
        (offsets / str(batch)).write_text(f"v1\n{{\"batch\": {batch}}}\n")
    (offsets / ".11.tmp").write_text("half written")  # what a crash mid-write leaves: never an entry
    files = HadoopFiles(spark)

    assert files.log_entries(str(offsets)) == [2, 9, 10]
    assert files.newest_log_entry(str(offsets)) == ["v1", '{"batch": 10}']
    assert files.log_entries(str(tmp_path / "commits")) == []
    assert files.newest_log_entry(str(tmp_path / "commits")) is None
