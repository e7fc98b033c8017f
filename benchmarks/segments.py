"""Segment speed on SQLite: the party facts and segment membership rebuilt from zero, next to the event
store's own replay, and the reads a campaign or a sales screen makes.

    python benchmarks/segments.py [--parties 100000] [--repeat 3] [--dir DIR] [--fresh] [--workers 2]

The data (seed 1, written once to a SQLite file that later runs reuse; ``--fresh`` writes it again):
``--parties`` people registered over the first month of a year, each with a year of history in effective
time order - most engage (become leads) and get a region and a head count, half subscribe to e-mail (some
later unsubscribe, a few addresses hard-bounce), up to six interactions (completed calls and meetings), a
third qualify and a tenth of those convert - and one deal for every fifth party
(``crmcore.testing.sales.simulate_sales`` over the same year). Three segments are defined before the first
party: northern leads; customers that may be e-mailed; parties with an open deal that are not northern
leads (a segment of a segment), so membership changes all through the history.

Each round measures, on that file:

1. the baseline: the event store's own decode-and-replay of the party events - ``select_notifications``
   pages of 2,000 with the same topic filter and ``mapper.to_domain_event`` on each - in events/s;
2. ``crm.rebuild_view("party_facts")`` (read, decode, fold, write the rows), in events/s;
3. the same with ``CRM(..., replay_workers=--workers)``: the fold shared between processes;
4. ``crm.rebuild_view("segment_members")`` - every party's facts, the three segments evaluated after each
   event, every entry and exit recorded - in events/s over its events (party, opportunity and segment
   events), with the baseline's replay of those same events;
5. the members of a segment now (stored rows), as of six months back (the facts folded as of then and the
   criteria evaluated over every party), and unsaved criteria previewed over every party now;
6. every customer scored and ranked by the targeting score (``crm.rank_customers()``), now.

Ratios are the medians over rounds of a rate divided by its baseline measured in the same round. The target
for (2)-(4) is 100,000 events/s. The machine's speed drifts: compare ratios measured in one round.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _baseline import replay_baseline

from crmcore import CRM
from crmcore.aggregates.party import Party
from crmcore.projections.facts import PartyFactsView
from crmcore.projections.segments import SegmentMembership
from crmcore.testing.sales import load_sales, simulate_sales
from crmcore.values import Channel, PartyKind, Stage

SEED = 1
REPS = ("ann", "bob", "cleo", "dan", "eve")
REGIONS = ("North", "South", "Centre", "Islands")


def build(path: Path, parties: int) -> None:
    """Write the simulated year to a fresh SQLite file."""
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    started = time.perf_counter()
    rng = random.Random(SEED)
    start = datetime.now(UTC) - timedelta(days=370)
    with CRM(f"sqlite:///{path}") as crm:
        before, defined = start - timedelta(days=2), start - timedelta(days=1)
        crm.define_field(name="region", kind="choice", choices=list(REGIONS), actor="admin",
                         effective_at=before)
        crm.define_field(name="employees", kind="number", actor="admin", effective_at=before)
        version = crm.field_catalog().version
        northern = crm.define_segment(
            name="Northern leads", actor="admin", effective_at=defined,
            criteria={"all": [{"stage": "lead"}, {"field": "region", "eq": "North"}]})
        crm.define_segment(name="Mailable customers", actor="admin", effective_at=defined,
                           criteria={"all": [{"stage": "customer"}, {"consent": "email", "is": "subscribed"},
                                             {"deliverable": "email"}]})
        crm.define_segment(name="Pipeline outside the north", actor="admin", effective_at=defined,
                           criteria={"all": [{"open_opportunities": {"min": 1}},
                                             {"not": {"segment": str(northern)}}]})
        qualified: list[uuid.UUID] = []
        batch: list[Party] = []
        events = 0
        for i in range(parties):
            party = _history(rng, i, start, version)
            events += len(party.pending_events)
            if party.stage in (Stage.PROSPECT, Stage.CUSTOMER):
                qualified.append(party.id)
            batch.append(party)
            if len(batch) == 2000:
                crm._save(*batch)
                batch.clear()
        if batch:
            crm._save(*batch)
        deals = max(1, parties // 5)
        steps = simulate_sales(opportunities=deals, start=start + timedelta(days=40), days=320, seed=SEED,
                               touches_per_week=1.0, dwell_days=45)
        load_sales(crm, steps, lambda index: qualified[index % len(qualified)])
        events += len(steps)
    print(f"wrote {events:,} events for {parties:,} parties and {deals:,} deals in "
          f"{time.perf_counter() - started:.0f} s to {path}")


def _history(rng: random.Random, i: int, start: datetime, version: int) -> Party:
    """One person's year, its events in effective-time order."""
    at = start + timedelta(minutes=rng.randrange(30 * 24 * 60))
    party = Party.register(kind=PartyKind.PERSON, stage=Stage.SUSPECT, name=f"Person {i}", actor="import",
                           owner=rng.choice(REPS), effective_at=at,
                           identity={"emails": [f"person{i}@example.com"]})

    def later(days: float) -> datetime:
        nonlocal at
        at += timedelta(minutes=rng.randrange(1, max(2, int(days * 24 * 60))))
        return at

    if rng.random() < 0.8:
        party.engage(channel=Channel.WEB_FORM, actor="web", effective_at=later(20))
        party.set_fields(values={"region": rng.choice(REGIONS), "employees": rng.randrange(1, 500)},
                         catalog_version=version, actor="rep", effective_at=later(10))
    if rng.random() < 0.5:
        party.subscribe_to(channel="email", source="form", lawful_basis="consent", actor="web",
                           effective_at=later(15))
        if rng.random() < 0.15:
            party.unsubscribe_from(channel="email", source="link", actor="mailer", effective_at=later(60))
        elif rng.random() < 0.05:
            party.record_delivery(address=f"person{i}@example.com", outcome="hard_bounce", actor="mailer",
                                  effective_at=later(30))
    for _ in range(rng.randrange(7)):
        party.record_interaction(kind="call", task_id=uuid.UUID(int=rng.getrandbits(128)), actor="rep",
                                 effective_at=later(25))
    if party.stage is Stage.LEAD and rng.random() < 0.35:
        if rng.random() < 0.3:
            party.set_fields(values={"region": rng.choice(REGIONS)}, catalog_version=version, actor="rep",
                             effective_at=later(20))
        party.qualify(actor="rep", effective_at=later(30))
        if rng.random() < 0.3:
            party.convert(actor="rep", effective_at=later(60))
    return party


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--parties", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv)
    path = args.dir / f"crmcore-segments-{args.parties}.db"
    if args.fresh or not path.exists():
        build(path, args.parties)
    url = f"sqlite:///{path}"
    rounds: list[dict[str, float]] = []
    with CRM(url) as crm, CRM(url, replay_workers=args.workers) as shared:
        northern = next(s.id for s in crm.segments() if s.name == "Northern leads")
        six_months_back = datetime.now(UTC) - timedelta(days=183)
        member_topics = SegmentMembership(crm._runner.reader, crm._views_storage).topics
        for number in range(1, args.repeat + 1):
            r: dict[str, float] = {}
            count, seconds = replay_baseline(crm, PartyFactsView.topics())
            r["baseline_party_events_per_s"] = count / seconds
            seconds, applied = timed(lambda: crm.rebuild_view(PartyFactsView.name))
            r["party_facts_events_per_s"] = applied / seconds
            seconds, applied = timed(lambda: shared.rebuild_view(PartyFactsView.name))
            r["party_facts_shared_events_per_s"] = applied / seconds
            count, seconds = replay_baseline(crm, member_topics)
            r["baseline_membership_events_per_s"] = count / seconds
            seconds, applied = timed(lambda: crm.rebuild_view(SegmentMembership.name))
            r["segment_members_events_per_s"] = applied / seconds
            r["members_now_s"], members = timed(lambda: crm.segment_members(northern))
            r["members_six_months_back_s"], then = timed(lambda: shared.segment_members(northern,
                                                                                        at=six_months_back))
            r["preview_now_s"], preview = timed(lambda: crm.evaluate(
                {"all": [{"stage": "prospect"}, {"field": "employees", "ge": 100}]}))
            r["rank_customers_s"], ranking = timed(lambda: crm.rank_customers())
            rounds.append(r)
            print(f"round {number}: party_facts {r['party_facts_events_per_s']:,.0f} ev/s "
                  f"({r['party_facts_shared_events_per_s']:,.0f} shared), baseline "
                  f"{r['baseline_party_events_per_s']:,.0f}; segment_members "
                  f"{r['segment_members_events_per_s']:,.0f} ev/s, baseline "
                  f"{r['baseline_membership_events_per_s']:,.0f}; members now {r['members_now_s']:.2f} s "
                  f"({len(members):,}), six months back {r['members_six_months_back_s']:.2f} s "
                  f"({len(then):,}), "
                  f"preview {r['preview_now_s']:.2f} s ({len(preview):,}); {ranking.considered:,} customers "
                  f"ranked in {r['rank_customers_s']:.2f} s")
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    ratios = {
        "party_facts_ratio_vs_event_store_replay": statistics.median(
            r["party_facts_events_per_s"] / r["baseline_party_events_per_s"] for r in rounds),
        "party_facts_shared_ratio_vs_event_store_replay": statistics.median(
            r["party_facts_shared_events_per_s"] / r["baseline_party_events_per_s"] for r in rounds),
        "segment_members_ratio_vs_event_store_replay": statistics.median(
            r["segment_members_events_per_s"] / r["baseline_membership_events_per_s"] for r in rounds),
    }
    for key, value in {**median, **ratios}.items():
        print(f"{key}: {value:,.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
