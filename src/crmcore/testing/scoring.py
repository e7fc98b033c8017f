"""Parties for a simulated sales history whose traits say something about how their deals end.

:func:`sales_parties` registers one lead per deal of a :func:`crmcore.testing.sales.simulate_sales` plan,
before the deal opens, with a source ``channel`` and an ``industry`` profile trait drawn with odds that
depend on how the deal ends in the plan (won deals come more often by referral and from manufacturing),
plus leads that never get a deal. Predictive scoring then has something to learn, and its backtest
something to find; the same seed always gives the same parties::

    steps = simulate_sales(opportunities=2000, start=start, seed=7)
    parties = sales_parties(crm, steps, seed=7)
    load_sales(crm, steps, lambda index: parties[index])
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from crmcore.testing.sales import SalesStep

if TYPE_CHECKING:
    from crmcore.application import CRM

__all__ = ["CHANNEL_ODDS", "INDUSTRIES", "INDUSTRY_ODDS", "sales_parties"]

#: The industries of the ``industry`` profile trait :func:`sales_parties` defines.
INDUSTRIES: tuple[str, ...] = ("manufacturing", "retail", "services", "public sector")

#: Relative odds of each source channel for a party whose deal is won, lost, or of a lead with none.
CHANNEL_ODDS: Mapping[str, Mapping[str, int]] = {
    "won": {"referral": 40, "event": 20, "web_form": 25, "email": 15},
    "lost": {"referral": 10, "event": 20, "web_form": 35, "email": 35},
    "none": {"referral": 10, "event": 20, "web_form": 35, "email": 35},
}

#: Relative odds of each industry, as :data:`CHANNEL_ODDS` (a weaker signal).
INDUSTRY_ODDS: Mapping[str, Mapping[str, int]] = {
    "won": {"manufacturing": 35, "retail": 25, "services": 25, "public sector": 15},
    "lost": {"manufacturing": 20, "retail": 25, "services": 30, "public sector": 25},
    "none": {"manufacturing": 25, "retail": 25, "services": 25, "public sector": 25},
}


def sales_parties(
    crm: CRM,
    steps: Sequence[SalesStep],
    *,
    seed: int = 0,
    lead_days: tuple[int, int] = (5, 60),
    extra_leads: float = 0.3,
    actor: str = "simulation",
) -> list[UUID]:
    """Register a lead per deal of ``steps``, ``lead_days`` (a range) before it opens, and ``extra_leads``
    (a share of the deals) leads without a deal over the same stretch; returns the deals' parties by index.

    Defines the ``industry`` profile trait (a choice of :data:`INDUSTRIES`) unless it exists.
    """
    if "industry" not in crm.field_catalog():
        crm.define_field(name="industry", kind="choice", choices=list(INDUSTRIES), section="profile",
                         actor=actor)
    rng = random.Random(seed)
    opened: dict[int, datetime] = {}
    outcome: dict[int, str] = {}
    for step in steps:
        if step.command == "open":
            opened[step.opportunity] = step.at
        elif step.command == "win":
            outcome[step.opportunity] = "won"
        elif step.command == "lose":
            outcome[step.opportunity] = "lost"
    rows: list[dict[str, Any]] = []
    for index in sorted(opened):
        ends = outcome.get(index, "won" if rng.random() < 0.3 else "lost")  # open deals: a plausible end
        before = timedelta(days=rng.uniform(*lead_days))
        rows.append(_lead(f"Lead {index + 1}", ends, opened[index] - before, rng, actor))
    if opened:
        first, last = min(opened.values()), max(opened.values())
        for number in range(int(len(opened) * extra_leads)):
            at = first + (last - first) * rng.random()
            rows.append(_lead(f"Prospect {number + 1}", "none", at, rng, actor))
    ids = crm.bulk_register(rows)
    return ids[: len(opened)]


def _lead(name: str, ends: str, at: datetime, rng: random.Random, actor: str) -> dict[str, Any]:
    return {
        "kind": "organization" if rng.random() < 0.6 else "person", "name": name, "stage": "lead",
        "channel": _pick(CHANNEL_ODDS[ends], rng), "profile": {"industry": _pick(INDUSTRY_ODDS[ends], rng)},
        "actor": actor, "effective_at": at,
    }


def _pick(odds: Mapping[str, int], rng: random.Random) -> str:
    return rng.choices(list(odds), weights=list(odds.values()))[0]
