"""The ``pipeline`` view as a pure fold over opportunity events, and the forecast aggregated from its rows."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from crmcore import DEFAULT_PIPELINE, ForecastCategory, InvalidInput, Money
from crmcore.aggregates.opportunity import Opportunity
from crmcore.projections import fold
from crmcore.projections.pipeline import PipelineView, forecast_of

P = DEFAULT_PIPELINE
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def opened(amount: str = "1000", currency: str = "EUR", *, owner: str = "ann", stage: str | None = None,
           close: date = date(2026, 2, 27), at: datetime = T0) -> Opportunity:
    return Opportunity.open(
        party_id=uuid4(), title="Deal", owner=owner, value=Money.of(amount, currency), pipeline=P,
        stage=stage, expected_close=close, actor="u", effective_at=at,
    )


def rows_of(*opportunities: Opportunity) -> dict[str, dict[str, Any]]:
    events = [e for o in opportunities for e in o.collect_events()]
    return fold(PipelineView(), events)


def row(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": str(uuid4()), "party_id": str(uuid4()), "owner": "ann", "pipeline": "default",
        "stage": "proposal", "category": "best_case", "probability": 50, "amount": "100.00",
        "currency": "EUR", "expected_close": "2026-03-31", "status": "open",
        "opened_at": T0.isoformat(), "closed_at": None, "lost_reasons": [], "stage_at_loss": None,
    }
    return {**base, **fields}


# ------------------------------------------------------------------ the fold


def test_an_opened_opportunity_becomes_an_open_row_with_its_odds_value_and_times() -> None:
    o = opened("1234.5")
    (only,) = rows_of(o).values()
    assert only == {
        "id": str(o.id), "party_id": str(o.party_id), "campaign_id": None, "owner": "ann",
        "pipeline": "default",
        "stage": "first contact", "category": "pipeline", "probability": 10, "amount": "1234.50",
        "currency": "EUR", "expected_close": "2026-02-27", "status": "open", "opened_at": T0.isoformat(),
        "closed_at": None, "lost_reasons": [], "stage_at_loss": None, "last_event_at": T0.isoformat(),
    }


def test_every_change_to_an_open_opportunity_reaches_its_row() -> None:
    o = opened()
    o.move_stage(pipeline=P, stage="proposal", actor="u", effective_at=T0)
    o.reestimate(value=Money.of("2500", "EUR"), actor="u", effective_at=T0)
    o.move_close_date(expected_close=date(2026, 4, 1), actor="u", effective_at=T0)
    o.change_owner(owner="bob", actor="u", effective_at=T0)
    o.override_probability(probability=65, actor="u", effective_at=T0)
    (only,) = rows_of(o).values()
    assert (only["stage"], only["probability"], only["amount"]) == ("proposal", 65, "2500.00")
    assert (only["expected_close"], only["owner"], only["status"]) == ("2026-04-01", "bob", "open")


def test_a_lost_row_keeps_its_reasons_the_stage_it_was_lost_from_and_when() -> None:
    o = opened(stage="negotiation")
    o.lose(pipeline=P, reasons=["price"], actor="u", effective_at=T0 + timedelta(days=3))
    (only,) = rows_of(o).values()
    assert (only["status"], only["stage"], only["probability"]) == ("lost", "lost", 0)
    assert (only["lost_reasons"], only["stage_at_loss"]) == (["price"], "negotiation")
    assert only["closed_at"] == (T0 + timedelta(days=3)).isoformat()


def test_reopening_clears_the_close_and_the_loss() -> None:
    o = opened(stage="negotiation")
    o.lose(pipeline=P, reasons=["price"], actor="u", effective_at=T0)
    o.reopen(pipeline=P, stage=None, reason="back", actor="u", effective_at=T0)
    (only,) = rows_of(o).values()
    assert (only["status"], only["stage"], only["closed_at"]) == ("open", "negotiation", None)
    assert (only["lost_reasons"], only["stage_at_loss"]) == ([], None)


def test_folding_does_not_change_the_rows_it_starts_from() -> None:
    o = opened()
    start = rows_of(o)
    before = copy.deepcopy(start)
    o.win(pipeline=P, reasons=[], actor="u", effective_at=T0)
    fold(PipelineView(), list(o.collect_events()), start)
    assert start == before


def test_events_of_an_opportunity_never_opened_leave_no_row() -> None:
    o = opened()
    o.collect_events()
    o.change_owner(owner="bob", actor="u", effective_at=T0)
    assert rows_of(o) == {}


# ------------------------------------------------------------------ the aggregation


def test_the_weighted_value_is_value_times_probability_exactly() -> None:
    f = forecast_of([row(amount="0.01", probability=33), row(amount="1000000000000000000.99", probability=7)])
    eur = f.currencies["EUR"].open
    assert eur.count == 2
    assert eur.value == Decimal("1000000000000000001.00")
    assert eur.weighted == Decimal("0.0033") + Decimal("70000000000000000.0693")


def test_currencies_are_never_added_together() -> None:
    f = forecast_of([row(amount="100.00", currency="EUR"), row(amount="100", currency="JPY"),
                     row(amount="50.00", currency="EUR")])
    assert sorted(f.currencies) == ["EUR", "JPY"]
    assert f.currencies["EUR"].open.value == Decimal("150.00")
    assert f.currencies["JPY"].open.value == Decimal("100")


def test_open_value_is_broken_down_by_stage_owner_category_month_and_quarter() -> None:
    f = forecast_of([
        row(amount="100.00", owner="ann", stage="proposal", category="best_case", probability=50,
            expected_close="2026-03-31"),
        row(amount="200.00", owner="bob", stage="negotiation", category="commit", probability=75,
            expected_close="2026-04-01"),
        row(amount="300.00", owner="ann", stage="negotiation", category="commit", probability=75,
            expected_close="2026-12-15"),
    ])
    eur = f.currencies["EUR"]
    assert {k: v.value for k, v in eur.by_stage.items()} == {
        "proposal": Decimal("100.00"), "negotiation": Decimal("500.00")}
    assert {k: v.weighted for k, v in eur.by_owner.items()} == {
        "ann": Decimal("275.00"), "bob": Decimal("150.00")}
    assert {k: v.count for k, v in eur.by_category.items()} == {
        ForecastCategory.BEST_CASE: 1, ForecastCategory.COMMIT: 2}
    assert list(eur.by_month) == ["2026-03", "2026-04", "2026-12"]
    assert {k: v.value for k, v in eur.by_quarter.items()} == {
        "2026-Q1": Decimal("100.00"), "2026-Q2": Decimal("200.00"), "2026-Q4": Decimal("300.00")}
    assert eur.open.weighted == Decimal("425.00")


def test_won_and_lost_count_apart_from_the_open_pipeline() -> None:
    f = forecast_of([
        row(amount="100.00"),
        row(amount="40.00", status="won", probability=100, category="closed", stage="won",
            closed_at=(T0 + timedelta(days=1)).isoformat()),
        row(amount="7.50", status="lost", probability=0, category="omitted", stage="lost",
            closed_at=T0.isoformat()),
        row(amount="2.50", status="lost", probability=0, category="omitted", stage="lost",
            closed_at=T0.isoformat()),
    ])
    eur = f.currencies["EUR"]
    assert (eur.open.count, eur.open.value) == (1, Decimal("100.00"))
    assert (eur.won.count, eur.won.value) == (1, Decimal("40.00"))
    assert (eur.lost.count, eur.lost.value) == (2, Decimal("10.00"))
    assert set(eur.by_stage) == {"proposal"}


def test_the_sales_cycle_is_the_mean_days_from_opening_to_winning() -> None:
    won = {"status": "won", "probability": 100, "category": "closed", "stage": "won"}
    f = forecast_of([
        row(**won, closed_at=(T0 + timedelta(days=10)).isoformat()),
        row(**won, currency="USD", closed_at=(T0 + timedelta(days=3, hours=12)).isoformat()),
        row(status="lost", probability=0, category="omitted", stage="lost",
            closed_at=(T0 + timedelta(days=100)).isoformat()),
    ])
    assert f.average_cycle_days == Decimal("6.75")


def test_there_is_no_sales_cycle_before_a_first_win() -> None:
    assert forecast_of([row()]).average_cycle_days is None
    assert forecast_of([]).currencies == {}


def test_only_the_groupings_asked_for_are_given() -> None:
    eur = forecast_of([row()], by=("owner",)).currencies["EUR"]
    assert list(eur.by_owner) == ["ann"]
    assert eur.by_stage == eur.by_month == eur.by_quarter == {}
    assert eur.open.value == Decimal("100.00")


@pytest.mark.parametrize("by", [("region",), "stage"])
def test_an_unknown_grouping_is_refused(by: Any) -> None:
    with pytest.raises(InvalidInput):
        forecast_of([row()], by=by)
