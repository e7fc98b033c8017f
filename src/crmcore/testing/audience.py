"""A seeded synthetic campaign audience, and what mail tools and call centres report about it.

:func:`seed_audience` registers parties (persons at every stage, with an e-mail address and a phone
number) and records their newsletter and phone consent: most subscribed, some unsubscribed, some never
asked. :func:`newsletter_reports` plays what a mail tool reports after a newsletter wave - deliveries,
opens, clicks, soft and hard bounces, unsubscribes, complaints - late, repeated and out of order, as
provider events ready for ``crm.ingest``; :func:`call_reports` does the same for a call centre working a
call list. The same seed always gives the same parties and the same reports. The default rates are the
practitioners' example of DOMAIN.md: about 30 % of a list opens and about 8 % clicks.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from crmcore.application import CRM

__all__ = ["EmailRates", "call_reports", "newsletter_reports", "seed_audience"]

_GIVEN = ("Ada", "Bruno", "Carla", "Dario", "Elena", "Fabio", "Giulia", "Luca", "Marta", "Nicola", "Olga",
          "Paolo", "Rita", "Sergio", "Tina", "Ugo", "Vera", "Walter", "Zoe", "Irene")
_FAMILY = ("Rossi", "Bianchi", "Verdi", "Neri", "Gallo", "Costa", "Fontana", "Conti", "Greco", "Marino",
           "Ricci", "Bruno", "Romano", "Colombo", "Moretti", "Barbieri", "Lombardi", "Giordano", "Rinaldi")
_REGIONS = ("North", "Centre", "South")
_LINKS = ("https://example.com/offer", "https://example.com/webinar", "https://example.com/pricing")


def seed_audience(
    crm: CRM,
    count: int,
    *,
    seed: int = 0,
    start: datetime,
    newsletter_share: float = 0.85,
    phone_share: float = 0.6,
    unsubscribed_share: float = 0.05,
    actor: str = "simulation",
) -> list[UUID]:
    """Register ``count`` persons (leads and customers, with a ``region`` profile trait) at ``start``
    and record consent a day later: ``newsletter_share`` subscribed to the newsletter, ``phone_share`` to
    phone calls, ``unsubscribed_share`` of the subscribers unsubscribing again after a week. Returns the ids.
    """
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
        rows.append({
            "kind": "person", "given_name": given, "family_name": family,
            "stage": rng.choices(("lead", "customer"), (70, 30))[0],
            "emails": [f"{given}.{family}.{seed}.{index}@example.com".lower()],
            "phones": [f"+39 06 {4000000 + seed * 100003 + index:08d}"],
            "profile": {"region": rng.choice(_REGIONS)},
            "owner": rng.choice(("giulia", "marco")), "actor": actor, "effective_at": start,
        })
    ids = crm.bulk_register(rows)
    consented = start + timedelta(days=1)
    for party_id in ids:
        for channel, share in (("newsletter", newsletter_share), ("phone", phone_share)):
            if rng.random() >= share:
                continue
            crm.subscribe_to(party_id, channel=channel, source="web form", lawful_basis="consent",
                             actor=actor, effective_at=consented)
            if rng.random() < unsubscribed_share:
                crm.unsubscribe_from(party_id, channel=channel, source="preference centre", actor=actor,
                                     effective_at=consented + timedelta(days=7))
    return ids


@dataclass(frozen=True)
class EmailRates:
    """The share of a wave's recipients each thing happens to (DOMAIN.md's example by default)."""

    hard_bounce: float = 0.02
    soft_bounce: float = 0.03
    open: float = 0.30
    click: float = 0.08
    unsubscribe: float = 0.005
    complaint: float = 0.001
    #: how many of the reports arrive a second time
    duplicates: float = 0.10


def newsletter_reports(
    campaign_id: UUID,
    recipients: Sequence[tuple[UUID, str]],
    *,
    sent_at: datetime,
    seed: int = 0,
    rates: EmailRates | None = None,
    prefix: str = "mt",
) -> list[dict[str, Any]]:
    """What a mail tool reports about a wave sent at ``sent_at`` to ``recipients`` (party, address): each
    recipient bounces (hard or soft) or is delivered; delivered ones may open (a few opening again), click
    (having opened), unsubscribe or complain. Reports come within two weeks, shuffled, ``rates.duplicates``
    of them twice. Each is a provider event for ``crm.ingest``."""
    rng = random.Random(seed)
    rates = rates or EmailRates()
    reports: list[dict[str, Any]] = []

    def report(kind: str, party_id: UUID, address: str, after_hours: float, **extra: Any) -> None:
        reports.append({
            "external_id": f"{prefix}-{campaign_id.hex[:8]}-{len(reports)}",
            "campaign_id": str(campaign_id), "party_id": str(party_id), "address": address, "kind": kind,
            "occurred_at": sent_at + timedelta(hours=after_hours), **extra,
        })

    for party_id, address in recipients:
        draw = rng.random()
        if draw < rates.hard_bounce:
            report("hard_bounce", party_id, address, rng.uniform(0, 1), raw_code="550 5.1.1 user unknown")
            continue
        if draw < rates.hard_bounce + rates.soft_bounce:
            report("soft_bounce", party_id, address, rng.uniform(0, 6), raw_code="452 4.2.2 mailbox full")
            continue
        report("delivered", party_id, address, rng.uniform(0, 1))
        opened = rng.random() < rates.open / (1 - rates.hard_bounce - rates.soft_bounce)
        if opened:
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                report("opened", party_id, address, rng.uniform(1, 240))
            if rng.random() < rates.click / rates.open:
                report("clicked", party_id, address, rng.uniform(1, 240), link=rng.choice(_LINKS))
        if rng.random() < rates.unsubscribe:
            report("unsubscribed", party_id, address, rng.uniform(1, 300))
        elif rng.random() < rates.complaint:
            report("complaint", party_id, address, rng.uniform(1, 300))
    repeated = [dict(r) for r in reports if rng.random() < rates.duplicates]
    out = reports + repeated
    rng.shuffle(out)
    return out


def call_reports(
    campaign_id: UUID,
    call_list: Sequence[tuple[UUID, str]],
    *,
    start: datetime,
    seed: int = 0,
    prefix: str = "cc",
) -> list[dict[str, Any]]:
    """What a call centre reports after working ``call_list`` (party, operator) from ``start``: each party
    is called once or twice (a no-answer is tried again) by its operator, outcomes drawn with the odds of
    a warm list. Provider events of kind ``called`` for ``crm.ingest``."""
    rng = random.Random(seed)
    odds = {"reached": 30, "no_answer": 25, "wrong_number": 5, "call_back": 10, "interested": 12,
            "not_interested": 18}
    reports: list[dict[str, Any]] = []
    for party_id, operator in call_list:
        at = start + timedelta(hours=rng.uniform(1, 100))
        for _ in range(2):
            outcome = rng.choices(list(odds), list(odds.values()))[0]
            extra: dict[str, Any] = {}
            if outcome == "call_back":
                extra["call_back_on"] = (at + timedelta(days=7)).date().isoformat()
            reports.append({
                "external_id": f"{prefix}-{campaign_id.hex[:8]}-{len(reports)}",
                "campaign_id": str(campaign_id), "party_id": str(party_id), "kind": "called",
                "operator": operator, "outcome": outcome,
                "occurred_at": at, **extra,
            })
            if outcome != "no_answer":
                break
            at += timedelta(days=1)
    return reports
