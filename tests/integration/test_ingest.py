"""Ingesting provider events through the CRM, on every store: idempotent, all-or-nothing for bad input,
and followed by the engagement policies (suppressions, unsubscriptions)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, Mapper, UUIDAsHex
from eventsourcing.popo import POPOApplicationRecorder

from crmcore import CRM, BouncePolicy, ConsentChannel, ConsentStatus, InvalidInput, ProviderEvent
from crmcore import ingest as ingestion
from crmcore.aggregates.engagement import Engagement, engagement_id
from crmcore.models import Change
from crmcore.values import EngagementKind, Money
from tests.integration._campaigns import SENT_AT, email_of, event, people, running_campaign

SOURCE = "mailtool"


def ingest(crm: CRM, events: list[dict[str, Any]], **options: Any) -> Any:
    return crm.ingest(events, source=options.pop("source", SOURCE), actor="mail sync", **options)


def stored_reports(crm: CRM) -> set[UUID]:
    """The ids of every stored engagement report."""
    return {c.aggregate_id for c in crm.changes() if c.aggregate_type == "Engagement"}


def at(days: float) -> datetime:
    return SENT_AT + timedelta(days=days)


@pytest.fixture
def setup(crm: CRM) -> tuple[CRM, UUID, list[UUID]]:
    """Four people; a campaign that sent its newsletter to the first three and calls the last two."""
    ids = people(crm, 4)
    campaign = running_campaign(crm, ids, sent=ids[:3], calls=ids[2:])
    return crm, campaign, ids


# -- idempotency -------------------------------------------------------------------------------------------


def test_each_report_is_stored_once_and_repeats_in_the_call_count_as_duplicates(setup: Any) -> None:
    crm, campaign, (ada, bob, *_) = setup
    events = [event("d1", campaign, ada, "delivered", 1), event("o1", campaign, ada, "opened", 2),
              event("d1", campaign, ada, "delivered", 1), event("d2", campaign, bob, "delivered", 1)]
    before = crm.position
    report = ingest(crm, events)
    assert (report.received, report.stored, report.duplicates) == (4, 3, 1)
    assert report.positions is not None
    assert len(report.positions) == 3
    assert all(before < p <= crm.position for p in report.positions)
    assert stored_reports(crm) == {engagement_id(SOURCE, x) for x in ("d1", "o1", "d2")}


def test_reports_ingested_again_are_all_duplicates_and_store_nothing(setup: Any) -> None:
    crm, campaign, (ada, bob, *_) = setup
    events = [event("d1", campaign, ada, "delivered", 1), event("h1", campaign, bob, "hard_bounce", 1)]
    ingest(crm, events)
    position = crm.position
    report = ingest(crm, [*events, event("o1", campaign, ada, "opened", 3)])
    assert (report.stored, report.duplicates) == (1, 2)
    ingest(crm, events)
    assert len(stored_reports(crm)) == 3
    assert crm.position > position  # only the new report (nothing decided twice)
    assert [s.address_key for s in crm.suppressions()] == [email_of(1)]


def test_the_same_external_id_from_another_source_is_another_report(setup: Any) -> None:
    crm, campaign, (ada, *_) = setup
    ingest(crm, [event("e1", campaign, ada, "delivered", 1)])
    report = ingest(crm, [event("e1", campaign, ada, "delivered", 1)], source="other tool")
    assert report.stored == 1


def test_any_order_stores_the_same_reports_and_decides_the_same(setup: Any, store_kind: str) -> None:
    crm, campaign, (ada, bob, cy, _) = setup
    events = [event("s1", campaign, ada, "soft_bounce", 1), event("s2", campaign, ada, "soft_bounce", 5),
              event("s3", campaign, ada, "soft_bounce", 9), event("d1", campaign, bob, "delivered", 1),
              event("h1", campaign, bob, "hard_bounce", 3), event("o1", campaign, bob, "opened", 4),
              event("x1", campaign, cy, "complaint", 2)]
    shuffled = list(events)
    random.Random(7).shuffle(shuffled)
    for start in range(0, len(shuffled), 2):  # late, out of order, in several calls
        ingest(crm, shuffled[start : start + 2])
    with CRM("memory:") as other:
        ids = people(other, 4)
        again = running_campaign(other, ids, sent=ids[:3], calls=ids[2:])
        remap = dict(zip((ada, bob, cy), ids[:3], strict=True))
        ingest(other, [{**e, "campaign_id": again, "party_id": remap[e["party_id"]]} for e in events])
        expected = [(s.address_key, s.decision.effective_at, s.decision.rule) for s in other.suppressions()]
    assert [(s.address_key, s.decision.effective_at, s.decision.rule) for s in crm.suppressions()] == expected
    assert expected == [(email_of(0), at(9), "soft_bounces"), (email_of(2), at(2), "complaint")]


# -- what is stored ----------------------------------------------------------------------------------------


def test_each_kind_is_stored_with_its_fields(setup: Any) -> None:
    crm, campaign, (ada, bob, cy, dan) = setup
    events = [
        event("c1", campaign, ada, "clicked", 1, link="https://example.com/offer"),
        event("s1", campaign, bob, "soft_bounce", 1, raw_code="452 4.2.2 mailbox full"),
        event("k1", campaign, dan, "called", 3, operator="ann", outcome="call_back",
              call_back_on="2031-02-03", notes="call after lunch"),
        event("k2", campaign, cy, "called", 3, operator="bob", outcome="interested"),
    ]
    ingest(crm, events)
    clicked = crm._app.repository.get(engagement_id(SOURCE, "c1"))
    assert isinstance(clicked, Engagement)
    assert clicked.kind is EngagementKind.CLICKED
    assert clicked.facts["link"] == "https://example.com/offer"
    assert clicked.facts["party_id"] == ada
    assert clicked.facts["campaign_id"] == campaign
    assert clicked.facts["channel"] == "newsletter"
    assert clicked.facts["address"] == email_of(0)
    assert clicked.facts["effective_at"] == at(1)
    assert clicked.facts["source"] == SOURCE
    assert clicked.facts["actor"] == "mail sync"
    bounced = crm._app.repository.get(engagement_id(SOURCE, "s1"))
    assert bounced.facts["raw_code"] == "452 4.2.2 mailbox full"
    called = crm._app.repository.get(engagement_id(SOURCE, "k1"))
    assert called.kind is EngagementKind.CALLED
    assert {k: called.facts[k] for k in ("channel", "operator", "outcome", "call_back_on", "notes")} == {
        "channel": "telemarketing", "operator": "ann", "outcome": "call_back", "call_back_on": "2031-02-03",
        "notes": "call after lunch"}
    assert called.facts["address"] == "+390612340003"


def test_a_recipient_may_be_named_by_its_address_in_any_case(setup: Any) -> None:
    crm, campaign, (ada, *_) = setup
    ingest(crm, [event("o1", campaign, None, "opened", 1, address="PERSON0@Example.com"),
                 event("o2", campaign, ada, "opened", 2, address="person0@example.com")])
    opened = crm._app.repository.get(engagement_id(SOURCE, "o1"))
    assert opened.facts["party_id"] == ada
    assert opened.facts["address"] == email_of(0)


def test_provider_events_may_be_given_as_models(setup: Any) -> None:
    crm, campaign, (ada, *_) = setup
    model = ProviderEvent(external_id="d1", campaign_id=campaign, party_id=ada, kind="delivered",
                          occurred_at=at(1))
    assert ingest(crm, [model]).stored == 1


def test_every_ingested_report_is_told_to_listeners(setup: Any) -> None:
    crm, campaign, (ada, *_) = setup
    heard: list[Change] = []
    crm.subscribe(heard.extend)
    report = ingest(crm, [event("d1", campaign, ada, "delivered", 1),
                          event("o1", campaign, ada, "opened", 2)])
    told = [c for c in heard if c.aggregate_type == "Engagement"]
    assert sorted(c.position for c in told) == sorted(report.positions)
    assert {c.event for c in told} == {"Delivered", "Opened"}
    assert all(c.effective_at in (at(1), at(2)) for c in told)


@pytest.mark.parametrize("settings_crm", ["encrypted and compressed"], indirect=True)
def test_reports_are_stored_with_the_store_settings(settings_crm: CRM) -> None:
    crm = settings_crm
    ids = people(crm, 2)
    campaign = running_campaign(crm, ids)
    ingest(crm, [event("h1", campaign, ids[0], "hard_bounce", 1, raw_code="550"),
                 event("c1", campaign, ids[1], "clicked", 1, link="https://example.com/")])
    assert crm._app.repository.get(engagement_id(SOURCE, "c1")).facts["link"] == "https://example.com/"
    assert [s.address_key for s in crm.suppressions()] == [email_of(0)]


def test_the_fast_encoding_is_what_the_mapper_itself_would_store() -> None:
    class PlainJSON(JSONTranscoder):  # not the standard transcoder: the mapper encodes each event
        pass

    facts = {"actor": "sync", "effective_at": at(1), "campaign_id": uuid4(), "party_id": uuid4(),
             "channel": "newsletter", "address": "ada@example.com", "source": SOURCE, "external_id": "e1",
             "link": "https://example.com/"}
    report = ingestion.ResolvedReport(engagement_id(SOURCE, "e1"), EngagementKind.CLICKED, facts)
    decoded = []
    for transcoder in (JSONTranscoder(), PlainJSON()):
        for transcoding in (UUIDAsHex(), DatetimeAsISO(), DecimalAsStr()):
            transcoder.register(transcoding)
        mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
        recorder = POPOApplicationRecorder()
        ingestion.write_reports(recorder, mapper, [report], 10)
        [stored] = recorder.select_events(report.id)
        event = mapper.to_domain_event(stored)
        decoded.append({k: v for k, v in vars(event).items() if k != "timestamp"})
    assert decoded[0] == decoded[1]
    assert decoded[0]["party_id"] == facts["party_id"]


# -- bad input stores nothing ------------------------------------------------------------------------------


def test_bad_events_are_all_named_by_index_and_field_and_nothing_is_stored(setup: Any) -> None:
    crm, campaign, (ada, _, cy, dan) = setup
    good = event("ok", campaign, ada, "delivered", 1)
    bad = [
        good,
        event("e1", uuid4(), ada, "delivered", 1),  # 1: no such campaign
        event("e2", campaign, dan, "opened", 1),  # 2: the newsletter was not sent to dan
        event("e3", campaign, ada, "called", 1, operator="ann", outcome="reached"),  # 3: ada is not called
        event("e4", campaign, None, "opened", 1, address="nobody@example.com"),  # 4: not on the send list
        event("e5", campaign, ada, "delivered", 1, link="https://example.com/"),  # 5: no link on a delivery
        event("e6", campaign, cy, "called", 1, outcome="call_back", operator="ann"),  # 6: no call-back date
        event("e7", campaign, cy, "called", 1),  # 7: no operator, no outcome
        {**good, "external_id": "e8", "occurred_at": datetime.now(UTC) + timedelta(hours=1)},  # 8: future
        {**good, "external_id": "e9", "occurred_at": datetime(2025, 1, 1)},  # 9: naive
        event("e10", campaign, None, "opened", 1),  # 10: no recipient
        event("e11", campaign, ada, "opened", 1, address=email_of(1)),  # 11: party and address disagree
        {**good, "kind": "read"},  # 12: not a kind
        event("e13", campaign, ada, "opened", 1, raw_code="250"),  # 13: no raw code on an open
        event("e14", campaign, ada, "opened", 1, colour="red"),  # 14: an unknown field
        event("e15", campaign, cy, "called", 1, operator="ann", outcome="reached",
              call_back_on="2031-01-01"),  # 15: a date without a call_back outcome
    ]
    position = crm.position
    with pytest.raises(InvalidInput) as caught:
        ingest(crm, bad)
    assert crm.position == position
    where = {(e["loc"][0], e["loc"][1]) for e in caught.value.errors}
    assert where >= {(1, "campaign_id"), (2, "party_id"), (3, "party_id"), (4, "address"), (5, "link"),
                     (6, "call_back_on"), (7, "operator"), (7, "outcome"), (8, "occurred_at"),
                     (9, "occurred_at"), (10, "party_id"), (11, "address"), (12, "kind"), (13, "raw_code"),
                     (14, "colour"), (15, "call_back_on")}
    assert 0 not in {i for i, _ in where}
    assert "row 1" in str(caught.value)


def test_a_campaign_without_the_channel_of_the_event_is_bad_input(crm: CRM) -> None:
    ids = people(crm, 1)
    campaign = running_campaign(crm, ids, channels=["newsletter"])
    with pytest.raises(InvalidInput) as caught:
        ingest(crm, [event("k1", campaign, ids[0], "called", 1, operator="ann", outcome="reached")])
    assert caught.value.errors[0]["loc"] == (0, "kind")


@pytest.mark.parametrize("options", [{"source": " "}, {"batch_size": 0}, {"source": "x" * 201}])
def test_bad_options_are_refused(setup: Any, options: dict[str, Any]) -> None:
    crm, campaign, (ada, *_) = setup
    with pytest.raises(InvalidInput):
        ingest(crm, [event("d1", campaign, ada, "delivered", 1)], **options)


def test_small_batches_store_the_same(setup: Any) -> None:
    crm, campaign, (ada, bob, cy, _) = setup
    events = [event(f"o{n}", campaign, [ada, bob, cy][n % 3], "opened", n / 10) for n in range(23)]
    report = ingest(crm, [*events, *events[:5]], batch_size=4)
    assert (report.stored, report.duplicates) == (23, 5)
    assert report.positions == sorted(report.positions)


# -- the engagement policies -------------------------------------------------------------------------------


def test_a_hard_bounce_suppresses_the_address_and_contact_is_refused(setup: Any) -> None:
    crm, campaign, (ada, *_) = setup
    ingest(crm, [event("d1", campaign, ada, "delivered", 1),
                 event("h1", campaign, ada, "hard_bounce", 2, raw_code="550 5.1.1 user unknown")])
    [suppressed] = crm.suppressions()
    decision = suppressed.decision
    assert (suppressed.address_key, decision.rule, decision.evidence) == (email_of(0), "hard_bounce", ["h1"])
    assert decision.effective_at == at(2)
    assert decision.policy == {"name": "bounce", "version": 2}
    refused = crm.may_contact(ada, "newsletter")
    assert not refused.allowed
    assert "suppressed" in refused.reason
    assert "hard bounce" in refused.reason
    assert refused.deliverability is not None
    assert refused.deliverability.rule == "hard_bounce"
    assert crm.may_contact(ada, "newsletter", at(1.5)).allowed  # before the bounce
    assert crm.may_contact(ada, "phone").allowed  # the phone number is another address


def test_three_soft_bounces_within_sixty_days_suppress_and_two_do_not(setup: Any) -> None:
    crm, campaign, (ada, bob, *_) = setup
    ingest(crm, [event("a1", campaign, ada, "soft_bounce", 1), event("a2", campaign, ada, "soft_bounce", 20),
                 event("b1", campaign, bob, "soft_bounce", 1), event("b2", campaign, bob, "soft_bounce", 30),
                 event("b3", campaign, bob, "soft_bounce", 90)])  # bob's spread over more than 60 days
    assert crm.suppressions() == []
    ingest(crm, [event("a3", campaign, ada, "soft_bounce", 61)])
    [suppressed] = crm.suppressions()
    assert (suppressed.address_key, suppressed.decision.rule) == (email_of(0), "soft_bounces")
    assert suppressed.decision.evidence == ["a1", "a2", "a3"]
    assert suppressed.decision.effective_at == at(61)


def test_a_complaint_suppresses_and_unsubscribes_the_party_from_the_newsletter(setup: Any) -> None:
    crm, campaign, (ada, *_) = setup
    ingest(crm, [event("x1", campaign, ada, "complaint", 3)])
    assert [(s.address_key, s.decision.rule) for s in crm.suppressions()] == [(email_of(0), "complaint")]
    entry = crm.consent_history(ada)[-1]
    assert (entry.channel, entry.status, entry.source, entry.external_id, entry.effective_at) == (
        ConsentChannel.NEWSLETTER, ConsentStatus.UNSUBSCRIBED, SOURCE, "x1", at(3))
    assert crm.may_contact(ada, "phone").allowed  # only the campaign's channel


def test_an_unsubscription_report_unsubscribes_once_effective_when_it_happened(setup: Any) -> None:
    crm, campaign, (ada, *_) = setup
    ingest(crm, [event("u1", campaign, ada, "unsubscribed", 4)])
    ingest(crm, [event("u1", campaign, ada, "unsubscribed", 4)])
    crm.run_policies()
    unsubscribed = [e for e in crm.consent_history(ada) if e.status is ConsentStatus.UNSUBSCRIBED]
    assert [(e.channel, e.effective_at, e.external_id) for e in unsubscribed] == [
        (ConsentChannel.NEWSLETTER, at(4), "u1")]
    decision = crm.may_contact(ada, "newsletter")
    assert not decision.allowed
    assert "unsubscribed" in decision.reason
    assert crm.may_contact(ada, "newsletter", at(3)).allowed
    assert crm.suppressions() == []  # an unsubscription is not a suppression


def test_an_unsubscription_of_a_party_merged_since_goes_to_the_survivor(setup: Any) -> None:
    crm, campaign, (ada, bob, *_) = setup
    crm.merge(bob, ada, actor="u", reason="same person")
    ingest(crm, [event("u1", campaign, ada, "unsubscribed", 4)])
    assert crm.consent_history(bob)[-1].external_id == "u1"
    assert crm.consent_history(bob)[-1].status is ConsentStatus.UNSUBSCRIBED


def test_a_delivery_after_a_hard_bounce_reinstates_the_address(setup: Any) -> None:
    crm, campaign, (ada, *_) = setup
    ingest(crm, [event("h1", campaign, ada, "hard_bounce", 1)])
    assert not crm.may_contact(ada, "newsletter").allowed
    ingest(crm, [event("o1", campaign, ada, "opened", 5)])
    assert crm.suppressions() == []
    assert crm.may_contact(ada, "newsletter").allowed
    history = crm.address_status(email_of(0))
    assert [(d.suppressed, d.rule, d.effective_at) for d in history.decisions] == [
        (True, "hard_bounce", at(1)), (False, "delivered", at(5))]
    assert crm.suppressions(at=at(3))[0].address_key == email_of(0)
    assert crm._suppressed([email_of(0), email_of(1)], at(3)) == {email_of(0)}
    assert crm._suppressed([email_of(0), email_of(1)]) == set()


def test_the_party_ledger_and_campaign_reports_feed_the_same_policy(setup: Any) -> None:
    crm, campaign, (ada, *_) = setup
    ingest(crm, [event("s1", campaign, ada, "soft_bounce", 1), event("s2", campaign, ada, "soft_bounce", 2)])
    entry = crm.record_delivery(ada, address=email_of(0).upper(), outcome="soft_bounce", actor="mailer",
                                effective_at=at(3))
    assert entry is not None
    [suppressed] = crm.suppressions()
    assert suppressed.decision.evidence == ["s1", "s2", f"party:{ada}:{entry.version}"]
    assert suppressed.decision.effective_at == at(3)


def test_another_policy_says_what_it_would_decide_and_changes_nothing(setup: Any) -> None:
    crm, campaign, (ada, *_) = setup
    ingest(crm, [event("h1", campaign, ada, "hard_bounce", 1, raw_code="550")])
    position = crm.position
    lenient = BouncePolicy(vendor_codes={"550": "soft_bounce"}, version=3)
    assert crm.may_contact(ada, "newsletter", policy=lenient).allowed
    [state] = [d for d in crm.deliverability(ada, policy=lenient) if d.address_key == email_of(0)]
    assert (state.deliverable, state.soft_bounces, state.policy) == (True, 1, lenient.stamp())
    assert not crm.may_contact(ada, "newsletter").allowed
    [recorded] = [d for d in crm.deliverability(ada) if d.address_key == email_of(0)]
    assert (recorded.deliverable, recorded.rule, recorded.evidence) == (False, "hard_bounce", ["h1"])
    assert crm.position == position


def test_reapplying_a_tolerant_policy_reinstates_from_the_old_suppression(setup: Any) -> None:
    crm, campaign, (ada, bob, *_) = setup
    ingest(crm, [event("a1", campaign, ada, "soft_bounce", 1), event("a2", campaign, ada, "soft_bounce", 2),
                 event("a3", campaign, ada, "soft_bounce", 3), event("h1", campaign, bob, "hard_bounce", 1)])
    assert {s.address_key for s in crm.suppressions()} == {email_of(0), email_of(1)}
    tolerant = BouncePolicy(soft_bounce_limit=5, version=3)
    assert crm.reapply_bounce_policy(tolerant, actor="admin") == 1
    assert [s.address_key for s in crm.suppressions()] == [email_of(1)]
    history = crm.address_status(email_of(0))
    decided = [(d.suppressed, d.effective_at, d.rule, d.policy["version"], d.actor)
               for d in history.decisions]
    assert decided == [(True, at(3), "soft_bounces", 2, "policy:bounce"),
                       (False, at(3), "reapplied", 3, "admin")]
    assert not history.suppressed
    assert crm.may_contact(ada, "newsletter", at(4)).allowed
    assert crm.bounce_policy == tolerant
    assert crm.reapply_bounce_policy(tolerant, actor="admin") == 0
    # later reports are decided under the policy now in force
    ingest(crm, [event("a4", campaign, ada, "soft_bounce", 4)])
    assert [s.address_key for s in crm.suppressions()] == [email_of(1)]
    ingest(crm, [event("a5", campaign, ada, "soft_bounce", 5)])
    assert {s.address_key for s in crm.suppressions()} == {email_of(0), email_of(1)}


def test_reapplying_a_stricter_policy_suppresses_from_the_tipping_report(setup: Any) -> None:
    crm, campaign, (ada, *_) = setup
    ingest(crm, [event("a1", campaign, ada, "soft_bounce", 1)])
    assert crm.suppressions() == []
    assert crm.reapply_bounce_policy(BouncePolicy(soft_bounce_limit=1, version=3), actor="admin") == 1
    [suppressed] = crm.suppressions()
    assert (suppressed.decision.effective_at, suppressed.decision.rule, suppressed.decision.evidence) == (
        at(1), "soft_bounces", ["a1"])


def test_a_crm_configured_with_another_policy_applies_it(store_url: str) -> None:
    with CRM(store_url, bounce_policy=BouncePolicy(soft_bounce_limit=1)) as crm:
        ids = people(crm, 1)
        campaign = running_campaign(crm, ids)
        ingest(crm, [event("s1", campaign, ids[0], "soft_bounce", 1)])
        assert [s.decision.rule for s in crm.suppressions()] == ["soft_bounces"]
    with pytest.raises(InvalidInput):
        CRM("memory:", bounce_policy={"soft_bounce_limit": 1})  # type: ignore[arg-type]


def test_running_the_policies_again_decides_nothing_twice(setup: Any) -> None:
    crm, campaign, (ada, bob, *_) = setup
    ingest(crm, [event("h1", campaign, ada, "hard_bounce", 1), event("u1", campaign, bob, "unsubscribed", 1)])
    position = crm.position
    assert crm.run_policies() == 0
    crm._views_storage.reset("policy:engagement", 1)  # as if no process had run yet
    assert crm.run_policies() > 0
    assert crm.position == position


def test_an_address_with_no_decision_has_an_empty_history(setup: Any) -> None:
    crm, *_ = setup
    status = crm.address_status("Nobody@Example.com")
    assert (status.address_key, status.suppressed, status.decisions) == ("nobody@example.com", False, [])
    assert crm.address_status("+39 06 1234 0001").address_key == "+390612340001"


def test_a_batch_colliding_with_reports_stored_meanwhile_is_written_again_without_them(
    setup: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    crm, campaign, (ada, bob, cy, _) = setup
    events = [event(f"o{n}", campaign, [ada, bob, cy][n % 3], "opened", n) for n in range(6)]
    ingest(crm, events[:2])
    asked: list[int] = []
    real = ingestion.existing_originators

    def late(recorder: Any, ids: list[UUID]) -> set[UUID]:
        asked.append(len(ids))
        # the first question is answered before another process stored the first two reports
        return set() if len(asked) == 1 else real(recorder, ids)

    monkeypatch.setattr(ingestion, "existing_originators", late)
    report = ingest(crm, events)
    assert len(asked) == 2  # asked again after the collision
    assert (report.stored, report.duplicates) == (4, 2)
    assert stored_reports(crm) == {engagement_id(SOURCE, f"o{n}") for n in range(6)}


def test_unsubscriptions_of_two_parties_merged_into_one_are_both_recorded_on_it(setup: Any) -> None:
    crm, campaign, (ada, bob, cy, _) = setup
    crm.merge(cy, ada, actor="u", reason="same person")
    crm.merge(cy, bob, actor="u", reason="same person")
    ingest(crm, [event("u1", campaign, ada, "unsubscribed", 4), event("x1", campaign, bob, "complaint", 5)])
    assert [(e.external_id, e.effective_at) for e in crm.consent_history(cy)
            if e.status is ConsentStatus.UNSUBSCRIBED] == [("u1", at(4)), ("x1", at(5))]


def test_a_suppression_decided_by_another_process_is_reinstated_by_a_delivery_seen_here(
    store_url: str, store_kind: str,
) -> None:
    if store_kind == "memory":
        pytest.skip("a memory store lives in one CRM")
    with CRM(store_url) as here, CRM(store_url) as there:
        ids = people(here, 2)
        campaign = running_campaign(here, ids)
        ingest(here, [event("d1", campaign, ids[1], "delivered", 1)])  # this process has read the view
        ingest(there, [event("h1", campaign, ids[0], "hard_bounce", 1)])
        assert [s.address_key for s in here.suppressions()] == [email_of(0)]
        ingest(here, [event("d2", campaign, ids[0], "delivered", 2)])
        assert here.suppressions() == []
        assert here.may_contact(ids[0], "newsletter").allowed


def test_the_address_view_caught_up_from_parsed_records_equals_the_fold_of_decoded_ones(setup: Any) -> None:
    from crmcore.projections import fold_records
    from crmcore.projections.addresses import AddressReportsView

    crm, campaign, (ada, bob, *_) = setup
    ingest(crm, [event("s1", campaign, ada, "soft_bounce", 1, raw_code="452"),
                 event("c1", campaign, ada, "clicked", 2, link="https://example.com/"),
                 event("h1", campaign, bob, "hard_bounce", 1), event("d1", campaign, bob, "delivered", 3)])
    crm.record_delivery(ada, address=email_of(0), outcome="soft_bounce", actor="m", effective_at=at(4))
    view = AddressReportsView()
    folded = fold_records(view, [r for page in crm._runner.reader.pages(view.topics()) for r in page])
    assert {r["address_key"]: r for r in crm.view_rows(view.name)} == folded
    assert [r[2] for r in folded[email_of(0)]["reports"]] == ["soft_bounce", "clicked", "soft_bounce"]
    crm.rebuild_view(view.name)
    assert {r["address_key"]: r for r in crm.view_rows(view.name)} == folded


def test_one_report_is_stored_through_the_single_report_path_once(setup: Any) -> None:
    from crmcore.aggregates.opportunity import Opportunity

    crm, campaign, (_, _, cy, _) = setup
    call = event("k1", campaign, cy, "called", 2, operator="ann", outcome="interested")

    def report() -> Engagement:
        [resolved] = ingestion.resolve_events([call], crm._campaign_or_none, source=SOURCE, actor="phone")
        return resolved.aggregate()

    def deal() -> Opportunity:
        return Opportunity.open(party_id=cy, title="Offer", value=Money(amount="100", currency="EUR"),
                                expected_close=date(2031, 1, 31), owner="ann", actor="phone",
                                pipeline=crm.pipelines[0], stage=None)

    first = report()
    stored = crm._store_reports([first], opened := deal())
    assert [r.id for r in stored] == [engagement_id(SOURCE, "k1")]
    assert crm._app.repository.get(opened.id).title == "Offer"  # saved with the call
    position = crm.position
    assert crm._store_reports([report()], again := deal()) == []  # the same call: nothing, not even the deal
    assert crm.position == position
    assert again.id not in {c.aggregate_id for c in crm.changes()}
    assert crm._app.repository.get(first.id).facts["outcome"] == "interested"


def test_a_single_report_stored_meanwhile_by_another_process_is_not_stored_again(
    setup: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import crmcore.application as application

    crm, campaign, (ada, *_) = setup
    ingest(crm, [event("o1", campaign, ada, "opened", 2)])
    [resolved] = ingestion.resolve_events([event("o1", campaign, ada, "opened", 2)], crm._campaign_or_none,
                                          source=SOURCE, actor="other")
    asked: list[int] = []
    real = application.existing_originators

    def late(recorder: Any, ids: list[UUID]) -> set[UUID]:
        asked.append(len(ids))
        return set() if len(asked) == 1 else real(recorder, ids)  # the first answer: nothing stored yet

    monkeypatch.setattr(application, "existing_originators", late)
    position = crm.position
    assert crm._store_reports([resolved.aggregate()]) == []
    assert len(asked) >= 2  # the save collided, and the store was asked again
    assert crm.position == position
