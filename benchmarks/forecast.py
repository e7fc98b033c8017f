"""Forecast rebuild, as-of forecast and backtest speed on SQLite, next to the event store's own replay.

    python benchmarks/forecast.py [--opportunities 20000] [--repeat 3] [--dir DIR] [--fresh]

The data: ``crmcore.testing.sales.simulate_sales`` plans two years of a sales team's work on
``--opportunities`` deals (seed 1; weekly reviews re-estimating values and moving close dates, about 50
events per deal: some 1,000,000 events for 20,000 deals), written once with ``load_sales`` to a SQLite file
that later runs reuse (``--fresh`` writes it again).

Each round measures, on that file:

1. crmcore: ``crm.rebuild_view("pipeline")`` - the forecast's view rebuilt from zero (read, decode, fold,
   write the rows) - in events/s;
2. the baseline, in the same round: the event store's own decode-and-replay of the same events -
   ``recorder.select_notifications`` pages of 2,000 with the same topic filter and
   ``mapper.to_domain_event`` on each, building the events and nothing else - in events/s;
3. one as-of forecast, ``crm.forecast(at=…)`` a year back (a fold of the whole log in memory);
4. a 12-month backtest, ``crm.backtest(periods=12)``;
5. (1), (3) and (4) again with ``CRM(..., replay_workers=--workers)`` (default 2): the fold shared between
   that many processes, each over its share of the opportunities.

``ratio_vs_event_store_replay`` is the median over rounds of (1) divided by (2), and
``shared_ratio_vs_event_store_replay`` the same for (5); the target is 2 or more, with 100,000 events/s or
more. The machine's speed drifts: compare ratios measured in one round, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _baseline import replay_baseline, timed

from crmcore import CRM
from crmcore.projections.pipeline import PipelineView
from crmcore.testing.sales import load_sales, simulate_sales

SEED = 1


def build(path: Path, opportunities: int) -> None:
    """Write the simulated history to a fresh SQLite file."""
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    started = time.perf_counter()
    now = datetime.now(UTC)
    steps = simulate_sales(opportunities=opportunities, start=now - timedelta(days=735), days=730, seed=SEED,
                           touches_per_week=2.7, dwell_days=60)
    parties = [uuid.UUID(int=SEED << 64 | i) for i in range(opportunities)]
    with CRM(f"sqlite:///{path}") as crm:
        load_sales(crm, steps, parties.__getitem__)
    print(f"wrote {len(steps):,} events for {opportunities:,} opportunities in "
          f"{time.perf_counter() - started:.0f} s to {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opportunities", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--fresh", action="store_true", help="write the data file again")
    parser.add_argument("--workers", type=int, default=2, help="processes for the shared fold (5)")
    args = parser.parse_args()

    path = args.dir / f"crmcore-forecast-{args.opportunities}-seed{SEED}.sqlite"
    if args.fresh or not path.exists():
        build(path, args.opportunities)
    rebuild_rates, baseline_rates, ratios, as_of_times, backtest_times = [], [], [], [], []
    shared_rates, shared_ratios, shared_as_of, shared_backtest = [], [], [], []
    url = f"sqlite:///{path}"
    with CRM(url) as crm, CRM(url, replay_workers=args.workers) as shared:
        events = crm.position
        first = min(datetime.fromisoformat(r["opened_at"]) for r in crm.view_rows(PipelineView.name))
        moment = first + (datetime.now(UTC) - first) / 2
        print(f"{events:,} events in the log, opportunities opened from {first:%Y-%m-%d}")
        for round_ in range(1, args.repeat + 1):
            gc.collect()
            started = time.perf_counter()
            applied = crm.rebuild_view(PipelineView.name)
            rebuild = applied / (time.perf_counter() - started)
            gc.collect()
            replayed, seconds = replay_baseline(crm, PipelineView.topics())
            baseline = replayed / seconds
            gc.collect()
            as_of = timed(lambda: crm.forecast(at=moment))
            gc.collect()
            backtest = timed(lambda: crm.backtest(periods=12))
            gc.collect()
            started = time.perf_counter()
            shared_rebuild = shared.rebuild_view(PipelineView.name) / (time.perf_counter() - started)
            shared_as_of.append(timed(lambda: shared.forecast(at=moment)))
            shared_backtest.append(timed(lambda: shared.backtest(periods=12)))
            shared_rates.append(shared_rebuild)
            shared_ratios.append(shared_rebuild / baseline)
            rebuild_rates.append(rebuild)
            baseline_rates.append(baseline)
            ratios.append(rebuild / baseline)
            as_of_times.append(as_of)
            backtest_times.append(backtest)
            print(f"round {round_}: rebuild {applied:,} events at {rebuild:,.0f} events/s; "
                  f"event store replay {baseline:,.0f} events/s (ratio {rebuild / baseline:.2f}); "
                  f"as-of forecast {as_of:.2f} s; 12-month backtest {backtest:.2f} s; "
                  f"on {args.workers} processes: rebuild {shared_rebuild:,.0f} events/s "
                  f"(ratio {shared_rebuild / baseline:.2f}), as-of {shared_as_of[-1]:.2f} s, "
                  f"backtest {shared_backtest[-1]:.2f} s")
        result = crm.backtest(periods=12)
    accuracy = next(iter(result.currencies.values())).accuracy if result.currencies else None
    print(f"rebuild_events_per_s={statistics.median(rebuild_rates):,.0f} (best {max(rebuild_rates):,.0f})")
    print(f"event_store_replay_events_per_s={statistics.median(baseline_rates):,.0f}")
    print(f"ratio_vs_event_store_replay={statistics.median(ratios):.2f}")
    print(f"as_of_forecast_s={statistics.median(as_of_times):.2f}")
    print(f"backtest_12_months_s={statistics.median(backtest_times):.2f}")
    print(f"shared_rebuild_events_per_s={statistics.median(shared_rates):,.0f} ({args.workers} processes)")
    print(f"shared_ratio_vs_event_store_replay={statistics.median(shared_ratios):.2f}")
    print(f"shared_as_of_forecast_s={statistics.median(shared_as_of):.2f}")
    print(f"shared_backtest_12_months_s={statistics.median(shared_backtest):.2f}")
    if accuracy is not None:
        print(f"backtest: weighted forecast {accuracy.forecast_weighted:,.0f}, "
              f"won {accuracy.won_value:,.0f}, WAPE {accuracy.wape_percent}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
