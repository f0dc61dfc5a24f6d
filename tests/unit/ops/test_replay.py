"""The replay's pure pieces without Spark or Kafka: the fixes, the selection, the intents, the headers, the figures
(Delta tables written here with delta-rs), and the command's errors and dry run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from eventlake.ops import replay as replay_module
from eventlake.ops.replay import (
    RELEASED,
    REPLAY_FIX_HEADER,
    REPLAY_OF_HEADER,
    REPLAY_RUN_HEADER,
    REPLAYS_TABLE,
    SENDING,
    SENT,
    Outgoing,
    Selection,
    coordinates_text,
    dead_letter_tables,
    outgoing_records,
    parse_coordinates,
    read_replays,
    replay,
    replay_figures,
    replay_rows,
    select_dead_letters,
    taken_coordinates,
    unresolved_intents,
)
from eventlake.ops.replay_fixes import FIXES, CannotFix, fix_named
from eventlake.pipeline.contract import CONTENT_TYPE_HEADER, ErrorCode
from eventlake.runtime.config import load_settings
from eventlake.runtime.errors import EnvironmentProblem

PROJECT_ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
TIMESTAMP = pa.timestamp("us", tz="UTC")


def event(**changes) -> bytes:
    document = {"event_id": "e1", "timestamp": "2026-01-01T10:00:00Z", "source": "web", "schema_version": "1",
                "type": "click", "data": {"user_id": "u1"}}
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


# ---- fixes ----


def test_fill_schema_version_adds_version_1_first_and_keeps_the_rest():
    fixed = json.loads(FIXES["fill_schema_version"].apply(event(schema_version=None)))
    assert next(iter(fixed)) == "schema_version"
    assert fixed == json.loads(event())


@pytest.mark.parametrize("value", [event(), b"not json", b"[1]", None, b"\xff\xfe{}"])
def test_fill_schema_version_cannot_fix_what_it_does_not_repair(value):
    with pytest.raises(CannotFix):
        FIXES["fill_schema_version"].apply(value)


def test_timestamp_as_utc_appends_z_to_a_time_without_offset_only():
    fixed = FIXES["timestamp_as_utc"].apply(event(timestamp="2026-01-01T10:00:00.250"))
    assert json.loads(fixed)["timestamp"] == "2026-01-01T10:00:00.250Z"
    for timestamp in ("2026-01-01T10:00:00Z", "yesterday", 1767261600000):
        with pytest.raises(CannotFix):
            FIXES["timestamp_as_utc"].apply(event(timestamp=timestamp))


def test_timestamp_from_epoch_millis_writes_iso_8601_in_utc():
    fixed = FIXES["timestamp_from_epoch_millis"].apply(event(timestamp=1767261600250))
    assert json.loads(fixed)["timestamp"] == "2026-01-01T10:00:00.250Z"
    for timestamp in ("2026-01-01T10:00:00Z", True, 10**20):
        with pytest.raises(CannotFix):
            FIXES["timestamp_from_epoch_millis"].apply(event(timestamp=timestamp))


def test_every_fix_names_error_codes_the_contract_has():
    known = {code.value for code in ErrorCode}
    assert all(set(fix.error_codes) <= known for fix in FIXES.values())


def test_an_unknown_fix_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="unknown fix 'nope': the fixes are fill_schema_version, "):
        fix_named("nope")


# ---- coordinates, intents, headers ----


def test_coordinates_text_reads_back_even_with_dots_and_dashes_in_the_topic():
    assert parse_coordinates(coordinates_text("my.events-v2", 3, 1234)) == ("my.events-v2", 3, 1234)


def outgoing(offset: int, topic: str = "events") -> Outgoing:
    return Outgoing("analytics", topic, 0, offset, "MISSING_FIELD", b"u1", b"{}", (), topic)


def test_an_intent_is_unresolved_until_its_run_marks_or_releases_it():
    sending = replay_rows([outgoing(1), outgoing(2), outgoing(3)], state=SENDING, run_id="r1", fix=None, at=T0,
                          scan_from={"events": {0: 5, 1: 7}})
    assert json.loads(sending.column("scan_from")[0].as_py()) == {"0": 5, "1": 7}
    sent = replay_rows([outgoing(1)], state=SENT, run_id="r1", fix=None, at=T1, delivered={("events", 0, 1): (1, 9)})
    released = replay_rows([outgoing(2)], state=RELEASED, run_id="r1", fix=None, at=T1)
    other_run = replay_rows([outgoing(3)], state=SENT, run_id="r2", fix=None, at=T1)
    replays = pa.concat_tables([sending, sent, released, other_run])
    assert unresolved_intents(replays).column("offset").to_pylist() == [3]
    assert taken_coordinates(replays) == {("events", 0, 1), ("events", 0, 3)}
    assert unresolved_intents(replays.slice(0, 0)).num_rows == 0


def test_outgoing_records_carry_the_original_coordinates_the_run_the_fix_and_a_kept_content_type():
    rows = [
        {"job": "alerts", "topic": "events", "partition": 1, "offset": 7, "error_code": "MISSING_FIELD",
         "raw_key": b"u1", "raw_value": event(schema_version=None), "content_type": b"application/json"},
        {"job": "alerts", "topic": "events", "partition": 1, "offset": 8, "error_code": "MISSING_FIELD",
         "raw_key": b"u1", "raw_value": event(event_id=None), "content_type": None},
    ]
    records, unfixable = outgoing_records(rows, FIXES["fill_schema_version"], "run-1", None)
    assert unfixable == 1
    [record] = records
    assert (record.to_topic, record.key, json.loads(record.value or b"")["schema_version"]) == ("events", b"u1", "1")
    assert dict(record.headers) == {
        REPLAY_OF_HEADER: b"events/1/7", REPLAY_RUN_HEADER: b"run-1", REPLAY_FIX_HEADER: b"fill_schema_version",
        CONTENT_TYPE_HEADER: b"application/json",
    }
    as_is, _ = outgoing_records(rows, None, "run-1", "replays")
    assert [(r.to_topic, r.value) for r in as_is] == [("replays", row["raw_value"]) for row in rows]
    assert all(REPLAY_FIX_HEADER not in dict(r.headers) for r in as_is)


# ---- selection over Delta tables written with delta-rs ----


def dead_letters(rows: list[tuple], with_headers: bool = False) -> pa.Table:
    """A dead letters table of (topic, partition, offset, error_code, kafka_timestamp, ingested_at) rows."""
    count = len(rows)
    columns = {
        "raw_key": pa.array([b"u1"] * count, pa.binary()),
        "raw_value": pa.array([event(event_id=f"e{row[2]}") for row in rows], pa.binary()),
        "error_code": [row[3] for row in rows],
        "error_message": ["..."] * count,
        "stage": ["contract"] * count,
        "job": ["?"] * count,
        "topic": [row[0] for row in rows],
        "partition": pa.array([row[1] for row in rows], pa.int32()),
        "offset": pa.array([row[2] for row in rows], pa.int64()),
        "kafka_timestamp": pa.array([row[4] for row in rows], TIMESTAMP),
        "ingested_at": pa.array([row[5] for row in rows], TIMESTAMP),
    }
    if with_headers:
        header = pa.struct([("key", pa.string()), ("value", pa.binary())])
        columns["raw_headers"] = pa.array([[{"key": "content-type", "value": b"text/x-key-value"}]] * count,
                                          pa.list_(header))
    return pa.table(columns)


@pytest.fixture
def tables_root(tmp_path) -> str:
    root = tmp_path / "tables"
    write_deltalake(str(root / "analytics_dead_letters"), dead_letters([
        ("events", 0, 1, "MISSING_FIELD", T0, T1),
        ("events", 0, 2, "BAD_TIMESTAMP", T0, T1),
        ("events", 1, 3, "MISSING_FIELD", T1, T1),
        ("events", 1, 4, "NOT_JSON", T1, T0),
    ]))
    write_deltalake(str(root / "etl_dead_letters"), dead_letters([
        ("events", 0, 1, "MISSING_FIELD", T0, T1),  # dead for both jobs: one Kafka record, replayed once
        ("events", 1, 5, "MISSING_FIELD", T0, T1),
    ]))
    write_deltalake(str(root / "alerts_dead_letters"), dead_letters([("alerts-in", 0, 0, "NOT_KEY_VALUE", T0, T0)],
                                                                     with_headers=True))
    return str(root)


def picked(tables_root: str, selection: Selection, taken=frozenset()) -> list[tuple]:
    tables = dead_letter_tables(tables_root, selection.jobs)
    return [(r["job"], r["topic"], r["partition"], r["offset"])
            for r in select_dead_letters(tables, selection, set(taken))]


def test_every_job_s_table_is_found_and_a_missing_one_is_named(tables_root, tmp_path):
    assert sorted(dead_letter_tables(tables_root)) == ["alerts", "analytics", "etl"]
    with pytest.raises(EnvironmentProblem, match="no dead letters table for job 'gold'"):
        dead_letter_tables(tables_root, ["gold"])
    with pytest.raises(EnvironmentProblem, match="no dead letters tables under"):
        dead_letter_tables(str(tmp_path / "empty"))


def test_selection_by_job_error_code_and_time(tables_root):
    assert picked(tables_root, Selection(jobs=("analytics",), error_codes=("MISSING_FIELD",))) == [
        ("analytics", "events", 0, 1), ("analytics", "events", 1, 3)
    ]
    # kafka_timestamp by default: [since, until)
    assert picked(tables_root, Selection(jobs=("analytics",), since=T1)) == [
        ("analytics", "events", 1, 3), ("analytics", "events", 1, 4)
    ]
    assert picked(tables_root, Selection(jobs=("analytics",), until=T1, time_column="ingested_at")) == [
        ("analytics", "events", 1, 4)
    ]
    with pytest.raises(ValueError, match="the time column is one of"):
        picked(tables_root, Selection(time_column="offset"))


def test_a_record_dead_for_two_jobs_is_selected_once_and_taken_ones_not_at_all(tables_root):
    selection = Selection(jobs=("analytics", "etl"), error_codes=("MISSING_FIELD",))
    assert picked(tables_root, selection) == [
        ("analytics", "events", 0, 1), ("analytics", "events", 1, 3), ("etl", "events", 1, 5)
    ]
    assert picked(tables_root, selection, {("events", 0, 1), ("events", 1, 5)}) == [("analytics", "events", 1, 3)]


def test_the_content_type_a_dead_letter_kept_is_selected_with_it(tables_root):
    [row] = select_dead_letters(dead_letter_tables(tables_root, ["alerts"]), Selection(), set())
    assert row["content_type"] == b"text/x-key-value"
    assert "raw_headers" not in row


# ---- figures ----


def events(rows: list[tuple]) -> pa.Table:
    return pa.table({
        "event_id": [f"x{n}" for n in range(len(rows))],
        "topic": [r[0] for r in rows],
        "partition": pa.array([r[1] for r in rows], pa.int32()),
        "offset": pa.array([r[2] for r in rows], pa.int64()),
    })


def sent_row(offset: int, to_offset: int, job: str = "analytics") -> pa.Table:
    record = Outgoing(job, "events", 0 if offset < 3 else 1, offset, "MISSING_FIELD", None, None, (), "events")
    return replay_rows([record], state=SENT, run_id="r1", fix=None, at=T1,
                       delivered={record.coordinates: (0, to_offset)})


def test_replay_figures_add_up_for_a_job_of_valid_events_and_a_job_of_every_record_read(tables_root):
    root = Path(tables_root)
    # Replayed: analytics' 0/1 (also etl's), 0/2 and 1/3; copies at 0/10 (valid), 0/11 (dead again), 0/12 (not read).
    write_deltalake(str(root / REPLAYS_TABLE), pa.concat_tables([sent_row(1, 10), sent_row(2, 11), sent_row(3, 12)]))
    write_deltalake(str(root / "analytics_dead_letters"), dead_letters([("events", 0, 11, "NOT_JSON", T1, T1)]),
                    mode="append")
    write_deltalake(str(root / "analytics_events"), events([("events", 0, 10), ("events", 0, 9)]))
    figures = replay_figures(tables_root, "analytics")
    assert (figures.dead_letters, figures.replayed, figures.arrived_valid, figures.dead_again, figures.not_read,
            figures.still_open, figures.pending, figures.marked_twice) == (5, 3, 1, 1, 1, 2, 0, 0)
    assert figures.adds_up

    # The ETL read 0/10 (bronze holds every record): valid, as it is not among its dead letters.
    write_deltalake(str(root / "bronze_events"), events([("events", 0, 10)]))
    etl = replay_figures(tables_root, "etl")
    assert (etl.dead_letters, etl.replayed, etl.arrived_valid, etl.dead_again, etl.not_read, etl.still_open) == (
        2, 1, 1, 0, 0, 1
    )
    assert etl.adds_up


def test_replay_figures_of_a_job_with_no_tables_are_zero(tmp_path):
    figures = replay_figures(str(tmp_path), "gold_x")
    assert (figures.dead_letters, figures.replayed, figures.still_open) == (0, 0, 0)
    assert figures.adds_up


def test_two_marks_of_one_dead_letter_do_not_add_up(tables_root):
    write_deltalake(str(Path(tables_root) / REPLAYS_TABLE), pa.concat_tables([sent_row(1, 10), sent_row(1, 11)]))
    figures = replay_figures(tables_root, "analytics")
    assert figures.marked_twice == 1
    assert not figures.adds_up


# ---- the command ----


def settings_for(tables_root: str):
    return load_settings(PROJECT_ROOT / "conf" / "local.toml", [f"storage.tables_root={tables_root}",
                                                                "kafka.bootstrap_servers=127.0.0.1:1"])


def test_a_dry_run_lists_what_would_be_sent_and_touches_nothing(tables_root, monkeypatch):
    monkeypatch.setattr(replay_module, "_send", lambda *_: pytest.fail("a dry run sends nothing"))
    lines: list[str] = []
    report = replay(settings_for(tables_root), Selection(jobs=("analytics",)), fix_name="fill_schema_version",
                    dry_run=True, out=lines.append)
    # The fix's own error code is the selection when none is given; both selected events have a schema_version.
    assert (report.selected, report.unfixable, report.sent) == (2, 2, 0)
    assert lines[0].startswith("selected 2 dead letters not replayed yet (analytics; MISSING_FIELD)")
    assert read_replays(tables_root).num_rows == 0


def test_main_exits_2_with_one_line_for_an_unknown_fix_and_a_missing_table(tables_root, capsys):
    config = str(PROJECT_ROOT / "conf" / "local.toml")
    common = ["--config", config, "--set", f"storage.tables_root={tables_root}"]
    assert replay_module.main([*common, "--job", "analytics", "--fix", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown fix 'nope'")
    assert replay_module.main([*common, "--job", "gold"]) == 2
    assert capsys.readouterr().err.startswith("error: no dead letters table for job 'gold'")
    assert replay_module.main([*common, "--since", "yesterday"]) == 2
    assert "--since: not an ISO-8601 time" in capsys.readouterr().err
