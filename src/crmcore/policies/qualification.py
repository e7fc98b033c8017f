"""The lead qualification policy (pure): does a lead meet the company's qualification criteria?

DOMAIN.md: a lead is qualified when it fits the market, can afford the product and can decide; in practice
sales teams also ask for a need and a timeframe (BANT: budget, authority, need, timeline). A
:class:`QualificationPolicy` is a named, versioned list of rules, each a segment criterion
(:mod:`crmcore.segments`) with a label, a weight and whether it is required. Assessing a lead's facts gives
the share of the weight its passing rules carry (the score), each rule's outcome, and a recommendation:

- ``qualify`` when the score is at least ``qualify_at`` (default 0.75) and every required rule passes;
- ``disqualify`` when the score is below ``disqualify_below`` (default 0.25);
- ``review`` otherwise: a person decides.

:data:`QUALIFICATION_FIELDS` are ready-made field definitions the default policy reads (adopt them, or
write a policy over the installation's own fields); :data:`DEFAULT_QUALIFICATION` is that policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from crmcore.exceptions import InvalidInput
from crmcore.fields import FieldDefinition, FieldKind, FieldSet
from crmcore.segments import Context, Criterion, Facts, parse_criteria

__all__ = [
    "DEFAULT_QUALIFICATION",
    "QUALIFICATION_FIELDS",
    "QualificationAssessment",
    "QualificationPolicy",
    "QualificationRule",
    "Recommendation",
    "RuleOutcome",
]


class Recommendation(StrEnum):
    """What the policy recommends doing with a lead."""

    QUALIFY = "qualify"
    REVIEW = "review"
    DISQUALIFY = "disqualify"


@dataclass(frozen=True)
class QualificationRule:
    """One rule of the policy; ``criteria`` is segment-criteria JSON, checked when the policy is built."""

    label: str
    criteria: Mapping[str, Any]
    weight: Decimal = Decimal(1)
    required: bool = False


@dataclass(frozen=True)
class RuleOutcome:
    """How one rule went for one lead."""

    label: str
    passed: bool
    weight: Decimal
    required: bool


@dataclass(frozen=True)
class QualificationAssessment:
    """A lead assessed under a policy: the recommendation, the score (0-1, to the hundredth, halves up),
    each rule's outcome, and the policy's name and version (what a qualification records)."""

    recommendation: Recommendation
    score: Decimal
    outcomes: tuple[RuleOutcome, ...]
    policy_name: str
    policy_version: int

    @property
    def failed(self) -> tuple[str, ...]:
        """The labels of the rules the lead failed."""
        return tuple(o.label for o in self.outcomes if not o.passed)


class QualificationPolicy:
    """A named, versioned set of qualification rules, checked against the fields in force when built."""

    def __init__(
        self,
        name: str,
        version: int,
        rules: Sequence[QualificationRule],
        *,
        fields: FieldSet | None = None,
        qualify_at: Decimal = Decimal("0.75"),
        disqualify_below: Decimal = Decimal("0.25"),
    ) -> None:
        if not name.strip() or version < 1 or not rules:
            raise _invalid("a policy needs a name, a version from 1 and at least one rule")
        if not Decimal(0) <= disqualify_below <= qualify_at <= Decimal(1):
            raise _invalid("thresholds: 0 <= disqualify_below <= qualify_at <= 1")
        if any(rule.weight < 0 for rule in rules) or not sum(rule.weight for rule in rules):
            raise _invalid("rule weights: non-negative, not all zero")
        if len({rule.label for rule in rules}) != len(rules):
            raise _invalid("rule labels must differ")
        self.name, self.version = name.strip(), version
        self.rules = tuple(rules)
        self.qualify_at, self.disqualify_below = qualify_at, disqualify_below
        self._checks: tuple[Criterion, ...] = tuple(parse_criteria(rule.criteria, fields) for rule in rules)

    def assess(self, facts: Facts, context: Context) -> QualificationAssessment:
        """The assessment of the lead whose facts these are, at ``context.now``."""
        outcomes = tuple(
            RuleOutcome(rule.label, check.evaluate(facts, context), rule.weight, rule.required)
            for rule, check in zip(self.rules, self._checks, strict=True)
        )
        total = sum((o.weight for o in outcomes), Decimal(0))
        score = (sum((o.weight for o in outcomes if o.passed), Decimal(0)) / total).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP)
        if score >= self.qualify_at and all(o.passed for o in outcomes if o.required):
            recommendation = Recommendation.QUALIFY
        elif score < self.disqualify_below:
            recommendation = Recommendation.DISQUALIFY
        else:
            recommendation = Recommendation.REVIEW
        return QualificationAssessment(recommendation, score, outcomes, self.name, self.version)


#: Field definitions the default policy reads: the lead's ``industry`` (text; narrow it to the markets you
#: serve in your own policy), stated ``budget`` (a number), ``decision_role``, ``need`` and ``timeframe``.
QUALIFICATION_FIELDS: tuple[FieldDefinition, ...] = (
    FieldDefinition(name="industry", kind=FieldKind.TEXT, max_length=100, label="Industry"),
    FieldDefinition(name="budget", kind=FieldKind.NUMBER, minimum=Decimal(0), label="Budget"),
    FieldDefinition(name="decision_role", kind=FieldKind.CHOICE, label="Decision role",
                    choices=("decision maker", "budget holder", "influencer", "user", "gatekeeper"),
                    synonyms={"dm": "decision maker", "owner": "decision maker", "ceo": "decision maker"}),
    FieldDefinition(name="need", kind=FieldKind.TEXT, max_length=500, label="Need"),
    FieldDefinition(name="timeframe", kind=FieldKind.CHOICE, label="Timeframe",
                    choices=("within 3 months", "3 to 6 months", "6 to 12 months", "over a year", "none")),
)

#: BANT over :data:`QUALIFICATION_FIELDS`: fits the market (an industry is known), can afford it (a budget
#: above zero), can decide (a decision maker or budget holder) - each required, weight 1 - and has a need
#: and a timeframe within six months (weight 0.5 each).
DEFAULT_QUALIFICATION = QualificationPolicy("BANT", 1, (
    QualificationRule("fits the target market", {"field": "industry", "present": True}, required=True),
    QualificationRule("can afford it", {"field": "budget", "gt": "0"}, required=True),
    QualificationRule("can decide", {"field": "decision_role", "in": ["decision maker", "budget holder"]},
                      required=True),
    QualificationRule("has a need", {"field": "need", "present": True}, weight=Decimal("0.5")),
    QualificationRule("buys within six months", {"field": "timeframe", "in": ["within 3 months",
                                                                              "3 to 6 months"]},
                      weight=Decimal("0.5")),
), fields=FieldSet(QUALIFICATION_FIELDS))


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(f"qualification policy: {message}",
                        [{"loc": ("policy",), "msg": message, "type": "policy"}])
