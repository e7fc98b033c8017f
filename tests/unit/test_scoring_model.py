"""The predictive scoring model (pure): naive Bayes with Laplace smoothing, unseen and missing values,
number buckets, explanations, and the ranking measures of its backtest."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from crmcore import FieldDefinition, FieldNotDefined, FieldSet, InvalidInput, ScoringModel
from crmcore.policies.scoring import (
    ScoringVariable,
    auc,
    bucket_edges,
    scoring_variables,
    top_decile,
    train,
    values_of,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CHANNEL = ScoringVariable(name="channel", source="party", kind="choice")
KIND = ScoringVariable(name="kind", source="party", kind="choice")
SIZE = ScoringVariable(name="employees", source="custom", kind="number")
TAGS = ScoringVariable(name="tags", source="profile", kind="multi_choice")


def party(channel: str | None = None, kind: str = "person", **fields: Any) -> dict[str, Any]:
    return {"channel": channel, "kind": kind, "fields": fields, "profile": {}}


def model_of(samples: list[tuple[dict[str, Any], bool]], *variables: ScoringVariable) -> ScoringModel:
    return train(samples, variables or (CHANNEL, KIND), version=1, trained_at=NOW, trained_on_until=None,
                 actor="analyst")


def example() -> ScoringModel:
    """20 deals: 10 by referral, all won; 10 by web form, 4 won; 14 won in all, every party a person."""
    samples = [(party("referral"), True)] * 10 + [(party("web_form"), True)] * 4
    samples += [(party("web_form"), False)] * 6
    return model_of(samples)


def test_the_model_counts_won_and_lost_deals_per_value() -> None:
    model = example()
    assert (model.won, model.lost, model.decisions, model.prior) == (14, 6, 20, Fraction(7, 10))
    counts = {v: (c.won, c.lost) for v, c in model.counts["channel"].items()}
    assert counts == {"referral": (10, 0), "web_form": (4, 6)}
    assert {v: (c.won, c.lost) for v, c in model.counts["kind"].items()} == {"person": (14, 6)}


def test_a_score_is_naive_bayes_with_laplace_smoothing_worked_by_hand() -> None:
    # P(referral|won) = (10+1)/(14+2) = 11/16; P(referral|lost) = (0+1)/(6+2) = 1/8 (never lost: still > 0)
    # kind: one value, (14+1)/(14+1) = (6+1)/(6+1) = 1. Score = 0.7*11/16 / (0.7*11/16 + 0.3*1/8) = 92.77 %
    score, reasons = example().score(party("referral"))
    assert score == Decimal("92.8")
    assert [(r.variable, r.value, r.likelihood_ratio, r.effect) for r in reasons] == [
        ("channel", "referral", Decimal("5.500"), "up"), ("kind", "person", Decimal("1.000"), "neutral")]
    # P(web_form|won) = 5/16, P(web_form|lost) = 7/8: 0.7*5/16 / (0.7*5/16 + 0.3*7/8) = 45.45 %
    score, reasons = example().score(party("web_form"))
    assert score == Decimal("45.5")
    assert (reasons[0].likelihood_ratio, reasons[0].effect, reasons[0].won, reasons[0].lost) == (
        Decimal("0.357"), "down", 4, 6)


def test_an_unseen_or_missing_value_contributes_nothing() -> None:
    model = example()
    prior_only = Decimal("70.0")
    score, reasons = model.score(party("email"))
    assert score == prior_only
    assert [(r.value, r.likelihood_ratio, r.effect) for r in reasons] == [
        ("person", Decimal("1.000"), "neutral"), ("email", None, "unseen")]
    score, reasons = model.score(party(None))
    assert score == prior_only
    assert [r.variable for r in reasons] == ["kind"]


def test_missing_values_are_not_counted_in_training() -> None:
    model = model_of([(party("referral"), True), (party(None), False), (party("email"), False)])
    assert set(model.counts["channel"]) == {"referral", "email"}
    assert sum(c.won + c.lost for c in model.counts["channel"].values()) == 2


def test_reasons_come_strongest_first_whichever_way_they_push() -> None:
    samples = [(party("referral", "organization"), True)] * 3 + [(party("email", "organization"), False)]
    samples += [(party("email", "person"), False)] * 5 + [(party("referral", "person"), True)]
    _, reasons = model_of(samples).score(party("email", "organization"))
    ratios = [r.likelihood_ratio for r in reasons]
    assert [r.effect for r in reasons] == ["down", "up"]
    assert None not in ratios
    assert 1 / ratios[0] > ratios[1]  # type: ignore[operator]


def test_numbers_are_bucketed_by_the_quartiles_of_the_training_values() -> None:
    assert bucket_edges([Decimal(v) for v in range(1, 9)]) == (Decimal(3), Decimal(5), Decimal(7))
    assert bucket_edges([Decimal(5)] * 4) == ()
    samples = [(party(employees=str(n)), n >= 50) for n in (10, 20, 30, 40, 50, 60, 70, 80)]
    model = model_of(samples, SIZE)
    (variable,) = model.variables
    assert variable.edges == (Decimal(30), Decimal(50), Decimal(70))
    assert values_of(variable, party(employees="5")) == ["< 30"]
    assert values_of(variable, party(employees="55.5")) == ["50 to < 70"]
    assert values_of(variable, party(employees="70")) == ["≥ 70"]
    assert model.score(party(employees="75"))[0] > model.score(party(employees="15"))[0]


def test_each_item_of_a_multi_choice_is_a_value() -> None:
    row = {"profile": {"tags": ["a", "b", "a"]}}
    assert values_of(TAGS, row) == ["a", "b"]
    model = model_of([(row, True), ({"profile": {"tags": ["b"]}}, False)], TAGS)
    assert {v: (c.won, c.lost) for v, c in model.counts["tags"].items()} == {"a": (1, 0), "b": (1, 1)}


def test_flags_are_true_or_false_values() -> None:
    flag = ScoringVariable(name="vip", source="custom", kind="boolean")
    assert values_of(flag, party(vip=True)) == ["true"]
    assert values_of(flag, party(vip=False)) == ["false"]


@pytest.mark.parametrize("outcomes", [[True, True], [False, False], []])
def test_training_without_won_or_without_lost_deals_is_refused(outcomes: list[bool]) -> None:
    with pytest.raises(InvalidInput, match="a model needs both won and lost"):
        model_of([(party("email"), won) for won in outcomes])


def test_a_stored_model_reads_back_equal_and_scores_alike() -> None:
    samples = [(party(employees=str(n)), n % 3 == 0) for n in range(1, 30)]
    model = model_of(samples, CHANNEL, SIZE)
    again = ScoringModel.from_stored(model.stored())
    assert again == model
    assert again.score(party("email", employees="12")) == model.score(party("email", employees="12"))


def test_variables_are_built_ins_or_fields_of_choice_like_kinds() -> None:
    fields = FieldSet([
        FieldDefinition(name="industry", kind="choice", choices=["retail", "public"], section="profile"),
        FieldDefinition(name="notes", kind="text"),
        FieldDefinition(name="employees", kind="number"),
    ])
    chosen = scoring_variables(["channel", "industry", "employees"], fields)
    assert [(v.name, v.source, v.kind) for v in chosen] == [
        ("channel", "party", "choice"), ("industry", "profile", "choice"), ("employees", "custom", "number")]
    with pytest.raises(FieldNotDefined):
        scoring_variables(["budget"], fields)
    with pytest.raises(InvalidInput, match="text field"):
        scoring_variables(["notes"], fields)
    for bad in ([], "channel", ["channel", "channel"], [""]):
        with pytest.raises(InvalidInput):
            scoring_variables(bad, fields)  # type: ignore[arg-type]


def test_auc_is_one_for_a_perfect_ranking_zero_reversed_and_ties_count_half() -> None:
    def pairs(*items: tuple[str, bool]) -> list[tuple[Decimal, bool]]:
        return [(Decimal(s), c) for s, c in items]

    assert auc(pairs(("90", True), ("80", True), ("10", False))) == 1
    assert auc(pairs(("90", False), ("80", True), ("10", True))) == 0
    assert auc(pairs(("50", True), ("50", False))) == Fraction(1, 2)
    assert auc(pairs(("90", True), ("50", False), ("50", True), ("10", False))) == Fraction(7, 8)
    assert auc(pairs(("90", True))) is None


def test_the_top_decile_is_the_best_tenth_rounded_up_ties_by_key() -> None:
    ranked = [(Decimal(n), f"p{n:02d}", n % 2 == 0) for n in range(1, 22)]  # 21 items: the top 3
    assert top_decile(ranked) == (3, 1)  # 21, 20, 19: only 20 converted
    assert top_decile([(Decimal(1), "b", False), (Decimal(1), "a", True)]) == (1, 1)
    assert top_decile([]) == (0, 0)
