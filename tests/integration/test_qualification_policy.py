"""The qualification policy through the CRM on every store: assessing a lead, qualifying only when the
policy says so (refusals store nothing), the policy recorded on the events, and events stored before."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from crmcore import (
    CRM,
    DEFAULT_QUALIFICATION,
    FieldNotDefined,
    IllegalTransition,
    InvalidInput,
    PartyMerged,
    PartyNotFound,
    QualificationPolicy,
    QualificationRefused,
    QualificationRule,
    Recommendation,
    Stage,
)
from crmcore.aggregates.party import Party
from crmcore.projections.records import RecordReader, record_of

T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)
DAY = timedelta(days=1)

#: Values meeting every rule of the default policy (BANT).
QUALIFIED = {"industry": "software", "budget": "25000", "decision_role": "ceo", "need": "a CRM",
             "timeframe": "within 3 months"}
FAILED_ALL = ["fits the target market", "can afford it", "can decide", "has a need", "buys within six months"]


def lead(crm: CRM, name: str = "Ada", **extra: Any) -> UUID:
    return crm.register_party(kind="person", name=name, stage="lead", actor="u", effective_at=T0, **extra)


@pytest.fixture
def bant(crm: CRM) -> CRM:
    """A CRM whose catalog holds the fields the default policy reads."""
    crm.adopt_qualification_fields(actor="admin", effective_at=T0 - DAY)
    return crm


def events(crm: CRM, party: UUID, name: str) -> list[Any]:
    return [e for e in crm.timeline(party) if e.event == name]


# ---------------------------------------------------------------------- assessing


def test_a_lead_is_assessed_under_the_default_policy_rule_by_rule(bant: CRM) -> None:
    ada = lead(bant)
    empty = bant.assess_lead(ada)
    assert (empty.recommendation, empty.score, empty.failed) == (Recommendation.DISQUALIFY, 0, FAILED_ALL)
    assert (empty.policy_name, empty.policy_version, empty.party_id, empty.stage) == ("BANT", 1, ada,
                                                                                      Stage.LEAD)
    bant.set_fields(ada, values={"industry": "software", "budget": "1000"}, actor="u", effective_at=T0 + DAY)
    half = bant.assess_lead(ada)
    assert (half.recommendation, half.score) == (Recommendation.REVIEW, Decimal("0.50"))
    assert [r.label for r in half.rules if r.passed] == ["fits the target market", "can afford it"]
    bant.set_fields(ada, values={"decision_role": "dm", "timeframe": "over a year"}, actor="u",
                    effective_at=T0 + 2 * DAY)
    enough = bant.assess_lead(ada)
    assert (enough.recommendation, enough.score) == (Recommendation.QUALIFY, Decimal("0.75"))
    assert enough.failed == ["has a need", "buys within six months"]
    assert [r.required for r in enough.rules] == [True, True, True, False, False]


def test_a_required_rule_failed_is_never_a_qualify(bant: CRM) -> None:
    ada = lead(bant)
    bant.set_fields(ada, values={**QUALIFIED, "decision_role": "user"}, actor="u", effective_at=T0)
    assessment = bant.assess_lead(ada)
    assert assessment.score == Decimal("0.75")
    assert assessment.recommendation is Recommendation.REVIEW


def test_an_assessment_as_of_a_past_moment_reads_the_facts_then(bant: CRM) -> None:
    ada = lead(bant)
    bant.set_fields(ada, values=QUALIFIED, actor="u", effective_at=T0 + 5 * DAY)
    assert bant.assess_lead(ada, at=T0 + DAY).recommendation is Recommendation.DISQUALIFY
    later = bant.assess_lead(ada, at=T0 + 6 * DAY)
    assert (later.recommendation, later.at) == (Recommendation.QUALIFY, T0 + 6 * DAY)
    assert bant.assess_lead(ada).recommendation is Recommendation.QUALIFY
    with pytest.raises(PartyNotFound):
        bant.assess_lead(ada, at=T0 - DAY)


def test_a_policy_given_or_configured_replaces_the_default(store_url: str) -> None:
    kinds = QualificationPolicy("Kind", 3, (
        QualificationRule("a person", {"kind": "person"}, required=True),
        QualificationRule("owned", {"owner": ["ann"]}),
    ))
    with CRM(store_url, qualification_policy=kinds) as crm:
        ada = lead(crm)
        configured = crm.assess_lead(ada)
        assert (configured.policy_name, configured.policy_version, configured.score) == ("Kind", 3,
                                                                                        Decimal("0.50"))
        assert configured.recommendation is Recommendation.REVIEW
        crm.adopt_qualification_fields(actor="admin")
        assert crm.assess_lead(ada, policy=DEFAULT_QUALIFICATION).policy_name == "BANT"


def test_a_policy_reading_a_field_the_installation_lacks_is_refused(crm: CRM) -> None:
    ada = lead(crm)
    with pytest.raises(FieldNotDefined, match="industry"):
        crm.assess_lead(ada)
    position = crm.position
    with pytest.raises(FieldNotDefined):
        crm.qualify(ada, require_policy=True, actor="u")
    assert crm.position == position


def test_a_merged_lead_is_assessed_through_its_survivor(bant: CRM) -> None:
    ada, twin = lead(bant), lead(bant, "Ada L.")
    bant.set_fields(twin, values=QUALIFIED, actor="u", effective_at=T0)
    bant.merge(ada, twin, actor="u", reason="same person")
    assessment = bant.assess_lead(twin)
    assert assessment.party_id == ada
    assert assessment.recommendation is Recommendation.QUALIFY


@pytest.mark.parametrize(("arguments", "error"), [
    ({"party_id": uuid4()}, PartyNotFound),
    ({"party_id": "not an id"}, InvalidInput),
    ({"policy": "BANT"}, InvalidInput),
    ({"at": datetime(2025, 1, 1)}, InvalidInput),
])
def test_assessing_with_bad_input_is_a_typed_error(bant: CRM, arguments: dict[str, Any], error: type) -> None:
    ada = lead(bant)
    given = {"party_id": ada, **arguments}
    position = bant.position
    with pytest.raises(error):
        bant.assess_lead(given.pop("party_id"), **given)
    assert bant.position == position


# ---------------------------------------------------------------------- qualifying under the policy


def test_qualifying_under_the_policy_refuses_a_lead_it_does_not_recommend_and_stores_nothing(
    bant: CRM,
) -> None:
    ada = lead(bant, organization_name="Acme")
    bant.set_fields(ada, values={"industry": "software", "budget": "1000"}, actor="u", effective_at=T0)
    position, version = bant.position, bant.get_party(ada).version
    with pytest.raises(QualificationRefused) as refused:
        bant.qualify(ada, require_policy=True, actor="u")
    error = refused.value
    assert (error.recommendation, error.score, error.policy_name, error.policy_version) == (
        "review", Decimal("0.50"), "BANT", 1)
    assert error.failed == ("can decide", "has a need", "buys within six months")
    assert error.party_id == ada
    assert "can decide" in str(error)
    assert bant.position == position
    assert bant.get_party(ada).version == version
    assert bant.get_party(ada).stage is Stage.LEAD
    assert bant.party_counts().by_stage.get(Stage.TARGET, 0) == 0  # no counterpart either


def test_qualifying_under_the_policy_records_it_on_the_event(bant: CRM) -> None:
    ada = lead(bant, organization_name="Acme")
    bant.set_fields(ada, values=QUALIFIED, actor="u", effective_at=T0)
    result = bant.qualify(ada, require_policy=True, actor="u", effective_at=T0 + DAY)
    assert result.stage is Stage.PROSPECT
    assert result.target_id is not None
    (qualified,) = events(bant, ada, "Qualified")
    assert qualified.data == {"stage": "prospect", "policy_name": "BANT", "policy_version": 1,
                              "assessment": {"score": "1.00", "recommendation": "qualify", "failed": []}}
    assert bant.party_facts()[str(ada)]["stage"] == "prospect"


def test_qualifying_with_a_policy_given_but_not_required_records_its_assessment_whatever_it_says(
    bant: CRM,
) -> None:
    ada = lead(bant)
    bant.qualify(ada, policy=DEFAULT_QUALIFICATION, actor="u")
    (qualified,) = events(bant, ada, "Qualified")
    assert qualified.data["policy_name"] == "BANT"
    assert qualified.data["assessment"] == {"score": "0.00", "recommendation": "disqualify",
                                            "failed": FAILED_ALL}


def test_qualifying_without_a_policy_records_none(crm: CRM) -> None:
    ada = lead(crm)
    crm.qualify(ada, actor="u")
    (qualified,) = events(crm, ada, "Qualified")
    assert qualified.data == {"stage": "prospect", "policy_name": None, "policy_version": None,
                              "assessment": None}


def test_the_lifecycle_refuses_before_the_policy_is_asked(bant: CRM) -> None:
    prospect = bant.register_party(kind="person", name="Bea", stage="prospect", actor="u")
    with pytest.raises(IllegalTransition) as refused:
        bant.qualify(prospect, require_policy=True, actor="u")
    assert not isinstance(refused.value, QualificationRefused)
    ada, twin = lead(bant), lead(bant, "Ada L.")
    bant.merge(ada, twin, actor="u", reason="same person")
    position = bant.position
    with pytest.raises(PartyMerged):
        bant.qualify(twin, require_policy=True, actor="u")
    assert bant.position == position


@pytest.mark.parametrize(("arguments", "error"), [
    ({"require_policy": "yes"}, InvalidInput),
    ({"require_policy": None}, InvalidInput),
    ({"policy": "BANT"}, InvalidInput),
    ({"policy": "BANT", "require_policy": True}, InvalidInput),
])
def test_qualifying_with_a_bad_policy_argument_is_invalid_input_and_stores_nothing(
    bant: CRM, arguments: dict[str, Any], error: type,
) -> None:
    ada = lead(bant)
    bant.set_fields(ada, values=QUALIFIED, actor="u", effective_at=T0)
    position = bant.position
    with pytest.raises(error):
        bant.qualify(ada, actor="u", **arguments)
    assert bant.position == position


# ---------------------------------------------------------------------- disqualifying


def test_disqualifying_with_a_policy_records_its_assessment(bant: CRM) -> None:
    ada, bob = lead(bant), lead(bant, "Bob")
    bant.disqualify(ada, reason="no budget", policy=DEFAULT_QUALIFICATION, actor="u")
    bant.disqualify(bob, reason="no budget", actor="u")
    (with_policy,) = events(bant, ada, "Disqualified")
    assert with_policy.data == {"reason": "no budget", "policy_name": "BANT", "policy_version": 1,
                                "assessment": {"score": "0.00", "recommendation": "disqualify",
                                               "failed": FAILED_ALL}}
    (without,) = events(bant, bob, "Disqualified")
    assert (without.data["policy_name"], without.data["assessment"]) == (None, None)
    assert bant.get_party(ada).disqualification_reason == "no budget"


def test_disqualifying_with_a_bad_policy_stores_nothing(crm: CRM) -> None:
    ada = lead(crm)
    position = crm.position
    with pytest.raises(InvalidInput):
        crm.disqualify(ada, reason="no budget", policy="BANT", actor="u")  # type: ignore[arg-type]
    with pytest.raises(FieldNotDefined):  # the default policy's fields are not defined here
        crm.disqualify(ada, reason="no budget", policy=DEFAULT_QUALIFICATION, actor="u")
    assert crm.position == position


# ---------------------------------------------------------------------- events stored before


def _as_version_1(stored: StoredEvent) -> StoredEvent:
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    for field in ("policy_name", "policy_version", "assessment"):
        state.pop(field)
    return StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                       json.dumps(state).encode())


def test_qualifications_stored_before_policies_were_recorded_read_with_none(crm: CRM) -> None:
    """A history written with version-1 events, stored as such, reads back on every store and path."""
    with CRM("memory:") as source:
        ada = lead(source)
        bob = lead(source, "Bob")
        source.qualify(ada, actor="u", effective_at=T0 + DAY)
        source.disqualify(bob, reason="no budget", actor="u", effective_at=T0 + DAY)
        old = {Party.Qualified.__name__, Party.Disqualified.__name__}
        stored = [
            _as_version_1(s) if s.topic.rsplit(".", 1)[-1] in old else s
            for party in (ada, bob) for s in source._app.recorder.select_events(party)
        ]
    assert sum(1 for s in stored if b"class_version" not in s.state) == 2
    crm._app.recorder.insert_events(stored)
    assert crm.get_party(ada).stage is Stage.PROSPECT
    assert crm.get_party(bob).stage is Stage.DISQUALIFIED
    (qualified,) = events(crm, ada, "Qualified")
    assert qualified.data == {"stage": "prospect", "policy_name": None, "policy_version": None,
                              "assessment": None}
    (disqualified,) = events(crm, bob, "Disqualified")
    assert (disqualified.data["reason"], disqualified.data["assessment"]) == ("no budget", None)
    facts = crm.party_facts()  # folded by the fast reader, which hands older versions to the store
    assert (facts[str(ada)]["stage"], facts[str(bob)]["stage"]) == ("prospect", "disqualified")
    reader = RecordReader(crm._app.recorder, crm._app.mapper)
    records = [r for page in reader.pages([]) for r in page]
    assert [r.data for r in records] == [
        record_of(crm._app.mapper.to_domain_event(s)).data for s in stored
    ]
