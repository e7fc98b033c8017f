"""Deliverability in the party facts, segments and mailing exclusions reads the recorded suppression
decisions (``AddressStatus``), on every store: a campaign bounce takes a party out of a ``deliverable``
segment and into the mailing exclusions, a reinstatement brings it back, past moments read as they were,
and everything rebuilt from zero says the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from crmcore import CRM, BouncePolicy, DeliveryOutcome
from crmcore.models import MailingExclusion
from tests.integration._campaigns import SENT_AT, email_of, event, people, running_campaign

#: A code the default bounce policy cannot read (the report's kind, hard bounce, stands) and a tolerant
#: policy reads as a soft bounce: re-applied, it reinstates the address.
BLOCKED = "mailbox-blocked"
TOLERANT = BouncePolicy(vendor_codes={BLOCKED: DeliveryOutcome.SOFT_BOUNCE}, version=3)


def at(days: float) -> datetime:
    return SENT_AT + timedelta(days=days)


def bounce(crm: CRM, campaign: UUID, party: UUID, days: float, external_id: str = "h1") -> None:
    crm.ingest([event(external_id, campaign, party, "hard_bounce", days, raw_code=BLOCKED)],
               source="mailtool", actor="mail sync")


def members(crm: CRM, segment: UUID, **moment: Any) -> set[UUID]:
    return set(crm.segment_members(segment, **moment).ids)


@pytest.fixture
def setup(crm: CRM) -> tuple[CRM, UUID, UUID, list[UUID]]:
    """Three people with e-mail addresses, a segment of those deliverable by e-mail, and a campaign that
    sent its newsletter to all three."""
    ids = people(crm, 3)
    segment = crm.define_segment(name="Mailable", criteria={"deliverable": "email"}, actor="marketing",
                                 effective_at=at(-10))
    campaign = running_campaign(crm, ids, calls=())
    return crm, segment, campaign, ids


def test_a_campaign_hard_bounce_takes_the_party_out_of_a_deliverable_segment(setup: Any) -> None:
    crm, segment, campaign, (ada, bob, cy) = setup
    assert members(crm, segment) == {ada, bob, cy}
    bounce(crm, campaign, ada, 2)
    assert members(crm, segment) == {bob, cy}
    [left] = [c for c in crm.segment_changes(segment) if c.change == "left"]
    assert (left.party_id, left.at, left.cause) == (ada, at(2), "AddressStatus.Suppressed")
    facts = crm.party_facts()[str(ada)]
    assert facts["deliverable"] == {"email": False, "newsletter": False, "phone": True, "sms": True}
    assert facts["ledger_deliverable"]["email"] is True  # the party's own ledger has no report


def test_a_campaign_hard_bounce_puts_the_party_in_the_mailing_exclusions(setup: Any) -> None:
    crm, _, campaign, (ada, *_) = setup
    assert crm.mailing_exclusions() == []
    bounce(crm, campaign, ada, 2)
    assert crm.mailing_exclusions() == [MailingExclusion(party_id=ada, unsubscribed=[],
                                                         bounced=[email_of(0)])]


def test_a_reinstatement_brings_the_party_back_into_the_segment_and_off_the_exclusions(setup: Any) -> None:
    crm, segment, campaign, (ada, bob, cy) = setup
    bounce(crm, campaign, ada, 2)
    assert crm.reapply_bounce_policy(TOLERANT, actor="postmaster") == 1
    assert members(crm, segment) == {ada, bob, cy}
    entered = crm.segment_changes(segment)[-1]
    assert (entered.party_id, entered.change, entered.at, entered.cause) == (
        ada, "entered", at(2), "AddressStatus.Reinstated")  # from the suppression it overrules
    assert crm.party_facts()[str(ada)]["deliverable"]["email"] is True
    assert crm.mailing_exclusions() == []


def test_as_of_a_moment_before_the_bounce_the_party_was_deliverable(setup: Any) -> None:
    crm, segment, campaign, (ada, bob, cy) = setup
    before_ingest = datetime.now(UTC)
    bounce(crm, campaign, ada, 2)
    assert members(crm, segment, at=at(1)) == {ada, bob, cy}
    assert crm.party_facts(at=at(1))[str(ada)]["deliverable"]["email"] is True
    assert members(crm, segment, at=at(3)) == {bob, cy}
    assert crm.party_facts(at=at(3))[str(ada)]["deliverable"]["email"] is False
    # Known before the report came in, the address was deliverable then too.
    assert members(crm, segment, at=at(3), known_at=before_ingest) == {ada, bob, cy}
    assert {m.party_id for m in crm.evaluate({"deliverable": "newsletter"}, at=at(3),
                                             known_at=before_ingest)} == {ada, bob, cy}
    assert {m.party_id for m in crm.evaluate({"deliverable": "newsletter"}, at=at(3))} == {bob, cy}


def test_a_reinstatement_wins_over_the_party_ledger_for_the_same_bounces(crm: CRM) -> None:
    [ada] = people(crm, 1)
    segment = crm.define_segment(name="Mailable", criteria={"deliverable": "email"}, actor="marketing")
    now = datetime.now(UTC)
    for n, days in enumerate((3, 2, 1)):
        crm.record_delivery(ada, address=email_of(0), outcome="soft_bounce", actor="mail tool",
                            external_id=f"sb-{n}", effective_at=now - timedelta(days=days))
    facts = crm.party_facts()[str(ada)]
    assert (facts["ledger_deliverable"]["email"], facts["deliverable"]["email"]) == (False, False)
    assert members(crm, segment) == set()
    assert crm.mailing_exclusions()[0].bounced == [email_of(0)]
    crm.reapply_bounce_policy(BouncePolicy(soft_bounce_limit=5, version=3), actor="postmaster")
    facts = crm.party_facts()[str(ada)]
    assert (facts["ledger_deliverable"]["email"], facts["deliverable"]["email"]) == (False, True)
    assert members(crm, segment) == {ada}
    assert crm.mailing_exclusions() == []


def test_with_no_decision_recorded_the_party_ledger_decides(store_url: str) -> None:
    # A CRM whose policy tolerates three soft bounces records no decision; its ledger, read under the
    # default policy, still finds the address undeliverable.
    with CRM(store_url, bounce_policy=BouncePolicy(soft_bounce_limit=5, version=3)) as crm:
        [ada] = people(crm, 1)
        now = datetime.now(UTC)
        for n, days in enumerate((3, 2, 1)):
            crm.record_delivery(ada, address=email_of(0), outcome="soft_bounce", actor="mail tool",
                                external_id=f"sb-{n}", effective_at=now - timedelta(days=days))
        assert crm.suppressions() == []
        assert crm.party_facts()[str(ada)]["deliverable"]["email"] is False


def test_the_party_whose_primary_address_a_decision_suppresses_is_the_one_that_leaves(setup: Any) -> None:
    crm, segment, campaign, (ada, bob, cy) = setup
    bounce(crm, campaign, ada, 2)
    crm.update_identity(ada, emails=["ada.new@example.com"], actor="ops")
    assert members(crm, segment) == {ada, bob, cy}  # a new, unsuppressed primary address
    crm.update_identity(bob, emails=[email_of(0), email_of(1)], actor="ops")
    assert members(crm, segment) == {ada, cy}  # the suppressed address is now bob's primary one
    assert [m.party_id for m in crm.mailing_exclusions()] == [bob]
    crm.update_identity(bob, emails=[email_of(1), email_of(0)], actor="ops")
    assert members(crm, segment) == {ada, bob, cy}
    assert crm.mailing_exclusions() == []


def test_views_rebuilt_from_zero_say_what_the_ones_kept_up_to_date_say(setup: Any) -> None:
    crm, segment, campaign, (ada, bob, _) = setup
    bounce(crm, campaign, ada, 2)
    bounce(crm, campaign, bob, 4, external_id="h2")
    crm.reapply_bounce_policy(TOLERANT, actor="postmaster")
    bounce(crm, campaign, bob, 6, external_id="h3")  # read as a soft bounce now: one, not suppressed
    crm.ingest([event("c1", campaign, bob, "complaint", 7)], source="mailtool", actor="mail sync")
    kept = (crm.segment_members(segment), crm.segment_changes(segment), crm.party_facts(),
            crm.mailing_exclusions())
    assert bob not in kept[0].ids
    for view in ("segment_members", "party_facts", "address_decisions", "mailing_exclusions"):
        crm.rebuild_view(view)
    rebuilt = (crm.segment_members(segment), crm.segment_changes(segment), crm.party_facts(),
               crm.mailing_exclusions())
    assert rebuilt == kept


def test_a_decision_catch_up_reads_its_parties_in_a_few_batches(crm: CRM) -> None:
    ids = people(crm, 30)
    segment = crm.define_segment(name="Mailable", criteria={"deliverable": "email"}, actor="marketing")
    campaign = running_campaign(crm, ids, calls=())
    assert len(crm.segment_members(segment).ids) == 30
    storage = crm._segments.storage
    loads: list[int] = []
    original = storage.load

    def counted(view: str, keys: Any) -> Any:
        keys = list(keys)
        loads.append(len(keys))
        return original(view, keys)

    storage.load = counted  # type: ignore[method-assign]
    crm.ingest([event(f"h{n}", campaign, p, "hard_bounce", 2) for n, p in enumerate(ids[3:])],
               source="mailtool", actor="mail sync")
    loads.clear()
    assert set(crm.segment_members(segment).ids) == set(ids[:3])
    assert 0 < len(loads) <= 6, loads  # a few batch reads, not one per party
