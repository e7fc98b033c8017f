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
    CurrencyMismatch,
    DuplicateParty,
    EffectiveTimeOutOfOrder,
    FieldAlreadyDefined,
    FieldNotDefined,
    FieldRuleViolation,
    IllegalTransition,
    InvalidInput,
    OpportunityNotFound,
    PartyMerged,
    PartyNotFound,
    StoreConfigurationError,
)
from crmcore.fields import STANDARD_PROFILE, FieldDefinition, FieldKind, FieldSet, LabelChoice
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
    CloseDateMove,
    ClosedFigures,
    ConsentEntry,
    ContactDecision,
    CurrencyForecast,
    Deliverability,
    DeliveryEntry,
    DuplicateMatch,
    FieldChange,
    FieldScanFinding,
    FieldValueView,
    Forecast,
    MailingExclusion,
    MatchReason,
    MergeField,
    MergePlan,
    OpportunitySummary,
    OpportunityView,
    PartyCounts,
    PartySummary,
    PartyView,
    PipelineFigures,
    Qualification,
    Registration,
    TimelineEntry,
)
from crmcore.policies.consent import BouncePolicy
from crmcore.policies.pipelines import (
    DEFAULT_LOST_REASONS,
    DEFAULT_PIPELINE,
    ForecastCategory,
    OpportunityStatus,
    Pipeline,
    PipelineStage,
)
from crmcore.stores import StoreKind, StoreSettings, create_cipher_key, parse_store_url
from crmcore.values import (
    Channel,
    ConsentChannel,
    ConsentStatus,
    DeliveryOutcome,
    LawfulBasis,
    Money,
    PartyKind,
    Stage,
)

__all__ = [
    "CRM",
    "DEFAULT_LOST_REASONS",
    "DEFAULT_PIPELINE",
    "STANDARD_PROFILE",
    "BirthDate",
    "BouncePolicy",
    "Change",
    "ChangeListener",
    "Channel",
    "CloseDateMove",
    "ClosedFigures",
    "ConcurrentUpdateError",
    "ConsentChannel",
    "ConsentEntry",
    "ConsentStatus",
    "ContactDecision",
    "CrmError",
    "CurrencyForecast",
    "CurrencyMismatch",
    "Deliverability",
    "DeliveryEntry",
    "DeliveryOutcome",
    "Detector",
    "DuplicateCandidate",
    "DuplicateMatch",
    "DuplicateParty",
    "EffectiveTimeOutOfOrder",
    "EmailAddress",
    "FieldAlreadyDefined",
    "FieldChange",
    "FieldDefinition",
    "FieldEvidence",
    "FieldKind",
    "FieldNotDefined",
    "FieldRuleViolation",
    "FieldScanFinding",
    "FieldSet",
    "FieldValueView",
    "Forecast",
    "ForecastCategory",
    "IllegalTransition",
    "InvalidInput",
    "LabelChoice",
    "LawfulBasis",
    "MailingExclusion",
    "MatchReason",
    "MatchRecord",
    "MergeField",
    "MergePlan",
    "Money",
    "OpportunityNotFound",
    "OpportunityStatus",
    "OpportunitySummary",
    "OpportunityView",
    "OrganizationName",
    "PartyCounts",
    "PartyKind",
    "PartyMerged",
    "PartyNotFound",
    "PartySummary",
    "PartyView",
    "PersonName",
    "PhoneNumber",
    "Pipeline",
    "PipelineFigures",
    "PipelineStage",
    "PostalAddress",
    "Qualification",
    "Registration",
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
