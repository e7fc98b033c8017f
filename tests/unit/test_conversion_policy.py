"""The conversion-on-a-won-deal policy, as a pure function."""

from __future__ import annotations

from uuid import uuid4

from crmcore.policies.conversion import PartyFacts, cause_of_win, when_opportunity_won_convert_party
from crmcore.values import PartyKind, Stage

OPPORTUNITY = uuid4()


def party(kind: PartyKind, stage: Stage, *causes: dict[str, object]) -> PartyFacts:
    return PartyFacts(uuid4(), kind, stage, tuple(causes))


def test_a_won_prospect_becomes_a_customer_naming_the_win() -> None:
    prospect = party(PartyKind.PERSON, Stage.PROSPECT)
    (decision,) = when_opportunity_won_convert_party(OPPORTUNITY, 7, prospect)
    assert decision.party_id == prospect.id
    assert decision.caused_by == {"opportunity_id": str(OPPORTUNITY), "event": "Won", "version": 7}


def test_a_won_target_converts_with_its_linked_prospects_but_not_its_leads() -> None:
    target = party(PartyKind.ORGANIZATION, Stage.TARGET)
    prospect, lead = party(PartyKind.PERSON, Stage.PROSPECT), party(PartyKind.PERSON, Stage.LEAD)
    decisions = when_opportunity_won_convert_party(OPPORTUNITY, 3, target, [prospect, lead])
    assert [d.party_id for d in decisions] == [target.id, prospect.id]


def test_a_customer_winning_again_converts_nothing_but_its_new_prospects() -> None:
    customer = party(PartyKind.ORGANIZATION, Stage.CUSTOMER)
    prospect = party(PartyKind.PERSON, Stage.PROSPECT)
    decisions = when_opportunity_won_convert_party(OPPORTUNITY, 3, customer, [prospect])
    assert [d.party_id for d in decisions] == [prospect.id]
    assert when_opportunity_won_convert_party(OPPORTUNITY, 3, party(PartyKind.PERSON, Stage.CUSTOMER)) == []


def test_a_win_already_applied_converts_nothing_again() -> None:
    applied = party(PartyKind.PERSON, Stage.PROSPECT, cause_of_win(OPPORTUNITY, 5))
    assert when_opportunity_won_convert_party(OPPORTUNITY, 5, applied) == []
    assert len(when_opportunity_won_convert_party(OPPORTUNITY, 9, applied)) == 1  # another win (reopened)
