"""The targeting score: which customers to aim at first (pure; see docs/design/04 § 3).

DOMAIN.md's example picks the best 150 of 1,000 customers. Each customer gets four components in 0-100 and
a weighted mean of them, the score:

- **recency**: days since the last won deal, 100 at 0 days and halving every ``RECENCY_HALF_LIFE_DAYS``
  (180); 0 when nothing was ever won;
- **frequency**: won deals in the last 730 days, ``100 * (1 - exp(-n / FREQUENCY_SCALE))`` with a scale of
  3 (3 deals give 63, 6 give 86);
- **engagement**: interactions in the last 365 days, the same curve with a scale of 6;
- **value** (spending capacity): the customer's value as a percentile among the customers scored together
  (mid-rank for ties: equal values score equally; a lone customer scores 100).

This is RFM (recency, frequency, monetary value), the long-standing anchor of customer targeting, with
engagement added because the CRM records it. Every component is returned beside the score, so a user
sees why a customer ranks where it does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from crmcore.exceptions import InvalidInput

__all__ = [
    "DEFAULT_WEIGHTS",
    "ENGAGEMENT_SCALE",
    "FREQUENCY_SCALE",
    "RECENCY_HALF_LIFE_DAYS",
    "CustomerActivity",
    "ScoreWeights",
    "TargetingScore",
    "targeting_scores",
]

RECENCY_HALF_LIFE_DAYS = 180
FREQUENCY_SCALE = 3
ENGAGEMENT_SCALE = 6
_PLACES = Decimal("0.1")


@dataclass(frozen=True)
class ScoreWeights:
    """How much each component counts; any non-negative numbers, not all zero (they are normalised)."""

    recency: float = 0.3
    frequency: float = 0.2
    engagement: float = 0.2
    value: float = 0.3

    def __post_init__(self) -> None:
        weights = (self.recency, self.frequency, self.engagement, self.value)
        if any(not math.isfinite(w) or w < 0 for w in weights) or not sum(weights):
            raise InvalidInput(
                "score weights: give non-negative numbers, not all zero",
                [{"loc": ("weights",), "msg": "negative or all zero", "type": "weights"}],
            )


#: The documented defaults: recency 0.3, frequency 0.2, engagement 0.2, value 0.3.
DEFAULT_WEIGHTS = ScoreWeights()


@dataclass(frozen=True)
class CustomerActivity:
    """What the score reads about one customer, as of the moment scored."""

    party_id: str
    last_won_at: datetime | None
    wins_last_730_days: int
    interactions_last_365_days: int
    value: Decimal


@dataclass(frozen=True)
class TargetingScore:
    """One customer's score (0-100, to a tenth) and its four components."""

    party_id: str
    score: Decimal
    recency: Decimal
    frequency: Decimal
    engagement: Decimal
    value: Decimal


def targeting_scores(
    customers: Sequence[CustomerActivity], *, now: datetime, weights: ScoreWeights = DEFAULT_WEIGHTS,
) -> list[TargetingScore]:
    """The customers' scores, best first (ties in the order given)."""
    values = _percentiles([c.value for c in customers])
    total = weights.recency + weights.frequency + weights.engagement + weights.value
    scored = []
    for customer, value in zip(customers, values, strict=True):
        recency = _recency(customer.last_won_at, now)
        frequency = _saturating(customer.wins_last_730_days, FREQUENCY_SCALE)
        engagement = _saturating(customer.interactions_last_365_days, ENGAGEMENT_SCALE)
        score = (weights.recency * recency + weights.frequency * frequency + weights.engagement * engagement
                 + weights.value * value) / total
        scored.append(TargetingScore(
            party_id=customer.party_id, score=_tenth(score), recency=_tenth(recency),
            frequency=_tenth(frequency), engagement=_tenth(engagement), value=_tenth(value),
        ))
    return sorted(scored, key=lambda s: s.score, reverse=True)


def _recency(last: datetime | None, now: datetime) -> float:
    if last is None:
        return 0.0
    days = max(0.0, (now - last).total_seconds() / 86400)
    return 100 * math.pow(0.5, days / RECENCY_HALF_LIFE_DAYS)


def _saturating(count: int, scale: int) -> float:
    return 100 * (1 - math.exp(-max(0, count) / scale))


def _percentiles(values: Sequence[Decimal]) -> list[float]:
    """Each value's mid-rank percentile among ``values`` (0 lowest, 100 highest; alone: 100)."""
    count = len(values)
    if count == 1:
        return [100.0]
    order = sorted(range(count), key=lambda i: values[i])
    ranks = [0.0] * count
    start = 0
    while start < count:
        end = start
        while end + 1 < count and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2
        start = end + 1
    return [100 * rank / (count - 1) for rank in ranks]


def _tenth(number: float) -> Decimal:
    return Decimal(repr(number)).quantize(_PLACES, rounding=ROUND_HALF_EVEN)
