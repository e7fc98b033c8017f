"""``pipeline``: one row per opportunity holding what the forecast reads, and the forecast aggregation.

A row keeps the amount as a string beside its currency, dates and effective times as ISO text, so it stays
JSON-native in every view storage. :func:`forecast_of` turns rows into a :class:`~crmcore.models.Forecast`
without touching a store: currencies are never added together, and every sum is an exact ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any, ClassVar

from eventsourcing.utils import get_topic

from crmcore.aggregates.opportunity import OPPORTUNITY_EVENTS, Opportunity
from crmcore.exceptions import InvalidInput
from crmcore.models import ClosedFigures, CurrencyForecast, Forecast, PipelineFigures
from crmcore.policies.pipelines import ForecastCategory
from crmcore.projections.base import RecordView, Row
from crmcore.projections.records import StoredRecord

__all__ = ["GROUPINGS", "PipelineView", "forecast_of"]

#: The breakdowns a forecast can give, each besides the total: ``forecast_of(rows, by=("stage",))``.
GROUPINGS: tuple[str, ...] = ("stage", "owner", "category", "month", "quarter")

#: Enough digits that no sum of stored amounts (at most 24 digits each) is ever rounded.
_PRECISION = 120
_SECONDS_PER_DAY = Decimal(86400)
_CYCLE_PLACES = Decimal("0.01")


class PipelineView(RecordView):
    """Every opportunity with its party, campaign (None: none), owner, pipeline, stage, odds, value, close
    date, status and times.

    ``opened_at``, ``closed_at`` and ``last_event_at`` (the latest change) are effective times; a lost row
    keeps its ``lost_reasons`` and the open stage it was lost from (``stage_at_loss``). Reopening clears the
    close. Folded from stored records: a rebuild decodes each event's JSON once and builds no event object.
    """

    name: ClassVar[str] = "pipeline"
    version: ClassVar[int] = 3
    event_classes: ClassVar[tuple[type[Any], ...]] = OPPORTUNITY_EVENTS

    def __init__(self) -> None:
        E = Opportunity  # noqa: N806
        self._opened = get_topic(E.Opened)
        self._reestimated, self._close_moved = get_topic(E.ValueReestimated), get_topic(E.CloseDateMoved)
        self._changes: dict[str, Callable[[Row, dict[str, Any]], None]] = {
            get_topic(E.StageMoved): _set_stage,
            get_topic(E.ValueReestimated): _set_value,
            get_topic(E.CloseDateMoved): _set_close,
            get_topic(E.OwnerChanged): _set_owner,
            get_topic(E.ProbabilityOverridden): _set_probability,
            get_topic(E.Won): _won,
            get_topic(E.Lost): _lost,
            get_topic(E.Reopened): _reopened,
        }

    def evolve_record(self, row: Row | None, record: StoredRecord) -> Row | None:
        _, originator_id, _, topic, data = record
        at = data["effective_at"]
        if topic == self._opened:
            value = data["value"]
            return {
                "id": originator_id,
                "party_id": data["party_id"],
                "campaign_id": data["campaign_id"],
                "owner": data["owner"],
                "pipeline": data["pipeline"],
                "stage": data["stage"],
                "category": data["category"],
                "probability": data["probability"],
                "amount": value["amount"],
                "currency": value["currency"],
                "expected_close": data["expected_close"],
                "status": "open",
                "opened_at": at,
                "closed_at": None,
                "lost_reasons": [],
                "stage_at_loss": None,
                "last_event_at": at,
            }
        if row is None:
            return None
        if topic == self._reestimated:  # the most frequent changes, inline
            value = data["value"]
            row["amount"], row["currency"] = value["amount"], value["currency"]
        elif topic == self._close_moved:
            row["expected_close"] = data["expected_close"]
        else:
            self._changes[topic](row, data)
        if at > (row.get("last_event_at") or ""):
            row["last_event_at"] = at
        return row


def _set_stage(row: Row, data: dict[str, Any]) -> None:
    row["stage"], row["probability"], row["category"] = data["stage"], data["probability"], data["category"]


def _set_value(row: Row, data: dict[str, Any]) -> None:
    value = data["value"]
    row["amount"], row["currency"] = value["amount"], value["currency"]


def _set_close(row: Row, data: dict[str, Any]) -> None:
    row["expected_close"] = data["expected_close"]


def _set_owner(row: Row, data: dict[str, Any]) -> None:
    row["owner"] = data["owner"]


def _set_probability(row: Row, data: dict[str, Any]) -> None:
    row["probability"] = data["probability"]


def _won(row: Row, data: dict[str, Any]) -> None:
    _set_stage(row, data)
    row["status"], row["closed_at"] = "won", data["effective_at"]


def _lost(row: Row, data: dict[str, Any]) -> None:
    row["stage_at_loss"] = row["stage"]
    _set_stage(row, data)
    row["status"], row["closed_at"], row["lost_reasons"] = "lost", data["effective_at"], list(data["reasons"])


def _reopened(row: Row, data: dict[str, Any]) -> None:
    _set_stage(row, data)
    row["status"], row["closed_at"], row["lost_reasons"], row["stage_at_loss"] = "open", None, [], None


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
