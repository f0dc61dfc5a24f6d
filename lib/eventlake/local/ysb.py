"""The Yahoo Streaming Benchmark (YSB): its campaigns, its ad events, and the count it asks for.

What the published benchmark generates, read in ``yahoo/streaming-benchmarks``, ``data/src/setup/core.clj``
(the data generator; the Flink, Spark and Storm jobs of that repository read what it writes):

- ``make-kafka-event-at`` writes each ad event as a JSON object with the keys, in this order, ``user_id``,
  ``page_id``, ``ad_id``, ``ad_type``, ``event_type``, ``event_time``, ``ip_address``: ``user_id``, ``page_id``
  and ``ad_id`` are UUID strings, ``ad_type`` is one of ``banner``, ``modal``, ``sponsored-search``, ``mail``,
  ``mobile``, ``event_type`` one of ``view``, ``click``, ``purchase`` (each drawn uniformly, ``rand-nth``),
  ``event_time`` is epoch milliseconds written as a *string*, and ``ip_address`` is always ``"1.2.3.4"``.
  Its real-time mode (``run``) draws ``user_id`` and ``page_id`` from 100 UUIDs each; so does this module.
- ``do-new-setup``/``gen-ads``/``write-to-redis``: 100 campaigns (``num-campaigns``) of 10 ads each; the
  1,000 ad ids are cut in tens, the i-th ten belonging to the i-th campaign.
- ``dostats`` (the benchmark's own check): the count of ``view`` events per campaign and 10-second window,
  the window of an event being ``event_time / 10000`` (``time-divisor``): :func:`count_views_per_campaign_window`.

Two deliberate differences: the ids come from a seeded ``random.Random`` (not ``UUID/randomUUID``), so a run
is reproducible; and :func:`encode` writes compact JSON (``{"user_id":"…","page_id":…}``) where core.clj
writes ``{"user_id": "…", "page_id": …}`` with a space after each colon and comma: the same object to any
JSON reader, 13 bytes shorter. Event times advance evenly by ``1000 / events_per_second`` ms from a chosen
start, so that a run's event times, and so its windows, are known before it is sent.

``python -m eventlake.local.ysb --help`` for the CLI: ``campaigns`` writes the campaigns CSV (the shipped one is
``conf/dimensions/ysb_campaigns.csv``, ``make_campaigns(seed=7)``), ``produce`` sends events to Kafka.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from eventlake.local.producer import ProducedRecord, send_records
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.kafka_admin import create_topic

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CAMPAIGNS_CSV = PROJECT_ROOT / "conf" / "dimensions" / "ysb_campaigns.csv"
DEFAULT_TOPIC = "ysb-ad-events"

# core.clj: the keys of an ad event in the order it writes them, and the values it draws from.
FIELDS = ("user_id", "page_id", "ad_id", "ad_type", "event_type", "event_time", "ip_address")
AD_TYPES = ("banner", "modal", "sponsored-search", "mail", "mobile")
EVENT_TYPES = ("view", "click", "purchase")
IP_ADDRESS = "1.2.3.4"
USERS = 100  # core.clj `run`: (make-ids 100) user ids and as many page ids
PAGES = 100
WINDOW_MS = 10_000  # core.clj `time-divisor`: 10-second windows
CSV_HEADER = ("ad_id", "campaign_id")
# Events generated and sent at a time, so that a million never sit in memory at once.
SEND_CHUNK = 100_000


@dataclass(frozen=True)
class Campaigns:
    """The ads of the benchmark's campaigns: ``ads`` maps each ad id to its campaign id, campaign by campaign."""

    ads: dict[str, str]

    @property
    def campaign_ids(self) -> list[str]:
        """The campaign ids, each once, in the order of their first ad."""
        return list(dict.fromkeys(self.ads.values()))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _uuids(rng: random.Random, count: int) -> list[str]:
    ids = [_uuid(rng) for _ in range(count)]
    if len(set(ids)) != count:  # 122 random bits: never in practice, but a silent duplicate would merge ads
        raise ValueError("drew the same UUID twice; choose another seed")
    return ids


def make_campaigns(seed: int = 7, campaigns: int = 100, ads_per_campaign: int = 10) -> Campaigns:
    """``campaigns`` campaigns of ``ads_per_campaign`` ads each, all ids random UUIDs from ``random.Random(seed)``:
    first the campaign ids, then the ad ids, the i-th run of ``ads_per_campaign`` ads going to the i-th campaign
    (as core.clj's ``write-to-redis`` pairs them)."""
    if campaigns < 1 or ads_per_campaign < 1:
        raise ValueError(f"campaigns and ads_per_campaign must be at least 1, got {campaigns} and {ads_per_campaign}")
    rng = random.Random(seed)
    campaign_ids = _uuids(rng, campaigns)
    ad_ids = _uuids(rng, campaigns * ads_per_campaign)
    if set(ad_ids) & set(campaign_ids):
        raise ValueError("an ad id equals a campaign id; choose another seed")
    return Campaigns({ad: campaign_ids[index // ads_per_campaign] for index, ad in enumerate(ad_ids)})


def write_campaigns_csv(campaigns: Campaigns, path: str | Path) -> None:
    """Write ``campaigns`` as CSV: the header ``ad_id,campaign_id``, then one line per ad (``\\n`` line ends)."""
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(campaigns.ads.items())


def read_campaigns_csv(path: str | Path) -> Campaigns:
    """The campaigns of a CSV file as :func:`write_campaigns_csv` writes it. Raises ValueError when the header
    is not ``ad_id,campaign_id``, a line has not two values, or an ad appears twice."""
    ads: dict[str, str] = {}
    with Path(path).open(encoding="utf-8", newline="") as source:
        rows = csv.reader(source)
        header = next(rows, None)
        if header is None or tuple(field.strip() for field in header) != CSV_HEADER:
            raise ValueError(f"{path}: the first line must be the header {','.join(CSV_HEADER)}, got {header}")
        for line_number, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != 2 or not all(value.strip() for value in row):
                raise ValueError(f"{path}, line {line_number}: expected ad_id,campaign_id, got {row}")
            ad_id, campaign_id = (value.strip() for value in row)
            if ad_id in ads:
                raise ValueError(f"{path}, line {line_number}: ad {ad_id} appears twice")
            ads[ad_id] = campaign_id
    return Campaigns(ads)


def ad_events(
    campaigns: Campaigns, count: int, start_ms: int, events_per_second: float, seed: int
) -> Iterator[dict[str, str]]:
    """``count`` ad events in the published form, keys in the published order (all values strings).

    Event ``i`` has ``event_time`` ``start_ms + floor(i * 1000 / events_per_second)``: the run's event times
    are known in advance. The ad is drawn uniformly from ``campaigns``, the user and page from 100 ids each,
    ad and event type uniformly, every draw from ``random.Random(seed)`` in core.clj's order (user, page, ad,
    ad type, event type). Lazy: events are made as they are consumed.
    """
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    if not events_per_second > 0:
        raise ValueError(f"events_per_second must be more than 0, got {events_per_second}")
    if not campaigns.ads:
        raise ValueError("campaigns has no ads")
    return _ad_events(campaigns, count, start_ms, events_per_second, seed)


def _ad_events(
    campaigns: Campaigns, count: int, start_ms: int, events_per_second: float, seed: int
) -> Iterator[dict[str, str]]:
    rng = random.Random(seed)
    users, pages = _uuids(rng, USERS), _uuids(rng, PAGES)
    ads = list(campaigns.ads)
    # The period as an exact fraction p/q of milliseconds: event times are integer arithmetic, never rounded twice.
    period = Fraction(1000) / Fraction(events_per_second)
    p, q = period.numerator, period.denominator
    choice = rng.choice
    for index in range(count):
        yield {
            "user_id": choice(users),
            "page_id": choice(pages),
            "ad_id": choice(ads),
            "ad_type": choice(AD_TYPES),
            "event_type": choice(EVENT_TYPES),
            "event_time": str(start_ms + index * p // q),
            "ip_address": IP_ADDRESS,
        }


def event_time_span_ms(count: int, events_per_second: float) -> int:
    """Milliseconds from the first to the last event time of ``count`` events at ``events_per_second``."""
    if count < 2:
        return 0
    period = Fraction(1000) / Fraction(events_per_second)
    return (count - 1) * period.numerator // period.denominator


def encode(event: Mapping[str, str]) -> bytes:
    """The event as compact UTF-8 JSON, its keys in the published order (see :data:`FIELDS`)."""
    return json.dumps({key: event[key] for key in FIELDS}, separators=(",", ":"), ensure_ascii=False).encode()


def count_views_per_campaign_window(
    events: Iterable[Mapping[str, str] | bytes], campaigns: Campaigns, window_ms: int = WINDOW_MS
) -> dict[tuple[str, int], int]:
    """What the benchmark computes, counted here independently: (campaign id, window start ms) -> the number of
    ``view`` events of that campaign whose ``event_time`` falls in the window ``[start, start + window_ms)``.

    ``events`` are dicts or their encoded JSON. Events of an ad that no campaign has are left out (the benchmark
    joins ads to campaigns), as are clicks and purchases.
    """
    if window_ms < 1:
        raise ValueError(f"window_ms must be at least 1, got {window_ms}")
    counts: Counter[tuple[str, int]] = Counter()
    for event in events:
        fields = json.loads(event) if isinstance(event, bytes) else event
        if fields["event_type"] != "view":
            continue
        campaign = campaigns.ads.get(fields["ad_id"])
        if campaign is None:
            continue
        moment = int(fields["event_time"])
        counts[(campaign, moment - moment % window_ms)] += 1
    return dict(counts)


def send_ad_events(
    bootstrap: str,
    topic: str,
    events: Iterable[Mapping[str, str]],
    rate: float = 0.0,
    chunk: int = SEND_CHUNK,
    client_options: dict[str, str] | None = None,
) -> int:
    """Send ``events`` (encoded with :func:`encode`, without a key, as core.clj sends them) to ``topic`` and
    return how many were sent.

    Sent ``chunk`` at a time with :func:`eventlake.local.producer.send_records` (idempotent, ``acks=all``), which
    waits until every record of the chunk is acknowledged and raises EnvironmentProblem when the broker does not
    answer, the topic does not exist, or any record could not be delivered. ``rate``: records per second
    (0: as fast as possible).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    sent = 0
    iterator = iter(events)
    while batch := list(itertools.islice(iterator, chunk)):
        records = [ProducedRecord(None, encode(event), "ysb") for event in batch]
        sent += send_records(records, bootstrap, topic, rate=rate, client_options=client_options).sent
    return sent


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m eventlake.local.ysb",
        description="The Yahoo Streaming Benchmark's campaigns (CSV) and ad events (to Kafka), as it publishes them.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    campaigns = commands.add_parser("campaigns", help="write the campaigns CSV (ad_id,campaign_id)")
    campaigns.add_argument("--out", required=True, metavar="PATH", help="the CSV file to write")
    campaigns.add_argument("--seed", type=int, default=7, metavar="N", help="default: 7 (the shipped file's)")
    campaigns.add_argument("--campaigns", type=int, default=100, metavar="N", help="default: 100")
    campaigns.add_argument("--ads-per-campaign", type=int, default=10, metavar="N", help="default: 10")
    produce = commands.add_parser("produce", help="send generated ad events to a Kafka topic")
    add = produce.add_argument
    add("--bootstrap", "--bootstrap-servers", dest="bootstrap", default="127.0.0.1:9092", metavar="HOST:PORT",
        help="default: 127.0.0.1:9092")
    add("--topic", default=DEFAULT_TOPIC, help=f"default: {DEFAULT_TOPIC}")
    add("--partitions", type=int, default=2, metavar="N",
        help="create the topic with N partitions when it does not exist (default: 2; 0: it must exist)")
    add("--events", type=int, default=100_000, metavar="N", help="number of events (default: 100,000)")
    add("--rate", type=float, default=10_000.0, metavar="R",
        help="events per second of event time: event times advance by 1000/R ms (default: 10,000)")
    add("--start-ms", type=int, metavar="MS", help="event time of the first event, epoch ms (default: so that "
        "the last event time is a minute ago, every event in the past)")
    add("--send-rate", type=float, default=0.0, metavar="R",
        help="records per second the producer sends at; 0 (the default) for as fast as it can")
    add("--seed", type=int, default=42, metavar="N", help="the same seed gives the same events (default: 42)")
    add("--campaigns", default=str(CAMPAIGNS_CSV), metavar="PATH",
        help="campaigns CSV whose ads the events name (default: conf/dimensions/ysb_campaigns.csv)")
    return parser.parse_args(argv)


def _produce(args: argparse.Namespace) -> str:
    if args.events < 0 or not args.rate > 0 or args.send_rate < 0:
        raise ValueError("--events must be 0 or more, --rate more than 0 and --send-rate 0 or more")
    try:
        campaigns = read_campaigns_csv(args.campaigns)
    except OSError as error:
        raise ValueError(f"cannot read --campaigns {args.campaigns}: {error.strerror or error}") from None
    span = event_time_span_ms(args.events, args.rate)
    start_ms = args.start_ms if args.start_ms is not None else int(time.time() * 1000) - 60_000 - span
    if args.partitions > 0:
        create_topic(args.bootstrap, args.topic, args.partitions)
    started = time.monotonic()
    events = ad_events(campaigns, args.events, start_ms, args.rate, args.seed)
    sent = send_ad_events(args.bootstrap, args.topic, events, rate=args.send_rate)
    seconds = time.monotonic() - started
    per_second = sent / seconds if seconds > 0 else 0.0
    return (
        f"sent {sent} YSB ad events to {args.topic} at {args.bootstrap} in {seconds:.2f} s ({per_second:.0f} "
        f"records/s); event times {start_ms} to {start_ms + span} ms ({args.rate:g} events/s of event time), "
        f"ads of {len(campaigns.campaign_ids)} campaigns from {args.campaigns}, seed {args.seed}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; prints what it did and returns the exit code (2 for a user or environment error)."""
    args = _arguments(argv)
    try:
        if args.command == "campaigns":
            campaigns = make_campaigns(args.seed, args.campaigns, args.ads_per_campaign)
            write_campaigns_csv(campaigns, args.out)
            print(f"wrote {len(campaigns.ads)} ads of {len(campaigns.campaign_ids)} campaigns to {args.out} "
                  f"(seed {args.seed})")
        else:
            print(_produce(args))
    except (ValueError, OSError, EnvironmentProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: records not yet acknowledged may be missing from the topic", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
