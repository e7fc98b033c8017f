"""A campaign's results, redemption and return, computed from view rows with no store (design 05 § 4).

The inputs are the campaign as it stood (its aggregate: the frozen audience, who was sent, cost, budget),
its ``campaign_recipients`` rows, each party's campaign touches (from ``party_engagement``, merged
parties' combined into their survivors') and ``pipeline`` rows, all folded as of the same moment.

Unique counts are of recipients and read only recipients actually sent (a report about someone the
campaign had not sent yet, as of the moment asked, counts nowhere), and every kind of evidence implies the
weaker ones (a click proves an open, an open a delivery), so opened <= delivered <= sent for any set of
reports. Rates are ``Decimal`` fractions rounded half-even to 4 places, None when their denominator is 0.

**Attribution.** A campaign *touches* a party at its first open, click, or call reached, interested or
call back (one moment per campaign and party). An opportunity opened at T on party P is credited, among
the touches of P (and of parties merged into P) in [T - window, T], to the earliest (first-touch) and to
the latest (last-touch); an opportunity opened with ``campaign_id`` C counts as touched by C at T and is
last-touch C whatever else touched P. Touches at the same moment are ordered by campaign id. The return
(ROI) is (won value - cost) / cost in the budget's currency: won value in other currencies is shown but
not converted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from uuid import UUID

from crmcore.aggregates.campaign import Campaign
from crmcore.models import (
    AttributedOpportunity,
    AttributionFigures,
    AttributionTotals,
    CampaignResults,
    CampaignTotals,
)
from crmcore.projections.asof import utc_text
from crmcore.projections.base import Row
from crmcore.projections.campaigns import CampaignRecipientsView, PartyEngagementView, engagement_by_survivor
from crmcore.projections.facts import survivor_of
from crmcore.projections.pipeline import PipelineView
from crmcore.projections.runner import ViewRunner
from crmcore.projections.storage import ViewStorage
from crmcore.values import CallOutcome, CampaignChannel, Money

__all__ = [
    "CampaignReader",
    "Credit",
    "ResultsInputs",
    "attribute",
    "campaign_as_of",
    "campaign_results_of",
    "campaign_totals_of",
    "rate",
]

#: Rates and returns are rounded to this many places.
RATE_PLACES = Decimal("0.0001")

_NEWSLETTER = CampaignChannel.NEWSLETTER.value
_TELEMARKETING = CampaignChannel.TELEMARKETING.value
_INTERESTED = CallOutcome.INTERESTED.value
_DELIVERY_EVIDENCE = ("delivered", "opened", "clicked", "unsubscribed", "complaint")
_COUNTS = ("audience", "sent", "delivered", "opened", "opens", "clicked", "clicks", "hard_bounced",
           "soft_bounced", "unsubscribed", "complained", "called", "responses", "linked_opportunities")


def rate(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    """``part / whole`` rounded half-even to 4 places; None when ``whole`` is 0."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN)


def _count(row: Row, kind: str) -> int:
    """How many reports of ``kind`` a ``campaign_recipients`` row counts."""
    held = row.get(kind)
    return 0 if held is None else int(held[2])


@dataclass(frozen=True)
class Credit:
    """Which campaign each attribution model credits an opportunity to (None: none)."""

    first_touch: str | None
    last_touch: str | None


def attribute(
    opportunities: Iterable[Row],
    touches: Mapping[str, Mapping[str, str]],
    window: timedelta,
    survivor: Callable[[str], str] = str,
) -> dict[str, Credit]:
    """Each opportunity's credit (by opportunity id): ``opportunities`` are ``pipeline`` rows, ``touches``
    maps a party id to the campaigns that touched it and when (UTC text); ``survivor`` gives the party
    standing for an opportunity's party now (itself unless it was merged away since)."""
    credits: dict[str, Credit] = {}
    for row in opportunities:
        opened = utc_text(row["opened_at"])
        start = utc_text(datetime.fromisoformat(opened) - window)
        candidates = [(at, campaign) for campaign, at in touches.get(survivor(row["party_id"]), {}).items()
                      if start <= at <= opened]
        linked = row.get("campaign_id")
        if linked is not None:
            candidates.append((opened, linked))
        if not candidates:
            credits[row["id"]] = Credit(None, None)
            continue
        credits[row["id"]] = Credit(min(candidates)[1], linked if linked is not None else max(candidates)[1])
    return credits


def campaign_results_of(
    campaign: Campaign,
    recipients: Mapping[str, Row],
    touches: Mapping[str, Mapping[str, str]],
    opportunities: Iterable[Row],
    *,
    window: timedelta,
    survivor: Callable[[str], str] = str,
    at: datetime | None = None,
    known_at: datetime | None = None,
) -> CampaignResults:
    """The results of ``campaign`` (as it stood): ``recipients`` are its ``campaign_recipients`` rows by
    party id, ``touches`` the campaign touches of every party standing (see :func:`attribute`),
    ``opportunities`` ``pipeline`` rows (any superset of those linked to the campaign or on parties it
    touched), ``survivor`` as in :func:`attribute`."""
    cid = str(campaign.id)
    audience = {c: set(campaign.recipients.get(c, {})) for c in campaign.channels}
    sent = set(campaign.sent) & audience.get(_NEWSLETTER, set())
    figures = _figures(audience, sent, recipients)
    mine = [r for r in opportunities
            if r.get("campaign_id") == cid or cid in touches.get(survivor(r["party_id"]), {})]
    credits = attribute(mine, touches, window, survivor)
    listed = [
        AttributedOpportunity(
            opportunity_id=UUID(r["id"]), party_id=UUID(r["party_id"]), opened_at=r["opened_at"],
            status=r["status"], value=Money(amount=Decimal(r["amount"]), currency=r["currency"]),
            linked=r.get("campaign_id") == cid, first_touch=credits[r["id"]].first_touch == cid,
            last_touch=credits[r["id"]].last_touch == cid)
        for r in mine
    ]
    listed = sorted((o for o in listed if o.linked or o.first_touch or o.last_touch),
                    key=lambda o: (o.opened_at, str(o.opportunity_id)))
    currency = campaign.budget_currency
    size, cost = figures["audience"], campaign.cost
    return CampaignResults.model_validate({
        "campaign_id": campaign.id, "name": campaign.name, "status": campaign.status,
        "channels": campaign.channels, "launched_at": campaign.launched_at, "at": at, "known_at": known_at,
        "attribution_window_days": window.days,
        "budget": Money(amount=Decimal(campaign.budget["amount"]), currency=currency),
        "cost": Money(amount=cost, currency=currency),
        **figures, "linked_opportunities": sum(o.linked for o in listed),
        "first_touch": _credited([o for o in listed if o.first_touch], size, cost, currency),
        "last_touch": _credited([o for o in listed if o.last_touch], size, cost, currency),
        "opportunities": listed,
    })


def _figures(audience: Mapping[str, set[str]], sent: set[str], rows: Mapping[str, Row]) -> dict[str, Any]:
    """The counts and rates of one campaign from its recipients' rows."""
    delivered = opened = opens = clicked = clicks = hard = soft = unsubscribed = complained = 0
    responded: set[str] = set()
    for party_id in sent:
        row = rows.get(party_id)
        if row is None:
            continue
        was_delivered = any(k in row for k in _DELIVERY_EVIDENCE)
        delivered += was_delivered
        opened += "opened" in row or "clicked" in row
        opens += _count(row, "opened")
        clicked += "clicked" in row
        clicks += _count(row, "clicked")
        hard += "hard_bounce" in row
        soft += "soft_bounce" in row and not was_delivered
        unsubscribed += "unsubscribed" in row
        complained += "complaint" in row
        if "clicked" in row:
            responded.add(party_id)
    called = 0
    calls: dict[str, dict[str, int]] = {}
    for party_id in audience.get(_TELEMARKETING, ()):
        row = rows.get(party_id)
        if row is None or "called" not in row:
            continue
        called += 1
        for operator, outcomes in row["operator_calls"].items():
            mine = calls.setdefault(operator, {})
            for outcome, count in outcomes.items():
                mine[outcome] = mine.get(outcome, 0) + count
        if row["call_outcomes"].get(_INTERESTED):  # present with "called"
            responded.add(party_id)
    everyone = set().union(*audience.values()) if audience else set()
    counts = {
        "recipients": {c: len(p) for c, p in audience.items()}, "audience": len(everyone), "sent": len(sent),
        "delivered": delivered, "opened": opened, "opens": opens, "clicked": clicked, "clicks": clicks,
        "hard_bounced": hard, "soft_bounced": soft, "unsubscribed": unsubscribed, "complained": complained,
        "called": called,
        "calls": {o: dict(sorted(c.items())) for o, c in sorted(calls.items())},
        "responses": len(responded),
    }
    return {**counts, **_rates(counts)}


def _rates(counts: Mapping[str, Any]) -> dict[str, Decimal | None]:
    delivered, sent = counts["delivered"], counts["sent"]
    return {
        "open_rate": rate(counts["opened"], delivered),
        "click_rate": rate(counts["clicked"], delivered),
        "click_to_open_rate": rate(counts["clicked"], counts["opened"]),
        "hard_bounce_rate": rate(counts["hard_bounced"], sent),
        "soft_bounce_rate": rate(counts["soft_bounced"], sent),
        "unsubscribe_rate": rate(counts["unsubscribed"], delivered),
        "complaint_rate": rate(counts["complained"], delivered),
        "response_rate": rate(counts["responses"], counts["audience"]),
    }


def _won_value(opportunities: Iterable[AttributedOpportunity]) -> dict[str, Decimal]:
    won: dict[str, Decimal] = {}
    for o in opportunities:
        if o.status == "won":
            won[o.value.currency] = won.get(o.value.currency, Decimal(0)) + o.value.amount
    return dict(sorted(won.items()))


def _roi(won: Mapping[str, Decimal], cost: Decimal, currency: str) -> Decimal | None:
    return rate(won.get(currency, Decimal(0)) - cost, cost)


def _credited(
    opportunities: Sequence[AttributedOpportunity], audience: int, cost: Decimal, currency: str,
) -> AttributionFigures:
    won = _won_value(opportunities)
    sales = sum(o.status == "won" for o in opportunities)
    return AttributionFigures(opportunities=len(opportunities), sales=sales, won_value=won,
                              sales_rate=rate(sales, audience), roi=_roi(won, cost, currency))


def campaign_totals_of(results: Sequence[CampaignResults]) -> CampaignTotals:
    """The sum of several campaigns' results (rates recomputed from the sums)."""
    counts: dict[str, Any] = {name: sum(getattr(r, name) for r in results) for name in _COUNTS}
    recipients: dict[str, int] = {}
    calls: dict[str, dict[str, int]] = {}
    cost: dict[str, Decimal] = {}
    for r in results:
        for channel, count in r.recipients.items():
            recipients[channel] = recipients.get(channel, 0) + count
        for operator, outcomes in r.calls.items():
            mine = calls.setdefault(operator, {})
            for outcome, count in outcomes.items():
                mine[outcome] = mine.get(outcome, 0) + count
        cost[r.cost.currency] = cost.get(r.cost.currency, Decimal(0)) + r.cost.amount
    counts["recipients"] = dict(sorted(recipients.items()))
    counts["calls"] = {o: dict(sorted(c.items())) for o, c in sorted(calls.items())}
    return CampaignTotals.model_validate({
        **counts, **_rates(counts), "campaigns": len(results), "cost": dict(sorted(cost.items())),
        "first_touch": _totals([r.first_touch for r in results], counts["audience"], cost),
        "last_touch": _totals([r.last_touch for r in results], counts["audience"], cost),
    })


def _totals(figures: Sequence[AttributionFigures], audience: int, cost: Mapping[str, Decimal],
            ) -> AttributionTotals:
    won: dict[str, Decimal] = {}
    for f in figures:
        for currency, value in f.won_value.items():
            won[currency] = won.get(currency, Decimal(0)) + value
    sales = sum(f.sales for f in figures)
    return AttributionTotals(
        opportunities=sum(f.opportunities for f in figures), sales=sales, won_value=dict(sorted(won.items())),
        sales_rate=rate(sales, audience), roi={c: _roi(won, spent, c) for c, spent in sorted(cost.items())},
    )


def campaign_as_of(
    events: Iterable[Any], at: datetime | None = None, known_at: datetime | None = None,
) -> Campaign | None:
    """The campaign rebuilt from its ``events`` effective by ``at`` and recorded by ``known_at`` (None:
    not drafted by then). A campaign's effective times never go backwards, so these are a prefix."""
    campaign: Any = None
    for event in events:
        if at is not None and event.effective_at > at:
            break
        if known_at is not None and event.timestamp > known_at:
            break
        campaign = event.mutate(campaign)
    return campaign if isinstance(campaign, Campaign) else None


@dataclass(frozen=True)
class ResultsInputs:
    """What campaign results read, as of one moment: each campaign's ``campaign_recipients`` rows (by
    campaign id, then party id), the touches of every party standing that matters, ``pipeline`` rows and
    the survivor of a party id."""

    recipients: Mapping[str, Mapping[str, Row]]
    touches: Mapping[str, Mapping[str, str]]
    opportunities: Sequence[Row]
    survivor: Callable[[str], str]

    def results(
        self, campaign: Campaign, window: timedelta, at: datetime | None, known_at: datetime | None,
    ) -> CampaignResults:
        """The results of ``campaign`` from these inputs."""
        return campaign_results_of(campaign, self.recipients.get(str(campaign.id), {}), self.touches,
                                   self.opportunities, window=window, survivor=self.survivor, at=at,
                                   known_at=known_at)


class CampaignReader:
    """Reads what campaign results and the engagement policy need from the views: the stored rows (caught
    up first) for now, or the views folded in memory as of a moment."""

    def __init__(self, runner: ViewRunner, storage: ViewStorage) -> None:
        self.runner = runner
        self.storage = storage

    def engagement(
        self, party_ids: Iterable[str] | None, at: datetime | None, known_at: datetime | None = None,
    ) -> dict[str, Row]:
        """The ``party_engagement`` rows of ``party_ids`` (None: every party standing), each with those of
        the parties merged into it combined (:func:`engagement_by_survivor`)."""
        name = PartyEngagementView.name
        view = self.runner.view(name)
        assert isinstance(view, PartyEngagementView)
        wanted = None if party_ids is None else set(party_ids)
        rows: Iterable[Row]
        if at is not None:
            rows = self.runner.fold_as_of(name, at, known_at).values()
        else:
            self.runner.catch_up(name)
            if wanted is None:
                rows = self.storage.rows(name, {})
            else:
                merged = {r["party_id"]: r for r in self.storage.rows(name, {"merged": True})}
                theirs = {p for p in merged if survivor_of(p, merged.get) in wanted}
                rows = [*self.storage.load(name, wanted | theirs).values(), *merged.values()]
        combined = engagement_by_survivor(rows, view, wanted)
        return combined if wanted is None else {p: combined[p] for p in sorted(wanted) if p in combined}

    def inputs(
        self, campaign_ids: Sequence[str], at: datetime | None, known_at: datetime | None,
    ) -> ResultsInputs:
        """The inputs of the results of ``campaign_ids`` now (``at`` None) or as of ``at``/``known_at``."""
        recipients_view, engagement_view = CampaignRecipientsView.name, PartyEngagementView.name
        wanted = set(campaign_ids)
        recipients: dict[str, dict[str, Row]] = {c: {} for c in campaign_ids}
        if at is None:
            for name in (recipients_view, engagement_view, PipelineView.name):
                self.runner.catch_up(name)
            for cid in campaign_ids:
                recipients[cid] = {r["party_id"]: r for r in
                                   self.storage.with_prefix(recipients_view, f"{cid}:").values()}
            merged = {r["party_id"]: r for r in self.storage.rows(engagement_view, {"merged": True})}
            pipeline = self.storage.rows(PipelineView.name, {})
        else:
            folds = self.runner.fold_together_as_of(
                [recipients_view, engagement_view, PipelineView.name], at, known_at)
            for row in folds[recipients_view].values():
                if row["campaign_id"] in wanted:
                    recipients[row["campaign_id"]][row["party_id"]] = row
            merged = folds[engagement_view]
            pipeline = list(folds[PipelineView.name].values())

        def survivor(party_id: str) -> str:
            return survivor_of(party_id, merged.get)

        reached = {survivor(p) for rows in recipients.values() for p, row in rows.items()
                   if "opened" in row or "clicked" in row or "touch_call_first" in row}  # touched by it
        opportunities = [r for r in pipeline
                         if r.get("campaign_id") in wanted or survivor(r["party_id"]) in reached]
        parties = {survivor(r["party_id"]) for r in opportunities}
        if at is None:
            standing = self.engagement(parties, None)
        else:
            view = self.runner.view(engagement_view)
            assert isinstance(view, PartyEngagementView)
            standing = engagement_by_survivor(merged.values(), view, parties)
        touches = {p: standing[p].get("touches", {}) for p in parties if p in standing}
        return ResultsInputs(recipients, touches, opportunities, survivor)
