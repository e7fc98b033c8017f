"""The hygiene report, its quarterly trend and the hygiene flags of segments (design 06 § 2).

The rules are :mod:`crmcore.policies.hygiene` (pure, over plain rows); this module puts the rows the CRM
gathers — every standing party's facts (with its opportunities), its engagement (with that of the parties
merged into it), the suppression decisions per address and the required fields of the catalog, all as of
one moment — through them, and builds the read models. It reads nothing itself.

**Segment criteria.** ``{"hygiene": "stale" | "inactive" | "bounced" | "incomplete" | "set_aside"}``
(:class:`HygieneFlag`) holds when the party carries that flag at the evaluation's moment. The flags are
time-relative: the passage of time alone makes a party stale or inactive, so segment reads evaluate them
afresh. What a flag reads besides the party's facts — the stage averages, the engagement rows, the
suppression decisions, the required fields — comes in the evaluation's :class:`~crmcore.segments.Context`
(``hygiene``: a :class:`HygieneFlagReader`, which gathers each input once, on first need).
**Without it** (the ``segment_members`` projection evaluating at each event, a qualification rule) a flag
evaluates to **False**, except ``set_aside``, which reads the facts alone: a stored membership of a segment
with hygiene flags is never what a read answers (reads evaluate such segments afresh, with the context).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Any, ClassVar, Literal
from uuid import UUID

from crmcore.models import (
    BouncedAddress,
    DuplicateMatch,
    FieldScanFinding,
    HygieneCounts,
    HygieneReport,
    IncompleteParty,
    StageAverage,
    StaleParty,
)
from crmcore.policies.consent import BouncePolicy
from crmcore.policies.engagement import EngagementPolicy, is_inactive
from crmcore.policies.hygiene import (
    DAY,
    OPEN_STAGES,
    HygienePolicy,
    StageAverages,
    bounced_addresses,
    grouped_stage_averages,
    missing_fields,
    stage_averages,
    staleness,
)
from crmcore.projections.base import Row
from crmcore.segments import Context, Criterion, Facts, register_criterion
from crmcore.values import ConsentChannel, PartyKind, Stage

__all__ = [
    "FLAGS",
    "HygieneFlag",
    "HygieneFlagReader",
    "HygieneInputs",
    "ReportSections",
    "counts_of",
    "quarter_ends",
    "report_of",
    "uses_hygiene",
]

#: The flags a segment may test.
FLAGS = ("stale", "inactive", "bounced", "incomplete", "set_aside")
Flag = Literal["stale", "inactive", "bounced", "incomplete", "set_aside"]
_CENT = Decimal("0.01")


class HygieneInputs:
    """What one report (or one quarter of a trend) reads, all as of ``at``: ``facts`` of every standing
    party by id (``party_facts`` joined with opportunities), ``engagement`` rows by surviving party,
    ``addresses`` (``address_reports`` rows by address key) and ``required`` fields (name -> section);
    ``rows``, the ``party_facts`` rows of every party (merged away too), and ``pipeline``, the opportunity
    rows, for readers that follow parties through merges (the clean-up's what-if)."""

    def __init__(
        self, at: datetime, facts: Mapping[str, Facts], engagement: Mapping[str, Row],
        addresses: Mapping[str, Row], required: Mapping[str, str], *, rows: Mapping[str, Row] | None = None,
        pipeline: Iterable[Row] = (),
    ) -> None:
        self.at, self.facts, self.engagement = at, facts, engagement
        self.addresses, self.required = addresses, required
        self.rows: Mapping[str, Any] = facts if rows is None else rows
        self.pipeline: list[Row] = list(pipeline)


class ReportSections:
    """Every section of a report computed from one set of inputs (``groups``: party id -> group, for
    averages measured per group)."""

    def __init__(
        self, inputs: HygieneInputs, policy: HygienePolicy, bounces: BouncePolicy,
        groups: Mapping[str, str | None] | None,
    ) -> None:
        at, facts = inputs.at, inputs.facts
        engagement = _engagement_policy(policy)
        if groups is None:
            self.averages = stage_averages((f.get("stages") or [] for f in facts.values()), at, policy)
        else:
            self.averages = grouped_stage_averages(
                ((groups.get(p), f.get("stages") or []) for p, f in facts.items()), at, policy)
        self.stale: list[StaleParty] = []
        self.inactive: list[UUID] = []
        self.bounced: list[BouncedAddress] = []
        self.unsubscribed: dict[ConsentChannel, list[UUID]] = {c: [] for c in ConsentChannel}
        self.incomplete: list[IncompleteParty] = []
        self.set_aside: list[UUID] = []
        for party in sorted(facts):
            row, pid = facts[party], UUID(party)
            group = groups.get(party) if groups is not None else None
            found = staleness(row, self.averages, at, policy, group=group)
            if found is not None and found.stale:
                self.stale.append(StaleParty(
                    party_id=pid, name=row["name"], stage=Stage(found.stage), since=found.since,
                    days_in_stage=_days(Fraction(found.elapsed)), threshold_days=_days(found.threshold),
                    owner=row.get("owner"), group=group))
            if is_inactive(inputs.engagement.get(party), at, engagement):
                self.inactive.append(pid)
            for bounce in bounced_addresses(row, inputs.addresses, at, bounces):
                self.bounced.append(BouncedAddress(party_id=pid, **bounce._asdict()))
            for channel, status in (row.get("consent") or {}).items():
                if status == "unsubscribed":
                    self.unsubscribed[ConsentChannel(channel)].append(pid)
            missing = missing_fields(row, policy, inputs.required)
            if missing:
                self.incomplete.append(IncompleteParty(
                    party_id=pid, name=row["name"], kind=PartyKind(row["kind"]), stage=Stage(row["stage"]),
                    owner=row.get("owner"), missing=missing))
            if row.get("set_aside"):
                self.set_aside.append(pid)
        self.incomplete.sort(key=lambda p: (p.owner is not None, p.owner or "", str(p.party_id)))

    def counts(
        self, at: datetime, parties: int, *, quarter: str | None = None, rule_breaks: int | None = None,
        duplicates: int | None = None,
    ) -> HygieneCounts:
        unsubscribed = {p for ids in self.unsubscribed.values() for p in ids}
        return HygieneCounts(
            at=at, quarter=quarter, parties=parties, stale=len(self.stale), inactive=len(self.inactive),
            bounced=len(self.bounced), bounced_parties=len({b.party_id for b in self.bounced}),
            unsubscribed=len(unsubscribed),
            unsubscribed_by_channel={c: len(ids) for c, ids in self.unsubscribed.items()},
            incomplete=len(self.incomplete), set_aside=len(self.set_aside), rule_breaks=rule_breaks,
            duplicates=duplicates,
        )


def report_of(
    inputs: HygieneInputs,
    policy: HygienePolicy,
    bounces: BouncePolicy,
    *,
    known_at: datetime | None,
    group_by: str | None = None,
    groups: Mapping[str, str | None] | None = None,
    rule_breaks: list[FieldScanFinding] | None = None,
    duplicates: list[DuplicateMatch] | None = None,
    notes: Iterable[str] = (),
) -> HygieneReport:
    """The hygiene report of ``inputs`` under ``policy`` (its ``engagement`` set) and ``bounces``; with
    ``groups`` (party id -> group) the stage averages are measured per group (``group_by`` names it)."""
    sections = ReportSections(inputs, policy, bounces, groups)
    averages = sections.averages
    group_rows: list[StageAverage] = []
    if groups is not None:
        present = sorted(set(groups.values()), key=lambda g: (g is not None, g or ""))
        group_rows = [_average(averages.of(stage, group)) for group in present for stage in OPEN_STAGES]
    return HygieneReport(
        at=inputs.at, known_at=known_at, policy=policy.model_dump(mode="json"), group_by=group_by,
        stage_averages=[_average(averages.overall[stage]) for stage in OPEN_STAGES],
        group_averages=group_rows, stale=sections.stale, inactive=sections.inactive, bounced=sections.bounced,
        unsubscribed=sections.unsubscribed, incomplete=sections.incomplete, set_aside=sections.set_aside,
        rule_breaks=rule_breaks, duplicates=duplicates, notes=list(notes),
        counts=sections.counts(inputs.at, len(inputs.facts),
                               rule_breaks=None if rule_breaks is None else len(rule_breaks),
                               duplicates=None if duplicates is None else len(duplicates)),
    )


def counts_of(
    inputs: HygieneInputs, policy: HygienePolicy, bounces: BouncePolicy, *, quarter: str | None = None,
) -> HygieneCounts:
    """The report's counts for ``inputs`` (rule breaks and duplicates not computed: None)."""
    return ReportSections(inputs, policy, bounces, None).counts(inputs.at, len(inputs.facts), quarter=quarter)


def quarter_ends(until: datetime, quarters: int) -> list[tuple[str, datetime]]:
    """The last ``quarters`` calendar quarters (UTC) ended by ``until`` (aware), oldest first, each as its
    name (``"2025-Q1"``) and its end: the first moment of the next quarter (2025-04-01T00:00Z)."""
    moment = until.astimezone(UTC)
    year, index = moment.year, (moment.month - 1) // 3  # the quarter running at ``until``
    found = []
    for _ in range(quarters):
        end = datetime(year, 3 * index + 1, 1, tzinfo=UTC)
        year, index = (year, index - 1) if index else (year - 1, 3)
        found.append((f"{year}-Q{index + 1}", end))
    return found[::-1]


def _average(average: Any) -> StageAverage:
    group = average.group
    return StageAverage(stage=average.stage, group=None if group is None else str(group),
                        days=_days(average.mean), samples=average.samples, basis=average.basis)


def _days(microseconds: Fraction) -> Decimal:
    """Microseconds as days, rounded half-even to 2 places."""
    days = microseconds / DAY
    return (Decimal(days.numerator) / Decimal(days.denominator)).quantize(_CENT)


def _engagement_policy(policy: HygienePolicy) -> EngagementPolicy:
    return policy.engagement if policy.engagement is not None else EngagementPolicy()


# ---------------------------------------------------------------------------------------------- segments


class HygieneFlagReader:
    """What :class:`HygieneFlag` criteria read besides a party's facts, for one evaluation at ``at``:
    ``facts`` of every standing party (the stage averages are measured from them, ungrouped), and loaders of
    the engagement rows, the ``address_reports`` rows and the required fields, each called once, when a
    flag first needs it. ``policy`` must have its ``engagement`` set."""

    def __init__(
        self, policy: HygienePolicy, bounces: BouncePolicy, at: datetime, facts: Mapping[str, Facts], *,
        engagement: Callable[[], Mapping[str, Row]], addresses: Callable[[], Mapping[str, Row]],
        required: Callable[[], Mapping[str, str]],
    ) -> None:
        self.policy, self.bounces, self.at, self._facts = policy, bounces, at, facts
        self._load_engagement, self._load_addresses, self._load_required = engagement, addresses, required

    @cached_property
    def averages(self) -> StageAverages:
        return stage_averages((f.get("stages") or [] for f in self._facts.values()), self.at, self.policy)

    @cached_property
    def engagement(self) -> Mapping[str, Row]:
        return self._load_engagement()

    @cached_property
    def addresses(self) -> Mapping[str, Row]:
        return self._load_addresses()

    @cached_property
    def required(self) -> Mapping[str, str]:
        return self._load_required()

    def holds(self, flag: str, facts: Facts, now: datetime) -> bool:
        """Whether the party of ``facts`` carries ``flag`` at ``now``."""
        if flag == "set_aside":
            return bool(facts.get("set_aside"))
        if flag == "stale":
            found = staleness(facts, self.averages, now, self.policy)
            return found is not None and found.stale
        if flag == "inactive":
            party = str(facts.get("party_id", ""))
            return is_inactive(self.engagement.get(party), now, _engagement_policy(self.policy))
        if flag == "bounced":
            return bool(bounced_addresses(facts, self.addresses, now, self.bounces))
        if flag == "incomplete":
            return bool(missing_fields(facts, self.policy, self.required))
        raise ValueError(f"not a hygiene flag: {flag!r}")


@register_criterion
class HygieneFlag(Criterion):
    """The party carries a hygiene flag at the evaluation's moment: ``{"hygiene": "stale"}`` (also
    ``inactive``, ``bounced``, ``incomplete``, ``set_aside``), under the CRM's hygiene policy. Reads the
    evaluation context's ``hygiene`` (see the module docstring: without it only ``set_aside`` can hold)."""

    tag: ClassVar[str] = "hygiene"
    time_relative: ClassVar[bool] = True
    reads: ClassVar[frozenset[str] | None] = frozenset({
        "party_id", "kind", "stage", "stages", "stage_since", "set_aside", "merged_into",
        "open_opportunities", "owner", "emails", "phones", "vat_number", "organization_id", "fields",
        "profile", "reports",
    })
    hygiene: Flag

    def evaluate(self, facts: Facts, context: Context) -> bool:
        if context.hygiene is None:
            return self.hygiene == "set_aside" and bool(facts.get("set_aside"))
        return context.hygiene.holds(self.hygiene, facts, context.now)


def uses_hygiene(node: Criterion) -> bool:
    """Whether a criteria tree tests a hygiene flag (not counting the segments it refers to)."""
    return isinstance(node, HygieneFlag) or any(uses_hygiene(child) for child in node.children())

