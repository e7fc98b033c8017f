"""The ``Opportunity`` aggregate: a possible sale to a qualified party, moving through a pipeline.

Public commands check the rules (``crmcore.policies.pipelines``) and the effective time, then call a private
``@event`` method that only mutates state: those re-run on every replay and must never raise. Every event
carries the stage, probability and forecast category in force after it, so history reads the same whatever
the pipeline configuration later becomes. Amounts and dates are stored as strings.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as _Snapshot

from crmcore._ids import new_uuid7
from crmcore.aggregates.party import _check_not_future, _next_effective_time
from crmcore.exceptions import CurrencyMismatch
from crmcore.policies import pipelines
from crmcore.policies.pipelines import ForecastCategory, OpportunityStatus, Pipeline, PipelineStage
from crmcore.values import Money, utc_now

__all__ = ["OPPORTUNITY_EVENTS", "Opportunity"]


class Opportunity(Aggregate):
    """A possible sale to a party: owner, estimated value, probability, expected close date and stage."""

    class Event(Aggregate.Event):
        """Every opportunity event says who did it and when it took effect."""

        actor: str
        effective_at: datetime

    class Opened(Event, Aggregate.Created):
        """An opportunity opened; ``campaign_id`` names the campaign it came from (None: no campaign)."""

        class_version = 2

        party_id: UUID
        title: str
        owner: str
        value: dict[str, str]
        pipeline: str
        stage: str
        probability: int
        category: str
        expected_close: str
        campaign_id: UUID | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Opportunities opened before campaigns existed came from none."""
            state["campaign_id"] = None

    class StageMoved(Event):
        stage: str
        probability: int
        category: str

    class ValueReestimated(Event):
        value: dict[str, str]

    class CloseDateMoved(Event):
        expected_close: str
        previous: str

    class OwnerChanged(Event):
        owner: str

    class ProbabilityOverridden(Event):
        probability: int

    class Won(Event):
        reasons: list[str]
        stage: str
        probability: int
        category: str

    class Lost(Event):
        reasons: list[str]
        stage: str
        probability: int
        category: str

    class Reopened(Event):
        stage: str
        reason: str
        probability: int
        category: str

    class Snapshot(_Snapshot):
        """A snapshot that gives back the enum and Decimal types JSON turned into strings."""

        def mutate(self, _: None) -> Opportunity:
            opportunity = super().mutate(_)
            assert isinstance(opportunity, Opportunity)
            opportunity.status = OpportunityStatus(opportunity.status)
            opportunity.category = ForecastCategory(opportunity.category)
            opportunity.amount = Decimal(opportunity.amount)
            if not hasattr(opportunity, "campaign_id"):  # snapshots taken before campaigns existed
                opportunity.campaign_id = None
            return opportunity

    # ------------------------------------------------------------------ creation

    @staticmethod
    def create_id(**_: Any) -> UUID:
        """New opportunities get time-ordered UUIDv7 ids."""
        return new_uuid7()

    @event(Opened)
    def __init__(
        self,
        *,
        party_id: UUID,
        title: str,
        owner: str,
        value: dict[str, str],
        pipeline: str,
        stage: str,
        probability: int,
        category: str,
        expected_close: str,
        actor: str,
        effective_at: datetime,
        campaign_id: UUID | None = None,
    ) -> None:
        self.party_id = party_id
        self.campaign_id = campaign_id
        self.title = title
        self.owner = owner
        self.amount = Decimal(value["amount"])
        self.currency = value["currency"]
        self.pipeline = pipeline
        self.stage = stage
        self.probability = probability
        self.category = ForecastCategory(category)
        self.status = OpportunityStatus.OPEN
        self.expected_close = expected_close
        self.close_date_history: list[dict[str, str]] = []
        self.reasons: list[str] = []
        self.last_open_stage = stage
        self.opened_at = effective_at
        self.closed_at: datetime | None = None
        self.last_effective_at = effective_at

    @classmethod
    def open(
        cls,
        *,
        party_id: UUID,
        title: str,
        owner: str,
        value: Money,
        pipeline: Pipeline,
        stage: str | None,
        expected_close: date,
        actor: str,
        effective_at: datetime | None = None,
        campaign_id: UUID | None = None,
    ) -> Opportunity:
        """Open an opportunity at an open stage of ``pipeline`` (default: its first), at the stage's odds;
        ``campaign_id`` links it to the campaign it came from (checked by the caller)."""
        chosen = pipeline.open_stage(stage) if stage is not None else pipeline.open_stages[0]
        at = _check_not_future(effective_at or utc_now())
        return cls(
            party_id=party_id, title=title, owner=owner, value=value.stored(), pipeline=pipeline.name,
            stage=chosen.name, probability=chosen.probability, category=chosen.category.value,
            expected_close=expected_close.isoformat(), actor=actor, effective_at=at, campaign_id=campaign_id,
        )

    # ------------------------------------------------------------------ reading

    @property
    def value(self) -> Money:
        """The estimated value."""
        return Money(amount=self.amount, currency=self.currency)

    @property
    def close_date(self) -> date:
        """The expected close date."""
        return date.fromisoformat(self.expected_close)

    def state(self) -> dict[str, Any]:
        """The opportunity's state as plain data (for comparisons and read models)."""
        return {
            "id": self.id,
            "version": self.version,
            "party_id": self.party_id,
            "campaign_id": self.campaign_id,
            "title": self.title,
            "owner": self.owner,
            "value": self.value,
            "pipeline": self.pipeline,
            "stage": self.stage,
            "probability": self.probability,
            "category": self.category,
            "expected_close": self.close_date,
            "status": self.status,
            "reasons": list(self.reasons),
            "close_date_history": [
                {"expected_close": date.fromisoformat(h["expected_close"]),
                 "previous": date.fromisoformat(h["previous"]),
                 "effective_at": datetime.fromisoformat(h["effective_at"]), "actor": h["actor"]}
                for h in self.close_date_history
            ],
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "last_effective_at": self.last_effective_at,
        }

    # ------------------------------------------------------------------ commands

    def move_stage(
        self, *, pipeline: Pipeline, stage: str, actor: str, effective_at: datetime | None = None,
    ) -> bool:
        """Move to another open stage: its default probability and category replace any override.

        Returns False (recording nothing) when the opportunity is already there at the stage's odds.
        """
        pipelines.check_can_change(self.status, "move its stage")
        target = pipeline.open_stage(stage)
        at = self._when(effective_at)
        now = (self.stage, self.probability, self.category)
        if (target.name, target.probability, target.category) == now:
            return False
        self._stage_moved(stage=target.name, probability=target.probability,
                          category=target.category.value, actor=actor, effective_at=at)
        return True

    def reestimate(self, *, value: Money, actor: str, effective_at: datetime | None = None) -> bool:
        """Re-estimate the value, in the opportunity's currency. Returns False if it is unchanged."""
        pipelines.check_can_change(self.status, "re-estimate it")
        if value.currency != self.currency:
            raise CurrencyMismatch(self.currency, value.currency)
        at = self._when(effective_at)
        if value.amount == self.amount:
            return False
        self._value_reestimated(value=value.stored(), actor=actor, effective_at=at)
        return True

    def move_close_date(
        self, *, expected_close: date, actor: str, effective_at: datetime | None = None,
    ) -> bool:
        """Expect it to close on another date; every move is kept. Returns False if the date is unchanged."""
        pipelines.check_can_change(self.status, "move its close date")
        at = self._when(effective_at)
        if expected_close.isoformat() == self.expected_close:
            return False
        self._close_date_moved(expected_close=expected_close.isoformat(), previous=self.expected_close,
                               actor=actor, effective_at=at)
        return True

    def change_owner(self, *, owner: str, actor: str, effective_at: datetime | None = None) -> bool:
        """Give the opportunity to another owner. Returns False if the owner is unchanged."""
        pipelines.check_can_change(self.status, "change its owner")
        at = self._when(effective_at)
        if owner == self.owner:
            return False
        self._owner_changed(owner=owner, actor=actor, effective_at=at)
        return True

    def override_probability(
        self, *, probability: int, actor: str, effective_at: datetime | None = None,
    ) -> bool:
        """Set the probability by judgement, until the next stage move. Returns False if unchanged."""
        pipelines.check_can_change(self.status, "override its probability")
        at = self._when(effective_at)
        if probability == self.probability:
            return False
        self._probability_overridden(probability=probability, actor=actor, effective_at=at)
        return True

    def win(
        self, *, pipeline: Pipeline, reasons: list[str], actor: str, effective_at: datetime | None = None,
    ) -> None:
        """Close the opportunity as won: probability 100, category closed."""
        pipelines.check_can_change(self.status, "win it")
        at = self._when(effective_at)
        self._won(reasons=list(reasons), **_stage_fields(pipeline.won), actor=actor, effective_at=at)

    def lose(
        self, *, pipeline: Pipeline, reasons: list[str], actor: str, effective_at: datetime | None = None,
    ) -> None:
        """Close the opportunity as lost (reasons already checked against the list): 0 %, omitted."""
        pipelines.check_can_change(self.status, "lose it")
        at = self._when(effective_at)
        self._lost(reasons=list(reasons), **_stage_fields(pipeline.lost), actor=actor, effective_at=at)

    def reopen(
        self, *, pipeline: Pipeline, stage: str | None, reason: str, actor: str,
        effective_at: datetime | None = None,
    ) -> None:
        """Reopen a won or lost opportunity at an open stage (default: the stage it closed from)."""
        pipelines.check_can_reopen(self.status)
        target = pipeline.open_stage(stage if stage is not None else self.last_open_stage)
        at = self._when(effective_at)
        self._reopened(reason=reason, **_stage_fields(target), actor=actor, effective_at=at)

    def _when(self, effective_at: datetime | None) -> datetime:
        return _next_effective_time(effective_at, self.last_effective_at, "opportunity")

    # ------------------------------------------------------------------ mutators (never raise)

    @event(StageMoved)
    def _stage_moved(
        self, stage: str, probability: int, category: str, actor: str, effective_at: datetime,
    ) -> None:
        self._set_stage(stage, probability, category)
        self.last_open_stage = stage
        self.last_effective_at = effective_at

    @event(ValueReestimated)
    def _value_reestimated(self, value: dict[str, str], actor: str, effective_at: datetime) -> None:
        self.amount = Decimal(value["amount"])
        self.currency = value["currency"]
        self.last_effective_at = effective_at

    @event(CloseDateMoved)
    def _close_date_moved(
        self, expected_close: str, previous: str, actor: str, effective_at: datetime,
    ) -> None:
        self.close_date_history.append({
            "expected_close": expected_close, "previous": previous,
            "effective_at": effective_at.isoformat(), "actor": actor,
        })
        self.expected_close = expected_close
        self.last_effective_at = effective_at

    @event(OwnerChanged)
    def _owner_changed(self, owner: str, actor: str, effective_at: datetime) -> None:
        self.owner = owner
        self.last_effective_at = effective_at

    @event(ProbabilityOverridden)
    def _probability_overridden(self, probability: int, actor: str, effective_at: datetime) -> None:
        self.probability = probability
        self.last_effective_at = effective_at

    @event(Won)
    def _won(
        self, reasons: list[str], stage: str, probability: int, category: str, actor: str,
        effective_at: datetime,
    ) -> None:
        self._close(OpportunityStatus.WON, reasons, stage, probability, category, effective_at)

    @event(Lost)
    def _lost(
        self, reasons: list[str], stage: str, probability: int, category: str, actor: str,
        effective_at: datetime,
    ) -> None:
        self._close(OpportunityStatus.LOST, reasons, stage, probability, category, effective_at)

    @event(Reopened)
    def _reopened(
        self, stage: str, reason: str, probability: int, category: str, actor: str, effective_at: datetime,
    ) -> None:
        self.status = OpportunityStatus.OPEN
        self._set_stage(stage, probability, category)
        self.last_open_stage = stage
        self.reasons = []
        self.closed_at = None
        self.last_effective_at = effective_at

    def _set_stage(self, stage: str, probability: int, category: str) -> None:
        self.stage = stage
        self.probability = probability
        self.category = ForecastCategory(category)

    def _close(
        self, status: OpportunityStatus, reasons: list[str], stage: str, probability: int, category: str,
        effective_at: datetime,
    ) -> None:
        self.status = status
        self._set_stage(stage, probability, category)
        self.reasons = list(reasons)
        self.closed_at = effective_at
        self.last_effective_at = effective_at


def _stage_fields(stage: PipelineStage) -> dict[str, Any]:
    return {"stage": stage.name, "probability": stage.probability, "category": stage.category.value}


#: Every event class an opportunity records (what a view reading whole opportunities subscribes to).
OPPORTUNITY_EVENTS: tuple[type[Opportunity.Event], ...] = (
    Opportunity.Opened,
    Opportunity.StageMoved,
    Opportunity.ValueReestimated,
    Opportunity.CloseDateMoved,
    Opportunity.OwnerChanged,
    Opportunity.ProbabilityOverridden,
    Opportunity.Won,
    Opportunity.Lost,
    Opportunity.Reopened,
)
