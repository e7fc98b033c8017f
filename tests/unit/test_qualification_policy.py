"""The qualification policy: weighted rules over a lead's facts, a recommendation, the policy's version."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from crmcore import FieldRuleViolation, InvalidInput
from crmcore.exceptions import FieldNotDefined
from crmcore.fields import FieldSet
from crmcore.policies.qualification import (
    DEFAULT_QUALIFICATION,
    QUALIFICATION_FIELDS,
    QualificationPolicy,
    QualificationRule,
    Recommendation,
)
from crmcore.segments import Context, Facts

NOW = Context(now=datetime(2026, 11, 23, tzinfo=UTC))


def lead(**fields: Any) -> Facts:
    return {"party_id": "p", "stage": "lead", "kind": "person", "fields": fields}


@pytest.mark.parametrize(("fields", "recommendation", "score", "failed"), [
    ({"industry": "logistics", "budget": "20000", "decision_role": "decision maker", "need": "fleet tracking",
      "timeframe": "within 3 months"}, Recommendation.QUALIFY, "1.00", ()),
    # required rules pass, no need or timeframe: 3 of 4 = 0.75, qualify
    ({"industry": "logistics", "budget": "20000", "decision_role": "budget holder"},
     Recommendation.QUALIFY, "0.75", ("has a need", "buys within six months")),
    # an influencer cannot decide: 3 of 4 but a required rule failed, a person decides
    ({"industry": "retail", "budget": "500", "decision_role": "influencer", "need": "x",
      "timeframe": "3 to 6 months"}, Recommendation.REVIEW, "0.75", ("can decide",)),
    # nothing known
    ({}, Recommendation.DISQUALIFY, "0.00", ("fits the target market", "can afford it", "can decide",
                                            "has a need", "buys within six months")),
    ({"need": "x"}, Recommendation.DISQUALIFY, "0.13", ("fits the target market", "can afford it",
                                                     "can decide", "buys within six months")),
    ({"industry": "x", "need": "y"}, Recommendation.REVIEW, "0.38", ("can afford it", "can decide",
                                                                   "buys within six months")),
])
def test_the_default_policy_recommends_by_weighted_rules(
    fields: dict[str, Any], recommendation: Recommendation, score: str, failed: tuple[str, ...],
) -> None:
    assessment = DEFAULT_QUALIFICATION.assess(lead(**fields), NOW)
    assert (assessment.recommendation, assessment.score, assessment.failed) == (
        recommendation, Decimal(score), failed)
    assert (assessment.policy_name, assessment.policy_version) == ("BANT", 1)


def test_a_policy_is_checked_against_the_fields_in_force_when_built() -> None:
    fields = FieldSet(QUALIFICATION_FIELDS)
    with pytest.raises(FieldNotDefined):
        QualificationPolicy("p", 1, [QualificationRule("x", {"field": "revenue", "gt": 1})], fields=fields)
    with pytest.raises(FieldRuleViolation) as raised:
        QualificationPolicy("p", 1, [
            QualificationRule("x", {"field": "decision_role", "eq": "decision maker"}),
            QualificationRule("y", {"field": "timeframe", "eq": "within 3 month"}),
        ], fields=fields)
    assert raised.value.suggestion == "within 3 months"


@pytest.mark.parametrize("build", [
    lambda: QualificationPolicy(" ", 1, [QualificationRule("a", {"stage": "lead"})]),
    lambda: QualificationPolicy("p", 0, [QualificationRule("a", {"stage": "lead"})]),
    lambda: QualificationPolicy("p", 1, []),
    lambda: QualificationPolicy("p", 1, [QualificationRule("a", {"stage": "lead"}, weight=Decimal(0))]),
    lambda: QualificationPolicy("p", 1, [QualificationRule("a", {"stage": "lead"}),
                                         QualificationRule("a", {"kind": "person"})]),
    lambda: QualificationPolicy("p", 1, [QualificationRule("a", {"stage": "lead"})],
                                qualify_at=Decimal("0.2"), disqualify_below=Decimal("0.5")),
    lambda: QualificationPolicy("p", 1, [QualificationRule("a", {"stage": "nope"})]),
])
def test_a_policy_that_cannot_work_is_refused(build: Any) -> None:
    with pytest.raises(InvalidInput):
        build()


def test_a_policy_can_read_any_criterion_and_its_own_thresholds() -> None:
    policy = QualificationPolicy("inbound", 3, [
        QualificationRule("engaged by email", {"consent": "email", "is": "subscribed"}, weight=Decimal(2)),
        QualificationRule("an organization", {"kind": "organization"}),
    ], qualify_at=Decimal("0.6"), disqualify_below=Decimal("0.1"))
    facts: Facts = {"party_id": "p", "stage": "lead", "kind": "person", "consent": {"email": "subscribed"}}
    assessment = policy.assess(facts, NOW)
    assert (assessment.recommendation, assessment.score, assessment.policy_version) == (
        Recommendation.QUALIFY, Decimal("0.67"), 3)
