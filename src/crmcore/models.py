"""Read models: frozen, JSON-serialisable answers a frontend can render (each has a JSON schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from crmcore.fields import FieldDefinition
from crmcore.values import Channel, PartyKind, Stage

__all__ = [
    "Change",
    "FieldChange",
    "FieldScanFinding",
    "FieldValueView",
    "PartyCounts",
    "PartySummary",
    "PartyView",
    "Qualification",
    "TimelineEntry",
]


class _ReadModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class PartyView(_ReadModel):
    """A party as it stands (or stood at a version or moment)."""

    id: UUID
    version: int
    kind: PartyKind
    stage: Stage
    name: str
    organization_name: str | None
    contact_name: str | None
    channel: Channel | None
    owner: str | None
    organization_id: UUID | None
    profile: dict[str, Any]
    set_aside: bool
    set_aside_reason: str | None
    disqualification_reason: str | None
    qualified_from: UUID | None
    registered_at: datetime
    last_effective_at: datetime
    custom_fields: dict[str, Any] = {}
    custom_field_versions: dict[str, int] = {}


class FieldChange(_ReadModel):
    """One field's value before and after an event."""

    before: Any
    after: Any


class TimelineEntry(_ReadModel):
    """One event in a party's history: what happened, who did it, when it took effect and was recorded."""

    version: int
    event: str
    actor: str
    effective_at: datetime
    recorded_at: datetime
    data: dict[str, Any]
    changes: dict[str, FieldChange]


class Change(_ReadModel):
    """A committed event, as told to an embedding application; ``position`` orders all changes."""

    position: int
    aggregate_id: UUID
    aggregate_type: str
    event: str
    version: int
    actor: str
    effective_at: datetime
    recorded_at: datetime
    data: dict[str, Any]


class Qualification(_ReadModel):
    """What qualifying a lead produced: the prospect and/or target, linked when both exist."""

    lead_id: UUID
    stage: Stage
    prospect_id: UUID | None
    target_id: UUID | None


class PartySummary(_ReadModel):
    """A party's row in the ``parties`` view."""

    id: UUID
    kind: PartyKind
    stage: Stage
    name: str
    owner: str | None
    organization_id: UUID | None
    set_aside: bool
    since: datetime


class PartyCounts(_ReadModel):
    """How many parties there are by stage, by kind and by owner (``unassigned`` have none)."""

    total: int
    by_stage: dict[Stage, int]
    by_kind: dict[PartyKind, int]
    by_owner: dict[str, int]
    unassigned: int


class FieldValueView(_ReadModel):
    """One custom field value of a party, with the catalog version and the definition it was written under.

    ``definition`` is None only if the catalog at that version has no such active field (which the
    commands never let happen). ``retired`` says the field has been retired since.
    """

    name: str
    value: Any
    catalog_version: int
    definition: FieldDefinition | None
    retired: bool = False


class FieldScanFinding(_ReadModel):
    """A party whose stored value (custom field or profile trait) breaks a field's rules."""

    party_id: UUID
    field: str
    value: Any
    message: str
    suggestion: str | None = None
