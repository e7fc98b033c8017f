"""Campaign read models' rebuild speed and campaign results' read time on SQLite, next to the event store's
own replay.

    python benchmarks/campaign_results.py [--events 100000] [--repeat 5] [--dir DIR] [--fresh] [--workers N]

The data: one newsletter campaign (``crmcore.testing.campaigns.running_campaign``) sent to enough
recipients that ``simulate_engagement`` (seed 1: deliveries, bounces, opens, clicks, unsubscribes,
complaints, shuffled) reports about ``--events`` facts (about 1.9 per recipient), written once to a SQLite
file that later runs reuse (``--fresh`` writes it again).

Each round measures, on that file:

1. ``crm.rebuild_view("campaign_recipients")`` - the view rebuilt from zero (read, decode, fold, write the
   rows) - in events/s; the same for ``party_engagement``;
2. the baseline, in the same round: the event store's own decode-and-replay of the same events
   (``benchmarks/_baseline.py``) - in events/s;
3. ``crm.campaign_results(c)`` now (from the stored rows) and as of a moment (every view folded in memory).

With ``--workers 2`` the rebuilds are shared between two processes (``CRM(replay_workers=2)``: each folds
the reports of half the aggregates, the rows of a key are combined); the baseline stays one process.
``ratio_vs_event_store_replay`` is the median over rounds of (1) divided by (2). The machine's speed drifts:
compare ratios measured in one round, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _baseline import replay_baseline, timed

from crmcore import CRM
from crmcore.projections.campaigns import CampaignRecipientsView, PartyEngagementView
from crmcore.testing.campaigns import running_campaign, simulate_engagement, store

SEED = 1
EVENTS_PER_RECIPIENT = 1.87  # what simulate_engagement reports per recipient, on average


def build(path: Path, events: int) -> None:
    """Write the campaign and its reports to a fresh SQLite file."""
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    started = time.perf_counter()
    start = datetime.now(UTC) - timedelta(days=60)
    recipients = [uuid.UUID(int=SEED << 64 | i) for i in range(int(events / EVENTS_PER_RECIPIENT))]
    with CRM(f"sqlite:///{path}") as crm:
        campaign = running_campaign(newsletter=recipients, at=start, name="Benchmark")
        crm._save(campaign)
        stored = store(crm, simulate_engagement(campaign.id, recipients, start=start, seed=SEED))
    print(f"wrote {stored:,} reports about {len(recipients):,} recipients in "
          f"{time.perf_counter() - started:.0f} s to {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--fresh", action="store_true", help="write the data file again")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes sharing a rebuild (CRM(replay_workers=...)); default 1")
    args = parser.parse_args()

    path = args.dir / f"crmcore-campaign-{args.events}-seed{SEED}.sqlite"
    if args.fresh or not path.exists():
        build(path, args.events)
    rates, engagement_rates, baselines, ratios, now_times, as_of_times = [], [], [], [], [], []
    with CRM(f"sqlite:///{path}", replay_workers=args.workers) as crm:
        (row,) = crm.view_rows("campaigns")
        campaign_id = row["campaign_id"]
        moment = datetime.fromisoformat(row["launched_at"]) + timedelta(days=20)
        for round_ in range(1, args.repeat + 1):
            gc.collect()
            started = time.perf_counter()
            applied = crm.rebuild_view(CampaignRecipientsView.name)
            rate = applied / (time.perf_counter() - started)
            gc.collect()
            started = time.perf_counter()
            engagement = crm.rebuild_view(PartyEngagementView.name) / (time.perf_counter() - started)
            gc.collect()
            replayed, seconds = replay_baseline(crm, CampaignRecipientsView.topics())
            baseline = replayed / seconds
            gc.collect()
            now = timed(lambda: crm.campaign_results(campaign_id))
            as_of = timed(lambda: crm.campaign_results(campaign_id, at=moment))
            rates.append(rate)
            engagement_rates.append(engagement)
            baselines.append(baseline)
            ratios.append(rate / baseline)
            now_times.append(now)
            as_of_times.append(as_of)
            print(f"round {round_}: campaign_recipients rebuilt from {applied:,} events at {rate:,.0f} "
                  f"events/s; party_engagement at {engagement:,.0f} events/s; event store replay "
                  f"{baseline:,.0f} events/s (ratio {rate / baseline:.2f}); results now {now:.2f} s, "
                  f"as of a moment {as_of:.2f} s")
        results = crm.campaign_results(campaign_id)
    print(f"campaign_recipients_rebuild_events_per_s={statistics.median(rates):,.0f} "
          f"(best {max(rates):,.0f})")
    print(f"party_engagement_rebuild_events_per_s={statistics.median(engagement_rates):,.0f}")
    print(f"event_store_replay_events_per_s={statistics.median(baselines):,.0f}")
    print(f"ratio_vs_event_store_replay={statistics.median(ratios):.2f}")
    print(f"campaign_results_now_s={statistics.median(now_times):.2f}")
    print(f"campaign_results_as_of_s={statistics.median(as_of_times):.2f}")
    print(f"results: sent {results.sent:,}, delivered {results.delivered:,}, opened {results.opened:,} "
          f"(open rate {results.open_rate}), clicked {results.clicked:,} (click rate {results.click_rate})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
