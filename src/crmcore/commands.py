"""Validated inputs of the use cases (imperative names). Bad input never reaches an event."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

import pydantic
from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, StringConstraints, model_validator
from pydantic import BaseModel as BaseModel

from crmcore._validation import invalid_input, validate
from crmcore.fields import FieldDefinition
from crmcore.identity import (
    BirthDate,
    EmailAddress,
    PostalAddress,
    VatNumber,
    WebLink,
    e164,
)
from crmcore.policies.tasks import TaskPriority
from crmcore.values import (
    ActorId,
    Channel,
    ConsentChannel,
    Currency,
    DeliveryOutcome,
    EffectiveTime,
    Evidence,
    ExternalId,
    LawfulBasis,
    Money,
    Name,
    PartyKind,
    Probability,
    RawCode,
    Reason,
    Source,
    Stage,
    TraitName,
    TraitValue,
)
from crmcore.values import _no_control_characters as _plain
from crmcore.values import _no_control_characters_in_text as _text

__all__ = [
    "AssignParty",
    "AssignTask",
    "BulkUpdate",
    "CancelTask",
    "ChangeFieldRules",
    "ChangeOpportunityOwner",
    "Command",
    "CompleteTask",
    "ConvertParty",
    "DefineField",
    "DisqualifyLead",
    "EngageParty",
    "LinkParty",
    "LoseOpportunity",
    "MergeParties",
    "MoveCloseDate",
    "MoveStage",
    "OpenOpportunity",
    "OpportunityCommand",
    "OverrideProbability",
    "PartyCommand",
    "PlanTask",
    "QualifyLead",
    "ReassignTask",
    "RecordDelivery",
    "ReestimateValue",
    "RegisterParty",
    "RegisterPartyWithFields",
    "ReopenOpportunity",
    "ReopenParty",
    "RescheduleTask",
    "RestoreParty",
    "RetireField",
    "SetFields",
    "SetPartyAside",
    "SubscribeTo",
    "TaskCommand",
    "UnmergeParty",
    "UnsubscribeFrom",
    "UpdateIdentity",
    "UpdateProfile",
    "WinOpportunity",
    "invalid_input",
    "validate",
]

Reference = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_plain)
]
Profile = Annotated[dict[TraitName, TraitValue], Field(max_length=100)]


class Command(BaseModel):
    """What every command carries: who asks, and when it takes effect (default: now)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: ActorId
    effective_at: EffectiveTime | None = None


#: How many e-mail addresses, phone numbers or web links one party may hold.
MAX_CONTACT_POINTS = 20
#: Identity fields only a person has, and only an organization has.
PERSON_ONLY = frozenset({"given_name", "family_name", "birth_date"})
ORGANIZATION_ONLY = frozenset({"vat_number"})
IDENTITY_FIELDS = (
    "given_name", "family_name", "emails", "phones", "birth_date", "address", "web_links", "vat_number",
)


def _birth_date(value: date) -> date:
    try:
        return BirthDate(value=value).value
    except pydantic.ValidationError as error:
        raise ValueError(error.errors()[0]["msg"].removeprefix("Value error, ")) from None


def _region(value: str) -> str:
    region = value.strip().upper()
    if len(region) != 2 or not region.isalpha():
        raise ValueError("a region is a two-letter country code, e.g. IT")
    return region


class _Identity(BaseModel):
    """Who a party is: names, contact points, birth date, address, web links, VAT number.

    The first e-mail address and the first phone number are the primary ones. Phone numbers without
    ``+`` and a country code are read as dialled in ``phone_region`` (the CRM's default region, Italy
    unless configured).
    """

    given_name: Name | None = None
    family_name: Name | None = None
    phone_region: Annotated[str, AfterValidator(_region)] | None = None
    emails: Annotated[list[EmailAddress], Field(max_length=MAX_CONTACT_POINTS)] | None = None
    phones: Annotated[list[str], Field(max_length=MAX_CONTACT_POINTS)] | None = None
    birth_date: Annotated[date, AfterValidator(_birth_date)] | None = None
    address: PostalAddress | None = None
    web_links: Annotated[list[WebLink], Field(max_length=MAX_CONTACT_POINTS)] | None = None
    vat_number: VatNumber | None = None

    @pydantic.field_validator("phones")
    @classmethod
    def _phones_in_e164(cls, value: list[str] | None, info: pydantic.ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        region = info.data.get("phone_region") or "IT"
        numbers = []
        for index, text in enumerate(value):
            try:
                numbers.append(e164(text, region))
            except ValueError as error:
                raise ValueError(f"phones[{index}] {text!r}: {error}") from None
        return numbers

    def identity(self, fields: Iterable[str]) -> dict[str, Any]:
        """The named identity fields as stored: JSON-native, normalised, repeated contact points dropped."""
        stored: dict[str, Any] = {}
        for field in fields:
            value = getattr(self, field)
            if value is None:
                stored[field] = None
            elif field == "emails":
                # the claim key (``identity_keys_of``): the stored address lower-cased
                stored[field] = _unique([e.address for e in value], [e.address.lower() for e in value])
            elif field == "phones":
                stored[field] = _unique(value, value)
            elif field == "web_links":
                stored[field] = _unique([str(w) for w in value], [w.key for w in value])
            elif field == "birth_date":
                stored[field] = value.isoformat()
            elif field == "address":
                stored[field] = value.model_dump(mode="json")
            elif field == "vat_number":
                stored[field] = value.key
            else:
                stored[field] = value
        return stored

    def _check_kind(self, kind: PartyKind, given: Iterable[str]) -> None:
        wrong = PERSON_ONLY if kind is PartyKind.ORGANIZATION else ORGANIZATION_ONLY
        misplaced = sorted(f for f in given if f in wrong and getattr(self, f) is not None)
        if misplaced:
            article = "an" if kind is PartyKind.ORGANIZATION else "a"
            raise ValueError(f"{', '.join(misplaced)}: not for {article} {kind.value}")


def _unique(values: list[str], keys: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for value, key in zip(values, keys, strict=True):
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return kept


class RegistrationCore(Command):
    """The fields of a registration without identity values (the bulk path's fast row shape)."""

    kind: PartyKind
    name: Name
    stage: Stage = Stage.SUSPECT
    organization_name: Name | None = None
    contact_name: Name | None = None
    channel: Channel | None = None
    owner: ActorId | None = None
    profile: Profile = Field(default_factory=dict)


class RegisterParty(RegistrationCore, _Identity):
    """Register a person or an organization (default stage: suspect), with its identity values.

    ``name`` may be left out for a person given both ``given_name`` and ``family_name``.
    """

    name: Name | None = None  # type: ignore[assignment]

    @pydantic.model_validator(mode="after")
    def _names(self) -> RegisterParty:
        self._check_kind(self.kind, IDENTITY_FIELDS)
        if self.name is None:
            if self.given_name is None or self.family_name is None:
                raise ValueError("name is required (or, for a person, given_name and family_name)")
            object.__setattr__(self, "name", f"{self.given_name} {self.family_name}")
        return self

    @property
    def display_name(self) -> str:
        """The party's name (set by validation)."""
        assert self.name is not None
        return self.name

    def stored_identity(self) -> dict[str, Any]:
        """The identity fields given, as stored (empty ones left out)."""
        return {k: v for k, v in self.identity(IDENTITY_FIELDS).items() if v not in (None, [])}


class PartyCommand(Command):
    """A command on one existing party. ``expected_version`` refuses to act if the party moved on."""

    party_id: UUID
    expected_version: Annotated[int, Field(ge=1)] | None = None


class EngageParty(PartyCommand):
    """A suspect's first interaction: it becomes a lead."""

    channel: Channel


class QualifyLead(PartyCommand):
    """Qualify a lead; optionally link its person to an existing target or customer organization."""

    link_to: UUID | None = None


class DisqualifyLead(PartyCommand):
    """A lead (or prospect, or target) fails qualification."""

    reason: Reason


class ReopenParty(PartyCommand):
    """A disqualified party becomes a lead again."""

    reason: Reason | None = None


class ConvertParty(PartyCommand):
    """A purchase makes a prospect or target a customer."""

    reference: Reference | None = None


class AssignParty(PartyCommand):
    """Assign the party to a sales rep (``None`` unassigns)."""

    owner: ActorId | None


class LinkParty(PartyCommand):
    """Make a person belong to an organization."""

    organization_id: UUID


class UpdateProfile(PartyCommand):
    """Set segmentation traits; a ``None`` value removes one."""

    changes: Annotated[dict[TraitName, TraitValue], Field(min_length=1, max_length=100)]


class UpdateIdentity(PartyCommand, _Identity):
    """Change who a party is: each field given replaces the stored one (``None`` clears it).

    ``name`` renames the party; changing a person's given or family name renames it too.
    """

    name: Name | None = None

    @pydantic.model_validator(mode="after")
    def _something_to_change(self) -> UpdateIdentity:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be cleared")
        if not set(self.model_fields_set) & {*IDENTITY_FIELDS, "name"}:
            raise ValueError(f"nothing to change: give one of name, {', '.join(IDENTITY_FIELDS)}")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, as stored."""
        return self.identity([f for f in (*IDENTITY_FIELDS, "name") if f in self.model_fields_set])


class MergeParties(Command):
    """Merge the duplicate ``loser_id`` into ``survivor_id`` (field choices: survivor, loser or both)."""

    survivor_id: UUID
    loser_id: UUID
    reason: Reason
    choose: dict[str, Literal["survivor", "loser", "both"]] = Field(default_factory=dict)


class UnmergeParty(Command):
    """Undo the merge of ``loser_id`` into its survivor."""

    loser_id: UUID
    reason: Reason


class SetPartyAside(PartyCommand):
    """Set a party aside (stale, or moved to the generic newsletter list)."""

    reason: Reason


class RestoreParty(PartyCommand):
    """Bring a set-aside party back."""

    reason: Reason | None = None


class BulkUpdate(Command):
    """One row of :meth:`crmcore.CRM.bulk_update`: a new owner and/or profile changes for a party."""

    party_id: UUID
    owner: ActorId | None = None
    profile: Profile = Field(default_factory=dict)


# ---------------------------------------------------------------------- custom fields

#: A custom field's (or profile trait's) name: a lower-case identifier.
FieldName = TraitName

#: Values for custom fields by name, as given (each is checked by its field's rules).
FieldValues = Annotated[dict[FieldName, Any], Field(max_length=200)]
class SubscribeTo(PartyCommand):
    """The party subscribed to a channel, on a lawful basis, as ``source`` reports."""

    channel: ConsentChannel
    source: Source
    lawful_basis: LawfulBasis
    evidence: Evidence | None = None
    external_id: ExternalId | None = None


class UnsubscribeFrom(PartyCommand):
    """The party unsubscribed from one channel (``channel``), several, or ``channels="all"``."""

    channel: ConsentChannel | None = None
    channels: Annotated[list[ConsentChannel], Field(min_length=1)] | Literal["all"] | None = None
    source: Source
    evidence: Evidence | None = None
    external_id: ExternalId | None = None

    @model_validator(mode="after")
    def _one_choice(self) -> UnsubscribeFrom:
        if (self.channel is None) == (self.channels is None):
            raise ValueError("give either channel or channels")
        return self

    def chosen(self) -> list[ConsentChannel]:
        """The channels to unsubscribe from, each once, in the order of :class:`ConsentChannel`."""
        if self.channels == "all":
            return list(ConsentChannel)
        wanted = set(self.channels) if self.channels is not None else {self.channel}
        return [c for c in ConsentChannel if c in wanted]


class RecordDelivery(PartyCommand):
    """What happened to a message sent to an e-mail address or phone number (outcome and/or raw code)."""

    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
    outcome: DeliveryOutcome | None = None
    raw_code: RawCode | None = None
    external_id: ExternalId | None = None
    region: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "IT"



class RegisterPartyWithFields(RegisterParty):
    """:class:`RegisterParty` with custom field values (apart, so bulk registration rows stay as they are)."""

    fields: FieldValues = Field(default_factory=dict)


class DefineField(Command):
    """Add a field to the catalog."""

    definition: FieldDefinition


class ChangeFieldRules(Command):
    """Change the rules of an active field: ``changes`` replace the named parts of its definition."""

    name: FieldName
    changes: Annotated[dict[str, Any], Field(min_length=1)]


class RetireField(Command):
    """Retire an active field: no new values, stored values stay."""

    name: FieldName
    reason: Reason


class SetFields(PartyCommand):
    """Set a party's custom field values; a ``None`` value clears one."""

    values: Annotated[dict[FieldName, Any], Field(min_length=1, max_length=200)]


# -- opportunities -------------------------------------------------------------------------------------

#: A stage, pipeline or lost reason as named in the CRM's configuration (matched ignoring case).
ConfiguredName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_plain)
]


class _Valued(BaseModel):
    """A ``value`` given as :class:`Money` (or its stored dict), or as an amount with ``currency``."""

    value: Money
    currency: Currency | None = None

    @model_validator(mode="before")
    @classmethod
    def _amount_with_currency(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        value, currency = data.get("value"), data.get("currency")
        if value is None or isinstance(value, Money | dict):
            return data
        if currency is None:
            raise ValueError("give value as Money, or an amount with currency=")
        return {**data, "value": {"amount": value, "currency": currency}}

    @model_validator(mode="after")
    def _same_currency(self) -> _Valued:
        if self.currency is not None and self.currency != self.value.currency:
            raise ValueError(f"value is in {self.value.currency}, currency says {self.currency}")
        return self


class OpenOpportunity(Command, _Valued):
    """Open an opportunity for a prospect, target or customer, at a stage of a configured pipeline."""

    party_id: UUID
    title: Name
    owner: ActorId
    expected_close: date
    pipeline: ConfiguredName | None = None
    stage: ConfiguredName | None = None
    campaign_id: UUID | None = None


class OpportunityCommand(Command):
    """A command on one opportunity. ``expected_version`` refuses to act if the opportunity moved on."""

    opportunity_id: UUID
    expected_version: Annotated[int, Field(ge=1)] | None = None


class MoveStage(OpportunityCommand):
    """Move an open opportunity to another open stage (its default probability and category apply)."""

    stage: ConfiguredName


class ReestimateValue(OpportunityCommand, _Valued):
    """Re-estimate an open opportunity's value (in its currency)."""


class MoveCloseDate(OpportunityCommand):
    """Expect an open opportunity to close on another date."""

    expected_close: date


class ChangeOpportunityOwner(OpportunityCommand):
    """Give an open opportunity to another owner."""

    owner: ActorId


class OverrideProbability(OpportunityCommand):
    """Set an open opportunity's probability by judgement, until its next stage move."""

    probability: Probability


class WinOpportunity(OpportunityCommand):
    """Close an opportunity as won, with optional free-text reasons."""

    reasons: Annotated[list[Reason], Field(max_length=20)] = Field(default_factory=list)


class LoseOpportunity(OpportunityCommand):
    """Close an opportunity as lost, with one or more reasons from the CRM's list."""

    reasons: Annotated[list[ConfiguredName], Field(min_length=1, max_length=20)]


class ReopenOpportunity(OpportunityCommand):
    """Reopen a won or lost opportunity at an open stage (default: the stage it closed from)."""

    stage: ConfiguredName | None = None
    reason: Reason


# -- tasks ---------------------------------------------------------------------------------------------

#: A task's kind as configured (``CRM(task_kinds=...)``), matched ignoring case.
TaskKind = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), AfterValidator(_plain)
]
#: The people a task is assigned to: 1 to 50 names.
Assignees = Annotated[list[ActorId], Field(min_length=1, max_length=50)]
#: What a completed task achieved: free text of up to 2,000 characters.
Outcome = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
                   AfterValidator(_text)]


def _no_duplicates(names: list[str]) -> list[str]:
    folded = [n.casefold() for n in names]
    twice = [n for n in names if folded.count(n.casefold()) > 1]
    if twice:
        raise ValueError(f"{twice[0]!r} is named twice")
    return names


UniqueAssignees = Annotated[Assignees, AfterValidator(_no_duplicates)]


class _Scheduled(BaseModel):
    """Either ``due_at`` (an aware date-time, with an optional ``duration_minutes``) or ``deadline``; which
    one is given is checked by :func:`crmcore.policies.tasks.check_schedule`, naming the field."""

    due_at: AwareDatetime | None = None
    duration_minutes: Annotated[int, Field(ge=1, le=1440, strict=True)] | None = None
    deadline: date | None = None


class PlanTask(Command, _Scheduled):
    """Plan a task of a configured kind for one or more people, for a party and/or an opportunity."""

    kind: TaskKind
    subject: Name
    assignees: UniqueAssignees
    party_id: UUID | None = None
    opportunity_id: UUID | None = None
    priority: TaskPriority = TaskPriority.NORMAL


class TaskCommand(Command):
    """A command on one task. ``expected_version`` refuses to act if the task moved on."""

    task_id: UUID
    expected_version: Annotated[int, Field(ge=1)] | None = None


class AssignTask(TaskCommand):
    """Add people to an open task."""

    assignees: UniqueAssignees


class ReassignTask(TaskCommand):
    """Replace the people of an open task."""

    assignees: UniqueAssignees


class RescheduleTask(TaskCommand, _Scheduled):
    """Move an open task to a new due date-time or deadline."""


class CompleteTask(TaskCommand):
    """Declare an open task done: by one of its people, or by anyone ``on_behalf`` of them."""

    by: ActorId
    on_behalf: Annotated[bool, Field(strict=True)] = False
    time_spent_minutes: Annotated[int, Field(ge=0, le=10_000, strict=True)] | None = None
    outcome: Outcome | None = None


class CancelTask(TaskCommand):
    """Cancel an open task, with the reason."""

    reason: Reason
