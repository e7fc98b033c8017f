"""``pipeline``: one row per opportunity holding what the forecast reads, and the forecast aggregation.

A row keeps the amount as a string beside its currency, dates and effective times as ISO text, so it stays
JSON-native in every view storage. :func:`forecast_of` turns rows into a :class:`~crmcore.models.Forecast`
without touching a store: currencies are never added together, and every sum is an exact ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any, ClassVar, cast

from eventsourcing.domain import DomainEventProtocol

from crmcore.aggregates.opportunity import OPPORTUNITY_EVENTS, Opportunity
from crmcore.exceptions import InvalidInput
from crmcore.models import ClosedFigures, CurrencyForecast, Forecast, PipelineFigures
from crmcore.policies.pipelines import ForecastCategory
from crmcore.projections.base import Row, View

__all__ = ["GROUPINGS", "PipelineView", "forecast_of"]

#: The breakdowns a forecast can give, each besides the total: ``forecast_of(rows, by=("stage",))``.
GROUPINGS: tuple[str, ...] = ("stage", "owner", "category", "month", "quarter")

#: Enough digits that no sum of stored amounts (at most 24 digits each) is ever rounded.
_PRECISION = 120
_SECONDS_PER_DAY = Decimal(86400)
_CYCLE_PLACES = Decimal("0.01")


class PipelineView(View):
    """Every opportunity with its party, owner, pipeline, stage, odds, value, close date, status and times.

    ``opened_at``, ``closed_at`` and ``last_event_at`` (the latest change) are effective times; a lost row
    keeps its ``lost_reasons`` and the open stage it was lost from (``stage_at_loss``). Reopening clears the
    close.
    """

    name: ClassVar[str] = "pipeline"
    version: ClassVar[int] = 2
    event_classes: ClassVar[tuple[type[Any], ...]] = OPPORTUNITY_EVENTS

    def key(self, event: DomainEventProtocol[Any]) -> str:
        return str(event.originator_id)

    def evolve(self, row: Row | None, event: DomainEventProtocol[Any]) -> Row | None:
        if isinstance(event, Opportunity.Opened):
            return {
                "id": str(event.originator_id),
                "party_id": str(event.party_id),
                "owner": event.owner,
                "pipeline": event.pipeline,
                "stage": event.stage,
                "category": event.category,
                "probability": event.probability,
                "amount": event.value["amount"],
                "currency": event.value["currency"],
                "expected_close": event.expected_close,
                "status": "open",
                "opened_at": event.effective_at.isoformat(),
                "closed_at": None,
                "lost_reasons": [],
                "stage_at_loss": None,
                "last_event_at": event.effective_at.isoformat(),
            }
        if row is None:
            return None
        new = dict(row)
        at = cast(Opportunity.Event, event).effective_at.isoformat()
        new["last_event_at"] = max(at, row.get("last_event_at") or at)
        if isinstance(event, Opportunity.StageMoved):
            new.update(stage=event.stage, probability=event.probability, category=event.category)
        elif isinstance(event, Opportunity.ValueReestimated):
            new.update(amount=event.value["amount"], currency=event.value["currency"])
        elif isinstance(event, Opportunity.CloseDateMoved):
            new["expected_close"] = event.expected_close
        elif isinstance(event, Opportunity.OwnerChanged):
            new["owner"] = event.owner
        elif isinstance(event, Opportunity.ProbabilityOverridden):
            new["probability"] = event.probability
        elif isinstance(event, Opportunity.Won):
            new.update(stage=event.stage, probability=event.probability, category=event.category,
                       status="won", closed_at=event.effective_at.isoformat())
        elif isinstance(event, Opportunity.Lost):
            new.update(stage=event.stage, probability=event.probability, category=event.category,
                       status="lost", closed_at=event.effective_at.isoformat(),
                       lost_reasons=list(event.reasons), stage_at_loss=row["stage"])
        elif isinstance(event, Opportunity.Reopened):
            new.update(stage=event.stage, probability=event.probability, category=event.category,
                       status="open", closed_at=None, lost_reasons=[], stage_at_loss=None)
        return new


def forecast_of(
    rows: Iterable[Row],
    *,
    by: Collection[str] = GROUPINGS,
    at: datetime | None = None,
    known_at: datetime | None = None,
) -> Forecast:
    """The forecast of ``rows`` (rows of :class:`PipelineView`), per currency.

    Open value and weighted value (value * probability / 100) in total and by each grouping in ``by``
    (any of :data:`GROUPINGS`); won and lost counts and values; the average sales cycle in days over won
    opportunities. ``at`` and ``known_at`` only label the answer with the moment it stands at.
    """
    groupings = tuple(by)
    unknown = [g for g in groupings if g not in GROUPINGS]
    if unknown or isinstance(by, str):
        raise InvalidInput(
            f"forecast groupings are some of {', '.join(GROUPINGS)}: got {by!r}",
            [{"loc": ("by",), "msg": "unknown grouping", "type": "grouping"}],
        )
    with localcontext() as context:
        context.prec = _PRECISION
        tallies: dict[str, _Tally] = {}
        cycle_seconds, won_count = Decimal(0), 0
        for row in rows:
            tally = tallies.setdefault(row["currency"], _Tally())
            amount = Decimal(row["amount"])
            status = row["status"]
            if status == "open":
                weighted = amount * row["probability"] / 100
                tally.open.add(amount, weighted)
                for grouping in groupings:
                    tally.groups[grouping].setdefault(_group_key(grouping, row), _Sum()).add(amount, weighted)
            elif status == "won":
                tally.won.add(amount, amount)
                won_count += 1
                opened = datetime.fromisoformat(row["opened_at"])
                closed = datetime.fromisoformat(row["closed_at"])
                cycle = closed - opened
                cycle_seconds += Decimal(cycle.days * 86400 + cycle.seconds)
                cycle_seconds += Decimal(cycle.microseconds) / 10**6
            elif status == "lost":
                tally.lost.add(amount, Decimal(0))
        average = None
        if won_count:
            average = (cycle_seconds / won_count / _SECONDS_PER_DAY).quantize(
                _CYCLE_PLACES, rounding=ROUND_HALF_EVEN)
        return Forecast(
            at=at, known_at=known_at,
            currencies={currency: tallies[currency].model(currency) for currency in sorted(tallies)},
            average_cycle_days=average,
        )


def _group_key(grouping: str, row: Row) -> str:
    if grouping == "month":
        return str(row["expected_close"])[:7]
    if grouping == "quarter":
        close = date.fromisoformat(row["expected_close"])
        return f"{close.year:04d}-Q{(close.month - 1) // 3 + 1}"
    return str(row[grouping])


@dataclass
class _Sum:
    count: int = 0
    value: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)

    def add(self, value: Decimal, weighted: Decimal) -> None:
        self.count += 1
        self.value += value
        self.weighted += weighted

    def figures(self) -> PipelineFigures:
        return PipelineFigures(count=self.count, value=self.value, weighted=self.weighted)


@dataclass
class _Tally:
    open: _Sum = field(default_factory=_Sum)
    groups: dict[str, dict[str, _Sum]] = field(default_factory=lambda: {g: {} for g in GROUPINGS})
    won: _Sum = field(default_factory=_Sum)
    lost: _Sum = field(default_factory=_Sum)

    def model(self, currency: str) -> CurrencyForecast:
        def figures(grouping: str) -> dict[str, PipelineFigures]:
            return {k: s.figures() for k, s in sorted(self.groups[grouping].items())}

        return CurrencyForecast(
            currency=currency,
            open=self.open.figures(),
            by_stage=figures("stage"),
            by_owner=figures("owner"),
            by_category={ForecastCategory(k): v for k, v in figures("category").items()},
            by_month=figures("month"),
            by_quarter=figures("quarter"),
            won=ClosedFigures(count=self.won.count, value=self.won.value),
            lost=ClosedFigures(count=self.lost.count, value=self.lost.value),
        )
