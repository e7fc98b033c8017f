"""The Opportunity aggregate on its own: the events its commands record and the rules they enforce."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from crmcore import (
    DEFAULT_PIPELINE,
    CurrencyMismatch,
    EffectiveTimeOutOfOrder,
    ForecastCategory,
    IllegalTransition,
    InvalidInput,
    Money,
    OpportunityStatus,
)
from crmcore.aggregates.opportunity import Opportunity

P = DEFAULT_PIPELINE


def opened(**overrides: object) -> Opportunity:
    fields: dict[str, object] = {
        "party_id": uuid4(), "title": "Deal", "owner": "ann", "value": Money.of("1000", "EUR"),
        "pipeline": P, "stage": None, "expected_close": date(2027, 1, 31), "actor": "u",
    }
    return Opportunity.open(**{**fields, **overrides})  # type: ignore[arg-type]


def events_of(opportunity: Opportunity) -> list[object]:
    return list(opportunity.collect_events())


def test_an_opportunity_opens_at_the_first_stage_at_its_default_odds() -> None:
    opportunity = opened()
    (event,) = events_of(opportunity)
    assert isinstance(event, Opportunity.Opened)
    assert (event.stage, event.probability, event.category) == ("first contact", 10, "pipeline")
    assert event.value == {"amount": "1000.00", "currency": "EUR"}
    assert event.expected_close == "2027-01-31"


def test_an_opportunity_can_open_at_a_named_open_stage_but_not_closed() -> None:
    assert opened(stage="Negotiation").probability == 80
    with pytest.raises(IllegalTransition):
        opened(stage="won")


def test_moving_stage_sets_the_stage_default_probability_and_category() -> None:
    opportunity = opened()
    opportunity.move_stage(pipeline=P, stage="proposal", actor="u")
    assert (opportunity.probability, opportunity.category) == (60, ForecastCategory.BEST_CASE)
    event = events_of(opportunity)[-1]
    assert isinstance(event, Opportunity.StageMoved)
    assert (event.stage, event.probability, event.category) == ("proposal", 60, "best_case")


def test_an_override_lasts_until_the_next_stage_move() -> None:
    opportunity = opened()
    opportunity.override_probability(probability=35, actor="u")
    assert opportunity.probability == 35
    opportunity.move_stage(pipeline=P, stage="qualification", actor="u")
    assert opportunity.probability == 20


def test_moving_to_the_stage_it_is_at_records_nothing_unless_an_override_is_reset() -> None:
    opportunity = opened()
    assert opportunity.move_stage(pipeline=P, stage="first contact", actor="u") is False
    opportunity.override_probability(probability=15, actor="u")
    assert opportunity.move_stage(pipeline=P, stage="first contact", actor="u") is True
    assert opportunity.probability == 10


def test_winning_means_probability_100_and_category_closed() -> None:
    opportunity = opened()
    opportunity.win(pipeline=P, reasons=["champion"], actor="u")
    assert (opportunity.status, opportunity.probability, opportunity.category) == (
        OpportunityStatus.WON, 100, ForecastCategory.CLOSED)
    assert opportunity.closed_at is not None


def test_losing_means_probability_0_and_category_omitted() -> None:
    opportunity = opened()
    opportunity.lose(pipeline=P, reasons=["price"], actor="u")
    assert (opportunity.status, opportunity.probability, opportunity.category) == (
        OpportunityStatus.LOST, 0, ForecastCategory.OMITTED)
    assert opportunity.reasons == ["price"]


@pytest.mark.parametrize("command", [
    lambda o: o.move_stage(pipeline=P, stage="proposal", actor="u"),
    lambda o: o.reestimate(value=Money.of(5, "EUR"), actor="u"),
    lambda o: o.move_close_date(expected_close=date(2027, 3, 1), actor="u"),
    lambda o: o.change_owner(owner="bob", actor="u"),
    lambda o: o.override_probability(probability=50, actor="u"),
    lambda o: o.win(pipeline=P, reasons=[], actor="u"),
    lambda o: o.lose(pipeline=P, reasons=["price"], actor="u"),
], ids=["move", "reestimate", "close date", "owner", "override", "win", "lose"])
def test_a_closed_opportunity_refuses_every_change_but_reopening(command: object) -> None:
    opportunity = opened()
    opportunity.win(pipeline=P, reasons=[], actor="u")
    version = opportunity.version
    with pytest.raises(IllegalTransition):
        command(opportunity)  # type: ignore[operator]
    assert opportunity.version == version


def test_reopening_returns_to_the_stage_it_closed_from_by_default() -> None:
    opportunity = opened(stage="negotiation")
    opportunity.lose(pipeline=P, reasons=["timing"], actor="u")
    opportunity.reopen(pipeline=P, stage=None, reason="budget came back", actor="u")
    assert (opportunity.status, opportunity.stage, opportunity.probability) == (
        OpportunityStatus.OPEN, "negotiation", 80)
    assert opportunity.reasons == []
    assert opportunity.closed_at is None


def test_an_open_opportunity_cannot_be_reopened() -> None:
    with pytest.raises(IllegalTransition):
        opened().reopen(pipeline=P, stage=None, reason="why", actor="u")


def test_every_close_date_move_is_kept_in_order() -> None:
    opportunity = opened()
    for month in (2, 3, 1):
        opportunity.move_close_date(expected_close=date(2027, month, 15), actor="u")
    assert [(h["previous"], h["expected_close"]) for h in opportunity.close_date_history] == [
        ("2027-01-31", "2027-02-15"), ("2027-02-15", "2027-03-15"), ("2027-03-15", "2027-01-15")]


def test_a_reestimate_in_another_currency_is_refused() -> None:
    opportunity = opened()
    with pytest.raises(CurrencyMismatch):
        opportunity.reestimate(value=Money.of(5, "USD"), actor="u")
    assert opportunity.version == 1


def test_a_reestimate_is_stored_as_strings() -> None:
    opportunity = opened()
    opportunity.reestimate(value=Money.of("99.5", "EUR"), actor="u")
    assert opportunity.amount == Decimal("99.50")
    event = events_of(opportunity)[-1]
    assert isinstance(event, Opportunity.ValueReestimated)
    assert event.value == {"amount": "99.50", "currency": "EUR"}


def test_an_effective_time_before_the_previous_event_is_refused() -> None:
    now = datetime.now(UTC)
    opportunity = opened(effective_at=now)
    with pytest.raises(EffectiveTimeOutOfOrder):
        opportunity.change_owner(owner="bob", actor="u", effective_at=now - timedelta(days=1))
    assert opportunity.version == 1


def test_an_effective_time_in_the_future_or_naive_is_refused() -> None:
    with pytest.raises(InvalidInput):
        opened(effective_at=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(InvalidInput):
        opened(effective_at=datetime(2026, 1, 1))


def test_replaying_the_events_gives_the_same_state() -> None:
    opportunity = opened()
    opportunity.move_stage(pipeline=P, stage="proposal", actor="u")
    opportunity.move_close_date(expected_close=date(2027, 5, 1), actor="u")
    opportunity.lose(pipeline=P, reasons=["price", "timing"], actor="u")
    opportunity.reopen(pipeline=P, stage="qualification", reason="again", actor="u")
    replayed = None
    for event in events_of(opportunity):
        replayed = event.mutate(replayed)  # type: ignore[attr-defined]
    assert isinstance(replayed, Opportunity)
    assert replayed.state() == opportunity.state()


def test_a_snapshot_gives_back_enums_decimals_and_dates_after_a_json_round_trip() -> None:
    from eventsourcing.application import Application

    opportunity = opened()
    for i in range(105):
        opportunity.reestimate(value=Money.of(Decimal(i) + Decimal("0.5"), "EUR"), actor="u")
    opportunity.move_close_date(expected_close=date(2027, 6, 1), actor="u")
    opportunity.lose(pipeline=P, reasons=["price"], actor="u")
    app: Application[UUID] = Application(env={"IS_SNAPSHOTTING_ENABLED": "y"})
    app.save(opportunity)
    app.take_snapshot(opportunity.id)
    assert app.snapshots is not None
    assert len(list(app.snapshots.get(opportunity.id))) == 1
    restored = app.repository.get(opportunity.id)
    assert isinstance(restored, Opportunity)
    assert isinstance(restored.status, OpportunityStatus)
    assert isinstance(restored.category, ForecastCategory)
    assert isinstance(restored.amount, Decimal)
    assert restored.state() == opportunity.state()
    restored.reopen(pipeline=P, stage=None, reason="again", actor="u")
    assert restored.status is OpportunityStatus.OPEN
