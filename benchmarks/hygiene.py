"""Hygiene speed on SQLite: the hygiene report now and as of a past date, and the clean-up's what-if over
eight quarters, next to the event store's own replay of every event, on two years of a CRM's history.

    python benchmarks/hygiene.py [--parties 100000] [--repeat 3] [--dir DIR] [--fresh]

The data (seed 1, written once to a SQLite file that later runs reuse; ``--fresh`` writes it again):
``crmcore.testing.history.simulate_history`` - ``--parties`` persons and organizations over two years
ending the day before the file is written: registrations, stage changes (engaged, qualified, converted on
won deals, disqualified, re-opened), owners, opportunities won, lost and open, consent, a quarterly
newsletter with deliveries, opens, clicks, bounces, unsubscribes and complaints, the suppressions and
unsubscriptions the engagement policies record, custom fields, a few duplicates (about 11 events a party).
After loading, the CRM's policies run once (they find nothing to record) and every view is caught up, so
the rounds measure reads, not the first catch-up. What the build measured (events, seconds to generate, to
save, to settle) is kept beside the file (``.json``) and printed on every run.

Each round measures, on that file:

1. the baseline: the event store's own decode-and-replay of every event (``benchmarks/_baseline.py``
   over all topics), in events/s;
2. if ``CRM`` has ``hygiene_report``: the full report now, and as of one year before the history's end
   (every view it reads folded as of then), in seconds and as a ratio to the baseline's seconds;
3. if ``CRM`` has ``clean_up_what_if``: ``crm.clean_up_what_if(quarters=8)``, in seconds and as a ratio.

What ``CRM`` does not have yet is said, and not measured. The machine's speed drifts: compare ratios
measured in one round, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _baseline import replay_baseline, timed

from crmcore import CRM
from crmcore.testing.history import load_history, simulate_history

SEED = 1
YEARS = 2


def build(path: Path, parties: int) -> dict[str, Any]:
    """Write two years of history to a fresh SQLite file; returns what the build measured (also saved)."""
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=365 * YEARS + 1)
    started = time.perf_counter()
    history = simulate_history(parties=parties, seed=SEED, start=start, years=YEARS)
    generated = time.perf_counter() - started
    summary = history.summary
    with CRM(f"sqlite:///{path}") as crm:
        started = time.perf_counter()
        events = load_history(crm, history)
        saved = time.perf_counter() - started
        del history
        gc.collect()
        started = time.perf_counter()
        crm.run_policies()
        settled = time.perf_counter() - started
        started = time.perf_counter()
        crm.update_views()
        caught_up = time.perf_counter() - started
    built = {
        "parties": parties, "seed": SEED, "events": events, "start": summary.start.isoformat(),
        "end": summary.end.isoformat(), "generate_s": round(generated, 1), "save_s": round(saved, 1),
        "policies_s": round(settled, 1), "views_s": round(caught_up, 1),
        "summary": {
            "by_stage": dict(summary.by_stage), "never_progressed": summary.never_progressed,
            "stale": summary.stale, "stale_candidates": summary.stale_candidates,
            "open_opportunities": summary.open_opportunities, "won": summary.won, "lost": summary.lost,
            "mailed": summary.mailed, "inactive": summary.inactive, "suppressed": summary.suppressed,
            "unsubscribed": dict(summary.unsubscribed), "missing_contact": summary.missing_contact,
            "missing_region": summary.missing_region, "duplicates": len(summary.duplicates),
            "rule_breaks": summary.rule_breaks,
        },
    }
    Path(f"{path}.json").write_text(json.dumps(built, indent=1))
    return built


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parties", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--fresh", action="store_true", help="write the data file again")
    args = parser.parse_args()

    path = args.dir / f"crmcore-hygiene-{args.parties}-seed{SEED}.sqlite"
    sidecar = Path(f"{path}.json")
    if args.fresh or not path.exists() or not sidecar.exists():
        built = build(path, args.parties)
        print(f"wrote {built['events']:,} events about {args.parties:,} parties to {path}")
    else:
        built = json.loads(sidecar.read_text())
        print(f"reusing {path} ({built['events']:,} events about {args.parties:,} parties)")
    print(f"build: generated in {built['generate_s']} s, saved in {built['save_s']} s "
          f"({built['events'] / max(built['save_s'], 1e-9):,.0f} events/s), policies settled in "
          f"{built['policies_s']} s, views caught up in {built['views_s']} s")
    print(f"history {built['start'][:10]} .. {built['end'][:10]}: {json.dumps(built['summary'])}")
    end = datetime.fromisoformat(built["end"])
    past = end - timedelta(days=365)

    has_report = hasattr(CRM, "hygiene_report")
    has_what_if = hasattr(CRM, "clean_up_what_if")
    if not has_report:
        print("CRM.hygiene_report is not available in this build: the report is not measured")
    if not has_what_if:
        print("CRM.clean_up_what_if is not available in this build: the what-if is not measured")

    replays, replay_times = [], []
    timings: dict[str, list[float]] = {"now": [], "as_of": [], "what_if": []}
    counts: Any = None
    with CRM(f"sqlite:///{path}") as crm:
        for round_ in range(1, args.repeat + 1):
            gc.collect()
            replayed, seconds = replay_baseline(crm, [])
            replays.append(replayed / seconds)
            replay_times.append(seconds)
            line = (f"round {round_}: event store replay of {replayed:,} events in {seconds:.1f} s "
                    f"({replayed / seconds:,.0f} events/s)")
            if has_report:
                gc.collect()
                report = None

                def now() -> None:
                    nonlocal report
                    report = crm.hygiene_report()  # type: ignore[attr-defined]

                timings["now"].append(timed(now))
                counts = getattr(report, "counts", None)
                gc.collect()
                timings["as_of"].append(timed(lambda: crm.hygiene_report(at=past)))  # type: ignore[attr-defined]
                line += (f"; hygiene report now {timings['now'][-1]:.1f} s "
                         f"(ratio {timings['now'][-1] / seconds:.2f}), as of {past.date()} "
                         f"{timings['as_of'][-1]:.1f} s (ratio {timings['as_of'][-1] / seconds:.2f})")
            if has_what_if:
                gc.collect()
                timings["what_if"].append(
                    timed(lambda: crm.clean_up_what_if(quarters=8)))  # type: ignore[attr-defined]
                line += (f"; what-if over 8 quarters {timings['what_if'][-1]:.1f} s "
                         f"(ratio {timings['what_if'][-1] / seconds:.2f})")
            print(line, flush=True)
    replay_s = statistics.median(replay_times)
    print(f"parties={args.parties}")
    print(f"events={built['events']}")
    print(f"generate_s={built['generate_s']}")
    print(f"save_s={built['save_s']}")
    print(f"event_store_replay_events_per_s={statistics.median(replays):,.0f}")
    print(f"event_store_replay_s={replay_s:.1f}")
    for key, label in (("now", "hygiene_report_now"), ("as_of", "hygiene_report_as_of"),
                       ("what_if", "clean_up_what_if_8_quarters")):
        if timings[key]:
            median = statistics.median(timings[key])
            print(f"{label}_s={median:.2f}")
            print(f"{label}_vs_event_store_replay={median / replay_s:.2f}")
        else:
            print(f"{label}_s=not available")
    if counts is not None:
        print(f"report counts now: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
