"""``mailing_exclusions``: parties that must get no mailings (unsubscribed, or a bounced e-mail address).

One row per party with consent or delivery reports. Reports arrive late and out of order, so the row keeps
what it needs to read them in effective-time order: the deciding entry of each mailing channel and every
report on each e-mail address (its outcome and raw code). Bounces are read under the default
:class:`~crmcore.policies.consent.BouncePolicy`; ask :meth:`crmcore.CRM.deliverability` for another policy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, cast

from eventsourcing.domain import DomainEventProtocol

from crmcore.aggregates.party import Party
from crmcore.policies.consent import BouncePolicy, undeliverable
from crmcore.projections.base import Row, View
from crmcore.values import AddressKind, ConsentChannel, ConsentStatus

__all__ = ["MAILING_CHANNELS", "MailingExclusionsView"]

#: The channels a mailing goes out on.
MAILING_CHANNELS = (ConsentChannel.EMAIL.value, ConsentChannel.NEWSLETTER.value)

_DEFAULT_POLICY = BouncePolicy()


def _order(entry: Row) -> tuple[datetime, datetime, int]:
    effective, recorded, version = entry["order"]
    return datetime.fromisoformat(effective), datetime.fromisoformat(recorded), int(version)


class MailingExclusionsView(View):
    """Parties unsubscribed from e-mail or the newsletter, or whose e-mail address bounced."""

    name: ClassVar[str] = "mailing_exclusions"
    version: ClassVar[int] = 2  # 2: bounce policy version 2 (soft bounces counted within a window)
    event_classes: ClassVar[tuple[type[Any], ...]] = (
        Party.Subscribed,
        Party.Unsubscribed,
        Party.DeliveryRecorded,
    )


    def evolve(self, row: Row | None, event: DomainEventProtocol[Any]) -> Row | None:
        e = cast(Any, event)
        order = [e.effective_at.isoformat(), e.timestamp.isoformat(), e.originator_version]
        consent: dict[str, Row] = dict((row or {}).get("consent", {}))
        reports: dict[str, list[Row]] = dict((row or {}).get("reports", {}))
        if isinstance(event, Party.Subscribed | Party.Unsubscribed):
            if e.channel not in MAILING_CHANNELS:
                return row
            subscribed = isinstance(event, Party.Subscribed)
            status = ConsentStatus.SUBSCRIBED if subscribed else ConsentStatus.UNSUBSCRIBED
            entry = {"status": status.value, "order": order}
            held = consent.get(e.channel)
            if held is None or _order(entry) >= _order(held):
                consent[e.channel] = entry
        elif e.address_kind == AddressKind.EMAIL.value:
            listed = [*reports.get(e.address_key, []),
                      {"outcome": e.outcome, "raw_code": e.raw_code, "order": order}]
            reports[e.address_key] = sorted(listed, key=_order)
        else:
            return row
        unsubscribed = [c for c in MAILING_CHANNELS
                        if consent.get(c, {}).get("status") == ConsentStatus.UNSUBSCRIBED.value]
        bounced = []
        for address_key, listed in sorted(reports.items()):
            if undeliverable(listed, _DEFAULT_POLICY):
                bounced.append(address_key)
        return {
            "id": str(event.originator_id),
            "consent": consent,
            "reports": reports,
            "unsubscribed": unsubscribed,
            "bounced": bounced,
            "excluded": bool(unsubscribed or bounced),
        }
