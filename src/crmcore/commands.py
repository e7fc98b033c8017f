"""Validated inputs of the use cases (imperative names). Bad input never reaches an event."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from crmcore.exceptions import InvalidInput
from crmcore.values import (
    ActorId,
    Channel,
    ConsentChannel,
    DeliveryOutcome,
    EffectiveTime,
    Evidence,
    ExternalId,
    LawfulBasis,
    Name,
    PartyKind,
    RawCode,
    Reason,
    Source,
    Stage,
    TraitName,
    TraitValue,
)
from crmcore.values import _no_control_characters as _plain

__all__ = [
    "AssignParty",
    "BulkUpdate",
    "Command",
    "ConvertParty",
    "DisqualifyLead",
    "EngageParty",
    "LinkParty",
    "PartyCommand",
    "QualifyLead",
    "RecordDelivery",
    "RegisterParty",
    "ReopenParty",
    "RestoreParty",
    "SetPartyAside",
    "SubscribeTo",
    "UnsubscribeFrom",
    "UpdateProfile",
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


class RegisterParty(Command):
    """Register a person or an organization (default stage: suspect)."""

    kind: PartyKind
    name: Name
    stage: Stage = Stage.SUSPECT
    organization_name: Name | None = None
    contact_name: Name | None = None
    channel: Channel | None = None
    owner: ActorId | None = None
    profile: Profile = Field(default_factory=dict)


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


M = TypeVar("M", bound=BaseModel)


def invalid_input(error: pydantic.ValidationError, prefix: str = "") -> InvalidInput:
    """Turn a pydantic error into :class:`InvalidInput`, keeping every problem it lists."""
    errors = [
        {"loc": tuple(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()
    ]
    summary = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in errors[:5]
    )
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return InvalidInput(f"{prefix}invalid {error.title}: {summary}{more}", errors)


def validate(model: type[M], data: Any) -> M:
    """Validate ``data`` (a mapping) as ``model``; raise :class:`InvalidInput` if it does not fit."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise invalid_input(error) from None
