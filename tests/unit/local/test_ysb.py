"""The Yahoo Streaming Benchmark generator: campaigns, the events' published form, event times, the count."""

import importlib.util
import json
import re
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from eventlake.local import ysb
from eventlake.local.producer import SendReport
from eventlake.local.ysb import (
    AD_TYPES,
    EVENT_TYPES,
    FIELDS,
    Campaigns,
    ad_events,
    count_views_per_campaign_window,
    encode,
    event_time_span_ms,
    make_campaigns,
    read_campaigns_csv,
    send_ad_events,
    write_campaigns_csv,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SHIPPED_CSV = PROJECT_ROOT / "conf" / "dimensions" / "ysb_campaigns.csv"
START_MS = 1_764_756_000_000  # 2025-12-03T10:00:00Z, a multiple of the 10-second window
DIGITS = re.compile(r"^[0-9]+$")


def _is_uuid4(text: str) -> bool:
    return str(uuid.UUID(text)) == text and uuid.UUID(text).version == 4


@pytest.fixture(scope="module")
def campaigns() -> Campaigns:
    return make_campaigns(7)


def test_campaigns_are_deterministic_per_seed():
    assert make_campaigns(7) == make_campaigns(7)
    assert make_campaigns(7).ads != make_campaigns(8).ads
    assert make_campaigns(3, campaigns=2, ads_per_campaign=3) == make_campaigns(3, campaigns=2, ads_per_campaign=3)


def test_campaigns_are_100_of_10_ads_in_runs_of_ten(campaigns):
    assert len(campaigns.ads) == 1000
    assert len(campaigns.campaign_ids) == 100
    assert set(Counter(campaigns.ads.values()).values()) == {10}
    # core.clj's layout: the i-th run of ten ads belongs to the i-th campaign.
    owners = list(campaigns.ads.values())
    assert all(len(set(owners[start : start + 10])) == 1 for start in range(0, 1000, 10))
    assert owners[::10] == campaigns.campaign_ids
    assert all(_is_uuid4(ad) for ad in campaigns.ads)
    assert all(_is_uuid4(campaign) for campaign in campaigns.campaign_ids)
    assert not set(campaigns.ads) & set(campaigns.campaign_ids)


def test_other_sizes_and_bad_sizes():
    small = make_campaigns(1, campaigns=3, ads_per_campaign=2)
    assert len(small.ads) == 6 and len(small.campaign_ids) == 3
    with pytest.raises(ValueError, match="at least 1"):
        make_campaigns(1, campaigns=0)


def test_csv_round_trip(tmp_path, campaigns):
    path = tmp_path / "campaigns.csv"
    write_campaigns_csv(campaigns, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "ad_id,campaign_id"
    assert len(lines) == 1001
    assert read_campaigns_csv(path) == campaigns
    assert list(read_campaigns_csv(path).ads) == list(campaigns.ads)  # the order is kept too


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("campaign_id,ad_id\na,b\n", "header"),
        ("", "header"),
        ("ad_id,campaign_id\na,b\na,c\n", "twice"),
        ("ad_id,campaign_id\na,b,c\n", "line 2"),
        ("ad_id,campaign_id\na,\n", "line 2"),
    ],
)
def test_a_bad_csv_is_refused(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_campaigns_csv(path)


def test_the_shipped_csv_is_make_campaigns_seed_7(tmp_path, campaigns):
    assert read_campaigns_csv(SHIPPED_CSV) == campaigns
    written = tmp_path / "again.csv"
    write_campaigns_csv(campaigns, written)
    assert SHIPPED_CSV.read_bytes() == written.read_bytes()


def test_events_are_deterministic_per_seed(campaigns):
    def first(seed: int) -> list[dict[str, str]]:
        return list(ad_events(campaigns, 200, START_MS, 1000, seed))

    assert first(1) == first(1)
    assert first(1) != first(2)


def test_events_have_the_published_form(campaigns):
    events = list(ad_events(campaigns, 3000, START_MS, 1000, seed=5))
    for event in events:
        assert tuple(event) == FIELDS
        assert all(isinstance(value, str) for value in event.values())
        assert DIGITS.match(event["event_time"])
        assert event["ad_type"] in AD_TYPES
        assert event["event_type"] in EVENT_TYPES
        assert event["ad_id"] in campaigns.ads
        assert event["ip_address"] == "1.2.3.4"
        assert _is_uuid4(event["user_id"]) and _is_uuid4(event["page_id"])
    # core.clj's real-time mode: 100 users and 100 pages; every type drawn uniformly.
    assert len({e["user_id"] for e in events}) <= 100 and len({e["page_id"] for e in events}) <= 100
    assert set(Counter(e["event_type"] for e in events)) == set(EVENT_TYPES)
    assert set(Counter(e["ad_type"] for e in events)) == set(AD_TYPES)
    assert min(Counter(e["event_type"] for e in events).values()) > 800  # about 1,000 each of 3,000


def test_encode_is_compact_json_in_the_published_order(campaigns):
    event = next(ad_events(campaigns, 1, START_MS, 1000, seed=1))
    shuffled = dict(reversed(list(event.items())))
    text = encode(shuffled).decode()
    assert text.startswith('{"user_id":"') and text.endswith('"ip_address":"1.2.3.4"}')
    assert list(json.loads(text)) == list(FIELDS)
    assert json.loads(text) == event
    assert ", " not in text and '": ' not in text
    assert f'"event_time":"{START_MS}"' in text  # a string, as core.clj writes it


def test_event_times_advance_by_1000_over_rate_ms(campaigns):
    times = [int(e["event_time"]) for e in ad_events(campaigns, 9, START_MS, 4, seed=1)]
    assert times == [START_MS + 250 * i for i in range(9)]
    thirds = [int(e["event_time"]) - START_MS for e in ad_events(campaigns, 7, START_MS, 3, seed=1)]
    assert thirds == [0, 333, 666, 1000, 1333, 1666, 2000]  # floor(i * 1000 / 3): never drifts
    fast = [int(e["event_time"]) - START_MS for e in ad_events(campaigns, 5, START_MS, 2000, seed=1)]
    assert fast == [0, 0, 1, 1, 2]
    assert event_time_span_ms(9, 4) == 2000
    assert event_time_span_ms(7, 3) == 2000
    assert event_time_span_ms(1, 3) == 0
    events = list(ad_events(campaigns, 1_001, START_MS, 100, seed=1))
    assert int(events[-1]["event_time"]) - START_MS == event_time_span_ms(1_001, 100) == 10_000


@pytest.mark.parametrize(("count", "rate"), [(-1, 10), (5, 0), (5, -2)])
def test_bad_event_arguments_are_refused(campaigns, count, rate):
    with pytest.raises(ValueError):
        ad_events(campaigns, count, START_MS, rate, seed=1)


def test_the_independent_count_on_a_hand_made_list():
    campaigns = Campaigns({"ad-1": "camp-a", "ad-2": "camp-a", "ad-3": "camp-b"})

    def event(ad: str, kind: str, moment: int) -> dict[str, str]:
        return {"user_id": "u", "page_id": "p", "ad_id": ad, "ad_type": "mail", "event_type": kind,
                "event_time": str(moment), "ip_address": "1.2.3.4"}

    events = [
        event("ad-1", "view", 20_000),
        event("ad-2", "view", 29_999),  # same campaign, same window [20000, 30000)
        event("ad-1", "view", 30_000),  # the next window
        event("ad-3", "view", 25_000),
        event("ad-3", "click", 25_001),  # not a view
        event("ad-3", "purchase", 25_002),
        event("ad-9", "view", 25_003),  # no campaign has this ad: the join drops it
    ]
    expected = {("camp-a", 20_000): 2, ("camp-a", 30_000): 1, ("camp-b", 20_000): 1}
    assert count_views_per_campaign_window(events, campaigns) == expected
    assert count_views_per_campaign_window([encode(e) for e in events], campaigns) == expected
    assert count_views_per_campaign_window(events, campaigns, window_ms=60_000) == {
        ("camp-a", 0): 3, ("camp-b", 0): 1
    }
    assert count_views_per_campaign_window([], campaigns) == {}


def test_the_count_covers_every_view_of_a_generated_run(campaigns):
    events = list(ad_events(campaigns, 5_000, START_MS, 200, seed=3))  # 5 ms apart: 25 seconds, 3 windows
    counts = count_views_per_campaign_window(events, campaigns)
    assert sum(counts.values()) == sum(e["event_type"] == "view" for e in events)
    assert {start for _, start in counts} == {START_MS, START_MS + 10_000, START_MS + 20_000}
    assert {campaign for campaign, _ in counts} <= set(campaigns.campaign_ids)


def test_send_ad_events_sends_every_event_in_chunks(monkeypatch, campaigns):
    calls = []

    def fake_send(records, bootstrap, topic, rate=0.0, client_options=None):
        calls.append((list(records), bootstrap, topic, rate))
        return SendReport(topic, bootstrap, len(records), 0, 0.1)

    monkeypatch.setattr(ysb, "send_records", fake_send)
    events = list(ad_events(campaigns, 25, START_MS, 10, seed=1))
    assert send_ad_events("host:9092", "t", iter(events), rate=7.0, chunk=10) == 25
    assert [len(records) for records, *_ in calls] == [10, 10, 5]
    assert all(call[1:] == ("host:9092", "t", 7.0) for call in calls)
    records = [record for records, *_ in calls for record in records]
    assert [record.value for record in records] == [encode(event) for event in events]
    assert all(record.key is None and not record.headers for record in records)
    assert send_ad_events("host:9092", "t", []) == 0


def test_cli_campaigns_and_help(tmp_path, capsys, campaigns):
    out = tmp_path / "c.csv"
    assert ysb.main(["campaigns", "--out", str(out)]) == 0
    assert read_campaigns_csv(out) == campaigns
    assert "1000 ads of 100 campaigns" in capsys.readouterr().out
    for argv in (["--help"], ["produce", "--help"], ["campaigns", "--help"]):
        with pytest.raises(SystemExit) as ended:
            ysb.main(argv)
        assert ended.value.code == 0
    assert "--start-ms" in capsys.readouterr().out


def test_cli_produce_sends_what_it_says(monkeypatch, capsys, campaigns):
    sent = []

    def fake_send(bootstrap, topic, events, rate=0.0):
        sent.extend(events)
        return len(sent)

    monkeypatch.setattr(ysb, "send_ad_events", fake_send)
    argv = ["produce", "--bootstrap", "b:1", "--topic", "ysb-x", "--events", "50", "--rate", "5",
            "--start-ms", str(START_MS), "--partitions", "0"]
    assert ysb.main(argv) == 0
    assert sent == list(ad_events(campaigns, 50, START_MS, 5, seed=42))
    line = capsys.readouterr().out
    assert "sent 50 YSB ad events to ysb-x at b:1" in line
    assert f"event times {START_MS} to {START_MS + 9_800} ms" in line


def test_cli_produce_defaults_to_event_times_in_the_past(monkeypatch, campaigns):
    sent = []

    def fake_send(bootstrap, topic, events, rate=0.0):
        sent.extend(events)
        return len(sent)

    monkeypatch.setattr(ysb, "send_ad_events", fake_send)
    monkeypatch.setattr(ysb.time, "time", lambda: START_MS / 1000)
    assert ysb.main(["produce", "--events", "11", "--rate", "1", "--partitions", "0"]) == 0
    times = [int(e["event_time"]) for e in sent]
    assert times[-1] == START_MS - 60_000 and times[0] == START_MS - 70_000


def test_cli_produce_reports_bad_arguments(capsys, tmp_path):
    assert ysb.main(["produce", "--rate", "0"]) == 2
    assert ysb.main(["produce", "--campaigns", str(tmp_path / "missing.csv")]) == 2
    assert "error:" in capsys.readouterr().err


# The harness, scripts/bench/ysb.py: what can be checked without a broker or Spark.


@pytest.fixture(scope="module")
def harness():
    pytest.importorskip("psutil")  # scripts/bench/throughput.py needs it (the bench extras)
    bench = str(PROJECT_ROOT / "scripts" / "bench")
    had_throughput = "throughput" in sys.modules
    sys.path.insert(0, bench)
    try:
        spec = importlib.util.spec_from_file_location("bench_ysb", Path(bench) / "ysb.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_ysb"] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(bench)
    yield module
    sys.modules.pop("bench_ysb", None)
    if not had_throughput:
        sys.modules.pop("throughput", None)


def test_harness_arguments_and_job_command(harness, tmp_path):
    args = harness._arguments([])
    assert (args.events, args.partitions, args.config) == (1_000_000, 4, "conf/gold/ysb.toml")
    args = harness._arguments(["--events", "500", "--cores", "3", "--job-set", "kafka.max_offsets_per_trigger=9"])
    command = harness.job_command(args, "ysb-t", tmp_path)
    assert command[1:4] == ["jobs/gold.py", "--config", "conf/gold/ysb.toml"]
    sets = [command[i + 1] for i, part in enumerate(command) if part == "--set"]
    assert sets == [
        "gold.source.topic=ysb-t", f"storage.tables_root={tmp_path / 'tables'}",
        f"storage.checkpoint_root={tmp_path / 'checkpoints'}", "spark.master=local[3]",
        "kafka.bootstrap_servers=127.0.0.1:9092", "kafka.starting_offsets=earliest", "gold.trigger=availableNow",
        "kafka.max_offsets_per_trigger=9",
    ]
    for bad in (["--events", "0"], ["--rate", "0"], ["--cores", "0"]):
        with pytest.raises(SystemExit):
            harness._arguments(bad)
    with pytest.raises(SystemExit) as ended:
        harness._arguments(["--help"])
    assert ended.value.code == 0


def test_harness_times_from_the_intake_querys_first_batch_to_the_last_batch(harness):
    def batch(start, ms, rows):
        return {"batch_time": start, "batch_duration_ms": ms, "input_rows": rows}

    batches = {
        "ysb_windows": [batch(99.0, 500, 0), batch(110.0, 2000, 900), batch(113.0, 1000, 0)],  # ends at 114
        "ysb_intake": [batch(100.0, 4000, 0), batch(105.0, 3000, 1000)],  # first with records at 105
    }
    assert harness.processing_span(batches) == (9.0, "ysb_intake")
    # Without a query named *intake, the one that read the most records is the intake.
    assert harness.processing_span({"a": [batch(1.0, 1000, 5)], "b": [batch(2.0, 3000, 7)]}) == (3.0, "b")
    assert harness.processing_span({"a": [batch(1.0, 1000, 0)]}) is None
    assert harness.processing_span({}) is None


def test_harness_table_and_published_figures(harness):
    assert all(figure.per_core > 0 for figure in harness.PUBLISHED)
    flink_kafka = next(f for f in harness.PUBLISHED if f.system.startswith("Flink, JSON from Kafka"))
    assert flink_kafka.per_core == 75_000
    run = harness.YsbRun(1_000_000, 2, "ysb-t", 4, 90.0, wall_seconds=100.0, exit_code=0, processing_seconds=50.0)
    text = harness.table(run)
    assert "| 1,000,000 | 2 | 100.0 | 10,000 | 5,000 | 50.0 | 20,000 | 10,000 |" in text
    assert "| 75,000 | 0.133 |" in text  # 10,000 per core against Flink's 75,000
    assert "10,000 events/s (first batch → end)" in text
    failed = harness.YsbRun(1_000, 2, "ysb-t", 4, 1.0, wall_seconds=4.0, exit_code=1, note="exit code 1")
    text = harness.table(failed)
    assert "| 1,000 | 2 | 4.0 | - | - | - | - | - |" in text and "| 75,000 | - |" in text
