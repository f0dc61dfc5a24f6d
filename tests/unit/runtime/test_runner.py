from __future__ import annotations

from eventlake.runtime.config import Settings, StorageSettings
from eventlake.runtime.runner import QueryPlan, _rebuild_override, run_job, run_queries
from eventlake.runtime.storage_checks import SHUFFLE_PARTITIONS

from .test_storage_checks import run_stateful_query, shuffle_partitions


def test_a_query_that_keeps_other_state_partitions_gets_one_line_at_start(spark, tmp_path, capsys):
    checkpoint = run_stateful_query(spark, tmp_path)
    settings = Settings(storage=StorageSettings(str(tmp_path / "tables"), str(tmp_path / "checkpoints")))
    plan = QueryPlan(starts=(), state_checkpoints={"analytics_windows": checkpoint})
    capsys.readouterr()
    with shuffle_partitions(spark, "3"):
        run_queries(spark, settings, "analytics", lambda session, config: plan)
    noted = [line for line in capsys.readouterr().out.splitlines() if SHUFFLE_PARTITIONS in line]
    assert len(noted) == 1
    assert noted[0].startswith("analytics: analytics_windows keeps the 2 state partitions")
    with shuffle_partitions(spark, "2"):
        run_queries(spark, settings, "analytics", lambda session, config: plan)
    assert SHUFFLE_PARTITIONS not in capsys.readouterr().out


def test_rebuild_is_refused_in_one_line_by_a_job_without_windows(capsys):
    assert run_job("etl", lambda spark, settings: None, ["--rebuild"]) == 2
    assert capsys.readouterr().err.strip() == (
        "etl: error: conf/local.toml: --rebuild: the etl job has no windows to rebuild (the analytics and gold jobs do)"
    )


def test_rebuild_sets_the_rebuild_of_the_jobs_windows_for_this_run():
    assert _rebuild_override("analytics", True) == ["analytics.rebuild=true"]
    assert _rebuild_override("gold", True) == ["gold.rebuild=true"]
    assert _rebuild_override("gold", False) == []
