"""The forecast backtest through the CRM on every store: each month's forecast as it stood at its start
against what was won in it, per currency and owner, and each stage's probability against what happened."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from crmcore import CRM, InvalidInput
from crmcore.models import Backtest, BacktestFigures

UNTIL = date(2026, 3, 1)


def at(day: str, time: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{time}+00:00")


def a_quarter_of_deals(crm: CRM) -> dict[str, UUID]:
    """Five deals around January and February 2026 (see each line)."""
    party = crm.register_party(kind="person", name="Ada", stage="prospect", actor="u",
                               effective_at=at("2025-11-01"))

    def open_(value: str, stage: str, close: str, owner: str, when: str, currency: str = "EUR") -> UUID:
        return crm.open_opportunity(party, title="Deal", value=value, currency=currency, stage=stage,
                                    expected_close=date.fromisoformat(close), owner=owner, actor="u",
                                    effective_at=at(when))

    deals = {
        # expected in January at 80 % (commit), won in January
        "a": open_("1000", "negotiation", "2026-01-20", "ann", "2025-12-15"),
        # expected in January at 60 %, lost in January
        "b": open_("500", "proposal", "2026-01-25", "ann", "2025-12-20"),
        # opened during January, expected in February at 10 %, won in February
        "c": open_("2000", "first contact", "2026-02-10", "bob", "2026-01-10"),
        # expected in March: in no forecast, still open
        "d": open_("300", "first contact", "2026-03-15", "bob", "2026-01-12"),
        # in dollars, expected in February, its 20 % overridden to 50 % in January, lost in February
        "e": open_("700", "qualification", "2026-02-14", "ann", "2025-12-01", currency="USD"),
    }
    crm.win(deals["a"], actor="u", effective_at=at("2026-01-18"))
    crm.lose(deals["b"], reasons=["price"], actor="u", effective_at=at("2026-01-30"))
    crm.override_probability(deals["e"], probability=50, actor="u", effective_at=at("2026-01-20"))
    crm.win(deals["c"], actor="u", effective_at=at("2026-02-05"))
    crm.lose(deals["e"], reasons=["timing"], actor="u", effective_at=at("2026-02-20"))
    return deals


def figures(f: BacktestFigures) -> tuple[Any, ...]:
    return (f.forecast_count, f.forecast_value, f.forecast_weighted, f.commit_value, f.won_count, f.won_value,
            f.won_from_forecast, f.error, f.error_percent)


def d(text: str) -> Decimal:
    return Decimal(text)


def test_each_months_forecast_is_compared_with_what_was_won_in_it(crm: CRM) -> None:
    a_quarter_of_deals(crm)
    result = crm.backtest(periods=2, until=UNTIL)
    assert isinstance(result, Backtest)
    assert (result.every, result.timezone, result.as_known) == ("month", "UTC", False)
    assert (result.start, result.end) == (at("2026-01-01", "00:00"), at("2026-03-01", "00:00"))
    eur, usd = result.currencies["EUR"], result.currencies["USD"]
    assert [p.label for p in eur.periods] == ["2026-01", "2026-02"]
    january, february = eur.periods
    assert (january.start, january.end) == (at("2026-01-01", "00:00"), at("2026-02-01", "00:00"))
    assert figures(january.total) == (2, d("1500"), d("1100"), d("1000"), 1, d("1000"), d("1000"), d("100"),
                                      d("10.0"))
    assert figures(february.total) == (1, d("2000"), d("200"), d("0"), 1, d("2000"), d("2000"), d("-1800"),
                                       d("-90.0"))
    assert set(january.by_owner) == {"ann"}
    assert set(february.by_owner) == {"bob"}
    assert figures(usd.periods[0].total)[:5] == (0, d("0"), d("0"), d("0"), 0)
    assert usd.periods[0].total.error_percent is None
    assert figures(usd.periods[1].total) == (1, d("700"), d("350"), d("0"), 0, d("0"), d("0"), d("350"), None)

    accuracy = eur.accuracy
    assert (accuracy.periods, accuracy.forecast_weighted, accuracy.won_value, accuracy.bias) == (
        2, d("1300"), d("3000"), d("-1700"))
    assert (accuracy.mean_absolute_error, accuracy.wape_percent) == (d("950.00"), d("63.3"))
    ann, bob = eur.by_owner["ann"], eur.by_owner["bob"]
    assert (ann.forecast_weighted, ann.won_value, ann.bias, ann.mean_absolute_error, ann.wape_percent) == (
        d("1100"), d("1000"), d("100"), d("50.00"), d("10.0"))
    assert (bob.forecast_weighted, bob.won_value, bob.bias, bob.mean_absolute_error, bob.wape_percent) == (
        d("200"), d("2000"), d("-1800"), d("900.00"), d("90.0"))


def test_each_stage_is_calibrated_against_how_its_deals_ended(crm: CRM) -> None:
    a_quarter_of_deals(crm)
    calibration = crm.backtest(periods=2, until=UNTIL).calibration
    rows = {
        c.stage: (c.configured_probability, c.average_probability, c.opportunities, c.won, c.lost,
                  c.still_open, c.win_rate_percent, c.forecast_samples, c.won_in_period,
                  c.won_in_period_percent)
        for c in calibration
    }
    assert [c.stage for c in calibration] == ["first contact", "qualification", "proposal", "negotiation"]
    assert {c.pipeline for c in calibration} == {"default"}
    assert rows == {
        # c (won) and d (open) at the start of February; only c was expected then, and won then
        "first contact": (10, d("10.0"), 2, 1, 0, 1, d("100.0"), 1, 1, d("100.0")),
        # e at both starts (counted once), lost; forecast in February at its overridden 50 %
        "qualification": (20, d("50.0"), 1, 0, 1, 0, d("0.0"), 1, 0, d("0.0")),
        "proposal": (60, d("60.0"), 1, 0, 1, 0, d("0.0"), 1, 0, d("0.0")),
        "negotiation": (80, d("80.0"), 1, 1, 0, 0, d("100.0"), 1, 1, d("100.0")),
    }


def test_a_backtest_can_be_narrowed_to_an_owner_and_run_by_quarter(crm: CRM) -> None:
    a_quarter_of_deals(crm)
    bob = crm.backtest(periods=2, until=UNTIL, owner=" bob ").currencies["EUR"]
    assert [figures(p.total)[:3] for p in bob.periods] == [(0, d("0"), d("0")), (1, d("2000"), d("200"))]
    assert "USD" not in crm.backtest(periods=2, until=UNTIL, owner="bob").currencies
    quarter = crm.backtest(every="quarter", periods=1, until=date(2026, 4, 1))
    (q1,) = quarter.currencies["EUR"].periods
    # at 1 January only a and b are open and expected in the quarter; c, opened later, is won within it
    assert (q1.label, figures(q1.total)) == ("2026-Q1", (2, d("1500"), d("1100"), d("1000"), 2, d("3000"),
                                                         d("1000"), d("-1900"), d("-63.3")))


def test_as_known_uses_only_what_had_been_recorded_by_each_periods_start(crm: CRM) -> None:
    a_quarter_of_deals(crm)  # recorded today, back-dated to 2025-2026: nobody knew of them then
    known = crm.backtest(periods=2, until=UNTIL, as_known=True)
    assert (known.as_known, known.currencies, known.calibration) == (True, {}, [])
    recent = crm.backtest(periods=1, as_known=True)  # last month: still recorded after its start
    assert recent.currencies == {}


def test_period_boundaries_are_midnights_in_the_given_time_zone(crm: CRM) -> None:
    party = crm.register_party(kind="person", name="Bo", stage="prospect", actor="u",
                               effective_at=at("2025-12-01"))
    deal = crm.open_opportunity(party, title="Late", value="100", currency="EUR", stage="negotiation",
                                expected_close=date(2026, 2, 2), owner="ann", actor="u",
                                effective_at=at("2026-01-05"))
    crm.win(deal, actor="u", effective_at=at("2026-01-31", "23:30"))  # 1 February, 00:30 in Rome
    in_utc = crm.backtest(periods=2, until=UNTIL).currencies["EUR"].periods
    in_rome = crm.backtest(periods=2, until=UNTIL, timezone="Europe/Rome")
    assert in_rome.timezone == "Europe/Rome"
    assert in_rome.start == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert [p.total.won_count for p in in_utc] == [1, 0]
    assert [p.total.won_count for p in in_rome.currencies["EUR"].periods] == [0, 1]
    # in Rome the deal was open on 1 February and expected that month: forecast, then won
    assert in_rome.currencies["EUR"].periods[1].total.won_from_forecast == d("100")
    late_in_february = datetime(2026, 2, 28, 23, 30, tzinfo=UTC)  # already 1 March in Rome
    assert crm.backtest(periods=1, until=late_in_february, timezone="Europe/Rome").end == datetime(
        2026, 2, 28, 23, 0, tzinfo=UTC)
    assert crm.backtest(periods=1, until=late_in_february).end == at("2026-02-01", "00:00")


def test_what_happens_exactly_on_a_boundary_belongs_to_the_period_it_starts(crm: CRM) -> None:
    party = crm.register_party(kind="person", name="Cy", stage="prospect", actor="u",
                               effective_at=at("2025-12-01"))

    def open_(close: str) -> UUID:
        return crm.open_opportunity(party, title="Edge", value="100", currency="EUR", stage="negotiation",
                                    expected_close=date.fromisoformat(close), owner="ann", actor="u",
                                    effective_at=at("2025-12-20"))

    due_on_the_first = open_("2026-02-01")  # expected on February's first day: February's forecast
    won_at_midnight = open_("2026-01-31")
    crm.win(won_at_midnight, actor="u", effective_at=at("2026-02-01", "00:00"))  # won in February
    crm.win(due_on_the_first, actor="u", effective_at=at("2026-02-10"))
    january, february = crm.backtest(periods=2, until=UNTIL).currencies["EUR"].periods
    assert (january.total.forecast_count, january.total.won_count) == (1, 0)  # the one due on 31 January
    assert (february.total.forecast_count, february.total.won_count, february.total.won_from_forecast) == (
        1, 2, d("100"))


@pytest.mark.parametrize("fields", [
    {"periods": 0}, {"periods": True}, {"periods": 601}, {"periods": "12"}, {"every": "week"},
    {"until": datetime.now(UTC) + timedelta(days=2)}, {"until": datetime(2026, 1, 1)},
    {"until": "2026-01-01"}, {"timezone": "Mars/Olympus"}, {"owner": " "}, {"pipeline": "nope"},
])
def test_a_bad_backtest_question_is_refused(crm: CRM, fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        crm.backtest(**fields)


def test_an_empty_store_backtests_to_nothing(crm: CRM) -> None:
    result = crm.backtest()
    assert (result.currencies, result.calibration) == ({}, [])
    assert result.end <= datetime.now(UTC) < result.end + timedelta(days=32)
    assert result.end - result.start > timedelta(days=330)
