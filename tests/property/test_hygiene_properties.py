"""A party is stale, and inactive, exactly when a model kept by the test from the generated history says so.

Parties are registered, move through the lifecycle (engage, qualify, convert, disqualify, reopen), are set
aside and restored, open and lose deals, and are mailed, open and click, at moments that move forward by
random steps. The model (below, written from design 06 § 1 and design 05 § 5, not from crmcore's code)
keeps each party's stays as the history goes and computes, at any moment: the mean completed stay per
open stage (the fallback below ``min_samples``), who is stale (an open stage, not set aside, no open deal,
in the stage for longer than the factor times the mean) and who is inactive (mailed at or before the
window's start, no open or click within it). The report and the ``hygiene`` segment flags must say the
same at random moments and at every threshold's edge (the moment itself and a microsecond after), and the
quarterly trend's counts the same at every quarter's end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from tempfile import TemporaryDirectory
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM, DEFAULT_LOST_REASONS, EngagementPolicy, HygienePolicy
from crmcore.testing.campaigns import engagement_report

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=900)
OPEN = ("suspect", "lead", "prospect", "target")
MICRO = timedelta(microseconds=1)

#: What a step does; moves along the lifecycle come more often than the rest.
ACTIONS = ("register", "register", "engage", "engage", "qualify", "qualify", "convert", "disqualify",
           "reopen", "aside", "restore", "deal", "lose", "mail", "open", "click")
STEPS = st.lists(
    st.tuples(st.sampled_from(ACTIONS), st.integers(0, 5), st.integers(0, 40 * 24), st.sampled_from(
        ["suspect", "lead", "prospect"])),
    min_size=1, max_size=50,
)
POLICIES = st.builds(
    lambda samples, factor, fallback, window: HygienePolicy(
        min_samples=samples, stale_factor=factor, fallback_days=fallback,
        engagement=EngagementPolicy(inactive_after_days=window)),
    st.integers(1, 3), st.sampled_from([Decimal(1), Decimal("1.5"), Decimal("2.5"), Decimal("3.3")]),
    st.integers(1, 60), st.integers(1, 120),
)


@dataclass
class Party:
    """What the model knows of one party."""

    stays: list[tuple[str, datetime]]
    aside: bool = False
    deals: list[UUID] = field(default_factory=list)
    mailed: list[datetime] = field(default_factory=list)  # any delivery evidence
    engaged: list[datetime] = field(default_factory=list)  # opens and clicks

    @property
    def stage(self) -> str:
        return self.stays[-1][0]


def seconds(span: timedelta) -> Fraction:
    return Fraction(span.days * 86_400 + span.seconds) + Fraction(span.microseconds, 1_000_000)


class Model:
    def __init__(self) -> None:
        self.parties: dict[UUID, Party] = {}

    def mean_stay(self, stage: str, at: datetime, policy: HygienePolicy) -> Fraction:
        lengths = [seconds(left - entered)
                   for party in self.parties.values()
                   for (name, entered), (_, left) in zip(party.stays, party.stays[1:], strict=False)
                   if name == stage and left <= at]
        if len(lengths) < policy.min_samples:
            return Fraction(policy.fallback_days * 86_400)
        return sum(lengths, Fraction(0)) / len(lengths)

    def stale(self, at: datetime, policy: HygienePolicy, known: dict[UUID, Party]) -> set[UUID]:
        found = set()
        for party_id, party in known.items():
            stage, since = party.stays[-1]
            if stage not in OPEN or party.aside or party.deals:
                continue
            if seconds(at - since) > Fraction(policy.stale_factor) * self.mean_stay(stage, at, policy):
                found.add(party_id)
        return found

    def inactive(self, at: datetime, window: int) -> set[UUID]:
        start = at - timedelta(days=window)
        return {p for p, party in self.parties.items()
                if any(m <= start for m in party.mailed)
                and not any(start < e <= at for e in party.engaged)}


@contextmanager
def store(kind: str) -> Iterator[CRM]:
    if kind == "memory":
        with CRM("memory:") as crm:
            yield crm
        return
    with TemporaryDirectory() as tmp, CRM(f"sqlite:///{Path(tmp) / 'crm.db'}") as crm:
        yield crm


def run(kind: str, steps: list[tuple[str, int, int, str]], policy: HygienePolicy) -> None:
    model = Model()
    order: list[UUID] = []
    campaign = UUID(int=1)
    moment = START
    history: list[datetime] = []  # the moment after each step, with a snapshot of the model
    snapshots: list[dict[UUID, Party]] = []
    with store(kind) as crm:
        crm.hygiene_policy = policy
        for action, n, hours, stage in steps:
            moment += timedelta(hours=hours, microseconds=hours % 7)
            if action == "register" or not order:
                party = crm.register_party(kind="person", name=f"P{len(order)}", stage=stage, actor="t",
                                           effective_at=moment)
                model.parties[party] = Party([(stage, moment)])
                order.append(party)
            else:
                _act(crm, model, order[n % len(order)], action, moment, campaign)
            history.append(moment)
            snapshots.append({p: Party(list(x.stays), x.aside, list(x.deals), list(x.mailed), list(x.engaged))
                              for p, x in model.parties.items()})
        last = history[-1]
        window = timedelta(days=policy.engagement.inactive_after_days)  # type: ignore[union-attr]
        moments = {last + timedelta(days=d) for d in (0, 1, 30, 200)}
        moments |= set(history[:: max(1, len(history) // 4)])
        for party in model.parties.values():  # the edges of every threshold after the last step
            stage, since = party.stays[-1]
            if stage in OPEN:  # the model's threshold, and the fallback's (were the average not measured)
                fallback = Fraction(policy.fallback_days * 86_400)
                for average in (model.mean_stay(stage, last, policy), fallback):
                    threshold = average * Fraction(policy.stale_factor)
                    edge = since + timedelta(microseconds=int(threshold * 1_000_000))
                    if edge >= last:
                        moments |= {edge, edge + MICRO}
            for at in (*party.mailed, *party.engaged):
                if at + window >= last:
                    moments |= {at + window, at + window + MICRO}
        now = datetime.now(UTC)
        for at in sorted(m for m in moments if m < now):
            index = max((i for i, h in enumerate(history) if h <= at), default=None)
            known = snapshots[index] if index is not None else {}
            model_at = Model()
            model_at.parties = known
            report = crm.hygiene_report(at=at)
            expected_stale = model_at.stale(at, policy, known)
            expected_inactive = model_at.inactive(at, window.days)
            assert {s.party_id for s in report.stale} == expected_stale, f"stale at {at}"
            assert set(report.inactive) == expected_inactive, f"inactive at {at}"
            flagged = {m.party_id for m in crm.evaluate({"hygiene": "stale"}, at=at)}
            assert flagged == expected_stale, f"stale flag at {at}"
            flagged = {m.party_id for m in crm.evaluate({"hygiene": "inactive"}, at=at)}
            assert flagged == expected_inactive, f"inactive flag at {at}"
        for counts in crm.hygiene_trend(quarters=8, until=min(now, last + timedelta(days=45))):
            end = counts.at  # the quarter's counts come from what was effective strictly before its end
            index = max((i for i, h in enumerate(history) if h < end), default=None)
            known = snapshots[index] if index is not None else {}
            model_at = Model()
            model_at.parties = known
            assert counts.stale == len(model_at.stale(end, policy, known)), f"stale in {counts.quarter}"
            inactive = model_at.inactive(end, window.days)
            assert counts.inactive == len(inactive), f"inactive in {counts.quarter}"


def _act(crm: CRM, model: Model, party_id: UUID, action: str, at: datetime, campaign: UUID) -> None:
    party = model.parties[party_id]
    stage = party.stage
    moves = {"engage": ("suspect", "lead", crm.engage, {"channel": "web_form"}),
             "qualify": ("lead", "prospect", crm.qualify, {}),
             "convert": ("prospect", "customer", crm.convert, {}),
             "reopen": ("disqualified", "lead", crm.reopen, {})}
    if action in moves:
        before, after, command, extra = moves[action]
        if stage == before:
            command(party_id, actor="t", effective_at=at, **extra)
            party.stays.append((after, at))
    elif action == "disqualify" and stage in ("lead", "prospect"):
        crm.disqualify(party_id, reason="no budget", actor="t", effective_at=at)
        party.stays.append(("disqualified", at))
    elif action == "aside" and not party.aside:
        crm.set_aside(party_id, reason="parked", actor="t", effective_at=at)
        party.aside = True
    elif action == "restore" and party.aside:
        crm.restore(party_id, actor="t", effective_at=at)
        party.aside = False
    elif action == "deal" and stage == "prospect":
        deal = crm.open_opportunity(party_id, title="Deal", value="100", currency="EUR",
                                    expected_close="2035-01-31", owner="t", actor="t", effective_at=at)
        party.deals.append(deal)
    elif action == "lose" and party.deals:
        crm.lose(party.deals.pop(0), reasons=[DEFAULT_LOST_REASONS[0]], actor="t", effective_at=at)
    elif action in ("mail", "open", "click"):
        kind = {"mail": "delivered", "open": "opened", "click": "clicked"}[action]
        crm._save(engagement_report(kind, campaign_id=campaign, party_id=party_id, at=at))
        party.mailed.append(at)  # an open or a click proves a delivery
        if action != "mail":
            party.engaged.append(at)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS, POLICIES)
def test_the_report_and_the_flags_agree_with_the_model_on_memory(
    steps: list[tuple[str, int, int, str]], policy: HygienePolicy,
) -> None:
    run("memory", steps, policy)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS, POLICIES)
def test_the_report_and_the_flags_agree_with_the_model_on_sqlite(
    steps: list[tuple[str, int, int, str]], policy: HygienePolicy,
) -> None:
    run("sqlite", steps, policy)
