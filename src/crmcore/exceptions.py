"""The whole crmcore error tree.

Every error is a :class:`CrmError`, and also subclasses the builtin that fits, so a caller may catch
``ValueError`` or ``LookupError`` without knowing crmcore.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

__all__ = [
    "CampaignNotFound",
    "CleanUpNotFound",
    "ConcurrentUpdateError",
    "ContactRefused",
    "CrmError",
    "CurrencyMismatch",
    "EffectiveTimeOutOfOrder",
    "FieldAlreadyDefined",
    "FieldNotDefined",
    "FieldRuleViolation",
    "IllegalTransition",
    "InvalidInput",
    "OpportunityNotFound",
    "PartyNotFound",
    "QualificationRefused",
    "ScoringModelNotFound",
    "SegmentNotFound",
    "StoreConfigurationError",
    "TaskNotFound",
]


class CrmError(Exception):
    """The root of every error crmcore raises on purpose."""


class InvalidInput(CrmError, ValueError):
    """Input failed validation; nothing was stored.

    ``errors`` lists each problem as a dict with ``loc`` (the field path), ``msg`` and ``type``,
    in the format pydantic uses.
    """

    def __init__(self, message: str, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = list(errors)


class EffectiveTimeOutOfOrder(InvalidInput):
    """An effective time earlier than the party's previous event was given."""


class FieldRuleViolation(InvalidInput):
    """A custom field's value breaks the field's rules; nothing was stored.

    ``field`` names the field; ``suggestion`` is the closest allowed value, when one is close enough.
    """

    def __init__(
        self,
        message: str,
        errors: Sequence[dict[str, Any]] = (),
        *,
        field: str,
        suggestion: str | None = None,
    ) -> None:
        super().__init__(message, errors)
        self.field = field
        self.suggestion = suggestion


class FieldAlreadyDefined(InvalidInput):
    """A field of that name is already in the catalog (or was, and was retired); nothing was stored.

    ``field`` names it. Names are never reused, so old values stay readable against their definition.
    """

    def __init__(self, field: str, detail: str = "") -> None:
        message = f"field {field!r} is already defined{': ' + detail if detail else ''}"
        super().__init__(message, [{"loc": ("name",), "msg": message, "type": "field_already_defined"}])
        self.field = field


class FieldNotDefined(CrmError, LookupError):
    """No active field of that name is in the catalog; nothing was stored."""

    def __init__(self, field: str, detail: str = "") -> None:
        super().__init__(f"field {field!r} is not defined{': ' + detail if detail else ''}")
        self.field = field


class IllegalTransition(CrmError, ValueError):
    """A command that the party's lifecycle does not allow in its current state; nothing was stored."""

    def __init__(self, message: str, *, party_id: UUID | None = None, stage: str | None = None) -> None:
        super().__init__(message)
        self.party_id = party_id
        self.stage = stage


class PartyMerged(IllegalTransition):
    """The party was merged into another (``survivor_id``): its stream has ended; act on the survivor."""

    def __init__(self, party_id: UUID, survivor_id: UUID) -> None:
        super().__init__(f"party {party_id} was merged into {survivor_id}", party_id=party_id, stage="merged")
        self.survivor_id = survivor_id


class QualificationRefused(CrmError, ValueError):
    """The qualification policy does not recommend qualifying the lead; nothing was stored.

    ``recommendation`` is what it recommends instead (``review`` or ``disqualify``), ``score`` the lead's
    score (0-1), ``failed`` the labels of the rules it failed, ``policy_name`` / ``policy_version`` the
    policy.
    """

    def __init__(
        self,
        party_id: UUID,
        *,
        recommendation: str,
        score: Decimal,
        failed: Sequence[str],
        policy_name: str,
        policy_version: int,
    ) -> None:
        failing = "; failed: " + ", ".join(failed) if failed else ""
        super().__init__(
            f"party {party_id} not qualified: policy {policy_name} v{policy_version} recommends "
            f"{recommendation} (score {score}){failing}"
        )
        self.party_id = party_id
        self.recommendation = recommendation
        self.score = score
        self.failed: tuple[str, ...] = tuple(failed)
        self.policy_name = policy_name
        self.policy_version = policy_version


class DuplicateParty(CrmError, ValueError):
    """Another party already holds this e-mail address, phone number or VAT number; nothing was stored.

    ``existing_id`` is that party, ``field`` and ``key`` the identifier they share.
    """

    def __init__(self, existing_id: UUID, field: str, key: str) -> None:
        super().__init__(f"{field} {key} already belongs to party {existing_id}")
        self.existing_id = existing_id
        self.field = field
        self.key = key


class PartyNotFound(CrmError, LookupError):
    """No party has the given id (or it did not exist yet at the given moment)."""

    def __init__(self, party_id: UUID, detail: str = "") -> None:
        super().__init__(f"party {party_id} not found{': ' + detail if detail else ''}")
        self.party_id = party_id


class ConcurrentUpdateError(CrmError, RuntimeError):
    """Another writer changed the party first; reload and decide again. Nothing was stored."""

    def __init__(self, party_id: UUID | None, detail: str = "") -> None:
        message = "the party was changed by another writer"
        if party_id is not None:
            message = f"party {party_id} was changed by another writer"
        super().__init__(f"{message}{': ' + detail if detail else ''}")
        self.party_id = party_id


class StoreConfigurationError(CrmError, ValueError):
    """A store URL or setting that cannot be used."""


class CurrencyMismatch(InvalidInput):
    """Two amounts in different currencies were combined or compared; nothing was stored."""

    def __init__(self, expected: str, given: str) -> None:
        message = f"amounts in {expected} and {given} cannot be combined"
        super().__init__(message, [{"loc": ("currency",), "msg": message, "type": "currency_mismatch"}])
        self.expected = expected
        self.given = given


class OpportunityNotFound(CrmError, LookupError):
    """No opportunity has the given id (or it did not exist yet at the given version)."""

    def __init__(self, opportunity_id: UUID, detail: str = "") -> None:
        super().__init__(f"opportunity {opportunity_id} not found{': ' + detail if detail else ''}")
        self.opportunity_id = opportunity_id


class TaskNotFound(CrmError, LookupError):
    """No task has the given id (or it did not exist yet at the given version)."""

    def __init__(self, task_id: UUID, detail: str = "") -> None:
        super().__init__(f"task {task_id} not found{': ' + detail if detail else ''}")
        self.task_id = task_id


class SegmentNotFound(CrmError, LookupError):
    """No segment has the given id (or it did not exist yet at the given version, or at the given moment)."""

    def __init__(self, segment_id: UUID, detail: str = "") -> None:
        super().__init__(f"segment {segment_id} not found{': ' + detail if detail else ''}")
        self.segment_id = segment_id
class ScoringModelNotFound(CrmError, LookupError):
    """No predictive scoring model has the given version (or none was trained yet)."""

    def __init__(self, version: object, trained: int) -> None:
        detail = "no model was trained yet" if not trained else f"models 1 to {trained} exist"
        super().__init__(f"scoring model {version!r} not found: {detail}")
        self.version = version


class CleanUpNotFound(CrmError, LookupError):
    """No clean-up run has the given id."""

    def __init__(self, run_id: UUID, detail: str = "") -> None:
        super().__init__(f"clean-up run {run_id} not found{': ' + detail if detail else ''}")
        self.run_id = run_id


class CampaignNotFound(CrmError, LookupError):
    """No campaign has the given id (or it did not exist yet at the given version)."""

    def __init__(self, campaign_id: UUID, detail: str = "") -> None:
        super().__init__(f"campaign {campaign_id} not found{': ' + detail if detail else ''}")
        self.campaign_id = campaign_id


class ContactRefused(CrmError, ValueError):
    """Contacting the party is not allowed (unsubscribed, suppressed address, no address); nothing was stored.

    ``party_id`` is the party, ``reason`` says why.
    """

    def __init__(self, party_id: UUID, reason: str) -> None:
        super().__init__(f"party {party_id} may not be contacted: {reason}")
        self.party_id = party_id
        self.reason = reason
