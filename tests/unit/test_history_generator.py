"""The simulated two-year history (``crmcore.testing.history``): seeded, in time order, loadable, and its
summary agrees with what a CRM reads after loading it."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmcore import CRM
from crmcore.aggregates.party import Party
from crmcore.testing.history import (
    STALE_CANDIDATE_DAYS,
    SimulatedHistory,
    load_history,
    simulate_history,
)

PARTIES = 300
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=731)

Loaded = tuple[SimulatedHistory, CRM]


def history(seed: int = 3, parties: int = PARTIES) -> SimulatedHistory:
    return simulate_history(parties=parties, seed=seed, start=START)


def canonical(simulated: SimulatedHistory) -> list[str]:
    """Every event of the history as text, each aggregate id replaced by the order it was first built in
    (ids are drawn from the clock; everything else must repeat)."""
    ids = {str(a.id): f"#{n}" for n, a in enumerate(simulated.aggregates)}
    out = []
    for aggregate in simulated.aggregates:
        for event in aggregate.pending_events:
            data = {k: v for k, v in vars(event).items() if k != "timestamp"}
            text = json.dumps([type(event).__qualname__, data], default=str, sort_keys=True)
            for raw, name in ids.items():
                if raw in text:
                    text = text.replace(raw, name)
            out.append(text)
    return out


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    simulated = history()
    path = tmp_path_factory.mktemp("history") / "crm.db"
    with CRM(f"sqlite:///{path}") as crm:
        load_history(crm, simulated)
        yield simulated, crm


def test_the_same_seed_gives_the_same_history_and_another_seed_another() -> None:
    first, again = history(seed=5, parties=150), history(seed=5, parties=150)
    other = history(seed=6, parties=150)

    assert canonical(first) == canonical(again)
    assert first.summary.by_stage == again.summary.by_stage
    assert canonical(first) != canonical(other)


def test_every_aggregate_records_its_events_in_effective_time_order() -> None:
    for aggregate in history().aggregates:
        events: list[Any] = list(aggregate.pending_events)
        assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
        times = [e.effective_at for e in events]
        assert times == sorted(times), type(aggregate).__name__


def test_every_effective_time_lies_within_the_period() -> None:
    simulated = history()
    for aggregate in simulated.aggregates:
        for event in aggregate.pending_events:
            assert simulated.start <= event.effective_at <= simulated.end  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_history_loads_into_a_memory_and_a_sqlite_crm(kind: str, tmp_path: Path) -> None:
    simulated = history(seed=4, parties=200)
    url = "memory:" if kind == "memory" else f"sqlite:///{tmp_path}/crm.db"

    with CRM(url) as crm:
        saved = load_history(crm, simulated, batch_size=700)

        assert saved == simulated.summary.events == crm.position
        assert crm.party_counts().total == 200


def test_a_history_may_not_end_in_the_future() -> None:
    with pytest.raises(ValueError, match="future"):
        simulate_history(parties=10, start=datetime.now(UTC) - timedelta(days=300))


def test_the_stages_and_owners_at_the_end_are_those_the_crm_counts(loaded: Loaded) -> None:
    simulated, crm = loaded
    counts = crm.party_counts()

    assert {stage.value: n for stage, n in counts.by_stage.items() if n} == simulated.summary.by_stage
    assert dict(counts.by_owner) == simulated.summary.by_owner
    assert counts.unassigned == simulated.summary.unassigned


def test_the_opportunities_are_those_of_the_pipeline_view(loaded: Loaded) -> None:
    simulated, crm = loaded
    statuses = Counter(row["status"] for row in crm.view_rows("pipeline"))
    facts = crm.party_facts()

    assert statuses == {"open": simulated.summary.open_opportunities, "won": simulated.summary.won,
                        "lost": simulated.summary.lost}
    assert sum(f["open_opportunities"] for f in facts.values()) == simulated.summary.open_opportunities
    won = sum(float(f["won_value"].get("EUR", 0)) for f in facts.values())
    assert won == pytest.approx(float(simulated.summary.won_value.amount))


def test_the_inactive_parties_are_those_the_engagement_policy_finds(loaded: Loaded) -> None:
    simulated, crm = loaded
    summary = simulated.summary

    assert len(crm.inactive_parties(at=simulated.end)) == summary.inactive
    assert 0.15 < summary.inactive / summary.mailed < 0.5


def test_there_are_stale_candidates_and_they_are_what_the_facts_show(loaded: Loaded) -> None:
    simulated, crm = loaded
    cutoff = simulated.end - timedelta(days=STALE_CANDIDATE_DAYS)
    open_stages = {"suspect", "lead", "prospect", "target"}
    facts = crm.party_facts()
    stale = [f for f in facts.values()
             if f["stage"] in open_stages and datetime.fromisoformat(f["stage_since"]) < cutoff]

    assert simulated.summary.stale_candidates == len(stale) > 0
    assert 0 < simulated.summary.stale <= len(facts)
    assert simulated.summary.never_progressed > 0


def test_the_stays_vary_by_stage_and_leads_take_about_three_months(loaded: Loaded) -> None:
    simulated, _ = loaded
    averages = {stage: days for stage, (days, count) in simulated.summary.stage_averages.items()
                if count >= 20}

    assert 60 < averages["lead"] < 120
    assert averages["suspect"] != averages["lead"]


def test_the_crm_policies_find_nothing_left_to_record(tmp_path: Path) -> None:
    simulated = history(seed=7, parties=200)
    with CRM(f"sqlite:///{tmp_path}/crm.db") as crm:
        load_history(crm, simulated)
        position = crm.position

        crm.run_policies()

        assert crm.position == position
        assert len(crm.suppressions()) == simulated.summary.suppressed


def test_the_consent_in_force_and_the_incomplete_records_are_those_of_the_facts(
    loaded: Loaded,
) -> None:
    simulated, crm = loaded
    summary = simulated.summary
    facts = crm.party_facts()
    persons = [f for f in facts.values() if f["kind"] == "person"]
    consent: Counter[tuple[str, str]] = Counter(
        (channel, status) for f in facts.values() for channel, status in f["consent"].items())

    assert {c: consent[(c, "subscribed")] for c in summary.subscribed} == summary.subscribed
    assert sum(1 for f in persons if not f["emails"] and not f["phones"]) == summary.missing_contact
    assert sum(1 for f in facts.values() if not f["profile"].get("region")) == summary.missing_region
    regions = Counter(f["profile"].get("region") for f in facts.values() if f["profile"].get("region"))
    assert regions.most_common(1)[0][0] == "Lombardy"


def test_the_duplicates_and_the_rule_breaks_are_found(loaded: Loaded) -> None:
    simulated, crm = loaded
    found = {frozenset((m.party_id, m.other_id)) for m in crm.duplicates()}

    assert simulated.summary.duplicates
    assert all(frozenset(pair) in found for pair in simulated.summary.duplicates)
    assert len(crm.scan_fields()) == simulated.summary.rule_breaks > 0


def test_each_party_has_a_registration_and_each_report_a_recipient_of_its_campaign() -> None:
    simulated = history(seed=8, parties=150)
    parties = {a.id for a in simulated.aggregates if isinstance(a, Party)}
    sent: dict[str, set[str]] = defaultdict(set)
    for aggregate in simulated.aggregates:
        for event in aggregate.pending_events:
            if type(event).__name__ == "Sent":
                sent[str(event.originator_id)] |= {p for p, _ in event.recipients}  # type: ignore[attr-defined]
    reports = [e for a in simulated.aggregates if type(a).__name__ == "Engagement" for e in a.pending_events]

    assert set(simulated.party_ids) == parties
    assert reports
    assert all(str(e.party_id) in sent[str(e.campaign_id)] for e in reports)  # type: ignore[attr-defined]

