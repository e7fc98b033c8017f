"""A seeded, simulated sales history: opportunities moving through a pipeline over a stretch of time.

:func:`simulate_sales` plans the history as a list of :class:`SalesStep` (one command each, in effective-time
order) without touching a store; :func:`play_sales` runs the plan through a :class:`~crmcore.CRM`, one
command at a time, exactly as a sales team would. The same seed always gives the same plan.

The simulated team is optimistic on purpose: the chance that a deal at each stage is eventually won
(:data:`TRUE_ADVANCE` chained) sits below the default pipeline's probabilities from "proposal" on, so a
backtest of the forecast has something to find.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from crmcore.aggregates.opportunity import Opportunity
from crmcore.policies.pipelines import DEFAULT_LOST_REASONS, DEFAULT_PIPELINE, Pipeline, pipeline_named
from crmcore.values import Money

if TYPE_CHECKING:
    from crmcore.application import CRM

__all__ = ["TRUE_ADVANCE", "SalesStep", "load_sales", "play_sales", "simulate_sales"]

#: The chance that a deal leaves each open stage of the default pipeline forwards rather than being lost
#: (the last open stage's forward move is the win). Chained, the chance of an eventual win from each stage
#: is 14%, 23%, 33%, 43% and 70% against the configured 10%, 20%, 40%, 60% and 80%.
TRUE_ADVANCE: tuple[float, ...] = (0.60, 0.70, 0.75, 0.62, 0.70)

_OWNERS = ("anna", "bruno", "carla", "dario")


@dataclass(frozen=True)
class SalesStep:
    """One command of a simulated history: which opportunity (by index), the command and its fields."""

    opportunity: int
    command: str
    at: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)


def simulate_sales(
    *,
    opportunities: int,
    start: datetime,
    days: int = 365,
    seed: int = 0,
    owners: Sequence[str] = _OWNERS,
    currency: str = "EUR",
    pipeline: Pipeline = DEFAULT_PIPELINE,
    touches_per_week: float = 0.5,
    dwell_days: float = 21,
    advance: Sequence[float] = TRUE_ADVANCE,
    lost_reasons: Sequence[str] = DEFAULT_LOST_REASONS,
) -> list[SalesStep]:
    """Plan ``opportunities`` deals opened over ``days`` from ``start`` (timezone-aware), in time order.

    Each deal opens at the first open stage with a value of a few thousand to about a hundred thousand,
    then stays at each stage for an exponentially distributed time (mean ``dwell_days``); every week it is
    touched with chance ``touches_per_week`` (re-estimate, close date slipping, rarely an
    owner change or a probability override) until it leaves its stage: forward with the stage's chance in
    ``advance``, else lost with one or two reasons. Deals still open at the end stay open. Above 1,
    ``touches_per_week`` touches several times a week.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    stages = [s.name for s in pipeline.open_stages]
    if len(advance) != len(stages):
        raise ValueError(f"advance: one chance per open stage ({len(stages)})")
    rng = random.Random(seed)
    end = start + timedelta(days=days)
    steps: list[SalesStep] = []
    for index in range(opportunities):
        opened = start + timedelta(seconds=rng.uniform(0, days * 0.85 * 86400))
        steps.extend(_one_deal(
            index, opened, end, rng, stages=stages, owners=owners, currency=currency,
            touches=touches_per_week, dwell=dwell_days, advance=advance, reasons=lost_reasons))
    steps.sort(key=lambda s: s.at)
    return steps


def _one_deal(
    index: int, opened: datetime, end: datetime, rng: random.Random, *, stages: Sequence[str],
    owners: Sequence[str], currency: str, touches: float, dwell: float, advance: Sequence[float],
    reasons: Sequence[str],
) -> list[SalesStep]:
    amount = Decimal(round(rng.lognormvariate(9.8, 0.8), -2) or 100)
    close = (opened + timedelta(days=dwell * len(stages) * rng.uniform(0.6, 1.4))).date()
    owner = rng.choice(owners)
    steps = [SalesStep(index, "open", opened, {
        "title": f"Deal {index + 1}", "value": amount, "currency": currency, "expected_close": close,
        "owner": owner,
    })]
    now, stage = opened, 0
    while True:
        leave = now + timedelta(days=rng.expovariate(1 / dwell))
        week = now + timedelta(days=7)
        while week < leave and week < end:  # weekly reviews while the deal sits at its stage
            for _ in range(int(touches) + (rng.random() < touches % 1)):
                at = week + timedelta(seconds=rng.uniform(0, 6 * 86400))
                if at >= leave or at >= end:
                    break
                step, amount, close, owner = _touch(index, at, rng, amount, close, owner, owners, currency)
                steps.append(step)
            week += timedelta(days=7)
        if leave >= end:
            return steps
        now = leave
        if rng.random() >= advance[stage]:
            count = 1 if rng.random() < 0.7 else 2
            steps.append(SalesStep(index, "lose", now, {"reasons": rng.sample(list(reasons), count)}))
            return steps
        if stage == len(stages) - 1:
            steps.append(SalesStep(index, "win", now))
            return steps
        stage += 1
        steps.append(SalesStep(index, "move_stage", now, {"stage": stages[stage]}))


def _touch(
    index: int, at: datetime, rng: random.Random, amount: Decimal, close: date, owner: str,
    owners: Sequence[str], currency: str,
) -> tuple[SalesStep, Decimal, date, str]:
    roll = rng.random()
    if roll < 0.02 and len(owners) > 1:
        owner = rng.choice([o for o in owners if o != owner])
        return SalesStep(index, "change_owner", at, {"owner": owner}), amount, close, owner
    if roll < 0.05:
        override = {"probability": rng.choice((15, 25, 35, 50, 65, 75, 90))}
        return SalesStep(index, "override_probability", at, override), amount, close, owner
    today = at.date()
    due = close <= today + timedelta(days=7)
    if due or roll < 0.25:  # slipping when due, else a small correction
        if due:
            moved = max(close, today) + timedelta(days=rng.randint(14, 42))
        else:
            moved = max(today + timedelta(days=1), close + timedelta(days=rng.randint(-14, 14)))
        if moved != close:
            close = moved
            return SalesStep(index, "move_close_date", at, {"expected_close": close}), amount, close, owner
    factor = Decimal(str(round(rng.uniform(0.85, 1.15), 2)))
    amount = max(Decimal(100), (amount * factor).quantize(Decimal(100)))
    return SalesStep(index, "reestimate", at, {"value": amount, "currency": currency}), amount, close, owner


def play_sales(
    crm: CRM,
    steps: Sequence[SalesStep],
    party_for: Callable[[int], UUID],
    *,
    actor: str = "simulation",
) -> list[UUID]:
    """Run ``steps`` through ``crm`` one command at a time; ``party_for(index)`` names each deal's party.

    Returns the opportunity ids by index (every deal's party must be a prospect, target or customer when
    its deal opens). The effective time of each command is the step's time.
    """
    ids: dict[int, UUID] = {}
    for step in steps:
        fields = dict(step.fields)
        if step.command == "open":
            ids[step.opportunity] = crm.open_opportunity(
                party_for(step.opportunity), actor=actor, effective_at=step.at, **fields)
            continue
        command = getattr(crm, step.command)
        command(ids[step.opportunity], actor=actor, effective_at=step.at, **fields)
    return [ids[i] for i in sorted(ids)]


def load_sales(
    crm: CRM,
    steps: Sequence[SalesStep],
    party_for: Callable[[int], UUID],
    *,
    actor: str = "simulation",
    batch: int = 5000,
) -> list[UUID]:
    """Write ``steps`` quickly, for benchmarks and demonstration stores; returns the opportunity ids by index.

    The opportunities' own rules are checked as in :func:`play_sales`, but parties are not read (any id
    will do) and changes are saved ``batch`` steps at a time, several opportunities per transaction, in the
    steps' order.
    """
    deals: dict[int, Opportunity] = {}
    dirty: dict[int, Opportunity] = {}
    for count, step in enumerate(steps, 1):
        fields = dict(step.fields)
        if step.command == "open":
            pipeline = pipeline_named(fields.pop("pipeline", crm.pipelines[0].name), crm.pipelines)
            value = Money(amount=fields.pop("value"), currency=fields.pop("currency"))
            deal = Opportunity.open(party_id=party_for(step.opportunity), pipeline=pipeline, value=value,
                                    stage=None, actor=actor, effective_at=step.at, **fields)
            deals[step.opportunity] = deal
        else:
            deal = deals[step.opportunity]
            _apply(crm, deal, step, fields, actor)
        dirty[step.opportunity] = deal
        if count % batch == 0:
            crm._save(*dirty.values())
            dirty.clear()
    if dirty:
        crm._save(*dirty.values())
    return [deals[i].id for i in sorted(deals)]


def _apply(crm: CRM, deal: Opportunity, step: SalesStep, fields: dict[str, Any], actor: str) -> None:
    at = step.at
    pipeline = pipeline_named(deal.pipeline, crm.pipelines)
    if step.command == "move_stage":
        deal.move_stage(pipeline=pipeline, stage=fields["stage"], actor=actor, effective_at=at)
    elif step.command == "reestimate":
        deal.reestimate(value=Money(amount=fields["value"], currency=fields["currency"]), actor=actor,
                        effective_at=at)
    elif step.command == "move_close_date":
        deal.move_close_date(expected_close=fields["expected_close"], actor=actor, effective_at=at)
    elif step.command == "change_owner":
        deal.change_owner(owner=fields["owner"], actor=actor, effective_at=at)
    elif step.command == "override_probability":
        deal.override_probability(probability=fields["probability"], actor=actor, effective_at=at)
    elif step.command == "win":
        deal.win(pipeline=pipeline, reasons=[], actor=actor, effective_at=at)
    elif step.command == "lose":
        deal.lose(pipeline=pipeline, reasons=list(fields["reasons"]), actor=actor, effective_at=at)
    else:
        raise ValueError(f"unknown step command {step.command!r}")
