"""The consent and bounce policy on its own: pure functions over plain ledger entries, no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from crmcore.identity import EmailAddress, PhoneNumber
from crmcore.policies.consent import (
    BouncePolicy,
    ConsentChannel,
    ConsentStatus,
    DeliveryOutcome,
    consent_at,
    current_consent,
    deliverability_at,
    may_contact,
)

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PARTY = uuid4()
ADA = EmailAddress.parse("ada@example.com")


def consent(
    status: str, channel: str = "email", *, at: datetime = T0, version: int = 2,
    recorded_at: datetime | None = None, source: str = "web form",
) -> dict[str, Any]:
    return {
        "party_id": PARTY, "version": version, "status": status, "channel": channel, "effective_at": at,
        "recorded_at": recorded_at or at, "actor": "u", "source": source,
        "lawful_basis": "consent" if status == "subscribed" else None, "evidence": None, "external_id": None,
    }


def delivery(
    outcome: str, *, at: datetime = T0, version: int = 2, raw_code: str | None = None,
    key: str = "ada@example.com",
) -> dict[str, Any]:
    return {
        "party_id": PARTY, "version": version, "address": key, "address_key": key, "address_kind": "email",
        "outcome": outcome, "raw_code": raw_code, "classified_as": None, "effective_at": at,
        "recorded_at": at, "actor": "mailer", "external_id": None,
    }


# -- classification -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("550", DeliveryOutcome.HARD_BOUNCE),
        ("5.1.1", DeliveryOutcome.HARD_BOUNCE),
        ("550 5.1.1 user unknown", DeliveryOutcome.HARD_BOUNCE),
        ("421", DeliveryOutcome.SOFT_BOUNCE),
        ("4.2.2", DeliveryOutcome.SOFT_BOUNCE),
        ("452 4.2.2 mailbox full", DeliveryOutcome.SOFT_BOUNCE),
        ("250", DeliveryOutcome.DELIVERED),
        ("2.0.0", DeliveryOutcome.DELIVERED),
    ],
)
def test_smtp_codes_are_read_by_their_class_digit(code: str, outcome: DeliveryOutcome) -> None:
    assert BouncePolicy().classify(code) is outcome


@pytest.mark.parametrize("code", ["mailbox_full", "3.1.1", "6.0.0", "55", "5501", "", "   "])
def test_codes_that_are_neither_smtp_nor_a_known_vendor_code_are_not_classified(code: str) -> None:
    assert BouncePolicy().classify(code) is None


def test_vendor_codes_are_read_first_and_ignoring_case() -> None:
    policy = BouncePolicy(vendor_codes={"Mailbox_Full": DeliveryOutcome.SOFT_BOUNCE, "550": "soft_bounce"})
    assert policy.classify("mailbox_full") is DeliveryOutcome.SOFT_BOUNCE
    assert policy.classify("550") is DeliveryOutcome.SOFT_BOUNCE


def test_a_soft_bounce_limit_below_one_is_refused() -> None:
    with pytest.raises(ValidationError):
        BouncePolicy(soft_bounce_limit=0)


# -- consent ------------------------------------------------------------------------------------------


def test_the_last_consent_entry_at_or_before_the_moment_decides() -> None:
    entries = [consent("subscribed", at=T0), consent("unsubscribed", at=T0 + 2 * HOUR, version=3)]
    assert consent_at(entries, ConsentChannel.EMAIL, T0 - HOUR) is None
    assert consent_at(entries, ConsentChannel.EMAIL, T0 + HOUR).status is ConsentStatus.SUBSCRIBED  # type: ignore[union-attr]
    assert consent_at(entries, ConsentChannel.EMAIL, T0 + 2 * HOUR).status is ConsentStatus.UNSUBSCRIBED  # type: ignore[union-attr]


def test_a_back_dated_entry_recorded_later_is_read_at_its_effective_time() -> None:
    late = consent("unsubscribed", at=T0 - HOUR, version=3, recorded_at=T0 + 5 * HOUR)
    entries = [consent("subscribed", at=T0), late]
    assert consent_at(entries, ConsentChannel.EMAIL, T0 - HOUR).status is ConsentStatus.UNSUBSCRIBED  # type: ignore[union-attr]
    assert consent_at(entries, ConsentChannel.EMAIL).status is ConsentStatus.SUBSCRIBED  # type: ignore[union-attr]


def test_entries_effective_at_the_same_moment_are_read_in_recording_order() -> None:
    first = consent("unsubscribed", at=T0, version=2, recorded_at=T0 + HOUR)
    second = consent("subscribed", at=T0, version=3, recorded_at=T0 + HOUR)
    assert consent_at([second, first], ConsentChannel.EMAIL, T0).status is ConsentStatus.SUBSCRIBED  # type: ignore[union-attr]


def test_each_channel_has_its_own_consent() -> None:
    entries = [consent("subscribed", "newsletter"), consent("unsubscribed", "sms", version=3)]
    assert consent_at(entries, ConsentChannel.EMAIL) is None
    assert current_consent(entries) == {
        ConsentChannel.NEWSLETTER: ConsentStatus.SUBSCRIBED, ConsentChannel.SMS: ConsentStatus.UNSUBSCRIBED,
    }


# -- deliverability -----------------------------------------------------------------------------------


def test_an_address_with_no_reports_is_deliverable() -> None:
    state = deliverability_at([], "ada@example.com", T0)
    assert state.deliverable
    assert state.last is None


def test_a_hard_bounce_makes_the_address_undeliverable_from_its_effective_time() -> None:
    entries = [delivery("delivered", at=T0), delivery("hard_bounce", at=T0 + HOUR, version=3)]
    assert deliverability_at(entries, "ada@example.com", T0 + 30 * timedelta(minutes=1)).deliverable
    state = deliverability_at(entries, "ada@example.com", T0 + HOUR)
    assert not state.deliverable
    assert state.hard_bounced


def test_a_delivery_after_a_hard_bounce_clears_it_unless_the_policy_says_otherwise() -> None:
    entries = [delivery("hard_bounce", at=T0), delivery("delivered", at=T0 + HOUR, version=3)]
    assert deliverability_at(entries, "ada@example.com").deliverable
    strict = BouncePolicy(delivery_clears_hard_bounce=False)
    assert not deliverability_at(entries, "ada@example.com", policy=strict).deliverable


def test_by_default_three_soft_bounces_since_the_last_delivery_exclude_the_address() -> None:
    entries = [delivery("soft_bounce", at=T0 + n * HOUR, version=2 + n) for n in range(3)]
    assert deliverability_at(entries[:2], "ada@example.com").deliverable
    assert not deliverability_at(entries, "ada@example.com").deliverable
    entries.append(delivery("delivered", at=T0 + 3 * HOUR, version=5))
    assert deliverability_at(entries, "ada@example.com").deliverable


def test_a_policy_of_one_soft_bounce_excludes_at_the_first() -> None:
    entries = [delivery("soft_bounce", at=T0)]
    strict = BouncePolicy(soft_bounce_limit=1)
    assert not deliverability_at(entries, "ada@example.com", policy=strict).deliverable


def test_a_soft_bounce_limit_tolerates_fewer_soft_bounces() -> None:
    policy = BouncePolicy(soft_bounce_limit=3)
    entries = [delivery("soft_bounce", at=T0 + n * HOUR, version=2 + n) for n in range(3)]
    assert deliverability_at(entries[:2], "ada@example.com", policy=policy).deliverable
    state = deliverability_at(entries, "ada@example.com", policy=policy)
    assert not state.deliverable
    assert state.soft_bounces == 3


def test_raw_codes_are_read_again_under_another_policy() -> None:
    entries = [delivery("hard_bounce", raw_code="550")]
    assert not deliverability_at(entries, "ada@example.com").deliverable
    lenient = BouncePolicy(vendor_codes={"550": DeliveryOutcome.SOFT_BOUNCE}, soft_bounce_limit=2)
    assert deliverability_at(entries, "ada@example.com", policy=lenient).deliverable


def test_an_entry_without_a_readable_code_keeps_its_recorded_outcome() -> None:
    entries = [delivery("hard_bounce", raw_code="weird")]
    assert not deliverability_at(entries, "ada@example.com").deliverable


def test_reports_for_another_address_do_not_count() -> None:
    entries = [delivery("hard_bounce", key="bob@example.com")]
    assert deliverability_at(entries, "ada@example.com").deliverable


# -- may_contact ---------------------------------------------------------------------------------------


def test_a_subscribed_party_with_a_deliverable_address_may_be_contacted() -> None:
    decision = may_contact([consent("subscribed")], [], ConsentChannel.EMAIL, T0, address=ADA)
    assert decision.allowed
    assert decision.consent is not None
    assert decision.address == "ada@example.com"
    assert "lawful basis: consent" in decision.reason


def test_no_consent_means_no_contact() -> None:
    decision = may_contact([], [], ConsentChannel.EMAIL, T0, address=ADA)
    assert not decision.allowed
    assert decision.reason == "no consent recorded for email"


def test_an_unsubscribed_party_may_not_be_contacted_and_the_entry_is_named() -> None:
    entries = [consent("subscribed"), consent("unsubscribed", at=T0 + HOUR, version=3, source="mail tool")]
    decision = may_contact(entries, [], ConsentChannel.EMAIL, T0 + HOUR, address=ADA)
    assert not decision.allowed
    assert decision.consent is not None
    assert decision.consent.version == 3
    assert "mail tool" in decision.reason


def test_no_address_for_the_channel_means_no_contact() -> None:
    decision = may_contact([consent("subscribed", "sms")], [], ConsentChannel.SMS, T0, address=None)
    assert not decision.allowed
    assert decision.reason == "no phone number to reach the party by sms"


def test_an_address_of_the_wrong_kind_for_the_channel_means_no_contact() -> None:
    phone = PhoneNumber.parse("+39 06 1234 5678")
    decision = may_contact([consent("subscribed")], [], ConsentChannel.NEWSLETTER, T0, address=phone)
    assert not decision.allowed
    decision = may_contact([consent("subscribed", "newsletter")], [], ConsentChannel.NEWSLETTER, T0,
                           address=phone)
    assert not decision.allowed
    assert "not an e-mail address" in decision.reason


def test_a_bounced_address_means_no_contact_even_when_subscribed() -> None:
    decision = may_contact([consent("subscribed")], [delivery("hard_bounce", at=T0)], ConsentChannel.EMAIL,
                           T0 + HOUR, address=ADA)
    assert not decision.allowed
    assert decision.deliverability is not None
    assert decision.deliverability.hard_bounced
    assert "hard-bounced" in decision.reason
