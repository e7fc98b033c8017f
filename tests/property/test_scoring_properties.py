"""Properties of the predictive scoring model and of the AUC that judges it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.policies.scoring import ScoringVariable, auc, train

NOW = datetime(2026, 1, 1, tzinfo=UTC)
VARIABLES = (
    ScoringVariable(name="channel", source="party", kind="choice"),
    ScoringVariable(name="industry", source="custom", kind="choice"),
)

values = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"]))
facts = st.builds(lambda channel, industry: {"channel": channel, "fields": {"industry": industry}},
                  values, values)
deals = st.lists(st.tuples(facts, st.booleans()), min_size=2, max_size=40).filter(
    lambda samples: any(won for _, won in samples) and not all(won for _, won in samples))


def scored(samples: list[tuple[dict[str, Any], bool]], lead: dict[str, Any]) -> Decimal:
    model = train(samples, VARIABLES, version=1, trained_at=NOW, trained_on_until=None, actor="p")
    return model.score(lead)[0]


@settings(max_examples=300, deadline=None)
@given(deals, facts, st.sampled_from(VARIABLES), st.integers(min_value=1, max_value=5))
def test_more_won_deals_with_a_seen_value_never_lower_the_score_of_a_lead_with_it(
    samples: list[tuple[dict[str, Any], bool]], lead: dict[str, Any], variable: ScoringVariable, more: int,
) -> None:
    section = lead if variable.source == "party" else lead["fields"]
    value = section[variable.name]
    seen = {(r if variable.source == "party" else r["fields"]).get(variable.name) for r, _ in samples}
    if value is None or value not in seen:
        return  # a value never seen contributes nothing: learning it first may go either way
    deal = {"channel": None, "fields": {"industry": None}}
    (deal if variable.source == "party" else deal["fields"])[variable.name] = value
    before = scored(samples, lead)
    after = scored([*samples, *[(deal, True)] * more], lead)
    assert after >= before
    assert Decimal(0) <= before <= Decimal(100)


@given(st.lists(st.tuples(st.integers(0, 1000), st.booleans()), max_size=60))
def test_auc_is_the_share_of_converting_non_converting_pairs_ranked_right(
    items: list[tuple[int, bool]],
) -> None:
    positives = [s for s, c in items if c]
    negatives = [s for s, c in items if not c]
    result = auc([(Decimal(s), c) for s, c in items])
    if not positives or not negatives:
        assert result is None
        return
    wins = sum(Fraction(1) if p > n else Fraction(1, 2) if p == n else Fraction(0)
               for p in positives for n in negatives)
    assert result == wins / (len(positives) * len(negatives))
    assert 0 <= result <= 1


@given(st.lists(st.integers(0, 10_000), min_size=2, max_size=40, unique=True), st.data())
def test_auc_of_a_perfect_ranking_is_one_and_of_the_reversed_one_zero(
    scores: list[int], data: st.DataObject,
) -> None:
    ordered = sorted(scores)
    cut = data.draw(st.integers(min_value=1, max_value=len(ordered) - 1))
    perfect = [(Decimal(s), index >= cut) for index, s in enumerate(ordered)]
    reversed_ = [(Decimal(s), index < cut) for index, s in enumerate(ordered)]
    assert auc(perfect) == 1
    assert auc(reversed_) == 0
