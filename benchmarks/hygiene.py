"""Hygiene speed on SQLite: the hygiene report now and as of a past date, and the clean-up's what-if over
eight quarters, next to the event store's own replay of every event, on two years of a CRM's history.

    python benchmarks/hygiene.py [--parties 100000] [--repeat 3] [--dir DIR] [--fresh] [--real-run]

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
2. the full report now, and as of one year before the history's end (every view it reads folded as of
   then), the quarterly trend over eight quarters, the clean-up's dry run now, and
   ``crm.clean_up_what_if(quarters=8)``: each in seconds and as a ratio to the baseline's seconds.

With ``--real-run``, one real clean-up (every action recorded) and the revert of all of it are timed once,
on a copy of the file. The machine's speed drifts: compare ratios measured in one round, not absolute
numbers across runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

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


KINDS = ("newsletter", "set_aside", "suppress_address", "completion_task")


def real_run(path: Path) -> None:
    """Time one real clean-up (recording every action) and reverting all of it, on a copy of the file."""
    with tempfile.TemporaryDirectory(dir=path.parent) as folder:
        copy = Path(folder) / path.name
        shutil.copyfile(path, copy)
        with CRM(f"sqlite:///{copy}") as crm:
            started = time.perf_counter()
            run = crm.clean_up(actor="bench")
            ran = time.perf_counter() - started
            started = time.perf_counter()
            back = crm.revert_clean_up(run.run_id or uuid4(), actor="bench")
            reverted = time.perf_counter() - started
    print(f"clean_up_real_run_s={ran:.2f} ({len(run.actions):,} actions on {len(run.parties):,} parties, "
          f"{len(run.actions) / ran:,.0f} actions/s)")
    print(f"clean_up_revert_all_s={reverted:.2f} ({len(back.reverted):,} parties)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parties", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--fresh", action="store_true", help="write the data file again")
    parser.add_argument("--real-run", action="store_true",
                        help="also time one real clean-up and its revert, on a copy of the file")
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

    replays, replay_times = [], []
    measured = {
        "hygiene_report_now": lambda crm: crm.hygiene_report(),
        "hygiene_report_as_of": lambda crm: crm.hygiene_report(at=past),
        "hygiene_trend_8_quarters": lambda crm: crm.hygiene_trend(quarters=8),
        "clean_up_dry_run": lambda crm: crm.clean_up(actor="bench", dry_run=True),
        "clean_up_what_if_8_quarters": lambda crm: crm.clean_up_what_if(quarters=8),
    }
    timings: dict[str, list[float]] = {name: [] for name in measured}
    results: dict[str, Any] = {}
    with CRM(f"sqlite:///{path}") as crm:
        for round_ in range(1, args.repeat + 1):
            gc.collect()
            replayed, seconds = replay_baseline(crm, [])
            replays.append(replayed / seconds)
            replay_times.append(seconds)
            line = (f"round {round_}: event store replay of {replayed:,} events in {seconds:.1f} s "
                    f"({replayed / seconds:,.0f} events/s)")
            for name, call in measured.items():
                gc.collect()

                def run(name: str = name, call: Any = call) -> None:
                    results[name] = call(crm)

                timings[name].append(timed(run))
                line += f"; {name} {timings[name][-1]:.1f} s (ratio {timings[name][-1] / seconds:.2f})"
            print(line, flush=True)
    replay_s = statistics.median(replay_times)
    print(f"parties={args.parties}")
    print(f"events={built['events']}")
    print(f"generate_s={built['generate_s']}")
    print(f"save_s={built['save_s']}")
    print(f"event_store_replay_events_per_s={statistics.median(replays):,.0f}")
    print(f"event_store_replay_s={replay_s:.1f}")
    for name, times in timings.items():
        median = statistics.median(times)
        print(f"{name}_s={median:.2f}")
        print(f"{name}_vs_event_store_replay={median / replay_s:.2f}")
    print(f"report counts now: {results['hygiene_report_now'].counts}")
    dry = results["clean_up_dry_run"]
    print(f"dry run: {len(dry.actions):,} actions ({', '.join(f'{k} {dry.count(k):,}' for k in KINDS)})")
    for quarter in results["clean_up_what_if_8_quarters"]:
        print(f"what-if {quarter.quarter}: {quarter.newsletter:,} moved, {quarter.opened:,} opened after, "
              f"{quarter.bought:,} bought after")
    if args.real_run:
        real_run(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
