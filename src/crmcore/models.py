"""Read models: frozen, JSON-serialisable answers a frontend can render (each has a JSON schema)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from crmcore.fields import FieldDefinition
from crmcore.identity import PostalAddress
from crmcore.policies.pipelines import ForecastCategory, OpportunityStatus
from crmcore.policies.qualification import Recommendation
from crmcore.policies.tasks import TaskPriority, TaskStatus
from crmcore.values import (
    AddressKind,
    CallOutcome,
    CampaignChannel,
    CampaignStatus,
    Channel,
    ConsentChannel,
    ConsentStatus,
    DeliveryOutcome,
    ExclusionReason,
    LawfulBasis,
    Money,
    PartyKind,
    Stage,
)

__all__ = [
    "AddressDecision",
    "AddressStatusView",
    "Agenda",
    "AgendaItem",
    "AssigneeAnalysis",
    "AttributedOpportunity",
    "AttributionFigures",
    "AttributionTotals",
    "AuditRecord",
    "Backtest",
    "BacktestFigures",
    "BacktestPeriod",
    "BouncedAddress",
    "CampaignFigures",
    "CampaignPeriodResults",
    "CampaignResults",
    "CampaignTotals",
    "Change",
    "CleanUpRun",
    "CleanUpStep",
    "CloseDateMove",
    "ClosedFigures",
    "ConsentEntry",
    "ContactDecision",
    "CurrencyBacktest",
    "CurrencyForecast",
    "CurrencyWinLoss",
    "CustomerRanking",
    "Deliverability",
    "DeliveryEntry",
    "DuplicateMatch",
    "FieldChange",
    "FieldScanFinding",
    "FieldValueView",
    "Forecast",
    "ForecastAccuracy",
    "HygieneCounts",
    "HygieneReport",
    "IncompleteParty",
    "IngestReport",
    "InterruptedNegotiation",
    "KindTime",
    "LeadAssessment",
    "LeadScore",
    "LogHead",
    "LogProblem",
    "LogVerification",
    "MailingExclusion",
    "MatchReason",
    "MergeField",
    "MergePlan",
    "OpportunitySummary",
    "OpportunityView",
    "PartyCounts",
    "PartySummary",
    "PartyView",
    "PipelineFigures",
    "Qualification",
    "RankedCustomer",
    "Registration",
    "RuleResult",
    "ScheduleMove",
    "ScoreReason",
    "ScoringBacktest",
    "ScoringCutoff",
    "ScoringFigures",
    "SegmentChange",
    "SegmentMember",
    "SegmentMembers",
    "SegmentView",
    "StageAverage",
    "StageCalibration",
    "StaleParty",
    "Suppression",
    "TaskAnalysis",
    "TaskSummary",
    "TaskView",
    "TimelineEntry",
    "WhatIfParty",
    "WhatIfQuarter",
    "WinLoss",
    "Workload",
    "WorkloadEntry",
]


class _ReadModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class PartyView(_ReadModel):
    """A party as it stands (or stood at a version or moment)."""

    id: UUID
    version: int
    kind: PartyKind
    stage: Stage
    name: str
    organization_name: str | None
    contact_name: str | None
    channel: Channel | None
    owner: str | None
    organization_id: UUID | None
    profile: dict[str, Any]
    set_aside: bool
    set_aside_reason: str | None
    disqualification_reason: str | None
    qualified_from: UUID | None
    registered_at: datetime
    last_effective_at: datetime
    given_name: str | None = None
    family_name: str | None = None
    emails: list[str] = []
    phones: list[str] = []
    birth_date: date | None = None
    address: PostalAddress | None = None
    web_links: list[str] = []
    vat_number: str | None = None
    merged_into: UUID | None = None
    merged_from: list[UUID] = []

    @property
    def primary_email(self) -> str | None:
        """The first e-mail address, if any."""
        return self.emails[0] if self.emails else None

    @property
    def primary_phone(self) -> str | None:
        """The first phone number (E.164), if any."""
        return self.phones[0] if self.phones else None
    custom_fields: dict[str, Any] = {}
    custom_field_versions: dict[str, int] = {}
    consent: dict[ConsentChannel, ConsentStatus] = {}
    #: When the party last interacted with the company: its engagement, a completed call or meeting task.
    last_interaction_at: datetime | None = None


class FieldChange(_ReadModel):
    """One field's value before and after an event."""

    before: Any
    after: Any


class TimelineEntry(_ReadModel):
    """One event in a party's history: what happened, who did it, when it took effect and was recorded."""

    version: int
    event: str
    actor: str
    effective_at: datetime
    recorded_at: datetime
    data: dict[str, Any]
    changes: dict[str, FieldChange]
    party_id: UUID | None = None


class Change(_ReadModel):
    """A committed event, as told to an embedding application; ``position`` orders all changes."""

    position: int
    aggregate_id: UUID
    aggregate_type: str
    event: str
    version: int
    actor: str
    effective_at: datetime
    recorded_at: datetime
    data: dict[str, Any]


class Qualification(_ReadModel):
    """What qualifying a lead produced: the prospect and/or target, linked when both exist."""

    lead_id: UUID
    stage: Stage
    prospect_id: UUID | None
    target_id: UUID | None


class PartySummary(_ReadModel):
    """A party's row in the ``parties`` view."""

    id: UUID
    kind: PartyKind
    stage: Stage
    name: str
    owner: str | None
    organization_id: UUID | None
    set_aside: bool
    since: datetime


class PartyCounts(_ReadModel):
    """How many parties there are by stage, by kind and by owner (``unassigned`` have none)."""

    total: int
    by_stage: dict[Stage, int]
    by_kind: dict[PartyKind, int]
    by_owner: dict[str, int]
    unassigned: int


class MatchReason(_ReadModel):
    """How one field compared between two parties: ``level`` is exact, close, different or missing."""

    field: str
    level: str
    similarity: float
    weight: float
    value: str | None
    other_value: str | None


class DuplicateMatch(_ReadModel):
    """Two parties (or import rows, named ``row <index>``) that may be the same, with the match
    probability (0..1) and the reasons: how each field compared."""

    party_id: UUID | str
    other_id: UUID | str
    score: float
    reasons: list[MatchReason]


class Registration(_ReadModel):
    """What entering a party did: the id registered (or attached to) and any near matches found."""

    party_id: UUID
    attached: bool
    near_matches: list[DuplicateMatch]


class MergeField(_ReadModel):
    """Where one field's merged value comes from: the survivor, the loser or both (lists are joined)."""

    field: str
    survivor: Any
    loser: Any
    result: Any
    source: Literal["survivor", "loser", "both"]


class MergePlan(_ReadModel):
    """A merge, field by field (what a dry run shows and what a merge records)."""

    survivor_id: UUID
    loser_id: UUID
    fields: list[MergeField]
    applied: bool
class FieldValueView(_ReadModel):
    """One custom field value of a party, with the catalog version and the definition it was written under.

    ``definition`` is None only if the catalog at that version has no such active field (which the
    commands never let happen). ``retired`` says the field has been retired since.
    """

    name: str
    value: Any
    catalog_version: int
    definition: FieldDefinition | None
    retired: bool = False


class FieldScanFinding(_ReadModel):
    """A party whose stored value (custom field or profile trait) breaks a field's rules."""

    party_id: UUID
    field: str
    value: Any
    message: str
    suggestion: str | None = None
# -- consent and deliverability ------------------------------------------------------------------------


class ConsentEntry(_ReadModel):
    """One entry of a party's consent ledger: a channel subscribed or unsubscribed, how and on what basis.

    ``party_id`` and ``version`` say on which party's history it was recorded and where; ``effective_at``
    is when it took effect (it may precede entries recorded before it), ``recorded_at`` when it was stored.
    """

    party_id: UUID
    version: int
    status: ConsentStatus
    channel: ConsentChannel
    effective_at: datetime
    recorded_at: datetime
    actor: str
    source: str
    lawful_basis: LawfulBasis | None
    evidence: str | None
    external_id: str | None


class DeliveryEntry(_ReadModel):
    """One entry of a party's delivery ledger: what happened to a message sent to one address.

    ``outcome`` is what was recorded; ``raw_code`` the code the sending tool reported (kept so a later
    bounce policy can read it again); ``classified_as`` what the policy in force made of that code.
    """

    party_id: UUID
    version: int
    address: str
    address_key: str
    address_kind: AddressKind
    outcome: DeliveryOutcome
    raw_code: str | None
    classified_as: DeliveryOutcome | None
    effective_at: datetime
    recorded_at: datetime
    actor: str
    external_id: str | None


class Deliverability(_ReadModel):
    """Whether mail (or calls and texts) may go to one address at a moment, under a bounce policy.

    ``hard_bounced``: hard-bounced, or treated as such after repeated soft bounces; ``soft_bounces`` counts
    the soft bounces since the last delivery that count towards the limit; ``last`` is the latest delivery
    entry of the party's ledger considered (None when it has none). When the address is not deliverable,
    ``rule`` says why (``hard_bounce``, ``soft_bounces``, ``complaint``), ``since`` from when and
    ``evidence`` on which reports (external ids, ``party:<id>:<version>`` for ledger entries); ``policy``
    names the policy that decided (name and version).
    """

    address_key: str
    at: datetime | None
    deliverable: bool
    reason: str
    hard_bounced: bool
    soft_bounces: int
    last: DeliveryEntry | None
    rule: str | None = None
    since: datetime | None = None
    evidence: list[str] = []
    policy: dict[str, Any] | None = None


class ContactDecision(_ReadModel):
    """The answer to "could we contact this party on this channel at that moment?", with the reason.

    ``consent`` is the ledger entry that decided (None when none was recorded by then); ``address`` the
    address considered; ``deliverability`` its state then (None when no address was considered).
    """

    allowed: bool
    reason: str
    channel: ConsentChannel
    at: datetime | None
    address: str | None
    consent: ConsentEntry | None
    deliverability: Deliverability | None


class MailingExclusion(_ReadModel):
    """A party that must not get mailings: the mailing channels it unsubscribed from, its bounced addresses.

    ``bounced`` lists the keys of its undeliverable e-mail addresses: the primary one when the recorded
    suppression decision in force suppresses it, and those its own delivery ledger finds undeliverable under
    the default bounce policy, unless the decision in force about them reinstated them.
    """

    party_id: UUID
    unsubscribed: list[ConsentChannel]
    bounced: list[str]


class AddressDecision(_ReadModel):
    """One recorded decision of the bounce policy about an address: suppressed (or reinstated) from
    ``effective_at``, by ``rule`` (``hard_bounce``, ``soft_bounces``, ``complaint``, ``delivered``,
    ``reapplied``…) under ``policy`` (name and version), resting on the reports named in ``evidence``;
    recorded at ``recorded_at`` by ``actor``."""

    suppressed: bool
    effective_at: datetime
    recorded_at: datetime
    rule: str
    reason: str
    policy: dict[str, Any]
    evidence: list[str]
    actor: str


class AddressStatusView(_ReadModel):
    """An address and the bounce policy's decisions about it, in effective-time order (ties in recording
    order); ``suppressed`` is the decision in force now (False when none was recorded)."""

    address_key: str
    address: str | None
    suppressed: bool
    decisions: list[AddressDecision]


class Suppression(_ReadModel):
    """A suppressed address and the decision that suppressed it (the one in force at the moment asked)."""

    address_key: str
    address: str | None
    decision: AddressDecision


class IngestReport(_ReadModel):
    """What :meth:`crmcore.CRM.ingest` did: events ``received``, ``stored``, and skipped as ``duplicates``
    (already stored, or repeated in the call); ``positions`` are the log positions of the stored events, in
    the order they were written (None where the store does not tell them)."""

    received: int
    stored: int
    duplicates: int
    positions: list[int] | None


# -- opportunities -------------------------------------------------------------------------------------


class CloseDateMove(_ReadModel):
    """One move of an opportunity's expected close date: from ``previous`` to ``expected_close``."""

    expected_close: date
    previous: date
    effective_at: datetime
    actor: str


class OpportunitySummary(_ReadModel):
    """An opportunity's row in the ``opportunities`` view; ``campaign_id`` is the campaign it was opened
    from (None: none), ``opened_at`` when it was opened (effective time)."""

    id: UUID
    party_id: UUID
    campaign_id: UUID | None = None
    title: str
    owner: str
    value: Money
    pipeline: str
    stage: str
    probability: int
    category: ForecastCategory
    expected_close: date
    status: OpportunityStatus
    opened_at: datetime | None = None


class OpportunityView(OpportunitySummary):
    """An opportunity as it stands (or stood at a version): its summary, and its history's landmarks."""

    version: int
    reasons: list[str]
    close_date_history: list[CloseDateMove]
    opened_at: datetime
    closed_at: datetime | None
    last_effective_at: datetime


class PipelineFigures(_ReadModel):
    """Open opportunities in one currency: how many, their value, and their value weighted by probability
    (value * probability / 100, exact)."""

    count: int
    value: Decimal
    weighted: Decimal


class ClosedFigures(_ReadModel):
    """Won or lost opportunities in one currency: how many and their value."""

    count: int
    value: Decimal


class CurrencyForecast(_ReadModel):
    """The forecast in one currency: the open pipeline in total and by stage, owner, forecast category,
    expected-close month (``YYYY-MM``) and quarter (``YYYY-Qn``); the won and lost totals."""

    currency: str
    open: PipelineFigures
    by_stage: dict[str, PipelineFigures]
    by_owner: dict[str, PipelineFigures]
    by_category: dict[ForecastCategory, PipelineFigures]
    by_month: dict[str, PipelineFigures]
    by_quarter: dict[str, PipelineFigures]
    won: ClosedFigures
    lost: ClosedFigures


class Forecast(_ReadModel):
    """The pipeline forecast, per currency (amounts in different currencies are never added).

    ``at`` and ``known_at`` say which moment it stands at (None: now). ``average_cycle_days`` is the mean
    time from opening to closing over won opportunities, in days to the hundredth (None when none was won).
    """

    at: datetime | None
    known_at: datetime | None
    currencies: dict[str, CurrencyForecast]
    average_cycle_days: Decimal | None


class CurrencyWinLoss(_ReadModel):
    """Won and lost opportunities in one currency: totals, lost ones by reason (an opportunity lost for
    several reasons counts under each), by the stage they were lost at and by owner, won ones by owner."""

    currency: str
    won: ClosedFigures
    lost: ClosedFigures
    lost_by_reason: dict[str, ClosedFigures]
    lost_by_stage: dict[str, ClosedFigures]
    lost_by_owner: dict[str, ClosedFigures]
    won_by_owner: dict[str, ClosedFigures]


class InterruptedNegotiation(_ReadModel):
    """An open opportunity with no change for longer than the analysis allows: a stalled negotiation."""

    opportunity_id: UUID
    party_id: UUID
    owner: str
    stage: str
    amount: Decimal
    currency: str
    last_change_at: datetime
    idle_days: int


class WinLoss(_ReadModel):
    """The win/loss analysis at ``at``: per currency, and the negotiations interrupted prematurely (open with
    no change for ``stale_after_days`` days or more), longest idle first."""

    at: datetime
    known_at: datetime | None
    stale_after_days: int
    currencies: dict[str, CurrencyWinLoss]
    interrupted: list[InterruptedNegotiation]


class BacktestFigures(_ReadModel):
    """One period's forecast against what happened, in one currency.

    The forecast is taken at the period's start over the open opportunities expected to close within it:
    how many, their value, their weighted value (value * probability / 100) and the value its owners had
    committed (forecast category "commit"). ``won_*`` is what was actually won during the period (whatever
    its expected date was), ``won_from_forecast`` the part of it that was in the forecast. ``error`` is the
    weighted forecast minus the won value (positive: over-forecast); ``error_percent`` relates it to the won
    value (None when nothing was won).
    """

    forecast_count: int
    forecast_value: Decimal
    forecast_weighted: Decimal
    commit_value: Decimal
    won_count: int
    won_value: Decimal
    won_from_forecast: Decimal
    error: Decimal
    error_percent: Decimal | None


class BacktestPeriod(_ReadModel):
    """One past period (``label`` ``YYYY-MM`` or ``YYYY-Qn``, from ``start`` to ``end`` exclusive): the
    total and each owner's figures (owners at the period's start for the forecast, at the win for won)."""

    label: str
    start: datetime
    end: datetime
    total: BacktestFigures
    by_owner: dict[str, BacktestFigures]


class ForecastAccuracy(_ReadModel):
    """How good a run of period forecasts was: totals, ``bias`` (the sum of the errors: positive means
    over-forecast), the mean absolute error per period, and the weighted absolute percentage error (the
    sum of absolute errors over the won value, None when nothing was won)."""

    periods: int
    forecast_weighted: Decimal
    won_value: Decimal
    bias: Decimal
    mean_absolute_error: Decimal
    wape_percent: Decimal | None


class CurrencyBacktest(_ReadModel):
    """The backtest in one currency: every period, the accuracy over all of them, and each owner's."""

    currency: str
    periods: list[BacktestPeriod]
    accuracy: ForecastAccuracy
    by_owner: dict[str, ForecastAccuracy]


class StageCalibration(_ReadModel):
    """A stage's configured probability beside the win rate observed from it.

    ``opportunities`` counts the distinct opportunities open at the stage at the start of some period; of
    those, ``won``, ``lost`` and ``still_open`` say how they ended by the backtest's end, and
    ``win_rate_percent`` is won / (won + lost). ``forecast_samples`` counts (period, opportunity) pairs
    the stage contributed to a period forecast, and ``won_in_period_percent`` how many of them were won in
    that very period - what the weighted forecast assumes the probability to be. ``average_probability``
    is the mean probability those forecasts used (overrides included); ``configured_probability`` the
    stage's in the pipeline now (None when the stage is no longer configured).
    """

    pipeline: str
    stage: str
    configured_probability: int | None
    average_probability: Decimal | None
    opportunities: int
    won: int
    lost: int
    still_open: int
    win_rate_percent: Decimal | None
    forecast_samples: int
    won_in_period: int
    won_in_period_percent: Decimal | None


class Backtest(_ReadModel):
    """The forecast replayed at the start of each past period and compared with what actually closed.

    ``every`` is ``month`` or ``quarter``; periods run from ``start`` to ``end`` in the time zone named by
    ``timezone``. With ``as_known``, each forecast uses only what had been recorded by the period's start
    (what the team saw then), else everything now known to have been effective by then. Amounts are per
    currency; ``calibration`` lists every stage seen, in pipeline order.
    """

    every: str
    timezone: str
    start: datetime
    end: datetime
    as_known: bool
    currencies: dict[str, CurrencyBacktest]
    calibration: list[StageCalibration]


# -- tasks ---------------------------------------------------------------------------------------------


class ScheduleMove(_ReadModel):
    """A schedule a task was moved away from (``due_at``/``duration_minutes`` or ``deadline``), when and by
    whom."""

    due_at: datetime | None
    duration_minutes: int | None
    deadline: date | None
    effective_at: datetime
    actor: str


class TaskSummary(_ReadModel):
    """What a task is and when it is due: a date-time (``due_at``, with ``duration_minutes``) or a
    ``deadline`` day."""

    id: UUID
    kind: str
    subject: str
    party_id: UUID | None
    opportunity_id: UUID | None
    assignees: list[str]
    due_at: datetime | None
    duration_minutes: int | None
    deadline: date | None
    priority: TaskPriority


class TaskView(TaskSummary):
    """A task as it stands (or stood at a version)."""

    version: int
    status: TaskStatus
    #: Every schedule the task was moved away from, oldest first.
    schedule_history: list[ScheduleMove]
    completed_by: str | None
    on_behalf: bool
    time_spent_minutes: int | None
    outcome: str | None
    cancel_reason: str | None
    planned_at: datetime
    completed_at: datetime | None
    cancelled_at: datetime | None
    last_effective_at: datetime


class AgendaItem(TaskSummary):
    """An open task in an agenda. ``due_on`` is the day it is due in the agenda's time zone."""

    due_on: date
    reschedules: int
    planned_at: datetime


class Agenda(_ReadModel):
    """One person's open tasks seen on day ``on`` in ``timezone``: due before it, that day, the rest of its
    ISO week, later. Each list is sorted by due time (a deadline counts as the end of its day), then
    priority (urgent first), then subject. ``at``: the moment it is read as of (None: now)."""

    assignee: str
    on: date
    timezone: str
    at: datetime | None
    overdue: list[AgendaItem]
    today: list[AgendaItem]
    this_week: list[AgendaItem]
    later: list[AgendaItem]

    @property
    def open_count(self) -> int:
        """How many open tasks the agenda holds."""
        return len(self.overdue) + len(self.today) + len(self.this_week) + len(self.later)


class WorkloadEntry(_ReadModel):
    """One person's open tasks, counted by agenda bucket, and the minutes planned for the timed ones."""

    assignee: str
    overdue: int
    today: int
    this_week: int
    later: int
    open: int
    planned_minutes: int


class Workload(_ReadModel):
    """The open tasks of several people seen on day ``on`` in ``timezone`` (``at``: read as of then)."""

    on: date
    timezone: str
    at: datetime | None
    assignees: dict[str, WorkloadEntry]


class KindTime(_ReadModel):
    """Time declared on completed tasks of one kind: how many declared it, the total and the mean."""

    completed: int
    declared: int
    total_minutes: int
    mean_minutes: float | None


class AssigneeAnalysis(_ReadModel):
    """One person's closed tasks: completed (on time: by the due day; late), lateness in days of the late
    ones, time spent per kind, and cancelled."""

    assignee: str
    completed: int
    on_time: int
    late: int
    mean_days_late: float | None
    median_days_late: float | None
    time_spent_minutes: int
    by_kind: dict[str, KindTime]
    cancelled: int


class TaskAnalysis(_ReadModel):
    """Planned versus completed dates and time spent per person, over the tasks closed between ``since``
    and ``until`` (effective times; None: unbounded), due days read in ``timezone``."""

    since: datetime | None
    until: datetime | None
    timezone: str
    at: datetime | None
    assignees: dict[str, AssigneeAnalysis]


class SegmentView(_ReadModel):
    """A segment: its name, description, canonical criteria (JSON), whether retired, and its times."""

    id: UUID
    version: int
    name: str
    description: str | None
    criteria: dict[str, Any]
    retired: bool
    retired_reason: str | None
    defined_at: datetime
    last_effective_at: datetime


class SegmentMember(_ReadModel):
    """A member of a segment: the party, its name and stage, and since when it is a member and through which
    event (``since`` and ``cause`` are None when the membership was evaluated at a moment, not kept)."""

    party_id: UUID
    name: str
    stage: Stage
    since: datetime | None = None
    cause: str | None = None


class SegmentMembers(_ReadModel):
    """The members of a segment at a moment (``at``: None means now), sorted by party id."""

    segment_id: UUID
    at: datetime | None
    known_at: datetime | None = None
    members: list[SegmentMember]

    @property
    def ids(self) -> list[UUID]:
        """The members' party ids."""
        return [m.party_id for m in self.members]

    def __len__(self) -> int:
        return len(self.members)


class SegmentChange(_ReadModel):
    """A party entered or left a segment at effective time ``at``, caused by event ``cause`` (``Party.
    FieldsUpdated``, ``Segment.CriteriaChanged``, ...) at log ``position``."""

    segment_id: UUID
    party_id: UUID
    change: Literal["entered", "left"]
    at: datetime
    cause: str
    position: int
# -- ranking and qualification -------------------------------------------------------------------------


class RankedCustomer(_ReadModel):
    """One customer in a :class:`CustomerRanking`: its place, its score (0-100, to a tenth) and the four
    components (each 0-100), with what they were computed from, so a user sees why it ranks there.

    ``last_purchase_at`` is the later of its last won deal and its conversion; ``wins`` the deals won in
    the 730 days before the ranking's moment; ``interactions`` those in the 365 days before it;
    ``value_amount`` what the value component ranks: the won value in the ranking's currency over the 730
    days, or the value field's value (0 when missing).
    """

    rank: int
    party_id: UUID
    name: str
    owner: str | None
    score: Decimal
    recency: Decimal
    frequency: Decimal
    engagement: Decimal
    value: Decimal
    last_purchase_at: datetime | None
    wins: int
    interactions: int
    value_amount: Decimal


class CustomerRanking(_ReadModel):
    """Customers ranked by the targeting score, best first (equal scores by party id).

    ``scored_at`` is the moment scored (``at``, or the time of the call); ``at`` / ``known_at`` say which
    moment the facts stand at (None: now). ``currency`` is the one the value component reads won value in
    (None with a ``value_field``, or when nothing was won); ``considered`` how many customers were scored
    (value percentiles are among them all), ``customers`` the best ``limit`` of them.
    """

    scored_at: datetime
    at: datetime | None
    known_at: datetime | None
    weights: dict[str, float]
    currency: str | None
    value_field: str | None
    considered: int
    customers: list[RankedCustomer]


class RuleResult(_ReadModel):
    """How one qualification rule went for a lead."""

    label: str
    passed: bool
    weight: Decimal
    required: bool


class LeadAssessment(_ReadModel):
    """A party assessed under a qualification policy: the recommendation (qualify, review, disqualify), the
    score (0-1, to the hundredth: the weight of the passed rules over the total), each rule's outcome and
    the labels of the failed ones. ``party_id`` is the party whose facts were read (the survivor of a
    merged party); ``at`` the moment assessed (None: now)."""

    party_id: UUID
    stage: Stage
    at: datetime | None
    policy_name: str
    policy_version: int
    recommendation: Recommendation
    score: Decimal
    rules: list[RuleResult]
    failed: list[str]


# -- predictive lead scoring ---------------------------------------------------------------------------


class ScoreReason(_ReadModel):
    """How one value of a lead moved its predictive score.

    ``won`` and ``lost`` count the training deals decided with that value; ``likelihood_ratio`` is
    P(value | won) / P(value | lost) with Laplace smoothing (above 1 pushes the score up, below 1 down),
    rounded to three decimals; ``effect`` is ``up``, ``down``, ``neutral``, or ``unseen`` for a value no
    training deal had (it contributes nothing, and its ratio is None).
    """

    variable: str
    value: str
    won: int
    lost: int
    likelihood_ratio: Decimal | None
    effect: Literal["up", "down", "neutral", "unseen"]


class LeadScore(_ReadModel):
    """A party's predictive score: the chance in percent (0-100, one decimal) that it is won, by model
    ``model_version``, with the values that pushed it up or down, strongest first."""

    party_id: UUID
    name: str
    stage: Stage
    score: Decimal
    model_version: int
    reasons: list[ScoreReason]


class ScoringFigures(_ReadModel):
    """How well predictive scores ranked leads against what became of them.

    ``converted`` of ``leads`` reached the customer stage or won a deal in the window after the cut-off;
    ``base_rate_percent`` is their share. ``auc`` is the chance that a converting lead was scored above a
    non-converting one (ties count half; None without both kinds). The top decile is the best-scored
    tenth of the leads (rounded up; ties at its edge broken by party id): its conversion rate, and
    ``lift``, that rate over the base rate (None when nothing converted).
    """

    leads: int
    converted: int
    base_rate_percent: Decimal | None
    auc: Decimal | None
    top_decile_leads: int
    top_decile_converted: int
    top_decile_rate_percent: Decimal | None
    lift: Decimal | None


class ScoringCutoff(ScoringFigures):
    """One cut-off of a scoring backtest: the model trained on the ``decisions`` (``won`` + ``lost``) made
    before ``cutoff``, the leads as they stood then, and what they did up to ``window_end``. ``trained`` is
    False when no model could be trained then (no won or no lost deal yet): its leads are counted, unscored.
    """

    label: str
    cutoff: datetime
    window_end: datetime
    decisions: int
    won: int
    lost: int
    trained: bool


class ScoringBacktest(_ReadModel):
    """Predictive scoring replayed at past cut-offs: each cut-off's figures and ``overall`` (counts summed;
    AUC over the pairs of leads of the same cut-off; top deciles taken per cut-off and summed)."""

    variables: list[str]
    stages: list[Stage]
    timezone: str
    horizon_days: int | None
    until: datetime
    cutoffs: list[ScoringCutoff]
    overall: ScoringFigures


# -- campaigns ------------------------------------------------------------------------------------------


class CampaignView(_ReadModel):
    """A campaign as it stands (or stood at a version): settings, status, counts of its frozen audience
    (per channel), exclusions and sends, cost so far and its operators."""

    id: UUID
    version: int
    name: str
    description: str | None
    channels: list[CampaignChannel]
    segment_id: UUID
    budget: Money
    include_inactive: bool
    exclude_open_negotiations: bool
    status: CampaignStatus
    start_at: datetime | None
    launched_at: datetime | None
    audience_at: datetime | None
    cost: Money
    recipients: dict[str, int]
    excluded: int
    sent: int
    waves: int
    operators: list[str]
    cancel_reason: str | None
    drafted_at: datetime
    last_effective_at: datetime


class Recipient(_ReadModel):
    """One recipient of a campaign channel: the party and the address it is reached at."""

    party_id: UUID
    address: str


class Exclusion(_ReadModel):
    """A segment member the audience policy left out of a channel, and why."""

    party_id: UUID
    channel: CampaignChannel
    reason: ExclusionReason
    detail: str


class CampaignAudience(_ReadModel):
    """The audience frozen at launch (``audience_at``) under ``policy``: recipients per channel, and every
    exclusion with its reason."""

    campaign_id: UUID
    audience_at: datetime
    policy: dict[str, Any]
    recipients: dict[str, list[Recipient]]
    exclusions: list[Exclusion]

    def excluded(self, reason: ExclusionReason | str) -> list[UUID]:
        """The parties excluded for ``reason`` (any channel)."""
        wanted = ExclusionReason(reason)
        return [e.party_id for e in self.exclusions if e.reason is wanted]


class CallListEntry(_ReadModel):
    """One party on a telemarketing call list: its number, its operator (None until operators are
    assigned), whether it is still to be worked (``open``: no call with a final outcome yet), how many
    calls it had, the last outcome and when, and the date it asked to be called back on."""

    party_id: UUID
    phone: str
    operator: str | None
    open: bool
    calls: int
    last_outcome: CallOutcome | None
    last_called_at: datetime | None
    call_back_on: date | None


class CallRecord(_ReadModel):
    """What ``record_call`` did: the call's external id, whether it was recorded (False: already known),
    and the opportunity it opened, if any."""

    campaign_id: UUID
    party_id: UUID
    external_id: str
    outcome: CallOutcome
    recorded: bool
    opportunity_id: UUID | None


class SendWave(_ReadModel):
    """A newsletter wave released by ``send_campaign``: who to send to now (hand this list to the mail tool)
    and who was held back, with the reason (unsubscribed or suppressed since launch)."""

    campaign_id: UUID
    wave: int
    recipients: list[Recipient]
    skipped: list[tuple[UUID, str]]

# ------------------------------------------------------------------ campaign results


class AttributedOpportunity(_ReadModel):
    """An opportunity a campaign's results count: opened from the campaign (``linked``: its
    ``campaign_id``), or credited to it by first-touch or last-touch attribution; as it stood then."""

    opportunity_id: UUID
    party_id: UUID
    opened_at: datetime
    status: OpportunityStatus
    value: Money
    linked: bool
    first_touch: bool
    last_touch: bool


class AttributionFigures(_ReadModel):
    """What one attribution model credits a campaign with: ``opportunities`` opened, ``sales`` (of those,
    won), ``won_value`` per currency, ``sales_rate`` (sales per recipient of the audience) and ``roi``
    ((won value - cost) / cost, in the budget's currency; None when nothing was spent)."""

    opportunities: int
    sales: int
    won_value: dict[str, Decimal]
    sales_rate: Decimal | None
    roi: Decimal | None


class AttributionTotals(_ReadModel):
    """:class:`AttributionFigures` summed over campaigns: ``roi`` per currency of their budgets."""

    opportunities: int
    sales: int
    won_value: dict[str, Decimal]
    sales_rate: Decimal | None
    roi: dict[str, Decimal | None]


class CampaignFigures(_ReadModel):
    """The figures of a campaign's results (or of their sum over campaigns). Unique counts are of
    recipients; rates are fractions rounded to 4 places (0.1234 = 12.34 %), None when their denominator is 0.

    ``recipients`` per channel (the frozen audience) and ``audience`` (distinct parties over the channels);
    ``sent`` (released in a wave); ``delivered`` (sent, with a delivery, open, click, unsubscribe or complaint
    reported); ``opened`` (with an open or a click) and ``opens`` (opens reported); ``clicked`` and
    ``clicks``; ``hard_bounced``; ``soft_bounced`` (soft-bounced and never delivered); ``unsubscribed`` and
    ``complained`` (on the newsletter). Rates: ``open_rate`` and ``click_rate`` (of delivered),
    ``click_to_open_rate`` (clicked / opened), ``hard_bounce_rate`` and ``soft_bounce_rate`` (of sent),
    ``unsubscribe_rate`` and ``complaint_rate`` (of delivered). ``called`` (telemarketing recipients with a
    call), ``calls`` (operator -> outcome -> calls); ``responses`` (recipients who clicked or were
    interested on a call) and ``response_rate`` (responses / audience); ``linked_opportunities`` (opened
    from the campaign).
    """

    recipients: dict[CampaignChannel, int]
    audience: int
    sent: int
    delivered: int
    opened: int
    opens: int
    clicked: int
    clicks: int
    hard_bounced: int
    soft_bounced: int
    unsubscribed: int
    complained: int
    open_rate: Decimal | None
    click_rate: Decimal | None
    click_to_open_rate: Decimal | None
    hard_bounce_rate: Decimal | None
    soft_bounce_rate: Decimal | None
    unsubscribe_rate: Decimal | None
    complaint_rate: Decimal | None
    called: int
    calls: dict[str, dict[str, int]]
    responses: int
    response_rate: Decimal | None
    linked_opportunities: int


class CampaignResults(CampaignFigures):
    """A campaign's results, redemption and return, as it stood at ``at`` as known at ``known_at`` (None:
    now): its :class:`CampaignFigures`, its budget and cost, and what first-touch and last-touch
    attribution (touches within ``attribution_window_days`` before an opportunity opened) credit it with;
    ``opportunities`` lists every opportunity linked or credited."""

    campaign_id: UUID
    name: str
    status: CampaignStatus
    channels: list[CampaignChannel]
    launched_at: datetime | None
    at: datetime | None
    known_at: datetime | None
    attribution_window_days: int
    budget: Money
    cost: Money
    first_touch: AttributionFigures
    last_touch: AttributionFigures
    opportunities: list[AttributedOpportunity]


class CampaignTotals(CampaignFigures):
    """The sum of several campaigns' results: counts added (a party in two campaigns counts in each), rates
    of the sums, ``cost`` per currency."""

    campaigns: int
    cost: dict[str, Decimal]
    first_touch: AttributionTotals
    last_touch: AttributionTotals


class CampaignPeriodResults(_ReadModel):
    """The results of the campaigns launched in [``since``, ``until``), each and in total."""

    since: datetime
    until: datetime
    at: datetime | None
    known_at: datetime | None
    attribution_window_days: int
    campaigns: list[CampaignResults]
    totals: CampaignTotals


# -- hygiene ------------------------------------------------------------------------------------------


class StageAverage(_ReadModel):
    """The average completed stay in an open ``stage`` (of ``group``, an owner or a segment id, in a grouped
    report; None otherwise), in ``days`` (rounded to 2 places), the number of completed stays it rests on
    (``samples``; 0 for the fallback) and its ``basis``: ``measured``, ``stage`` (the group had too few
    stays: the stage's overall average) or ``fallback`` (too few overall: the policy's ``fallback_days``)."""

    stage: Stage
    group: str | None = None
    days: Decimal
    samples: int
    basis: Literal["measured", "stage", "fallback"]


class StaleParty(_ReadModel):
    """A party in an open stage for longer than its threshold: ``days_in_stage`` since ``since`` against
    ``threshold_days`` (the stale factor times the average stay; both rounded to 2 places)."""

    party_id: UUID
    name: str
    stage: Stage
    since: datetime
    days_in_stage: Decimal
    threshold_days: Decimal
    owner: str | None
    group: str | None = None


class BouncedAddress(_ReadModel):
    """An address of a party that may not be sent to: ``channel`` ``email`` (e-mail and newsletter) or
    ``phone`` (phone and SMS), the ``rule`` that suppressed it and ``since`` when, from the recorded
    decision in force (``source`` ``decision``) or the party's own delivery ledger (``ledger``)."""

    party_id: UUID
    channel: Literal["email", "phone"]
    address: str
    rule: str
    since: datetime
    source: Literal["decision", "ledger"]


class IncompleteParty(_ReadModel):
    """A party with expected fields empty (``missing``, by name: ``"emails or phones"``, ``"owner"``,
    ``"vat_number"``, required custom fields and profile traits), on its ``owner``'s to-do list."""

    party_id: UUID
    name: str
    kind: PartyKind
    stage: Stage
    owner: str | None
    missing: list[str]


class HygieneCounts(_ReadModel):
    """One number per section of a hygiene report at ``at`` (``quarter``: the calendar quarter it ends, in
    a trend): parties standing, stale, inactive, bounced addresses (and the parties holding them),
    parties unsubscribed from at least one channel (and per channel), incomplete, set aside, rule breaks and
    duplicate pairs (None where not computed: as of a past moment)."""

    at: datetime
    quarter: str | None = None
    parties: int
    stale: int
    inactive: int
    bounced: int
    bounced_parties: int
    unsubscribed: int
    unsubscribed_by_channel: dict[ConsentChannel, int]
    incomplete: int
    set_aside: int
    rule_breaks: int | None
    duplicates: int | None


class HygieneReport(_ReadModel):
    """The state of the data at ``at`` (as known at ``known_at``) under ``policy`` (design 06 § 2).

    ``stage_averages``: each open stage's average stay; ``group_averages``: per group (``group_by``:
    ``owner``, or ``segment``: segment ids) and stage; ``stale``, ``inactive`` (party ids), ``bounced``,
    ``unsubscribed`` (per channel, party ids), ``incomplete`` (sorted by owner, None first: each rep's to-do
    list; :meth:`incomplete_by_owner`), ``set_aside`` (party ids), ``rule_breaks`` (the current field rules'
    findings) and ``duplicates`` (the detector's pairs) — these two now only (None as of a past moment, said
    in ``notes``); ``counts`` one number per section."""

    at: datetime
    known_at: datetime | None
    policy: dict[str, Any]
    group_by: str | None
    stage_averages: list[StageAverage]
    group_averages: list[StageAverage]
    stale: list[StaleParty]
    inactive: list[UUID]
    bounced: list[BouncedAddress]
    unsubscribed: dict[ConsentChannel, list[UUID]]
    incomplete: list[IncompleteParty]
    set_aside: list[UUID]
    rule_breaks: list[FieldScanFinding] | None
    duplicates: list[DuplicateMatch] | None
    notes: list[str]
    counts: HygieneCounts

    def incomplete_by_owner(self) -> dict[str | None, list[IncompleteParty]]:
        """The incomplete parties per owner (None: unowned)."""
        found: dict[str | None, list[IncompleteParty]] = {}
        for party in self.incomplete:
            found.setdefault(party.owner, []).append(party)
        return found


class CleanUpStep(_ReadModel):
    """One action of a clean-up on one party: ``kind`` (``set_aside``, ``newsletter``, ``suppress_address``,
    ``completion_task``), the ``reason`` recorded with it, its ``detail`` (the address key suppressed, or
    the missing fields a completion task names) and the completion task's id (``task_id``, None otherwise
    and in a dry run)."""

    party_id: UUID
    kind: Literal["set_aside", "newsletter", "suppress_address", "completion_task"]
    reason: str
    detail: list[str]
    task_id: UUID | None = None


class CleanUpRun(_ReadModel):
    """A run of the quarterly clean-up (design 06 § 3), or a dry run's plan (``run_id`` None, ``dry_run``).

    ``at``: the moment the report was read and the actions took effect; ``policy`` and ``hygiene_policy``
    as recorded (name, version, settings); ``counts_before`` the report's counts then, ``counts_after``
    once the actions are taken; ``actions`` in party order; ``reverted``: the parties put back since, each
    with what was actually undone."""

    run_id: UUID | None
    dry_run: bool
    at: datetime
    actor: str
    policy: dict[str, Any]
    hygiene_policy: dict[str, Any]
    counts_before: HygieneCounts
    counts_after: HygieneCounts
    actions: list[CleanUpStep]
    reverted: dict[UUID, list[CleanUpStep]] = {}

    @property
    def parties(self) -> list[UUID]:
        """The parties the run touches, in id order."""
        return sorted({a.party_id for a in self.actions}, key=str)

    def count(self, kind: str) -> int:
        """How many actions of ``kind`` the run takes."""
        return sum(1 for a in self.actions if a.kind == kind)


class WhatIfParty(_ReadModel):
    """A party a clean-up would have set aside (``action`` ``set_aside`` or ``newsletter``) at a past
    quarter's end, in ``stage`` then, and what it did afterwards (followed to its survivor,
    ``survivor_id``, if merged since): ``opened`` or ``clicked`` a campaign, ``replied`` (an interaction),
    opened an ``opportunity``, ``bought`` (won a deal or converted to customer), with the value won (per
    currency)."""

    party_id: UUID
    survivor_id: UUID
    name: str
    stage: Stage
    action: Literal["set_aside", "newsletter"]
    opened: bool
    clicked: bool
    replied: bool
    opportunity: bool
    bought: bool
    won_value: dict[str, Decimal]
    #: whether no earlier quarter of the what-if would have set it aside (had the rule run every quarter,
    #: this is the quarter it would have been dropped)
    first: bool = True


class WhatIfQuarter(_ReadModel):
    """What a clean-up policy would have done at the end of ``quarter`` (``at``) and what it would have cost:
    how many parties it would have ``set_aside`` or moved to the ``newsletter`` list, addresses
    ``suppressed`` and completion ``tasks``; of the parties set aside or moved, how many afterwards (up to
    ``until``) ``opened``, ``clicked``, ``replied``, opened an ``opportunity`` and ``bought``, with the
    ``won_value`` per currency; ``parties``: each of them. Each quarter is read on its own, as if the rule
    had run at that quarter's end only: a party stale at several quarter ends is in each; ``first_time``
    counts those no earlier quarter of the what-if would have set aside (had the rule run every quarter,
    the parties it would have dropped then)."""

    quarter: str
    at: datetime
    until: datetime
    set_aside: int
    newsletter: int
    suppressed: int
    tasks: int
    opened: int
    clicked: int
    replied: int
    opportunity: int
    bought: int
    won_value: dict[str, Decimal]
    first_time: int = 0
    parties: list[WhatIfParty]


class LogHead(_ReadModel):
    """The last link of the stored log's chain: its ``position`` and ``link`` (hex). Keep it outside the
    database and pass it to ``verify_log(anchor=...)`` later (design 07 § 2)."""

    position: int
    link: str


class LogProblem(_ReadModel):
    """One place where the stored log is not as it was written: ``kind`` (``altered``, ``removed``,
    ``unchained``, ``out_of_order``, ``head_mismatch``; ``snapshot``: a stored snapshot that does not say
    what the events up to its version say, at position 0), the ``position`` it was found at, the event's
    ``originator_id`` and ``version`` when the event is there, and what was found (``detail``)."""

    kind: Literal["altered", "removed", "unchained", "out_of_order", "head_mismatch", "snapshot"]
    position: int
    originator_id: UUID | None = None
    version: int | None = None
    detail: str


class LogVerification(_ReadModel):
    """What a walk of the stored log found: ``ok`` when every event is as it was written; ``events`` the
    events read, ``chained`` the chain rows read, ``snapshots`` the snapshots checked by replay; ``head``
    the last link; ``anchor`` the head it was held to (None: none given); ``problems`` each located, in
    position order (snapshot problems first, at position 0)."""

    ok: bool
    events: int
    chained: int
    snapshots: int = 0
    head: LogHead
    anchor: LogHead | None = None
    problems: list[LogProblem]


class AuditRecord(_ReadModel):
    """One event in a data subject's audit export (design 07 § 3): its ``position`` in the log, the
    ``aggregate`` it belongs to (``party``, ``opportunity``, ``task``, ``engagement`` report, ``address``
    decisions) with its id and ``version``, the ``event`` (``Party.Qualified``), which of the exported
    parties it concerns (``party_id``: the party or one merged into it), who (``actor``), when it took
    effect and when it was recorded, the fields it changed (``changes``; none for reports and address
    decisions) and its other fields (``data``)."""

    position: int | None
    aggregate: Literal["party", "opportunity", "task", "engagement", "address"]
    aggregate_id: UUID
    version: int
    event: str
    party_id: UUID
    actor: str
    effective_at: datetime
    recorded_at: datetime
    changes: dict[str, FieldChange]
    data: dict[str, Any]
