"""The Party aggregate's consent and delivery ledgers, with no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crmcore import EffectiveTimeOutOfOrder, InvalidInput, PartyKind, Stage
from crmcore.aggregates import Party
from crmcore.policies.consent import BouncePolicy, ConsentChannel, ConsentStatus, DeliveryOutcome
from crmcore.projections import MailingExclusionsView, fold

T0 = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def person() -> Party:
    party = Party.register(kind=PartyKind.PERSON, stage=Stage.LEAD, name="Ada", actor="u", effective_at=T0)
    party.collect_events()
    return party


def replay(events: list[Party.Event]) -> Party:
    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert isinstance(rebuilt, Party)
    return rebuilt


def subscribe(party: Party, **kw: object) -> bool:
    fields: dict[str, object] = {"channel": "email", "source": "web form", "lawful_basis": "consent",
                                 "actor": "u", "effective_at": T0}
    return party.subscribe_to(**{**fields, **kw})  # type: ignore[arg-type]


def test_a_subscription_is_a_ledger_entry_with_its_times_position_and_party() -> None:
    party = person()
    assert subscribe(party, evidence="ticked the box", external_id="form-1")
    [entry] = party.consents
    assert entry["party_id"] == party.id
    assert entry["version"] == 2
    assert entry["status"] == "subscribed"
    assert entry["channel"] == "email"
    assert entry["lawful_basis"] == "consent"
    assert entry["evidence"] == "ticked the box"
    assert entry["effective_at"] == T0
    assert entry["recorded_at"] == party.modified_on
    assert party.state()["consent"] == {ConsentChannel.EMAIL: ConsentStatus.SUBSCRIBED}


def test_a_back_dated_entry_is_accepted_and_does_not_move_the_last_effective_time_back() -> None:
    party = person()
    party.assign(owner="rep", actor="u", effective_at=T0 + DAY)
    assert party.unsubscribe_from(channel="email", source="mail tool", actor="u", effective_at=T0 - DAY)
    assert party.last_effective_at == T0 + DAY
    with pytest.raises(EffectiveTimeOutOfOrder):  # lifecycle events still keep their order
        party.assign(owner="other", actor="u", effective_at=T0)


def test_an_entry_later_than_every_other_event_moves_the_last_effective_time_forward() -> None:
    party = person()
    subscribe(party, effective_at=T0 + DAY)
    assert party.last_effective_at == T0 + DAY


def test_an_entry_whose_external_id_is_known_records_nothing() -> None:
    party = person()
    assert subscribe(party, external_id="evt-1")
    party.collect_events()
    assert not subscribe(party, external_id="evt-1", effective_at=T0 + DAY, lawful_basis="contract")
    assert not party.unsubscribe_from(channel="email", source="x", actor="u", external_id="evt-1")
    assert party.collect_events() == []
    assert len(party.consents) == 1


def test_one_external_event_may_speak_of_several_channels() -> None:
    party = person()
    assert party.unsubscribe_from(channel="email", source="x", actor="u", external_id="evt-1")
    assert party.unsubscribe_from(channel="sms", source="x", actor="u", external_id="evt-1")
    assert not party.unsubscribe_from(channel="sms", source="x", actor="u", external_id="evt-1")


@pytest.mark.parametrize(
    "bad",
    [
        {"channel": "fax"},
        {"lawful_basis": "because"},
        {"lawful_basis": None},
        {"source": ""},
        {"source": "x" * 201},
        {"evidence": "x" * 2001},
        {"effective_at": datetime(2024, 1, 1)},
        {"effective_at": datetime.now(UTC) + DAY},
    ],
)
def test_a_subscription_with_bad_input_is_refused_and_records_nothing(bad: dict[str, object]) -> None:
    party = person()
    with pytest.raises(InvalidInput):
        subscribe(party, **bad)
    assert party.collect_events() == []
    assert party.consents == []


def test_a_delivery_keeps_the_address_its_key_and_the_raw_code() -> None:
    party = person()
    assert party.record_delivery(address="Ada.L@Example.COM", raw_code="550 5.1.1", actor="mailer",
                                 effective_at=T0)
    [entry] = party.deliveries
    assert entry["address"] == "Ada.L@example.com"
    assert entry["address_key"] == "ada.l@example.com"
    assert entry["address_kind"] == "email"
    assert entry["outcome"] == entry["classified_as"] == "hard_bounce"
    assert entry["raw_code"] == "550 5.1.1"


def test_a_phone_number_without_a_country_code_is_read_as_italian() -> None:
    party = person()
    party.record_delivery(address="06 1234 5678", outcome="delivered", actor="sms tool", effective_at=T0)
    assert party.deliveries[0]["address_key"] == "+390612345678"
    assert party.deliveries[0]["address_kind"] == "phone"


def test_a_vendor_code_is_classified_by_the_policy_given() -> None:
    party = person()
    policy = BouncePolicy(vendor_codes={"mailbox_full": DeliveryOutcome.SOFT_BOUNCE})
    party.record_delivery(address="ada@example.com", raw_code="mailbox_full", actor="m", policy=policy)
    assert party.deliveries[0]["outcome"] == "soft_bounce"


@pytest.mark.parametrize(
    "bad",
    [
        {"address": "not an address"},
        {"address": "ada@"},
        {"raw_code": "mailbox_full"},  # unknown code and no outcome
        {"raw_code": None},  # neither outcome nor code
        {"raw_code": "550", "outcome": "delivered"},  # they disagree
        {"outcome": "lost"},
    ],
)
def test_a_delivery_with_bad_input_is_refused_and_records_nothing(bad: dict[str, object]) -> None:
    party = person()
    fields: dict[str, object] = {"address": "ada@example.com", "raw_code": "550", "actor": "m"}
    with pytest.raises(InvalidInput):
        party.record_delivery(**{**fields, **bad})  # type: ignore[arg-type]
    assert party.collect_events() == []
    assert party.deliveries == []


def test_a_delivery_whose_external_id_is_known_records_nothing() -> None:
    party = person()
    assert party.record_delivery(address="ada@example.com", outcome="delivered", actor="m", external_id="m1")
    assert not party.record_delivery(address="ada@example.com", raw_code="550", actor="m", external_id="m1")
    assert len(party.deliveries) == 1


def test_replaying_the_events_rebuilds_the_ledgers() -> None:
    party = Party.register(kind=PartyKind.PERSON, stage=Stage.LEAD, name="Ada", actor="u", effective_at=T0)
    subscribe(party, effective_at=T0 + DAY)
    party.unsubscribe_from(channel="newsletter", source="mail tool", actor="u", effective_at=T0 - DAY)
    party.record_delivery(address="ada@example.com", raw_code="421", actor="m", effective_at=T0)
    rebuilt = replay(party.collect_events())
    assert rebuilt.consents == party.consents
    assert rebuilt.deliveries == party.deliveries
    assert rebuilt.state() == party.state()


def test_the_mailing_exclusions_fold_reads_reports_in_effective_order_and_pages_alike() -> None:
    party = Party.register(kind=PartyKind.PERSON, stage=Stage.LEAD, name="Ada", actor="u", effective_at=T0)
    subscribe(party, channel="newsletter", effective_at=T0 + 3 * DAY)
    party.unsubscribe_from(channel="newsletter", source="tool", actor="u", effective_at=T0 + DAY)
    for hours in range(3):  # three soft bounces: the default policy's limit
        party.record_delivery(address="ada@example.com", raw_code="421", actor="m",
                              effective_at=T0 + 2 * DAY + hours * timedelta(hours=1))
    party.record_delivery(address="ada@example.com", raw_code="250", actor="m", effective_at=T0 + DAY)
    events = party.collect_events()
    whole = fold(MailingExclusionsView(), events)
    assert fold(MailingExclusionsView(), events[3:], fold(MailingExclusionsView(), events[:3])) == whole
    [row] = whole.values()
    assert (row["unsubscribed"], row["bounced"], row["excluded"]) == ([], ["ada@example.com"], True)
