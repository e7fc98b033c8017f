"""The pipeline forecast through the CRM on every store: now, as of past moments, and as it was known then."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from crmcore import CRM, DEFAULT_PIPELINE, InvalidInput, Pipeline, PipelineStage
from crmcore.models import Forecast
from crmcore.projections.pipeline import PipelineView

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def prospect(crm: CRM) -> UUID:
    return crm.register_party(kind="person", name="Ada", stage="prospect", actor="u")


def open_one(crm: CRM, value: str = "1000", *, currency: str = "EUR", owner: str = "ann",
             stage: str | None = None, close: date = date(2026, 3, 31), at: datetime = T0) -> UUID:
    return crm.open_opportunity(prospect(crm), title="Deal", value=value, currency=currency,
                                expected_close=close, owner=owner, stage=stage, actor="u", effective_at=at)


def open_value(f: Forecast, currency: str = "EUR") -> tuple[int, Decimal, Decimal]:
    figures = f.currencies[currency].open
    return figures.count, figures.value, figures.weighted


def test_an_empty_store_has_an_empty_forecast(crm: CRM) -> None:
    f = crm.forecast()
    assert (f.currencies, f.average_cycle_days, f.at) == ({}, None, None)


def test_the_forecast_now_weighs_each_open_opportunity_by_its_probability(crm: CRM) -> None:
    open_one(crm, "1000")  # first contact, 10 %
    open_one(crm, "500.50", stage="negotiation", close=date(2026, 5, 2))  # 80 %
    open_one(crm, "300", currency="USD", owner="bob")
    f = crm.forecast()
    assert open_value(f) == (2, Decimal("1500.50"), Decimal("500.40"))
    assert open_value(f, "USD") == (1, Decimal("300.00"), Decimal("30.00"))
    eur = f.currencies["EUR"]
    assert {k: v.weighted for k, v in eur.by_quarter.items()} == {
        "2026-Q1": Decimal("100.00"), "2026-Q2": Decimal("400.40")}
    assert set(eur.by_stage) == {"first contact", "negotiation"}


def test_winning_losing_reopening_reestimating_and_overriding_move_the_forecast(crm: CRM) -> None:
    a, b, c = open_one(crm, "1000"), open_one(crm, "2000"), open_one(crm, "4000")
    crm.win(a, actor="u", effective_at=T0 + 10 * DAY)
    crm.lose(b, reasons=["price"], actor="u", effective_at=T0 + 2 * DAY)
    crm.reestimate(c, value="5000", currency="EUR", actor="u", effective_at=T0 + DAY)
    crm.override_probability(c, probability=50, actor="u", effective_at=T0 + 2 * DAY)
    eur = crm.forecast().currencies["EUR"]
    assert open_value(crm.forecast()) == (1, Decimal("5000.00"), Decimal("2500.00"))
    assert (eur.won.count, eur.won.value, eur.lost.count, eur.lost.value) == (
        1, Decimal("1000.00"), 1, Decimal("2000.00"))
    assert crm.forecast().average_cycle_days == Decimal("10.00")

    crm.reopen_opportunity(b, reason="they called back", actor="u", effective_at=T0 + 3 * DAY)
    eur = crm.forecast().currencies["EUR"]
    assert (eur.open.count, eur.open.value, eur.lost.count) == (2, Decimal("7000.00"), 0)
    assert eur.open.weighted == Decimal("2700.00")


def test_the_forecast_as_of_a_past_moment_counts_only_what_was_in_effect(crm: CRM) -> None:
    a = open_one(crm, "1000", at=T0)
    open_one(crm, "2000", at=T0 + 5 * DAY)
    crm.move_stage(a, stage="proposal", actor="u", effective_at=T0 + 2 * DAY)
    crm.win(a, actor="u", effective_at=T0 + 8 * DAY)

    before = crm.forecast(at=T0 + DAY)
    assert open_value(before) == (1, Decimal("1000.00"), Decimal("100.00"))
    assert before.at == T0 + DAY
    middle = crm.forecast(at=T0 + 6 * DAY)
    assert open_value(middle) == (2, Decimal("3000.00"), Decimal("800.00"))
    assert middle.currencies["EUR"].won.count == 0
    after = crm.forecast(at=T0 + 9 * DAY)
    assert open_value(after) == (1, Decimal("2000.00"), Decimal("200.00"))
    assert after.average_cycle_days == Decimal("8.00")
    assert crm.forecast(at=T0 - DAY).currencies == {}
    assert after == crm.forecast().model_copy(update={"at": T0 + 9 * DAY})


def test_the_forecast_as_it_was_known_leaves_out_events_recorded_later(crm: CRM) -> None:
    a = open_one(crm, "1000", at=T0)
    known = datetime.now(UTC)
    crm.lose(a, reasons=["price"], actor="u", effective_at=T0 + DAY)  # back-dated, recorded after `known`
    assert open_value(crm.forecast(at=T0 + 2 * DAY, known_at=known)) == (1, Decimal("1000.00"),
                                                                          Decimal("100.00"))
    assert crm.forecast(at=T0 + 2 * DAY).currencies["EUR"].lost.count == 1


def test_the_forecast_can_be_narrowed_to_an_owner_and_a_pipeline(store_url: str) -> None:
    short = Pipeline("short", (PipelineStage("talk", 50, "commit"), DEFAULT_PIPELINE.won,  # type: ignore[arg-type]
                               DEFAULT_PIPELINE.lost))
    with CRM(store_url, pipelines=(DEFAULT_PIPELINE, short)) as crm:
        open_one(crm, "1000", owner="ann")
        open_one(crm, "2000", owner="bob")
        crm.open_opportunity(prospect(crm), title="Deal", value="400", currency="EUR", owner="ann",
                             expected_close=date(2026, 3, 1), pipeline="short", actor="u", effective_at=T0)
        assert open_value(crm.forecast(owner="ann")) == (2, Decimal("1400.00"), Decimal("300.00"))
        assert crm.forecast(owner=" ann ") == crm.forecast(owner="ann")
        assert open_value(crm.forecast(pipeline="Short")) == (1, Decimal("400.00"), Decimal("200.00"))
        assert open_value(crm.forecast(owner="ann", pipeline="default", at=T0)) == (
            1, Decimal("1000.00"), Decimal("100.00"))
        assert crm.forecast(owner="carol").currencies == {}


@pytest.mark.parametrize("fields", [
    {"at": datetime(2026, 1, 1)}, {"at": T0, "known_at": datetime(2026, 1, 1)}, {"known_at": T0},
    {"owner": " "}, {"pipeline": "nope"},
])
def test_a_bad_forecast_question_is_refused(crm: CRM, fields: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        crm.forecast(**fields)  # type: ignore[arg-type]


def test_the_pipeline_view_rebuilt_from_zero_equals_the_one_kept_up_to_date(crm: CRM) -> None:
    a = open_one(crm, "1000")
    crm.forecast()
    crm.lose(a, reasons=["price"], actor="u", effective_at=T0 + DAY)
    open_one(crm, "5")
    kept = sorted(crm.view_rows(PipelineView.name), key=lambda r: r["id"])
    crm.rebuild_view(PipelineView.name)
    assert sorted(crm.view_rows(PipelineView.name), key=lambda r: r["id"]) == kept
    assert kept[0]["stage_at_loss"] == "first contact"
