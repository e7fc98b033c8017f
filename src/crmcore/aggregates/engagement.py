"""Engagement facts: what a mail tool or a telephone system reported about one recipient of a campaign.

Each report is its own ``Engagement`` aggregate of one event, whose id is derived from the report's
source and external id (:func:`engagement_id`): a report delivered twice collides with itself in the store,
so ingestion is idempotent without any lookup table, also between processes. The event class says the
kind (so the store can filter by kind), its ``effective_at`` when it happened, its recording time when
crmcore learnt of it.

``AddressStatus`` aggregates (one per address key, :func:`address_status_id`) hold the bounce policy's
decisions about an address: suppressed, reinstated, each with the rule, the policy's name and version and
the external ids of the evidence.
"""

from __future__ import annotations

from datetime import datetime
from hashlib import sha1
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from crmcore.values import EngagementKind

__all__ = [
    "ADDRESS_STATUS_EVENTS",
    "ENGAGEMENT_EVENTS",
    "EVENT_OF_KIND",
    "AddressStatus",
    "Engagement",
    "address_status_id",
    "engagement_id",
]

#: The namespace of engagement and address-status ids (fixed forever: ids are derived from it).
ENGAGEMENT_NAMESPACE = UUID("5b0f3c8e-2f4a-4c1e-9a57-6c1f0e8d2b41")
ADDRESS_NAMESPACE = UUID("0d7a2e61-93b4-4f0a-8c3d-1e5b7a9f4c20")


_ENGAGEMENT_PREFIX = ENGAGEMENT_NAMESPACE.bytes
_ADDRESS_PREFIX = ADDRESS_NAMESPACE.bytes
#: The version (5) and variant (RFC 4122) bits of a name-based UUID, and the mask that clears them.
_UUID5_BITS = (5 << 76) | (0x8000 << 48)
_UUID5_MASK = ((1 << 128) - 1) & ~((0xF000 << 64) | (0xC000 << 48))


def _uuid5(prefix: bytes, name: str) -> UUID:
    """``uuid.uuid5`` of the namespace whose bytes are ``prefix`` (the same value, about twice as fast:
    ingestion derives one per event)."""
    value = int.from_bytes(sha1(prefix + name.encode()).digest()[:16], "big")
    return UUID(int=(value & _UUID5_MASK) | _UUID5_BITS)


def engagement_id(source: str, external_id: str) -> UUID:
    """The id of the report ``external_id`` from ``source``: the same report always gets the same id
    (``uuid5`` of the engagement namespace and ``source + "\\x1f" + external_id``)."""
    return _uuid5(_ENGAGEMENT_PREFIX, f"{source}\x1f{external_id}")


def address_status_id(address_key: str) -> UUID:
    """The id of the status aggregate of the address with matching key ``address_key`` (``uuid5``)."""
    return _uuid5(_ADDRESS_PREFIX, address_key)


class Engagement(Aggregate):
    """One report about one recipient of one campaign; never changes once recorded."""

    class Event(Aggregate.Event):
        actor: str
        effective_at: datetime

    class Reported(Event, Aggregate.Created):
        """Fields every report has; the subclasses below are the kinds."""

        campaign_id: UUID
        party_id: UUID
        channel: str
        address: str | None
        source: str
        external_id: str

        def apply(self, aggregate: Engagement) -> None:
            aggregate.kind = KIND_OF_EVENT[type(self)]
            aggregate.facts = {k: v for k, v in vars(self).items()
                               if k not in ("originator_id", "originator_version", "originator_topic")}

    class Delivered(Reported):
        pass

    class Opened(Reported):
        pass

    class Clicked(Reported):
        link: str | None

    class SoftBounced(Reported):
        raw_code: str | None

    class HardBounced(Reported):
        raw_code: str | None

    class Unsubscribed(Reported):
        pass

    class Complained(Reported):
        pass

    class Called(Reported):
        """A telemarketing call: who called, how it went, notes, the date to call back, and the
        opportunity it opened (if any)."""

        operator: str
        outcome: str
        notes: str | None
        call_back_on: str | None
        opportunity_id: UUID | None

    def __init__(self) -> None:
        self.kind = EngagementKind.DELIVERED  # set from the event class by ``Reported.apply``
        self.facts: dict[str, Any] = {}

    @classmethod
    def report(cls, kind: EngagementKind, *, source: str, external_id: str, **facts: Any) -> Engagement:
        """A new report of ``kind`` (facts already validated by the caller)."""
        return cls._create(EVENT_OF_KIND[EngagementKind(kind)], id=engagement_id(source, external_id),
                           source=source, external_id=external_id, **facts)


#: The event class of each kind of report.
EVENT_OF_KIND: dict[EngagementKind, type[Engagement.Reported]] = {
    EngagementKind.DELIVERED: Engagement.Delivered,
    EngagementKind.OPENED: Engagement.Opened,
    EngagementKind.CLICKED: Engagement.Clicked,
    EngagementKind.SOFT_BOUNCE: Engagement.SoftBounced,
    EngagementKind.HARD_BOUNCE: Engagement.HardBounced,
    EngagementKind.UNSUBSCRIBED: Engagement.Unsubscribed,
    EngagementKind.COMPLAINT: Engagement.Complained,
    EngagementKind.CALLED: Engagement.Called,
}
KIND_OF_EVENT: dict[type[Any], EngagementKind] = {cls: kind for kind, cls in EVENT_OF_KIND.items()}

#: Every engagement event class.
ENGAGEMENT_EVENTS: tuple[type[Engagement.Reported], ...] = tuple(EVENT_OF_KIND.values())


class AddressStatus(Aggregate):
    """The bounce policy's decisions about one address (by its matching key)."""

    class Event(Aggregate.Event):
        actor: str
        effective_at: datetime

    class Tracked(Event, Aggregate.Created):
        address_key: str
        address: str

    class Decision(Event):
        """A decision about the address with matching key ``address_key``: ``rule`` (``hard_bounce``,
        ``soft_bounces``, ``complaint``, ``delivered``, ``reapplied``, ``manual``), a readable ``reason``,
        the ``policy`` (name and version) and the external ids of the reports it rests on."""

        address_key: str
        rule: str
        reason: str
        policy: dict[str, Any]
        evidence: list[str]

    class Suppressed(Decision):
        pass

    class Reinstated(Decision):
        pass

    @staticmethod
    def create_id(address_key: str, **_: Any) -> UUID:
        return address_status_id(address_key)

    @event(Tracked)
    def __init__(self, *, address_key: str, address: str, actor: str, effective_at: datetime) -> None:
        self.address_key, self.address = address_key, address
        #: whether the decision in force after every decision (in effective-time order) suppresses it
        self.suppressed = False
        #: every decision in recording order: (suppressed?, effective_at, rule, reason, policy, evidence)
        self.decisions: list[dict[str, Any]] = []

    def decide(
        self, *, suppress: bool, rule: str, reason: str, policy: dict[str, Any], evidence: list[str],
        actor: str, effective_at: datetime,
    ) -> None:
        """Record a decision (the caller's policy computed it)."""
        method = self._suppressed if suppress else self._reinstated
        method(address_key=self.address_key, rule=rule, reason=reason, policy=dict(policy),
               evidence=list(evidence), actor=actor, effective_at=effective_at)

    def suppressed_at(self, at: datetime | None = None) -> bool:
        """Whether the decision in force at ``at`` (None: after every decision) suppresses the address.

        Decisions are read in effective-time order, those effective at the same moment in recording order:
        a decision recorded late for an earlier moment changes the past, not what was decided after it.
        """
        in_force = None
        for decision in sorted(self.decisions, key=lambda d: d["effective_at"]):  # stable: recording order
            if at is not None and decision["effective_at"] > at:
                break
            in_force = decision
        return bool(in_force is not None and in_force["suppressed"])

    def _note(self, suppress: bool, data: dict[str, Any]) -> None:
        self.decisions.append({"suppressed": suppress, **data})
        self.suppressed = self.suppressed_at()

    @event(Suppressed)
    def _suppressed(
        self, address_key: str, rule: str, reason: str, policy: dict[str, Any], evidence: list[str],
        actor: str, effective_at: datetime,
    ) -> None:
        self._note(True, {"rule": rule, "reason": reason, "policy": policy, "evidence": evidence,
                          "actor": actor, "effective_at": effective_at})

    @event(Reinstated)
    def _reinstated(
        self, address_key: str, rule: str, reason: str, policy: dict[str, Any], evidence: list[str],
        actor: str, effective_at: datetime,
    ) -> None:
        self._note(False, {"rule": rule, "reason": reason, "policy": policy, "evidence": evidence,
                           "actor": actor, "effective_at": effective_at})


#: The address-status events.
ADDRESS_STATUS_EVENTS: tuple[type[AddressStatus.Event], ...] = (
    AddressStatus.Tracked, AddressStatus.Suppressed, AddressStatus.Reinstated,
)
