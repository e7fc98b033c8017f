"""The win/loss analysis on every store: lost reasons, stages and owners, and stalled negotiations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from crmcore import CRM, InvalidInput

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
DAY = timedelta(days=1)


def open_one(crm: CRM, value: str, *, owner: str = "ann", currency: str = "EUR") -> UUID:
    party = crm.register_party(kind="person", name="Ada", stage="prospect", actor="u", effective_at=T0)
    return crm.open_opportunity(
        party,
        title="Deal",
        value=value,
        currency=currency,
        expected_close=date(2026, 6, 30),
        owner=owner,
        actor="u",
        effective_at=T0,
    )


def test_lost_deals_are_counted_by_reason_stage_and_owner_and_won_ones_by_owner(crm: CRM) -> None:
    a, b, c, d = (
        open_one(crm, "1000"),
        open_one(crm, "2000", owner="bob"),
        open_one(crm, "500"),
        open_one(crm, "700", currency="USD"),
    )
    crm.move_stage(b, stage="proposal", actor="u", effective_at=T0 + DAY)
    crm.lose(a, reasons=["price"], actor="u", effective_at=T0 + 2 * DAY)
    crm.lose(b, reasons=["price", "competitor"], actor="u", effective_at=T0 + 2 * DAY)
    crm.win(c, actor="u", effective_at=T0 + 3 * DAY)
    crm.lose(d, reasons=["timing"], actor="u", effective_at=T0 + 3 * DAY)
    eur = crm.win_loss().currencies["EUR"]
    assert (eur.lost.count, eur.lost.value) == (2, Decimal("3000"))
    assert {k: (f.count, f.value) for k, f in eur.lost_by_reason.items()} == {
        "competitor": (1, Decimal("2000")),
        "price": (2, Decimal("3000")),
    }
    assert {k: f.count for k, f in eur.lost_by_stage.items()} == {"first contact": 1, "proposal": 1}
    assert {k: f.value for k, f in eur.lost_by_owner.items()} == {
        "ann": Decimal("1000"),
        "bob": Decimal("2000"),
    }
    assert {k: f.count for k, f in eur.won_by_owner.items()} == {"ann": 1}
    assert crm.win_loss().currencies["USD"].lost_by_reason["timing"].value == Decimal("700")


def test_an_open_deal_with_no_change_for_the_stale_period_is_an_interrupted_negotiation(crm: CRM) -> None:
    quiet, busy = open_one(crm, "1000"), open_one(crm, "2000")
    crm.move_stage(busy, stage="qualification", actor="u", effective_at=T0 + 80 * DAY)
    at = T0 + 100 * DAY
    report = crm.win_loss(at=at)
    assert [(i.opportunity_id, i.idle_days) for i in report.interrupted] == [(quiet, 100)]
    assert crm.win_loss(at=at, stale_after=timedelta(days=10)).interrupted[1].opportunity_id == busy
    assert crm.win_loss(at=T0 + 30 * DAY).interrupted == []


def test_win_loss_as_of_a_past_moment_ignores_later_losses(crm: CRM) -> None:
    deal = open_one(crm, "1000")
    crm.lose(deal, reasons=["price"], actor="u", effective_at=T0 + 10 * DAY)
    assert crm.win_loss(at=T0 + 5 * DAY).currencies["EUR"].lost.count == 0
    assert crm.win_loss(at=T0 + 11 * DAY).currencies["EUR"].lost.count == 1


@pytest.mark.parametrize("fields", [{"stale_after": timedelta(0)}, {"known_at": T0}, {"owner": " "}])
def test_a_bad_win_loss_question_is_refused(crm: CRM, fields: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        crm.win_loss(**fields)  # type: ignore[arg-type]
