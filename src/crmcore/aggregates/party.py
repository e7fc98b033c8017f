"""The ``Party`` aggregate: a person or an organization moving through the lifecycle.

Public commands check the rules (``crmcore.policies.lifecycle``) and the effective time, then call a private
``@event`` method that only mutates state: those re-run on every replay and must never raise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypedDict
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as _Snapshot
from pydantic import BaseModel, ConfigDict

from crmcore._ids import new_uuid7
from crmcore.commands import validate
from crmcore.exceptions import EffectiveTimeOutOfOrder, IllegalTransition, InvalidInput, PartyMerged
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

__all__ = ["Party", "PolicyRecord"]

#: How far in the future an effective time may lie, to allow for clock skew between machines.
CLOCK_SKEW_SECONDS = 300


class PolicyRecord(TypedDict):
    """The qualification policy a (dis)qualification was decided under, as its event records it:
    ``assessment`` holds the ``score`` (text), the ``recommendation`` and the ``failed`` rule labels."""

    policy_name: str
    policy_version: int
    assessment: dict[str, Any]


class Party(Aggregate):
    """A person or an organization the company deals with, or means to."""

    class Event(Aggregate.Event):
        """Every party event says who did it and when it took effect."""

        actor: str
        effective_at: datetime

    class Registered(Event, Aggregate.Created):
        class_version = 2

        kind: str
        stage: str
        name: str
        organization_name: str | None
        contact_name: str | None
        channel: str | None
        owner: str | None
        profile: dict[str, Any]
        qualified_from: UUID | None
        identity: dict[str, Any]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Registrations stored before identity values existed carry none."""
            state["identity"] = {}

    class Engaged(Event):
        channel: str

    class Qualified(Event):
        """A lead qualified; ``policy_name``, ``policy_version`` and ``assessment`` (``score`` text,
        ``recommendation``, ``failed`` rule labels) record the qualification policy used, if any."""

        class_version = 2

        stage: str
        policy_name: str | None
        policy_version: int | None
        assessment: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Qualifications stored before policies were recorded name none."""
            state["policy_name"] = state["policy_version"] = state["assessment"] = None

    class Disqualified(Event):
        """A party failed qualification, with the reason; the policy used, if any, as on ``Qualified``."""

        class_version = 2

        reason: str
        policy_name: str | None
        policy_version: int | None
        assessment: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Disqualifications stored before policies were recorded name none."""
            state["policy_name"] = state["policy_version"] = state["assessment"] = None

    class Reopened(Event):
        reason: str | None

    class Converted(Event):
        class_version = 2

        reference: str | None
        caused_by: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Conversions stored before causes were recorded name none."""
            state["caused_by"] = None

    class Assigned(Event):
        owner: str | None

    class Linked(Event):
        organization_id: UUID

    class ProfileUpdated(Event):
        changes: dict[str, Any]

    class SetAside(Event):
        reason: str

    class IdentityUpdated(Event):
        changes: dict[str, Any]

    class MergedInto(Event):
        survivor_id: UUID
        reason: str

    class Merged(Event):
        loser_id: UUID
        values: dict[str, Any]
        sources: dict[str, str]
        reason: str

    class Unmerged(Event):
        other_id: UUID
        restored: dict[str, Any]
        reason: str

    class Restored(Event):
        reason: str | None

    class InteractionRecorded(Event):
        """A call or meeting with the party took place: the completion of task ``task_id`` of ``kind``."""

        kind: str
        task_id: UUID
        outcome: str | None

    class FieldsUpdated(Event):
        """Custom field values set (``None`` clears one), as checked against catalog ``catalog_version``."""

        changes: dict[str, Any]
        catalog_version: int
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

    class Scored(Event):
        """A predictive score was recorded for the party: ``score`` percent (decimal text) by scoring model
        ``model_version``. A note about the party, not a change to it: its state stays as it was."""

        model_version: int
        score: str

    class Snapshot(_Snapshot):
        """A snapshot that gives back the enum types JSON turned into plain strings."""

        def mutate(self, _: None) -> Party:
            party = super().mutate(_)
            assert isinstance(party, Party)
            party.kind = PartyKind(party.kind)
            party.stage = Stage(party.stage)
            party.channel = Channel(party.channel) if party.channel else None
            _fill_defaults(party)
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
        identity: dict[str, Any] | None = None,
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
        self.identity: dict[str, Any] = dict(identity or {})
        self.merged_into: UUID | None = None
        self.merged_from: list[UUID] = []
        self.conversion_causes: list[dict[str, Any]] = []
        self.custom_fields: dict[str, Any] = {}
        self.custom_field_versions: dict[str, int] = {}
        self.consents: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.last_interaction_at: datetime | None = None

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
        identity: dict[str, Any] | None = None,
    ) -> Party:
        """Register a new party at ``stage`` (disqualified is never a starting stage).

        ``identity`` holds the identity values in their stored form
        (see :class:`crmcore.commands.RegisterParty`).
        """
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
            identity={k: v for k, v in (identity or {}).items() if v not in (None, [])},
        )

    # ------------------------------------------------------------------ commands

    def engage(self, *, channel: Channel, actor: str, effective_at: datetime | None = None) -> None:
        """Record a suspect's first interaction: it becomes a lead."""
        lifecycle.check_can_engage(self.id, self.stage)
        self._engaged(channel=channel.value, actor=actor, effective_at=self._when(effective_at))

    def qualify(
        self, *, actor: str, effective_at: datetime | None = None, link_to: Party | None = None,
        policy: PolicyRecord | None = None,
    ) -> Party | None:
        """Qualify a lead: a person becomes a prospect, an organization a target.

        A lead that also names the other side (a person's company, an organization's contact) yields a
        new counterpart party registered at its qualified stage and linked; ``link_to`` (an existing
        target or customer organization) replaces the new organization for a person lead. Returns the
        new counterpart, if any; the caller saves it with this party in one atomic save. ``policy``: the
        qualification policy's name, version and assessment to record on the event, when one was used.
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
        self._qualified(stage=new_stage.value, actor=actor, effective_at=at, **_policy_fields(policy))
        if link_to is not None:
            self._linked(organization_id=link_to.id, actor=actor, effective_at=at)
        elif counterpart is not None and self.kind is PartyKind.PERSON:
            self._linked(organization_id=counterpart.id, actor=actor, effective_at=at)
        elif counterpart is not None:
            counterpart._linked(organization_id=self.id, actor=actor, effective_at=at)
        return counterpart

    def disqualify(
        self, *, reason: str, actor: str, effective_at: datetime | None = None,
        policy: PolicyRecord | None = None,
    ) -> None:
        """A lead (or prospect, or target) fails qualification; it is kept, with the reason (and the
        qualification policy's name, version and assessment, when one was used)."""
        lifecycle.check_can_disqualify(self.id, self.stage)
        self._disqualified(reason=reason, actor=actor, effective_at=self._when(effective_at),
                           **_policy_fields(policy))

    def reopen(
        self, *, actor: str, reason: str | None = None, effective_at: datetime | None = None,
    ) -> None:
        """Re-open a disqualified party: it becomes a lead again."""
        lifecycle.check_can_reopen(self.id, self.stage)
        self._reopened(reason=reason, actor=actor, effective_at=self._when(effective_at))

    def convert(
        self, *, actor: str, reference: str | None = None, effective_at: datetime | None = None,
        caused_by: dict[str, Any] | None = None,
    ) -> None:
        """Record a purchase: a prospect or target becomes a customer.

        ``caused_by`` names what caused it, e.g. ``{"opportunity_id": "…", "event": "Won", "version": 7}``
        when a won opportunity converts its party (see ``crmcore.policies.conversion``).
        """
        lifecycle.check_can_convert(self.id, self.stage)
        self._converted(reference=reference, caused_by=caused_by, actor=actor,
                        effective_at=self._when(effective_at))

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

    def update_identity(
        self, *, changes: dict[str, Any], actor: str, effective_at: datetime | None = None,
    ) -> bool:
        """Replace identity fields (stored forms; ``None`` clears one). Returns False if nothing changed."""
        at = self._when(effective_at)
        wrong = lifecycle.identity_fields_refused(self.kind, changes)
        if wrong:
            raise InvalidInput(
                f"{', '.join(wrong)}: not for {'an' if self.kind is PartyKind.ORGANIZATION else 'a'} "
                f"{self.kind.value}",
                [{"loc": (f,), "msg": f"not for a {self.kind.value}", "type": "wrong_kind"} for f in wrong],
            )
        effective: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "name":
                if value != self.name:
                    effective[key] = value
            elif key in LIST_IDENTITY_FIELDS:
                change = list_change(self.identity.get(key, []), value or [])
                if change is not None:
                    effective[key] = change
            elif value in (None, []):
                if key in self.identity:
                    effective[key] = None
            elif not _same(self.identity.get(key), value):
                effective[key] = value
        renamed = {"given_name", "family_name"} & effective.keys()
        if self.kind is PartyKind.PERSON and renamed and "name" not in changes:
            given = effective.get("given_name", self.identity.get("given_name"))
            family = effective.get("family_name", self.identity.get("family_name"))
            if given and family and f"{given} {family}" != self.name:
                effective["name"] = f"{given} {family}"
        if not effective:
            return False
        self._identity_updated(changes=effective, actor=actor, effective_at=at)
        return True

    def merge_into(
        self, survivor: Party, *, reason: str, actor: str, effective_at: datetime | None = None,
    ) -> datetime:
        """End this party's stream: it was a duplicate of ``survivor``. Returns the effective time used."""
        lifecycle.check_can_merge(survivor.id, survivor.kind, survivor.merged_into,
                                  self.id, self.kind, self.merged_into)
        at = max(self._when(effective_at), survivor._when(effective_at))
        self._merged_into(survivor_id=survivor.id, reason=reason, actor=actor, effective_at=at)
        return at

    def absorb(
        self, loser_id: UUID, *, values: dict[str, Any], sources: dict[str, str], reason: str, actor: str,
        effective_at: datetime,
    ) -> None:
        """Take the merged values (chosen field by field by ``crmcore.policies.merging``) of ``loser_id``."""
        self._merged(loser_id=loser_id, values=values, sources=sources, reason=reason, actor=actor,
                     effective_at=self._when(effective_at))

    def restore_unmerged(
        self, other_id: UUID, *, restored: dict[str, Any], reason: str, actor: str, effective_at: datetime,
    ) -> None:
        """Undo a merge with ``other_id``: take back the state ``restored`` (replayed without the merge)."""
        at = _check_not_future(effective_at)
        at = max(at, self.last_effective_at)
        self._unmerged(other_id=other_id, restored=restored, reason=reason, actor=actor, effective_at=at)

    def set_fields(
        self,
        *,
        values: dict[str, Any],
        catalog_version: int,
        actor: str,
        effective_at: datetime | None = None,
    ) -> bool:
        """Set custom field values, already checked and normalised against catalog ``catalog_version``.

        A ``None`` value clears a field. Values equal to the stored ones are left out; returns False (and
        records nothing) if nothing changed.
        """
        at = self._when(effective_at)
        effective = {
            k: v for k, v in values.items()
            if (v is None and k in self.custom_fields)
            or (v is not None and not _same(self.custom_fields.get(k), v))
        }
        if not effective:
            return False
        self._fields_updated(changes=effective, catalog_version=catalog_version, actor=actor, effective_at=at)
        return True

    def record_interaction(
        self, *, kind: str, task_id: UUID, actor: str, outcome: str | None = None,
        effective_at: datetime | None = None,
    ) -> None:
        """Record an interaction with the party (a completed call or meeting task, see ``crmcore.policies
        .tasks``). Like ledger entries it may precede the party's previous event (tasks are declared done
        late); ``last_interaction_at`` keeps the latest."""
        at = self._ledger_time(effective_at)
        self._interaction_recorded(kind=kind, task_id=task_id, outcome=outcome, actor=actor, effective_at=at)

    def record_score(
        self, *, model_version: int, score: Decimal, actor: str, effective_at: datetime | None = None,
    ) -> None:
        """Record the party's predictive score (0-100) by scoring model ``model_version``. Like ledger
        entries it may precede the party's previous event (a score as of a past moment); never on a party
        merged away."""
        at = self._ledger_time(effective_at)
        if not isinstance(score, Decimal) or not Decimal(0) <= score <= Decimal(100):
            raise InvalidInput("score: give a decimal from 0 to 100",
                               [{"loc": ("score",), "msg": "out of range", "type": "decimal_range"}])
        self._scored(model_version=model_version, score=str(score), actor=actor, effective_at=at)

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
        at = self._ledger_time(effective_at)
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
        at = self._ledger_time(effective_at)
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
        at = self._ledger_time(effective_at)
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

    @property
    def emails(self) -> list[str]:
        """E-mail addresses, the primary first."""
        return list(self.identity.get("emails", []))

    @property
    def phones(self) -> list[str]:
        """Phone numbers in E.164 form, the primary first."""
        return list(self.identity.get("phones", []))

    def identity_keys(self) -> set[str]:
        """The normalised identifiers no other party may hold: ``email:…``, ``phone:…``, ``vat:…``."""
        return identity_keys_of(self.identity)

    def _ledger_time(self, effective_at: datetime | None) -> datetime:
        """A ledger entry's effective time: may precede the previous event, never on a merged party."""
        if self.merged_into is not None:
            raise PartyMerged(self.id, self.merged_into)
        return _check_not_future(effective_at or utc_now())

    def merge_fields(self) -> dict[str, Any]:
        """The fields a merge decides (see ``crmcore.policies.merging``), as plain values."""
        return {
            "name": self.name,
            **{k: self.identity.get(k) for k in (
                "given_name", "family_name", "birth_date", "address", "vat_number",
                "emails", "phones", "web_links")},
            "organization_name": self.organization_name,
            "contact_name": self.contact_name,
            "owner": self.owner,
            "channel": self.channel.value if self.channel else None,
            "organization_id": self.organization_id,
            "stage": self.stage.value,
            "profile": dict(self.profile),
            "custom_fields": dict(self.custom_fields),
        }

    def merge_state(self) -> dict[str, Any]:
        """Every attribute of the party, as plain data: what an unmerge restores."""
        return {k: v for k, v in vars(self).items() if k not in _NOT_RESTORED}

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
            "given_name": self.identity.get("given_name"),
            "family_name": self.identity.get("family_name"),
            "emails": list(self.identity.get("emails", [])),
            "phones": list(self.identity.get("phones", [])),
            "birth_date": self.identity.get("birth_date"),
            "address": self.identity.get("address"),
            "web_links": list(self.identity.get("web_links", [])),
            "vat_number": self.identity.get("vat_number"),
            "merged_into": self.merged_into,
            "merged_from": list(self.merged_from),
            "custom_fields": dict(self.custom_fields),
            "custom_field_versions": dict(self.custom_field_versions),
            "consent": current_consent(self.consents),
            "last_interaction_at": self.last_interaction_at,
        }

    # ------------------------------------------------------------------ helpers

    def _when(self, effective_at: datetime | None) -> datetime:
        if self.merged_into is not None:
            raise PartyMerged(self.id, self.merged_into)
        return _next_effective_time(effective_at, self.last_effective_at, "party")

    # ------------------------------------------------------------------ mutators (never raise)

    @event(Engaged)
    def _engaged(self, channel: str, actor: str, effective_at: datetime) -> None:
        self.stage = Stage.LEAD
        self.channel = Channel(channel)
        self._interacted(effective_at)
        self.last_effective_at = effective_at

    @event(InteractionRecorded)
    def _interaction_recorded(
        self, kind: str, task_id: UUID, outcome: str | None, actor: str, effective_at: datetime,
    ) -> None:
        self._interacted(effective_at)
        self.last_effective_at = max(self.last_effective_at, effective_at)

    def _interacted(self, at: datetime) -> None:
        latest = getattr(self, "last_interaction_at", None)
        self.last_interaction_at = at if latest is None or at > latest else latest

    @event(Qualified)
    def _qualified(
        self, stage: str, actor: str, effective_at: datetime, policy_name: str | None = None,
        policy_version: int | None = None, assessment: dict[str, Any] | None = None,
    ) -> None:
        self.stage = Stage(stage)
        self.last_effective_at = effective_at

    @event(Disqualified)
    def _disqualified(
        self, reason: str, actor: str, effective_at: datetime, policy_name: str | None = None,
        policy_version: int | None = None, assessment: dict[str, Any] | None = None,
    ) -> None:
        self.stage = Stage.DISQUALIFIED
        self.disqualification_reason = reason
        self.last_effective_at = effective_at

    @event(Reopened)
    def _reopened(self, reason: str | None, actor: str, effective_at: datetime) -> None:
        self.stage = Stage.LEAD
        self.disqualification_reason = None
        self.last_effective_at = effective_at

    @event(Converted)
    def _converted(
        self, reference: str | None, actor: str, effective_at: datetime,
        caused_by: dict[str, Any] | None = None,
    ) -> None:
        self.stage = Stage.CUSTOMER
        if caused_by is not None:
            self.conversion_causes = [*self.conversion_causes, caused_by]
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

    @event(IdentityUpdated)
    def _identity_updated(self, changes: dict[str, Any], actor: str, effective_at: datetime) -> None:
        for key, value in changes.items():
            if key == "name":
                self.name = value
            elif key in LIST_IDENTITY_FIELDS:
                new = apply_list_change(self.identity.get(key, []), value)
                if new:
                    self.identity[key] = new
                else:
                    self.identity.pop(key, None)
            elif value is None:
                self.identity.pop(key, None)
            else:
                self.identity[key] = value
        self.last_effective_at = effective_at

    @event(MergedInto)
    def _merged_into(self, survivor_id: UUID, reason: str, actor: str, effective_at: datetime) -> None:
        self.merged_into = survivor_id
        self.last_effective_at = effective_at

    @event(Merged)
    def _merged(
        self, loser_id: UUID, values: dict[str, Any], sources: dict[str, str], reason: str, actor: str,
        effective_at: datetime,
    ) -> None:
        # Differences from this party's state (see crmcore.policies.merging.recorded_changes).
        for key, value in values.items():
            if key in LIST_IDENTITY_FIELDS:
                joined = apply_list_change(self.identity.get(key, []), value)
                if joined:
                    self.identity[key] = joined
                else:
                    self.identity.pop(key, None)
            elif key in _MERGED_DICTS:
                updated = dict(getattr(self, key))
                for name, item in value.items():
                    if item is None:
                        updated.pop(name, None)
                    else:
                        updated[name] = item
                setattr(self, key, updated)
            elif key in _MERGED_LEDGERS:
                setattr(self, key, [*getattr(self, key), *value])
            elif key in MERGED_ATTRIBUTES:
                setattr(self, key, _coerce(key, value))
            elif value is None:
                self.identity.pop(key, None)
            else:
                self.identity[key] = value
        self.merged_from = [*self.merged_from, loser_id]
        self.last_effective_at = effective_at

    @event(Unmerged)
    def _unmerged(
        self, other_id: UUID, restored: dict[str, Any], reason: str, actor: str, effective_at: datetime,
    ) -> None:
        for key, value in restored.items():
            setattr(self, key, _coerce(key, value))
        _fill_defaults(self)
        self.last_effective_at = max(effective_at, self.last_effective_at)

    @event(FieldsUpdated)
    def _fields_updated(
        self, changes: dict[str, Any], catalog_version: int, actor: str, effective_at: datetime,
    ) -> None:
        for name, value in changes.items():
            if value is None:
                self.custom_fields.pop(name, None)
                self.custom_field_versions.pop(name, None)
            else:
                self.custom_fields[name] = value
                self.custom_field_versions[name] = catalog_version
        self.last_effective_at = effective_at

    @event(Scored)
    def _scored(self, model_version: int, score: str, actor: str, effective_at: datetime) -> None:
        """Nothing of the party's state changes: the score is in its history."""

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


#: Party attributes a merge may set directly (everything else a merge sets is an identity field).
MERGED_ATTRIBUTES = frozenset({
    "name", "stage", "owner", "channel", "organization_id", "organization_name", "contact_name", "profile",
    "custom_fields", "custom_field_versions", "consents", "deliveries",
})
_MERGED_DICTS = frozenset({"profile", "custom_fields", "custom_field_versions"})
_MERGED_LEDGERS = frozenset({"consents", "deliveries"})
_NOT_RESTORED = frozenset({"_id", "_version", "_created_on", "_modified_on", "_pending_events"})


#: Identity fields holding lists; events record what was added and removed, never the whole list, so a
#: party replayed without a merge keeps its own later changes and none of the merged-in items.
LIST_IDENTITY_FIELDS = frozenset({"emails", "phones", "web_links"})


def list_change(current: list[str], wanted: list[str]) -> dict[str, Any] | None:
    """What turns ``current`` into ``wanted`` (items compared case-insensitively), or None if nothing.

    ``{"add": [...], "remove": [...], "first": item or None}``: removed items go, added ones are appended
    in order, and ``first`` (the new primary) moves to the front.
    """
    have = {v.lower() for v in current}
    want = {v.lower() for v in wanted}
    change: dict[str, Any] = {
        "add": [v for v in wanted if v.lower() not in have],
        "remove": [v for v in current if v.lower() not in want],
        "first": None,
    }
    result = apply_list_change(current, change)
    if wanted and (not result or result[0].lower() != wanted[0].lower()):
        change["first"] = wanted[0]
    if not change["add"] and not change["remove"] and change["first"] is None:
        return None
    return change


def apply_list_change(current: list[str], change: dict[str, Any]) -> list[str]:
    """``current`` after a :func:`list_change` (never raises: items to remove may be missing)."""
    gone = {v.lower() for v in change.get("remove", [])}
    result = [v for v in current if v.lower() not in gone]
    present = {v.lower() for v in result}
    for value in change.get("add", []):
        if value.lower() not in present:
            result.append(value)
            present.add(value.lower())
    first = change.get("first")
    if first is not None:
        result = [first, *(v for v in result if v.lower() != first.lower())]
    return result


def identity_keys_of(identity: dict[str, Any]) -> set[str]:
    """The claim keys of stored identity values (e-mail keys lower-cased, phones in E.164, VAT compact)."""
    keys = {f"email:{address.lower()}" for address in identity.get("emails", [])}
    keys.update(f"phone:{number}" for number in identity.get("phones", []))
    if identity.get("vat_number"):
        keys.add(f"vat:{identity['vat_number']}")
    return keys


def _coerce(key: str, value: Any) -> Any:
    """Give back the types JSON turned into plain values (enums; copies of mutable containers)."""
    if value is None:
        return None
    if key == "kind":
        return PartyKind(value)
    if key == "stage":
        return Stage(value)
    if key == "channel":
        return Channel(value)
    if key in ("organization_id", "qualified_from", "merged_into") and not isinstance(value, UUID):
        return UUID(str(value))
    if key == "merged_from":
        return [v if isinstance(v, UUID) else UUID(str(v)) for v in value]
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


def _fill_defaults(party: Party) -> None:
    """Attributes added after a snapshot or restored state was taken start empty."""
    defaults: dict[str, Any] = {
        "identity": {}, "merged_into": None, "merged_from": [],
        "custom_fields": {}, "custom_field_versions": {}, "consents": [], "deliveries": [],
        "conversion_causes": [], "last_interaction_at": None,
    }
    for key, value in defaults.items():
        if key not in vars(party):
            setattr(party, key, value)

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


def _policy_fields(policy: PolicyRecord | None) -> dict[str, Any]:
    """The policy fields of a ``Qualified`` or ``Disqualified`` event: all None when no policy was used."""
    if policy is None:
        return {"policy_name": None, "policy_version": None, "assessment": None}
    return {"policy_name": policy["policy_name"], "policy_version": policy["policy_version"],
            "assessment": dict(policy["assessment"])}


def _next_effective_time(effective_at: datetime | None, previous: datetime, what: str) -> datetime:
    """``effective_at`` (default now) checked for an aggregate's next event: aware, not in the future, and
    not before ``previous``, the effective time of the ``what``'s previous event."""
    at = _check_not_future(effective_at or utc_now())
    if at < previous:
        raise EffectiveTimeOutOfOrder(
            f"effective time {at.isoformat()} is before the {what}'s previous event ({previous.isoformat()})",
            [{"loc": ("effective_at",), "msg": "before the previous event", "type": "out_of_order"}],
        )
    return at


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
