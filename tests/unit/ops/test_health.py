"""The health CLI on small Delta tables: the figures, the chart, and what happens without matplotlib (an
optional extra)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from eventlake.ops import health
from eventlake.ops.lake import Lake
from eventlake.pipeline.dead_letters import DEAD_LETTERS_TABLE
from eventlake.runtime.job_tables import job_table
from eventlake.runtime.metrics import METRICS_SCHEMA, METRICS_TABLE

ANALYTICS_DEAD_LETTERS = job_table("analytics", DEAD_LETTERS_TABLE)
ANALYTICS_METRICS = job_table("analytics", METRICS_TABLE)

ROOT = Path(__file__).resolve().parents[3]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def tables_root(spark, tmp_path) -> Path:
    """A tables folder with three batches of one analytics query (one reported twice) and two dead letters."""
    root = tmp_path / "tables"
    names = spark.createDataFrame([], METRICS_SCHEMA).columns
    start = datetime(2026, 1, 1, 12, 0)
    rows = []
    for batch in (0, 1, 2, 2):
        row = dict.fromkeys(names)
        row.update(
            job="analytics", query_name="analytics_intake", query_id="q", run_id="r", batch_id=batch,
            batch_time=start + timedelta(seconds=10 * batch), input_rows=100, processed_rows_per_second=50.0,
            batch_duration_ms=2000, kafka_lag=10 - batch, dropped_late=1, dropped_duplicates=0,
        )
        rows.append(tuple(row[name] for name in names))
    spark.createDataFrame(rows, METRICS_SCHEMA).write.format("delta").save(str(root / ANALYTICS_METRICS))
    spark.createDataFrame(
        [("analytics", "NOT_JSON", start), ("analytics", "NOT_JSON", start)],
        "job string, error_code string, ingested_at timestamp",
    ).write.format("delta").save(str(root / ANALYTICS_DEAD_LETTERS))
    return root


@pytest.fixture
def run_health(tables_root):
    """Run the CLI on ``tables_root`` (it reads them without Spark), writing the chart to ``chart``."""

    def run(chart: Path) -> int:
        return health.main(
            ["--config", str(ROOT / "conf" / "local.toml"), "--set", f"storage.tables_root={tables_root}",
             "--out", str(chart)]
        )

    return run


def without_matplotlib(monkeypatch) -> None:
    # None in sys.modules makes `import matplotlib` fail as if it were not installed.
    for module in ("matplotlib", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, module, None)


FIGURES = [
    "job analytics: last batch 2026-01-01 12:00:20 UTC",
    "  dead letters 2 (top: NOT_JSON 2), late dropped 3, duplicates dropped 0",
    "  analytics_intake: 3 batches, 300 rows read, 50 rows/s while busy, lag now 8",
]


def test_the_report_prints_the_figures_and_writes_the_chart(run_health, tmp_path, capsys):
    chart = tmp_path / "charts" / "health.png"
    assert run_health(chart) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines() == [*FIGURES, f"chart: {chart.resolve()}"]
    assert printed.err == ""
    assert chart.read_bytes().startswith(PNG_SIGNATURE)


def test_without_matplotlib_the_figures_print_and_one_line_says_how_to_get_the_chart(
    run_health, tmp_path, capsys, monkeypatch
):
    without_matplotlib(monkeypatch)
    chart = tmp_path / "health.png"
    assert run_health(chart) == 2
    printed = capsys.readouterr()
    assert printed.out.splitlines() == FIGURES
    assert printed.err.splitlines() == [
        "error: the health chart needs matplotlib: pip install -e '.[report]' in the project folder"
        " (or run scripts/setup.sh); no chart written"
    ]
    assert not chart.exists()


def test_plot_health_without_matplotlib_raises_an_environment_problem(tables_root, tmp_path, monkeypatch):
    without_matplotlib(monkeypatch)
    with pytest.raises(health.EnvironmentProblem, match=r"needs matplotlib: pip install -e '\.\[report\]'"):
        health.plot_health(Lake(str(tables_root)), tmp_path / "health.png")
    assert not (tmp_path / "health.png").exists()
