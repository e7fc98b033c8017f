"""Segments through the CRM on every store: defining, changing, renaming and retiring; refusals that store
nothing; members now and as of a past moment; entries and exits with their causes; previews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from crmcore import (
    CRM,
    FieldNotDefined,
    FieldRuleViolation,
    IllegalTransition,
    InvalidInput,
    SegmentNotFound,
)
from crmcore.values import utc_now

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def person(crm: CRM, name: str, stage: str = "lead", **fields: Any) -> UUID:
    return crm.register_party(kind="person", name=name, stage=stage, actor="u", effective_at=at(0), **fields)


@pytest.fixture
def regions(crm: CRM) -> CRM:
    crm.define_field(name="region", kind="choice", choices=["North", "South"], synonyms={"nord": "North"},
                     actor="admin", effective_at=at(0))
    crm.define_field(name="employees", kind="number", actor="admin", effective_at=at(0))
    return crm


def ids(crm: CRM, segment: UUID, **kw: Any) -> set[UUID]:
    return set(crm.segment_members(segment, **kw).ids)


def test_a_segment_holds_the_parties_its_criteria_select_and_follows_them(regions: CRM) -> None:
    crm = regions
    ada, bob = person(crm, "Ada"), person(crm, "Bob")
    segment = crm.define_segment(name="Northern leads", actor="u", effective_at=at(1),
                                 criteria={"all": [{"stage": "lead"}, {"field": "region", "eq": "nord"}]})
    stored = {"all": [{"stage": ["lead"]}, {"field": "region", "eq": "North"}]}  # canonical
    assert crm.get_segment(segment).criteria == stored
    assert ids(crm, segment) == set()
    crm.set_fields(ada, values={"region": "North"}, actor="u", effective_at=at(2))
    crm.set_fields(bob, values={"region": "South"}, actor="u", effective_at=at(2))
    members = crm.segment_members(segment)
    assert members.ids == [ada]
    assert members.members[0].name == "Ada"
    assert members.members[0].since == at(2)
    assert members.members[0].cause == "Party.FieldsUpdated"
    crm.qualify(ada, actor="u", effective_at=at(3))
    assert ids(crm, segment) == set()
    changes = crm.segment_changes(segment)
    assert [(c.party_id, c.change, c.at, c.cause) for c in changes] == [
        (ada, "entered", at(2), "Party.FieldsUpdated"), (ada, "left", at(3), "Party.Qualified")]
    assert [c.change for c in crm.segment_changes(segment, since=at(2.5))] == ["left"]
    assert [c.change for c in crm.segment_changes(segment, until=at(3))] == ["entered"]


def test_changing_the_criteria_moves_parties_in_and_out_and_says_why(regions: CRM) -> None:
    crm = regions
    ada, bob = person(crm, "Ada"), person(crm, "Bob", stage="prospect")
    segment = crm.define_segment(name="Leads", criteria={"stage": "lead"}, actor="u", effective_at=at(1))
    view = crm.change_segment(segment, criteria={"stage": ["prospect"]}, actor="u", effective_at=at(2))
    assert view.version == 2
    assert ids(crm, segment) == {bob}
    assert [(c.party_id, c.change, c.cause) for c in crm.segment_changes(segment)] == [
        (ada, "entered", "Segment.Defined"), (ada, "left", "Segment.CriteriaChanged"),
        (bob, "entered", "Segment.CriteriaChanged")]
    position = crm.position
    assert crm.change_segment(segment, criteria={"stage": "prospect"}, actor="u").version == 2  # the same
    assert crm.position == position
    renamed = crm.rename_segment(segment, name="Prospects", description="people to call", actor="u")
    assert (renamed.name, renamed.description) == ("Prospects", "people to call")
    assert ids(crm, segment) == {bob}


def test_members_as_of_a_past_moment_use_the_facts_and_criteria_of_then(regions: CRM) -> None:
    crm = regions
    ada, bob = person(crm, "Ada"), person(crm, "Bob", stage="prospect")
    segment = crm.define_segment(name="Leads", criteria={"stage": "lead"}, actor="u", effective_at=at(1))
    crm.qualify(ada, actor="u", effective_at=at(3))
    crm.change_segment(segment, criteria={"stage": "customer"}, actor="u", effective_at=at(5))
    assert ids(crm, segment, at=at(2)) == {ada}
    assert ids(crm, segment, at=at(4)) == set()
    assert ids(crm, segment, at=at(6)) == set()
    crm.convert(bob, actor="u", effective_at=at(7))
    assert ids(crm, segment, at=at(8)) == ids(crm, segment) == {bob}
    with pytest.raises(SegmentNotFound, match="not defined by"):
        crm.segment_members(segment, at=at(0.5))
    # As known: a late report of a past fact is left out when asking what was known before it arrived.
    known = utc_now()
    crm.set_fields(bob, values={"region": "North"}, actor="u", effective_at=at(9))
    north = crm.define_segment(name="North", criteria={"field": "region", "eq": "North"}, actor="u",
                               effective_at=at(1))
    assert ids(crm, north, at=at(10)) == {bob}
    with pytest.raises(SegmentNotFound):
        crm.segment_members(north, at=at(10), known_at=known)


def test_opportunities_count_for_the_party_and_for_its_survivor_after_a_merge(regions: CRM) -> None:
    crm = regions
    ada = person(crm, "Ada", stage="prospect")
    twin = person(crm, "Ada Twin", stage="prospect")
    open_deals = crm.define_segment(name="With open deals", criteria={"open_opportunities": {"min": 1}},
                                    actor="u", effective_at=at(1))
    big = crm.define_segment(name="Big buyers", criteria={"won_value": {"currency": "EUR", "ge": "1000"}},
                             actor="u", effective_at=at(1))
    deal = crm.open_opportunity(twin, title="Deal", value="1500", currency="EUR", expected_close="2025-03-31",
                                owner="ann", actor="u", effective_at=at(2))
    assert ids(crm, open_deals) == {twin}
    crm.merge(ada, twin, actor="u", reason="duplicate", effective_at=at(3))
    assert ids(crm, open_deals) == {ada}
    crm.win(deal, actor="u", effective_at=at(4))
    assert ids(crm, open_deals) == set()
    assert ids(crm, big) == {ada}
    assert [(c.party_id, c.change, c.cause) for c in crm.segment_changes(open_deals)] == [
        (twin, "entered", "Opportunity.Opened"), (ada, "entered", "Party.Merged"),
        (twin, "left", "Party.MergedInto"), (ada, "left", "Opportunity.Won")]  # in log order
    crm.unmerge(twin, actor="u", reason="not the same person", effective_at=at(5))
    assert ids(crm, big) == {twin}


def test_consent_deliverability_and_segments_of_segments(regions: CRM) -> None:
    crm = regions
    ada = person(crm, "Ada", emails=["ada@example.com"])
    bob = person(crm, "Bob", emails=["bob@example.com"])
    mailable = crm.define_segment(name="Mailable", actor="u", effective_at=at(1), criteria={
        "all": [{"consent": "email", "is": "subscribed"}, {"deliverable": "email"}]})
    rest = crm.define_segment(name="Not mailable", criteria={"not": {"segment": str(mailable).upper()}},
                              actor="u", effective_at=at(1))
    assert crm.get_segment(rest).criteria == {"not": {"segment": str(mailable)}}
    for party in (ada, bob):
        crm.subscribe_to(party, channel="email", source="form", lawful_basis="consent", actor="u",
                         effective_at=at(2))
    assert ids(crm, mailable) == {ada, bob}
    assert ids(crm, rest) == set()
    crm.record_delivery(bob, address="bob@example.com", outcome="hard_bounce", actor="mailer",
                        effective_at=at(3))
    assert ids(crm, mailable) == {ada}
    assert ids(crm, rest) == {bob}
    with pytest.raises(IllegalTransition, match="referred to by Not mailable"):
        crm.retire_segment(mailable, reason="done", actor="u")
    crm.retire_segment(rest, reason="done", actor="u", effective_at=at(4))
    assert ids(crm, rest) == set()
    assert [c.change for c in crm.segment_changes(rest)][-1] == "left"
    assert [s.name for s in crm.segments()] == ["Mailable"]
    assert [s.name for s in crm.segments(include_retired=True)] == ["Mailable", "Not mailable"]
    with pytest.raises(IllegalTransition, match="retired"):
        crm.change_segment(rest, criteria={"stage": "lead"}, actor="u")


def test_a_time_window_is_read_at_the_moment_asked(regions: CRM) -> None:
    crm = regions
    ada = person(crm, "Ada", stage="suspect")
    recent = crm.define_segment(name="Recently in touch", actor="u", effective_at=at(1),
                                criteria={"last_interaction": {"within_days": 90}})
    crm.engage(ada, channel="web_form", actor="u", effective_at=at(2))
    assert ids(crm, recent, at=at(50)) == {ada}
    assert ids(crm, recent, at=at(93)) == set()  # no event: time alone moved her out
    assert ids(crm, recent) == set()  # now is long after 2025
    assert crm.segment_changes(recent)[0].change == "entered"


def test_unsaved_criteria_are_previewed(regions: CRM) -> None:
    crm = regions
    ada, _ = person(crm, "Ada"), person(crm, "Bob", stage="prospect")
    crm.set_fields(ada, values={"employees": 40}, actor="u", effective_at=at(1))
    assert [m.party_id for m in crm.evaluate({"field": "employees", "ge": 10})] == [ada]
    assert [m.name for m in crm.evaluate({"stage": ["prospect"]}, at=at(2))] == ["Bob"]


@pytest.mark.parametrize(("criteria", "error"), [
    ({"field": "colour", "eq": "red"}, FieldNotDefined),
    ({"field": "region", "eq": "Atlantis"}, FieldRuleViolation),
    ({"stage": "wizard"}, InvalidInput),
    ({"all": [{"stage": "lead"}, {"kind": "robot"}]}, InvalidInput),
    ({"segment": str(uuid4())}, SegmentNotFound),
    ({"segment": "not-an-id"}, InvalidInput),
    ({}, InvalidInput),
    ("stage=lead", InvalidInput),
])
def test_bad_criteria_are_refused_and_nothing_is_stored(regions: CRM, criteria: Any, error: type) -> None:
    position = regions.position
    with pytest.raises(error):
        regions.define_segment(name="Bad", criteria=criteria, actor="u")
    with pytest.raises(error):
        regions.evaluate(criteria)
    assert regions.position == position


def test_other_bad_input_is_refused_and_nothing_is_stored(regions: CRM) -> None:
    crm = regions
    first = crm.define_segment(name="Leads", criteria={"stage": "lead"}, actor="u")
    second = crm.define_segment(name="Of leads", criteria={"segment": str(first)}, actor="u")
    position = crm.position
    with pytest.raises(InvalidInput, match="refer to itself"):
        crm.change_segment(first, criteria={"segment": str(second)}, actor="u")
    with pytest.raises(InvalidInput, match="name"):
        crm.define_segment(name="  ", criteria={"stage": "lead"}, actor="u")
    with pytest.raises(InvalidInput):
        crm.define_segment(name="Leads", criteria={"stage": "lead"}, actor="")
    with pytest.raises(InvalidInput):
        crm.define_segment(name="Later", criteria={"stage": "lead"}, actor="u",
                           effective_at=datetime(2030, 1, 1))  # naive
    with pytest.raises(SegmentNotFound):
        crm.segment_members(uuid4())
    with pytest.raises(SegmentNotFound):
        crm.get_segment(uuid4())
    with pytest.raises(InvalidInput):
        crm.segment_members("nonsense")
    with pytest.raises(InvalidInput, match="known_at needs at"):
        crm.segment_members(first, known_at=utc_now())
    with pytest.raises(InvalidInput):
        crm.retire_segment(second, reason=" ", actor="u")
    assert crm.position == position


def test_profile_traits_are_tested_in_their_section_after_storage(crm: CRM) -> None:
    crm.adopt_standard_profile(actor="admin")
    ada = crm.register_party(kind="person", name="Ada", stage="lead", actor="u",
                             profile={"interests": "sailing and chess"})
    segment = crm.define_segment(name="Sailors", criteria={"field": "interests", "contains": "SAIL"},
                                 actor="u")
    stored = {"field": "interests", "contains": "SAIL", "section": "profile"}
    assert crm.get_segment(segment).criteria == stored
    assert ids(crm, segment) == {ada}
    crm.rebuild_view("segment_members")
    assert ids(crm, segment) == {ada}


def test_the_projection_rebuilt_from_zero_equals_the_one_kept_up_to_date(regions: CRM) -> None:
    crm = regions
    parties = [person(crm, f"P{i}") for i in range(6)]
    segment = crm.define_segment(name="North", criteria={"field": "region", "eq": "North"}, actor="u",
                                 effective_at=at(1))
    for i, party in enumerate(parties):
        crm.set_fields(party, values={"region": "North" if i % 2 else "South"}, actor="u", effective_at=at(2))
    crm.set_fields(parties[1], values={"region": "South"}, actor="u", effective_at=at(3))
    kept = (crm.segment_members(segment), crm.segment_changes(segment))
    crm.rebuild_view("segment_members")
    assert (crm.segment_members(segment), crm.segment_changes(segment)) == kept
    assert len(kept[0]) == 2
