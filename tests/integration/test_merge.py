"""Merging duplicates and undoing merges, on every store: nothing is lost, an unmerge restores both."""

from __future__ import annotations

from uuid import UUID

import pytest

from crmcore import CRM, DuplicateParty, IllegalTransition, InvalidInput, PartyMerged, Stage


def two_duplicates(crm: CRM) -> tuple[UUID, UUID]:
    survivor = crm.register_party(
        kind="person",
        given_name="Mario",
        family_name="Rossi",
        owner="rep-1",
        emails=["mario@example.com"],
        profile={"interest": "cloud"},
        actor="u",
    )
    loser = crm.register_party(
        kind="person",
        name="Mario Rossi",
        stage="lead",
        emails=["m.rossi@acme.it"],
        phones=["06 1234 5678"],
        birth_date="1980-01-02",
        profile={"interest": "storage", "size": 10},
        actor="u",
    )
    return survivor, loser


def test_a_dry_run_shows_where_each_value_would_come_from_and_stores_nothing(crm: CRM) -> None:
    survivor, loser = two_duplicates(crm)
    before = crm.position
    plan = crm.merge(survivor, loser, actor="u", reason="same person", dry_run=True)
    assert not plan.applied
    assert crm.position == before
    fields = {f.field: f for f in plan.fields}
    assert fields["emails"].source == "both"
    assert fields["emails"].result == ["mario@example.com", "m.rossi@acme.it"]
    assert (fields["phones"].source, fields["phones"].result) == ("loser", ["+390612345678"])
    assert (fields["birth_date"].source, fields["birth_date"].result) == ("loser", "1980-01-02")
    assert (fields["stage"].source, fields["stage"].result) == ("loser", "lead")
    assert (fields["owner"].source, fields["owner"].result) == ("survivor", "rep-1")
    assert fields["profile"].result == {"interest": "cloud", "size": 10}


def test_merging_gives_the_survivor_the_chosen_values_and_ends_the_losers_stream(crm: CRM) -> None:
    survivor, loser = two_duplicates(crm)
    crm.merge(
        survivor, loser, actor="u", reason="same person", choose={"name": "loser", "emails": "survivor"}
    )
    merged = crm.get_party(survivor)
    assert merged.name == "Mario Rossi"
    assert merged.emails == ["mario@example.com"]
    assert merged.phones == ["+390612345678"]
    assert merged.stage is Stage.LEAD
    assert merged.merged_from == [loser]
    gone = crm.get_party(loser)  # the loser stays readable
    assert gone.merged_into == survivor
    assert crm.resolve(loser) == survivor
    assert [p.id for p in crm.parties()] == [survivor]
    timeline = crm.timeline(loser)
    assert timeline[-1].event == "MergedInto"
    assert timeline[-1].actor == "u"
    assert timeline[-1].data["reason"] == "same person"
    with pytest.raises(PartyMerged) as refused:
        crm.assign(loser, owner="rep-2", actor="u")
    assert refused.value.survivor_id == survivor


def test_the_losers_identifiers_pass_to_the_survivor(crm: CRM) -> None:
    survivor, loser = two_duplicates(crm)
    crm.merge(survivor, loser, actor="u", reason="dup", choose={"emails": "survivor"})
    assert crm.holder_of(email="m.rossi@acme.it") == survivor
    assert crm.holder_of(phone="+390612345678") == survivor
    with pytest.raises(DuplicateParty) as refused:
        crm.register_party(kind="person", name="X", emails=["m.rossi@acme.it"], actor="u")
    assert refused.value.existing_id == survivor


def test_the_losers_history_and_members_stay_reachable_from_the_survivor(crm: CRM) -> None:
    keep = crm.register_party(kind="organization", name="ACME S.p.A.", stage="target", actor="u")
    dup = crm.register_party(kind="organization", name="Acme SpA", stage="target", actor="u")
    employee = crm.register_party(kind="person", name="Ada", stage="prospect", actor="u")
    crm.link(employee, organization_id=dup, actor="u")
    crm.merge(keep, dup, actor="u", reason="same company")
    assert [m.id for m in crm.members(keep)] == [employee]
    assert [m.id for m in crm.members(dup)] == [employee]  # a merged id resolves to its survivor
    events = [(e.party_id, e.event) for e in crm.timeline(keep, include_merged=True)]
    assert (dup, "Registered") in events
    assert (keep, "Merged") in events


def test_unmerge_restores_both_parties_plus_what_was_recorded_since(crm: CRM) -> None:
    survivor, loser = two_duplicates(crm)
    before_survivor, before_loser = crm.get_party(survivor), crm.get_party(loser)
    crm.merge(survivor, loser, actor="u", reason="looked the same")
    crm.assign(survivor, owner="rep-9", actor="u")
    loser_view, survivor_view = crm.unmerge(loser, actor="boss", reason="two different people")
    ignore = {"version", "last_effective_at"}
    assert loser_view.model_dump(exclude=ignore) == before_loser.model_dump(exclude=ignore)
    expected = before_survivor.model_dump(exclude=ignore) | {"owner": "rep-9"}
    assert survivor_view.model_dump(exclude=ignore) == expected
    assert crm.holder_of(email="m.rossi@acme.it") == loser
    assert crm.holder_of(phone="+390612345678") == loser
    assert crm.holder_of(email="mario@example.com") == survivor
    assert sorted(p.id for p in crm.parties()) == sorted([survivor, loser])
    assert crm.timeline(loser)[-1].event == "Unmerged"
    assert crm.timeline(loser)[-1].actor == "boss"
    crm.assign(loser, owner="rep-3", actor="u")  # the loser lives again


def test_a_party_can_be_merged_again_after_an_unmerge_and_unmerged_again(crm: CRM) -> None:
    survivor, loser = two_duplicates(crm)
    original = crm.get_party(loser)
    for _ in range(2):
        crm.merge(survivor, loser, actor="u", reason="dup")
        crm.unmerge(loser, actor="u", reason="not a dup")
    ignore = {"version", "last_effective_at"}
    assert crm.get_party(loser).model_dump(exclude=ignore) == original.model_dump(exclude=ignore)
    assert crm.get_party(survivor).merged_from == []


def test_unmerging_from_a_survivor_that_was_itself_merged_is_refused(crm: CRM) -> None:
    a, b = two_duplicates(crm)
    c = crm.register_party(kind="person", name="Third", actor="u")
    crm.merge(b, a, actor="u", reason="dup")
    crm.merge(c, b, actor="u", reason="dup")
    before = crm.position
    with pytest.raises(IllegalTransition, match="unmerge it first"):
        crm.unmerge(a, actor="u", reason="x")
    assert crm.position == before
    assert crm.resolve(a) == c


@pytest.mark.parametrize("case", ["itself", "kinds", "merged", "unknown choice", "not merged"])
def test_illegal_merges_and_unmerges_raise_and_record_nothing(crm: CRM, case: str) -> None:
    a, b = two_duplicates(crm)
    org = crm.register_party(kind="organization", name="ACME", actor="u")
    if case == "merged":
        crm.merge(a, b, actor="u", reason="dup")
    before = crm.position
    error: type[Exception] = InvalidInput if case == "unknown choice" else IllegalTransition
    attempts = {
        "itself": lambda: crm.merge(a, a, actor="u", reason="x"),
        "kinds": lambda: crm.merge(org, a, actor="u", reason="x"),
        "merged": lambda: crm.merge(a, b, actor="u", reason="again"),
        "unknown choice": lambda: crm.merge(a, b, actor="u", reason="x", choose={"shoe_size": "loser"}),
        "not merged": lambda: crm.unmerge(a, actor="u", reason="x"),
    }
    with pytest.raises(error):
        attempts[case]()
    assert crm.position == before


def test_merge_and_unmerge_need_an_actor_and_a_reason(crm: CRM) -> None:
    a, b = two_duplicates(crm)
    with pytest.raises(InvalidInput):
        crm.merge(a, b, actor="u", reason="")
    with pytest.raises(InvalidInput):
        crm.merge(a, b, actor="", reason="dup")
