"""The hygiene rules (design 06 § 1): which parties are stale, incomplete or bounced, from plain rows.

Every function here is pure: it reads rows of the ``party_facts`` view (a party's stage, its stays in
stages, owner, addresses, fields...), of ``address_reports`` (the suppression decisions recorded on an
address) and of ``party_engagement``; the CRM gathers the rows and calls them. The numbers are defaults a
:class:`HygienePolicy` changes, each anchored in DOMAIN.md's "Data hygiene":

- **stale** — a party in an open stage (suspect, lead, prospect, target), not set aside, with no open
  opportunity (unless ``stale_with_open_opportunity``), whose current stay has lasted **longer than**
  ``stale_factor`` (2.5) times the average stay in that stage: "contacts older than 2-3 times [the average
  time a contact takes to be worked] without progress"; 2.5 is the middle of that range (3 months → 7.5
  months).
  Exactly the threshold is not stale yet.
- the **average stay** in a stage is measured, never fixed: the mean length of every *completed* stay in
  the stage (entered, then left by any stage change) that ended at or before the moment asked (DOMAIN:
  "measure the average time a contact takes to be worked; it varies by sector"). A stay still running is
  no sample. Averages may be grouped (by owner, by segment): a group with fewer than ``min_samples`` (20)
  completed stays in a stage uses the stage's overall average (basis ``stage``), and a stage with fewer
  than that overall uses ``fallback_days`` (90: DOMAIN's "e.g. 3 months"; basis ``fallback``). 20 stays
  keep one slow deal from moving the bar.
- **inactive** — the engagement policy (:mod:`crmcore.policies.engagement`, 365 days: "no opening of any
  communication for 12 months or more").
- **bounced** — an address of the party suppressed by the recorded decision in force (hard bounce, soft
  bounces over the limit, complaint), or undeliverable by the party's own delivery ledger under the bounce
  policy.
- **incomplete** — an expected field empty: per kind, ``expected`` (a person needs an e-mail address or a
  phone number, and an owner from prospect on; an organization a VAT number and an owner from target on),
  and every custom field or profile trait the field catalog marks required (DOMAIN: "each user reviews their
  own contacts every quarter and fills the empty fields"). Parties set aside or disqualified are out of
  sales work and never incomplete.

Times are compared exactly: stays are measured in whole microseconds and averages kept as fractions, so a
stay of exactly the threshold is the same number on both sides.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from crmcore.policies.consent import BouncePolicy, BounceReport, decision_timeline, state_at
from crmcore.policies.engagement import EngagementPolicy
from crmcore.policies.suppression import address_key_of, in_force, recorded_of_row
from crmcore.values import PartyKind

__all__ = [
    "DAY",
    "OPEN_STAGES",
    "Bounce",
    "ExpectedField",
    "HygienePolicy",
    "StageAverages",
    "Staleness",
    "StayAverage",
    "bounced_addresses",
    "completed_stays",
    "grouped_stage_averages",
    "is_stale",
    "missing_fields",
    "stage_averages",
    "staleness",
]

#: The stages a party is worked in: only these can be stale.
OPEN_STAGES: tuple[str, ...] = ("suspect", "lead", "prospect", "target")
#: How far along the lifecycle each stage is (prospect and target side by side; disqualified off the line).
_RANK = {"suspect": 0, "lead": 1, "prospect": 2, "target": 2, "customer": 3}
#: One day in microseconds, the unit stays are measured in.
DAY = 86_400_000_000
_MICROSECOND = timedelta(microseconds=1)
#: Facts read by name for an expected field; any other name is a custom field, then a profile trait.
_ROW_FIELDS = frozenset({"emails", "phones", "owner", "vat_number", "organization_id", "channel", "name"})
_NAME = r"^[a-z][a-z0-9_]{0,63}$"


class ExpectedField(BaseModel):
    """A field a party is expected to have filled: one of ``fields`` (``"emails"``, ``"phones"``,
    ``"owner"``, ``"vat_number"``, ``"organization_id"``, or a custom field or profile trait by name), from
    ``from_stage`` on (None: at every stage). Reported missing as the names joined by ``or``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: tuple[Annotated[str, Field(pattern=_NAME)], ...] = Field(min_length=1, max_length=20)
    from_stage: Literal["suspect", "lead", "prospect", "target", "customer"] | None = None

    @field_validator("fields", mode="before")
    @classmethod
    def _one_alone(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @property
    def label(self) -> str:
        """How the field is named when missing: ``"emails or phones"``."""
        return " or ".join(self.fields)


def _default_expected() -> dict[PartyKind, tuple[ExpectedField, ...]]:
    return {
        PartyKind.PERSON: (ExpectedField(fields=("emails", "phones")),
                           ExpectedField(fields=("owner",), from_stage="prospect")),
        PartyKind.ORGANIZATION: (ExpectedField(fields=("vat_number",), from_stage="target"),
                                 ExpectedField(fields=("owner",), from_stage="target")),
    }


class HygienePolicy(BaseModel):
    """The hygiene rules' numbers (see the module docstring for each one's anchor). ``name`` and
    ``version`` are recorded with what is done under the policy. ``engagement``: the inactivity rule
    (None: the CRM's engagement policy)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)] = "hygiene"
    version: Annotated[int, Field(ge=1)] = 1
    stale_factor: Annotated[Decimal, Field(ge=1, le=10, max_digits=6, decimal_places=3)] = Decimal("2.5")
    min_samples: Annotated[int, Field(ge=1, le=1_000_000)] = 20
    fallback_days: Annotated[int, Field(ge=1, le=3650)] = 90
    stale_with_open_opportunity: StrictBool = False
    expected: dict[PartyKind, tuple[ExpectedField, ...]] = Field(default_factory=_default_expected)
    engagement: EngagementPolicy | None = None

    def recorded(self) -> dict[str, Any]:
        """The policy as records name it: its name and version."""
        return {"name": self.name, "version": self.version}


# ---------------------------------------------------------------------------------------------- averages


class StayAverage(NamedTuple):
    """The average stay in ``stage`` (for ``group``; None when not grouped): ``mean`` in microseconds
    (exact), the number of completed stays it rests on (``samples``; 0 for the fallback) and its ``basis``:
    ``measured`` (the group's, or the stage's when not grouped), ``stage`` (the group had fewer than
    ``min_samples``: the stage's overall average), ``fallback`` (fewer overall too: ``fallback_days``)."""

    stage: str
    group: Hashable
    mean: Fraction
    samples: int
    basis: Literal["measured", "stage", "fallback"]

    @property
    def days(self) -> Fraction:
        """The average stay in days."""
        return self.mean / DAY


@dataclass(frozen=True)
class StageAverages:
    """Every open stage's average stay (``overall``), and per group when grouped (``groups``, by
    ``(group, stage)``, only for groups that had completed stays); :meth:`of` applies the fall-backs."""

    overall: Mapping[str, StayAverage]
    groups: Mapping[tuple[Hashable, str], StayAverage]
    grouped: bool
    min_samples: int

    def of(self, stage: str, group: Hashable = None) -> StayAverage:
        """The average a party of ``group`` in ``stage`` is measured against."""
        overall = self.overall[stage]
        if not self.grouped:
            return overall
        found = self.groups.get((group, stage))
        if found is not None:
            return found
        basis: Literal["stage", "fallback"] = "stage" if overall.basis == "measured" else "fallback"
        return overall._replace(group=group, basis=basis)


def completed_stays(stays: Sequence[Sequence[Any]], until: datetime) -> Iterator[tuple[str, int]]:
    """``(stage, length in microseconds)`` of every completed stay among ``stays`` (``[stage, since]`` in
    order) that ended at or before ``until``: a stay ends when the next begins; the last never has."""
    for (stage, since), (_, left) in pairwise(stays):
        ended = _moment(left)
        if ended <= until:
            yield str(stage), (ended - _moment(since)) // _MICROSECOND


def stage_averages(
    stays: Iterable[Sequence[Sequence[Any]]], at: datetime, policy: HygienePolicy,
) -> StageAverages:
    """The average completed stay in each open stage over every party's ``stays``, ended by ``at``."""
    return _averages(((None, s) for s in stays), at, policy, grouped=False)


def grouped_stage_averages(
    stays: Iterable[tuple[Hashable, Sequence[Sequence[Any]]]], at: datetime, policy: HygienePolicy,
) -> StageAverages:
    """As :func:`stage_averages`, with each party's stays given with its group (an owner, a segment):
    per group and stage, measured from the group's stays when it has ``min_samples`` of them."""
    return _averages(stays, at, policy, grouped=True)


def _averages(
    stays: Iterable[tuple[Hashable, Sequence[Sequence[Any]]]], at: datetime, policy: HygienePolicy, *,
    grouped: bool,
) -> StageAverages:
    open_stages = frozenset(OPEN_STAGES)
    totals: dict[str, list[int]] = {s: [0, 0] for s in OPEN_STAGES}
    by_group: dict[tuple[Hashable, str], list[int]] = {}
    for group, party_stays in stays:
        for stage, length in completed_stays(party_stays, at):
            if stage not in open_stages:
                continue
            total = totals[stage]
            total[0] += length
            total[1] += 1
            if grouped:
                held = by_group.setdefault((group, stage), [0, 0])
                held[0] += length
                held[1] += 1
    fallback = Fraction(policy.fallback_days * DAY)
    overall = {}
    for stage, (length, count) in totals.items():
        if count >= policy.min_samples:
            overall[stage] = StayAverage(stage, None, Fraction(length, count), count, "measured")
        else:
            overall[stage] = StayAverage(stage, None, fallback, 0, "fallback")
    groups = {}
    for (group, stage), (length, count) in by_group.items():
        if count >= policy.min_samples:
            groups[(group, stage)] = StayAverage(stage, group, Fraction(length, count), count, "measured")
        else:
            whole = overall[stage]
            groups[(group, stage)] = whole._replace(
                group=group, basis="stage" if whole.basis == "measured" else "fallback")
    return StageAverages(overall, groups, grouped, policy.min_samples)


# ---------------------------------------------------------------------------------------------- stale


class Staleness(NamedTuple):
    """A party that may be stale: its ``stage`` since ``since``, for ``elapsed`` microseconds, against a
    ``threshold`` (``stale_factor`` times ``average``); stale when ``elapsed > threshold``."""

    stage: str
    since: datetime
    elapsed: int
    threshold: Fraction
    average: StayAverage

    @property
    def stale(self) -> bool:
        return self.elapsed > self.threshold


def staleness(
    row: Mapping[str, Any], averages: StageAverages, at: datetime, policy: HygienePolicy, *,
    group: Hashable = None,
) -> Staleness | None:
    """How long the party of facts ``row`` has been in its stage at ``at``, against its threshold; None for
    a party that cannot be stale: merged away, set aside, not in an open stage, or with an open opportunity
    (unless the policy says ``stale_with_open_opportunity``)."""
    stage = row.get("stage")
    if (stage not in _OPEN or row.get("merged_into") or row.get("set_aside")
            or (not policy.stale_with_open_opportunity and (row.get("open_opportunities") or 0) > 0)):
        return None
    stays = row.get("stages") or ()
    since = _moment(stays[-1][1] if stays else row["stage_since"])
    average = averages.of(str(stage), group)
    threshold = average.mean * Fraction(policy.stale_factor)
    return Staleness(str(stage), since, (at - since) // _MICROSECOND, threshold, average)


def is_stale(
    row: Mapping[str, Any], averages: StageAverages, at: datetime, policy: HygienePolicy, *,
    group: Hashable = None,
) -> bool:
    """Whether the party of facts ``row`` is stale at ``at``: in an open stage for longer than
    ``stale_factor`` times the average stay there (of its ``group`` when the averages are grouped)."""
    found = staleness(row, averages, at, policy, group=group)
    return found is not None and found.stale


_OPEN = frozenset(OPEN_STAGES)


# ---------------------------------------------------------------------------------------------- incomplete


def missing_fields(
    row: Mapping[str, Any], policy: HygienePolicy, required: Mapping[str, str] | Iterable[str] = (),
) -> list[str]:
    """The expected fields the party of facts ``row`` has empty: the policy's for its kind and stage (each
    named by its label, in the policy's order), then the ``required`` custom fields and profile traits (name
    -> section ``custom`` or ``profile``; names alone are looked up in both), by name. None, a blank text
    and an empty list are empty. Parties merged away, set aside or disqualified miss nothing."""
    stage = row.get("stage")
    if row.get("merged_into") or row.get("set_aside") or stage not in _RANK:
        return []
    rank = _RANK[str(stage)]
    missing: list[str] = []
    for expected in policy.expected.get(PartyKind(row["kind"]), ()):
        if expected.from_stage is not None and rank < _RANK[expected.from_stage]:
            continue
        if not any(_filled(_value(row, name)) for name in expected.fields):
            missing.append(expected.label)
    sections = dict(required) if isinstance(required, Mapping) else dict.fromkeys(required, "")
    for name in sorted(sections):
        section = sections[name]
        if section == "profile":
            value = (row.get("profile") or {}).get(name)
        elif section == "custom":
            value = (row.get("fields") or {}).get(name)
        else:
            value = _value(row, name)
        if not _filled(value) and name not in missing:
            missing.append(name)
    return missing


def _value(row: Mapping[str, Any], name: str) -> Any:
    if name in _ROW_FIELDS:
        return row.get(name)
    fields = row.get("fields") or {}
    return fields[name] if name in fields else (row.get("profile") or {}).get(name)


def _filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | dict | set):
        return bool(value)
    return True


# ---------------------------------------------------------------------------------------------- bounced


class Bounce(NamedTuple):
    """An address of a party that may not be sent to: ``channel`` ``email`` (reaching the e-mail and
    newsletter channels) or ``phone`` (phone and SMS), the ``rule`` that suppressed it and from when
    (``since``), and the ``source``: the recorded ``decision`` in force, or the party's own ``ledger``."""

    channel: Literal["email", "phone"]
    address: str
    rule: str
    since: datetime
    source: Literal["decision", "ledger"]


def bounced_addresses(
    row: Mapping[str, Any], address_rows: Mapping[str, Mapping[str, Any]], at: datetime,
    policy: BouncePolicy,
) -> list[Bounce]:
    """The addresses of the party of facts ``row`` (e-mail addresses, then phone numbers, in its order)
    suppressed at ``at``: by the decision in force in the address's ``address_reports`` row (by address
    key) — a reinstatement in force keeps it deliverable —, or with no decision in force by ``policy``
    reading the delivery reports of the party's own ledger (``row["reports"]``).
    The rows must be folded from what was effective by ``at``."""
    found: list[Bounce] = []
    ledger = row.get("reports") or {}
    kinds: tuple[tuple[Literal["email", "phone"], str], ...] = (("email", "emails"), ("phone", "phones"))
    for channel, key in kinds:
        for address in row.get(key) or ():
            decided = address_rows.get(address_key_of(address))
            index = in_force(recorded_of_row(decided), at) if decided is not None else None
            if decided is not None and index is not None:  # a decision in force decides, either way
                decision = decided["decisions"][index]
                if decision["suppressed"]:
                    since = _moment(decision["effective_at"])
                    found.append(Bounce(channel, address, str(decision["rule"]), since, "decision"))
                continue
            reports = [BounceReport(_moment(e["order"][0]), e["outcome"], e.get("raw_code"), "",
                                    tuple(e["order"][1:])) for e in ledger.get(address.lower(), ())]
            state = state_at(decision_timeline(reports, policy), at) if reports else None
            if state is not None and state.suppressed:
                found.append(Bounce(channel, address, state.rule, state.effective_at, "ledger"))
    return found


def _moment(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
