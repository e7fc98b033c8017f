"""The ``Party`` aggregate: a person or an organization moving through the lifecycle.

Public commands check the rules (``crmcore.policies.lifecycle``) and the effective time, then call a private
``@event`` method that only mutates state: those re-run on every replay and must never raise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as _Snapshot
from pydantic import BaseModel, ConfigDict

from crmcore._ids import new_uuid7
from crmcore.commands import validate
from crmcore.exceptions import EffectiveTimeOutOfOrder, IllegalTransition, InvalidInput
from crmcore.identity import EmailAddress, PhoneNumber
from crmcore.policies import lifecycle
from crmcore.policies.consent import BouncePolicy, current_consent
from crmcore.values import (
    AddressKind,
    Channel,
    ConsentChannel,
    ConsentStatus,
    DeliveryOutcome,
    Evidence,
    ExternalId,
    LawfulBasis,
    PartyKind,
    RawCode,
    Source,
    Stage,
    utc_now,
)

__all__ = ["Party"]

#: How far in the future an effective time may lie, to allow for clock skew between machines.
CLOCK_SKEW_SECONDS = 300


class Party(Aggregate):
    """A person or an organization the company deals with, or means to."""

    class Event(Aggregate.Event):
        """Every party event says who did it and when it took effect."""

        actor: str
        effective_at: datetime

    class Registered(Event, Aggregate.Created):
        kind: str
        stage: str
        name: str
        organization_name: str | None
        contact_name: str | None
        channel: str | None
        owner: str | None
        profile: dict[str, Any]
        qualified_from: UUID | None

    class Engaged(Event):
        channel: str

    class Qualified(Event):
        stage: str

    class Disqualified(Event):
        reason: str

    class Reopened(Event):
        reason: str | None

    class Converted(Event):
        reference: str | None

    class Assigned(Event):
        owner: str | None

    class Linked(Event):
        organization_id: UUID

    class ProfileUpdated(Event):
        changes: dict[str, Any]

    class SetAside(Event):
        reason: str

    class Restored(Event):
        reason: str | None

    # Consent and deliverability ledgers. Their entries may be back-dated before the party's previous
    # event (mail tools report late), so each entry also keeps its recording time and position, which
    # ``apply`` reads from the event (an ``@event`` method body could not see them).

    class Subscribed(Event):
        channel: str
        source: str
        lawful_basis: str
        evidence: str | None
        external_id: str | None

        def apply(self, aggregate: Party) -> None:
            aggregate._add_consent(self, ConsentStatus.SUBSCRIBED, self.lawful_basis)

    class Unsubscribed(Event):
        channel: str
        source: str
        evidence: str | None
        external_id: str | None

        def apply(self, aggregate: Party) -> None:
            aggregate._add_consent(self, ConsentStatus.UNSUBSCRIBED, None)

    class DeliveryRecorded(Event):
        address: str
        address_key: str
        address_kind: str
        outcome: str
        raw_code: str | None
        classified_as: str | None
        external_id: str | None

        def apply(self, aggregate: Party) -> None:
            aggregate._add_delivery(self)

    class Snapshot(_Snapshot):
        """A snapshot that gives back the enum types JSON turned into plain strings."""

        def mutate(self, _: None) -> Party:
            party = super().mutate(_)
            assert isinstance(party, Party)
            party.kind = PartyKind(party.kind)
            party.stage = Stage(party.stage)
            party.channel = Channel(party.channel) if party.channel else None
            party.__dict__.setdefault("consents", [])
            party.__dict__.setdefault("deliveries", [])
            return party

    # ------------------------------------------------------------------ creation

    @staticmethod
    def create_id(**_: Any) -> UUID:
        """New parties get time-ordered UUIDv7 ids (cheap to index, sortable by creation)."""
        return new_uuid7()

    @event(Registered)
    def __init__(
        self,
        *,
        kind: str,
        stage: str,
        name: str,
        organization_name: str | None,
        contact_name: str | None,
        channel: str | None,
        owner: str | None,
        profile: dict[str, Any],
        qualified_from: UUID | None,
        actor: str,
        effective_at: datetime,
    ) -> None:
        self.kind = PartyKind(kind)
        self.stage = Stage(stage)
        self.name = name
        self.organization_name = organization_name
        self.contact_name = contact_name
        self.channel = Channel(channel) if channel else None
        self.owner = owner
        self.profile: dict[str, Any] = dict(profile)
        self.qualified_from = qualified_from
        self.organization_id: UUID | None = None
        self.set_aside = False
        self.set_aside_reason: str | None = None
        self.disqualification_reason: str | None = None
        self.last_effective_at = effective_at
        self.consents: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []

    @classmethod
    def register(
        cls,
        *,
        kind: PartyKind,
        stage: Stage,
        name: str,
        actor: str,
        effective_at: datetime | None = None,
        organization_name: str | None = None,
        contact_name: str | None = None,
        channel: Channel | None = None,
        owner: str | None = None,
        profile: dict[str, Any] | None = None,
        qualified_from: UUID | None = None,
    ) -> Party:
        """Register a new party at ``stage`` (disqualified is never a starting stage)."""
        lifecycle.check_registration(kind, stage)
        if organization_name is not None and kind is not PartyKind.PERSON:
            raise InvalidInput("organization_name is for a person; an organization names a contact_name")
        if contact_name is not None and kind is not PartyKind.ORGANIZATION:
            raise InvalidInput("contact_name is for an organization; a person names an organization_name")
        at = _check_not_future(effective_at or utc_now())
        profile = {k: v for k, v in (profile or {}).items() if v is not None}
        return cls(
            kind=kind.value,
            stage=stage.value,
            name=name,
            organization_name=organization_name,
            contact_name=contact_name,
            channel=channel.value if channel else None,
            owner=owner,
            profile=profile,
            qualified_from=qualified_from,
            actor=actor,
            effective_at=at,
        )

    # ------------------------------------------------------------------ commands

    def engage(self, *, channel: Channel, actor: str, effective_at: datetime | None = None) -> None:
        """Record a suspect's first interaction: it becomes a lead."""
        lifecycle.check_can_engage(self.id, self.stage)
        self._engaged(channel=channel.value, actor=actor, effective_at=self._when(effective_at))

    def qualify(
        self, *, actor: str, effective_at: datetime | None = None, link_to: Party | None = None,
    ) -> Party | None:
        """Qualify a lead: a person becomes a prospect, an organization a target.

        A lead that also names the other side (a person's company, an organization's contact) yields a
        new counterpart party registered at its qualified stage and linked; ``link_to`` (an existing
        target or customer organization) replaces the new organization for a person lead. Returns the
        new counterpart, if any; the caller saves it with this party in one atomic save.
        """
        lifecycle.check_can_qualify(self.id, self.stage)
        at = self._when(effective_at)
        if link_to is not None:
            if self.kind is not PartyKind.PERSON:
                raise IllegalTransition("only a person lead can be linked to an existing organization",
                                        party_id=self.id, stage=self.stage.value)
            lifecycle.check_can_link(self.id, self.kind, Stage.PROSPECT, link_to.kind, link_to.stage)
        new_stage = lifecycle.qualified_stage(self.kind)
        counterpart: Party | None = None
        if link_to is None and self.kind is PartyKind.PERSON and self.organization_name:
            counterpart = Party.register(
                kind=PartyKind.ORGANIZATION, stage=Stage.TARGET, name=self.organization_name,
                owner=self.owner, actor=actor, effective_at=at, qualified_from=self.id,
            )
        elif self.kind is PartyKind.ORGANIZATION and self.contact_name:
            counterpart = Party.register(
                kind=PartyKind.PERSON, stage=Stage.PROSPECT, name=self.contact_name,
                owner=self.owner, actor=actor, effective_at=at, qualified_from=self.id,
            )
        self._qualified(stage=new_stage.value, actor=actor, effective_at=at)
        if link_to is not None:
            self._linked(organization_id=link_to.id, actor=actor, effective_at=at)
        elif counterpart is not None and self.kind is PartyKind.PERSON:
            self._linked(organization_id=counterpart.id, actor=actor, effective_at=at)
        elif counterpart is not None:
            counterpart._linked(organization_id=self.id, actor=actor, effective_at=at)
        return counterpart

    def disqualify(self, *, reason: str, actor: str, effective_at: datetime | None = None) -> None:
        """A lead (or prospect, or target) fails qualification; it is kept, with the reason."""
        lifecycle.check_can_disqualify(self.id, self.stage)
        self._disqualified(reason=reason, actor=actor, effective_at=self._when(effective_at))

    def reopen(
        self, *, actor: str, reason: str | None = None, effective_at: datetime | None = None,
    ) -> None:
        """Re-open a disqualified party: it becomes a lead again."""
        lifecycle.check_can_reopen(self.id, self.stage)
        self._reopened(reason=reason, actor=actor, effective_at=self._when(effective_at))

    def convert(
        self, *, actor: str, reference: str | None = None, effective_at: datetime | None = None,
    ) -> None:
        """Record a purchase: a prospect or target becomes a customer."""
        lifecycle.check_can_convert(self.id, self.stage)
        self._converted(reference=reference, actor=actor, effective_at=self._when(effective_at))

    def assign(self, *, owner: str | None, actor: str, effective_at: datetime | None = None) -> bool:
        """Assign the party to a sales rep (``None`` unassigns). Returns False if nothing changed."""
        lifecycle.check_can_assign(self.id, self.stage)
        at = self._when(effective_at)
        if owner == self.owner:
            return False
        self._assigned(owner=owner, actor=actor, effective_at=at)
        return True

    def link(self, organization: Party, *, actor: str, effective_at: datetime | None = None) -> bool:
        """Make this person belong to ``organization``. Returns False if it already does."""
        lifecycle.check_can_link(self.id, self.kind, self.stage, organization.kind, organization.stage)
        at = self._when(effective_at)
        if self.organization_id == organization.id:
            return False
        self._linked(organization_id=organization.id, actor=actor, effective_at=at)
        return True

    def update_profile(
        self, *, changes: dict[str, Any], actor: str, effective_at: datetime | None = None,
    ) -> bool:
        """Set traits (a ``None`` value removes one). Returns False if nothing changed."""
        at = self._when(effective_at)
        effective = {
            k: v for k, v in changes.items()
            if (v is None and k in self.profile) or (v is not None and not _same(self.profile.get(k), v))
        }
        if not effective:
            return False
        self._profile_updated(changes=effective, actor=actor, effective_at=at)
        return True

    def put_aside(self, *, reason: str, actor: str, effective_at: datetime | None = None) -> None:
        """Set the party aside (stale, or moved to the generic newsletter list), keeping its stage."""
        lifecycle.check_can_set_aside(self.id, self.stage, self.set_aside)
        self._set_aside(reason=reason, actor=actor, effective_at=self._when(effective_at))

    def restore(
        self, *, actor: str, reason: str | None = None, effective_at: datetime | None = None,
    ) -> None:
        """Bring a set-aside party back."""
        lifecycle.check_can_restore(self.id, self.stage, self.set_aside)
        self._restored(reason=reason, actor=actor, effective_at=self._when(effective_at))

    # ------------------------------------------------------------------ consent and deliverability

    def subscribe_to(
        self,
        *,
        channel: ConsentChannel | str,
        source: str,
        lawful_basis: LawfulBasis | str,
        actor: str,
        evidence: str | None = None,
        external_id: str | None = None,
        effective_at: datetime | None = None,
    ) -> bool:
        """Record that the party subscribed to ``channel``, on ``lawful_basis``, as ``source`` reports.

        ``effective_at`` may precede the party's previous event (late reports). Returns False, recording
        nothing, when an entry with the same ``external_id`` and channel is already in the ledger.
        """
        given = validate(_ConsentInput, {"channel": channel, "source": source, "lawful_basis": lawful_basis,
                                         "evidence": evidence, "external_id": external_id})
        at = _check_not_future(effective_at or utc_now())
        if given.lawful_basis is None:
            raise InvalidInput("a subscription needs a lawful basis",
                               [{"loc": ("lawful_basis",), "msg": "missing", "type": "missing"}])
        if self._knows_consent(given.external_id, given.channel):
            return False
        self.trigger_event(
            self.Subscribed, channel=given.channel.value, source=given.source,
            lawful_basis=given.lawful_basis.value, evidence=given.evidence, external_id=given.external_id,
            actor=actor, effective_at=at,
        )
        return True

    def unsubscribe_from(
        self,
        *,
        channel: ConsentChannel | str,
        source: str,
        actor: str,
        evidence: str | None = None,
        external_id: str | None = None,
        effective_at: datetime | None = None,
    ) -> bool:
        """Record that the party unsubscribed from ``channel`` (late and idempotent, as subscriptions)."""
        given = validate(_ConsentInput, {"channel": channel, "source": source, "evidence": evidence,
                                         "external_id": external_id})
        at = _check_not_future(effective_at or utc_now())
        if self._knows_consent(given.external_id, given.channel):
            return False
        self.trigger_event(
            self.Unsubscribed, channel=given.channel.value, source=given.source, evidence=given.evidence,
            external_id=given.external_id, actor=actor, effective_at=at,
        )
        return True

    def record_delivery(
        self,
        *,
        address: str | EmailAddress | PhoneNumber,
        actor: str,
        outcome: DeliveryOutcome | str | None = None,
        raw_code: str | None = None,
        external_id: str | None = None,
        effective_at: datetime | None = None,
        policy: BouncePolicy | None = None,
        region: str = "IT",
    ) -> bool:
        """Record what happened to a message sent to ``address`` (an e-mail address or a phone number).

        Give the ``outcome``, or the sending tool's ``raw_code`` for ``policy`` to classify, or both (they
        must agree when the policy reads the code). The raw code is kept, so a later policy can read it
        again. Late and idempotent like the consent entries: returns False for a known ``external_id``.
        """
        given = validate(_DeliveryInput,
                         {"outcome": outcome, "raw_code": raw_code, "external_id": external_id})
        parsed = _parse_address(address, region)
        at = _check_not_future(effective_at or utc_now())
        classified = (policy or BouncePolicy()).classify(given.raw_code)
        if given.outcome is None and classified is None:
            problem = "give the outcome" if given.raw_code is None else f"code {given.raw_code!r} unknown"
            raise InvalidInput(f"delivery outcome unknown: {problem}",
                               [{"loc": ("outcome",), "msg": problem, "type": "missing"}])
        if given.outcome is not None and classified is not None and given.outcome is not classified:
            raise InvalidInput(
                f"outcome {given.outcome.value} contradicts code {given.raw_code!r} ({classified.value})",
                [{"loc": ("outcome",), "msg": "contradicts the raw code", "type": "value_error"}],
            )
        if given.external_id is not None and any(
            e["external_id"] == given.external_id for e in self.deliveries
        ):
            return False
        kind = AddressKind.EMAIL if isinstance(parsed, EmailAddress) else AddressKind.PHONE
        self.trigger_event(
            self.DeliveryRecorded, address=str(parsed), address_key=parsed.key, address_kind=kind.value,
            outcome=(given.outcome or classified or DeliveryOutcome.DELIVERED).value,
            raw_code=given.raw_code, classified_as=classified.value if classified else None,
            external_id=given.external_id, actor=actor, effective_at=at,
        )
        return True

    def _knows_consent(self, external_id: str | None, channel: ConsentChannel) -> bool:
        return external_id is not None and any(
            e["external_id"] == external_id and e["channel"] == channel.value for e in self.consents
        )

    # ------------------------------------------------------------------ reading

    def state(self) -> dict[str, Any]:
        """The party's state as plain data (for comparisons and read models)."""
        return {
            "id": self.id,
            "version": self.version,
            "kind": self.kind,
            "stage": self.stage,
            "name": self.name,
            "organization_name": self.organization_name,
            "contact_name": self.contact_name,
            "channel": self.channel,
            "owner": self.owner,
            "organization_id": self.organization_id,
            "profile": dict(self.profile),
            "set_aside": self.set_aside,
            "set_aside_reason": self.set_aside_reason,
            "disqualification_reason": self.disqualification_reason,
            "qualified_from": self.qualified_from,
            "registered_at": self.created_on,
            "last_effective_at": self.last_effective_at,
            "consent": current_consent(self.consents),
        }

    # ------------------------------------------------------------------ helpers

    def _when(self, effective_at: datetime | None) -> datetime:
        at = _check_not_future(effective_at or utc_now())
        if at < self.last_effective_at:
            raise EffectiveTimeOutOfOrder(
                f"effective time {at.isoformat()} is before the party's previous event "
                f"({self.last_effective_at.isoformat()})",
                [{"loc": ("effective_at",), "msg": "before the previous event", "type": "out_of_order"}],
            )
        return at

    # ------------------------------------------------------------------ mutators (never raise)

    @event(Engaged)
    def _engaged(self, channel: str, actor: str, effective_at: datetime) -> None:
        self.stage = Stage.LEAD
        self.channel = Channel(channel)
        self.last_effective_at = effective_at

    @event(Qualified)
    def _qualified(self, stage: str, actor: str, effective_at: datetime) -> None:
        self.stage = Stage(stage)
        self.last_effective_at = effective_at

    @event(Disqualified)
    def _disqualified(self, reason: str, actor: str, effective_at: datetime) -> None:
        self.stage = Stage.DISQUALIFIED
        self.disqualification_reason = reason
        self.last_effective_at = effective_at

    @event(Reopened)
    def _reopened(self, reason: str | None, actor: str, effective_at: datetime) -> None:
        self.stage = Stage.LEAD
        self.disqualification_reason = None
        self.last_effective_at = effective_at

    @event(Converted)
    def _converted(self, reference: str | None, actor: str, effective_at: datetime) -> None:
        self.stage = Stage.CUSTOMER
        self.last_effective_at = effective_at

    @event(Assigned)
    def _assigned(self, owner: str | None, actor: str, effective_at: datetime) -> None:
        self.owner = owner
        self.last_effective_at = effective_at

    @event(Linked)
    def _linked(self, organization_id: UUID, actor: str, effective_at: datetime) -> None:
        self.organization_id = organization_id
        self.last_effective_at = effective_at

    @event(ProfileUpdated)
    def _profile_updated(self, changes: dict[str, Any], actor: str, effective_at: datetime) -> None:
        for key, value in changes.items():
            if value is None:
                self.profile.pop(key, None)
            else:
                self.profile[key] = value
        self.last_effective_at = effective_at

    @event(SetAside)
    def _set_aside(self, reason: str, actor: str, effective_at: datetime) -> None:
        self.set_aside = True
        self.set_aside_reason = reason
        self.last_effective_at = effective_at

    @event(Restored)
    def _restored(self, reason: str | None, actor: str, effective_at: datetime) -> None:
        self.set_aside = False
        self.set_aside_reason = None
        self.last_effective_at = effective_at

    # ------------------------------------------------------------------ ledger mutators (never raise)

    def _add_consent(self, event: Party.Event, status: ConsentStatus, lawful_basis: str | None) -> None:
        data = vars(event)
        self.consents.append({
            "party_id": self.id, "version": event.originator_version, "status": status.value,
            "channel": data["channel"], "effective_at": event.effective_at, "recorded_at": event.timestamp,
            "actor": event.actor, "source": data["source"], "lawful_basis": lawful_basis,
            "evidence": data["evidence"], "external_id": data["external_id"],
        })
        self.last_effective_at = max(self.last_effective_at, event.effective_at)

    def _add_delivery(self, event: Party.DeliveryRecorded) -> None:
        self.deliveries.append({
            "party_id": self.id, "version": event.originator_version, "address": event.address,
            "address_key": event.address_key, "address_kind": event.address_kind, "outcome": event.outcome,
            "raw_code": event.raw_code, "classified_as": event.classified_as,
            "effective_at": event.effective_at, "recorded_at": event.timestamp, "actor": event.actor,
            "external_id": event.external_id,
        })
        self.last_effective_at = max(self.last_effective_at, event.effective_at)


class _ConsentInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", title="consent entry")

    channel: ConsentChannel
    source: Source
    lawful_basis: LawfulBasis | None = None
    evidence: Evidence | None = None
    external_id: ExternalId | None = None


class _DeliveryInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", title="delivery entry")

    outcome: DeliveryOutcome | None = None
    raw_code: RawCode | None = None
    external_id: ExternalId | None = None


def _parse_address(address: str | EmailAddress | PhoneNumber, region: str) -> EmailAddress | PhoneNumber:
    """An e-mail address if the text holds an ``@``, else a phone number read in ``region``."""
    if isinstance(address, EmailAddress | PhoneNumber):
        return address
    if not isinstance(address, str):
        raise InvalidInput("address must be text",
                           [{"loc": ("address",), "msg": "not text", "type": "string_type"}])
    if "@" in address:
        return EmailAddress.parse(address, field="address")
    return PhoneNumber.parse(address, region, field="address")


def _same(old: Any, new: Any) -> bool:
    """Equal values of the same type (``True == 1`` in Python, but a flag is not a number)."""
    return type(old) is type(new) and old == new


def _check_not_future(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput(
            "effective_at must be timezone-aware",
            [{"loc": ("effective_at",), "msg": "naive datetime", "type": "timezone_aware"}],
        )
    now = utc_now()
    if (at - now).total_seconds() > CLOCK_SKEW_SECONDS:
        raise InvalidInput(
            f"effective time {at.isoformat()} is in the future",
            [{"loc": ("effective_at",), "msg": "in the future", "type": "future"}],
        )
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            "effective_at lies outside the years 1-9999 in UTC",
            [{"loc": ("effective_at",), "msg": "out of range", "type": "datetime_range"}],
        ) from None
