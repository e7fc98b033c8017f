"""The forecast backtest (pure): each past period's forecast, as it stood at the period's start, against what
actually closed in it, and every stage's configured probability beside the win rate observed from it.

Input is the ``pipeline`` view folded at each period boundary (``ViewRunner.fold_at``): rows at boundary
``i`` hold everything effective strictly before it. For the period from boundary ``i`` to ``i + 1``:

- the **forecast** is the open opportunities at its start whose expected close date falls within it -
  their value, weighted value (value * probability / 100) and committed value (category "commit");
  opportunities already overdue at the start are not in it (their close date was not moved into the period);
- **won** is every opportunity won during the period (its row at the period's end is won, closed at or
  after the start), whether or not it was forecast;
- the **error** is forecast minus won, per currency, in total and per owner.

Calibration counts, per pipeline stage, the opportunities open at it at a period start and how they ended
by the last boundary, and the forecast samples won within their period. Amounts in different currencies
are never added; every sum is an exact ``Decimal`` and percentages are rounded to one decimal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from crmcore.models import (
    Backtest,
    BacktestFigures,
    BacktestPeriod,
    CurrencyBacktest,
    ForecastAccuracy,
    StageCalibration,
)
from crmcore.policies.pipelines import ForecastCategory, Pipeline
from crmcore.projections.base import Row

__all__ = ["EVERY", "backtest_of", "period_boundaries"]

#: The period lengths a backtest can use.
EVERY: tuple[str, ...] = ("month", "quarter")

_PLACES = Decimal("0.1")
_MONEY_PLACES = Decimal("0.01")
_COMMIT = ForecastCategory.COMMIT.value


def period_boundaries(every: str, periods: int, until: datetime, tz: tzinfo) -> list[datetime]:
    """The ``periods + 1`` boundaries of the ``periods`` whole periods up to the start of ``until``'s own."""
    months = 1 if every == "month" else 3
    local = until.astimezone(tz)
    index = local.year * 12 + (local.month - 1) // months * months
    starts = [index - months * back for back in range(periods, -1, -1)]
    return [datetime(i // 12, i % 12 + 1, 1, tzinfo=tz) for i in starts]


def _label(every: str, start: datetime) -> str:
    if every == "month":
        return f"{start.year:04d}-{start.month:02d}"
    return f"{start.year:04d}-Q{(start.month - 1) // 3 + 1}"


def backtest_of(
    folds: Sequence[dict[str, Row]],
    boundaries: Sequence[datetime],
    *,
    every: str,
    pipelines: Sequence[Pipeline],
    as_known: bool = False,
) -> Backtest:
    """The backtest of the ``pipeline`` view folded at each of ``boundaries`` (one fold per boundary)."""
    if len(folds) != len(boundaries) or len(boundaries) < 2:
        raise ValueError("one fold per boundary, and at least two boundaries")
    with localcontext() as context:
        context.prec = 120
        stages: dict[tuple[str, str], _Stage] = {}
        final = folds[-1]
        tallied: list[dict[str, _PeriodTally]] = []
        for index in range(len(boundaries) - 1):
            start, end = boundaries[index], boundaries[index + 1]
            opening, closing = folds[index], folds[index + 1]
            tallies: dict[str, _PeriodTally] = {}
            first_day, last_day = start.date(), end.date()
            for key, row in opening.items():
                if row["status"] != "open":
                    continue
                stage = stages.setdefault((row["pipeline"], row["stage"]), _Stage())
                stage.seen(key, final.get(key))
                if not _expected_within(row, first_day, last_day):
                    continue
                later = closing.get(key)
                stage.sampled(row["probability"], later is not None and _won_since(later, start))
                tallies.setdefault(row["currency"], _PeriodTally()).forecast(row)
            for key, row in closing.items():
                if _won_since(row, start):
                    forecast = _expected_within(opening.get(key), first_day, last_day)
                    tallies.setdefault(row["currency"], _PeriodTally()).won(row, forecast=forecast)
            tallied.append(tallies)
        currencies: dict[str, list[BacktestPeriod]] = {}
        for currency in sorted({c for tallies in tallied for c in tallies}):
            currencies[currency] = [
                _period(every, boundaries[i], boundaries[i + 1], tallies.get(currency, _PeriodTally()))
                for i, tallies in enumerate(tallied)
            ]
        return Backtest(
            every=every, timezone=str(boundaries[0].tzinfo), start=boundaries[0], end=boundaries[-1],
            as_known=as_known,
            currencies={c: _currency(c, periods) for c, periods in currencies.items()},
            calibration=_calibration(stages, pipelines),
        )


def _period(every: str, start: datetime, end: datetime, tally: _PeriodTally) -> BacktestPeriod:
    return BacktestPeriod(
        label=_label(every, start), start=start, end=end, total=tally.total.figures(),
        by_owner={owner: sums.figures() for owner, sums in sorted(tally.owners.items())},
    )


def _won_since(row: Row, start: datetime) -> bool:
    return bool(row["status"] == "won" and datetime.fromisoformat(row["closed_at"]) >= start)


def _expected_within(row: Row | None, first_day: date, last_day: date) -> bool:
    """Whether ``row`` is open and expected to close from ``first_day`` up to (not including) ``last_day``."""
    return (row is not None and row["status"] == "open"
            and first_day <= date.fromisoformat(row["expected_close"]) < last_day)


@dataclass
class _Sums:
    forecast_count: int = 0
    forecast_value: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    commit: Decimal = Decimal(0)
    won_count: int = 0
    won_value: Decimal = Decimal(0)
    won_forecast: Decimal = Decimal(0)

    def figures(self) -> BacktestFigures:
        error = self.weighted - self.won_value
        return BacktestFigures(
            forecast_count=self.forecast_count, forecast_value=self.forecast_value,
            forecast_weighted=self.weighted, commit_value=self.commit, won_count=self.won_count,
            won_value=self.won_value, won_from_forecast=self.won_forecast, error=error,
            error_percent=_percent(error, self.won_value),
        )


@dataclass
class _PeriodTally:
    total: _Sums = field(default_factory=_Sums)
    owners: dict[str, _Sums] = field(default_factory=dict)

    def forecast(self, row: Row) -> None:
        amount = Decimal(row["amount"])
        weighted = amount * row["probability"] / 100
        for sums in (self.total, self.owners.setdefault(row["owner"], _Sums())):
            sums.forecast_count += 1
            sums.forecast_value += amount
            sums.weighted += weighted
            if row["category"] == _COMMIT:
                sums.commit += amount

    def won(self, row: Row, *, forecast: bool) -> None:
        amount = Decimal(row["amount"])
        for sums in (self.total, self.owners.setdefault(row["owner"], _Sums())):
            sums.won_count += 1
            sums.won_value += amount
            if forecast:
                sums.won_forecast += amount


def _currency(currency: str, periods: list[BacktestPeriod]) -> CurrencyBacktest:
    owners = sorted({o for p in periods for o in p.by_owner})
    empty = _Sums().figures()
    return CurrencyBacktest(
        currency=currency, periods=periods,
        accuracy=_accuracy([p.total for p in periods]),
        by_owner={o: _accuracy([p.by_owner.get(o, empty) for p in periods]) for o in owners},
    )


def _accuracy(figures: list[BacktestFigures]) -> ForecastAccuracy:
    forecast = sum((f.forecast_weighted for f in figures), Decimal(0))
    won = sum((f.won_value for f in figures), Decimal(0))
    absolute = sum((abs(f.error) for f in figures), Decimal(0))
    mean = Decimal(0)
    if figures:
        mean = (absolute / len(figures)).quantize(_MONEY_PLACES, rounding=ROUND_HALF_EVEN)
    return ForecastAccuracy(
        periods=len(figures), forecast_weighted=forecast, won_value=won, bias=forecast - won,
        mean_absolute_error=mean, wape_percent=_percent(absolute, won),
    )


@dataclass
class _Stage:
    outcomes: dict[str, str] = field(default_factory=dict)
    samples: int = 0
    won_in_period: int = 0
    probability_sum: int = 0

    def seen(self, key: str, final: Row | None) -> None:
        self.outcomes[key] = final["status"] if final is not None else "open"

    def sampled(self, probability: int, won: bool) -> None:
        self.samples += 1
        self.probability_sum += probability
        self.won_in_period += won


def _calibration(
    stages: dict[tuple[str, str], _Stage], pipelines: Sequence[Pipeline],
) -> list[StageCalibration]:
    configured: dict[tuple[str, str], tuple[int, int]] = {}
    for p_index, pipeline in enumerate(pipelines):
        for s_index, configured_stage in enumerate(pipeline.stages):
            configured[(pipeline.name, configured_stage.name)] = (p_index * 1000 + s_index,
                                                                  configured_stage.probability)
    order = sorted(stages, key=lambda k: (configured.get(k, (10**9, 0))[0], k))
    result = []
    for key in order:
        stage = stages[key]
        outcomes = list(stage.outcomes.values())
        won, lost = outcomes.count("won"), outcomes.count("lost")
        average = None
        if stage.samples:
            average = (Decimal(stage.probability_sum) / stage.samples).quantize(_PLACES,
                                                                                rounding=ROUND_HALF_EVEN)
        result.append(StageCalibration(
            pipeline=key[0], stage=key[1],
            configured_probability=configured[key][1] if key in configured else None,
            average_probability=average, opportunities=len(outcomes), won=won, lost=lost,
            still_open=len(outcomes) - won - lost,
            win_rate_percent=_percent(Decimal(won), Decimal(won + lost)),
            forecast_samples=stage.samples, won_in_period=stage.won_in_period,
            won_in_period_percent=_percent(Decimal(stage.won_in_period), Decimal(stage.samples)),
        ))
    return result


def _percent(part: Decimal, whole: Decimal) -> Decimal | None:
    if not whole:
        return None
    return (part * 100 / whole).quantize(_PLACES, rounding=ROUND_HALF_EVEN)
