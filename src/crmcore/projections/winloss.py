"""Win/loss analysis from the ``pipeline`` view's rows (pure): why deals are lost, and which have stalled.

DOMAIN.md: "Lost and prematurely interrupted negotiations are analysed to understand the market." Lost
opportunities are counted by reason (one with several reasons counts under each), by the stage they were
lost at and by owner; won ones by owner; an open opportunity with no change for ``stale_after`` is a
prematurely interrupted negotiation. Currencies are never added together.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, localcontext

from crmcore.models import ClosedFigures, CurrencyWinLoss, InterruptedNegotiation, WinLoss
from crmcore.projections.base import Row

__all__ = ["DEFAULT_STALE_AFTER", "win_loss_of"]

#: An open opportunity with no change for this long counts as a prematurely interrupted negotiation (the
#: domain's "average time a contact takes to be worked", 3 months, as the default).
DEFAULT_STALE_AFTER = timedelta(days=90)


def win_loss_of(
    rows: Iterable[Row],
    *,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    known_at: datetime | None = None,
) -> WinLoss:
    """The win/loss analysis of ``rows`` (rows of ``PipelineView``) as it stands at ``now``."""
    tallies: dict[str, dict[str, dict[str, list[Decimal]]]] = {}
    interrupted: list[InterruptedNegotiation] = []
    with localcontext() as context:
        context.prec = 120
        for row in rows:
            amount = Decimal(row["amount"])
            tally = tallies.setdefault(row["currency"], {
                "won": {}, "lost": {}, "by_reason": {}, "by_stage": {}, "by_owner": {}, "won_by_owner": {},
            })
            if row["status"] == "won":
                _add(tally["won"], "all", amount)
                _add(tally["won_by_owner"], row["owner"], amount)
            elif row["status"] == "lost":
                _add(tally["lost"], "all", amount)
                for reason in row["lost_reasons"]:
                    _add(tally["by_reason"], reason, amount)
                _add(tally["by_stage"], row["stage_at_loss"] or row["stage"], amount)
                _add(tally["by_owner"], row["owner"], amount)
            else:
                last = datetime.fromisoformat(row.get("last_event_at") or row["opened_at"])
                if now - last >= stale_after:
                    interrupted.append(InterruptedNegotiation(
                        opportunity_id=row["id"], party_id=row["party_id"], owner=row["owner"],
                        stage=row["stage"], amount=amount, currency=row["currency"], last_change_at=last,
                        idle_days=(now - last).days,
                    ))
        currencies = {
            currency: CurrencyWinLoss(
                currency=currency,
                won=_figures(t["won"].get("all")),
                lost=_figures(t["lost"].get("all")),
                lost_by_reason=_grouped(t["by_reason"]),
                lost_by_stage=_grouped(t["by_stage"]),
                lost_by_owner=_grouped(t["by_owner"]),
                won_by_owner=_grouped(t["won_by_owner"]),
            )
            for currency, t in sorted(tallies.items())
        }
    interrupted.sort(key=lambda i: (-i.idle_days, str(i.opportunity_id)))
    return WinLoss(at=now, known_at=known_at, stale_after_days=stale_after.days, currencies=currencies,
                   interrupted=interrupted)


def _add(groups: dict[str, list[Decimal]], key: str, amount: Decimal) -> None:
    groups.setdefault(key, []).append(amount)


def _figures(amounts: list[Decimal] | None) -> ClosedFigures:
    amounts = amounts or []
    return ClosedFigures(count=len(amounts), value=sum(amounts, Decimal(0)))


def _grouped(groups: dict[str, list[Decimal]]) -> dict[str, ClosedFigures]:
    return {key: _figures(amounts) for key, amounts in sorted(groups.items())}
