"""crmcore: an event-sourced CRM domain library.

Create one :class:`CRM` per process over a store (``memory:``, ``sqlite:///path.db``, ``postgresql://…``)
and call its use-case methods; every change is an immutable event with who did it and when.
"""

from __future__ import annotations

from typing import Any

from crmcore.application import CRM, ChangeListener
from crmcore.exceptions import (
    ConcurrentUpdateError,
    CrmError,
    EffectiveTimeOutOfOrder,
    FieldRuleViolation,
    IllegalTransition,
    InvalidInput,
    PartyNotFound,
    StoreConfigurationError,
)
from crmcore.fields import FieldDefinition, FieldKind, FieldSet, LabelChoice
from crmcore.identity import (
    BirthDate,
    EmailAddress,
    OrganizationName,
    PersonName,
    PhoneNumber,
    PostalAddress,
    VatNumber,
    WebLink,
    parse_identity,
)
from crmcore.matching import Detector, DuplicateCandidate, FieldEvidence, MatchRecord
from crmcore.models import (
    Change,
    FieldChange,
    PartyCounts,
    PartySummary,
    PartyView,
    Qualification,
    TimelineEntry,
)
from crmcore.stores import StoreKind, StoreSettings, create_cipher_key, parse_store_url
from crmcore.values import Channel, PartyKind, Stage

__all__ = [
    "CRM",
    "BirthDate",
    "Change",
    "ChangeListener",
    "Channel",
    "ConcurrentUpdateError",
    "CrmError",
    "Detector",
    "DuplicateCandidate",
    "EffectiveTimeOutOfOrder",
    "EmailAddress",
    "FieldChange",
    "FieldDefinition",
    "FieldEvidence",
    "FieldKind",
    "FieldRuleViolation",
    "FieldSet",
    "IllegalTransition",
    "InvalidInput",
    "LabelChoice",
    "MatchRecord",
    "OrganizationName",
    "PartyCounts",
    "PartyKind",
    "PartyNotFound",
    "PartySummary",
    "PartyView",
    "PersonName",
    "PhoneNumber",
    "PostalAddress",
    "Qualification",
    "Stage",
    "StoreConfigurationError",
    "StoreKind",
    "StoreSettings",
    "TimelineEntry",
    "VatNumber",
    "WebLink",
    "__version__",
    "create_cipher_key",
    "parse_identity",
    "parse_store_url",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("crmcore")
    raise AttributeError(f"module 'crmcore' has no attribute {name!r}")
