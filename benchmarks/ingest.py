"""Provider event ingestion on SQLite, next to a plain insert of the same rows measured in the same run.

    python benchmarks/ingest.py [--events 100000] [--duplicates 0.1] [--batch 5000] [--repeat 3] [--dir DIR]

Each round, on a fresh SQLite file:

1. seed (not timed): parties registered in bulk, each with an e-mail address, and a running campaign built
   directly with the ``Campaign`` aggregate - a newsletter sent (one wave) to every party, and a
   telemarketing call list of a tenth of them;
2. generate (seed 1) ``--events`` distinct provider events in a realistic mix - a delivery for ~97 % of the
   recipients, ~2 % soft bounces (some addresses twice or three times), ~1 % hard bounces, opens for ~30 %
   of those delivered (one to three each), clicks for ~8 % (one or two), unsubscriptions (~0.5 %),
   spam complaints (~0.05 %), calls (one or two per entry of the call list) - then add ``--duplicates``
   (a share, default 10 %) of them again and shuffle the lot;
3. ``crm.ingest(events, source=..., actor=..., batch_size=--batch)`` in one call: validation, resolution
   against the campaign, duplicate detection, batched writes and the engagement policy process
   (suppressions, unsubscriptions) that runs at its end - printed as events received per second, and
   the share of the time the policy process took;
4. the baseline: plain ``sqlite3`` inserting the very rows crmcore stored (read back from its file) into a
   fresh file with the same table layout, journal and synchronous settings, ``executemany`` in
   transactions of ``--batch`` rows - rows per second;
5. the campaign results rebuilt from zero (:func:`measure_results_rebuild`), against the event store's own
   decode-and-replay of the engagement events - once a ``campaign_recipients`` view is registered.

The ratio printed is the median over rounds of crmcore's stored events/s divided by the baseline's rows/s
measured in the same round.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from _baseline import replay_baseline

from crmcore import CRM
from crmcore.aggregates.campaign import Campaign
from crmcore.aggregates.engagement import ENGAGEMENT_EVENTS
from crmcore.values import Money

SEED = 1
SOURCE = "mailtool"
#: The events table exactly as the store creates it (``SQLiteApplicationRecorder``).
EVENTS_TABLE = (
    "CREATE TABLE IF NOT EXISTS stored_events ("
    "originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
    "PRIMARY KEY (originator_id, originator_version))"
)
LINKS = [f"https://example.com/offer/{n}" for n in range(8)]
OPERATORS = ["ann", "bob", "cleo", "dan"]


def recipients_for(events: int) -> int:
    """How many newsletter recipients give about ``events`` events in this mix (about 1.6 each)."""
    return max(10, int(events / 1.6))


def seed(crm: CRM, recipients: int, start: datetime) -> tuple[Campaign, list[tuple[str, str]], list[str]]:
    """Parties and a running campaign sent to all of them; returns it, the send list and the call list."""
    ids = crm.bulk_register(
        [{"kind": "person", "name": f"Person {i}", "emails": [f"person{i}@example.com"], "actor": "import",
          "effective_at": start - timedelta(days=30)} for i in range(recipients)],
        batch_size=5000)
    sent = [(str(p), f"person{i}@example.com") for i, p in enumerate(ids)]
    calls = [str(p) for p in ids[: max(1, recipients // 10)]]
    campaign = Campaign.draft(name="Spring offer", channels=["newsletter", "telemarketing"],
                              segment_id=uuid4(), budget=Money(amount="5000", currency="EUR"),
                              actor="marketing", effective_at=start - timedelta(days=3))
    campaign.schedule(start_at=start, actor="marketing", effective_at=start - timedelta(days=2))
    campaign.launch(audience_at=start - timedelta(days=1),
                    recipients={"newsletter": sent,
                                "telemarketing": [(p, f"+3902{n:07d}") for n, p in enumerate(calls)]},
                    exclusions=[], policy={"name": "audience", "version": 1}, actor="marketing",
                    effective_at=start - timedelta(days=1))
    campaign.send(recipients=sent, skipped=[], actor="marketing", effective_at=start)
    crm._save(campaign)
    return campaign, sent, calls


def provider_events(
    campaign: UUID, sent: list[tuple[str, str]], calls: list[str], count: int, start: datetime,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """``count`` distinct provider events in the documented mix, in no particular order."""
    events: list[dict[str, Any]] = []

    def add(kind: str, party: str, hours: float, **extra: Any) -> None:
        events.append({"external_id": f"evt-{len(events)}", "campaign_id": campaign, "party_id": party,
                       "kind": kind, "occurred_at": start + timedelta(hours=hours), **extra})

    for party, _ in sent:
        if len(events) >= count:
            break
        roll = rng.random()
        if roll < 0.01:
            add("hard_bounce", party, rng.uniform(0, 2), raw_code="550 5.1.1 user unknown")
            continue
        if roll < 0.03:
            for attempt in range(rng.choice((1, 1, 2, 3))):
                add("soft_bounce", party, rng.uniform(0, 2) + 24 * attempt, raw_code="452 4.2.2 mailbox full")
            if rng.random() < 0.5:
                continue
        delivered = rng.uniform(0, 3)
        add("delivered", party, delivered)
        if rng.random() < 0.30:
            for _ in range(rng.choice((1, 1, 2, 3))):
                add("opened", party, delivered + rng.uniform(0.1, 200))
            if rng.random() < 0.27:
                for _ in range(rng.choice((1, 2))):
                    add("clicked", party, delivered + rng.uniform(0.2, 200), link=rng.choice(LINKS))
        if rng.random() < 0.005:
            add("unsubscribed", party, delivered + rng.uniform(1, 300))
        elif rng.random() < 0.0005:
            add("complaint", party, delivered + rng.uniform(1, 300))
    for party in calls:
        for attempt in range(rng.choice((1, 2))):
            if len(events) >= count:
                break
            outcome = rng.choice(("reached", "no_answer", "interested", "not_interested", "call_back"))
            extra: dict[str, Any] = {"operator": rng.choice(OPERATORS), "outcome": outcome}
            if outcome == "call_back":
                extra["call_back_on"] = (start + timedelta(days=20)).date()
            add("called", party, 300 + 24 * attempt + rng.uniform(0, 8), **extra)
    return events[:count]


def with_duplicates(events: list[dict[str, Any]], share: float, rng: random.Random) -> list[dict[str, Any]]:
    """``events`` plus ``share`` of them again, shuffled."""
    lot = events + rng.sample(events, int(len(events) * share))
    rng.shuffle(lot)
    return lot


def measure_results_rebuild(crm: CRM) -> tuple[int, float, int, float] | None:
    """The campaign results rebuilt from zero, and the event store's replay of the same events:
    (events folded, seconds, events replayed, seconds); None until a ``campaign_recipients`` view exists.

    The hook for the campaign-results projection: once ``CRM`` registers it, this measures
    ``crm.rebuild_view("campaign_recipients")`` with nothing else to change here.
    """
    name = "campaign_recipients"
    if name not in crm._runner.views:
        return None
    topics = crm._runner.view(name).topics()
    count, base_seconds = replay_baseline(crm, topics)
    started = time.perf_counter()
    applied = crm.rebuild_view(name)
    return applied, time.perf_counter() - started, count, base_seconds


def store_pragmas(crm: CRM) -> tuple[str, int]:
    """The journal mode and synchronous level crmcore's connections use."""
    datastore = crm._app.factory.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as c:
        c.execute("PRAGMA journal_mode")
        journal = c.fetchone()[0]
        c.execute("PRAGMA synchronous")
        synchronous = c.fetchone()[0]
    return journal, synchronous


def engagement_rows(path: Path) -> list[tuple[str, int, str, bytes]]:
    """The engagement events exactly as crmcore stored them, in log order."""
    topics = [f"{c.__module__}:{c.__qualname__}" for c in ENGAGEMENT_EVENTS]
    with sqlite3.connect(path) as conn:
        return conn.execute(
            f"SELECT originator_id, originator_version, topic, state FROM stored_events "
            f"WHERE topic IN ({','.join('?' * len(topics))}) ORDER BY rowid", topics).fetchall()


def baseline_insert(path: Path, rows: list[tuple[str, int, str, bytes]], batch: int,
                    pragmas: tuple[str, int]) -> float:
    """Seconds for plain ``sqlite3`` to insert ``rows`` in transactions of ``batch`` rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={pragmas[0]}")
    conn.execute(f"PRAGMA synchronous={pragmas[1]}")
    conn.execute(EVENTS_TABLE)
    gc.collect()
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", rows[start : start + batch])
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    (count,) = conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()
    conn.close()
    if count != len(rows):
        raise SystemExit(f"FAILED: plain sqlite3 stored {count} of {len(rows)} rows")
    return seconds


def one_round(directory: Path, number: int, args: argparse.Namespace) -> dict[str, float]:
    path = directory / f"ingest-{number}.db"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    rng = random.Random(SEED)
    with CRM(f"sqlite:///{path}") as crm:
        campaign, sent, calls = seed(crm, recipients_for(args.events), start)
        distinct = provider_events(campaign.id, sent, calls, args.events, start, rng)
        lot = with_duplicates(distinct, args.duplicates, rng)
        policies = 0.0
        run_policies = crm.run_policies

        def timed_policies() -> int:
            nonlocal policies
            began = time.perf_counter()
            try:
                return run_policies()
            finally:
                policies += time.perf_counter() - began

        crm.run_policies = timed_policies  # type: ignore[method-assign]
        gc.collect()
        started = time.perf_counter()
        report = crm.ingest(lot, source=SOURCE, actor="mail sync", batch_size=args.batch)
        seconds = time.perf_counter() - started
        if report.stored != len(distinct) or report.duplicates != len(lot) - len(distinct):
            raise SystemExit(f"FAILED: {report.stored} stored, {report.duplicates} duplicates of "
                             f"{len(lot)} events ({len(distinct)} distinct)")
        suppressed = len(crm.suppressions())
        pragmas = store_pragmas(crm)
        results = measure_results_rebuild(crm)
    rows = engagement_rows(path)
    base_seconds = baseline_insert(directory / f"baseline-{number}.db", rows, args.batch, pragmas)
    r = {
        "received_per_s": len(lot) / seconds,
        "stored_per_s": report.stored / seconds,
        "policies_share": policies / seconds,
        "baseline_rows_per_s": len(rows) / base_seconds,
        "suppressed": suppressed,
        "seconds": seconds,
    }
    r["ratio"] = r["stored_per_s"] / r["baseline_rows_per_s"]
    line = (f"round {number}: {len(lot):,} events ({report.stored:,} stored, {report.duplicates:,} "
            f"duplicates) in {seconds:.2f} s: {r['received_per_s']:,.0f} events/s received, "
            f"{r['stored_per_s']:,.0f} stored/s (policy process {r['policies_share']:.0%} of the time, "
            f"{suppressed:,} addresses suppressed); plain insert {r['baseline_rows_per_s']:,.0f} rows/s; "
            f"ratio {r['ratio']:.2f}")
    if results is not None:
        applied, rebuild_seconds, count, replay_seconds = results
        r["results_per_s"] = applied / rebuild_seconds
        r["results_ratio"] = r["results_per_s"] / (count / replay_seconds)
        line += (f"; campaign results rebuilt at {r['results_per_s']:,.0f} events/s "
                 f"({r['results_ratio']:.2f} x the store's replay)")
    print(line, flush=True)
    for leftover in directory.glob("*.db*"):
        leftover.unlink()
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="distinct provider events (100000)")
    parser.add_argument("--duplicates", type=float, default=0.1, help="share sent again (0.1)")
    parser.add_argument("--batch", type=int, default=5000, help="events per transaction (5000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, each on fresh files (3)")
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite files go (default: temp)")
    args = parser.parse_args(argv)
    if args.events < 1 or args.batch < 1 or args.repeat < 1 or not 0 <= args.duplicates <= 1:
        parser.error("--events, --batch and --repeat must be positive, --duplicates between 0 and 1")
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, {os.cpu_count()} cpus")
    with tempfile.TemporaryDirectory(prefix="crmcore-ingest-", dir=args.dir) as tmp:
        rounds = [one_round(Path(tmp), n, args) for n in range(1, args.repeat + 1)]
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"median: {median['received_per_s']:,.0f} events/s received, {median['stored_per_s']:,.0f} "
          f"stored/s; plain insert {median['baseline_rows_per_s']:,.0f} rows/s; "
          f"ratio_vs_plain_insert {median['ratio']:.2f}")
    if "results_per_s" in median:
        print(f"campaign results rebuild: {median['results_per_s']:,.0f} events/s, "
              f"ratio_vs_event_store_replay {median['results_ratio']:.2f}")
    else:
        print("campaign results rebuild: not measured (no campaign_recipients view yet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
