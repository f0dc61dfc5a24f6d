from __future__ import annotations

import pyarrow as pa
from deltalake import write_deltalake

from eventlake.ops.compare_tables import differences


def write(root, table, rows):
    write_deltalake(str(root / table), pa.Table.from_pylist(rows))


def test_two_runs_are_equal_but_for_what_each_run_writes_of_its_own(tmp_path):
    for run in ("container", "local"):
        write(tmp_path / run, "analytics_windows", [
            {"event_type": "click", "event_count": 2, "writer_id": f"windows-{run}"},
            {"event_type": "click", "event_count": 2, "writer_id": f"windows-{run}"},
        ])
    assert differences(str(tmp_path / "container"), str(tmp_path / "local")) == {}


def test_a_row_missing_or_doubled_on_one_side_is_a_difference(tmp_path):
    write(tmp_path / "container", "silver_events", [{"event_id": "a"}, {"event_id": "a"}])
    write(tmp_path / "local", "silver_events", [{"event_id": "a"}, {"event_id": "b"}])
    write(tmp_path / "container", "etl_dead_letters", [{"offset": 1}])
    assert differences(str(tmp_path / "container"), str(tmp_path / "local")) == {
        "silver_events": "1 rows only in the first, 1 only in the second",
        "etl_dead_letters": f"only under {tmp_path / 'container'}",
    }
