"""``opportunities``: one row per opportunity with its party, campaign, owner, value, stage and status."""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.domain import DomainEventProtocol

from crmcore.aggregates.opportunity import OPPORTUNITY_EVENTS, Opportunity
from crmcore.projections.base import Row, View

__all__ = ["OpportunitiesView"]

_STAGE_EVENTS = (Opportunity.StageMoved, Opportunity.Won, Opportunity.Lost, Opportunity.Reopened)


class OpportunitiesView(View):
    """Opportunities by party, owner, stage and status. Every event carries what the row needs."""

    name: ClassVar[str] = "opportunities"
    version: ClassVar[int] = 2
    event_classes: ClassVar[tuple[type[Any], ...]] = OPPORTUNITY_EVENTS


    def evolve(self, row: Row | None, event: DomainEventProtocol[Any]) -> Row | None:
        if isinstance(event, Opportunity.Opened):
            return {
                "id": str(event.originator_id),
                "party_id": str(event.party_id),
                "campaign_id": None if event.campaign_id is None else str(event.campaign_id),
                "title": event.title,
                "owner": event.owner,
                "value": dict(event.value),
                "pipeline": event.pipeline,
                "stage": event.stage,
                "probability": event.probability,
                "category": event.category,
                "expected_close": event.expected_close,
                "status": "open",
                "opened_at": event.effective_at.isoformat(),
            }
        if row is None:
            return None
        new = dict(row)
        if isinstance(event, _STAGE_EVENTS):
            new.update(stage=event.stage, probability=event.probability, category=event.category)
            new["status"] = {Opportunity.Won: "won", Opportunity.Lost: "lost"}.get(type(event), "open")
        elif isinstance(event, Opportunity.ValueReestimated):
            new["value"] = dict(event.value)
        elif isinstance(event, Opportunity.CloseDateMoved):
            new["expected_close"] = event.expected_close
        elif isinstance(event, Opportunity.OwnerChanged):
            new["owner"] = event.owner
        elif isinstance(event, Opportunity.ProbabilityOverridden):
            new["probability"] = event.probability
        return new
