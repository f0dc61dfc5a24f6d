"""Compare the tables two runs of the same jobs over the same topic wrote (a container run and a local one),
row for row, without a JVM (delta-rs + DuckDB): ``scripts/container.sh`` ends with it.

    python -m eventlake.ops.compare_tables CONTAINER_TABLES LOCAL_TABLES
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import duckdb

from eventlake.ops.lake import Lake

# What a run writes of its own (when, which checkpoint, its tables' ids in the windows' source offsets): not the data.
RUN_COLUMNS = ("writer_id", "ingested_at", "ingest_date", "written_at", "start_offset", "end_offset")
# The tables of the analytics and ETL jobs that hold data (metrics and heartbeats are about the run itself).
COMPARED = (
    "analytics_events", "analytics_dead_letters", "analytics_intake_batches", "analytics_windows",
    "analytics_window_batches", "analytics_late_events", "bronze_events", "silver_events", "etl_dead_letters",
    "etl_intake_batches",
)


def differences(first_root: str, second_root: str, tables: Sequence[str] = COMPARED) -> dict[str, str]:
    """Table -> what differs between the two roots (missing on a side, or rows only one side has, counted
    as multisets with EXCEPT ALL); empty when every table is equal row for row."""
    first, second = Lake(first_root), Lake(second_root)
    connection = duckdb.connect()
    found = {}
    try:
        for table in tables:
            if (table in first.tables) != (table in second.tables):
                found[table] = f"only under {first_root if table in first.tables else second_root}"
                continue
            if table not in first.tables:
                continue
            for name, lake in (("first", first), ("second", second)):
                rows = lake.arrow(table)
                connection.register(name, rows.drop_columns([c for c in RUN_COLUMNS if c in rows.column_names]))
            [[only_first]] = connection.execute(
                "SELECT count(*) FROM (SELECT * FROM first EXCEPT ALL SELECT * FROM second)"
            ).fetchall()
            [[only_second]] = connection.execute(
                "SELECT count(*) FROM (SELECT * FROM second EXCEPT ALL SELECT * FROM first)"
            ).fetchall()
            if only_first or only_second:
                found[table] = f"{only_first} rows only in the first, {only_second} only in the second"
    finally:
        for each in (first, second, connection):
            each.close()
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eventlake.ops.compare_tables", description=__doc__.splitlines()[0])
    parser.add_argument("first_root")
    parser.add_argument("second_root")
    args = parser.parse_args(argv)
    found = differences(args.first_root, args.second_root)
    for table, what in found.items():
        print(f"DIFFERS {table}: {what}")
    compared = [table for table in COMPARED if table in Lake(args.first_root).tables]
    if not found:
        print(f"equal row for row: {', '.join(compared)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
