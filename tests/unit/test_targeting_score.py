"""The targeting score: documented components, weights, ties and ranking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmcore import InvalidInput
from crmcore.policies.targeting import CustomerActivity, ScoreWeights, targeting_scores

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def customer(name: str, *, days: float | None, wins: int = 0, interactions: int = 0,
             value: str = "0") -> CustomerActivity:
    last = None if days is None else NOW - timedelta(days=days)
    return CustomerActivity(name, last, wins, interactions, Decimal(value))


def test_each_component_follows_its_documented_curve() -> None:
    (alone,) = targeting_scores([customer("a", days=180, wins=3, interactions=6, value="10")], now=NOW)
    assert alone.recency == Decimal("50.0")  # halves every 180 days
    assert alone.frequency == Decimal("63.2")  # 1 - e^-1
    assert alone.engagement == Decimal("63.2")
    assert alone.value == Decimal("100.0")  # a lone customer is its own best
    # 0.3 * 50 + 0.2 * 63.21 + 0.2 * 63.21 + 0.3 * 100 = 70.28
    assert alone.score == Decimal("70.3")


def test_never_won_scores_no_recency_and_values_rank_by_mid_rank() -> None:
    scores = {s.party_id: s for s in targeting_scores([
        customer("none", days=None, value="0"), customer("low", days=0, value="100"),
        customer("tie1", days=0, value="500"), customer("tie2", days=0, value="500"),
        customer("top", days=0, value="900"),
    ], now=NOW)}
    assert scores["none"].recency == Decimal("0.0")
    assert scores["low"].recency == Decimal("100.0")
    assert [scores[k].value for k in ("none", "low", "tie1", "tie2", "top")] == [
        Decimal("0.0"), Decimal("25.0"), Decimal("62.5"), Decimal("62.5"), Decimal("100.0")]


def test_weights_choose_what_counts() -> None:
    recent = customer("recent", days=1, value="1")
    rich = customer("rich", days=700, value="1000000")
    assert [s.party_id for s in targeting_scores([rich, recent], now=NOW,
                                                 weights=ScoreWeights(1, 0, 0, 0))] == ["recent", "rich"]
    assert [s.party_id for s in targeting_scores([recent, rich], now=NOW,
                                                 weights=ScoreWeights(0, 0, 0, 1))] == ["rich", "recent"]


@pytest.mark.parametrize("weights", [(0, 0, 0, 0), (-1, 1, 1, 1), (float("nan"), 1, 1, 1)])
def test_weights_that_mean_nothing_are_refused(weights: tuple[float, float, float, float]) -> None:
    with pytest.raises(InvalidInput):
        ScoreWeights(*weights)


ACTIVITY = st.builds(
    customer, st.text("abc", min_size=1, max_size=3),
    days=st.none() | st.floats(0, 3000), wins=st.integers(0, 20), interactions=st.integers(0, 50),
    value=st.integers(0, 10**6).map(str),
)


@given(st.lists(ACTIVITY, min_size=1, max_size=30))
def test_scores_stay_in_range_are_sorted_and_more_of_anything_never_lowers_a_component(
    customers: list[CustomerActivity],
) -> None:
    scores = targeting_scores(customers, now=NOW)
    assert [s.score for s in scores] == sorted((s.score for s in scores), reverse=True)
    for s in scores:
        for part in (s.score, s.recency, s.frequency, s.engagement, s.value):
            assert Decimal(0) <= part <= Decimal(100)
    first = customers[0]
    busier = CustomerActivity(first.party_id, first.last_won_at, first.wins_last_730_days + 1,
                              first.interactions_last_365_days + 1, first.value)
    before = targeting_scores([first], now=NOW)[0]
    after = targeting_scores([busier], now=NOW)[0]
    assert after.frequency >= before.frequency
    assert after.engagement >= before.engagement
    assert after.score >= before.score
