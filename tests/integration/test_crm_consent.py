"""Consent and deliverability through the CRM, on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from crmcore import CRM, InvalidInput, PartyNotFound
from crmcore.aggregates import Party
from crmcore.policies.consent import BouncePolicy, ConsentChannel, ConsentStatus, DeliveryOutcome

DAY = timedelta(days=1)
ADA = "ada@example.com"


def back(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def register(crm: CRM, days_ago: float = 30) -> UUID:
    return crm.register_party(kind="person", name="Ada", stage="lead", actor="u", effective_at=back(days_ago))


def subscribe(crm: CRM, party_id: UUID, **kw: Any) -> Any:
    fields = {"channel": "email", "source": "web form", "lawful_basis": "consent", "actor": "u"}
    return crm.subscribe_to(party_id, **{**fields, **kw})


def test_may_contact_answers_for_past_moments_from_the_history(crm: CRM) -> None:
    party = register(crm)
    subscribe(crm, party, effective_at=back(20))
    crm.unsubscribe_from(party, channel="email", source="mail tool", actor="sync", effective_at=back(10))
    assert not crm.may_contact(party, "email", back(25), address=ADA).allowed
    decision = crm.may_contact(party, "email", back(15), address=ADA)
    assert decision.allowed
    assert decision.consent is not None
    assert decision.consent.status is ConsentStatus.SUBSCRIBED
    now = crm.may_contact(party, ConsentChannel.EMAIL, address=ADA)
    assert not now.allowed
    assert "unsubscribed" in now.reason


def test_the_same_external_event_twice_is_recorded_once(crm: CRM) -> None:
    party = register(crm)
    first = subscribe(crm, party, external_id="mt-42", effective_at=back(5))
    assert first is not None
    position = crm.position
    assert subscribe(crm, party, external_id="mt-42", effective_at=back(5)) is None
    assert crm.position == position
    assert len(crm.consent_history(party)) == 1


def test_a_late_entry_effective_before_earlier_recorded_ones_changes_past_answers(crm: CRM) -> None:
    party = register(crm, days_ago=30)
    subscribe(crm, party, effective_at=back(10))
    crm.assign(party, owner="rep", actor="u", effective_at=back(1))
    # The mail tool reports, today, an unsubscription that took effect 20 days ago.
    crm.unsubscribe_from(party, channel="email", source="mail tool", actor="sync", effective_at=back(20))
    assert not crm.may_contact(party, "email", back(15), address=ADA).allowed
    assert crm.may_contact(party, "email", back(5), address=ADA).allowed
    history = crm.consent_history(party)
    assert [e.status for e in history] == [ConsentStatus.UNSUBSCRIBED, ConsentStatus.SUBSCRIBED]
    assert crm.get_party(party).last_effective_at > back(1.01)


def test_an_as_of_read_sees_entries_recorded_late_but_effective_before_the_moment(crm: CRM) -> None:
    party = register(crm, days_ago=30)
    crm.assign(party, owner="rep", actor="u", effective_at=back(10))
    subscribe(crm, party, channel="newsletter", effective_at=back(20))  # recorded after the assignment
    subscribe(crm, party, channel="sms", effective_at=back(5))
    then = crm.party_as_of(party, back(15))
    assert then.owner is None
    assert then.consent == {ConsentChannel.NEWSLETTER: ConsentStatus.SUBSCRIBED}
    later = crm.party_as_of(party, back(7))
    assert later.owner == "rep"
    assert later.consent == {ConsentChannel.NEWSLETTER: ConsentStatus.SUBSCRIBED}
    with pytest.raises(PartyNotFound):
        crm.party_as_of(party, back(40))


def test_unsubscribing_from_all_records_every_channel_in_one_save(crm: CRM) -> None:
    party = register(crm)
    subscribe(crm, party)
    position = crm.position
    entries = crm.unsubscribe_from(party, channels="all", source="complaint", evidence="phone call",
                                   actor="support")
    assert [e.channel for e in entries] == list(ConsentChannel)
    assert [c.event for c in crm.changes(after=position)] == ["Unsubscribed"] * 4
    assert set(crm.get_party(party).consent.values()) == {ConsentStatus.UNSUBSCRIBED}


def test_unsubscribing_from_some_channels_records_those_only(crm: CRM) -> None:
    party = register(crm)
    entries = crm.unsubscribe_from(party, channels=["sms", "phone", "sms"], source="form", actor="u")
    assert [e.channel for e in entries] == [ConsentChannel.PHONE, ConsentChannel.SMS]


def test_consent_shows_in_the_party_view_and_the_timeline(crm: CRM) -> None:
    party = register(crm)
    subscribe(crm, party, evidence="double opt-in", external_id="form-7")
    assert crm.get_party(party).consent == {ConsentChannel.EMAIL: ConsentStatus.SUBSCRIBED}
    entry = crm.timeline(party)[-1]
    assert entry.event == "Subscribed"
    assert entry.data["evidence"] == "double opt-in"
    assert entry.changes["consent"].after == {ConsentChannel.EMAIL: ConsentStatus.SUBSCRIBED}


def test_a_hard_bounce_stops_contact_and_another_policy_reads_the_code_again(crm: CRM) -> None:
    party = register(crm)
    subscribe(crm, party, effective_at=back(10))
    bounce = crm.record_delivery(party, address=ADA, raw_code="550 5.1.1", actor="m", effective_at=back(2))
    assert bounce is not None
    assert bounce.outcome is DeliveryOutcome.HARD_BOUNCE
    assert bounce.raw_code == "550 5.1.1"
    assert crm.may_contact(party, "email", back(3), address=ADA).allowed
    assert not crm.may_contact(party, "email", address=ADA).allowed
    [state] = crm.deliverability(party)
    assert not state.deliverable
    lenient = BouncePolicy(vendor_codes={"550 5.1.1": DeliveryOutcome.SOFT_BOUNCE}, soft_bounce_limit=2)
    [again] = crm.deliverability(party, policy=lenient)
    assert again.deliverable
    assert again.soft_bounces == 1
    assert crm.may_contact(party, "email", address=ADA, policy=lenient).allowed


def test_a_vendor_code_is_recorded_through_the_policy_given(crm: CRM) -> None:
    party = register(crm)
    policy = BouncePolicy(vendor_codes={"blocked": DeliveryOutcome.HARD_BOUNCE})
    entry = crm.record_delivery(party, address=ADA, raw_code="blocked", actor="m", policy=policy)
    assert entry is not None
    assert entry.classified_as is DeliveryOutcome.HARD_BOUNCE
    assert [d.raw_code for d in crm.delivery_history(party)] == ["blocked"]


def test_a_delivery_report_seen_twice_is_recorded_once(crm: CRM) -> None:
    party = register(crm)
    assert crm.record_delivery(party, address=ADA, outcome="soft_bounce", actor="m", external_id="b1")
    assert crm.record_delivery(party, address=ADA, outcome="soft_bounce", actor="m", external_id="b1") is None
    assert crm.deliverability(party)[0].soft_bounces == 1


def test_sms_uses_the_phone_number_and_its_own_bounces(crm: CRM) -> None:
    party = register(crm)
    subscribe(crm, party, channel="sms", lawful_basis="contract")
    crm.record_delivery(party, address=ADA, outcome="hard_bounce", actor="m")
    decision = crm.may_contact(party, "sms", address="333 123 4567")
    assert decision.allowed
    assert decision.address == "+393331234567"


def test_without_an_address_for_the_channel_the_answer_is_no_and_says_why(crm: CRM) -> None:
    party = register(crm)
    subscribe(crm, party)
    decision = crm.may_contact(party, "email")
    assert not decision.allowed
    assert decision.reason == "no e-mail address to reach the party by email"


@pytest.mark.parametrize(
    ("method", "fields"),
    [
        ("subscribe_to", {"channel": "fax", "source": "s", "lawful_basis": "consent"}),
        ("subscribe_to", {"channel": "email", "source": "s", "lawful_basis": "whim"}),
        ("subscribe_to", {"channel": "email", "source": "s"}),
        ("subscribe_to", {"channel": "email", "source": "s", "lawful_basis": "consent",
                          "effective_at": datetime(2024, 1, 1)}),
        ("subscribe_to", {"channel": "email", "source": " ", "lawful_basis": "consent"}),
        ("unsubscribe_from", {"source": "s"}),
        ("unsubscribe_from", {"channel": "email", "channels": "all", "source": "s"}),
        ("unsubscribe_from", {"channels": ["email", "pigeon"], "source": "s"}),
        ("record_delivery", {"address": "ada@@example", "outcome": "delivered"}),
        ("record_delivery", {"address": "12", "outcome": "delivered"}),
        ("record_delivery", {"address": ADA, "raw_code": "whatever"}),
        ("record_delivery", {"address": ADA, "outcome": "delivered", "raw_code": "550"}),
    ],
)
def test_bad_consent_input_raises_and_records_nothing(crm: CRM, method: str, fields: dict[str, Any]) -> None:
    party = register(crm)
    position = crm.position
    with pytest.raises(InvalidInput):
        getattr(crm, method)(party, actor="u", **fields)
    assert crm.position == position


@pytest.mark.parametrize(
    ("args", "kw"),
    [(("fax",), {}), (("email", datetime(2024, 1, 1)), {}), (("email",), {"address": "no-at-sign"}),
     (("sms",), {"address": "ada@example.com"})],
)
def test_may_contact_refuses_bad_questions(crm: CRM, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    party = register(crm)
    with pytest.raises(InvalidInput):
        crm.may_contact(party, *args, **kw)


def test_consent_of_an_unknown_party_is_not_found(crm: CRM) -> None:
    with pytest.raises(PartyNotFound):
        crm.may_contact(UUID(int=7), "email")
    with pytest.raises(PartyNotFound):
        subscribe(crm, UUID(int=7))


def test_a_party_with_a_long_ledger_comes_back_whole_from_its_snapshot(crm: CRM) -> None:
    party = register(crm, days_ago=300)
    for n in range(130):
        if n % 2:
            crm.unsubscribe_from(party, channel="newsletter", source="mail tool", actor="sync",
                                 external_id=f"e{n}", effective_at=back(290 - 2 * n))
        else:
            subscribe(crm, party, channel="newsletter", external_id=f"e{n}", effective_at=back(290 - 2 * n))
    crm.record_delivery(party, address=ADA, raw_code="421", actor="m", effective_at=back(1))
    assert crm._app.snapshots is not None
    assert list(crm._app.snapshots.get(party)), "a snapshot was taken"
    loaded = crm._app.repository.get(party)
    replayed: Party | None = None
    for event in crm._app.events.get(party):
        replayed = event.mutate(replayed)  # type: ignore[assignment]
    assert isinstance(replayed, Party)
    assert loaded.consents == replayed.consents
    assert loaded.deliveries == replayed.deliveries
    assert len(crm.consent_history(party)) == 130
    assert crm.get_party(party).consent == {ConsentChannel.NEWSLETTER: ConsentStatus.UNSUBSCRIBED}
    # Snapshots give back plain JSON; the restored ledger still answers questions.
    assert not crm.may_contact(party, "newsletter", address=ADA).allowed
    assert crm.may_contact(party, "newsletter", back(290 - 2 * 128), address=ADA).allowed


def test_may_contact_uses_the_primary_address_the_party_carries(crm: CRM) -> None:
    party = crm.register_party(kind="person", name="Ada", emails=["Ada@Example.com", "ada@work.example"],
                               phones=["06 1234 5678"], actor="u")
    crm.subscribe_to(party, channel="email", source="form", lawful_basis="consent", actor="u")
    crm.subscribe_to(party, channel="sms", source="form", lawful_basis="consent", actor="u")
    assert str(crm.may_contact(party, "email").address) == "Ada@example.com"
    assert str(crm.may_contact(party, "sms").address) == "+390612345678"
    crm.record_delivery(party, address="ada@example.com", outcome="hard_bounce", actor="m")
    assert not crm.may_contact(party, "email").allowed
    crm.add_email(party, "ada@work.example", primary=True, actor="u")
    assert crm.may_contact(party, "email").allowed


# -- the mailing exclusions view ------------------------------------------------------------------------


def test_unsubscribed_and_bounced_parties_are_excluded_from_mailings(crm: CRM) -> None:
    ada, bob, cy, dee = (register(crm) for _ in range(4))
    for party in (ada, bob, cy, dee):
        subscribe(crm, party, channel="newsletter", effective_at=back(10))
    crm.unsubscribe_from(ada, channel="newsletter", source="mail tool", actor="sync", effective_at=back(5))
    crm.record_delivery(bob, address="Bob@Example.com", raw_code="550", actor="m", effective_at=back(4))
    crm.unsubscribe_from(cy, channel="sms", source="form", actor="u")  # not a mailing channel
    crm.record_delivery(dee, address="+39 06 1234 5678", outcome="hard_bounce", actor="m")  # not an e-mail
    excluded = {m.party_id: m for m in crm.mailing_exclusions()}
    assert set(excluded) == {ada, bob}
    assert excluded[ada].unsubscribed == [ConsentChannel.NEWSLETTER]
    assert excluded[bob].bounced == ["bob@example.com"]


def test_a_late_report_is_placed_at_its_effective_time_in_the_exclusions(crm: CRM) -> None:
    party = register(crm)
    subscribe(crm, party, channel="email", effective_at=back(2))
    crm.unsubscribe_from(party, channel="email", source="mail tool", actor="sync", effective_at=back(9))
    crm.record_delivery(party, address=ADA, outcome="delivered", actor="m", effective_at=back(1))
    crm.record_delivery(party, address=ADA, outcome="soft_bounce", actor="m", effective_at=back(3))
    assert crm.mailing_exclusions() == []
    subscribe(crm, party, channel="email", effective_at=back(1))
    for days in (0.5, 0.4):
        crm.record_delivery(party, address=ADA, outcome="soft_bounce", actor="m", effective_at=back(days))
    assert crm.mailing_exclusions() == []  # the late soft bounce counts before the delivery: two since
    crm.record_delivery(party, address=ADA, outcome="soft_bounce", actor="m", effective_at=back(0.3))
    [excluded] = crm.mailing_exclusions()
    assert (excluded.unsubscribed, excluded.bounced) == ([], [ADA])
    crm.rebuild_view("mailing_exclusions")
    assert crm.mailing_exclusions() == [excluded]
