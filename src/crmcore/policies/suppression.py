"""The engagement policies: what recorded reports make crmcore decide, as pure functions.

- **Suppression** (:func:`reconcile`): the bounce policy's decision timeline of an address
  (:func:`~crmcore.policies.consent.decision_timeline`) set against the decisions recorded so far
  (``AddressStatus`` aggregates) gives the decisions to record so that the record reads as the policy
  decides at every moment - for a late report too, and for a changed policy (``reapply_bounce_policy``).
- **Unsubscription** (:func:`when_engagement_reported_unsubscribe_party`): an ``unsubscribed`` or
  ``complaint`` report unsubscribes its recipient from the campaign channel's consent channel.
- :func:`screen` picks, out of a page of reports, the addresses whose decision may change: those with a
  bounce or a complaint, and those already suppressed that a delivery may reinstate. A delivery, an open
  or a click for an address that is not suppressed never changes a decision (reports only clear).

Addresses are known by their matching key (:func:`address_key_of`): an e-mail address lower-cased (its
domain in IDNA), a phone number in E.164 form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from crmcore.identity import EmailAddress
from crmcore.models import Deliverability
from crmcore.policies.consent import (
    RULE_REAPPLIED,
    BounceDecision,
    BouncePolicy,
    BounceReport,
    deliverability_of,
    state_at,
)
from crmcore.values import CAMPAIGN_CONSENT, CampaignChannel, ConsentChannel, EngagementKind

__all__ = [
    "BOUNCE_KINDS",
    "RecordedDecision",
    "UnsubscribeParty",
    "address_key_of",
    "in_force",
    "reconcile",
    "recorded_deliverability",
    "recorded_of_row",
    "reports_of_row",
    "screen",
    "when_engagement_reported_unsubscribe_party",
]

#: Engagement kinds the bounce policy reads (deliveries, their proofs, bounces and complaints).
BOUNCE_KINDS = frozenset({
    EngagementKind.DELIVERED, EngagementKind.OPENED, EngagementKind.CLICKED, EngagementKind.SOFT_BOUNCE,
    EngagementKind.HARD_BOUNCE, EngagementKind.COMPLAINT,
})
#: Report outcomes that can suppress an address (the others - deliveries and their proofs - only clear).
SUPPRESSING = frozenset({"soft_bounce", "hard_bounce", "complaint"})


def address_key_of(address: str) -> str:
    """The matching key of an address as crmcore stores it: an e-mail address lower-cased (IDNA domain),
    a phone number (E.164, no ``@``) as it is."""
    if "@" not in address:
        return address
    if address.isascii():
        return address.lower()
    return EmailAddress.parse(address, field="address").key


class RecordedDecision(NamedTuple):
    """A decision already recorded: suppressed or not from ``effective_at``, on ``evidence``. A list of them
    is in recording order."""

    suppressed: bool
    effective_at: datetime
    evidence: Sequence[str] = ()


def in_force(recorded: Sequence[RecordedDecision], at: datetime | None = None) -> int | None:
    """The index of the decision in force at ``at`` (None: after all): the one effective last by then, of
    those effective at the same moment the one recorded last. None when none is effective by then."""
    found: int | None = None
    for index, decision in enumerate(recorded):
        if at is not None and decision.effective_at > at:
            continue
        if found is None or decision.effective_at >= recorded[found].effective_at:
            found = index
    return found


def _suppressed(recorded: Sequence[RecordedDecision], at: datetime) -> bool:
    index = in_force(recorded, at)
    return index is not None and recorded[index].suppressed


def reconcile(
    timeline: Sequence[BounceDecision], recorded: Sequence[RecordedDecision], policy: BouncePolicy,
) -> list[BounceDecision]:
    """The decisions to record, in order, so that the recorded decisions read as ``timeline`` at every
    moment from its first change on.

    Walks the moments where either changes; where they disagree, records the timeline's change made then
    (its rule, reason and evidence), or - where only the record changed then - a ``reapplied`` decision
    restating the policy's state (its evidence: the reports of the recorded decision it overrides, or of
    the change that suppressed the address). A decision recorded later wins at the same moment, so the
    result never depends on what was recorded before it.
    """
    moments = sorted({d.effective_at for d in timeline} | {r.effective_at for r in recorded})
    decided = list(recorded)
    new: list[BounceDecision] = []
    for moment in moments:
        wanted = state_at(timeline, moment)
        suppress = wanted is not None and wanted.suppressed
        if suppress == _suppressed(decided, moment):
            continue
        if wanted is not None and wanted.effective_at == moment:
            change = wanted
        else:
            overridden = [r for r in decided if r.effective_at == moment]
            if suppress and wanted is not None:
                evidence, why = wanted.evidence, f"still suppressed: {wanted.reason}"
            else:
                evidence = tuple(overridden[-1].evidence) if overridden else ()
                why = "not suppressed"
            change = BounceDecision(suppress, moment, RULE_REAPPLIED,
                                    f"{why} under bounce policy {policy.name} version {policy.version}",
                                    tuple(evidence))
        new.append(change)
        decided.append(RecordedDecision(change.suppressed, change.effective_at, change.evidence))
    return new


def screen(
    reports: Iterable[tuple[str, str]], suppressed: set[str] | frozenset[str],
) -> set[str]:
    """Of ``(address key, outcome)`` reports, the keys whose decision may change: a bounce or a complaint,
    or any report on an address in ``suppressed`` (a delivery may reinstate it)."""
    return {key for key, outcome in reports if outcome in SUPPRESSING or key in suppressed}


class UnsubscribeParty(NamedTuple):
    """Unsubscribe ``party_id`` (or its survivor) from ``channel`` as the report says."""

    party_id: str
    channel: ConsentChannel
    source: str
    external_id: str
    evidence: str
    effective_at: datetime
    actor: str


def when_engagement_reported_unsubscribe_party(
    kind: EngagementKind, data: Mapping[str, Any],
) -> UnsubscribeParty | None:
    """An ``unsubscribed`` or ``complaint`` report (its event data) unsubscribes its recipient from the
    consent channel of the campaign's channel (newsletter -> newsletter, telemarketing -> phone), effective
    when it happened, under the report's source and external id; other reports decide nothing."""
    if kind not in (EngagementKind.UNSUBSCRIBED, EngagementKind.COMPLAINT):
        return None
    channel = CAMPAIGN_CONSENT[CampaignChannel(data["channel"])]
    said = "a spam complaint" if kind is EngagementKind.COMPLAINT else "an unsubscription"
    effective_at = data["effective_at"]
    if isinstance(effective_at, str):
        effective_at = datetime.fromisoformat(effective_at)
    return UnsubscribeParty(
        party_id=str(data["party_id"]), channel=channel, source=data["source"],
        external_id=data["external_id"], evidence=f"{said} reported for campaign {data['campaign_id']}",
        effective_at=effective_at, actor=data["actor"],
    )


def reports_of_row(row: Mapping[str, Any]) -> list[BounceReport]:
    """The reports an ``address_reports`` row keeps, as the bounce policy reads them."""
    parse = datetime.fromisoformat
    return [BounceReport(parse(at), outcome, code, evidence, position)
            for at, position, outcome, code, evidence in row.get("reports", ())]


def recorded_of_row(row: Mapping[str, Any] | None) -> list[RecordedDecision]:
    """The decisions an ``address_reports`` row keeps, in recording order."""
    if row is None:
        return []
    parse = datetime.fromisoformat
    return [RecordedDecision(d["suppressed"], parse(d["effective_at"]), tuple(d["evidence"]))
            for d in row.get("decisions", ())]


def recorded_deliverability(
    row: Mapping[str, Any] | None,
    address_key: str,
    at: datetime | None,
    policy: BouncePolicy,
    *,
    last: Mapping[str, Any] | None = None,
) -> Deliverability:
    """The deliverability the decisions recorded in an ``address_reports`` row give at ``at`` (None: after
    all): suppressed when the decision in force then suppresses. The counts (hard-bounced, soft bounces)
    are read from the row's reports under ``policy``; ``last`` is the ledger entry to show with it."""
    state = deliverability_of(reports_of_row(row or {}), address_key, at, policy, last=last)
    recorded = recorded_of_row(row)
    index = in_force(recorded, at)
    decision = row["decisions"][index] if row is not None and index is not None else None
    if decision is None or not decision["suppressed"]:
        if decision is not None:
            reason = f"the address was reinstated on {decision['effective_at']}: {decision['reason']}"
        elif state.deliverable:
            reason = state.reason
        else:
            reason = "no suppression recorded for the address"
        return state.model_copy(update={
            "deliverable": True, "reason": reason, "rule": None, "since": None, "evidence": [],
            "policy": dict(decision["policy"]) if decision is not None else None,
        })
    stamp = decision["policy"]
    return state.model_copy(update={
        "deliverable": False,
        "reason": (f"the address is suppressed since {decision['effective_at']}: {decision['reason']} "
                   f"(bounce policy {stamp.get('name')} version {stamp.get('version')})"),
        "rule": decision["rule"], "since": datetime.fromisoformat(decision["effective_at"]),
        "evidence": list(decision["evidence"]), "policy": dict(stamp),
    })
