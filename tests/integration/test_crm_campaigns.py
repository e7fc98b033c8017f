"""Campaign commands on every store: lifecycle, the frozen audience and its exclusions, send waves."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from crmcore import CRM
from crmcore.exceptions import (
    CampaignNotFound,
    ContactRefused,
    CurrencyMismatch,
    EffectiveTimeOutOfOrder,
    IllegalTransition,
    InvalidInput,
    SegmentNotFound,
)
from crmcore.values import CampaignStatus, ExclusionReason

DAY = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
_NUMBERS = itertools.count(41_000_000)


def person(crm: CRM, name: str, *, stage: str = "lead", newsletter: bool = True, phone: bool = True,
           email: str | None = "", at: datetime = DAY) -> UUID:
    address = f"{name.lower().replace(' ', '.')}@example.com" if email == "" else email
    party = crm.register_party(kind="person", name=name, stage=stage, actor="ann", effective_at=at,
                               emails=[address] if address else None,
                               phones=[f"+39 06 {next(_NUMBERS):08d}"])
    for channel, wanted in (("newsletter", newsletter), ("phone", phone)):
        if wanted:
            crm.subscribe_to(party, channel=channel, source="web form", lawful_basis="consent", actor="web",
                             effective_at=at + timedelta(hours=1))
    return party


def everyone(crm: CRM) -> UUID:
    return crm.define_segment(name="Everyone", criteria={"stage": ["lead", "prospect", "customer"]},
                              actor="ann", effective_at=DAY)


def running(
    crm: CRM, segment: UUID, *, channels: tuple[str, ...] = ("newsletter",), **options: object,
) -> UUID:
    campaign = crm.plan_campaign(name="Spring offer", channels=list(channels), segment_id=segment,
                                 budget={"amount": "1000", "currency": "EUR"}, actor="mkt", **options)
    crm.schedule_campaign(campaign, start_at=DAY + timedelta(days=10), actor="mkt")
    return campaign


def log_position(crm: CRM) -> int:
    return crm.position


def test_lifecycle_draft_scheduled_running_completed(crm: CRM) -> None:
    ada = person(crm, "Ada Lovelace")
    segment = everyone(crm)
    campaign = running(crm, segment)
    assert crm.get_campaign(campaign).status is CampaignStatus.SCHEDULED
    audience = crm.launch_campaign(campaign, actor="mkt")
    assert [r.party_id for r in audience.recipients["newsletter"]] == [ada]
    view = crm.record_campaign_cost(campaign, amount={"amount": "250.5", "currency": "EUR"}, actor="mkt")
    view = crm.record_campaign_cost(campaign, amount={"amount": "100", "currency": "EUR"}, actor="mkt")
    assert view.cost.amount == Decimal("350.50")
    done = crm.complete_campaign(campaign, actor="mkt")
    assert done.status is CampaignStatus.COMPLETED
    assert [e.event for e in crm.campaign_timeline(campaign)] == [
        "Drafted", "Scheduled", "Launched", "CostRecorded", "CostRecorded", "Completed",
    ]
    assert crm.get_campaign(campaign, version=2).status is CampaignStatus.SCHEDULED


def test_illegal_transitions_raise_and_record_nothing(crm: CRM) -> None:
    segment = everyone(crm)
    campaign = crm.plan_campaign(name="Draft", channels=["newsletter"], segment_id=segment,
                                 budget={"amount": "10", "currency": "EUR"}, actor="mkt")
    before = log_position(crm)
    with pytest.raises(IllegalTransition):
        crm.launch_campaign(campaign, actor="mkt")  # not scheduled
    with pytest.raises(IllegalTransition):
        crm.complete_campaign(campaign, actor="mkt")
    with pytest.raises(IllegalTransition):
        crm.send_campaign(campaign, actor="mkt")
    crm.cancel_campaign(campaign, reason="budget cut", actor="mkt")
    after_cancel = log_position(crm)
    assert after_cancel > before
    with pytest.raises(IllegalTransition):
        crm.schedule_campaign(campaign, start_at=DAY, actor="mkt")
    with pytest.raises(IllegalTransition):
        crm.cancel_campaign(campaign, reason="again", actor="mkt")
    assert log_position(crm) == after_cancel


def test_bad_input_is_refused_and_nothing_stored(crm: CRM) -> None:
    segment = everyone(crm)
    before = log_position(crm)
    base = {"name": "X", "channels": ["newsletter"], "segment_id": segment,
            "budget": {"amount": "10", "currency": "EUR"}, "actor": "mkt"}
    bad = [
        ({"segment_id": uuid4()}, SegmentNotFound),
        ({"segment_id": "not an id"}, InvalidInput),
        ({"channels": ["fax"]}, InvalidInput),
        ({"channels": []}, InvalidInput),
        ({"channels": ["newsletter", "newsletter"]}, InvalidInput),
        ({"channels": "newsletter"}, InvalidInput),
        ({"budget": {"amount": "-1", "currency": "EUR"}}, InvalidInput),
        ({"budget": {"amount": 1.5, "currency": "EUR"}}, InvalidInput),
        ({"budget": "lots"}, InvalidInput),
        ({"name": ""}, InvalidInput),
        ({"name": "x" * 101}, InvalidInput),
        ({"actor": ""}, InvalidInput),
        ({"effective_at": datetime(2025, 1, 1)}, InvalidInput),
    ]
    for change, error in bad:
        with pytest.raises(error):
            crm.plan_campaign(**{**base, **change})  # type: ignore[arg-type]
    crm.retire_segment(segment, reason="gone", actor="ann")
    retired_at = log_position(crm)
    with pytest.raises(IllegalTransition):
        crm.plan_campaign(**base)  # type: ignore[arg-type]
    with pytest.raises(CampaignNotFound):
        crm.get_campaign(uuid4())
    assert log_position(crm) == retired_at
    assert retired_at == before + 1


def test_costs_in_another_currency_and_out_of_order_times_are_refused(crm: CRM) -> None:
    segment = everyone(crm)
    campaign = running(crm, segment)
    position = log_position(crm)
    with pytest.raises(CurrencyMismatch):
        crm.record_campaign_cost(campaign, amount={"amount": "5", "currency": "USD"}, actor="mkt")
    with pytest.raises(EffectiveTimeOutOfOrder):
        crm.record_campaign_cost(campaign, amount={"amount": "5", "currency": "EUR"}, actor="mkt",
                                 effective_at=DAY - timedelta(days=30))
    assert log_position(crm) == position


def test_revise_changes_only_what_differs(crm: CRM) -> None:
    segment = everyone(crm)
    other = crm.define_segment(name="Leads", criteria={"stage": "lead"}, actor="ann", effective_at=DAY)
    campaign = running(crm, segment)
    view = crm.revise_campaign(campaign, actor="mkt", name="Spring offer", segment_id=other,
                               budget={"amount": "2000", "currency": "EUR"})
    assert (view.segment_id, view.budget.amount, view.version) == (other, Decimal("2000.00"), 3)
    same = crm.revise_campaign(campaign, actor="mkt", name="Spring offer")
    assert same.version == 3
    with pytest.raises(InvalidInput):
        crm.revise_campaign(campaign, actor="mkt", colour="red")


def test_the_audience_is_frozen_with_every_exclusion_and_its_reason(crm: CRM) -> None:
    ada = person(crm, "Ada Lovelace")
    never = person(crm, "Nora Never", newsletter=False, phone=False)
    gone = person(crm, "Gina Gone")
    crm.unsubscribe_from(gone, channel="newsletter", source="preference centre", actor="web",
                         effective_at=DAY + timedelta(days=2))
    mute = person(crm, "Mario Mute", email=None)
    bounced = person(crm, "Bruno Bounce")
    crm.record_delivery(bounced, address="bruno.bounce@example.com", raw_code="550 5.1.1 user unknown",
                        actor="mail tool", effective_at=DAY + timedelta(days=2))
    busy = person(crm, "Bea Busy", stage="customer")
    crm.open_opportunity(busy, title="Renewal", value={"amount": "5000", "currency": "EUR"},
                         expected_close="2025-06-30", owner="giulia", actor="giulia",
                         effective_at=DAY + timedelta(days=2))
    segment = everyone(crm)
    campaign = running(crm, segment, channels=("newsletter", "telemarketing"))
    audience = crm.launch_campaign(campaign, actor="mkt")
    assert [r.party_id for r in audience.recipients["newsletter"]] == [ada]
    assert sorted(r.party_id for r in audience.recipients["telemarketing"]) == sorted([ada, gone, mute,
                                                                                        bounced])
    by_reason = {(e.party_id, e.channel.value): e.reason for e in audience.exclusions}
    assert by_reason == {
        (never, "newsletter"): ExclusionReason.NO_CONSENT,
        (never, "telemarketing"): ExclusionReason.NO_CONSENT,
        (gone, "newsletter"): ExclusionReason.UNSUBSCRIBED, (mute, "newsletter"): ExclusionReason.NO_ADDRESS,
        (bounced, "newsletter"): ExclusionReason.SUPPRESSED,
        (busy, "newsletter"): ExclusionReason.OPEN_NEGOTIATION,
        (busy, "telemarketing"): ExclusionReason.OPEN_NEGOTIATION,
    }
    assert audience.policy == {"name": "audience", "version": 1}
    # Frozen: a later subscriber does not join, a later unsubscriber is still listed (sends re-check).
    late = person(crm, "Luca Late", at=datetime.now(UTC) - timedelta(hours=2))
    assert late not in [r.party_id for r in crm.campaign_audience(campaign).recipients["newsletter"]]
    assert crm.get_campaign(campaign).recipients == {"newsletter": 1, "telemarketing": 4}


def test_probable_duplicates_are_reached_once(crm: CRM) -> None:
    first = person(crm, "Giovanni Bianchi", email="g.bianchi@example.com")
    second = person(crm, "Giovanni Bianchi", email="g.bianchi@example.org")
    for party in (first, second):
        crm.update_identity(party, birth_date="1970-05-04", actor="ann",
                            address={"street": "Via Roma 1", "locality": "Milano", "postcode": "20121",
                                     "country": "IT"})
    assert {frozenset((m.party_id, m.other_id)) for m in crm.duplicates()} == {frozenset((first, second))}
    segment = everyone(crm)
    campaign = running(crm, segment)
    audience = crm.launch_campaign(campaign, actor="mkt")
    assert audience.excluded(ExclusionReason.DUPLICATE) == [max(first, second)]
    assert [r.party_id for r in audience.recipients["newsletter"]] == [min(first, second)]


def test_sends_recheck_consent_and_suppression_at_the_moment_of_sending(crm: CRM) -> None:
    ada = person(crm, "Ada Lovelace")
    bob = person(crm, "Bob Boole")
    cid = person(crm, "Cid Codd")
    segment = everyone(crm)
    campaign = running(crm, segment)
    crm.launch_campaign(campaign, actor="mkt")
    crm.unsubscribe_from(bob, channel="newsletter", source="reply", actor="web")
    crm.record_delivery(cid, address="cid.codd@example.com", raw_code="550 5.1.1", actor="mail tool")
    wave = crm.send_campaign(campaign, actor="mkt")
    assert [r.party_id for r in wave.recipients] == [ada]
    assert dict(wave.skipped) == {bob: "unsubscribed", cid: "suppressed"}
    assert wave.wave == 1
    again = crm.send_campaign(campaign, actor="mkt")
    assert (again.wave, again.recipients) == (2, [])
    assert dict(again.skipped) == {bob: "unsubscribed", cid: "suppressed"}
    assert crm.get_campaign(campaign).sent == 1


def test_telemarketing_operators_calls_and_an_opportunity(crm: CRM) -> None:
    parties = [person(crm, f"Caller {n}", stage="customer" if n == 0 else "lead", newsletter=False)
               for n in range(5)]
    segment = everyone(crm)
    campaign = running(crm, segment, channels=("telemarketing",))
    crm.launch_campaign(campaign, actor="mkt")
    listed = crm.assign_operators(campaign, add=["ann", "bob"], actor="mkt")
    loads = sorted(sum(1 for e in listed if e.operator == op) for op in ("ann", "bob"))
    assert loads == [2, 3]
    first = parties[0]
    operator = next(e.operator for e in listed if e.party_id == first)
    assert operator is not None
    position = crm.position
    with pytest.raises(InvalidInput):  # a call back needs its date
        crm.record_call(campaign, first, operator=operator, outcome="call_back", actor=operator)
    with pytest.raises(InvalidInput):  # only an interested call opens an opportunity
        crm.record_call(campaign, first, operator=operator, outcome="reached", actor=operator,
                        opportunity={"title": "X", "value": {"amount": "1", "currency": "EUR"},
                                     "expected_close": "2026-12-31", "owner": operator})
    assert crm.position == position
    crm.record_call(campaign, first, operator=operator, outcome="no_answer", actor=operator,
                    external_id="c-1")
    again = crm.record_call(campaign, first, operator=operator, outcome="no_answer", actor=operator,
                            external_id="c-1")
    assert again.recorded is False
    entry = next(e for e in crm.call_list(campaign) if e.party_id == first)
    assert (entry.open, entry.calls, entry.last_outcome) == (True, 1, "no_answer")
    done = crm.record_call(campaign, first, operator=operator, outcome="interested", actor=operator,
                           notes="wants a quote",
                           opportunity={"title": "Quote", "value": {"amount": "3000", "currency": "EUR"},
                                        "expected_close": "2026-12-31", "owner": operator})
    assert done.opportunity_id is not None
    assert crm.get_opportunity(done.opportunity_id).campaign_id == campaign
    entry = next(e for e in crm.call_list(campaign) if e.party_id == first)
    assert (entry.open, entry.calls) == (False, 2)
    # a lead cannot have an opportunity: the call is refused with it, nothing stored
    lead = parties[1]
    lead_operator = next(e.operator for e in crm.call_list(campaign) if e.party_id == lead)
    position = crm.position
    with pytest.raises(IllegalTransition):
        crm.record_call(campaign, lead, operator=str(lead_operator), outcome="interested", actor="x",
                        opportunity={"title": "Q", "value": {"amount": "1", "currency": "EUR"},
                                     "expected_close": "2026-12-31", "owner": "x"})
    assert crm.position == position
    # an operator leaves: the open entries are spread over the rest, the closed one stays
    after = crm.assign_operators(campaign, remove=[operator], actor="mkt")
    still = [e for e in after if e.open]
    assert {e.operator for e in still} == {"bob" if operator == "ann" else "ann"}
    assert next(e for e in after if e.party_id == first).operator == operator


def test_a_call_to_a_party_unsubscribed_from_phone_is_refused(crm: CRM) -> None:
    ada = person(crm, "Ada Lovelace", newsletter=False)
    segment = everyone(crm)
    campaign = running(crm, segment, channels=("telemarketing",))
    crm.launch_campaign(campaign, actor="mkt")
    crm.unsubscribe_from(ada, channel="phone", source="call", actor="ann")
    position = crm.position
    with pytest.raises(ContactRefused):
        crm.record_call(campaign, ada, operator="ann", outcome="reached", actor="ann")
    assert crm.position == position
