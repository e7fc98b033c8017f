"""The quarterly clean-up read from the hygiene report's inputs: its plan, the counts it leaves, and the
what-if over history (design 06 § 3).

The rules are :mod:`crmcore.policies.cleanup` (pure, over :class:`~crmcore.policies.cleanup.Candidate`
rows); this module builds those rows from what one report reads (:class:`~crmcore.hygiene.HygieneInputs`),
so the dry run, the real run and every quarter of the what-if plan from the same function, and it reads
what the parties a plan sets aside did afterwards. It reads and records nothing itself: the CRM gathers the
inputs and saves the actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from crmcore.hygiene import HygieneInputs, ReportSections
from crmcore.models import HygieneCounts, WhatIfParty, WhatIfQuarter
from crmcore.policies.cleanup import Candidate, CleanUpAction, CleanUpKind, CleanUpPolicy, plan_clean_up
from crmcore.policies.consent import BouncePolicy
from crmcore.policies.hygiene import HygienePolicy
from crmcore.policies.suppression import address_key_of
from crmcore.projections.facts import survivor_of
from crmcore.values import Stage

__all__ = ["EXCLUDING", "CleanUpPlan", "plan_of", "what_if_of"]

#: The actions that take a party out of sales work: the parties a what-if follows.
EXCLUDING = frozenset({CleanUpKind.SET_ASIDE, CleanUpKind.NEWSLETTER})


@dataclass(frozen=True)
class CleanUpPlan:
    """What a clean-up would do with one set of inputs: the report's ``sections``, the ``actions`` (in
    party order) and the report's counts before and after them."""

    inputs: HygieneInputs
    sections: ReportSections
    actions: list[CleanUpAction]
    counts_before: HygieneCounts
    counts_after: HygieneCounts

    def excluded(self) -> dict[str, CleanUpKind]:
        """The parties the plan sets aside or moves to the newsletter list, with the action."""
        return {a.party_id: a.kind for a in self.actions if a.kind in EXCLUDING}


def candidates_of(inputs: HygieneInputs, sections: ReportSections) -> list[Candidate]:
    """What the clean-up reads about each party the report names (stale, with an address undeliverable by
    its own ledger and no decision in force, or incomplete), in party order."""
    stale = {str(p.party_id) for p in sections.stale}
    undelivered: dict[str, list[str]] = {}
    for bounce in sections.bounced:
        if bounce.source == "ledger":
            undelivered.setdefault(str(bounce.party_id), []).append(address_key_of(bounce.address))
    missing = {str(p.party_id): tuple(p.missing) for p in sections.incomplete}
    found = []
    for party in sorted(stale | set(undelivered) | set(missing)):
        facts = inputs.facts[party]
        found.append(Candidate(
            party_id=party, owner=facts.get("owner"), stale=party in stale,
            set_aside=bool(facts.get("set_aside")),
            open_opportunities=int(facts.get("open_opportunities") or 0),
            undelivered=tuple(undelivered.get(party, ())), missing=missing.get(party, ())))
    return found


def plan_of(
    inputs: HygieneInputs, policy: CleanUpPolicy, hygiene: HygienePolicy, bounces: BouncePolicy,
    *, quarter: str | None = None,
) -> CleanUpPlan:
    """The clean-up ``policy`` would do over ``inputs`` under ``hygiene`` (its ``engagement`` set) and
    ``bounces``, with the counts before and after.

    The counts after are the report's over the same inputs with the parties the plan sets aside marked set
    aside: a suppression only moves an address from the ledger to a recorded decision and a completion task
    fills no field, so neither changes a count."""
    sections = ReportSections(inputs, hygiene, bounces, None)
    actions = plan_clean_up(candidates_of(inputs, sections), policy)
    before = sections.counts(inputs.at, len(inputs.facts), quarter=quarter)
    aside = {a.party_id for a in actions if a.kind in EXCLUDING}
    if aside:
        facts = {p: (cast(Any, {**f, "set_aside": True}) if p in aside else f)
                 for p, f in inputs.facts.items()}
        moved = HygieneInputs(inputs.at, facts, inputs.engagement, inputs.addresses, inputs.required)
        after = ReportSections(moved, hygiene, bounces, None).counts(inputs.at, len(facts), quarter=quarter)
    else:
        after = before
    return CleanUpPlan(inputs, sections, actions, before, after)


def what_if_of(
    plans: Sequence[CleanUpPlan], after: HygieneInputs,
) -> list[WhatIfQuarter]:
    """For each quarter's plan, the parties it would have set aside or moved and what they did from the
    plan's moment up to ``after.at``, read from ``after`` (the inputs at that moment; a party merged since
    is followed to its survivor)."""
    follow = _Afterwards(after)
    seen: set[str] = set()
    found = []
    for plan in plans:
        found.append(_quarter(plan, follow, seen))
        seen.update(plan.excluded())
    return found


class _Afterwards:
    """What each standing party did, read from the inputs at the end of the what-if."""

    def __init__(self, after: HygieneInputs) -> None:
        self.at = after.at
        self.rows, self.facts, self.engagement = after.rows, after.facts, after.engagement
        self.opened_at: dict[str, list[datetime]] = {}  # survivor -> the moments its opportunities opened
        for row in after.pipeline:
            survivor = survivor_of(str(row["party_id"]), self.rows.get)
            self.opened_at.setdefault(survivor, []).append(_moment(row["opened_at"]))

    def survivor(self, party_id: str) -> str:
        return survivor_of(party_id, self.rows.get)

    def of(self, party_id: str, since: datetime) -> dict[str, Any]:
        """What ``party_id`` (a survivor) did from ``since`` on (the plan read what was effective strictly
        before it)."""
        facts = self.facts.get(party_id) or cast(Any, {})
        engagement = self.engagement.get(party_id) or {}
        won: dict[str, Decimal] = {}
        for closed_at, amount, currency in facts.get("wins") or ():
            if _moment(closed_at) >= since:
                won[currency] = won.get(currency, Decimal(0)) + Decimal(amount)
        converted = any(stage == Stage.CUSTOMER and _moment(at) >= since
                        for stage, at in facts.get("stages") or ())
        return {
            "opened": _after(engagement.get("last_open"), since),
            "clicked": _after(engagement.get("last_click"), since),
            "replied": any(_moment(t) >= since for t in facts.get("interactions") or ()),
            "opportunity": any(t >= since for t in self.opened_at.get(party_id, ())),
            "bought": bool(won) or converted,
            "won_value": won,
        }


def _quarter(plan: CleanUpPlan, follow: _Afterwards, seen: set[str]) -> WhatIfQuarter:
    since, facts = plan.inputs.at, plan.inputs.facts
    parties = []
    for party, kind in plan.excluded().items():
        survivor = follow.survivor(party)
        did = follow.of(survivor, since)
        parties.append(WhatIfParty.model_construct(
            party_id=UUID(party), survivor_id=UUID(survivor), name=facts[party]["name"],
            stage=Stage(facts[party]["stage"]), action=kind.value, first=party not in seen, **did))
    won: dict[str, Decimal] = {}
    for p in parties:
        for currency, amount in p.won_value.items():
            won[currency] = won.get(currency, Decimal(0)) + amount
    kinds = [a.kind for a in plan.actions]
    return WhatIfQuarter(
        quarter=plan.counts_before.quarter or "", at=since, until=follow.at,
        set_aside=kinds.count(CleanUpKind.SET_ASIDE), newsletter=kinds.count(CleanUpKind.NEWSLETTER),
        suppressed=kinds.count(CleanUpKind.SUPPRESS_ADDRESS), tasks=kinds.count(CleanUpKind.COMPLETION_TASK),
        opened=_count(parties, "opened"), clicked=_count(parties, "clicked"),
        replied=_count(parties, "replied"), opportunity=_count(parties, "opportunity"),
        bought=_count(parties, "bought"), won_value=dict(sorted(won.items())),
        first_time=_count(parties, "first"), parties=parties,
    )


def _count(parties: Iterable[WhatIfParty], outcome: str) -> int:
    return sum(1 for p in parties if getattr(p, outcome))


def _after(value: str | datetime | None, since: datetime) -> bool:
    return value is not None and _moment(value) >= since


def _moment(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)

