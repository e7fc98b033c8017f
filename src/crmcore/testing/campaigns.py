"""Campaigns and engagement reports for tests, examples and benchmarks, built straight on the aggregates.

:func:`running_campaign` drafts, schedules, launches (audience given) and sends a campaign in one go;
:func:`engagement_report` builds one report with every kind's fields filled; :func:`simulate_engagement`
plans a seeded, plausible set of reports about a campaign's recipients (deliveries, opens, clicks, bounces,
unsubscribes, complaints, calls), late and out of order; :func:`store` saves them (and campaigns) in
large batches. The same seed always gives the same reports.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from crmcore.aggregates.campaign import Campaign
from crmcore.aggregates.engagement import Engagement
from crmcore.values import CallOutcome, CampaignChannel, EngagementKind, Money

if TYPE_CHECKING:
    from crmcore.application import CRM

__all__ = ["engagement_report", "running_campaign", "simulate_engagement", "store"]

#: The fields each kind of report has besides the common ones, with their defaults.
_KIND_FIELDS: dict[EngagementKind, dict[str, Any]] = {
    EngagementKind.CLICKED: {"link": None},
    EngagementKind.SOFT_BOUNCE: {"raw_code": None},
    EngagementKind.HARD_BOUNCE: {"raw_code": None},
    EngagementKind.CALLED: {"operator": "operator", "outcome": CallOutcome.REACHED.value, "notes": None,
                            "call_back_on": None, "opportunity_id": None},
}


def running_campaign(
    *,
    newsletter: Sequence[UUID] = (),
    telemarketing: Sequence[UUID] = (),
    at: datetime,
    sent: Sequence[UUID] | None = None,
    name: str = "Campaign",
    budget: Money | None = None,
    cost: Money | None = None,
    segment_id: UUID | None = None,
    actor: str = "marketing",
    addresses: Mapping[UUID, str] | None = None,
) -> Campaign:
    """A campaign drafted, scheduled and launched at ``at`` to ``newsletter`` and/or ``telemarketing``
    recipients (its channels are those given), its newsletter ``sent`` (default: every newsletter
    recipient) in one wave at ``at``, and ``cost`` recorded. A newsletter recipient's address is its entry
    in ``addresses``, else ``<party id>@example.com``. Not saved."""
    email = {**{p: f"{p}@example.com" for p in newsletter}, **(addresses or {})}
    channels = [c for c, given in ((CampaignChannel.NEWSLETTER, newsletter),
                                   (CampaignChannel.TELEMARKETING, telemarketing)) if given]
    campaign = Campaign.draft(name=name, channels=channels or [CampaignChannel.NEWSLETTER],
                              segment_id=segment_id or uuid4(), budget=budget or Money.of("1000", "EUR"),
                              actor=actor, effective_at=at)
    campaign.schedule(start_at=at, actor=actor, effective_at=at)
    recipients = {CampaignChannel.NEWSLETTER.value: [[str(p), email[p]] for p in newsletter],
                  CampaignChannel.TELEMARKETING.value: [[str(p), "+39 02 0000 0000"] for p in telemarketing]}
    campaign.launch(audience_at=at, recipients={c: recipients[c] for c in campaign.channels}, exclusions=[],
                    policy={"name": "audience", "version": 1}, actor=actor, effective_at=at)
    released = list(newsletter) if sent is None else list(sent)
    if released:
        campaign.send(recipients=[[str(p), email.get(p, f"{p}@example.com")] for p in released], skipped=[],
                      actor=actor, effective_at=at)
    if cost is not None:
        campaign.record_cost(amount=cost, actor=actor, effective_at=at)
    return campaign


def engagement_report(
    kind: EngagementKind | str,
    *,
    campaign_id: UUID,
    party_id: UUID,
    at: datetime,
    external_id: str | None = None,
    source: str = "mailer",
    channel: str | None = None,
    address: str | None = None,
    actor: str = "mailer",
    **fields: Any,
) -> Engagement:
    """One report of ``kind`` about ``party_id`` in ``campaign_id``, effective ``at``; fields the kind has
    and ``fields`` does not give take their defaults (no link, no raw code, a call ``reached``)."""
    chosen = EngagementKind(kind)
    if channel is None:
        channel = (CampaignChannel.TELEMARKETING if chosen is EngagementKind.CALLED
                   else CampaignChannel.NEWSLETTER).value
    return Engagement.report(
        chosen, source=source, external_id=external_id or uuid4().hex, campaign_id=campaign_id,
        party_id=party_id, channel=channel, address=address, actor=actor, effective_at=at,
        **{**_KIND_FIELDS.get(chosen, {}), **fields},
    )


def simulate_engagement(
    campaign_id: UUID,
    sent: Sequence[UUID],
    *,
    start: datetime,
    days: int = 30,
    seed: int = 0,
    called: Sequence[UUID] = (),
    operators: Sequence[str] = ("anna", "bruno", "carla"),
    links: Sequence[str] = ("https://example.com/offer", "https://example.com/shop", "https://example.com/"),
    source: str = "mailer",
) -> list[Engagement]:
    """Seeded reports about a campaign's ``sent`` newsletter recipients and ``called`` telemarketing ones,
    effective within ``days`` of ``start``, in shuffled order. About nine in ten recipients are delivered
    (the others bounce, mostly soft), two in five of those open (1 to 3 times), a third of the openers
    click; a few unsubscribe or complain. Each called party gets one to three calls."""
    rng = random.Random(seed)
    span = days * 86400
    reports: list[Engagement] = []
    number = 0

    def add(kind: EngagementKind, party: UUID, at: datetime, **fields: Any) -> None:
        nonlocal number
        number += 1
        reports.append(engagement_report(kind, campaign_id=campaign_id, party_id=party, at=at, source=source,
                                         external_id=f"{campaign_id}-{number}", **fields))

    for party in sent:
        sent_at = start + timedelta(seconds=rng.randrange(span // 10 or 1))
        roll = rng.random()
        if roll < 0.07:
            add(EngagementKind.SOFT_BOUNCE, party, sent_at, raw_code="421 4.2.2")
            continue
        if roll < 0.1:
            add(EngagementKind.HARD_BOUNCE, party, sent_at, raw_code="550 5.1.1")
            continue
        add(EngagementKind.DELIVERED, party, sent_at)
        if rng.random() < 0.4:
            for _ in range(rng.randint(1, 3)):
                add(EngagementKind.OPENED, party, _later(rng, sent_at, start, span))
            if rng.random() < 0.33:
                add(EngagementKind.CLICKED, party, _later(rng, sent_at, start, span), link=rng.choice(links))
        roll = rng.random()
        if roll < 0.02:
            add(EngagementKind.UNSUBSCRIBED, party, _later(rng, sent_at, start, span))
        elif roll < 0.025:
            add(EngagementKind.COMPLAINT, party, _later(rng, sent_at, start, span))
    outcomes = [o.value for o in CallOutcome]
    for party in called:
        at = start + timedelta(seconds=rng.randrange(span))
        for _ in range(rng.randint(1, 3)):
            outcome = rng.choice(outcomes)
            add(EngagementKind.CALLED, party, at, operator=rng.choice(operators), outcome=outcome,
                call_back_on=(at + timedelta(days=3)).date().isoformat() if outcome == "call_back" else None)
            at = _later(rng, at, start, span)
    rng.shuffle(reports)
    return reports


def _later(rng: random.Random, after: datetime, start: datetime, span: int) -> datetime:
    """A moment after ``after`` and within ``span`` seconds of ``start`` (``after`` when none is left)."""
    left = int((start + timedelta(seconds=span) - after).total_seconds())
    return after + timedelta(seconds=rng.randrange(left) if left > 0 else 0)


def store(crm: CRM, aggregates: Iterable[Aggregate], *, batch_size: int = 5000) -> int:
    """Save new ``aggregates`` (a campaign, reports), ``batch_size`` per transaction; returns how many."""
    batch: list[Aggregate] = []
    saved = 0
    for aggregate in aggregates:
        batch.append(aggregate)
        if len(batch) >= batch_size:
            crm._save(*batch)
            saved += len(batch)
            batch = []
    if batch:
        crm._save(*batch)
        saved += len(batch)
    return saved
