"""A year of sales: a simulated team works its pipeline through 2025, then the forecast is checked against it.

In the autumn of 2024 marketing brings in sixty parties, persons and companies. Each one gets in touch,
is qualified, and so becomes a prospect (a person) or a target (an organization): a party that can hold
opportunities. Through 2025 four sales reps open deals for them and work them through the default
pipeline (first contact, qualification, needs analysis, proposal, negotiation), re-estimating values and
moving close dates at their weekly reviews, until each deal is won or lost. The year is planned by
``crmcore.testing.sales.simulate_sales`` from a fixed seed and played with ``play_sales``, one command at a
time, exactly as the team would enter it. The simulated team is optimistic on purpose: from "proposal" on,
deals are won less often than the pipeline's probabilities say.

Then the script prints:

* how many parties became customers (a won deal converts its party: ``run_policies``);
* the forecast now: the open pipeline, by stage and by expected-close quarter, won and lost totals and the
  average sales cycle;
* the win/loss analysis at the end of the year: lost deals by reason and by the stage they were lost at,
  and the negotiations that stalled;
* the backtest: the forecast as it stood at the start of each month of 2025 against what was actually won
  in that month, its accuracy overall and per rep, each stage's probability against the win rate observed
  from it, and the same by quarter;
* a reading of the calibration, computed from those numbers.

Every business date is fixed (late 2024 and 2025), so the output is the same on every run but for the
store's path. Run it from anywhere: ``python examples/sales_year.py``. The store is a fresh SQLite file in a
temporary directory, removed when the script ends.
"""

from __future__ import annotations

import random
import tempfile
import textwrap
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from crmcore import (
    CRM,
    Backtest,
    BacktestFigures,
    ClosedFigures,
    ForecastAccuracy,
    PipelineFigures,
    StageCalibration,
)
from crmcore.testing.sales import play_sales, simulate_sales

#: The simulated year: how many deals are opened, from when, and the seed that plans them. (Sixty deals
#: with this seed all close before the year ends, leaving no open pipeline to forecast.)
OPPORTUNITIES = 90
SEED = 7
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2026, 1, 1, tzinfo=UTC)

#: How many parties marketing brings in, and the seed for their names and dates.
PARTIES = 60
PARTY_SEED = 2024
#: When the parties are registered: over the autumn of 2024, each qualified before the year ends.
AUTUMN = datetime(2024, 9, 2, 9, 0, tzinfo=UTC)

FIRST_NAMES = ("Anna", "Bruno", "Chiara", "Davide", "Elena", "Fabio", "Giulia", "Luca", "Marta", "Nicola",
               "Paola", "Roberto", "Sara", "Tommaso", "Valeria")
SURNAMES = ("Bianchi", "Colombo", "Conti", "Costa", "Esposito", "Ferrari", "Galli", "Greco", "Lombardi",
            "Marino", "Moretti", "Ricci", "Romano", "Russo", "Villa")
COMPANY_WORDS = ("Alpine", "Aurora", "Delta", "Ferro", "Lago", "Luce", "Nord", "Olivo", "Ponte", "Sole",
                 "Tevere", "Vento")
COMPANY_KINDS = ("Systems", "Logistics", "Foods", "Textiles", "Engineering", "Energy", "Design", "Labs")
CHANNELS = ("web_form", "email", "phone", "event", "referral", "download")

#: A stage is read as over-optimistic (or too cautious) when the observed win rate is this many points below
#: (or above) its configured probability.
TOLERANCE = Decimal(5)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="crmcore-sales-year-") as tmp:
        store = f"sqlite:///{Path(tmp) / 'sales_year.db'}"
        print(f"store: {store} (temporary)")
        with CRM(store) as crm:
            tell_the_year(crm)


def tell_the_year(crm: CRM) -> None:
    parties = bring_in_parties(crm)
    names = {party: crm.get_party(party).name for party in parties}
    print(f"registered and qualified {len(parties)} parties in late 2024: "
          f"{sum(crm.get_party(p).stage == 'prospect' for p in parties)} prospects, "
          f"{sum(crm.get_party(p).stage == 'target' for p in parties)} targets")

    steps = simulate_sales(opportunities=OPPORTUNITIES, start=YEAR_START, days=365, seed=SEED)
    deals = play_sales(crm, steps, lambda index: parties[index % len(parties)])
    print(f"played {len(steps)} sales commands on {len(deals)} opportunities through 2025")

    handled = crm.run_policies()
    customers = crm.parties(stage="customer")
    persons = sum(c.kind == "person" for c in customers)
    print(f"customers: {len(customers)} ({persons} persons, {len(customers) - persons} organizations), "
          f"converted by their won deals")
    print(f"  run_policies: {handled} wins left to apply (each win converts its party as it is recorded)")

    stages = [stage.name for stage in crm.pipelines[0].open_stages]
    print_forecast(crm, stages)
    print_win_loss(crm, stages, names)
    monthly = crm.backtest(periods=12, every="month", until=date(2026, 1, 1))
    quarterly = crm.backtest(periods=4, every="quarter", until=date(2026, 1, 1))
    print_backtest(monthly)
    print_quarters(quarterly)
    print()
    print("reading:")
    print(textwrap.fill(read_calibration(monthly), width=100, initial_indent="  ", subsequent_indent="  "))


def bring_in_parties(crm: CRM) -> list[UUID]:
    """Register, engage and qualify :data:`PARTIES` parties (two persons for each organization)."""
    rng = random.Random(PARTY_SEED)
    organizations = PARTIES // 3
    people = rng.sample([f"{first} {last}" for first in FIRST_NAMES for last in SURNAMES],
                        PARTIES - organizations)
    companies = rng.sample([f"{word} {kind}" for word in COMPANY_WORDS for kind in COMPANY_KINDS],
                           organizations)
    entries = [("person", name) for name in people] + [("organization", name) for name in companies]
    rng.shuffle(entries)
    parties = []
    for number, (kind, name) in enumerate(entries):
        registered = AUTUMN + timedelta(days=number, hours=rng.randint(0, 8))
        engaged = registered + timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 6))
        qualified = engaged + timedelta(days=rng.randint(2, 20))
        party = crm.register_party(kind=kind, name=name, actor="marketing:import", effective_at=registered)
        crm.engage(party, channel=rng.choice(CHANNELS), actor="marketing:web", effective_at=engaged)
        crm.qualify(party, actor="marketing:eva", effective_at=qualified)
        parties.append(party)
    return parties


# ---------------------------------------------------------------------- forecast and win/loss


def print_forecast(crm: CRM, stages: Sequence[str]) -> None:
    forecast = crm.forecast()
    print()
    print("== forecast now ==")
    for currency, figures in forecast.currencies.items():
        print(f"open pipeline ({currency}): {pipeline_line(figures.open)}")
        print("  by stage:")
        for stage in ordered(figures.by_stage, stages):
            print(f"    {stage:<15} {pipeline_line(figures.by_stage[stage])}")
        print("  by expected-close quarter:")
        for quarter in sorted(figures.by_quarter):
            print(f"    {quarter:<15} {pipeline_line(figures.by_quarter[quarter])}")
        print(f"won:  {closed_line(figures.won)}")
        print(f"lost: {closed_line(figures.lost)}")
    cycle = forecast.average_cycle_days
    print(f"average sales cycle: {'-' if cycle is None else f'{cycle:.1f}'} days (opening to win)")


def print_win_loss(crm: CRM, stages: Sequence[str], names: dict[UUID, str]) -> None:
    analysis = crm.win_loss(at=YEAR_END)
    print()
    print(f"== win/loss at {analysis.at:%Y-%m-%d} ==")
    for currency, figures in analysis.currencies.items():
        print(f"won ({currency}): {closed_line(figures.won)}; lost: {closed_line(figures.lost)}")
        print("  lost by reason (a deal lost for two reasons counts under both):")
        by_reason = sorted(figures.lost_by_reason.items(), key=lambda item: (-item[1].count, item[0]))
        for reason, closed in by_reason:
            print(f"    {reason:<15} {closed_line(closed)}")
        print("  lost by stage at loss:")
        for stage in ordered(figures.lost_by_stage, stages):
            print(f"    {stage:<15} {closed_line(figures.lost_by_stage[stage])}")
    interrupted = analysis.interrupted
    print(f"interrupted negotiations (no change for {analysis.stale_after_days} days or more): "
          f"{len(interrupted)}")
    for stalled in interrupted[:3]:
        title = crm.get_opportunity(stalled.opportunity_id).title
        print(f"  {title} for {names.get(stalled.party_id, str(stalled.party_id))}: {stalled.stage}, "
              f"{money(stalled.amount)} {stalled.currency}, owner {stalled.owner}, "
              f"idle {stalled.idle_days} days since {stalled.last_change_at:%Y-%m-%d}")


def pipeline_line(figures: PipelineFigures) -> str:
    return f"{figures.count:>3} deals, value {money(figures.value):>9}, weighted {money(figures.weighted):>9}"


def closed_line(figures: ClosedFigures) -> str:
    return f"{figures.count:>3} deals, {money(figures.value):>9}"


def ordered(keys: Iterable[str], stages: Sequence[str]) -> list[str]:
    """``keys`` in pipeline order, any stage no longer configured last."""
    return sorted(keys, key=lambda key: (stages.index(key) if key in stages else len(stages), key))


# ---------------------------------------------------------------------- backtest


def print_backtest(backtest: Backtest) -> None:
    print()
    print(f"== backtest: the forecast at the start of each month, {backtest.start:%Y-%m} to "
          f"{backtest.end - timedelta(days=1):%Y-%m} ==")
    for currency, result in backtest.currencies.items():
        print(f"amounts in {currency}; forecast = open deals expected to close in the month, at its start")
        print(f"{'month':<8} {'fc#':>4} {'weighted':>10} {'commit':>10} {'won#':>5} {'won value':>10} "
              f"{'from fc':>10} {'error':>10} {'error%':>7}")
        for period in result.periods:
            print(f"{period.label:<8} {figures_line(period.total)}")
        print(accuracy_line("accuracy", result.accuracy))
        for owner, accuracy in result.by_owner.items():
            print(accuracy_line(f"  {owner}", accuracy))
    print()
    print("calibration: each stage's probability against how its deals ended")
    print(f"{'stage':<15} {'conf%':>5} {'avg%':>6} {'opps':>5} {'won':>4} {'lost':>5} {'open':>5} "
          f"{'win%':>6} {'samples':>8} {'won-in-period%':>15}")
    for stage in backtest.calibration:
        print(calibration_line(stage))


def print_quarters(backtest: Backtest) -> None:
    print()
    print("== backtest by quarter ==")
    for currency, result in backtest.currencies.items():
        for period in result.periods:
            total = period.total
            print(f"{period.label} ({currency}): forecast {total.forecast_count} deals, weighted "
                  f"{money(total.forecast_weighted)}, commit {money(total.commit_value)}; won "
                  f"{total.won_count} for {money(total.won_value)} ({money(total.won_from_forecast)} "
                  f"forecast); error {signed(total.error)} ({percent_of(total.error_percent)})")
        print(accuracy_line("accuracy", result.accuracy))


def figures_line(f: BacktestFigures) -> str:
    return (f"{f.forecast_count:>4} {money(f.forecast_weighted):>10} {money(f.commit_value):>10} "
            f"{f.won_count:>5} {money(f.won_value):>10} {money(f.won_from_forecast):>10} "
            f"{signed(f.error):>10} {percent(f.error_percent):>7}")


def accuracy_line(title: str, accuracy: ForecastAccuracy) -> str:
    return (f"{title}: weighted forecast {money(accuracy.forecast_weighted)}, "
            f"won {money(accuracy.won_value)}, bias {signed(accuracy.bias)}, "
            f"mean absolute error {money(accuracy.mean_absolute_error)}, "
            f"WAPE {percent_of(accuracy.wape_percent)}")


def calibration_line(stage: StageCalibration) -> str:
    configured = "-" if stage.configured_probability is None else str(stage.configured_probability)
    return (f"{stage.stage:<15} {configured:>5} {percent(stage.average_probability):>6} "
            f"{stage.opportunities:>5} {stage.won:>4} {stage.lost:>5} {stage.still_open:>5} "
            f"{percent(stage.win_rate_percent):>6} {stage.forecast_samples:>8} "
            f"{percent(stage.won_in_period_percent):>15}")


def read_calibration(backtest: Backtest) -> str:
    """A paragraph on the calibration and the forecast's bias, from the numbers."""
    optimistic, cautious, fair, unknown = [], [], [], []
    for stage in backtest.calibration:
        rate, configured = stage.win_rate_percent, stage.configured_probability
        if rate is None or configured is None:
            unknown.append(stage.stage)
            continue
        told = f"{stage.stage} ({rate:.1f}% won of {stage.won + stage.lost} closed, against {configured}%)"
        if rate < configured - TOLERANCE:
            optimistic.append(told)
        elif rate > configured + TOLERANCE:
            cautious.append(told)
        else:
            fair.append(told)
    sentences = []
    if optimistic:
        sentences.append(f"Over-optimistic, the observed win rate more than {TOLERANCE} points below the "
                         f"configured probability: {listed(optimistic)}.")
    if cautious:
        sentences.append(f"Too cautious, more than {TOLERANCE} points above: {listed(cautious)}.")
    if fair:
        sentences.append(f"Within {TOLERANCE} points: {listed(fair)}.")
    if unknown:
        sentences.append(f"No closed deal yet to judge {listed(unknown)}.")
    for currency, result in backtest.currencies.items():
        accuracy = result.accuracy
        direction = "above" if accuracy.bias > 0 else "below" if accuracy.bias < 0 else "exactly at"
        sentences.append(
            f"Over the {accuracy.periods} months the weighted forecast ({money(accuracy.forecast_weighted)} "
            f"{currency}) stood {money(abs(accuracy.bias))} {direction} what was won "
            f"({money(accuracy.won_value)}), a weighted absolute error of "
            f"{percent_of(accuracy.wape_percent)}.")
    samples = sum(stage.forecast_samples for stage in backtest.calibration)
    if samples:
        won_in_period = sum(stage.won_in_period for stage in backtest.calibration)
        assumed = sum((stage.forecast_samples * (stage.average_probability or Decimal(0))
                       for stage in backtest.calibration), Decimal(0)) / samples
        sentences.append(
            f"Of the {samples} times a deal was forecast to close within a month, it was won in that month "
            f"{won_in_period} times ({percent(Decimal(100 * won_in_period) / samples)}%), against an average "
            f"probability of {percent(assumed)}% used by the forecast.")
    closed = [stage.won + stage.lost for stage in backtest.calibration if stage.win_rate_percent is not None]
    if closed and min(closed) < 30:
        sentences.append(f"Each stage's rate rests on {min(closed)} to {max(closed)} closed deals: read them "
                         "as indications, not measurements.")
    return " ".join(sentences)


def listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def money(amount: Decimal) -> str:
    return f"{amount:,.0f}"


def signed(amount: Decimal) -> str:
    return f"{amount:+,.0f}"


def percent(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def percent_of(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


if __name__ == "__main__":
    main()
