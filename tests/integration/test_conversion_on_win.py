"""Conversion on a won deal, on every store: caused by the win, traceable to it, never twice."""

from __future__ import annotations

from datetime import date

import pytest

from crmcore import CRM, Stage


def opportunity_for(crm: CRM, party_id: object) -> object:
    return crm.open_opportunity(
        party_id, title="Deal", value="1000.00", currency="EUR", expected_close=date(2027, 1, 31),
        owner="rep-1", actor="rep-1",
    )


def test_winning_a_prospects_opportunity_makes_it_a_customer_traceable_to_the_win(crm: CRM) -> None:
    prospect = crm.register_party(kind="person", name="Ada", stage="prospect", actor="u")
    deal = opportunity_for(crm, prospect)
    crm.win(deal, actor="rep-1")
    party = crm.get_party(prospect)
    assert party.stage is Stage.CUSTOMER
    converted = crm.timeline(prospect)[-1]
    assert converted.event == "Converted"
    assert converted.data["caused_by"]["opportunity_id"] == str(deal)
    assert converted.data["caused_by"]["event"] == "Won"


def test_a_won_target_converts_and_so_do_its_prospects_but_not_its_leads(crm: CRM) -> None:
    target = crm.register_party(kind="organization", name="ACME", stage="target", actor="u")
    prospect = crm.register_party(kind="person", name="Ada", stage="prospect", actor="u")
    lead = crm.register_party(kind="person", name="Bob", stage="lead", actor="u")
    crm.link(prospect, organization_id=target, actor="u")
    deal = opportunity_for(crm, target)
    crm.win(deal, actor="rep-1")
    assert crm.get_party(target).stage is Stage.CUSTOMER
    assert crm.get_party(prospect).stage is Stage.CUSTOMER
    assert crm.get_party(lead).stage is Stage.LEAD


def test_replaying_the_policy_never_converts_twice(crm: CRM) -> None:
    prospect = crm.register_party(kind="person", name="Ada", stage="prospect", actor="u")
    crm.win(opportunity_for(crm, prospect), actor="rep-1")
    version = crm.get_party(prospect).version
    crm.run_policies()
    crm._views_storage.reset("policy:conversion-on-win", 1)  # forget the position: replay every win
    crm.run_policies()
    assert crm.get_party(prospect).version == version


def test_a_win_recorded_without_the_policy_is_applied_by_run_policies_of_another_crm(store_url: str) -> None:
    if store_url == "memory:":
        pytest.skip("a memory store lives in one object")
    with CRM(store_url) as first, CRM(store_url) as second:
        prospect = first.register_party(kind="person", name="Ada", stage="prospect", actor="u")
        deal = opportunity_for(first, prospect)
        first.run_policies = lambda: 0  # type: ignore[method-assign]  # as if it stopped right after the win
        first.win(deal, actor="rep-1")
        assert first.get_party(prospect).stage is Stage.PROSPECT
        assert second.run_policies() == 1
        assert second.get_party(prospect).stage is Stage.CUSTOMER


def test_a_won_deal_of_a_party_merged_since_converts_its_survivor(crm: CRM) -> None:
    prospect = crm.register_party(kind="person", name="Ada", stage="prospect", actor="u")
    other = crm.register_party(kind="person", name="Ada L.", stage="prospect", actor="u")
    deal = opportunity_for(crm, other)
    crm.merge(prospect, other, actor="u", reason="dup")
    crm.win(deal, actor="rep-1")
    assert crm.get_party(prospect).stage is Stage.CUSTOMER
