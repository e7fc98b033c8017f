"""A running campaign for the engagement tests, built directly with the ``Campaign`` aggregate.

The campaign commands are written elsewhere; these tests need only a campaign that was launched with a
frozen audience and sent a newsletter wave (and, if asked, has a telemarketing call list).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from crmcore import CRM
from crmcore.aggregates.campaign import Campaign
from crmcore.values import Money

#: When the test campaigns were sent: early enough for every report of the tests to come after.
SENT_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=200)


def email_of(n: int) -> str:
    return f"person{n}@example.com"


def phone_of(n: int) -> str:
    return f"+39061234{n:04d}"


def people(crm: CRM, count: int) -> list[UUID]:
    """``count`` people, each with an e-mail address and a phone number, subscribed to the newsletter."""
    ids = []
    for n in range(count):
        party = crm.register_party(kind="person", name=f"Person {n}", emails=[email_of(n)],
                                   phones=[phone_of(n)], actor="setup",
                                   effective_at=SENT_AT - timedelta(days=30))
        crm.subscribe_to(party, channel="newsletter", source="form", lawful_basis="consent", actor="setup",
                         effective_at=SENT_AT - timedelta(days=29))
        crm.subscribe_to(party, channel="phone", source="form", lawful_basis="consent", actor="setup",
                         effective_at=SENT_AT - timedelta(days=29))
        ids.append(party)
    return ids


def running_campaign(
    crm: CRM,
    recipients: Sequence[UUID],
    *,
    sent: Sequence[UUID] | None = None,
    calls: Sequence[UUID] = (),
    channels: Sequence[str] = ("newsletter", "telemarketing"),
    at: datetime = SENT_AT,
) -> UUID:
    """A campaign launched with ``recipients`` (addresses ``email_of(n)`` by position) whose newsletter wave
    went to ``sent`` (default: all of them), with ``calls`` on its call list; saved, its id returned."""
    numbers = {p: n for n, p in enumerate(recipients)}
    campaign = Campaign.draft(name="Spring offer", channels=list(channels), segment_id=uuid4(),
                              budget=Money(amount="1000", currency="EUR"), actor="marketing",
                              effective_at=at - timedelta(days=3))
    campaign.schedule(start_at=at, actor="marketing", effective_at=at - timedelta(days=2))
    audience: dict[str, list[list[str]]] = {}
    if "newsletter" in channels:
        audience["newsletter"] = [[str(p), email_of(numbers[p])] for p in recipients]
    if "telemarketing" in channels:
        audience["telemarketing"] = [[str(p), phone_of(numbers[p])] for p in calls]
    campaign.launch(audience_at=at - timedelta(days=1), recipients=audience, exclusions=[],
                    policy={"name": "audience", "version": 1}, actor="marketing",
                    effective_at=at - timedelta(days=1))
    if "newsletter" in channels:
        wave = [[str(p), email_of(numbers[p])] for p in (recipients if sent is None else sent)]
        campaign.send(recipients=wave, skipped=[], actor="marketing", effective_at=at)
    crm._save(campaign)
    return campaign.id


def event(
    external_id: str, campaign: UUID, party: UUID | None, kind: str, days: float, **extra: Any,
) -> dict[str, Any]:
    """A provider event ``days`` after the campaign was sent."""
    fields: dict[str, Any] = {"external_id": external_id, "campaign_id": campaign, "kind": kind,
                              "occurred_at": SENT_AT + timedelta(days=days), **extra}
    if party is not None:
        fields["party_id"] = party
    return fields
