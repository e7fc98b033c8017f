"""Assessing a stored lead under a qualification policy (see :mod:`crmcore.policies.qualification`).

- :func:`checked_policy` makes sure a policy reads only fields the installation defines, with values its
  rules accept (a policy built over :data:`~crmcore.policies.qualification.QUALIFICATION_FIELDS` needs
  them defined): otherwise every lead would silently fail the rules naming the missing field.
- :func:`lead_facts` gives the facts a policy reads about a loaded party: its own state (stage, kind,
  owner, custom fields, profile, consent, ...) over its ``party_facts`` row joined with its opportunities,
  so a command assesses exactly the state it acts on.
- :func:`policy_record` is what a ``Qualified`` / ``Disqualified`` event keeps of an assessment, and
  :func:`lead_assessment` the read model an assessment is answered with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast
from uuid import UUID

from crmcore.aggregates.party import Party, PolicyRecord
from crmcore.exceptions import InvalidInput
from crmcore.fields import FieldSet
from crmcore.models import LeadAssessment, RuleResult
from crmcore.policies.qualification import QualificationAssessment, QualificationPolicy
from crmcore.projections.asof import utc_text
from crmcore.projections.records import native
from crmcore.segments import Facts, parse_criteria
from crmcore.values import Stage

__all__ = ["checked_policy", "lead_assessment", "lead_facts", "policy_record"]

#: The facts a loaded party states itself (the rest come from the views: opportunities, interactions, ...).
_OWN_FACTS = ("kind", "stage", "name", "owner", "organization_id", "channel", "set_aside", "merged_into",
              "emails", "phones")


def checked_policy(policy: Any, fields: FieldSet) -> QualificationPolicy:
    """``policy`` if it is a :class:`QualificationPolicy` whose rules all hold against ``fields`` (the
    installation's catalog): raises :class:`InvalidInput` for anything else, and
    :class:`~crmcore.exceptions.FieldNotDefined` / :class:`~crmcore.exceptions.FieldRuleViolation` when a
    rule reads a field not defined, or a value its rules refuse."""
    if not isinstance(policy, QualificationPolicy):
        raise InvalidInput(
            f"policy: give a QualificationPolicy, got {type(policy).__name__}",
            [{"loc": ("policy",), "msg": "not a QualificationPolicy", "type": "is_instance_of"}],
        )
    for rule in policy.rules:
        parse_criteria(rule.criteria, fields)
    return policy


def lead_facts(party: Party, joined: Facts | None) -> Facts:
    """The facts of ``party`` as loaded, over its ``party_facts`` row ``joined`` with its opportunities
    (None when the view has no row for it: a party merged away)."""
    state = party.state()
    facts: dict[str, Any] = dict(joined or {})
    facts.update({key: native(state[key]) for key in _OWN_FACTS})
    facts["party_id"] = str(party.id)
    facts["fields"] = native(state["custom_fields"])
    facts["profile"] = native(state["profile"])
    facts["consent"] = {native(c): native(s) for c, s in sorted(state["consent"].items())}
    last = state["last_interaction_at"]
    facts["last_interaction_at"] = None if last is None else utc_text(last)
    return cast(Facts, facts)


def policy_record(assessment: QualificationAssessment) -> PolicyRecord:
    """What an event records of ``assessment``: the policy's name and version, the score as text, the
    recommendation and the labels of the failed rules."""
    return PolicyRecord(
        policy_name=assessment.policy_name, policy_version=assessment.policy_version,
        assessment={"score": str(assessment.score), "recommendation": assessment.recommendation.value,
                    "failed": list(assessment.failed)},
    )


def lead_assessment(
    party_id: str, stage: str, assessment: QualificationAssessment, at: datetime | None,
) -> LeadAssessment:
    """The read model of ``assessment`` of the party ``party_id`` at ``stage``."""
    return LeadAssessment(
        party_id=UUID(party_id), stage=Stage(stage), at=at, policy_name=assessment.policy_name,
        policy_version=assessment.policy_version, recommendation=assessment.recommendation,
        score=assessment.score,
        rules=[RuleResult(label=o.label, passed=o.passed, weight=o.weight, required=o.required)
               for o in assessment.outcomes],
        failed=list(assessment.failed),
    )
