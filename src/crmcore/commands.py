"""Validated inputs of the use cases (imperative names). Bad input never reaches an event."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from uuid import UUID

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from crmcore.exceptions import InvalidInput
from crmcore.fields import FieldDefinition
from crmcore.values import (
    ActorId,
    Channel,
    EffectiveTime,
    Name,
    PartyKind,
    Reason,
    Stage,
    TraitName,
    TraitValue,
)
from crmcore.values import _no_control_characters as _plain

__all__ = [
    "AssignParty",
    "BulkUpdate",
    "ChangeFieldRules",
    "Command",
    "ConvertParty",
    "DefineField",
    "DisqualifyLead",
    "EngageParty",
    "LinkParty",
    "PartyCommand",
    "QualifyLead",
    "RegisterParty",
    "RegisterPartyWithFields",
    "ReopenParty",
    "RestoreParty",
    "RetireField",
    "SetFields",
    "SetPartyAside",
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


# ---------------------------------------------------------------------- custom fields

#: A custom field's (or profile trait's) name: a lower-case identifier.
FieldName = TraitName

#: Values for custom fields by name, as given (each is checked by its field's rules).
FieldValues = Annotated[dict[FieldName, Any], Field(max_length=200)]


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
