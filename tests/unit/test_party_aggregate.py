"""The Party aggregate on its own: rules, events, and replay, with no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crmcore import EffectiveTimeOutOfOrder, IllegalTransition, InvalidInput, PartyKind, Stage
from crmcore.aggregates import Party
from crmcore.values import Channel

T0 = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)


def person(stage: Stage = Stage.SUSPECT, **kw: object) -> Party:
    return Party.register(kind=PartyKind.PERSON, stage=stage, name="Ada", actor="u", effective_at=T0, **kw)  # type: ignore[arg-type]


def organization(stage: Stage = Stage.SUSPECT, **kw: object) -> Party:
    return Party.register(  # type: ignore[arg-type]
        kind=PartyKind.ORGANIZATION, stage=stage, name="Acme", actor="u", effective_at=T0, **kw
    )


def replay(party: Party) -> Party:
    rebuilt = None
    for event in party.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert isinstance(rebuilt, Party)
    return rebuilt


def test_a_suspects_first_interaction_makes_it_a_lead_with_the_channel() -> None:
    party = person()
    party.engage(channel=Channel.WEB_FORM, actor="u", effective_at=T0)
    assert party.stage is Stage.LEAD
    assert party.channel is Channel.WEB_FORM
    assert [type(e).__name__ for e in party.collect_events()] == ["Registered", "Engaged"]


def test_qualifying_a_suspect_is_refused_and_records_nothing() -> None:
    party = person()
    party.collect_events()
    with pytest.raises(IllegalTransition):
        party.qualify(actor="u")
    assert party.collect_events() == []
    assert party.stage is Stage.SUSPECT


def test_a_person_lead_naming_no_company_becomes_a_prospect_alone() -> None:
    lead = person(Stage.LEAD)
    assert lead.qualify(actor="u", effective_at=T0) is None
    assert lead.stage is Stage.PROSPECT


def test_an_organization_lead_naming_no_contact_becomes_a_target_alone() -> None:
    lead = organization(Stage.LEAD)
    assert lead.qualify(actor="u", effective_at=T0) is None
    assert lead.stage is Stage.TARGET


def test_a_person_lead_naming_its_company_yields_a_prospect_linked_to_a_new_target() -> None:
    lead = person(Stage.LEAD, organization_name="Acme Srl", owner="rep1")
    target = lead.qualify(actor="u", effective_at=T0)
    assert target is not None
    assert (target.kind, target.stage, target.name) == (PartyKind.ORGANIZATION, Stage.TARGET, "Acme Srl")
    assert target.qualified_from == lead.id
    assert target.owner == "rep1"
    assert lead.stage is Stage.PROSPECT
    assert lead.organization_id == target.id


def test_an_organization_lead_naming_a_contact_yields_a_target_with_a_linked_new_prospect() -> None:
    lead = organization(Stage.LEAD, contact_name="Grace Hopper")
    prospect = lead.qualify(actor="u", effective_at=T0)
    assert prospect is not None
    assert (prospect.kind, prospect.stage) == (PartyKind.PERSON, Stage.PROSPECT)
    assert prospect.organization_id == lead.id
    assert lead.stage is Stage.TARGET


def test_a_person_lead_can_be_linked_to_an_existing_customer_organization_instead() -> None:
    customer_org = organization(Stage.CUSTOMER)
    lead = person(Stage.LEAD, organization_name="Acme Srl")
    assert lead.qualify(actor="u", effective_at=T0, link_to=customer_org) is None
    assert lead.organization_id == customer_org.id


def test_linking_a_qualifying_lead_to_a_suspect_organization_is_refused_and_records_nothing() -> None:
    lead = person(Stage.LEAD)
    lead.collect_events()
    with pytest.raises(IllegalTransition):
        lead.qualify(actor="u", link_to=organization(Stage.SUSPECT))
    assert lead.collect_events() == []
    assert lead.stage is Stage.LEAD


def test_re_qualifying_a_prospect_is_refused() -> None:
    lead = person(Stage.LEAD)
    lead.qualify(actor="u", effective_at=T0)
    with pytest.raises(IllegalTransition):
        lead.qualify(actor="u")


def test_converting_a_disqualified_lead_is_refused() -> None:
    lead = person(Stage.LEAD)
    lead.disqualify(reason="no budget", actor="u", effective_at=T0)
    with pytest.raises(IllegalTransition):
        lead.convert(actor="u")
    assert lead.stage is Stage.DISQUALIFIED
    assert lead.disqualification_reason == "no budget"


def test_a_disqualified_party_reopens_as_a_lead() -> None:
    lead = person(Stage.LEAD)
    lead.disqualify(reason="no budget", actor="u", effective_at=T0)
    lead.reopen(actor="u", effective_at=T0)
    assert lead.stage is Stage.LEAD
    assert lead.disqualification_reason is None


@pytest.mark.parametrize("stage", [Stage.SUSPECT, Stage.LEAD, Stage.CUSTOMER])
def test_only_prospects_and_targets_convert(stage: Stage) -> None:
    with pytest.raises(IllegalTransition):
        person(stage).convert(actor="u")


def test_a_prospect_converts_to_a_customer_person() -> None:
    party = person(Stage.PROSPECT)
    party.convert(actor="u", reference="order-7", effective_at=T0)
    assert party.stage is Stage.CUSTOMER
    assert party.kind is PartyKind.PERSON


@pytest.mark.parametrize(
    ("kind", "stage"),
    [(PartyKind.PERSON, Stage.TARGET), (PartyKind.ORGANIZATION, Stage.PROSPECT),
     (PartyKind.PERSON, Stage.DISQUALIFIED)],
)
def test_registering_at_a_stage_the_kind_cannot_hold_is_refused(kind: PartyKind, stage: Stage) -> None:
    with pytest.raises(IllegalTransition):
        Party.register(kind=kind, stage=stage, name="X", actor="u")


def test_an_organization_cannot_name_a_company_nor_a_person_a_contact() -> None:
    with pytest.raises(InvalidInput):
        organization(organization_name="Other")
    with pytest.raises(InvalidInput):
        person(contact_name="Someone")


def test_a_customer_person_may_only_belong_to_a_customer_organization() -> None:
    customer = person(Stage.CUSTOMER)
    with pytest.raises(IllegalTransition):
        customer.link(organization(Stage.TARGET), actor="u")
    assert customer.link(organization(Stage.CUSTOMER), actor="u") is True


def test_an_organization_cannot_be_linked_to_an_organization() -> None:
    with pytest.raises(IllegalTransition):
        organization(Stage.CUSTOMER).link(organization(Stage.CUSTOMER), actor="u")


def test_assigning_the_same_owner_again_records_nothing() -> None:
    party = person(owner="rep1")
    party.collect_events()
    assert party.assign(owner="rep1", actor="u") is False
    assert party.collect_events() == []


def test_setting_aside_twice_or_restoring_an_active_party_is_refused() -> None:
    party = person()
    with pytest.raises(IllegalTransition):
        party.restore(actor="u")
    party.put_aside(reason="stale", actor="u", effective_at=T0)
    with pytest.raises(IllegalTransition):
        party.put_aside(reason="stale", actor="u")
    party.restore(actor="u", effective_at=T0)
    assert party.set_aside is False


def test_profile_updates_set_and_remove_traits_and_skip_unchanged_values() -> None:
    party = person(profile={"interest": "cloud"})
    assert party.update_profile(changes={"interest": "cloud"}, actor="u") is False
    party.update_profile(changes={"interest": None, "channel_pref": "email"}, actor="u", effective_at=T0)
    assert party.profile == {"channel_pref": "email"}


def test_an_effective_time_before_the_previous_event_is_refused_and_records_nothing() -> None:
    party = person()
    party.collect_events()
    with pytest.raises(EffectiveTimeOutOfOrder):
        party.engage(channel=Channel.EMAIL, actor="u", effective_at=T0 - timedelta(seconds=1))
    assert party.collect_events() == []


def test_naive_and_future_effective_times_are_refused() -> None:
    with pytest.raises(InvalidInput):
        person().engage(channel=Channel.EMAIL, actor="u", effective_at=datetime(2024, 2, 1))
    with pytest.raises(InvalidInput):
        person().engage(channel=Channel.EMAIL, actor="u",
                        effective_at=datetime.now(UTC) + timedelta(days=1))


def test_effective_times_in_other_zones_are_stored_in_utc() -> None:
    from zoneinfo import ZoneInfo

    party = person()
    local = datetime(2024, 3, 1, 10, 0, tzinfo=ZoneInfo("Europe/Rome"))
    party.engage(channel=Channel.EMAIL, actor="u", effective_at=local)
    assert party.last_effective_at.utcoffset() == timedelta(0)
    assert party.last_effective_at == local


def test_every_event_records_its_actor_and_effective_time() -> None:
    party = person()
    party.engage(channel=Channel.PHONE, actor="agent-7", effective_at=T0 + timedelta(hours=1))
    events = party.collect_events()
    assert [(e.actor, e.effective_at) for e in events] == [("u", T0), ("agent-7", T0 + timedelta(hours=1))]


def test_replaying_the_events_rebuilds_the_same_party() -> None:
    party = person(Stage.LEAD, organization_name="Acme", profile={"size": 10})
    party.assign(owner="rep", actor="u", effective_at=T0)
    target = party.qualify(actor="u", effective_at=T0)
    assert target is not None
    party.put_aside(reason="stale", actor="u", effective_at=T0)
    live = party.state()
    assert replay(party).state() == live
