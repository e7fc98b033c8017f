"""Ranking customers by the targeting score (see :mod:`crmcore.policies.targeting`), from their facts.

:func:`rank_customers` reads the :class:`~crmcore.segments.Facts` of the parties at stage ``customer`` and,
at the moment ``now``, gathers what each component reads:

- **recency** from the later of the last won deal (``last_won_at``) and the conversion (``converted_at``);
- **frequency** from the deals won in the ``FREQUENCY_WINDOW_DAYS`` (730) before ``now``;
- **engagement** from the interactions in the ``ENGAGEMENT_WINDOW_DAYS`` (365) before ``now``;
- **value** from the value won over the 730 days in one currency — the one given, else the currency with
  the largest won value over the 730 days across the customers ranked (amounts compared as plain numbers;
  equal ones: the first code alphabetically) — wins in other currencies do not count towards it; or, with
  a value field, from that numeric custom field or profile trait (missing: 0).

Customers are passed to the score in party-id order, so equal scores rank by party id.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from crmcore.fields import FieldDefinition
from crmcore.models import CustomerRanking, RankedCustomer
from crmcore.policies.targeting import CustomerActivity, ScoreWeights, targeting_scores
from crmcore.segments import Facts

__all__ = ["ENGAGEMENT_WINDOW_DAYS", "FREQUENCY_WINDOW_DAYS", "main_currency", "rank_customers"]

#: Wins counted by frequency, and summed by value, are those of the last 730 days.
FREQUENCY_WINDOW_DAYS = 730
#: Interactions counted by engagement are those of the last 365 days.
ENGAGEMENT_WINDOW_DAYS = 365

_CUSTOMER = "customer"


def rank_customers(
    facts: Mapping[str, Facts],
    *,
    now: datetime,
    weights: ScoreWeights,
    at: datetime | None = None,
    known_at: datetime | None = None,
    members: Collection[str] | None = None,
    currency: str | None = None,
    value_field: FieldDefinition | None = None,
    limit: int | None = None,
) -> CustomerRanking:
    """The customers among ``facts`` (restricted to ``members`` when given: party ids as text) ranked at
    ``now``, the best ``limit`` of them (all by default); see the module docstring for the inputs."""
    customers = sorted(
        (f for party_id, f in facts.items()
         if f.get("stage") == _CUSTOMER and (members is None or party_id in members)),
        key=lambda f: f["party_id"],
    )
    wins_from = now - timedelta(days=FREQUENCY_WINDOW_DAYS)
    recent_wins = {f["party_id"]: _wins_between(f, wins_from, now) for f in customers}
    chosen = None if value_field is not None else (currency or main_currency(recent_wins.values()))
    interactions_from = now - timedelta(days=ENGAGEMENT_WINDOW_DAYS)
    activity: list[CustomerActivity] = []
    for f in customers:
        wins = recent_wins[f["party_id"]]
        value = (_field_value(f, value_field) if value_field is not None
                 else sum((amount for _, amount, code in wins if code == chosen), Decimal(0)))
        activity.append(CustomerActivity(
            party_id=f["party_id"], last_won_at=_last_purchase(f, now), wins_last_730_days=len(wins),
            interactions_last_365_days=sum(
                1 for t in f.get("interactions") or () if interactions_from < _moment(t) <= now),
            value=value,
        ))
    by_id = {a.party_id: (a, f) for a, f in zip(activity, customers, strict=True)}
    scores = targeting_scores(activity, now=now, weights=weights)
    ranked = []
    for place, scored in enumerate(scores[:limit] if limit is not None else scores, start=1):
        inputs, f = by_id[scored.party_id]
        ranked.append(RankedCustomer(
            rank=place, party_id=UUID(scored.party_id), name=f.get("name", ""), owner=f.get("owner"),
            score=scored.score, recency=scored.recency, frequency=scored.frequency,
            engagement=scored.engagement, value=scored.value, last_purchase_at=inputs.last_won_at,
            wins=inputs.wins_last_730_days, interactions=inputs.interactions_last_365_days,
            value_amount=inputs.value,
        ))
    return CustomerRanking(
        scored_at=now, at=at, known_at=known_at,
        weights={"recency": weights.recency, "frequency": weights.frequency,
                 "engagement": weights.engagement, "value": weights.value},
        currency=chosen, value_field=None if value_field is None else value_field.name,
        considered=len(activity), customers=ranked,
    )


def main_currency(wins: Iterable[Iterable[tuple[datetime, Decimal, str]]]) -> str | None:
    """The currency with the largest total among ``wins`` (per customer: ``(closed_at, amount,
    currency)``); equal totals: the first code alphabetically; None when there is no win."""
    totals: dict[str, Decimal] = {}
    for customer_wins in wins:
        for _, amount, code in customer_wins:
            totals[code] = totals.get(code, Decimal(0)) + amount
    if not totals:
        return None
    return min(totals, key=lambda code: (-totals[code], code))


def _wins_between(facts: Facts, start: datetime, end: datetime) -> list[tuple[datetime, Decimal, str]]:
    """The customer's wins closed after ``start`` and by ``end``."""
    found = []
    for closed_at, amount, code in facts.get("wins") or ():
        moment = _moment(closed_at)
        if start < moment <= end:
            found.append((moment, Decimal(amount), code))
    return found


def _last_purchase(facts: Facts, now: datetime) -> datetime | None:
    """The later of the last won deal and the conversion, if either happened by ``now``."""
    moments = [_moment(t) for t in (facts.get("last_won_at"), facts.get("converted_at")) if t]
    moments = [m for m in moments if m <= now]
    return max(moments) if moments else None


def _field_value(facts: Facts, definition: FieldDefinition) -> Decimal:
    """The numeric field's value in the party's facts (0 when missing)."""
    section = facts.get("profile") if definition.section == "profile" else facts.get("fields")
    value: Any = (section or {}).get(definition.name)
    if value is None or isinstance(value, bool):
        return Decimal(0)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)
    return number if number.is_finite() else Decimal(0)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)
