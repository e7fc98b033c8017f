"""Predictive lead scoring through the CRM on every store: training on facts as they stood at each
decision, stored model versions, recorded scores, refusals that store nothing, and the backtest."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from crmcore import (
    CRM,
    FieldNotDefined,
    InvalidInput,
    LeadScore,
    ScoringBacktest,
    ScoringModel,
    ScoringModelNotFound,
)
from crmcore.testing.sales import load_sales, simulate_sales
from crmcore.testing.scoring import sales_parties

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def at(days: float, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


def define_industry(crm: CRM) -> None:
    crm.define_field(name="industry", kind="choice", choices=["retail", "public", "energy"], actor="admin")


def prospect(crm: CRM, name: str, industry: str | None, when: datetime, **more: Any) -> UUID:
    fields = {"fields": {"industry": industry}} if industry else {}
    return crm.register_party(kind="organization", name=name, stage="target", actor="u", effective_at=when,
                              **fields, **more)


def deal(crm: CRM, party: UUID, opened: datetime, closed: datetime, *, won: bool) -> UUID:
    opportunity = crm.open_opportunity(party, title="Deal", value="1000", currency="EUR",
                                       expected_close=date(2025, 6, 30), owner="ann", actor="u",
                                       effective_at=opened)
    if won:
        crm.win(opportunity, actor="u", effective_at=closed)
    else:
        crm.lose(opportunity, reasons=["price"], actor="u", effective_at=closed)
    return opportunity


def counts(model: ScoringModel, variable: str) -> dict[str, tuple[int, int]]:
    return {value: (c.won, c.lost) for value, c in model.counts[variable].items()}


def test_training_reads_each_partys_facts_as_they_stood_when_its_deal_was_decided(crm: CRM) -> None:
    define_industry(crm)
    won = prospect(crm, "Won Co", "retail", at(0))
    lost = prospect(crm, "Lost Co", "public", at(0))
    deal(crm, won, at(1), at(10), won=True)
    deal(crm, lost, at(1), at(12), won=False)
    # after the decisions, each party's field changes: today's values must teach nothing
    crm.set_fields(won, values={"industry": "public"}, actor="u", effective_at=at(20))
    crm.set_fields(lost, values={"industry": "retail"}, actor="u", effective_at=at(20))
    model = crm.train_scoring(variables=["industry", "kind"], actor="analyst")
    assert counts(model, "industry") == {"retail": (1, 0), "public": (0, 1)}
    assert (model.won, model.lost, model.version, model.actor) == (1, 1, 1, "analyst")


def test_a_party_registered_on_its_decision_day_is_read_just_before_the_decision(crm: CRM) -> None:
    define_industry(crm)
    same_day = prospect(crm, "Quick Co", "retail", at(30))
    crm.set_fields(same_day, values={"industry": "public"}, actor="u", effective_at=at(30, 1))
    deal(crm, same_day, at(30, 1.5), at(30, 2), won=False)
    crm.set_fields(same_day, values={"industry": "energy"}, actor="u", effective_at=at(30, 3))
    # a party registered earlier is read at the start of its decision's day (UTC): a change made that
    # morning is not seen yet - never anything later
    older = prospect(crm, "Old Co", "retail", at(0))
    crm.set_fields(older, values={"industry": "energy"}, actor="u", effective_at=at(40, 1))
    deal(crm, older, at(1), at(40, 2), won=True)
    model = crm.train_scoring(variables=["industry"], actor="analyst")
    assert counts(model, "industry") == {"public": (0, 1), "retail": (1, 0)}


def test_a_party_merged_away_after_its_decision_teaches_with_its_facts_of_then(crm: CRM) -> None:
    define_industry(crm)
    loser = prospect(crm, "Dup Co", "retail", at(0))
    survivor = prospect(crm, "Main Co", "public", at(0))
    deal(crm, loser, at(1), at(5), won=True)
    deal(crm, survivor, at(1), at(6), won=False)
    crm.merge(survivor, loser, actor="u", reason="duplicate", effective_at=at(10))
    model = crm.train_scoring(variables=["industry"], actor="analyst")
    assert counts(model, "industry") == {"public": (0, 1), "retail": (1, 0)}


def test_models_are_versioned_kept_and_read_back_as_trained(crm: CRM) -> None:
    define_industry(crm)
    with pytest.raises(ScoringModelNotFound):
        crm.scoring_model()
    a, b = prospect(crm, "A", "retail", at(0)), prospect(crm, "B", "public", at(0))
    deal(crm, a, at(1), at(5), won=True)
    deal(crm, b, at(1), at(6), won=False)
    first = crm.train_scoring(variables=["industry"], actor="analyst")
    c = prospect(crm, "C", "public", at(0))
    deal(crm, c, at(1), at(7), won=True)
    second = crm.train_scoring(variables=["industry", "channel"], actor="analyst")
    assert (first.version, second.version) == (1, 2)
    assert crm.scoring_model(1) == first
    assert crm.scoring_model() == crm.scoring_model(2) == second
    assert counts(second, "industry") == {"public": (1, 1), "retail": (1, 0)}
    with pytest.raises(ScoringModelNotFound):
        crm.scoring_model(3)


def test_until_trains_on_the_deals_decided_before_it_only(crm: CRM) -> None:
    define_industry(crm)
    a, b, c = (prospect(crm, n, i, at(0)) for n, i in (("A", "retail"), ("B", "public"), ("C", "energy")))
    deal(crm, a, at(1), at(5), won=True)
    deal(crm, b, at(1), at(6), won=False)
    deal(crm, c, at(1), at(9), won=True)
    model = crm.train_scoring(variables=["industry"], actor="analyst", until=at(8))
    assert model.trained_on_until == at(8)
    assert counts(model, "industry") == {"public": (0, 1), "retail": (1, 0)}


def test_bad_training_input_is_refused_and_stores_nothing(crm: CRM) -> None:
    define_industry(crm)
    crm.define_field(name="notes", kind="text", actor="admin")
    a = prospect(crm, "A", "retail", at(0))
    deal(crm, a, at(1), at(5), won=True)
    before = crm.position
    with pytest.raises(InvalidInput, match="no lost deal"):
        crm.train_scoring(variables=["industry"], actor="analyst")
    with pytest.raises(FieldNotDefined):
        crm.train_scoring(variables=["budget"], actor="analyst")
    with pytest.raises(InvalidInput, match="text field"):
        crm.train_scoring(variables=["notes"], actor="analyst")
    with pytest.raises(InvalidInput):
        crm.train_scoring(variables=["industry"], actor=" ")
    with pytest.raises(InvalidInput):
        crm.train_scoring(variables=["industry"], actor="analyst", until=datetime(2025, 1, 1))  # naive
    assert crm.position == before


def trained(crm: CRM) -> tuple[UUID, UUID, UUID]:
    """Two decided deals (retail won, public lost) and three leads: retail, public, and energy (unseen)."""
    define_industry(crm)
    a, b = prospect(crm, "A", "retail", at(0)), prospect(crm, "B", "public", at(0))
    deal(crm, a, at(1), at(5), won=True)
    deal(crm, b, at(1), at(6), won=False)
    crm.train_scoring(variables=["industry"], actor="analyst")
    leads = tuple(crm.register_party(kind="organization", name=n, stage="lead", fields={"industry": i},
                                     actor="u", effective_at=at(10))
                  for n, i in (("Retail lead", "retail"), ("Public lead", "public"),
                               ("Energy lead", "energy")))
    return leads[0], leads[1], leads[2]


def test_leads_are_scored_best_first_with_their_reasons(crm: CRM) -> None:
    retail, public, energy = trained(crm)
    scores = crm.score_leads()
    assert [s.party_id for s in scores] == [retail, energy, public]
    # prior 1/2; P(retail|won) = 2/3, P(retail|lost) = 1/3: 2/3 / (2/3 + 1/3) = 66.7 %
    assert [s.score for s in scores] == [Decimal("66.7"), Decimal("50.0"), Decimal("33.3")]
    assert all(isinstance(s, LeadScore) and s.model_version == 1 for s in scores)
    assert [(r.value, r.effect) for r in scores[0].reasons] == [("retail", "up")]
    assert [(r.value, r.effect) for r in scores[1].reasons] == [("energy", "unseen")]
    assert {s.party_id for s in crm.score_leads(stages=["prospect"])} == set()
    assert crm.score_leads(at=at(9)) == []  # no lead yet then


def test_recorded_scores_are_party_events_naming_the_model_and_change_no_view(crm: CRM) -> None:
    retail, _, _ = trained(crm)
    facts_before = crm.party_facts()
    scores = crm.score_leads(record=True, actor="analyst")
    entries = [e for e in crm.timeline(retail) if e.event == "Scored"]
    assert [(e.data["model_version"], e.data["score"], e.actor) for e in entries] == [(1, "66.7", "analyst")]
    assert len(scores) == 3
    assert crm.party_facts() == facts_before
    assert crm.get_party(retail).stage.value == "lead"


def test_bad_scoring_input_is_refused_and_stores_nothing(crm: CRM) -> None:
    trained(crm)
    before = crm.position
    with pytest.raises(InvalidInput):
        crm.score_leads(record=True)  # no actor
    with pytest.raises(InvalidInput):
        crm.score_leads(stages=["nobody"])
    with pytest.raises(InvalidInput):
        crm.score_leads(stages=[])
    with pytest.raises(ScoringModelNotFound):
        crm.score_leads(model_version=7, record=True, actor="analyst")
    with pytest.raises(InvalidInput):
        crm.score_leads(at=datetime(2025, 1, 1))  # naive
    assert crm.position == before


# -------------------------------------------------------------------------------------------- backtest

START = datetime(2024, 1, 1, tzinfo=UTC)


def simulated(crm: CRM, deals: int = 400) -> None:
    steps = simulate_sales(opportunities=deals, start=START, days=365, seed=3)
    parties = sales_parties(crm, steps, seed=3)
    load_sales(crm, steps, lambda index: parties[index])


def test_the_backtest_on_simulated_sales_ranks_converting_leads_better_than_chance(crm: CRM) -> None:
    simulated(crm)
    result = crm.scoring_backtest(variables=["channel", "industry"], periods=2, every="quarter",
                                  until=date(2025, 1, 1))
    assert isinstance(result, ScoringBacktest)
    assert [c.label for c in result.cutoffs] == ["2024-Q3", "2024-Q4"]
    assert [c.cutoff for c in result.cutoffs] == [datetime(2024, 7, 1, tzinfo=UTC),
                                                 datetime(2024, 10, 1, tzinfo=UTC)]
    for cutoff in [*result.cutoffs, result.overall]:
        assert cutoff.auc is not None
        assert Decimal(0) <= cutoff.auc <= Decimal(1)
        assert cutoff.converted <= cutoff.leads
        assert cutoff.top_decile_converted <= cutoff.top_decile_leads
        assert cutoff.lift is not None
        assert cutoff.base_rate_percent is not None
    assert all(c.trained and c.won and c.lost for c in result.cutoffs)
    assert result.cutoffs[0].decisions < result.cutoffs[1].decisions
    assert result.overall.leads == sum(c.leads for c in result.cutoffs)
    assert result.overall.auc is not None
    assert result.overall.auc > Decimal("0.55")
    again = crm.scoring_backtest(variables=["channel", "industry"], periods=2, every="quarter",
                                 until=date(2025, 1, 1))
    assert again == result


def test_a_horizon_narrows_the_window_in_which_a_lead_converts(crm: CRM) -> None:
    simulated(crm, deals=200)
    cutoffs = [date(2024, 6, 1), date(2024, 9, 1)]
    wide = crm.scoring_backtest(variables=["channel"], cutoffs=cutoffs, until=date(2025, 1, 1))
    narrow = crm.scoring_backtest(variables=["channel"], cutoffs=cutoffs, until=date(2025, 1, 1),
                                  horizon_days=30)
    assert [c.window_end for c in narrow.cutoffs] == [datetime(2024, 7, 1, tzinfo=UTC),
                                                     datetime(2024, 10, 1, tzinfo=UTC)]
    assert all(n.converted <= w.converted for n, w in zip(narrow.cutoffs, wide.cutoffs, strict=True))
    assert [c.leads for c in narrow.cutoffs] == [c.leads for c in wide.cutoffs]


def test_a_cutoff_before_any_decision_is_reported_untrained(crm: CRM) -> None:
    simulated(crm, deals=100)
    result = crm.scoring_backtest(variables=["channel"], cutoffs=[date(2024, 1, 2)], until=date(2025, 1, 1))
    (first,) = result.cutoffs
    assert (first.trained, first.decisions, first.auc, first.lift) == (False, 0, None, None)


def test_bad_backtest_input_is_refused_and_stores_nothing(crm: CRM) -> None:
    define_industry(crm)
    before = crm.position
    bad: list[dict[str, Any]] = [
        {"periods": 0}, {"every": "week"}, {"horizon_days": 0}, {"cutoffs": []},
        {"cutoffs": [date(2025, 2, 1), date(2025, 1, 1)]}, {"cutoffs": [date(2030, 1, 1)]},
        {"stages": ["someone"]}, {"timezone": "Mars/Olympus"}, {"until": date(2999, 1, 1)},
        {"variables": ["budget"]}, {"variables": []},
    ]
    for arguments in bad:
        with pytest.raises((InvalidInput, FieldNotDefined)):
            crm.scoring_backtest(**{"variables": ["channel"], **arguments})
    assert crm.position == before
