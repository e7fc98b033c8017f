"""``CRM``: the one entry point a host application creates, with a use-case method per command."""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal, TypeVar, cast, overload
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import pydantic
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, EventStore, IntegrityError, Recording
from eventsourcing.utils import Environment, get_topic

from crmcore import _bulk
from crmcore import ingest as ingestion
from crmcore._ids import new_uuid7
from crmcore._loading import load_many, positions_of
from crmcore._nearmatch import IdentityIndex, record_of_row
from crmcore.aggregates.campaign import Campaign
from crmcore.aggregates.catalog import CATALOG_ID, FieldCatalog
from crmcore.aggregates.claim import IdentityClaim, claim_id
from crmcore.aggregates.cleanup import CleanUp
from crmcore.aggregates.engagement import (
    EVENT_OF_KIND,
    KIND_OF_EVENT,
    AddressStatus,
    Engagement,
    address_status_id,
)
from crmcore.aggregates.opportunity import Opportunity
from crmcore.aggregates.party import Party
from crmcore.aggregates.scoring import SCORING_MODELS_ID, ScoringModels
from crmcore.aggregates.segment import Segment
from crmcore.aggregates.task import Task
from crmcore.cleanup import EXCLUDING, CleanUpPlan, plan_of, what_if_of
from crmcore.commands import (
    AssignParty,
    AssignTask,
    BulkUpdate,
    CancelTask,
    ChangeFieldRules,
    ChangeOpportunityOwner,
    CompleteTask,
    ConvertParty,
    DefineField,
    DisqualifyLead,
    EngageParty,
    LinkParty,
    LoseOpportunity,
    MoveCloseDate,
    MoveStage,
    OpenOpportunity,
    OpportunityCommand,
    OverrideProbability,
    PartyCommand,
    PlanTask,
    QualifyLead,
    ReassignTask,
    RecordDelivery,
    ReestimateValue,
    RegisterParty,
    RegisterPartyWithFields,
    ReopenOpportunity,
    ReopenParty,
    RescheduleTask,
    RestoreParty,
    RetireField,
    SetFields,
    SetPartyAside,
    SubscribeTo,
    TaskCommand,
    UnsubscribeFrom,
    UpdateIdentity,
    UpdateProfile,
    WinOpportunity,
    invalid_input,
    validate,
)
from crmcore.exceptions import (
    CampaignNotFound,
    CleanUpNotFound,
    ConcurrentUpdateError,
    ContactRefused,
    DuplicateParty,
    EffectiveTimeOutOfOrder,
    FieldNotDefined,
    FieldRuleViolation,
    IllegalTransition,
    InvalidInput,
    OpportunityNotFound,
    PartyMerged,
    PartyNotFound,
    QualificationRefused,
    ScoringModelNotFound,
    SegmentNotFound,
    StoreConfigurationError,
    TaskNotFound,
)
from crmcore.fields import STANDARD_PROFILE, FieldDefinition, FieldKind, FieldSet
from crmcore.hygiene import HygieneFlagReader, counts_of, quarter_ends, report_of, uses_hygiene
from crmcore.identity import EmailAddress, PhoneNumber
from crmcore.matching import Detector, DuplicateCandidate, MatchRecord
from crmcore.models import (
    AddressDecision,
    AddressStatusView,
    Agenda,
    AuditRecord,
    Backtest,
    CallListEntry,
    CallRecord,
    CampaignAudience,
    CampaignPeriodResults,
    CampaignResults,
    CampaignView,
    Change,
    CleanUpRun,
    CleanUpStep,
    ConsentEntry,
    ContactDecision,
    CustomerRanking,
    Deliverability,
    DeliveryEntry,
    DuplicateMatch,
    Exclusion,
    FieldChange,
    FieldScanFinding,
    FieldValueView,
    Forecast,
    HygieneCounts,
    HygieneReport,
    IngestReport,
    LeadAssessment,
    LeadScore,
    LogHead,
    LogVerification,
    MailingExclusion,
    MatchReason,
    MergeField,
    MergePlan,
    OpportunitySummary,
    OpportunityView,
    PartyCounts,
    PartySummary,
    PartyView,
    Qualification,
    Recipient,
    Registration,
    ScoringBacktest,
    SegmentChange,
    SegmentMember,
    SegmentMembers,
    SegmentView,
    SendWave,
    Suppression,
    TaskAnalysis,
    TaskView,
    TimelineEntry,
    WhatIfQuarter,
    WinLoss,
    Workload,
)
from crmcore.policies import (
    calllist,
    consent,
    conversion,
    leads,
    lifecycle,
    merging,
    pipelines,
    ranking,
    scoring,
    suppression,
    tasks,
)
from crmcore.policies.audience import (
    DEFAULT_AUDIENCE,
    Audience,
    AudiencePolicy,
    Candidate,
    address_key,
    select_audience,
)
from crmcore.policies.cleanup import CleanUpAction, CleanUpKind, CleanUpPolicy
from crmcore.policies.consent import BouncePolicy
from crmcore.policies.conversion import PartyFacts
from crmcore.policies.engagement import DEFAULT_ENGAGEMENT, EngagementPolicy, is_inactive
from crmcore.policies.hygiene import HygienePolicy
from crmcore.policies.pipelines import DEFAULT_LOST_REASONS, DEFAULT_PIPELINE, OpportunityStatus, Pipeline
from crmcore.policies.qualification import (
    DEFAULT_QUALIFICATION,
    QUALIFICATION_FIELDS,
    QualificationPolicy,
    Recommendation,
)
from crmcore.policies.scoring import ScoringModel
from crmcore.policies.targeting import DEFAULT_WEIGHTS, ScoreWeights
from crmcore.policies.tasks import DEFAULT_TASK_KINDS, TaskStatus
from crmcore.projections import (
    MailingExclusionsView,
    MemoryViewStorage,
    PartiesView,
    PostgresViewStorage,
    Row,
    SQLiteViewStorage,
    View,
    ViewRunner,
    ViewStorage,
    matches,
    read_events,
)
from crmcore.projections.addresses import (
    REPORT_EVENTS,
    AddressDecisionsView,
    AddressReportsView,
    report_of_record,
    suppressed_by_key,
)
from crmcore.projections.asof import utc_text
from crmcore.projections.backtest import EVERY, backtest_of, period_boundaries
from crmcore.projections.campaign_results import CampaignReader, campaign_as_of, campaign_totals_of
from crmcore.projections.campaigns import CampaignRecipientsView, CampaignsView, PartyEngagementView
from crmcore.projections.facts import PartyFactsView, facts_of, primary_address_keys, survivor_of
from crmcore.projections.hygiene import HygieneReader
from crmcore.projections.identity import IdentityView, MembershipsView
from crmcore.projections.opportunities import OpportunitiesView
from crmcore.projections.parallel import SharedReplay
from crmcore.projections.pipeline import PipelineView, forecast_of
from crmcore.projections.records import StoredRecord
from crmcore.projections.runner import paused_gc
from crmcore.projections.scoring import (
    cutoff_label,
    decisions_in,
    facts_at,
    leads_in,
    scoring_backtest_of,
    training_samples,
)
from crmcore.projections.segments import (
    SegmentMembership,
    SegmentsView,
    memberships_of,
    referred_closure,
    time_relative_segments,
)
from crmcore.projections.storage import PositionMoved
from crmcore.projections.tasks import TasksView, agenda_of, task_analysis_of, workload_of
from crmcore.projections.winloss import DEFAULT_STALE_AFTER, win_loss_of
from crmcore.segments import Context, Criterion, Facts, parse_criteria, referenced_segments
from crmcore.stores import (
    ChainedPOPOApplicationRecorder,
    StoreKind,
    StoreSettings,
    existing_originators,
    parse_store_url,
)
from crmcore.values import (
    CURRENCIES,
    FINAL_CALL_OUTCOMES,
    AddressKind,
    CallOutcome,
    CampaignChannel,
    CampaignStatus,
    ConsentChannel,
    EngagementKind,
    ExclusionReason,
    Money,
    PartyKind,
    Stage,
    utc_now,
)
from crmcore.verification import ChainedRecorder, log_head, verify_chain, verify_snapshots

__all__ = ["CONVERSION_POLICY", "CRM", "ENGAGEMENT_POLICY", "ChangeListener"]

#: The tracked name of the conversion-on-a-won-deal process (its position lives with the views').
CONVERSION_POLICY = "policy:conversion-on-win"
#: The tracked name of the engagement policy process (suppressions and unsubscriptions from reports).
ENGAGEMENT_POLICY = "policy:engagement"
#: The source of the calls ``record_call`` records (their ids derive from it and their external ids).
CALL_SOURCE = "crmcore:calls"
#: Events a policy process reads per page.
POLICY_PAGE = 500
#: Records the engagement policy process reads per page (most need nothing: deliveries and opens).
ENGAGEMENT_PAGE = 10_000
#: What the engagement policy process reads: reports on addresses, unsubscriptions, the party's ledger.
_ENGAGEMENT_TOPICS = [get_topic(Party.DeliveryRecorded), get_topic(Engagement.Unsubscribed),
                      *(get_topic(c) for c in REPORT_EVENTS)]
_DECISION_TOPICS = [get_topic(AddressStatus.Suppressed), get_topic(AddressStatus.Reinstated)]
#: Reports that prove a delivery: the process reads only their address (they never suppress).
_PROOF_KINDS = {get_topic(EVENT_OF_KIND[k]): k.value
                for k in (EngagementKind.DELIVERED, EngagementKind.OPENED, EngagementKind.CLICKED)}
_PROOF_TOPICS = frozenset(_PROOF_KINDS)
#: How many address-status aggregates one save writes.
_DECISIONS_PER_SAVE = 200

log = logging.getLogger("crmcore")

#: Called after each commit with the changes it made, in order.
ChangeListener = Callable[[Sequence[Change]], None]

_STANDARD_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "actor", "effective_at"}
)
P = TypeVar("P", bound=PartyCommand)
A = TypeVar("A", bound=Aggregate)
OC = TypeVar("OC", bound=OpportunityCommand)
TC = TypeVar("TC", bound=TaskCommand)
T = TypeVar("T")

#: How many catalog versions a CRM keeps decoded in memory (versions never change once written).
_CATALOG_CACHE_SIZE = 64


class _Ledger(Application[UUID]):
    """The event-sourced application behind :class:`CRM`: one log for every aggregate."""

    name = "crmcore"
    snapshotting_intervals = {Party: 100, IdentityClaim: 100, FieldCatalog: 50, Opportunity: 100, Task: 100}

    def __init__(self, settings: StoreSettings) -> None:
        self._settings = settings
        super().__init__(env=settings.eventsourcing_env())

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        # Only what crmcore derives from its settings: never os.environ.
        return Environment(name, {"IS_SNAPSHOTTING_ENABLED": "y", **(env or {})})

    def construct_recorder(self) -> ApplicationRecorder:
        with self._schema_lock():
            if self._settings.kind is StoreKind.POSTGRESQL and self._settings.pg_schema:
                from psycopg.sql import SQL, Identifier

                schema = Identifier(self._settings.pg_schema)
                with self._datastore().transaction(commit=True) as c:
                    c.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            recorder: ApplicationRecorder = (
                ChainedPOPOApplicationRecorder() if self._settings.kind is StoreKind.MEMORY
                else super().construct_recorder())  # the memory factory takes no recorder topic
            start_chain = getattr(recorder, "start_chain", None)
            if start_chain is not None:
                start_chain(self._settings.audit_key_bytes())
            return recorder

    def construct_snapshot_store(self) -> EventStore[UUID]:
        with self._schema_lock():
            return super().construct_snapshot_store()

    def _datastore(self) -> Any:
        return self.factory.datastore  # type: ignore[attr-defined]

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """Serialise creating tables and functions between processes opening one PostgreSQL store at once.

        The set-up re-creates its functions every time; unserialised, simultaneous openings fail with
        "tuple concurrently updated".
        """
        if self._settings.kind is not StoreKind.POSTGRESQL:
            yield
            return
        with self._datastore().get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('crmcore_schema_setup'))")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext('crmcore_schema_setup'))")


class CRM:
    """A CRM over one store: commands that record events, reads that answer from them.

    ``store`` is a URL (``memory:``, ``sqlite:///path.db``, ``postgresql://…``) or :class:`StoreSettings`;
    by default ``$CRMCORE_STORE``, else ``sqlite:///crmcore.db``. ``conflict_retries`` is how many times a
    command whose save collided with another writer is re-run on fresh state (commands given an
    ``expected_version`` are never re-run); retries back off for a random few milliseconds, doubling each
    time, so colliding writers spread out. ``replay_workers`` above 1 rebuilds the views folded from stored
    records (the forecast's) and folds them as of past moments (``forecast(at=)``, ``backtest``) on that many
    processes, each over its share of the aggregates (SQLite and PostgreSQL stores; a memory store always
    uses one). ``qualification_policy`` is the policy :meth:`assess_lead` and ``qualify(require_policy=True)``
    use unless given another (default: :data:`~crmcore.policies.qualification.DEFAULT_QUALIFICATION`).
    ``engagement_policy`` says which parties are inactive (:meth:`inactive_parties`; default: inactive after
    365 days without an open or a click). ``hygiene_policy`` holds the hygiene rules (:meth:`hygiene_report`,
    :meth:`hygiene_trend` and the ``hygiene`` segment criteria; default: :class:`HygienePolicy`, with the
    CRM's engagement policy for inactivity). Close it (or use ``with``) when done.
    """

    def __init__(
        self,
        store: str | StoreSettings | None = None,
        *,
        conflict_retries: int = 8,
        views: Iterable[View] = (),
        default_region: str = "IT",
        pipelines: Sequence[Pipeline] = (DEFAULT_PIPELINE,),
        lost_reasons: Sequence[str] = DEFAULT_LOST_REASONS,
        replay_workers: int = 1,
        task_kinds: Sequence[str] = DEFAULT_TASK_KINDS,
        interaction_kinds: Sequence[str] | None = None,
        qualification_policy: QualificationPolicy = DEFAULT_QUALIFICATION,
        engagement_policy: EngagementPolicy = DEFAULT_ENGAGEMENT,
        bounce_policy: BouncePolicy | None = None,
        hygiene_policy: HygienePolicy | None = None,
    ) -> None:
        self.settings = store if isinstance(store, StoreSettings) else parse_store_url(store)
        if isinstance(replay_workers, bool) or not isinstance(replay_workers, int) or replay_workers < 1:
            raise InvalidInput("replay_workers: give a whole number of processes, 1 or more",
                               [{"loc": ("replay_workers",), "msg": "not a positive int", "type": "int"}])
        self.conflict_retries = conflict_retries
        #: The region phone numbers without a country code are read in (``phone_region=`` overrides it).
        self.default_region = default_region
        #: The pipelines opportunities move through (the first is the default), and why deals are lost.
        self.pipelines, self.lost_reasons = _opportunity_settings(pipelines, lost_reasons)
        #: The kinds of task plans may name, and those whose completion is an interaction with the party
        #: (default: call and meeting, when configured).
        self.task_kinds = tasks.task_kinds_of(task_kinds)
        self.interaction_kinds = tasks.interaction_kinds_of(interaction_kinds, self.task_kinds)
        if not isinstance(qualification_policy, QualificationPolicy):
            raise InvalidInput("qualification_policy: give a QualificationPolicy",
                               [{"loc": ("qualification_policy",), "msg": "not a QualificationPolicy",
                                 "type": "is_instance_of"}])
        #: The qualification policy leads are assessed under unless a call names another.
        self.qualification_policy = qualification_policy
        if not isinstance(engagement_policy, EngagementPolicy):
            raise InvalidInput("engagement_policy: give an EngagementPolicy",
                               [{"loc": ("engagement_policy",), "msg": "not an EngagementPolicy",
                                 "type": "is_instance_of"}])
        #: The engagement policy that says which parties are inactive, unless a call names another.
        self.engagement_policy = engagement_policy
        if bounce_policy is not None and not isinstance(bounce_policy, BouncePolicy):
            raise InvalidInput("bounce_policy: give a BouncePolicy",
                               [{"loc": ("bounce_policy",), "msg": "not a BouncePolicy",
                                 "type": "is_instance_of"}])
        #: The bounce policy the engagement policy process applies (every process writing to a store
        #: should be given the same; :meth:`reapply_bounce_policy` changes it).
        self.bounce_policy = bounce_policy or BouncePolicy()
        if hygiene_policy is not None and not isinstance(hygiene_policy, HygienePolicy):
            raise InvalidInput("hygiene_policy: give a HygienePolicy",
                               [{"loc": ("hygiene_policy",), "msg": "not a HygienePolicy",
                                 "type": "is_instance_of"}])
        #: The hygiene rules reports and segment flags apply unless a call names others.
        self.hygiene_policy = hygiene_policy or HygienePolicy()
        self._app = _Ledger(self.settings)
        self._views_storage = self._make_view_storage()
        self._runner = ViewRunner(
            self._app.recorder, self._app.mapper, self._views_storage,
            [PartiesView(), IdentityView(), MembershipsView(), MailingExclusionsView(), OpportunitiesView(),
             PipelineView(), TasksView(), PartyFactsView(), SegmentsView(), CampaignRecipientsView(),
             PartyEngagementView(), CampaignsView(), AddressReportsView(), AddressDecisionsView(),
             *views],
            shared=SharedReplay(self.settings, replay_workers) if replay_workers > 1 else None,
        )
        self._segments = SegmentMembership(self._runner.reader, self._views_storage)
        self._campaign_reader = CampaignReader(self._runner, self._views_storage)
        self._hygiene = HygieneReader(self._runner, self._views_storage, self._required_fields_at)
        self._listeners: list[ChangeListener] = []
        self._listeners_lock = threading.Lock()
        self._identity = IdentityIndex()
        self._catalog_versions: dict[int, FieldSet] = {}
        #: Addresses that may be suppressed (a superset, by key), and the log position up to which decisions
        #: were read into it: the engagement policy process skips deliveries to other addresses.
        self._maybe_suppressed: set[str] | None = None
        self._decisions_seen = 0
        self._suppressed_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle of the object

    def close(self) -> None:
        """Release the store's connections."""
        self._app.close()

    def __enter__(self) -> CRM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make_view_storage(self) -> ViewStorage:
        datastore = getattr(self._app.factory, "datastore", None)
        if self.settings.kind is StoreKind.SQLITE:
            return SQLiteViewStorage(datastore)
        if self.settings.kind is StoreKind.POSTGRESQL:
            return PostgresViewStorage(datastore)
        return MemoryViewStorage()

    # ------------------------------------------------------------------ commands

    def register_party(self, **fields: Any) -> UUID:
        """Register a person or an organization; returns its id. See :class:`RegisterParty`.

        An e-mail address, phone number or VAT number another party already holds is refused with
        :class:`DuplicateParty` naming that party; nothing is stored. ``fields={...}`` sets custom field
        values (see :meth:`set_fields`); a registration missing a required custom field, or with profile
        traits the field catalog refuses, is refused.
        """
        cmd = validate(RegisterPartyWithFields, self._with_region(fields))
        return self._register(cmd, attach=False).party_id

    def _register(self, cmd: RegisterPartyWithFields, *, attach: bool) -> _Registered:
        identity = cmd.stored_identity()
        catalog = self._current_fields()
        values = catalog.section("custom").validate(cmd.fields)
        profile = self._checked_profile(catalog, cmd.profile, partial=False)
        for attempt in range(self.conflict_retries + 1):
            party = Party.register(
                kind=cmd.kind, stage=cmd.stage, name=cmd.display_name, actor=cmd.actor,
                effective_at=cmd.effective_at, organization_name=cmd.organization_name,
                contact_name=cmd.contact_name, channel=cmd.channel, owner=cmd.owner,
                profile=profile, identity=identity,
            )
            if values:  # recorded as the party's second event, in the same atomic save
                party.set_fields(values=values, catalog_version=catalog.version, actor=cmd.actor,
                                 effective_at=party.last_effective_at)
            try:
                claims = self._claims_for(
                    party, set(), party.identity_keys(), cmd.actor, party.last_effective_at
                )
            except DuplicateParty as duplicate:
                if not attach:
                    raise
                return _Registered(self._attach(duplicate.existing_id, cmd), attached=True)
            try:
                self._save(party, *claims)
            except ConcurrentUpdateError:
                if attempt == self.conflict_retries:
                    raise
                _back_off(attempt)
                continue
            return _Registered(party.id, attached=False)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attach(self, existing_id: UUID, cmd: RegisterParty) -> UUID:
        """Add the registration's contact points that nobody holds yet to the party already holding one."""
        def add(party: Party) -> list[Any]:
            mine = party.merge_fields()
            wanted = cmd.stored_identity()
            changes: dict[str, Any] = {}
            for field in ("emails", "phones", "web_links"):
                merged = list(mine[field] or [])
                known = {v.lower() for v in merged}
                for value in wanted.get(field, []):
                    if value.lower() not in known and not self._held_by_other(field, value, party.id):
                        merged.append(value)
                        known.add(value.lower())
                if merged != list(mine[field] or []):
                    changes[field] = merged
            if changes:
                return self._change_identity(party, changes, cmd.actor, None)
            return []

        self._update_party(existing_id, None, add)
        return existing_id

    def _held_by_other(self, field: str, value: str, party_id: UUID) -> bool:
        prefix = {"emails": "email", "phones": "phone"}.get(field)
        if prefix is None:
            return False
        claim = self._claim(f"{prefix}:{value.lower() if prefix == 'email' else value}")
        return claim is not None and claim.holder not in (None, party_id)

    def engage(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Record a suspect's first interaction (``channel=``): it becomes a lead."""
        return self._run(EngageParty, party_id, fields, lambda p, c: p.engage(
            channel=c.channel, actor=c.actor, effective_at=c.effective_at))

    def qualify(
        self,
        party_id: UUID | str,
        *,
        require_policy: bool = False,
        policy: QualificationPolicy | None = None,
        **fields: Any,
    ) -> Qualification:
        """Qualify a lead into a prospect, a target, or both linked (see docs/design/01).

        With ``require_policy=True`` the lead is first assessed (on the state loaded for the command) under
        ``policy`` (default: the CRM's ``qualification_policy``) and the qualification refused with
        :class:`QualificationRefused` unless the policy recommends qualifying; nothing is stored then. When
        a policy is used (required, or just given), the ``Qualified`` event records its name, version and
        the assessment (score, recommendation, failed rules).
        """
        cmd = validate(QualifyLead, {**fields, "party_id": party_id})
        chosen = self._policy_for(policy, _flag(require_policy, "require_policy"))
        result: dict[str, Party | None] = {}

        def qualify(lead: Party) -> list[Party]:
            record = None
            if chosen is not None:
                if lead.merged_into is not None:
                    raise PartyMerged(lead.id, lead.merged_into)
                lifecycle.check_can_qualify(lead.id, lead.stage)
                assessment = chosen.assess(self._lead_facts(lead), Context(now=cmd.effective_at or utc_now()))
                if require_policy and assessment.recommendation is not Recommendation.QUALIFY:
                    raise QualificationRefused(
                        lead.id, recommendation=assessment.recommendation.value, score=assessment.score,
                        failed=assessment.failed, policy_name=assessment.policy_name,
                        policy_version=assessment.policy_version,
                    )
                record = leads.policy_record(assessment)
            link_to = self._load(cmd.link_to) if cmd.link_to is not None else None
            counterpart = lead.qualify(actor=cmd.actor, effective_at=cmd.effective_at, link_to=link_to,
                                       policy=record)
            result["counterpart"] = counterpart
            return [counterpart] if counterpart is not None else []

        lead = self._update(cmd, qualify)
        counterpart = result.get("counterpart")
        parties = [lead, *([counterpart] if counterpart else [])]
        person = next((p for p in parties if p.kind is PartyKind.PERSON), None)
        organization = next((p for p in parties if p.kind is PartyKind.ORGANIZATION), None)
        target_id = organization.id if organization else (cmd.link_to if cmd.link_to else None)
        return Qualification(
            lead_id=lead.id, stage=lead.stage,
            prospect_id=person.id if person else None, target_id=target_id,
        )

    def disqualify(
        self, party_id: UUID | str, *, policy: QualificationPolicy | None = None, **fields: Any,
    ) -> PartyView:
        """Disqualify a lead, prospect or target (``reason=`` required); it is kept.

        With ``policy``, the party is assessed under it (on the state loaded for the command) and the
        ``Disqualified`` event records the policy's name, version and the assessment, whatever it recommends.
        """
        chosen = self._policy_for(policy, False)

        def disqualify(party: Party, cmd: DisqualifyLead) -> None:
            record = None
            if chosen is not None and party.merged_into is None:
                lifecycle.check_can_disqualify(party.id, party.stage)
                now = cmd.effective_at or utc_now()
                record = leads.policy_record(chosen.assess(self._lead_facts(party), Context(now=now)))
            party.disqualify(reason=cmd.reason, actor=cmd.actor, effective_at=cmd.effective_at, policy=record)

        return self._run(DisqualifyLead, party_id, fields, disqualify)

    def reopen(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Re-open a disqualified party: it becomes a lead again."""
        return self._run(ReopenParty, party_id, fields, lambda p, c: p.reopen(
            reason=c.reason, actor=c.actor, effective_at=c.effective_at))

    def convert(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Record a purchase (optional ``reference=``): a prospect or target becomes a customer."""
        return self._run(ConvertParty, party_id, fields, lambda p, c: p.convert(
            reference=c.reference, actor=c.actor, effective_at=c.effective_at))

    def assign(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Assign the party to a sales rep (``owner=``; ``None`` unassigns)."""
        return self._run(AssignParty, party_id, fields, lambda p, c: p.assign(
            owner=c.owner, actor=c.actor, effective_at=c.effective_at))

    def link(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Make a person (``party_id``) belong to an organization (``organization_id=``)."""
        def link(person: Party, cmd: LinkParty) -> None:
            person.link(self._load(cmd.organization_id), actor=cmd.actor, effective_at=cmd.effective_at)

        return self._run(LinkParty, party_id, fields, link)

    def update_profile(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Set segmentation traits (``changes={"interest": "cloud", "old": None}``).

        Once the field catalog defines profile traits, values are normalised and checked against them and
        traits it does not define are refused; until then traits are free-form.
        """
        return self._run(UpdateProfile, party_id, fields, lambda p, c: p.update_profile(
            changes=self._checked_profile(self._current_fields(), c.changes, partial=True),
            actor=c.actor, effective_at=c.effective_at))

    def update_identity(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Replace identity fields (``emails=[...]``, ``phones=``, ``address=``, ``given_name=``, ``name=``…).

        Each field given replaces the stored one; ``None`` clears it. See :class:`UpdateIdentity`. An
        identifier another party holds raises :class:`DuplicateParty`; nothing is stored.
        """
        cmd = validate(UpdateIdentity, self._with_region({**fields, "party_id": party_id}))
        changes = cmd.changes()
        return PartyView.model_validate(self._update_party(
            cmd.party_id, cmd.expected_version,
            lambda p: self._change_identity(p, changes, cmd.actor, cmd.effective_at),
        ).state())

    def add_email(
        self, party_id: UUID | str, address: str, *, primary: bool = False, **fields: Any
    ) -> PartyView:
        """Add an e-mail address (first if ``primary``); one it already has moves only if ``primary``."""
        return self._add_contact(party_id, "emails", address, primary, fields)

    def add_phone(
        self, party_id: UUID | str, number: str, *, primary: bool = False, **fields: Any
    ) -> PartyView:
        """Add a phone number (first if ``primary``), read in the default region unless international."""
        return self._add_contact(party_id, "phones", number, primary, fields)

    def remove_email(self, party_id: UUID | str, address: str, **fields: Any) -> PartyView:
        """Remove an e-mail address (the next one becomes primary); its claim is released."""
        return self._remove_contact(party_id, "emails", address, fields)

    def remove_phone(self, party_id: UUID | str, number: str, **fields: Any) -> PartyView:
        """Remove a phone number (the next one becomes primary); its claim is released."""
        return self._remove_contact(party_id, "phones", number, fields)

    def _add_contact(
        self, party_id: UUID | str, field: str, value: str, primary: bool, fields: Mapping[str, Any]
    ) -> PartyView:
        given = {**fields, "party_id": party_id, field: [value]}
        checked = validate(UpdateIdentity, self._with_region(given))
        new = checked.changes()[field][0]

        def add(party: Party) -> list[Any]:
            current = list(party.merge_fields()[field] or [])
            without = [v for v in current if v.lower() != new.lower()]
            if primary:
                wanted = [new, *without]
            else:
                wanted = current if len(without) < len(current) else [*current, new]
            return self._change_identity(party, {field: wanted}, checked.actor, checked.effective_at)

        return PartyView.model_validate(
            self._update_party(checked.party_id, checked.expected_version, add).state()
        )

    def _remove_contact(
        self, party_id: UUID | str, field: str, value: str, fields: Mapping[str, Any]
    ) -> PartyView:
        given = {**fields, "party_id": party_id, field: [value]}
        checked = validate(UpdateIdentity, self._with_region(given))
        gone = checked.changes()[field][0].lower()

        def remove(party: Party) -> list[Any]:
            current = list(party.merge_fields()[field] or [])
            kept = [v for v in current if v.lower() != gone]
            if len(kept) == len(current):
                raise InvalidInput(
                    f"{field}: party {party.id} has no {value!r}",
                    [{"loc": (field,), "msg": "not held by the party", "type": "not_found"}],
                )
            return self._change_identity(party, {field: kept}, checked.actor, checked.effective_at)

        return PartyView.model_validate(
            self._update_party(checked.party_id, checked.expected_version, remove).state()
        )

    def _change_identity(
        self, party: Party, changes: dict[str, Any], actor: str, effective_at: datetime | None
    ) -> list[Any]:
        before = party.identity_keys()
        if not party.update_identity(changes=changes, actor=actor, effective_at=effective_at):
            return []
        return self._claims_for(party, before, party.identity_keys(), actor, party.last_effective_at)

    def _with_region(self, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        if isinstance(fields, Mapping) and "phones" in fields:
            return {"phone_region": self.default_region, **fields}
        return fields

    # ------------------------------------------------------------------ duplicates: claims, merge, unmerge

    def resolve(self, party_id: UUID | str) -> UUID:
        """The party that now stands for ``party_id``: itself, or the survivor it was merged into."""
        current = _uuid(party_id)
        for _ in range(1000):
            party = self._load(current)
            if party.merged_into is None:
                return current
            current = party.merged_into
        raise AssertionError("a merge chain without end")  # pragma: no cover

    def holder_of(self, *, email: str | None = None, phone: str | None = None,
                  vat_number: str | None = None) -> UUID | None:
        """The party holding a normalised e-mail address, phone number or VAT number (None if nobody)."""
        given = {k: v for k, v in (("emails", email), ("phones", phone), ("vat_number", vat_number)) if v}
        if len(given) != 1:
            raise InvalidInput("give exactly one of email, phone, vat_number")
        field, value = next(iter(given.items()))
        checked = validate(UpdateIdentity, self._with_region({
            "party_id": UUID(int=0), "actor": "lookup", field: [value] if field != "vat_number" else value,
        }))
        stored = checked.changes()[field]
        from crmcore.aggregates.party import identity_keys_of

        (key,) = identity_keys_of({field: stored})
        claim = self._claim(key)
        return claim.holder if claim is not None else None

    def merge(
        self,
        survivor_id: UUID | str,
        loser_id: UUID | str,
        *,
        actor: str,
        reason: str,
        choose: Mapping[str, str] | None = None,
        effective_at: datetime | None = None,
        dry_run: bool = False,
    ) -> MergePlan:
        """Merge the duplicate ``loser_id`` into ``survivor_id``, field by field.

        Each field keeps the survivor's value unless ``choose`` says ``"loser"`` (or the survivor has
        none); lists (e-mail addresses, phones, web links) and profile traits are joined unless told
        ``"survivor"`` or ``"loser"``; the stage is the one further along. ``dry_run`` returns the plan
        and stores nothing. The loser's stream ends with ``MergedInto`` and stays readable; its
        identifiers pass to the survivor. Undo with :meth:`unmerge`.
        """
        from crmcore.commands import MergeParties

        cmd = validate(MergeParties, {
            "survivor_id": survivor_id, "loser_id": loser_id, "actor": actor, "reason": reason,
            "choose": dict(choose or {}), "effective_at": effective_at,
        })
        for attempt in range(self.conflict_retries + 1):
            survivor, loser = self._load(cmd.survivor_id), self._load(cmd.loser_id)
            lifecycle.check_can_merge(survivor.id, survivor.kind, survivor.merged_into,
                                      loser.id, loser.kind, loser.merged_into)
            planned = merging.plan_merge(survivor.merge_fields(), loser.merge_fields(), cmd.choose)
            plan = MergePlan(
                survivor_id=survivor.id, loser_id=loser.id, applied=not dry_run,
                fields=[MergeField(field=f, survivor=a, loser=b, result=r, source=src)
                        for f, a, b, r, src in planned],
            )
            if dry_run:
                return plan
            values = merging.recorded_changes(
                planned, loser_versions=loser.custom_field_versions, loser_consents=loser.consents,
                loser_deliveries=loser.deliveries,
            )
            sources: dict[str, str] = {f: src for f, _, _, _, src in planned if src != "survivor"}
            at = loser.merge_into(survivor, reason=cmd.reason, actor=cmd.actor, effective_at=cmd.effective_at)
            survivor.absorb(loser.id, values=values, sources=sources, reason=cmd.reason, actor=cmd.actor,
                            effective_at=at)
            claims = []
            for key in sorted(loser.identity_keys() | survivor.identity_keys()):
                claim = self._claim(key)
                if claim is None:
                    claim = IdentityClaim(key=key, holder=survivor.id, actor=cmd.actor, effective_at=at)
                    claims.append(claim)
                elif claim.take(survivor.id, actor=cmd.actor, effective_at=at):
                    claims.append(claim)
            try:
                self._save(survivor, loser, *claims)
            except ConcurrentUpdateError:
                if attempt == self.conflict_retries:
                    raise
                _back_off(attempt)
                continue
            return plan
        raise AssertionError("unreachable")  # pragma: no cover

    def unmerge(
        self, loser_id: UUID | str, *, actor: str, reason: str, effective_at: datetime | None = None,
    ) -> tuple[PartyView, PartyView]:
        """Undo the merge of ``loser_id``: both parties come back as if it never happened, plus what was
        recorded since. Returns (loser, survivor) as they now stand.
        """
        from crmcore.commands import UnmergeParty

        cmd = validate(UnmergeParty, {"loser_id": loser_id, "actor": actor, "reason": reason,
                                      "effective_at": effective_at})
        for attempt in range(self.conflict_retries + 1):
            loser = self._load(cmd.loser_id)
            if loser.merged_into is None:
                raise IllegalTransition(f"party {loser.id} is not merged", party_id=loser.id,
                                        stage=loser.stage)
            survivor = self._load(loser.merged_into)
            if survivor.merged_into is not None:
                raise IllegalTransition(
                    f"party {survivor.id} was itself merged into {survivor.merged_into}: unmerge it first",
                    party_id=survivor.id, stage="merged",
                )
            restored_loser = _replay_without(self._events_of(loser.id), undo=survivor.id)
            restored_survivor = _replay_without(self._events_of(survivor.id), undo=loser.id)
            at = _aware(cmd.effective_at, "effective_at") if cmd.effective_at else None
            moment = max(loser.last_effective_at, survivor.last_effective_at)
            when = at or max(moment, _now())
            held_before = survivor.identity_keys()
            survivor.restore_unmerged(loser.id, restored=restored_survivor.merge_state(), reason=cmd.reason,
                                      actor=cmd.actor, effective_at=when)
            loser.restore_unmerged(survivor.id, restored=restored_loser.merge_state(), reason=cmd.reason,
                                   actor=cmd.actor, effective_at=when)
            claims = []
            survivor_keys, loser_keys = survivor.identity_keys(), loser.identity_keys()
            for key in sorted(held_before | survivor_keys | loser_keys):
                holder = survivor.id if key in survivor_keys else loser.id if key in loser_keys else None
                claim = self._claim(key)
                if claim is None and holder is not None:
                    claims.append(IdentityClaim(key=key, holder=holder, actor=cmd.actor, effective_at=when))
                elif claim is not None and holder is not None:
                    if claim.take(holder, actor=cmd.actor, effective_at=when):
                        claims.append(claim)
                elif claim is not None and claim.release(actor=cmd.actor, effective_at=when):
                    claims.append(claim)
            try:
                self._save(survivor, loser, *claims)
            except ConcurrentUpdateError:
                if attempt == self.conflict_retries:
                    raise
                _back_off(attempt)
                continue
            return PartyView.model_validate(loser.state()), PartyView.model_validate(survivor.state())
        raise AssertionError("unreachable")  # pragma: no cover

    def enter_party(self, *, attach: bool = False, **fields: Any) -> Registration:
        """Register a party the careful way: exact duplicates refused (or ``attach``-ed), near ones reported.

        An e-mail address, phone number or VAT number another party holds raises :class:`DuplicateParty`
        naming it, or with ``attach=True`` registers nothing and adds the new contact points nobody holds
        to that party. Parties that look alike without sharing an identifier (a similar name at the same
        company, the same name and birth date…) come back as ``near_matches`` with scores and reasons;
        the party is registered all the same.
        """
        cmd = validate(RegisterPartyWithFields, self._with_region(fields))
        near = self._near_matches(_record_of(cmd))
        registered = self._register(cmd, attach=attach)
        matches = [m for m in near if m.other_id != registered.party_id]
        return Registration(party_id=registered.party_id, attached=registered.attached,
                            near_matches=[m.model_copy(update={"party_id": registered.party_id})
                                          for m in matches])

    def duplicates(self, *, threshold: float | None = None) -> list[DuplicateMatch]:
        """Pairs of stored parties that probably are the same, best first, with the reasons.

        Uses every identity field (names, company, e-mails, phones, birth date, address, VAT, web links);
        see docs/duplicates.md for the engine, its blocking and its measured speed and accuracy.
        """
        records = self._identity_records()
        detector = _detector(threshold).fitted(records)
        return [_match(c) for c in detector.find(records)]

    def check_import(
        self, rows: Iterable[Mapping[str, Any]], *, threshold: float | None = None, region: str | None = None,
    ) -> list[DuplicateMatch]:
        """Before importing ``rows`` (raw registration-like mappings): the probable duplicates among them
        and against stored parties. Rows are named ``row <index>``; bad values are read leniently.
        """
        new = [
            MatchRecord.from_raw(f"row {i}", str(row.get("kind", "")), region=region or self.default_region,
                                 **{k: v for k, v in row.items() if k not in ("kind", "id", "region")})
            for i, row in enumerate(rows)
        ]
        existing = self._identity_records()
        detector = _detector(threshold).fitted([*existing, *new])
        return [_match(c) for c in detector.find_between(new, existing)]

    def _near_matches(self, record: MatchRecord) -> list[DuplicateMatch]:
        index = self._identity_index()
        existing = index.candidates(record)
        if not existing:
            return []
        detector = Detector()
        return [_match(c, record.id) for c in detector.candidates_for(record, existing)]

    def _identity_records(self) -> list[MatchRecord]:
        return self._identity_index().records()

    def _identity_index(self) -> IdentityIndex:
        """The in-process mirror of the ``party_identity`` view, caught up with the log."""
        storage, name = self._views_storage, IdentityView.name

        def load() -> tuple[int, list[Row]]:
            self._runner.catch_up(name)
            position = storage.position(name, IdentityView.version)
            return position, storage.rows(name, {})

        def events_after(position: int) -> Iterator[tuple[int, DomainEventProtocol[Any]]]:
            return read_events(self._app.recorder, self._app.mapper, after=position,
                               topics=IdentityView.topics())

        self._identity.refresh(load, events_after)
        return self._identity

    def merged_parties(self, party_id: UUID | str) -> list[UUID]:
        """Every party merged (directly or through others) into ``party_id``, oldest merge first."""
        found: list[UUID] = []
        pending = [_uuid(party_id)]
        while pending:
            for merged in self._load(pending.pop(0)).merged_from:
                found.append(merged)
                pending.append(merged)
        return found

    def members(self, organization_id: UUID | str) -> list[PartySummary]:
        """The persons belonging to an organization or to any organization merged into it.

        A person merged into another counts through its survivor, so no link is lost by merging.
        """
        organization = self.resolve(organization_id)
        ids = [str(i) for i in (organization, *self.merged_parties(organization))]
        self._runner.catch_up(MembershipsView.name)
        persons = {
            self.resolve(row["id"])
            for i in ids
            for row in self._views_storage.rows(MembershipsView.name, {"organization_id": i})
        }
        self._runner.catch_up(PartiesView.name)
        rows = self._views_storage.load(PartiesView.name, [str(p) for p in persons])
        return [PartySummary.model_validate(rows[k]) for k in sorted(rows)]

    def _existing_claims(self, keys: Sequence[str]) -> dict[str, IdentityClaim]:
        """The claims that exist on ``keys``: one batched existence query, then only those are loaded."""
        by_id = {claim_id(key): key for key in keys}
        stored = existing_originators(self._app.recorder, list(by_id))
        found = {by_id[i]: self._claim(by_id[i]) for i in stored}
        return {key: claim for key, claim in found.items() if claim is not None}

    def _claim(self, key: str) -> IdentityClaim | None:
        try:
            claim: Any = self._app.repository.get(claim_id(key))
        except AggregateNotFoundError:
            return None
        return cast(IdentityClaim, claim)

    def _claims_for(
        self, party: Party, before: set[str], after: set[str], actor: str, at: datetime
    ) -> list[IdentityClaim]:
        """Claims to save with ``party``: new identifiers taken, dropped ones released.

        Raises :class:`DuplicateParty` if another party holds one of the new identifiers.
        """
        changed: list[IdentityClaim] = []
        for key in sorted(after - before):
            claim = self._claim(key)
            if claim is None:
                changed.append(IdentityClaim(key=key, holder=party.id, actor=actor, effective_at=at))
            elif claim.holder is not None and claim.holder != party.id:
                raise DuplicateParty(claim.holder, claim.field, key.split(":", 1)[1])
            elif claim.take(party.id, actor=actor, effective_at=at):
                changed.append(claim)
        for key in sorted(before - after):
            claim = self._claim(key)
            if claim is not None and claim.holder == party.id and claim.release(actor=actor, effective_at=at):
                changed.append(claim)
        return changed

    def _update_party(
        self, party_id: UUID, expected_version: int | None, action: Callable[[Party], list[Any]]
    ) -> Party:
        """Load, act, save the party with the other aggregates the action returns; re-run on conflicts."""
        return self._load_act_save(lambda: self._load(party_id), expected_version, action)

    def _load_act_save(
        self, load: Callable[[], A], expected_version: int | None, action: Callable[[A], list[Any]]
    ) -> A:
        """Load an aggregate, act on it, save it with the aggregates the action returns, in one atomic save.

        On a version conflict the whole is re-run on fresh state (up to ``conflict_retries`` times, backing
        off), unless the caller expected a version: then :class:`ConcurrentUpdateError` is raised at once.
        """
        retries = 0 if expected_version is not None else self.conflict_retries
        for attempt in range(retries + 1):
            aggregate = load()
            if expected_version is not None and aggregate.version != expected_version:
                party_id = aggregate.id if isinstance(aggregate, Party) else None
                raise ConcurrentUpdateError(
                    party_id, f"{_described(aggregate)}expected version {expected_version}, "
                    f"found {aggregate.version}"
                )
            others = action(aggregate)
            try:
                self._save(aggregate, *others)
            except ConcurrentUpdateError:
                if attempt == retries:
                    raise
                _back_off(attempt)
                continue
            return aggregate
        raise AssertionError("unreachable")  # pragma: no cover

    def _act_on(
        self, load: Callable[[], A], actor: str, effective_at: datetime | None, expected_version: int | None,
        action: Callable[[A, str, datetime | None], Any],
    ) -> A:
        """Check the actor, effective time and expected version, then load, ``action(aggregate, actor, at)``
        and save (re-run on a conflict, as :meth:`_load_act_save`)."""
        who = _name(actor, "actor")
        at = _aware(effective_at, "effective_at") if effective_at is not None else None
        if expected_version is not None and (isinstance(expected_version, bool)
                                             or not isinstance(expected_version, int)):
            raise InvalidInput("expected_version: give a whole number",
                               [{"loc": ("expected_version",), "msg": "not an int", "type": "int_type"}])

        def act(aggregate: A) -> list[Any]:
            action(aggregate, who, at)
            return []

        return self._load_act_save(load, expected_version, act)

    def set_aside(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Set a party aside (``reason=`` required), keeping its stage."""
        return self._run(SetPartyAside, party_id, fields, lambda p, c: p.put_aside(
            reason=c.reason, actor=c.actor, effective_at=c.effective_at))

    def restore(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Bring a set-aside party back."""
        return self._run(RestoreParty, party_id, fields, lambda p, c: p.restore(
            reason=c.reason, actor=c.actor, effective_at=c.effective_at))

    # ------------------------------------------------------------------ consent and deliverability

    def subscribe_to(self, party_id: UUID | str, **fields: Any) -> ConsentEntry | None:
        """Record a subscription: ``channel=``, ``source=``, ``lawful_basis=`` (optional ``evidence=``,
        ``external_id=``, ``effective_at=``). See :class:`SubscribeTo`.

        ``effective_at`` may precede the party's previous event (late reports). Returns the new ledger
        entry, or None when an entry with the same ``external_id`` and channel was already recorded.
        """
        cmd = validate(SubscribeTo, {**fields, "party_id": self.resolve(party_id)})

        def subscribe(party: Party) -> list[dict[str, Any]]:
            recorded = party.subscribe_to(
                channel=cmd.channel, source=cmd.source, lawful_basis=cmd.lawful_basis, actor=cmd.actor,
                evidence=cmd.evidence, external_id=cmd.external_id, effective_at=cmd.effective_at,
            )
            return party.consents[-1:] if recorded else []

        entries = self._record_entries(cmd, subscribe)
        return ConsentEntry.model_validate(entries[0]) if entries else None

    def unsubscribe_from(self, party_id: UUID | str, **fields: Any) -> list[ConsentEntry]:
        """Record an unsubscription from ``channel=``, or ``channels=[...]``, or ``channels="all"``.

        Also ``source=`` (optional ``evidence=``, ``external_id=``, ``effective_at=``); all channels are
        recorded in one atomic save. Returns the new entries (channels already recorded under the same
        ``external_id`` are skipped).
        """
        cmd = validate(UnsubscribeFrom, {**fields, "party_id": self.resolve(party_id)})

        def unsubscribe(party: Party) -> list[dict[str, Any]]:
            before = len(party.consents)
            for channel in cmd.chosen():
                party.unsubscribe_from(
                    channel=channel, source=cmd.source, actor=cmd.actor, evidence=cmd.evidence,
                    external_id=cmd.external_id, effective_at=cmd.effective_at,
                )
            return party.consents[before:]

        return [ConsentEntry.model_validate(e) for e in self._record_entries(cmd, unsubscribe)]

    def record_delivery(
        self, party_id: UUID | str, *, policy: BouncePolicy | None = None, **fields: Any,
    ) -> DeliveryEntry | None:
        """Record what happened to a message sent to ``address=``: ``outcome=`` and/or ``raw_code=``.

        A raw code alone is classified by ``policy`` (default :class:`BouncePolicy`); both must agree
        when the policy reads the code. Returns the new entry, or None for an already known
        ``external_id``. See :class:`RecordDelivery`. The engagement policy process then runs (see
        :meth:`run_policies`): a bounce may suppress the address, a delivery reinstate it.
        """
        cmd = validate(RecordDelivery, {**fields, "party_id": self.resolve(party_id)})

        def record(party: Party) -> list[dict[str, Any]]:
            recorded = party.record_delivery(
                address=cmd.address, actor=cmd.actor, outcome=cmd.outcome, raw_code=cmd.raw_code,
                external_id=cmd.external_id, effective_at=cmd.effective_at, policy=policy,
                region=cmd.region,
            )
            return party.deliveries[-1:] if recorded else []

        entries = self._record_entries(cmd, record)
        if not entries:
            return None
        self.run_policies()
        return DeliveryEntry.model_validate(entries[0])

    def consent_history(self, party_id: UUID | str) -> list[ConsentEntry]:
        """The party's consent ledger in effective-time order (ties in recording order)."""
        party = self._load(_uuid(party_id))
        return [ConsentEntry.model_validate(e) for e in sorted(party.consents, key=consent.entry_order)]

    def delivery_history(self, party_id: UUID | str) -> list[DeliveryEntry]:
        """The party's delivery ledger in effective-time order (ties in recording order)."""
        party = self._load(_uuid(party_id))
        return [DeliveryEntry.model_validate(e) for e in sorted(party.deliveries, key=consent.entry_order)]

    def may_contact(
        self,
        party_id: UUID | str,
        channel: ConsentChannel | str,
        at: datetime | None = None,
        *,
        address: str | None = None,
        policy: BouncePolicy | None = None,
    ) -> ContactDecision:
        """Could the party be contacted on ``channel`` at effective time ``at`` (default now)?

        Answered from the party's history as now known, entries recorded late included. ``address``
        defaults to the party's primary address for the channel (e-mail for email and newsletter, phone
        for phone and sms); with none, the answer is no, and says why. An address whose recorded
        decision in force at ``at`` is "suppressed" (``AddressStatus``: hard bounce, soft bounces,
        complaint) is refused; with ``policy``, the answer is what that policy decides from every report on
        the address (the delivery ledgers and the campaigns' reports) - nothing is recorded.
        """
        wanted = _consent_channel(channel)
        moment = _aware(at, "at") if at is not None else utc_now()
        party = self._load(_uuid(party_id))
        kind = consent.address_kind_of(wanted)
        if address is not None:
            reach: EmailAddress | PhoneNumber | None = _read_address(address, kind)
        else:
            reach = _primary_address(party, kind)
        state = self._address_state(party, reach.key, moment, policy) if reach is not None else None
        return consent.may_contact(party.consents, party.deliveries, wanted, moment, address=reach,
                                   policy=policy, deliverability=state)

    def deliverability(
        self, party_id: UUID | str, *, at: datetime | None = None, policy: BouncePolicy | None = None,
    ) -> list[Deliverability]:
        """Each of the party's addresses with its deliverability at ``at`` (default: every report).

        As recorded (the decision in force then; the counts under :attr:`bounce_policy`), or, with
        ``policy``, as that policy reads every report on the address again (raw codes included): pass
        another policy to see what it would decide. Addresses are those with delivery reports and those
        the party carries, ordered by key.
        """
        moment = _aware(at, "at") if at is not None else None
        party = self._load(_uuid(party_id))
        keys = {e["address_key"] for e in party.deliveries}
        for kind in AddressKind:
            keys.update(a.key for a in _addresses(party, kind))
        rows = self._address_rows(keys)
        return [self._address_state(party, key, moment, policy, rows.get(key)) for key in sorted(keys)]

    def _address_state(
        self, party: Party, key: str, at: datetime | None, policy: BouncePolicy | None,
        row: Row | Literal[False] | None = False,
    ) -> Deliverability:
        """The deliverability of the address ``key`` at ``at``: recorded, or under ``policy`` (see
        :meth:`may_contact`); ``row`` is its ``address_reports`` row if already read (False: read it)."""
        if row is False:
            row = self._address_rows([key]).get(key)
        relevant = [e for e in party.deliveries if e["address_key"] == key
                    and (at is None or e["effective_at"] <= at)]
        last = max(relevant, key=consent.entry_order) if relevant else None
        if policy is not None:
            reports = suppression.reports_of_row(row or {})
            return consent.deliverability_of(reports, key, at, policy, last=last)
        return suppression.recorded_deliverability(row, key, at, self.bounce_policy, last=last)

    def mailing_exclusions(self) -> list[MailingExclusion]:
        """Parties unsubscribed from e-mail or the newsletter, or with a bounced e-mail address, by id.

        ``bounced`` lists the keys of the party's undeliverable e-mail addresses: its primary e-mail address
        when the recorded suppression decision in force about it suppresses it, and every address its own
        delivery ledger finds undeliverable under the default :class:`BouncePolicy` - unless the decision
        in force about that address reinstated it. Read from the ``mailing_exclusions`` and
        ``address_decisions`` views and the address index of the ``segment_members`` projection (each
        caught up first), in batch reads. Parties that never subscribed and never bounced are not listed:
        :meth:`may_contact` refuses them anyway.
        """
        self._runner.catch_up(MailingExclusionsView.name)
        rows = {r["id"]: r for r in self._views_storage.rows(MailingExclusionsView.name, {"excluded": True})}
        decided = self._decisions_in_force()
        self._segments.catch_up()
        holders = self._segments.primary_holders(k for k, suppressed in decided.items() if suppressed)
        missing = [p for p in holders if p not in rows]
        rows.update(self._views_storage.load(MailingExclusionsView.name, missing))
        found = []
        for party in sorted(set(rows) | set(holders), key=UUID):
            row = rows.get(party) or {}
            bounced = {k for k in row.get("bounced", ()) if decided.get(k, True)}
            held = holders.get(party)
            if held is not None and held["emails"]:
                email = primary_address_keys({"emails": held["emails"]})[0]
                if decided.get(email):
                    bounced.add(email)
            unsubscribed = list(row.get("unsubscribed", ()))
            if unsubscribed or bounced:
                found.append(MailingExclusion(party_id=UUID(party), unsubscribed=unsubscribed,
                                              bounced=sorted(bounced)))
        return found

    def _decisions_in_force(
        self, at: datetime | None = None, known_at: datetime | None = None,
    ) -> dict[str, bool]:
        """Every address key with a suppression decision in force - now, or at ``at`` as known at
        ``known_at`` - and whether that decision suppresses it (the ``address_decisions`` view)."""
        if at is None:
            self._runner.catch_up(AddressDecisionsView.name)
            return suppressed_by_key(self._views_storage.rows(AddressDecisionsView.name, {}))
        return suppressed_by_key(self._runner.fold_as_of(AddressDecisionsView.name, at, known_at).values())

    def _record_entries(
        self, cmd: PartyCommand, action: Callable[[Party], list[dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        """Load, record ledger entries, save (re-run on a conflict); the entries recorded by the last run."""
        recorded: list[dict[str, Any]] = []

        def act(party: Party) -> None:
            recorded[:] = action(party)

        self._update(cmd, act)
        return recorded

    # ------------------------------------------------------------------ bulk

    def bulk_register(self, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 1000) -> list[UUID]:
        """Register many parties: all rows are validated first, then written in batched transactions.

        A bad row raises :class:`InvalidInput` naming its index, and nothing is stored. Returns the new
        ids in row order.
        """
        rows = [self._with_region(r) if isinstance(r, Mapping) and "phones" in r else r for r in rows]
        rows = self._checked_bulk_registrations(rows)
        return _bulk.bulk_register(self._app.recorder, self._app.mapper, rows, batch_size,
                                   self._tell_bulk if self._listeners else None, self._existing_claims)

    def bulk_update(self, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 500) -> int:
        """Re-assign and/or update the profiles of many parties, one atomic save per batch.

        All rows are validated first; unknown parties raise :class:`PartyNotFound` before anything is
        stored for their batch. Returns how many parties changed.
        """
        commands = self._checked_bulk_profiles(_bulk.validate_rows(BulkUpdate, rows))
        changed = 0
        for start in range(0, len(commands), batch_size):
            batch = commands[start : start + batch_size]
            for attempt in range(self.conflict_retries + 1):
                parties: dict[UUID, Party] = {}
                for cmd in batch:
                    party = parties.get(cmd.party_id) or self._load(cmd.party_id)
                    touched = False
                    if "owner" in cmd.model_fields_set:
                        touched |= party.assign(
                            owner=cmd.owner, actor=cmd.actor, effective_at=cmd.effective_at
                        )
                    if cmd.profile:
                        touched |= party.update_profile(
                            changes=dict(cmd.profile), actor=cmd.actor, effective_at=cmd.effective_at
                        )
                    if touched or cmd.party_id in parties:
                        parties[cmd.party_id] = party
                try:
                    self._save(*parties.values())
                except ConcurrentUpdateError:
                    if attempt == self.conflict_retries:
                        raise
                    _back_off(attempt)
                    continue
                changed += len(parties)
                break
        return changed

    # ------------------------------------------------------------------ custom fields and profile traits

    @overload
    def define_field(self, *, dry_run: Literal[False] = False, **definition: Any) -> FieldDefinition: ...

    @overload
    def define_field(self, *, dry_run: Literal[True], **definition: Any) -> list[FieldScanFinding]: ...

    def define_field(self, *, dry_run: bool = False, **definition: Any) -> Any:
        """Add a field to the catalog (see :class:`FieldDefinition`; ``actor=`` required, ``effective_at=``
        optional) and return its definition.

        With ``dry_run=True`` nothing is stored: the same checks run, and the parties whose stored values
        would break the new definition are returned (a new required field: every party without a value).
        """
        cmd = validate(DefineField, _split_command(definition, "definition"))
        if dry_run:
            self._catalog_or_new(cmd.actor).define(cmd.definition, actor=cmd.actor,
                                                   effective_at=cmd.effective_at)
            return self.scan_fields([cmd.definition])
        self._change_catalog(cmd.actor, lambda c: c.define(
            cmd.definition, actor=cmd.actor, effective_at=cmd.effective_at))
        return cmd.definition

    def adopt_standard_profile(self, *, actor: str, effective_at: datetime | None = None) -> FieldSet:
        """Define the four standard profile traits (:data:`crmcore.fields.STANDARD_PROFILE`) in one change.

        From then on profile traits are checked against the catalog. Returns the catalog after it.
        """
        cmds = [validate(DefineField, {"definition": d, "actor": actor, "effective_at": effective_at})
                for d in STANDARD_PROFILE]

        def define_all(catalog: FieldCatalog) -> None:
            for cmd in cmds:
                catalog.define(cmd.definition, actor=cmd.actor, effective_at=cmd.effective_at)

        self._change_catalog(cmds[0].actor, define_all)
        return self.field_catalog()

    @overload
    def change_field_rules(
        self, name: str, /, *, dry_run: Literal[False] = False, **changes: Any
    ) -> FieldDefinition: ...

    @overload
    def change_field_rules(
        self, name: str, /, *, dry_run: Literal[True], **changes: Any
    ) -> list[FieldScanFinding]: ...

    def change_field_rules(self, name: str, /, *, dry_run: bool = False, **changes: Any) -> Any:
        """Change an active field's rules (``required=True``, ``choices=[...]``, ``maximum=...``; ``actor=``
        required) and return the new definition. Its kind and section never change. A change that leaves
        the definition as it was records nothing.

        With ``dry_run=True`` nothing is stored: the parties whose stored values break the changed rules
        are returned, so a tightened rule can be seen at work before it is applied.
        """
        cmd = validate(ChangeFieldRules, {**_split_command(changes, "changes"), "name": name})
        catalog = self._catalog_or_new(cmd.actor)
        proposed = _changed_definition(catalog.definition(cmd.name), cmd.changes)
        if dry_run:
            catalog.change_rules(proposed, actor=cmd.actor, effective_at=cmd.effective_at)
            return self.scan_fields([proposed])

        def change(catalog: FieldCatalog) -> FieldDefinition:
            definition = _changed_definition(catalog.definition(cmd.name), cmd.changes)
            catalog.change_rules(definition, actor=cmd.actor, effective_at=cmd.effective_at)
            return definition

        return self._change_catalog(cmd.actor, change)

    def retire_field(self, name: str, /, **fields: Any) -> None:
        """Retire an active field (``reason=``, ``actor=``): no new values; stored values stay readable."""
        cmd = validate(RetireField, {**fields, "name": name})
        self._change_catalog(cmd.actor, lambda c: c.retire(
            cmd.name, reason=cmd.reason, actor=cmd.actor, effective_at=cmd.effective_at))

    def field_catalog(self, version: int | None = None) -> FieldSet:
        """The active definitions now, or at catalog ``version``; ``.version`` says which (0: empty)."""
        if version is None:
            return self._current_fields()
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise InvalidInput(f"a catalog version is a whole number from 0, not {version!r}")
        current = self._catalog_version()
        if version > current:
            raise InvalidInput(f"the field catalog has no version {version} (it is at {current})")
        return self._fields_at(version)

    def set_fields(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Set custom field values (``values={"legal_form": "spa", "old": None}``; ``None`` clears one).

        Values are normalised by their field's rules and recorded with the catalog version they were
        checked against; a value that breaks a rule raises :class:`FieldRuleViolation` (several problems:
        one :class:`InvalidInput` listing them) and nothing is stored. Setting values equal to the stored
        ones records nothing.
        """
        def set_values(party: Party, cmd: SetFields) -> None:
            catalog = self._current_fields()
            values = catalog.section("custom").validate(cmd.values, partial=True)
            party.set_fields(values=values, catalog_version=catalog.version, actor=cmd.actor,
                             effective_at=cmd.effective_at)

        return self._run(SetFields, party_id, fields, set_values)

    def field_values(self, party_id: UUID | str) -> dict[str, FieldValueView]:
        """A party's custom field values, each with the catalog version and definition it was set under."""
        party = self._load(_uuid(party_id))
        current = self._current_fields()
        result: dict[str, FieldValueView] = {}
        for name, value in party.custom_fields.items():
            version = party.custom_field_versions.get(name, 0)
            result[name] = FieldValueView(
                name=name, value=value, catalog_version=version,
                definition=self._fields_at(version).get(name), retired=name not in current,
            )
        return result

    def scan_fields(
        self, definitions: Iterable[FieldDefinition] | None = None, *, names: Iterable[str] | None = None,
    ) -> list[FieldScanFinding]:
        """The parties whose stored values break ``definitions`` (proposed rules, not yet stored) or, by
        default, the catalog's current rules; ``names`` limits the scan to those fields.

        Custom fields are checked against ``custom_fields``, profile traits against ``profile``; a
        required field with no value is a finding too. Reads the ``parties`` view, not each party.
        """
        if definitions is None:
            scope = dict(self._current_fields())
        else:
            scope = {}
            for definition in definitions:
                if not isinstance(definition, FieldDefinition):
                    raise InvalidInput(f"scan_fields takes FieldDefinition objects, not {type(definition)}")
                scope[definition.name] = definition
        if names is not None:
            wanted = list(names)
            missing = [n for n in wanted if n not in scope]
            if missing:
                raise FieldNotDefined(missing[0])
            scope = {n: scope[n] for n in wanted}
        findings: list[FieldScanFinding] = []
        for row in sorted(self.view_rows(PartiesView.name), key=lambda r: str(r["id"])):
            for name, definition in scope.items():
                values = row.get("profile" if definition.section == "profile" else "custom_fields") or {}
                try:
                    definition.normalise(values.get(name))
                except FieldRuleViolation as problem:
                    findings.append(FieldScanFinding(
                        party_id=row["id"], field=name, value=values.get(name), message=str(problem),
                        suggestion=problem.suggestion,
                    ))
        return findings

    def _change_catalog(self, actor: str, action: Callable[[FieldCatalog], T]) -> T:
        """Load the catalog (or start it), act on it, save; on a collision with another writer, re-run."""
        for attempt in range(self.conflict_retries + 1):
            catalog = self._catalog_or_new(actor)
            result = action(catalog)
            try:
                self._save(catalog)
            except ConcurrentUpdateError:
                if attempt == self.conflict_retries:
                    raise ConcurrentUpdateError(None, "the field catalog changed meanwhile") from None
                _back_off(attempt)
                continue
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _catalog_or_new(self, actor: str) -> FieldCatalog:
        try:
            catalog: Any = self._app.repository.get(CATALOG_ID)
        except AggregateNotFoundError:
            return FieldCatalog.start(actor=actor)
        return cast(FieldCatalog, catalog)

    def _catalog_version(self) -> int:
        """The catalog's current version (0 if none was started): one small query."""
        last = self._app.recorder.select_events(CATALOG_ID, desc=True, limit=1)
        return last[0].originator_version if last else 0

    def _current_fields(self) -> FieldSet:
        return self._fields_at(self._catalog_version())

    def _fields_at(self, version: int) -> FieldSet:
        """The active definitions at catalog ``version`` (cached: a version never changes once written)."""
        cached = self._catalog_versions.get(version)
        if cached is not None:
            return cached
        if version == 0:
            fields = FieldSet()
        else:
            try:
                catalog: Any = self._app.repository.get(CATALOG_ID, version=version)
            except AggregateNotFoundError:
                return FieldSet()
            fields = cast(FieldCatalog, catalog).fields()
        if len(self._catalog_versions) >= _CATALOG_CACHE_SIZE:
            self._catalog_versions.clear()
        self._catalog_versions[version] = fields
        return fields

    @staticmethod
    def _checked_profile(catalog: FieldSet, profile: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
        """``profile`` normalised by the catalog's profile traits; free-form while it defines none."""
        traits = catalog.section("profile")
        if not traits:
            return dict(profile)
        return traits.validate(profile, partial=partial)

    def _checked_bulk_profiles(self, commands: list[BulkUpdate]) -> list[BulkUpdate]:
        """Bulk update rows with their profile changes normalised; every bad row reported by index."""
        traits = self._current_fields().section("profile")
        if not traits or not any(cmd.profile for cmd in commands):
            return commands
        checked: list[BulkUpdate] = []
        errors: list[dict[str, Any]] = []
        for index, cmd in enumerate(commands):
            try:
                profile = traits.validate(cmd.profile, partial=True) if cmd.profile else {}
            except InvalidInput as error:
                errors += _row_errors(index, error)
                continue
            checked.append(cmd.model_copy(update={"profile": profile}) if profile else cmd)
        if errors:
            raise _rows_error(errors)
        return checked

    def _checked_bulk_registrations(self, rows: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
        """Registration rows with their profiles normalised by the catalog's traits (if it defines any).

        The bulk path records no custom field values: while the catalog has required custom fields,
        every row is refused (register such parties with :meth:`register_party` and ``fields=``).
        """
        catalog = self._current_fields()
        traits = catalog.section("profile")
        required = [n for n, d in catalog.section("custom").items() if d.required]
        if not traits and not required:
            return rows
        rows = list(rows)
        checked: list[Mapping[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            if required:
                message = (f"the custom fields {', '.join(required)} are required, and bulk registration "
                           "records no custom fields: register these parties one by one")
                errors.append({"loc": (index, "fields"), "msg": message, "type": "missing"})
                continue
            profile = row.get("profile") if isinstance(row, Mapping) else None
            if profile is not None and not isinstance(profile, Mapping):
                checked.append(row)  # the bulk validation refuses it, naming the row
                continue
            try:
                normalised = traits.validate(profile or {})
            except InvalidInput as error:
                errors += _row_errors(index, error)
                continue
            checked.append({**row, "profile": normalised} if profile is not None else row)
        if errors:
            raise _rows_error(errors)
        return checked

    # ------------------------------------------------------------------ reads: one party

    def get_party(self, party_id: UUID | str, *, version: int | None = None) -> PartyView:
        """The party now, or as it was at ``version``."""
        return PartyView.model_validate(self._load(_uuid(party_id), version=version).state())

    def party_as_of(self, party_id: UUID | str, at: datetime) -> PartyView:
        """The party as it stood at effective time ``at`` (raises PartyNotFound if not yet registered)."""
        moment = _aware(at, "at")
        party: Party | None = None
        for event in self._events_of(_uuid(party_id)):
            if event.effective_at > moment:
                if party is None:  # not registered by then
                    break
                continue  # a later event; consent entries recorded after it may still be effective before
            if party is not None:  # events skipped above leave gaps in the versions
                party.version = event.originator_version - 1
            party = cast(Party, event.mutate(party))
        if party is None:
            raise PartyNotFound(_uuid(party_id), f"not registered at {moment.isoformat()}")
        return PartyView.model_validate(party.state())

    def timeline(self, party_id: UUID | str, *, include_merged: bool = False) -> list[TimelineEntry]:
        """Every event of the party: what happened, who did it, both times, and which fields changed.

        With ``include_merged``, the events of every party merged into it are interleaved by effective
        time (each entry names its ``party_id``): nothing a duplicate went through is out of reach.
        """
        own = self._party_timeline(_uuid(party_id))
        if not include_merged:
            return own
        entries = [*own]
        for merged in self.merged_parties(party_id):
            entries += self._party_timeline(merged)
        return sorted(entries, key=lambda e: (e.effective_at, e.recorded_at))

    # ------------------------------------------------------------------ reads: views

    def parties(
        self,
        *,
        stage: Stage | str | None = None,
        kind: PartyKind | str | None = None,
        owner: str | None = None,
        unassigned: bool = False,
        set_aside: bool | None = None,
    ) -> list[PartySummary]:
        """Parties from the ``parties`` view, filtered by stage, kind, owner (or ``unassigned``)."""
        where: dict[str, Any] = {}
        if stage is not None:
            where["stage"] = Stage(stage).value
        if kind is not None:
            where["kind"] = PartyKind(kind).value
        if owner is not None and unassigned:
            raise InvalidInput("give either owner or unassigned, not both")
        if owner is not None:
            where["owner"] = owner
        if unassigned:
            where["owner"] = None
        if set_aside is not None:
            where["set_aside"] = set_aside
        self._runner.catch_up(PartiesView.name)
        return [PartySummary.model_validate(r) for r in self._views_storage.rows(PartiesView.name, where)]

    def party_counts(self) -> PartyCounts:
        """How many parties by stage, kind and owner, now."""
        self._runner.catch_up(PartiesView.name)
        storage, name = self._views_storage, PartiesView.name
        return _counts(storage.count_by(name, "stage"), storage.count_by(name, "kind"),
                       storage.count_by(name, "owner"))

    def party_counts_as_of(self, at: datetime, *, known_at: datetime | None = None) -> PartyCounts:
        """The counts as they stood at effective time ``at``.

        With ``known_at``, only events recorded by then count: "as it was known on that date".
        """
        moment = _aware(at, "at")
        known = _aware(known_at, "known_at") if known_at is not None else None
        rows = self._runner.fold_as_of(PartiesView.name, moment, known)
        return _counts_of_rows(rows.values())

    def update_views(self) -> int:
        """Catch every view up with the log now (reads do this by themselves). Returns events applied."""
        return self._runner.catch_up() + self._segments.catch_up()

    def rebuild_view(self, name: str = PartiesView.name) -> int:
        """Forget a view (or the ``segment_members`` projection) and rebuild it from the first event."""
        if name == SegmentMembership.name:
            return self._segments.rebuild()
        return self._runner.rebuild(name)

    def view_rows(self, name: str, **where: Any) -> list[Row]:
        """Raw rows of any registered view (caught up first), filtered by field equality."""
        self._runner.catch_up(name)
        return self._views_storage.rows(name, where)

    # ------------------------------------------------------------------ tamper evidence

    def verify_log(self, *, anchor: LogHead | None = None, snapshots: bool = True) -> LogVerification:
        """Prove the stored log is as it was written (design 07 § 2): walk every stored event and the chain
        written beside it, recompute each link under the store's audit key, and report every event altered,
        removed, written around the chain or out of order, located by position. With ``anchor`` (a
        :meth:`log_head` kept outside the database), also that the chain still reaches it with the same
        link: nothing removed from the end, the chain not recomputed. With ``snapshots`` (default), every
        stored snapshot is also checked against its aggregate replayed from the events (commands and reads
        start from snapshots). Reads a page at a time; records nothing."""
        if anchor is not None and not isinstance(anchor, LogHead):
            raise InvalidInput("anchor: give a LogHead", [
                {"loc": ("anchor",), "msg": "not a LogHead", "type": "is_instance_of"}])
        result = verify_chain(self._chained(), self.settings.audit_key_bytes(), anchor)
        if not snapshots:
            return result
        checked, problems = verify_snapshots(self._app)
        return result.model_copy(update={"snapshots": checked, "problems": [*problems, *result.problems],
                                         "ok": result.ok and not problems})

    def log_head(self) -> LogHead:
        """The last link of the log's chain: keep it outside the database, and pass it to
        :meth:`verify_log` later as ``anchor``."""
        return log_head(self._chained())

    def _chained(self) -> ChainedRecorder:
        recorder: Any = self._app.recorder
        if not hasattr(recorder, "select_chain"):  # pragma: no cover - every store's recorder keeps it
            raise StoreConfigurationError("this store's recorder keeps no chain")
        return cast(ChainedRecorder, recorder)

    # ------------------------------------------------------------------ changes

    @property
    def position(self) -> int:
        """The position of the last committed change (0 for an empty store)."""
        return int(self._app.recorder.max_notification_id() or 0)

    def changes(self, *, after: int = 0, limit: int | None = None) -> Iterator[Change]:
        """Committed changes after ``after``, in commit order — from any process writing to the store."""
        for count, (position, event) in enumerate(read_events(self._app.recorder, self._app.mapper,
                                                              after=after)):
            if limit is not None and count >= limit:
                return
            yield _change(position, event)

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener`` after every commit made through this object; returns an unsubscribe function.

        A listener that raises is logged and does not undo the commit. Changes made by other processes
        are read with :meth:`changes`.
        """
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    # ------------------------------------------------------------------ opportunities

    def open_opportunity(
        self,
        party_id: UUID | str,
        *,
        title: str,
        value: Money | Decimal | int | str | Mapping[str, Any],
        expected_close: date | str,
        owner: str,
        actor: str,
        currency: str | None = None,
        pipeline: str | None = None,
        stage: str | None = None,
        effective_at: datetime | None = None,
        campaign_id: UUID | str | None = None,
    ) -> UUID:
        """Open an opportunity for a prospect, target or customer; returns its id.

        ``value`` is :class:`Money`, or an amount with ``currency=``. It opens at ``stage`` of ``pipeline``
        (default: the first configured pipeline and its first stage) with that stage's probability and
        forecast category. A suspect, lead or disqualified party is refused with :class:`IllegalTransition`;
        a party merged into another with :class:`PartyMerged` (open it on ``resolve(party_id)``).
        ``campaign_id`` links it to the campaign it came from (:class:`CampaignNotFound` if there is none):
        the campaign's results count it, and credit it to that campaign under last-touch attribution.
        """
        opportunity = self._new_opportunity({
            "party_id": party_id, "title": title, "value": value, "currency": currency,
            "expected_close": expected_close, "owner": owner, "pipeline": pipeline, "stage": stage,
            "actor": actor, "effective_at": effective_at, "campaign_id": campaign_id,
        })
        self._save(opportunity)
        return opportunity.id

    def _new_opportunity(self, fields: Mapping[str, Any]) -> Opportunity:
        """A new, unsaved opportunity from :meth:`open_opportunity`'s fields, checked."""
        cmd = validate(OpenOpportunity, dict(fields))
        if cmd.campaign_id is not None:
            self._load_of(Campaign, cmd.campaign_id, None, CampaignNotFound)
        chosen = self.pipelines[0] if cmd.pipeline is None else pipelines.pipeline_named(cmd.pipeline,
                                                                                         self.pipelines)
        party = self._load(cmd.party_id)
        if party.merged_into is not None:
            raise PartyMerged(party.id, party.merged_into)
        pipelines.check_party_can_have_opportunity(party.id, party.stage)
        opportunity = Opportunity.open(
            party_id=party.id, title=cmd.title, owner=cmd.owner, value=cmd.value, pipeline=chosen,
            stage=cmd.stage, expected_close=cmd.expected_close, actor=cmd.actor,
            effective_at=cmd.effective_at, campaign_id=cmd.campaign_id,
        )
        return opportunity

    def move_stage(self, opportunity_id: UUID | str, **fields: Any) -> OpportunityView:
        """Move an open opportunity to another open stage (``stage=``); its odds replace an override."""
        return self._run_opportunity(MoveStage, opportunity_id, fields, lambda o, c: o.move_stage(
            pipeline=self._pipeline_of(o), stage=c.stage, actor=c.actor, effective_at=c.effective_at))

    def reestimate(self, opportunity_id: UUID | str, **fields: Any) -> OpportunityView:
        """Re-estimate an open opportunity's value (``value=``, with ``currency=`` for a bare amount)."""
        return self._run_opportunity(ReestimateValue, opportunity_id, fields, lambda o, c: o.reestimate(
            value=c.value, actor=c.actor, effective_at=c.effective_at))

    def move_close_date(self, opportunity_id: UUID | str, **fields: Any) -> OpportunityView:
        """Expect an open opportunity to close on another date (``expected_close=``); every move is kept."""
        return self._run_opportunity(MoveCloseDate, opportunity_id, fields, lambda o, c: o.move_close_date(
            expected_close=c.expected_close, actor=c.actor, effective_at=c.effective_at))

    def change_owner(self, opportunity_id: UUID | str, **fields: Any) -> OpportunityView:
        """Give an open opportunity to another owner (``owner=``)."""
        return self._run_opportunity(
            ChangeOpportunityOwner, opportunity_id, fields, lambda o, c: o.change_owner(
                owner=c.owner, actor=c.actor, effective_at=c.effective_at))

    def override_probability(self, opportunity_id: UUID | str, **fields: Any) -> OpportunityView:
        """Set an open opportunity's probability (``probability=``, in percent) until its next stage move."""
        return self._run_opportunity(
            OverrideProbability, opportunity_id, fields, lambda o, c: o.override_probability(
                probability=c.probability, actor=c.actor, effective_at=c.effective_at))

    def win(self, opportunity_id: UUID | str, reasons: Sequence[str] | None = None,
            **fields: Any) -> OpportunityView:
        """Close an open opportunity as won (probability 100, category closed), with optional reasons.

        Its party then becomes a customer (a won target's prospects too), each conversion its own
        ``Party.Converted`` event naming this win (see :meth:`run_policies`).
        """
        won = self._run_opportunity(
            WinOpportunity, opportunity_id, {**fields, "reasons": list(reasons or [])},
            lambda o, c: o.win(pipeline=self._pipeline_of(o), reasons=c.reasons, actor=c.actor,
                               effective_at=c.effective_at))
        self.run_policies()  # the party becomes a customer (conversion on a won deal)
        return won

    def run_policies(self) -> int:
        """Apply the business rules that follow from recorded events, up to now; returns events handled.

        Conversion on a won deal (``crmcore.policies.conversion``): every ``Opportunity.Won`` not yet
        applied converts its party (and a won target's prospects), each conversion naming the win.

        The engagement policies (``crmcore.policies.suppression``): bounces, complaints and deliveries -
        campaign reports and the parties' delivery ledgers alike - decide each address under
        :attr:`bounce_policy`, and where the decision differs from the one recorded, ``AddressStatus``
        records ``Suppressed`` or ``Reinstated`` (effective when the report that tipped it happened,
        naming the policy and the reports); an ``unsubscribed`` or ``complaint`` report unsubscribes its
        recipient (its survivor if merged) from the campaign channel's consent channel.

        Events recorded by other processes are applied too. Idempotent: nothing is decided twice.
        """
        converted = self._follow(CONVERSION_POLICY, (Opportunity.Won,), self._apply_win)
        return converted + self._run_engagement_policies()

    def _apply_win(self, event: DomainEventProtocol[Any]) -> None:
        won = cast(Opportunity.Won, event)
        opportunity = self._load_opportunity(won.originator_id, version=won.originator_version)
        party_id = self.resolve(opportunity.party_id)

        def facts(party: Party) -> PartyFacts:
            return PartyFacts(party.id, party.kind, party.stage, tuple(party.conversion_causes))

        party = self._load(party_id)
        linked = []
        if party.kind is PartyKind.ORGANIZATION:
            linked = [facts(self._load(m.id)) for m in self.members(party_id)]
        for decision in conversion.when_opportunity_won_convert_party(
            won.originator_id, won.originator_version, facts(party), linked,
        ):
            def convert(target: Party, decision: Any = decision) -> list[Any]:
                # decided again on fresh state: another process may have applied this win meanwhile
                if conversion.needs_conversion(facts(target), decision.caused_by):
                    target.convert(actor=won.actor, reference=decision.reference,
                                   caused_by=dict(decision.caused_by),
                                   effective_at=max(won.effective_at, target.last_effective_at))
                return []

            self._update_party(decision.party_id, None, convert)

    def _follow(
        self, name: str, event_classes: tuple[type[Any], ...],
        handle: Callable[[DomainEventProtocol[Any]], None],
    ) -> int:
        """Hand every event of ``event_classes`` after the tracked position of ``name`` to ``handle``, then
        record the new position (at least once: ``handle`` must be idempotent)."""
        storage, topics, handled = self._views_storage, [get_topic(c) for c in event_classes], 0
        while True:
            position = storage.position(name, 1)
            page = self._app.recorder.select_notifications(
                start=position, limit=POLICY_PAGE, topics=topics, inclusive_of_start=False
            )
            if not page:
                return handled
            for notification in page:
                handle(self._app.mapper.to_domain_event(notification))
            try:
                storage.commit_page(name, position, page[-1].id, {})
            except PositionMoved:
                continue  # another process recorded this page first
            handled += len(page)
            if len(page) < POLICY_PAGE:
                return handled

    def lose(self, opportunity_id: UUID | str, reasons: Sequence[str], **fields: Any) -> OpportunityView:
        """Close an open opportunity as lost (0 %, omitted) with one or more reasons from the configured list.

        An unknown reason is refused with :class:`InvalidInput` suggesting the closest configured one.
        """
        given = list(reasons) if not isinstance(reasons, str) else [reasons]
        return self._run_opportunity(
            LoseOpportunity, opportunity_id, {**fields, "reasons": given},
            lambda o, c: o.lose(pipeline=self._pipeline_of(o),
                                reasons=pipelines.check_lost_reasons(c.reasons, self.lost_reasons),
                                actor=c.actor, effective_at=c.effective_at))

    def reopen_opportunity(self, opportunity_id: UUID | str, **fields: Any) -> OpportunityView:
        """Reopen a won or lost opportunity (``reason=``) at ``stage=`` (default: where it closed from)."""
        return self._run_opportunity(ReopenOpportunity, opportunity_id, fields, lambda o, c: o.reopen(
            pipeline=self._pipeline_of(o), stage=c.stage, reason=c.reason, actor=c.actor,
            effective_at=c.effective_at))

    def get_opportunity(self, opportunity_id: UUID | str, *, version: int | None = None) -> OpportunityView:
        """The opportunity now, or as it was at ``version``."""
        return OpportunityView.model_validate(
            self._load_opportunity(_opportunity_uuid(opportunity_id), version=version).state())

    def opportunity_timeline(self, opportunity_id: UUID | str) -> list[TimelineEntry]:
        """Every event of the opportunity: what happened, who did it, both times, and which fields changed."""
        oid = _opportunity_uuid(opportunity_id)
        self._load_opportunity(oid)
        return self._timeline_of(oid)

    def opportunities(
        self, party_id: UUID | str | None = None, *, status: OpportunityStatus | str | None = None,
    ) -> list[OpportunitySummary]:
        """Opportunities from the ``opportunities`` view, of a party (with those of parties merged into it)
        and/or of a status (open, won, lost)."""
        where: dict[str, Any] = {}
        if status is not None:
            try:
                where["status"] = OpportunityStatus(status).value
            except ValueError:
                raise InvalidInput(f"not an opportunity status: {status!r} (open, won or lost)") from None
        self._runner.catch_up(OpportunitiesView.name)
        if party_id is None:
            rows = self._views_storage.rows(OpportunitiesView.name, where)
        else:
            party = _uuid(party_id)
            rows = []
            for pid in [party, *self.merged_parties(party)]:
                rows += self._views_storage.rows(OpportunitiesView.name, {**where, "party_id": str(pid)})
        return sorted((OpportunitySummary.model_validate(r) for r in rows), key=lambda s: s.id)

    def _pipeline_of(self, opportunity: Opportunity) -> Pipeline:
        return pipelines.pipeline_named(opportunity.pipeline, self.pipelines)

    def _run_opportunity(
        self, model: type[OC], opportunity_id: UUID | str, fields: Mapping[str, Any],
        action: Callable[[Opportunity, OC], Any],
    ) -> OpportunityView:
        cmd = validate(model, {**fields, "opportunity_id": opportunity_id})

        def act(opportunity: Opportunity) -> list[Any]:
            action(opportunity, cmd)
            return []

        opportunity = self._load_act_save(
            lambda: self._load_opportunity(cmd.opportunity_id), cmd.expected_version, act
        )
        return OpportunityView.model_validate(opportunity.state())

    def _load_opportunity(self, opportunity_id: UUID, *, version: int | None = None) -> Opportunity:
        return self._load_of(Opportunity, opportunity_id, version, OpportunityNotFound)

    def _load_of(
        self, kind: type[A], aggregate_id: UUID, version: int | None, missing: Callable[..., Exception],
    ) -> A:
        """The aggregate of class ``kind`` (at ``version``); ``missing`` is raised when there is none."""
        try:
            found: Any = self._app.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise missing(aggregate_id) from None
        if not isinstance(found, kind):
            name = kind.__name__.lower()
            raise missing(aggregate_id, f"not {'an' if name[0] in 'aeiou' else 'a'} {name}")
        return found

    # ------------------------------------------------------------------ forecast

    def forecast(
        self,
        *,
        at: datetime | None = None,
        known_at: datetime | None = None,
        owner: str | None = None,
        pipeline: str | None = None,
    ) -> Forecast:
        """The pipeline forecast per currency, of every opportunity or those of ``owner`` and/or ``pipeline``.

        Now by default, from the ``pipeline`` view. With ``at`` (timezone-aware), as it stood at that
        effective time: the view folded in memory from the events effective by then; with ``known_at`` as
        well, only from the events recorded by then ("as it was known on that date").
        """
        rows, moment, known = self._pipeline_rows(at, known_at, owner, pipeline)
        return forecast_of(rows, at=moment, known_at=known)

    def win_loss(
        self,
        *,
        at: datetime | None = None,
        known_at: datetime | None = None,
        owner: str | None = None,
        pipeline: str | None = None,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
    ) -> WinLoss:
        """Why deals are lost and which negotiations stalled, per currency (see :func:`win_loss_of`).

        Lost opportunities by reason, by stage at loss and by owner; won ones by owner; open ones with no
        change for ``stale_after`` (default 90 days) listed as prematurely interrupted, longest idle first.
        Now by default; ``at`` / ``known_at`` as in :meth:`forecast`.
        """
        if not isinstance(stale_after, timedelta) or stale_after <= timedelta(0):
            raise InvalidInput("stale_after: give a positive timedelta",
                               [{"loc": ("stale_after",), "msg": "not positive", "type": "timedelta"}])
        rows, moment, known = self._pipeline_rows(at, known_at, owner, pipeline)
        return win_loss_of(rows, now=moment or utc_now(), stale_after=stale_after, known_at=known)

    def backtest(
        self,
        *,
        periods: int = 12,
        every: str = "month",
        until: datetime | date | None = None,
        timezone: str | tzinfo = "UTC",
        owner: str | None = None,
        pipeline: str | None = None,
        as_known: bool = False,
    ) -> Backtest:
        """Replay the forecast at the start of each of the last ``periods`` whole months (or quarters) and
        compare it with what was actually won in each; calibrate every stage's probability.

        The periods end where the period holding ``until`` (default: now) starts, with boundaries at
        midnight in ``timezone`` (an IANA name or a ``tzinfo``). Each period's forecast is the weighted
        value of the opportunities open at its start and expected to close within it; the error is that
        forecast minus the value won during the period, per currency, in total and per owner (see
        :mod:`crmcore.projections.backtest`). With ``as_known``, each forecast uses only what had been
        recorded by then - what the team saw - instead of everything now known to have been effective.
        The log is read once, whatever the number of periods.
        """
        if isinstance(periods, bool) or not isinstance(periods, int) or not 1 <= periods <= 600:
            raise InvalidInput("periods: give a whole number from 1 to 600",
                               [{"loc": ("periods",), "msg": "out of range", "type": "int_range"}])
        if every not in EVERY:
            raise InvalidInput(f"every: one of {', '.join(EVERY)}, got {every!r}",
                               [{"loc": ("every",), "msg": "unknown period", "type": "literal_error"}])
        zone = _zone(timezone)
        end = _until(until, zone)
        where = self._pipeline_filter(owner, pipeline)
        boundaries = period_boundaries(every, periods, end, zone)
        folds = self._runner.fold_at(PipelineView.name, boundaries, as_known=bool(as_known))
        if where:
            folds = [{k: r for k, r in fold.items() if matches(r, where)} for fold in folds]
        return backtest_of(folds, boundaries, every=every, pipelines=self.pipelines, as_known=bool(as_known))

    def _pipeline_filter(self, owner: str | None, pipeline: str | None) -> dict[str, Any]:
        where: dict[str, Any] = {}
        if owner is not None:
            if not isinstance(owner, str) or not owner.strip():
                raise InvalidInput("owner: give a non-empty name",
                                   [{"loc": ("owner",), "msg": "empty", "type": "string_too_short"}])
            where["owner"] = owner.strip()  # owners are stored without outer spaces
        if pipeline is not None:
            where["pipeline"] = pipelines.pipeline_named(pipeline, self.pipelines).name
        return where

    def _pipeline_rows(
        self, at: datetime | None, known_at: datetime | None, owner: str | None, pipeline: str | None,
    ) -> tuple[list[Row], datetime | None, datetime | None]:
        """The ``pipeline`` view's rows now, or folded as of ``at`` (and ``known_at``), filtered."""
        where = self._pipeline_filter(owner, pipeline)
        if at is None:
            if known_at is not None:
                raise InvalidInput("known_at needs at: give the effective moment too",
                                   [{"loc": ("known_at",), "msg": "without at", "type": "missing"}])
            self._runner.catch_up(PipelineView.name)
            return self._views_storage.rows(PipelineView.name, where), None, None
        moment = _aware(at, "at")
        known = _aware(known_at, "known_at") if known_at is not None else None
        rows = self._runner.fold_as_of(PipelineView.name, moment, known)
        return [r for r in rows.values() if matches(r, where)], moment, known

    # ------------------------------------------------------------------ tasks

    def plan_task(
        self,
        *,
        kind: str,
        subject: str,
        assignees: Sequence[str],
        actor: str,
        party_id: UUID | str | None = None,
        opportunity_id: UUID | str | None = None,
        due_at: datetime | None = None,
        duration_minutes: int | None = None,
        deadline: date | str | None = None,
        priority: str = "normal",
        effective_at: datetime | None = None,
    ) -> UUID:
        """Plan a task of a configured kind for ``assignees`` (more than one: collective); returns its id.

        Give either ``due_at`` (a timezone-aware date-time, with an optional ``duration_minutes``) or a
        ``deadline`` (a date). The task may be for a party and/or an opportunity, which must exist; a party
        merged into another is refused with :class:`PartyMerged` (plan it on ``resolve(party_id)``).
        """
        cmd = validate(PlanTask, {
            "kind": kind, "subject": subject, "assignees": assignees, "actor": actor, "party_id": party_id,
            "opportunity_id": opportunity_id, "due_at": due_at, "duration_minutes": duration_minutes,
            "deadline": deadline, "priority": priority, "effective_at": effective_at,
        })
        tasks.check_schedule(cmd.due_at, cmd.duration_minutes, cmd.deadline)
        chosen = tasks.kind_named(cmd.kind, self.task_kinds)
        if cmd.party_id is not None:
            party = self._load(cmd.party_id)
            if party.merged_into is not None:
                raise PartyMerged(party.id, party.merged_into)
        if cmd.opportunity_id is not None:
            self._load_opportunity(cmd.opportunity_id)
        task = Task.plan(
            kind=chosen, subject=cmd.subject, assignees=cmd.assignees, actor=cmd.actor, kinds=self.task_kinds,
            party_id=cmd.party_id, opportunity_id=cmd.opportunity_id, due_at=cmd.due_at,
            duration_minutes=cmd.duration_minutes, deadline=cmd.deadline, priority=cmd.priority,
            effective_at=cmd.effective_at,
        )
        self._save(task)
        return task.id

    def assign_task(self, task_id: UUID | str, **fields: Any) -> TaskView:
        """Add people (``assignees=``) to an open task; those already on it change nothing."""
        return self._run_task(AssignTask, task_id, fields, lambda t, c: t.assign(
            assignees=c.assignees, actor=c.actor, effective_at=c.effective_at))

    def reassign_task(self, task_id: UUID | str, **fields: Any) -> TaskView:
        """Replace the people of an open task (``assignees=``, not empty); the previous list is kept."""
        return self._run_task(ReassignTask, task_id, fields, lambda t, c: t.reassign(
            assignees=c.assignees, actor=c.actor, effective_at=c.effective_at))

    def reschedule_task(self, task_id: UUID | str, **fields: Any) -> TaskView:
        """Move an open task to ``due_at=`` (and ``duration_minutes=``) or ``deadline=``; moves are kept."""
        return self._run_task(RescheduleTask, task_id, fields, lambda t, c: t.reschedule(
            due_at=c.due_at, duration_minutes=c.duration_minutes, deadline=c.deadline, actor=c.actor,
            effective_at=c.effective_at))

    def complete_task(self, task_id: UUID | str, **fields: Any) -> TaskView:
        """Declare an open task done (``by=`` one of its people, or anyone with ``on_behalf=True``), with the
        ``time_spent_minutes=`` and ``outcome=`` if known.

        A task of an interaction kind (call, meeting) for a party also records ``Party.InteractionRecorded``
        on the party (on its survivor if it was merged since), in the same transaction.
        """

        def complete(task: Task, cmd: CompleteTask) -> list[Any]:
            task.complete(by=cmd.by, actor=cmd.actor, time_spent_minutes=cmd.time_spent_minutes,
                          outcome=cmd.outcome, on_behalf=cmd.on_behalf, effective_at=cmd.effective_at)
            interactions = {k.casefold() for k in self.interaction_kinds}
            if task.party_id is None or task.kind.casefold() not in interactions:
                return []
            party = self._load(self.resolve(task.party_id))
            party.record_interaction(kind=task.kind, task_id=task.id, outcome=cmd.outcome, actor=cmd.actor,
                                     effective_at=task.last_effective_at)
            return [party]

        return self._run_task(CompleteTask, task_id, fields, complete)

    def cancel_task(self, task_id: UUID | str, **fields: Any) -> TaskView:
        """Cancel an open task (``reason=`` required)."""
        return self._run_task(CancelTask, task_id, fields, lambda t, c: t.cancel(
            reason=c.reason, actor=c.actor, effective_at=c.effective_at))

    def get_task(self, task_id: UUID | str, *, version: int | None = None) -> TaskView:
        """The task now, or as it was at ``version``."""
        return TaskView.model_validate(self._load_task(_id_of(task_id, "task"), version=version).state())

    def task_timeline(self, task_id: UUID | str) -> list[TimelineEntry]:
        """Every event of the task: what happened, who did it, both times, and which fields changed."""
        tid = _id_of(task_id, "task")
        self._load_task(tid)
        return self._timeline_of(tid)

    def _party_timeline(self, party_id: UUID) -> list[TimelineEntry]:
        return self._timeline_of(party_id, self._events_of(party_id), party_id=party_id)

    def _timeline_of(
        self, aggregate_id: UUID, events: Sequence[Any] | None = None, *, party_id: UUID | None = None,
    ) -> list[TimelineEntry]:
        """Every event of a party, an opportunity or a task (``events``, default: read them), with the
        fields of the aggregate's ``state()`` each one changed."""
        entries: list[TimelineEntry] = []
        aggregate: Any = None
        before: dict[str, Any] = {}
        read: Sequence[Any] = events if events is not None else list(self._app.events.get(aggregate_id))
        for event in read:
            aggregate = event.mutate(aggregate)
            after = aggregate.state()
            changes = {
                k: FieldChange(before=before.get(k), after=v)
                for k, v in after.items()
                if k not in ("version", "last_effective_at") and before.get(k) != v
            }
            entries.append(TimelineEntry(
                version=event.originator_version, event=type(event).__name__,
                actor=event.actor, effective_at=event.effective_at,
                recorded_at=event.timestamp, data=_event_data(event), changes=changes, party_id=party_id,
            ))
            before = after
        return entries

    def agenda(
        self,
        assignee: str,
        *,
        on: date | None = None,
        timezone: str | tzinfo = "UTC",
        at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> Agenda:
        """``assignee``'s open tasks seen on day ``on`` in ``timezone``: ``overdue`` (due before it),
        ``today``, ``this_week`` (the rest of its ISO week) and ``later``, each sorted by due time, then
        priority (urgent first), then subject.

        ``on`` defaults to today in ``timezone`` (the day of ``at`` when given). Now by default, from the
        ``tasks`` view; with ``at`` (and ``known_at``), as it stood then, as :meth:`forecast`.
        """
        name = _name(assignee, "assignee")
        zone, day, rows = self._task_rows(on, timezone, at, known_at)
        return agenda_of(rows, name, on=day, zone=zone, timezone=_zone_name(timezone), at=at)

    def workload(
        self,
        assignees: Sequence[str] | None = None,
        *,
        on: date | None = None,
        timezone: str | tzinfo = "UTC",
        at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> Workload:
        """Per person, the open tasks overdue / today / this week / later seen on day ``on``, and the minutes
        planned for them; everyone with an open task, or the people named (a team). ``on``, ``timezone``,
        ``at`` and ``known_at`` as in :meth:`agenda`."""
        names = None
        if assignees is not None:
            if isinstance(assignees, str):
                assignees = [assignees]
            names = [_name(a, "assignees") for a in assignees]
        zone, day, rows = self._task_rows(on, timezone, at, known_at)
        return workload_of(rows, names, on=day, zone=zone, timezone=_zone_name(timezone), at=at)

    def task_analysis(
        self,
        *,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        assignee: str | None = None,
        timezone: str | tzinfo = "UTC",
        at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> TaskAnalysis:
        """Planned versus completed dates and time spent per person, over the tasks completed or cancelled
        from ``since`` to before ``until`` (timezone-aware date-times, or dates: their midnight in
        ``timezone``), of everyone or of ``assignee`` (see ``crmcore.projections.tasks.task_analysis_of``).
        ``at`` and ``known_at`` as in :meth:`agenda`."""
        zone = _zone(timezone)
        name = _name(assignee, "assignee") if assignee is not None else None
        start = _moment(since, zone, "since")
        end = _moment(until, zone, "until")
        _, _, rows = self._task_rows(None, zone, at, known_at)
        return task_analysis_of(rows, zone=zone, timezone=_zone_name(timezone), since=start, until=end,
                                assignee=name, at=at)

    def _task_rows(
        self, on: date | None, timezone: str | tzinfo, at: datetime | None, known_at: datetime | None,
    ) -> tuple[tzinfo, date, list[Row]]:
        """The time zone, the day (``on``, else today there, or ``at``'s day) and the ``tasks`` rows now or
        as of ``at`` (and ``known_at``)."""
        zone = _zone(timezone)
        if on is not None and (isinstance(on, datetime) or not isinstance(on, date)):
            raise InvalidInput("on: give a date",
                               [{"loc": ("on",), "msg": "not a date", "type": "date_type"}])
        if at is None:
            if known_at is not None:
                raise InvalidInput("known_at needs at: give the effective moment too",
                                   [{"loc": ("known_at",), "msg": "without at", "type": "missing"}])
            self._runner.catch_up(TasksView.name)
            rows = self._views_storage.rows(TasksView.name, {})
            moment = utc_now()
        else:
            moment = _aware(at, "at")
            known = _aware(known_at, "known_at") if known_at is not None else None
            rows = list(self._runner.fold_as_of(TasksView.name, moment, known).values())
        return zone, on if on is not None else moment.astimezone(zone).date(), rows

    def _run_task(
        self, model: type[TC], task_id: UUID | str, fields: Mapping[str, Any],
        action: Callable[[Task, TC], Any],
    ) -> TaskView:
        cmd = validate(model, {**fields, "task_id": task_id})

        def act(task: Task) -> list[Any]:
            others = action(task, cmd)
            return others if isinstance(others, list) else []

        task = self._load_act_save(lambda: self._load_task(cmd.task_id), cmd.expected_version, act)
        return TaskView.model_validate(task.state())

    def _load_task(self, task_id: UUID, *, version: int | None = None) -> Task:
        return self._load_of(Task, task_id, version, TaskNotFound)

    # ------------------------------------------------------------------ segments

    def define_segment(
        self,
        *,
        name: str,
        criteria: Mapping[str, Any],
        actor: str,
        description: str | None = None,
        effective_at: datetime | None = None,
    ) -> UUID:
        """Save criteria over parties as a segment (see :mod:`crmcore.segments` for the language).

        The criteria are checked against the fields in force and the other segments (a segment they refer
        to must exist and not be retired) and stored canonical. Returns the new segment's id.
        """
        who = _name(actor, "actor")
        checked = self._checked_criteria(criteria, None).to_json()
        at = _aware(effective_at, "effective_at") if effective_at is not None else None
        segment = Segment.define(name=name, criteria=checked, description=description, actor=who,
                                 effective_at=at)
        self._save(segment)
        return segment.id

    def change_segment(
        self, segment_id: UUID | str, *, criteria: Mapping[str, Any], actor: str,
        effective_at: datetime | None = None, expected_version: int | None = None,
    ) -> SegmentView:
        """Replace a segment's criteria (checked as :meth:`define_segment` does; a segment may not refer to
        itself, directly or through others). The same criteria record nothing."""
        sid = _id_of(segment_id, "segment_id")
        checked = self._checked_criteria(criteria, sid).to_json()
        return self._run_segment(sid, actor, effective_at, expected_version, lambda segment, who, at:
                                 segment.change_criteria(checked, actor=who, effective_at=at))

    def rename_segment(
        self, segment_id: UUID | str, *, name: str, actor: str, description: str | None = None,
        effective_at: datetime | None = None, expected_version: int | None = None,
    ) -> SegmentView:
        """Change a segment's name and description (its members do not change)."""
        return self._run_segment(_id_of(segment_id, "segment_id"), actor, effective_at, expected_version,
                                 lambda segment, who, at: segment.rename(name=name, description=description,
                                                                         actor=who, effective_at=at))

    def retire_segment(
        self, segment_id: UUID | str, *, reason: str, actor: str, effective_at: datetime | None = None,
        expected_version: int | None = None,
    ) -> SegmentView:
        """Retire a segment: every member leaves it; it can no longer change or be referred to, and its
        history stays readable. Refused while another live segment refers to it."""
        sid = _id_of(segment_id, "segment_id")
        rows = {r["segment_id"]: r for r in self._segment_rows()}
        users = [rows[other]["name"] for other, node in _live_criteria(rows.values()).items()
                 if str(sid) in referenced_segments(node)]
        if users:
            raise IllegalTransition(f"segment {sid} is referred to by {', '.join(sorted(users))}")
        return self._run_segment(sid, actor, effective_at, expected_version, lambda segment, who, at:
                                 segment.retire(reason=reason, actor=who, effective_at=at))

    def get_segment(self, segment_id: UUID | str, *, version: int | None = None) -> SegmentView:
        """A segment as it stands (or stood at ``version``)."""
        segment = self._load_of(Segment, _id_of(segment_id, "segment_id"), version, SegmentNotFound)
        return SegmentView.model_validate(segment.state())

    def segment_timeline(self, segment_id: UUID | str) -> list[TimelineEntry]:
        """Every event of a segment's definition, oldest first."""
        sid = _id_of(segment_id, "segment_id")
        self._load_of(Segment, sid, None, SegmentNotFound)
        return self._timeline_of(sid)

    def segments(self, *, include_retired: bool = False) -> list[SegmentView]:
        """The segments (live ones, or all), by name."""
        rows = [r for r in self._segment_rows() if include_retired or not r["retired"]]
        return sorted((_segment_view(r) for r in rows), key=lambda v: (v.name.casefold(), str(v.id)))

    def segment_members(
        self, segment_id: UUID | str, *, at: datetime | None = None, known_at: datetime | None = None,
    ) -> SegmentMembers:
        """The parties in a segment now, kept up to date by the ``segment_members`` projection, with the
        time each entered and the event that made it enter.

        With ``at`` (and ``known_at``), as it stood then: the parties' facts as of that moment evaluated
        against the criteria the segment had then (:class:`SegmentNotFound` if it was not defined yet).
        A segment whose criteria hold a time window (``last_interaction``) is evaluated afresh at the
        moment asked, as time alone moves parties in and out of it.
        """
        sid = str(_id_of(segment_id, "segment_id"))
        if at is None:
            if known_at is not None:
                raise InvalidInput("known_at needs at: give the effective moment too",
                                   [{"loc": ("known_at",), "msg": "without at", "type": "missing"}])
            definitions = {r["segment_id"]: r for r in self._segment_rows()}
            if sid not in definitions:
                raise SegmentNotFound(UUID(sid))
            self._segments.catch_up()
            kept = self._segments.members(sid)
            criteria = _live_criteria(definitions.values())
            rows: Mapping[str, Mapping[str, Any]]
            if sid in time_relative_segments(criteria):
                rows = self.party_facts()
                now = utc_now()
                hygiene = self._hygiene_flags(criteria, [sid], rows, None, None, now)
                wanted = memberships_of(criteria, rows, now, [sid], hygiene=hygiene).get(sid, set())
            else:
                wanted = set(kept)
                rows = {k[2:]: r for k, r in self._views_storage.load(
                    SegmentMembership.name, [f"f:{p}" for p in wanted]).items()}
            members = [_member(p, rows[p], kept.get(p)) for p in sorted(wanted)]
            return SegmentMembers(segment_id=UUID(sid), at=None, members=members)
        moment = _aware(at, "at")
        known = _aware(known_at, "known_at") if known_at is not None else None
        then = self._runner.fold_as_of(SegmentsView.name, moment, known)
        if sid not in then:
            raise SegmentNotFound(UUID(sid), f"not defined by {moment.isoformat()}")
        facts = self.party_facts(at=moment, known_at=known)
        criteria = _live_criteria(then.values())
        hygiene = self._hygiene_flags(criteria, [sid], facts, moment, known, moment)
        wanted = memberships_of(criteria, facts, moment, [sid], hygiene=hygiene).get(sid, set())
        members = [_member(p, facts[p], None) for p in sorted(wanted)]
        return SegmentMembers(segment_id=UUID(sid), at=moment, known_at=known, members=members)

    def segment_changes(
        self, segment_id: UUID | str, *, since: datetime | None = None, until: datetime | None = None,
    ) -> list[SegmentChange]:
        """Who entered and left a segment, when (effective time) and through which event, in log order;
        from ``since`` (inclusive) to ``until`` (exclusive) when given."""
        sid = _id_of(segment_id, "segment_id")
        if str(sid) not in {r["segment_id"] for r in self._segment_rows()}:
            raise SegmentNotFound(sid)
        start = utc_text(_aware(since, "since")) if since is not None else None
        end = utc_text(_aware(until, "until")) if until is not None else None
        self._segments.catch_up()
        changes = []
        for row in self._segments.changes(str(sid)):
            moment = utc_text(row["at"])
            if (start is None or moment >= start) and (end is None or moment < end):
                changes.append(SegmentChange.model_validate(row))
        return changes

    def evaluate(
        self, criteria: Mapping[str, Any], *, at: datetime | None = None, known_at: datetime | None = None,
    ) -> list[SegmentMember]:
        """The parties meeting unsaved ``criteria`` now (or as of ``at``, ``known_at``): what a screen
        previews before saving a segment. The criteria are checked as :meth:`define_segment` does."""
        checked = self._checked_criteria(criteria, None)
        moment = _aware(at, "at") if at is not None else None
        known = _aware(known_at, "known_at") if known_at is not None else None
        if moment is None:
            definitions = self._segment_rows()
            facts = self.party_facts(known_at=known)
        else:
            definitions = list(self._runner.fold_as_of(SegmentsView.name, moment, known).values())
            facts = self.party_facts(at=moment, known_at=known)
        criteria_by_id = {**_live_criteria(definitions), "": checked}
        now = moment or utc_now()
        hygiene = self._hygiene_flags(criteria_by_id, [""], facts, moment, known, now)
        wanted = memberships_of(criteria_by_id, facts, now, [""], hygiene=hygiene).get("", set())
        return [_member(p, facts[p], None) for p in sorted(wanted)]

    def _checked_criteria(self, criteria: Mapping[str, Any], segment_id: UUID | None) -> Criterion:
        """``criteria`` checked against the fields in force and the live segments, canonical."""
        if not isinstance(criteria, Mapping):
            raise InvalidInput("criteria: give a JSON object",
                               [{"loc": ("criteria",), "msg": "not an object", "type": "dict_type"}])
        node = parse_criteria(criteria, self._current_fields())
        live = _live_criteria(self._segment_rows())
        for other in sorted(referenced_segments(node)):
            if other not in live:
                raise SegmentNotFound(UUID(other), "a segment referred to must exist and not be retired")
        if segment_id is not None:
            mine = str(segment_id)
            reached = referred_closure(live, referenced_segments(node))
            if mine in reached:
                raise InvalidInput(f"criteria: segment {mine} would refer to itself",
                                   [{"loc": ("criteria",), "msg": "refers to itself", "type": "cycle"}])
        return node

    def _segment_rows(self) -> list[Row]:
        self._runner.catch_up(SegmentsView.name)
        return self._views_storage.rows(SegmentsView.name, {})

    def _run_segment(
        self, segment_id: UUID, actor: str, effective_at: datetime | None, expected_version: int | None,
        action: Callable[[Segment, str, datetime | None], Any],
    ) -> SegmentView:
        segment = self._act_on(lambda: self._load_of(Segment, segment_id, None, SegmentNotFound), actor,
                               effective_at, expected_version, action)
        return SegmentView.model_validate(segment.state())
    # ------------------------------------------------------------------ ranking and qualification

    def rank_customers(
        self,
        *,
        at: datetime | None = None,
        known_at: datetime | None = None,
        segment_members: Iterable[UUID | str] | None = None,
        weights: ScoreWeights = DEFAULT_WEIGHTS,
        currency: str | None = None,
        value_field: str | None = None,
        limit: int | None = None,
    ) -> CustomerRanking:
        """Every customer ranked by the targeting score, best first (see docs/scoring.md and
        :mod:`crmcore.policies.ranking`); ``limit``: only the best that many (the 150 of 1,000 to aim at).

        Each customer's recency (last won deal or conversion), frequency (deals won in 730 days), engagement
        (interactions in 365 days) and value are scored at ``at`` (default: now), weighted by ``weights``.
        Value is the won value over 730 days in ``currency`` (default: the currency with the most won value
        among the customers ranked; wins in other currencies do not count), or the number held in
        ``value_field`` (a number custom field or profile trait; missing: 0) as a percentile among them.
        ``segment_members`` (party ids) restricts the ranking to those parties. With ``at`` (and
        ``known_at``), the facts stand as they did then, as :meth:`party_facts`.
        """
        if not isinstance(weights, ScoreWeights):
            raise InvalidInput("weights: give ScoreWeights",
                               [{"loc": ("weights",), "msg": "not ScoreWeights", "type": "is_instance_of"}])
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidInput("limit: give a whole number, 0 or more",
                               [{"loc": ("limit",), "msg": "not a non-negative int", "type": "int"}])
        if currency is not None and value_field is not None:
            raise InvalidInput("give currency or value_field, not both: value reads one of them",
                               [{"loc": ("currency",), "msg": "with value_field", "type": "value_error"}])
        code = _currency_code(currency) if currency is not None else None
        definition = self._value_field(value_field) if value_field is not None else None
        members = _members(segment_members) if segment_members is not None else None
        moment = _aware(at, "at") if at is not None else None
        now = moment or utc_now()
        facts = self.party_facts(at=moment, known_at=known_at)
        return ranking.rank_customers(
            facts, now=now, weights=weights, at=moment, known_at=known_at, members=members,
            currency=code, value_field=definition, limit=limit,
        )

    def assess_lead(
        self, party_id: UUID | str, *, policy: QualificationPolicy | None = None, at: datetime | None = None,
    ) -> LeadAssessment:
        """Assess a party under a qualification policy (default: the CRM's ``qualification_policy``):
        the recommendation (qualify, review, disqualify), the score and each rule's outcome. Nothing is
        stored.

        A party merged into another is assessed through its survivor (whose facts hold its own). Now by
        default, from the party as loaded; with ``at``, from its facts as they stood then. The policy must
        read fields the installation defines (:class:`FieldNotDefined` otherwise; see
        :meth:`adopt_qualification_fields`).
        """
        chosen = self._policy_for(policy, True)
        assert chosen is not None
        if at is None:
            party = self._load(self.resolve(party_id))
            facts = self._lead_facts(party)
            assessment = chosen.assess(facts, Context(now=utc_now()))
            return leads.lead_assessment(str(party.id), party.stage.value, assessment, None)
        moment = _aware(at, "at")
        wanted = str(_uuid(party_id))
        folded = self._runner.fold_together_as_of(
            [PartyFactsView.name, PipelineView.name, AddressDecisionsView.name], moment)
        rows = folded[PartyFactsView.name]
        current = survivor_of(wanted, rows.get)
        found = facts_of(rows.values(), folded[PipelineView.name].values(),
                         suppressed_by_key(folded[AddressDecisionsView.name].values()))
        if current not in found:
            raise PartyNotFound(_uuid(party_id), f"not registered at {moment.isoformat()}")
        lead = found[current]
        return leads.lead_assessment(current, lead["stage"], chosen.assess(lead, Context(now=moment)), moment)

    def adopt_qualification_fields(self, *, actor: str, effective_at: datetime | None = None) -> FieldSet:
        """Define the fields :data:`~crmcore.policies.qualification.DEFAULT_QUALIFICATION` reads
        (:data:`~crmcore.policies.qualification.QUALIFICATION_FIELDS`: industry, budget, decision role,
        need, timeframe) in one change. Returns the catalog after it."""
        cmds = [validate(DefineField, {"definition": d, "actor": actor, "effective_at": effective_at})
                for d in QUALIFICATION_FIELDS]

        def define_all(catalog: FieldCatalog) -> None:
            for cmd in cmds:
                catalog.define(cmd.definition, actor=cmd.actor, effective_at=cmd.effective_at)

        self._change_catalog(cmds[0].actor, define_all)
        return self.field_catalog()

    def _policy_for(self, policy: QualificationPolicy | None, used: bool) -> QualificationPolicy | None:
        """The policy a command or read uses — ``policy``, else the CRM's when ``used`` — checked against
        the fields in force; None when none is used."""
        if policy is None and not used:
            return None
        return leads.checked_policy(policy if policy is not None else self.qualification_policy,
                                    self._current_fields())

    def _lead_facts(self, party: Party) -> Facts:
        """The facts a policy reads about a loaded party: its state over its views' facts (its row and the
        opportunities of the parties merged into it, caught up)."""
        self._runner.catch_up(PartyFactsView.name)
        self._runner.catch_up(PipelineView.name)
        merged = self.merged_parties(party.id) if party.merged_from else []
        rows = self._views_storage.load(PartyFactsView.name, [str(p) for p in (party.id, *merged)])
        opportunities = [
            o for i in rows for o in self._views_storage.rows(PipelineView.name, {"party_id": i})
        ]
        self._runner.catch_up(AddressDecisionsView.name)
        keys = {k for row in rows.values() for k in primary_address_keys(row)}
        decided = self._views_storage.load(AddressDecisionsView.name,
                                           [str(address_status_id(k)) for k in keys])
        return leads.lead_facts(party, facts_of(rows.values(), opportunities,
                                                suppressed_by_key(decided.values())).get(str(party.id)))

    def _value_field(self, name: Any) -> FieldDefinition:
        """The number field (custom or profile) ``name`` names in the catalog in force."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("value_field: give a field name",
                               [{"loc": ("value_field",), "msg": "not a name", "type": "string_type"}])
        definition = self._current_fields().get(name.strip())
        if definition is None:
            raise FieldNotDefined(name.strip(), "value_field must name a number field")
        if definition.kind is not FieldKind.NUMBER:
            raise InvalidInput(
                f"value_field: {definition.name!r} is a {definition.kind.value} field, not a number field",
                [{"loc": ("value_field",), "msg": "not a number field", "type": "field_kind"}],
            )
        return definition
    # ------------------------------------------------------------------ predictive lead scoring

    def train_scoring(
        self, *, variables: Sequence[str], actor: str, until: datetime | date | None = None,
    ) -> ScoringModel:
        """Train a predictive scoring model on the deals decided (won or lost) before ``until`` (default:
        all of them), keep it as the next version and return it (see :mod:`crmcore.policies.scoring`).

        ``variables`` are built-ins (``channel``, ``kind``, ``owner``) or active custom fields and profile
        traits of choice, multi-choice, label, boolean or number kind. Each deal teaches with its party's
        facts as they stood when it was decided, never today's (:mod:`crmcore.projections.scoring`).
        Refused with :class:`InvalidInput` when there is no won or no lost deal, with
        :class:`FieldNotDefined` for an unknown variable; nothing is stored then.
        """
        name = _name(actor, "actor")
        moment = None if until is None else _until(until, UTC)
        chosen = scoring.scoring_variables(variables, self._current_fields())
        if moment is None:
            self._runner.catch_up(PipelineView.name)
            rows = self._views_storage.rows(PipelineView.name, {})
        else:
            rows = list(self._runner.fold_at(PipelineView.name, [moment])[0].values())
        decisions = decisions_in(rows)
        moments, folds = facts_at(self._runner, self._views_storage, decisions)
        samples = training_samples(decisions, moments, folds)
        model = scoring.train(samples, chosen, version=1, trained_at=utc_now(), trained_on_until=moment,
                              actor=name)
        for attempt in range(self.conflict_retries + 1):
            models = self._scoring_models(or_new=name)
            model = model.model_copy(update={"version": models.next_version})
            models.record(model)
            try:
                self._save(models)
            except ConcurrentUpdateError:
                if attempt == self.conflict_retries:
                    raise ConcurrentUpdateError(None, "another model was trained meanwhile") from None
                _back_off(attempt)
                continue
            return model
        raise AssertionError("unreachable")  # pragma: no cover

    def scoring_model(self, version: int | None = None) -> ScoringModel:
        """Scoring model ``version`` as it was trained (default: the latest); :class:`ScoringModelNotFound`
        when there is none."""
        return self._scoring_models().model(version)

    def score_leads(
        self,
        *,
        model_version: int | None = None,
        at: datetime | None = None,
        stages: Sequence[Stage | str] = ("lead",),
        record: bool = False,
        actor: str | None = None,
    ) -> list[LeadScore]:
        """Score the parties in ``stages`` (default: leads; not merged away, not set aside) with scoring
        model ``model_version`` (default: the latest), best first (then by id), each with its reasons.

        Their facts now, or as they stood at ``at``. With ``record``, each score is also recorded on its
        party as ``Party.Scored`` (effective at ``at``, default now; by ``actor``, then required), all in
        one transaction.
        """
        model = self.scoring_model(model_version)
        chosen = _scoring_stages(stages, "stages")
        name = _name(actor, "actor") if record or actor is not None else ""
        if at is None:
            self._runner.catch_up(PartyFactsView.name)
            rows = self._views_storage.rows(PartyFactsView.name, {})
        else:
            rows = list(self._runner.fold_as_of(PartyFactsView.name, _aware(at, "at")).values())
        scores = []
        for lead in leads_in({str(r["party_id"]): r for r in rows}, chosen):
            score, reasons = model.score(lead)
            scores.append(LeadScore(party_id=lead["party_id"], name=lead["name"], stage=lead["stage"],
                                    score=score, model_version=model.version, reasons=reasons))
        scores.sort(key=lambda s: (-s.score, str(s.party_id)))
        if record and scores:
            self._record_scores(scores, name, at)
        return scores

    def _record_scores(self, scores: Sequence[LeadScore], actor: str, at: datetime | None) -> None:
        """Record ``Party.Scored`` on every scored party in one save; re-run on a collision."""
        for attempt in range(self.conflict_retries + 1):
            parties = []
            for score in scores:
                party = self._load(score.party_id)
                party.record_score(model_version=score.model_version, score=score.score, actor=actor,
                                   effective_at=at)
                parties.append(party)
            try:
                self._save(*parties)
            except ConcurrentUpdateError:
                if attempt == self.conflict_retries:
                    raise
                _back_off(attempt)
                continue
            return

    def scoring_backtest(
        self,
        *,
        variables: Sequence[str],
        cutoffs: Sequence[datetime | date] | None = None,
        periods: int = 4,
        every: str = "quarter",
        until: datetime | date | None = None,
        timezone: str | tzinfo = "UTC",
        horizon_days: int | None = None,
        stages: Sequence[Stage | str] = ("lead", "prospect", "target"),
    ) -> ScoringBacktest:
        """Replay predictive scoring at past cut-offs and measure how well it ranked the leads that then
        converted (see :mod:`crmcore.projections.scoring`): AUC, base and top-decile conversion rates, lift.

        Cut-offs are ``cutoffs`` (timezone-aware date-times, or dates: their midnight in ``timezone``), or
        the starts of the last ``periods`` whole months or quarters (``every``) before the one holding
        ``until`` (default: now). At each, a model is trained on the deals decided before it and scores the
        parties then in ``stages`` (default: not yet customers - lead, prospect, target) as they stood then;
        a lead converted if it became a customer or won a deal after the cut-off, within ``horizon_days``
        when given, before ``until`` in any case. Nothing is stored; the log is read twice (once for the
        deals, once for the parties), whatever the number of cut-offs.
        """
        chosen = scoring.scoring_variables(variables, self._current_fields())
        zone = _zone(timezone)
        end = _until(until, zone)
        in_stages = _scoring_stages(stages, "stages")
        if horizon_days is not None and (isinstance(horizon_days, bool) or not isinstance(horizon_days, int)
                                         or not 1 <= horizon_days <= 36500):
            raise InvalidInput("horizon_days: give a whole number of days from 1 to 36500, or None",
                               [{"loc": ("horizon_days",), "msg": "out of range", "type": "int_range"}])
        if cutoffs is None:
            if isinstance(periods, bool) or not isinstance(periods, int) or not 1 <= periods <= 120:
                raise InvalidInput("periods: give a whole number from 1 to 120",
                                   [{"loc": ("periods",), "msg": "out of range", "type": "int_range"}])
            if every not in EVERY:
                raise InvalidInput(f"every: one of {', '.join(EVERY)}, got {every!r}",
                                   [{"loc": ("every",), "msg": "unknown period", "type": "literal_error"}])
            moments = period_boundaries(every, periods, end, zone)[:-1]
            labels = [cutoff_label(every, m) for m in moments]
        else:
            moments = _cutoffs(cutoffs, zone, end)
            labels = [cutoff_label(None, m) for m in moments]
        window_ends = [min(m + timedelta(days=horizon_days), end) if horizon_days else end for m in moments]
        pipelines = self._runner.fold_at(PipelineView.name, [*moments, end])
        decisions = sorted({d for fold in pipelines[:-1] for d in decisions_in(fold.values())},
                           key=lambda d: (d.closed_at, d.party_id, not d.won))
        fact_moments, folds = facts_at(self._runner, self._views_storage, decisions, [*moments, end])
        return scoring_backtest_of(
            variables=chosen, cutoffs=moments, labels=labels, window_ends=window_ends,
            pipelines_at=pipelines[:-1], leads_at=[folds[utc_text(m)] for m in moments],
            moments=fact_moments, folds=folds, final_facts=folds[utc_text(end)], final_pipeline=pipelines[-1],
            stages=in_stages, horizon_days=horizon_days, until=end, timezone=_zone_name(timezone),
        )

    def _scoring_models(self, *, or_new: str | None = None) -> ScoringModels:
        """The store's scoring models; started afresh (by ``or_new``) when none was trained yet, else
        :class:`ScoringModelNotFound`."""
        try:
            models: Any = self._app.repository.get(SCORING_MODELS_ID)
        except AggregateNotFoundError:
            if or_new is None:
                raise ScoringModelNotFound(None, 0) from None
            return ScoringModels.start(actor=or_new)
        return cast(ScoringModels, models)

    # ------------------------------------------------------------------ campaigns

    def plan_campaign(
        self,
        *,
        name: str,
        channels: Sequence[CampaignChannel | str],
        segment_id: UUID | str,
        budget: Money | Mapping[str, Any],
        actor: str,
        description: str | None = None,
        include_inactive: bool = False,
        exclude_open_negotiations: bool = True,
        effective_at: datetime | None = None,
    ) -> UUID:
        """Draft a campaign over ``channels`` (``newsletter``, ``telemarketing``, or both in the order they
        run) to the members of a live segment, with a ``budget`` (:class:`Money`, or a mapping with
        ``amount`` and ``currency``).

        ``include_inactive`` lets the newsletter reach parties the engagement policy finds inactive;
        ``exclude_open_negotiations`` (default) leaves out parties in the middle of an open opportunity.
        Returns the campaign's id. See ``docs/campaigns.md``.
        """
        who = _name(actor, "actor")
        sid = self._live_segment(segment_id)
        at = _aware(effective_at, "effective_at") if effective_at is not None else None
        campaign = Campaign.draft(
            name=name, channels=channels, segment_id=sid, budget=_money(budget, "budget"), actor=who,
            description=description, include_inactive=_flag(include_inactive, "include_inactive"),
            exclude_open_negotiations=_flag(exclude_open_negotiations, "exclude_open_negotiations"),
            effective_at=at,
        )
        self._save(campaign)
        return campaign.id

    def revise_campaign(
        self, campaign_id: UUID | str, *, actor: str, effective_at: datetime | None = None,
        expected_version: int | None = None, **changes: Any,
    ) -> CampaignView:
        """Change a draft or scheduled campaign's settings (those :meth:`plan_campaign` takes); the same
        values record nothing."""
        if "segment_id" in changes:
            changes["segment_id"] = self._live_segment(changes["segment_id"])
        if "budget" in changes:
            changes["budget"] = _money(changes["budget"], "budget")
        return self._run_campaign(campaign_id, actor, effective_at, expected_version,
                                  lambda c, who, at: c.revise(actor=who, effective_at=at, **changes))

    def schedule_campaign(
        self, campaign_id: UUID | str, *, start_at: datetime, actor: str,
        effective_at: datetime | None = None, expected_version: int | None = None,
    ) -> CampaignView:
        """Schedule a draft to start at ``start_at``."""
        start = _aware(start_at, "start_at")
        return self._run_campaign(campaign_id, actor, effective_at, expected_version,
                                  lambda c, who, at: c.schedule(start_at=start, actor=who, effective_at=at))

    def launch_campaign(
        self, campaign_id: UUID | str, *, actor: str, policy: AudiencePolicy | None = None,
        effective_at: datetime | None = None, expected_version: int | None = None,
    ) -> CampaignAudience:
        """Start a scheduled campaign: its audience is frozen now (or at ``effective_at``, read as of then).

        The segment's members are checked per channel by the audience policy (``policy``, default
        :data:`~crmcore.policies.audience.DEFAULT_AUDIENCE`): consent, address, suppression, engagement,
        open negotiations, duplicates; every exclusion is recorded with its reason. Returns the audience.
        """
        rules = policy if policy is not None else DEFAULT_AUDIENCE
        if not isinstance(rules, AudiencePolicy):
            raise InvalidInput("policy: give an AudiencePolicy",
                               [{"loc": ("policy",), "msg": "not an AudiencePolicy",
                                 "type": "is_instance_of"}])
        cid = _id_of(campaign_id, "campaign_id")
        moment = _aware(effective_at, "effective_at") if effective_at is not None else None
        campaign = self._load_campaign(cid)
        if campaign.status is not CampaignStatus.SCHEDULED:
            raise IllegalTransition(f"cannot launch campaign {cid}: it is {campaign.status.value}")
        audience_at = moment or utc_now()
        audience = self._audience(campaign, rules, moment)

        def launch(c: Campaign, who: str, at: datetime | None) -> None:
            c.launch(audience_at=audience_at, recipients=audience.recipients, exclusions=audience.exclusions,
                     policy=rules.record(), actor=who, effective_at=at or audience_at)

        self._run_campaign(cid, actor, moment, expected_version, launch)
        return self.campaign_audience(cid)

    def send_campaign(
        self, campaign_id: UUID | str, *, actor: str, effective_at: datetime | None = None,
    ) -> SendWave:
        """Release the next newsletter wave: every recipient not yet sent, re-checked at this moment.

        A recipient unsubscribed from the newsletter or whose address was suppressed since launch is held
        back (``skipped``, with the reason) and never sent; the rest are recorded as sent and returned for
        the mail tool. Sending to an unsubscribed party or a suppressed address is impossible through here.
        """
        cid = _id_of(campaign_id, "campaign_id")
        moment = _aware(effective_at, "effective_at") if effective_at is not None else None
        released: list[Any] = []

        def send(c: Campaign, who: str, at: datetime | None) -> None:
            if c.status is not CampaignStatus.RUNNING:
                raise IllegalTransition(f"cannot send campaign {cid}: it is {c.status.value}")
            if CampaignChannel.NEWSLETTER.value not in c.channels:
                raise IllegalTransition(f"campaign {cid} has no newsletter to send")
            now = at or utc_now()
            audience = c.recipients[CampaignChannel.NEWSLETTER.value]
            pending = {p: a for p, a in audience.items() if p not in c.sent}
            blocked = self._send_blocks(pending, now, now=at is None)
            chosen = [(p, a) for p, a in sorted(pending.items()) if p not in blocked]
            skipped = [(p, blocked[p]) for p in sorted(blocked)]
            wave = c.send(recipients=chosen, skipped=skipped, actor=who, effective_at=now)
            released[:] = [wave, chosen, skipped]

        self._run_campaign(cid, actor, moment, None, send)
        wave, chosen, skipped = released
        return SendWave(campaign_id=cid, wave=wave,
                        recipients=[Recipient(party_id=UUID(p), address=a) for p, a in chosen],
                        skipped=[(UUID(p), r) for p, r in skipped])

    def record_campaign_cost(
        self, campaign_id: UUID | str, *, amount: Money | Mapping[str, Any], actor: str,
        note: str | None = None, effective_at: datetime | None = None,
    ) -> CampaignView:
        """Add a cost to a campaign (in its budget's currency); costs add up, and ROI is read against them."""
        money = _money(amount, "amount")
        return self._run_campaign(campaign_id, actor, effective_at, None, lambda c, who, at: c.record_cost(
            amount=money, note=note, actor=who, effective_at=at))

    def complete_campaign(
        self, campaign_id: UUID | str, *, actor: str, effective_at: datetime | None = None,
        expected_version: int | None = None,
    ) -> CampaignView:
        """Close a running campaign (its results stay readable; late reports about it are still ingested)."""
        return self._run_campaign(campaign_id, actor, effective_at, expected_version,
                                  lambda c, who, at: c.complete(actor=who, effective_at=at))

    def cancel_campaign(
        self, campaign_id: UUID | str, *, reason: str, actor: str, effective_at: datetime | None = None,
        expected_version: int | None = None,
    ) -> CampaignView:
        """Cancel a draft, scheduled or running campaign, saying why."""
        return self._run_campaign(campaign_id, actor, effective_at, expected_version,
                                  lambda c, who, at: c.cancel(reason=reason, actor=who, effective_at=at))

    def get_campaign(self, campaign_id: UUID | str, *, version: int | None = None) -> CampaignView:
        """A campaign as it stands (or stood at ``version``)."""
        return _campaign_view(self._load_campaign(_id_of(campaign_id, "campaign_id"), version=version))

    def campaign_timeline(self, campaign_id: UUID | str) -> list[TimelineEntry]:
        """Every event of a campaign, oldest first, with who did it, when, and what it changed."""
        cid = _id_of(campaign_id, "campaign_id")
        self._load_campaign(cid)
        return self._timeline_of(cid)

    def campaign_audience(self, campaign_id: UUID | str) -> CampaignAudience:
        """The audience frozen at launch: recipients per channel and every exclusion with its reason."""
        cid = _id_of(campaign_id, "campaign_id")
        campaign = self._load_campaign(cid)
        if campaign.audience_at is None:
            raise IllegalTransition(f"campaign {cid} has not been launched: it has no audience yet")
        return CampaignAudience(
            campaign_id=cid, audience_at=campaign.audience_at,
            policy=dict(campaign.launch_policy),
            recipients={c: [Recipient(party_id=UUID(p), address=a) for p, a in sorted(r.items())]
                        for c, r in campaign.recipients.items()},
            exclusions=[Exclusion(party_id=UUID(p), channel=CampaignChannel(c), reason=ExclusionReason(r),
                                  detail=d) for p, c, r, d in campaign.exclusions],
        )

    def assign_operators(
        self, campaign_id: UUID | str, *, actor: str, add: Sequence[str] = (), remove: Sequence[str] = (),
        effective_at: datetime | None = None,
    ) -> list[CallListEntry]:
        """Operators join (``add``) or leave (``remove``) a running telemarketing campaign; the call list's
        open entries are rebalanced so that operators' open counts differ by at most one, with the fewest
        moves (:mod:`crmcore.policies.calllist`). Returns the call list."""
        cid = _id_of(campaign_id, "campaign_id")
        joining, leaving = _operators(add, "add"), _operators(remove, "remove")

        def change(c: Campaign, who: str, at: datetime | None) -> None:
            unknown = [o for o in leaving if o not in c.operators]
            if unknown:
                raise InvalidInput(f"remove: {', '.join(unknown)} not an operator of the campaign",
                                   [{"loc": ("remove",), "msg": "not an operator", "type": "value_error"}])
            added = [o for o in joining if o not in c.operators and o not in leaving]
            staff = [o for o in c.operators if o not in leaving] + added
            calls = c.recipients.get(CampaignChannel.TELEMARKETING.value, {})
            rows = self._campaign_recipient_rows(cid, calls)
            open_entries = [p for p in calls if _call_open(rows.get(p))]
            moves = calllist.rebalance(c.assigned, open_entries, staff)
            c.change_operators(added=added, removed=leaving, moves=moves, actor=who, effective_at=at)

        self._run_campaign(cid, actor, effective_at, None, change)
        return self.call_list(cid)

    def call_list(self, campaign_id: UUID | str, *, operator: str | None = None) -> list[CallListEntry]:
        """A telemarketing campaign's call list (of ``operator``, if given): open entries first (those with a
        call-back date in date order), then closed ones; each with its operator, calls and last outcome."""
        cid = _id_of(campaign_id, "campaign_id")
        campaign = self._load_campaign(cid)
        calls = campaign.recipients.get(CampaignChannel.TELEMARKETING.value, {})
        rows = self._campaign_recipient_rows(cid, calls)
        entries = []
        for party_id, phone in calls.items():
            owner = campaign.assigned.get(party_id)
            if operator is not None and owner != operator:
                continue
            row = rows.get(party_id) or {}
            last = row.get("last_call")
            entries.append(CallListEntry(
                party_id=UUID(party_id), phone=phone, operator=owner, open=_call_open(row),
                calls=sum((row.get("call_outcomes") or {}).values()),
                last_outcome=CallOutcome(last[2]) if last else None,
                last_called_at=datetime.fromisoformat(last[0]) if last else None,
                call_back_on=_call_back_on(row),
            ))
        return sorted(entries, key=lambda e: (not e.open, e.call_back_on or date.max, str(e.party_id)))

    def record_call(
        self,
        campaign_id: UUID | str,
        party_id: UUID | str,
        *,
        operator: str,
        outcome: CallOutcome | str,
        actor: str,
        notes: str | None = None,
        call_back_on: date | str | None = None,
        external_id: str | None = None,
        effective_at: datetime | None = None,
        opportunity: Mapping[str, Any] | None = None,
    ) -> CallRecord:
        """Record a telemarketing call to a party on the campaign's call list.

        Refused with :class:`ContactRefused` (nothing stored) when the party may not be called at that
        moment (unsubscribed from phone, no consent, suppressed number). ``call_back`` needs
        ``call_back_on``. With ``outcome="interested"``, ``opportunity`` (``title``, ``value``,
        ``expected_close``, ``owner``, optional ``currency``, ``pipeline``, ``stage``) opens an opportunity
        linked to the campaign, saved in the same transaction as the call (the party must be a prospect,
        target or customer). ``external_id`` (default: a new one) makes a repeated report change nothing.
        """
        cid = _id_of(campaign_id, "campaign_id")
        who = _name(actor, "actor")
        at = _aware(effective_at, "effective_at") if effective_at is not None else utc_now()
        event = {"external_id": external_id or f"call-{new_uuid7()}", "campaign_id": cid,
                 "party_id": party_id, "kind": EngagementKind.CALLED, "occurred_at": at, "operator": operator,
                 "outcome": outcome, "notes": notes, "call_back_on": call_back_on}
        try:
            [report] = ingestion.resolve_events([event], self._campaign_or_none, source=CALL_SOURCE,
                                                actor=who)
        except InvalidInput as error:  # one event: name its fields, not its index
            errors = [{**e, "loc": tuple(e["loc"])[1:]} for e in error.errors]
            raise InvalidInput(str(error).replace("event 0: ", ""), errors) from None
        pid = _id_of(report.facts["party_id"], "party_id")
        decision = self.may_contact(self.resolve(pid), ConsentChannel.PHONE, at,
                                    address=report.facts.get("address"))
        if not decision.allowed:
            raise ContactRefused(pid, decision.reason)
        others: list[Opportunity] = []
        if opportunity is not None:
            if report.facts["outcome"] != CallOutcome.INTERESTED.value:
                raise InvalidInput("opportunity: only an interested call opens one",
                                   [{"loc": ("opportunity",), "msg": "outcome not interested",
                                     "type": "value_error"}])
            if not isinstance(opportunity, Mapping):
                raise InvalidInput("opportunity: give the opportunity's fields",
                                   [{"loc": ("opportunity",), "msg": "not a mapping", "type": "dict_type"}])
            others.append(self._new_opportunity({**opportunity, "party_id": self.resolve(pid),
                                                 "campaign_id": cid, "actor": who, "effective_at": at}))
            report = dataclasses.replace(report, facts={**report.facts, "opportunity_id": others[0].id})
        stored = self._store_reports([report.aggregate()], *others)
        return CallRecord(campaign_id=cid, party_id=pid, external_id=str(event["external_id"]),
                          outcome=CallOutcome(report.facts["outcome"]), recorded=bool(stored),
                          opportunity_id=others[0].id if stored and others else None)

    def _campaign_recipient_rows(self, campaign_id: UUID, parties: Iterable[str]) -> dict[str, Row]:
        """The ``campaign_recipients`` rows of ``parties`` in a campaign, by party id text."""
        self._runner.catch_up(CampaignRecipientsView.name)
        prefix = f"{campaign_id}:"
        loaded = self._views_storage.load(CampaignRecipientsView.name, [prefix + p for p in parties])
        return {key[len(prefix):]: row for key, row in loaded.items()}

    def _audience(self, campaign: Campaign, rules: AudiencePolicy, at: datetime | None) -> Audience:
        """Compute a campaign's audience from its segment's members at ``at`` (None: now)."""
        members = {str(m) for m in self.segment_members(campaign.segment_id, at=at).ids}
        facts = self.party_facts(at=at) if at is not None else self.party_facts()
        candidates = [_candidate(facts[p]) for p in sorted(members) if p in facts]
        keys = [address_key(CampaignChannel(channel), address)
                for candidate in candidates for channel in campaign.channels
                if (address := candidate.address(CampaignChannel(channel)))]
        duplicates: list[tuple[str, str, float]] = []
        if rules.check_duplicates and len(candidates) > 1:
            records = [r for r in self._identity_records() if r.id in members]
            detector = _detector(rules.duplicate_threshold).fitted(records)
            duplicates = [(c.a, c.b, c.score) for c in detector.find(records)]
        return select_audience(
            candidates, campaign.channels,
            suppressed=self._suppressed(keys, at),
            inactive=self._inactive([c.party_id for c in candidates], at),
            duplicates=duplicates, include_inactive=campaign.include_inactive,
            exclude_open_negotiations=campaign.exclude_open_negotiations,
        )

    def _send_blocks(self, pending: Mapping[str, str], at: datetime, *, now: bool) -> dict[str, str]:
        """Which of ``pending`` (party id -> address) may not be sent the newsletter at ``at``, and why.

        Consent is read from the parties' facts in one read (as of ``at`` when the send is back-dated,
        ``now`` False), suppression from the recorded decisions; a recipient merged away since launch is
        judged by its survivor's consent."""
        facts = self.party_facts() if now else self.party_facts(at=at)
        keyed = {p: address_key(CampaignChannel.NEWSLETTER, a) for p, a in pending.items()}
        suppressed = self._suppressed(list(keyed.values()), at)
        blocked: dict[str, str] = {}
        for party_id in sorted(pending):
            row = facts.get(party_id) or facts.get(str(self.resolve(party_id))) or {}
            if (row.get("consent") or {}).get(ConsentChannel.NEWSLETTER.value) != "subscribed":
                blocked[party_id] = ExclusionReason.UNSUBSCRIBED.value
            elif keyed[party_id] in suppressed:
                blocked[party_id] = ExclusionReason.SUPPRESSED.value
        return blocked

    def _live_segment(self, segment_id: Any) -> UUID:
        sid = _id_of(segment_id, "segment_id")
        segment = self._load_of(Segment, sid, None, SegmentNotFound)
        if segment.retired:
            raise IllegalTransition(f"segment {sid} is retired: a campaign needs a live segment")
        return sid

    def _load_campaign(self, campaign_id: UUID, *, version: int | None = None) -> Campaign:
        return self._load_of(Campaign, campaign_id, version, CampaignNotFound)

    def _run_campaign(
        self, campaign_id: UUID | str, actor: str, effective_at: datetime | None,
        expected_version: int | None, action: Callable[[Campaign, str, datetime | None], Any],
    ) -> CampaignView:
        cid = _id_of(campaign_id, "campaign_id")
        campaign = self._act_on(lambda: self._load_campaign(cid), actor, effective_at, expected_version,
                                action)
        return _campaign_view(campaign)

    # ------------------------------------------------------------------ campaign results

    def campaign_results(
        self,
        campaign_id: UUID | str,
        *,
        at: datetime | None = None,
        known_at: datetime | None = None,
        attribution_window_days: int = 90,
    ) -> CampaignResults:
        """A campaign's results, redemption and return (design 05 § 4; see :class:`CampaignResults` and
        :mod:`crmcore.projections.campaign_results` for every definition).

        Now by default. With ``at`` (timezone-aware), as it stood then: the campaign's acts, the engagement
        reports and the opportunities effective by then; with ``known_at`` as well, only those recorded by
        then (``known_at`` alone: as it stood and was known at that moment). Opportunities are credited by
        first-touch and last-touch attribution over the touches in the ``attribution_window_days`` (1 to
        3650) before each opened. :class:`CampaignNotFound` when there is no such campaign (or it was not
        drafted by ``at``).
        """
        cid = _id_of(campaign_id, "campaign")
        window = _attribution_window(attribution_window_days)
        moment, known = _results_moment(at, known_at)
        campaign = self._campaign_as_of(cid, moment, known)
        inputs = self._campaign_reader.inputs([str(cid)], moment, known)
        return inputs.results(campaign, window, moment, known)

    def campaign_results_over(
        self,
        since: datetime,
        until: datetime,
        *,
        at: datetime | None = None,
        known_at: datetime | None = None,
        attribution_window_days: int = 90,
    ) -> CampaignPeriodResults:
        """The results of every campaign launched in [``since``, ``until``) (aware moments), each and summed
        (:class:`CampaignPeriodResults`), in launch order; ``at``, ``known_at`` and the window as in
        :meth:`campaign_results`."""
        start, end = _aware(since, "since"), _aware(until, "until")
        if end <= start:
            raise InvalidInput("until: give a moment after since",
                               [{"loc": ("until",), "msg": "not after since", "type": "range"}])
        window = _attribution_window(attribution_window_days)
        moment, known = _results_moment(at, known_at)
        if moment is None:
            self._runner.catch_up(CampaignsView.name)
            rows = self._views_storage.rows(CampaignsView.name, {})
        else:
            rows = list(self._runner.fold_as_of(CampaignsView.name, moment, known).values())
        first, last = utc_text(start), utc_text(end)
        chosen = sorted((r["launched_at"], r["campaign_id"]) for r in rows
                        if r["launched_at"] is not None and first <= r["launched_at"] < last)
        inputs = self._campaign_reader.inputs([c for _, c in chosen], moment, known)
        results = [inputs.results(self._campaign_as_of(UUID(c), moment, known), window, moment, known)
                   for _, c in chosen]
        return CampaignPeriodResults(
            since=start, until=end, at=moment, known_at=known, attribution_window_days=window.days,
            campaigns=results, totals=campaign_totals_of(results),
        )

    def inactive_parties(
        self,
        *,
        at: datetime | None = None,
        known_at: datetime | None = None,
        policy: EngagementPolicy | None = None,
    ) -> set[UUID]:
        """The parties inactive now (or at ``at``, as known at ``known_at``) under ``policy`` (default: the
        CRM's engagement policy): mailed ``inactive_after_days`` ago or more and no open or click since (see
        :mod:`crmcore.policies.engagement`). A party's engagement includes that of parties merged into it;
        parties merged away are not listed."""
        moment, known = _results_moment(at, known_at)
        return {UUID(p) for p in self._inactive(None, moment, known_at=known, policy=policy)}

    def _inactive(
        self,
        party_ids: Iterable[str] | None,
        at: datetime | None = None,
        *,
        known_at: datetime | None = None,
        policy: EngagementPolicy | None = None,
    ) -> set[str]:
        """Which of ``party_ids`` (id text; None: every party standing) are inactive at ``at`` (None: now),
        from the engagement effective by then (recorded by ``known_at``)."""
        chosen = self.engagement_policy if policy is None else policy
        if not isinstance(chosen, EngagementPolicy):
            raise InvalidInput("policy: give an EngagementPolicy", [
                {"loc": ("policy",), "msg": "not an EngagementPolicy", "type": "is_instance_of"}])
        rows = self._campaign_reader.engagement(party_ids, at, known_at)
        moment = utc_now() if at is None else at
        return {p for p, row in rows.items() if is_inactive(row, moment, chosen)}

    def _campaign_as_of(self, campaign_id: UUID, at: datetime | None, known_at: datetime | None) -> Campaign:
        """The campaign as it stood at ``at`` as known at ``known_at`` (None: now)."""
        if at is None and known_at is None:
            return self._load_of(Campaign, campaign_id, None, CampaignNotFound)
        events = list(self._app.events.get(campaign_id))
        if not events or not isinstance(events[0], Campaign.Drafted):
            raise CampaignNotFound(campaign_id)
        campaign = campaign_as_of(events, at, known_at)
        if campaign is None:
            moment = at or known_at
            assert moment is not None
            raise CampaignNotFound(campaign_id, f"not drafted by {moment.isoformat()}")
        return campaign
    # ------------------------------------------------------------------ campaign engagement: ingestion and policies  # noqa: E501

    def ingest(
        self,
        events: Iterable[Mapping[str, Any] | ingestion.ProviderEvent],
        *,
        source: str,
        actor: str,
        batch_size: int = 5000,
    ) -> IngestReport:
        """Record what a mail tool or telephone system reported about campaigns' recipients, idempotently.

        Each event (:class:`~crmcore.ingest.ProviderEvent` fields, as mappings or models) becomes one
        ``Engagement`` fact whose id derives from ``source`` and its ``external_id``: events already stored,
        or repeated in the call, are skipped and counted as duplicates, also when another process ingests
        them at the same moment. Every event is validated and resolved against its campaign's send list
        (or call list) first: a bad one raises :class:`InvalidInput` naming each bad event's index and
        field, and nothing is stored. Events are then written ``batch_size`` per transaction, and the
        engagement policy process runs (:meth:`run_policies`: suppressions, unsubscriptions).
        """
        source, actor, batch_size = ingestion.check_options(source, actor, batch_size)
        given = events if isinstance(events, Sequence) else list(events)
        with _bulk._gc_paused():
            resolved = ingestion.resolve_events(given, self._campaign_or_none, source=source, actor=actor)
            written = ingestion.write_reports(self._app.recorder, self._app.mapper, resolved, batch_size,
                                              self._tell_bulk if self._listeners else None)
        self.run_policies()
        return IngestReport(received=len(given), stored=written.stored, duplicates=written.duplicates,
                            positions=written.positions)

    def _store_reports(self, reports: Sequence[Engagement], *others: Aggregate) -> list[Engagement]:
        """Save new, validated report aggregates (``ingestion.ResolvedReport.aggregate()``) that are not
        stored yet, with ``others`` in the same transaction; then run the policies. Returns the reports
        stored: none (and nothing saved) when all were stored already, by this or another process."""
        events = {r.id: list(r.collect_events()) for r in reports}
        extra = [e for o in others for e in o.collect_events()]
        while events:
            present = existing_originators(self._app.recorder, list(events))
            for known in present:
                del events[known]
            if not events:
                return []
            try:
                recordings = self._app.save(*(e for listed in events.values() for e in listed), *extra)
            except IntegrityError:
                if not existing_originators(self._app.recorder, list(events)):
                    raise ConcurrentUpdateError(None) from None
                continue
            if self._listeners and recordings:
                self._tell([_change(r.notification.id, r.domain_event) for r in recordings])
            break
        self.run_policies()
        return [r for r in reports if r.id in events]

    def _campaign_or_none(self, campaign_id: UUID) -> Campaign | None:
        try:
            found: Any = self._app.repository.get(campaign_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, Campaign) else None

    def reapply_bounce_policy(self, policy: BouncePolicy, *, actor: str) -> int:
        """Decide every known address again under ``policy`` and record where it differs ("unbounce").

        Every address with reports or decisions is read (its decision timeline under ``policy``, see
        :func:`~crmcore.policies.consent.decision_timeline`) against the decisions recorded, and the
        differences are recorded with ``policy``'s name and version: an address suppressed before but not
        under ``policy`` is reinstated from its old suppression, one ``policy`` suppresses is suppressed from
        its tipping report. Earlier decisions stay in the history (as-known-at reads still show them). The
        CRM applies ``policy`` from then on (:attr:`bounce_policy`); give it to every process writing to
        the store. Returns how many decisions were recorded.
        """
        if not isinstance(policy, BouncePolicy):
            raise InvalidInput("policy: give a BouncePolicy",
                               [{"loc": ("policy",), "msg": "not a BouncePolicy", "type": "is_instance_of"}])
        who = _name(actor, "actor")
        self._runner.catch_up(AddressReportsView.name)
        recorded = 0
        rows = self._views_storage.rows(AddressReportsView.name, {})
        for start in range(0, len(rows), _DECISIONS_PER_SAVE):
            chunk = rows[start : start + _DECISIONS_PER_SAVE]
            recorded += self._decide({r["address_key"]: r for r in chunk}, policy, who)
        self.bounce_policy = policy
        return recorded

    def suppressions(self, at: datetime | None = None) -> list[Suppression]:
        """The addresses suppressed at effective time ``at`` (default: now, after every decision), each with
        the decision in force, ordered by address key."""
        moment = _aware(at, "at") if at is not None else None
        self._runner.catch_up(AddressReportsView.name)
        found = []
        for row in self._views_storage.rows(AddressReportsView.name, {"decided": True}):
            index = suppression.in_force(suppression.recorded_of_row(row), moment)
            if index is not None and row["decisions"][index]["suppressed"]:
                found.append(Suppression(address_key=row["address_key"], address=row["address"],
                                         decision=_address_decision(row["decisions"][index])))
        return sorted(found, key=lambda s: s.address_key)

    def address_status(self, address: str) -> AddressStatusView:
        """An address (an e-mail address or a phone number) and every decision recorded about it, in
        effective-time order (ties in recording order); ``suppressed``: the decision in force now."""
        text = address.strip() if isinstance(address, str) else ""
        reach = _read_address(text, AddressKind.EMAIL if "@" in text else AddressKind.PHONE)
        row = self._address_rows([reach.key]).get(reach.key)
        decisions = list(row["decisions"]) if row is not None else []
        ordered = sorted(decisions, key=lambda d: (utc_text(d["effective_at"]), d["position"]))
        return AddressStatusView(address_key=reach.key, address=row["address"] if row else str(reach),
                                 suppressed=bool(row and row["suppressed"]),
                                 decisions=[_address_decision(d) for d in ordered])

    def _suppressed(self, address_keys: Iterable[str], at: datetime | None = None) -> set[str]:
        """Which of ``address_keys`` are suppressed by the decision in force at ``at`` (None: now)."""
        keys = set(address_keys)
        rows = self._address_rows(keys)
        found = set()
        for key in keys:
            row = rows.get(key)
            if row is None or not row["decided"]:
                continue
            index = suppression.in_force(suppression.recorded_of_row(row), at)
            if index is not None and row["decisions"][index]["suppressed"]:
                found.add(key)
        return found

    def _address_rows(self, address_keys: Iterable[str]) -> dict[str, Row]:
        """The ``address_reports`` rows of these address keys (caught up first), by address key."""
        self._runner.catch_up(AddressReportsView.name)
        return self._views_storage.load(AddressReportsView.name, set(address_keys))

    def _run_engagement_policies(self) -> int:
        """The engagement policy process: every report after its tracked position, a page at a time.

        Unsubscriptions and complaints unsubscribe their recipient; the addresses whose suppression may
        change (:func:`~crmcore.policies.suppression.screen`) are decided again under
        :attr:`bounce_policy` and the differences recorded. Idempotent: a page handled twice (two processes
        at once) records nothing twice.
        """
        storage, reader, handled = self._views_storage, self._runner.reader, 0
        with paused_gc():
            while True:
                position = storage.position(ENGAGEMENT_POLICY, 1)
                page = next(reader.skimmed_pages(_ENGAGEMENT_TOPICS, _PROOF_TOPICS, after=position,
                                                 page_size=ENGAGEMENT_PAGE), [])
                if not page:
                    return handled
                self._apply_engagement_policies(page)
                try:
                    storage.commit_page(ENGAGEMENT_POLICY, position, page[-1].position, {})
                except PositionMoved:
                    continue  # another process handled this page first
                handled += len(page)
                if len(page) < ENGAGEMENT_PAGE:
                    return handled

    def _apply_engagement_policies(self, page: Sequence[StoredRecord]) -> None:
        """One page of the engagement policy process: unsubscriptions, then the addresses to decide."""
        touched: list[tuple[str, str]] = []
        unsubscriptions = []
        for record in page:
            proof = _PROOF_KINDS.get(record.topic)
            if proof is not None:  # skimmed: only its address is read
                address = record.data.get("address")
                if address:
                    touched.append((suppression.address_key_of(address), proof))
                continue
            kind = _REPORT_KINDS.get(record.topic)
            if kind is not None:
                unsubscribe = suppression.when_engagement_reported_unsubscribe_party(kind, record.data)
                if unsubscribe is not None:
                    unsubscriptions.append(unsubscribe)
            found = report_of_record(record)
            if found is not None:
                touched.append((found[0], found[2][2]))
        if unsubscriptions:
            self._unsubscribe_reported(unsubscriptions)
        candidates = suppression.screen(touched, self._known_suppressed()) if touched else set()
        if candidates:
            policy = self.bounce_policy
            self._runner.catch_up(AddressReportsView.name)
            rows = self._views_storage.load(AddressReportsView.name, candidates)
            self._decide(rows, policy, f"policy:{policy.name}")

    def _unsubscribe_reported(self, decisions: Sequence[suppression.UnsubscribeParty]) -> None:
        """Record reported unsubscriptions on their parties (survivors if merged), in one save; known ones
        record nothing. On a conflict with another writer, one party at a time on fresh state."""
        parties: dict[UUID, Party] = {}
        try:
            for decision in decisions:
                party = self._load(_uuid(decision.party_id))
                if party.merged_into is not None:
                    party = self._load(self.resolve(party.merged_into))
                party = parties.setdefault(party.id, party)
                _unsubscribe(party, decision)
            self._save(*parties.values())
            return
        except (ConcurrentUpdateError, PartyNotFound, PartyMerged, InvalidInput):
            pass  # another writer, or a report that cannot be recorded: one at a time, afresh
        for decision in decisions:
            def load(d: suppression.UnsubscribeParty = decision) -> Party:
                return self._load(self.resolve(d.party_id))

            def act(party: Party, d: suppression.UnsubscribeParty = decision) -> list[Any]:
                _unsubscribe(party, d)
                return []

            try:
                self._load_act_save(load, None, act)
            except (PartyNotFound, InvalidInput) as refused:  # never blocks the reports after it
                log.warning("the unsubscription reported as %s for party %s was not recorded: %s",
                            decision.external_id, decision.party_id, refused)

    def _known_suppressed(self) -> set[str]:
        """The address keys that may be suppressed now: read from the view once, then kept up to date with
        the decisions recorded since (by any process; an address decided by another is kept in)."""
        with self._suppressed_lock:
            if self._maybe_suppressed is None:
                self._runner.catch_up(AddressReportsView.name)
                seen = self._views_storage.position(AddressReportsView.name, AddressReportsView.version)
                rows = self._views_storage.rows(AddressReportsView.name, {"suppressed": True})
                self._maybe_suppressed = {r["address_key"] for r in rows}
                self._decisions_seen = seen
            stop = int(self._app.recorder.max_notification_id() or 0)
            if stop > self._decisions_seen:
                pages = self._runner.reader.pages(_DECISION_TOPICS, after=self._decisions_seen, stop=stop)
                for page in pages:
                    self._maybe_suppressed.update(r.data["address_key"] for r in page)
                self._decisions_seen = stop
            return set(self._maybe_suppressed)

    def _decide(self, rows: Mapping[str, Row], policy: BouncePolicy, actor: str) -> int:
        """Decide the addresses of ``rows`` (``address_reports`` rows by key) under ``policy`` and record the
        differences with the decisions recorded; returns how many decisions were recorded.

        A timeline may be recorded only if it was read from a row holding every decision the aggregate
        holds (the row then holds every report those decisions rested on): otherwise, or when another
        process records at the same moment, the address is decided again on fresh state
        (:meth:`_decide_one`), so a process never overrules newer decisions with older knowledge.
        """
        wanted: dict[str, tuple[Row, list[consent.BounceDecision]]] = {}
        for key, row in rows.items():
            timeline = consent.decision_timeline(suppression.reports_of_row(row), policy)
            if suppression.reconcile(timeline, suppression.recorded_of_row(row), policy):
                wanted[key] = (row, timeline)
            else:
                self._note_suppressed(key, bool(timeline) and timeline[-1].suppressed)
        recorded = 0
        items = list(wanted.items())
        for start in range(0, len(items), _DECISIONS_PER_SAVE):
            chunk = items[start : start + _DECISIONS_PER_SAVE]
            statuses, afresh, count = [], [], 0
            for key, (row, timeline) in chunk:
                status = self._address_status_of(key) if row["decided"] else None
                if len(status.decisions if status is not None else ()) != len(row["decisions"]):
                    afresh.append(key)  # decided meanwhile by another process: read again
                    continue
                status, made = _decided(status, row, timeline, policy, actor)
                if made:
                    statuses.append(status)
                    count += made
                    self._note_suppressed(key, bool(timeline) and timeline[-1].suppressed)
            try:
                self._save(*statuses)
            except ConcurrentUpdateError:  # another process decided some of these at the same moment
                afresh = [key for key, _ in chunk]
                count = 0
            recorded += count + sum(self._decide_one(key, policy, actor) for key in afresh)
        return recorded

    def _decide_one(self, key: str, policy: BouncePolicy, actor: str) -> int:
        """Decide one address on fresh state - its aggregate, then the view caught up - and record what it
        lacks; re-run on conflicts. Returns the decisions recorded."""
        for attempt in range(self.conflict_retries + 1):
            status = self._address_status_of(key)
            row = self._address_rows([key]).get(key)  # caught up: holds every decision of ``status``
            if row is None:
                return 0
            timeline = consent.decision_timeline(suppression.reports_of_row(row), policy)
            status, made = _decided(status, row, timeline, policy, actor)
            self._note_suppressed(key, bool(timeline) and timeline[-1].suppressed)
            if not made:
                return 0
            try:
                self._save(status)
            except ConcurrentUpdateError:
                if attempt == self.conflict_retries:
                    raise
                _back_off(attempt)
                continue
            return made
        raise AssertionError("unreachable")  # pragma: no cover

    def _address_status_of(self, address_key: str) -> AddressStatus | None:
        try:
            found: Any = self._app.repository.get(address_status_id(address_key))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, AddressStatus) else None

    def _note_suppressed(self, key: str, suppressed: bool) -> None:
        with self._suppressed_lock:
            if self._maybe_suppressed is None:
                return
            if suppressed:
                self._maybe_suppressed.add(key)
            else:
                self._maybe_suppressed.discard(key)

    # ------------------------------------------------------------------ hygiene

    def hygiene_report(
        self,
        *,
        at: datetime | None = None,
        known_at: datetime | None = None,
        policy: HygienePolicy | None = None,
        group_by: str | Sequence[UUID | str] | None = None,
    ) -> HygieneReport:
        """The state of the data (design 06 § 2, :class:`HygieneReport`): stale, inactive, bounced,
        unsubscribed, incomplete and set-aside parties, the field rule breaks and the duplicates, with the
        average stay in each open stage the stale threshold rests on.

        Now by default. With ``at`` (aware), as it stood then: every view folded from the events effective
        by then (one read of the log); with ``known_at`` too, only those recorded by then (``known_at`` alone
        stands for both), so a back-dated change alters ``at`` answers, never ``known_at`` ones. Rule breaks
        and duplicates are computed now only (None as of a past moment, said in ``notes``).

        ``policy`` (default: the CRM's ``hygiene_policy``; its ``engagement`` default: the CRM's
        engagement policy) sets the rules. ``group_by`` measures the stage averages per group, each party
        judged against its group's: ``"owner"``; ``"segment"`` (the live segments not testing hygiene
        flags, by name, a party in the first it belongs to); or a list of segment ids in that role. Parties
        in no group form the group None. Refused with :class:`InvalidInput`: naive moments, a policy that is
        not a :class:`HygienePolicy`, any other ``group_by``.
        """
        moment, known = _results_moment(at, known_at)
        chosen = self._hygiene_policy(policy)
        grouping = _group_by(group_by)
        inputs = self._hygiene.inputs(moment, known)
        label, groups = self._hygiene_groups(grouping, inputs.facts, inputs.at, moment, known)
        if moment is None:
            rule_breaks: list[FieldScanFinding] | None = self.scan_fields()
            duplicates: list[DuplicateMatch] | None = self.duplicates()
            notes = []
        else:
            rule_breaks = duplicates = None
            notes = ["rule_breaks and duplicates are computed now only: omitted as of a past moment"]
        return report_of(inputs, chosen, self.bounce_policy, known_at=known, group_by=label, groups=groups,
                         rule_breaks=rule_breaks, duplicates=duplicates, notes=notes)

    def hygiene_trend(
        self, *, quarters: int = 8, until: datetime | None = None, policy: HygienePolicy | None = None,
    ) -> list[HygieneCounts]:
        """The hygiene report's counts at the end of each of the last ``quarters`` (1 to 200) calendar
        quarters (UTC) ended by ``until`` (aware; default now), oldest first, from history as it is known
        now: each count as the report's at the quarter's end (what was effective before the first moment of
        the next quarter). Every view is folded once, at all the quarter ends. Rule breaks and duplicates
        are not computed (None). Bad input: :class:`InvalidInput`."""
        chosen = self._hygiene_policy(policy)
        _, ends = _quarter_ends(quarters, until)
        inputs = self._hygiene.inputs_at([moment for _, moment in ends])
        return [counts_of(i, chosen, self.bounce_policy, quarter=name)
                for (name, _), i in zip(ends, inputs, strict=True)]

    def _hygiene_policy(self, policy: HygienePolicy | None) -> HygienePolicy:
        """``policy`` (default: the CRM's) checked, with the CRM's engagement policy unless it names one."""
        chosen = self.hygiene_policy if policy is None else policy
        if not isinstance(chosen, HygienePolicy):
            raise InvalidInput("policy: give a HygienePolicy", [
                {"loc": ("policy",), "msg": "not a HygienePolicy", "type": "is_instance_of"}])
        if chosen.engagement is None:
            chosen = chosen.model_copy(update={"engagement": self.engagement_policy})
        return chosen

    def _hygiene_groups(
        self, grouping: str | list[str] | None, facts: Mapping[str, Facts], now: datetime,
        at: datetime | None, known_at: datetime | None,
    ) -> tuple[str | None, dict[str, str | None] | None]:
        """The name of the grouping and each party's group (None, None: not grouped)."""
        if grouping is None:
            return None, None
        if grouping == "owner":
            return "owner", {p: f.get("owner") for p, f in facts.items()}
        rows = self._segment_rows() if at is None else list(
            self._runner.fold_as_of(SegmentsView.name, at, known_at).values())
        live = _live_criteria(rows)
        flagged = {s for s, node in live.items() if uses_hygiene(node)}
        testing = {s for s in live if referred_closure(live, [s]) & flagged}
        chosen: list[str]
        if grouping == "segment":
            names = {r["segment_id"]: str(r["name"]).casefold() for r in rows}
            chosen = sorted((s for s in live if s not in testing), key=lambda s: (names[s], s))
        else:
            chosen = list(grouping)
            for index, segment in enumerate(chosen):
                if segment not in live or segment in testing:
                    why = "tests hygiene flags" if segment in testing else "no live segment has this id"
                    raise InvalidInput(f"group_by: segment {segment}: {why}", [
                        {"loc": ("group_by", index), "msg": why, "type": "value_error"}])
        members = memberships_of(live, facts, now, chosen)
        return "segment", {p: next((s for s in chosen if p in members.get(s, ())), None) for p in facts}

    def _hygiene_flags(
        self, criteria: Mapping[str, Criterion], wanted: Iterable[str], facts: Mapping[str, Facts],
        at: datetime | None, known_at: datetime | None, now: datetime,
    ) -> HygieneFlagReader | None:
        """What the hygiene flags in the criteria of ``wanted`` (or of the segments they refer to) read at
        ``now`` over ``facts`` (now when ``at`` is None, else as of ``at`` and ``known_at``); None when they
        test none."""
        if not any(uses_hygiene(criteria[s]) for s in referred_closure(criteria, wanted)):
            return None
        return HygieneFlagReader(
            self._hygiene_policy(None), self.bounce_policy, now, facts,
            engagement=lambda: self._hygiene.engagement(at, known_at),
            addresses=lambda: self._hygiene.addresses(facts, at, known_at),
            required=lambda: self._required_fields_at(at, known_at, False),
        )

    def _required_fields_at(
        self, at: datetime | None, known_at: datetime | None, strictly: bool,
    ) -> dict[str, str]:
        """The required custom fields and profile traits (name -> section) of the catalog now (``at`` None)
        or as it stood at ``at``: its last version effective by then (``strictly``: before), recorded by
        ``known_at``."""
        if at is None:
            fields = self._current_fields()
        else:
            version = 0
            for event in self._app.events.get(CATALOG_ID):
                effective, recorded = cast(Any, event).effective_at, cast(Any, event).timestamp
                if (effective < at if strictly else effective <= at) and (
                        known_at is None or recorded <= known_at):
                    version = max(version, event.originator_version)
            fields = self._fields_at(version)
        return {name: d.section for name, d in fields.items() if d.required}

    # ------------------------------------------------------------------ clean-up

    def clean_up(
        self,
        *,
        actor: str,
        policy: CleanUpPolicy | None = None,
        hygiene_policy: HygienePolicy | None = None,
        dry_run: bool = False,
        at: datetime | None = None,
    ) -> CleanUpRun:
        """The quarterly clean-up (design 06 § 3): read the hygiene report now, plan under ``policy``
        (default :class:`CleanUpPolicy`) — set stale parties aside or move them to the newsletter list,
        suppress addresses undeliverable by a party's own ledger, open completion tasks for owners, never
        touching a party with an open opportunity unless the policy says so — and take the actions.

        With ``dry_run`` nothing is recorded: the returned :class:`CleanUpRun` (``run_id`` None) shows
        exactly what a run would do now and the report's counts before and after; with ``at`` (aware, dry
        runs only), what a run would have done then, from the report as of that moment. Otherwise the run is
        recorded in one transaction: a ``CleanUp.Ran`` event (both policies with their versions, the counts
        before and after, every action) with the actions' own events, all effective now. A party changed by
        another writer meanwhile makes the whole run plan again on fresh state. Undo it party by party with
        :meth:`revert_clean_up`. Bad input: :class:`InvalidInput` (also when ``policy.task_kind`` is not a
        task kind of this CRM), nothing stored.
        """
        who = _name(actor, "actor")
        chosen = _clean_up_policy(policy)
        hygiene = self._hygiene_policy(hygiene_policy)
        kind = tasks.kind_named(chosen.task_kind, self.task_kinds, field="policy.task_kind")
        moment = _aware(at, "at") if at is not None else None
        if moment is not None and not dry_run:
            raise InvalidInput(
                "at: only a dry run may be asked as of a past moment; a run takes effect now",
                [{"loc": ("at",), "msg": "given for a real run", "type": "value_error"}])
        for attempt in range(self.conflict_retries + 1):
            plan = plan_of(self._hygiene.inputs(moment, None), chosen, hygiene, self.bounce_policy)
            if dry_run:
                return _run_view(None, True, plan.inputs.at, who, chosen.recorded(), _recorded(hygiene),
                                 plan.counts_before, plan.counts_after, plan.actions, {}, {})
            try:
                run = self._record_clean_up(plan, chosen, hygiene, kind, who)
            except (ConcurrentUpdateError, _Replan):
                if attempt == self.conflict_retries:
                    raise ConcurrentUpdateError(None, "the clean-up kept meeting other writers") from None
                _back_off(attempt)
                continue
            return _clean_up_view(run)
        raise AssertionError("unreachable")  # pragma: no cover

    def _record_clean_up(
        self, plan: CleanUpPlan, policy: CleanUpPolicy, hygiene: HygienePolicy, task_kind: str, actor: str,
    ) -> CleanUp:
        """Build and save a run of ``plan`` and its actions in one transaction (raises :class:`_Replan` when
        a party no longer reads as planned)."""
        at, facts = plan.inputs.at, plan.inputs.facts
        deadline = (at + timedelta(days=policy.completion_days)).date()
        opened: dict[str, Task] = {}
        for action in plan.actions:
            if action.kind is CleanUpKind.COMPLETION_TASK:
                subject = _clipped(f"Complete the record of {facts[action.party_id]['name']}: "
                                   f"{', '.join(action.detail)}", 200)
                opened[action.party_id] = Task.plan(
                    kind=task_kind, subject=subject, assignees=[str(facts[action.party_id]["owner"])],
                    actor=actor, kinds=self.task_kinds, party_id=UUID(action.party_id), deadline=deadline,
                    effective_at=at)
        run = CleanUp.run(policy=policy.recorded(), hygiene_policy=_recorded(hygiene),
                          counts_before=plan.counts_before.model_dump(mode="json"),
                          counts_after=plan.counts_after.model_dump(mode="json"), actions=plan.actions,
                          tasks={p: t.id for p, t in opened.items()}, actor=actor, effective_at=at)
        changed: list[Aggregate] = [run, *opened.values()]
        statuses: dict[str, AddressStatus] = {}  # an address two parties hold is decided once
        stamp = {"name": policy.name, "version": policy.version}
        loaded = load_many(self._app, [
            UUID(a.party_id) if a.kind in EXCLUDING else address_status_id(a.detail[0])
            for a in plan.actions if a.kind in EXCLUDING or a.kind is CleanUpKind.SUPPRESS_ADDRESS])
        try:
            for action in plan.actions:
                if action.kind in EXCLUDING:
                    party = loaded.get(UUID(action.party_id))
                    if not isinstance(party, Party):
                        raise _Replan
                    party.put_aside(reason=_run_reason(action.reason, run.id), actor=actor, effective_at=at)
                    changed.append(party)
                elif action.kind is CleanUpKind.SUPPRESS_ADDRESS and action.detail[0] not in statuses:
                    key = action.detail[0]
                    held = loaded.get(address_status_id(key))
                    status = held if isinstance(held, AddressStatus) else AddressStatus(
                        address_key=key, address=_address_of(facts[action.party_id], key), actor=actor,
                        effective_at=at)
                    if status.suppressed_at(at):
                        raise _Replan
                    status.decide(suppress=True, rule=CLEAN_UP_RULE, reason=action.reason, policy=stamp,
                                  evidence=[_run_evidence(run.id)], actor=actor, effective_at=at)
                    statuses[key] = status
        except (IllegalTransition, PartyMerged, PartyNotFound, EffectiveTimeOutOfOrder):
            raise _Replan from None  # the party changed since the report was read
        self._save(*changed, *statuses.values())
        for action in plan.actions:
            if action.kind is CleanUpKind.SUPPRESS_ADDRESS:
                self._note_suppressed(action.detail[0], True)
        return run

    def revert_clean_up(
        self, run_id: UUID | str, *, actor: str, party_id: UUID | str | None = None,
        reason: str | None = None,
    ) -> CleanUpRun:
        """Put back what clean-up ``run_id`` did to ``party_id`` (default: to every party not reverted yet),
        in one transaction: a party it set aside and still set aside for that run is restored; an address it
        suppressed whose decision in force is still the run's is reinstated; its completion task, if still
        open, is cancelled. What was actually undone is recorded on the run (``CleanUp.Reverted``, one per
        party), an effect already gone (restored by hand, decided again, task done) is left out.

        Raises :class:`CleanUpNotFound`, :class:`IllegalTransition` for a party the run did not touch or
        already reverted; reverting every party when none is left records nothing. Retries on conflicts.
        """
        who = _name(actor, "actor")
        wanted = _id_of(run_id, "clean-up run")
        only = None if party_id is None else str(_uuid(party_id))
        why = None if reason is None else _clipped(_name(reason, "reason"), 500)
        for attempt in range(self.conflict_retries + 1):
            run = self._clean_up(wanted)
            parties = [only] if only is not None else [p for p in run.parties if p not in run.reverted]
            loaded = load_many(self._app, [_undone_id(run, a) for p in parties for a in run.actions_on(p)])
            changed: dict[UUID, Aggregate] = {run.id: run}
            for party in parties:
                undone = self._undo(run, party, who, why, loaded, changed) if run.actions_on(party) else []
                run.revert(party_id=party, undone=undone, actor=who, reason=why)
            try:
                if parties:
                    self._save(*changed.values())
            except ConcurrentUpdateError:
                if attempt == self.conflict_retries:
                    raise
                _back_off(attempt)
                continue
            return _clean_up_view(run)
        raise AssertionError("unreachable")  # pragma: no cover

    def _undo(
        self, run: CleanUp, party: str, actor: str, reason: str | None, loaded: Mapping[UUID, Any],
        changed: dict[UUID, Aggregate],
    ) -> list[CleanUpAction]:
        """Undo what ``run`` did to ``party`` where its effect still holds, on the ``loaded`` aggregates (each
        added to ``changed`` when changed); returns the actions undone."""
        said = reason or f"clean-up {run.id} reverted"
        undone = []
        for action in run.actions_on(party):
            target = loaded.get(_undone_id(run, action))
            if action.kind in EXCLUDING:
                if (isinstance(target, Party) and target.merged_into is None and target.set_aside
                        and target.set_aside_reason == _run_reason(action.reason, run.id)):
                    target.restore(reason=said, actor=actor)
                    changed[target.id] = target
                    undone.append(action)
            elif action.kind is CleanUpKind.SUPPRESS_ADDRESS:
                # an address two parties hold is handed back once: the second finds the run's decision gone
                if isinstance(target, AddressStatus) and _decided_by(target, run.id):
                    self._hand_back(target, run.id, said, actor)
                    changed[target.id] = target
                    undone.append(action)
            elif action.kind is CleanUpKind.COMPLETION_TASK and isinstance(target, Task):
                task = target
                if task.status == TaskStatus.OPEN:
                    task.cancel(reason=_clipped(said, 500), actor=actor)
                    changed[task.id] = task
                    undone.append(action)
        return undone

    def _hand_back(self, status: AddressStatus, run_id: UUID, reason: str, actor: str) -> None:
        """Hand an address a clean-up suppressed back to the bounce policy: record, after the run's decision,
        the state the CRM's bounce policy reads from the address's reports now (rule
        ``clean_up_reverted``) — the address is undeliverable after the revert exactly when its own reports
        make it so, as before the run, when its ledger said so."""
        policy = self.bounce_policy
        row = self._address_rows([status.address_key]).get(status.address_key)
        timeline = consent.decision_timeline(suppression.reports_of_row(row), policy) if row else []
        state = consent.state_at(timeline)
        suppressed = state is not None and state.suppressed
        reading = "still suppressed" if suppressed else "not suppressed"
        status.decide(
            suppress=suppressed, rule=CLEAN_UP_REVERTED_RULE,
            reason=_clipped(f"{reason}: {reading} under bounce policy {policy.name} version {policy.version}",
                            500),
            policy=policy.stamp(), evidence=[_run_evidence(run_id), *(state.evidence if state else ())],
            actor=actor, effective_at=max(utc_now(), _last_effective(status)))
        self._note_suppressed(status.address_key, suppressed)

    def clean_up_run(self, run_id: UUID | str) -> CleanUpRun:
        """A recorded clean-up run, with what was reverted since. Raises :class:`CleanUpNotFound`."""
        return _clean_up_view(self._clean_up(_id_of(run_id, "clean-up run")))

    def clean_up_runs(self) -> list[CleanUpRun]:
        """Every recorded clean-up run, oldest first."""
        ids = [record.originator_id for page in self._runner.reader.pages([_RAN_TOPIC]) for record in page]
        return [_clean_up_view(self._clean_up(UUID(i))) for i in ids]

    def _clean_up(self, run_id: UUID) -> CleanUp:
        try:
            found: Any = self._app.repository.get(run_id)
        except AggregateNotFoundError:
            raise CleanUpNotFound(run_id) from None
        if not isinstance(found, CleanUp):
            raise CleanUpNotFound(run_id, "not a clean-up run")
        return found

    def clean_up_what_if(
        self,
        *,
        policy: CleanUpPolicy | None = None,
        hygiene_policy: HygienePolicy | None = None,
        quarters: int = 8,
        until: datetime | None = None,
    ) -> list[WhatIfQuarter]:
        """Who ``policy`` would have set aside or moved to the newsletter list at the end of each of the last
        ``quarters`` (1 to 200) calendar quarters ended by ``until`` (aware; default now) — planned from the
        data as it stood then, exactly as a run would (:meth:`clean_up`) —, and what those parties did
        afterwards, up to ``until``: opened, clicked, replied, opened an opportunity, bought, with the value
        won. Oldest quarter first; history as known now. Every view is folded once, at all the quarter ends
        and at ``until``. Records nothing. Bad input: :class:`InvalidInput`."""
        chosen = _clean_up_policy(policy)
        hygiene = self._hygiene_policy(hygiene_policy)
        end, ends = _quarter_ends(quarters, until)
        moments = [moment for _, moment in ends]
        if moments[-1] < end:
            moments.append(end)
        inputs = self._hygiene.inputs_at(moments)
        plans = [plan_of(i, chosen, hygiene, self.bounce_policy, quarter=name)
                 for (name, _), i in zip(ends, inputs, strict=False)]
        return what_if_of(plans, inputs[-1])

    # ------------------------------------------------------------------ audit export

    def audit_export(self, party_id: UUID | str) -> list[AuditRecord]:
        """The full history of a party and of every party merged into it, for a data-subject access
        request (design 07 § 3): the parties' own events with the fields each changed, the events of their
        opportunities and tasks, the engagement reports about them and the decisions about every address
        they ever held; each with its log position, who, when it took effect and when it was recorded.
        Ordered by effective time, then recorded time, then position. Raises :class:`PartyNotFound`;
        records nothing. The reports are found by reading the engagement reports of the log once."""
        root = _uuid(party_id)
        self._load(root)
        parties = [root, *self.merged_parties(root)]
        ids = {str(p): p for p in parties}
        found: list[tuple[str, UUID, UUID, Any]] = []  # (aggregate kind, aggregate id, party, entry or event)
        addresses: set[str] = set()
        for party in parties:
            for entry in self._party_timeline(party):
                found.append(("party", party, party, entry))
            for event in self._app.events.get(party):
                identity = getattr(event, "identity", None) or getattr(event, "changes", None) or {}
                if isinstance(identity, dict):
                    addresses.update(a for k in ("emails", "phones") for a in identity.get(k) or ())
        for name, kind in ((PipelineView.name, "opportunity"), (TasksView.name, "task")):
            self._runner.catch_up(name)
            for row in self._views_storage.rows(name, {}):
                owner = ids.get(str(row.get("party_id")))
                if owner is not None:
                    aggregate = UUID(str(row["id"] if "id" in row else row["task_id"]))
                    found += [(kind, aggregate, owner, e) for e in self._timeline_of(aggregate)]
        reports: dict[UUID, UUID] = {}
        for page in self._runner.reader.pages([get_topic(cls) for cls in KIND_OF_EVENT]):
            for record in page:
                about = ids.get(str(record.data.get("party_id")))
                if about is not None:
                    reports[UUID(record.originator_id)] = about
        for report, party in reports.items():
            found += [("engagement", report, party, e) for e in self._app.events.get(report)]
        for address in sorted(addresses):
            status = self._address_status_of(suppression.address_key_of(address))
            if status is not None:
                found += [("address", status.id, root, e) for e in self._app.events.get(status.id)]
        positions = positions_of(self._app, {aggregate for _, aggregate, _, _ in found})
        records = [_audit_record(kind, aggregate, party, item, positions)
                   for kind, aggregate, party, item in found]
        return sorted(records, key=lambda r: (r.effective_at, r.recorded_at, r.position or 0))

    def write_audit_export(
        self, party_id: UUID | str, target: str | os.PathLike[str] | IO[str],
    ) -> int:
        """Write :meth:`audit_export` as JSON lines (one record per line) to a path or an open text file;
        returns the number of lines."""
        records = self.audit_export(party_id)
        lines = "".join(record.model_dump_json() + "\n" for record in records)
        if isinstance(target, str | os.PathLike):
            Path(target).write_text(lines, encoding="utf-8")
        else:
            target.write(lines)
        return len(records)

    # ------------------------------------------------------------------ party facts

    def party_facts(
        self, *, at: datetime | None = None, known_at: datetime | None = None,
    ) -> dict[str, Facts]:
        """What segments, qualification rules and scores read about every party not merged away, by id text:
        the ``party_facts`` view's row joined with the party's opportunities from the ``pipeline`` view
        (see :func:`crmcore.projections.facts.facts_of`).

        Now by default; with ``at`` (and ``known_at``), as it stood then, as :meth:`forecast`.
        ``deliverable`` joins the suppression decisions in force at that moment (see
        :func:`crmcore.projections.facts.deliverable_of`).
        """
        if at is None:
            if known_at is not None:
                raise InvalidInput("known_at needs at: give the effective moment too",
                                   [{"loc": ("known_at",), "msg": "without at", "type": "missing"}])
            self._runner.catch_up(PartyFactsView.name)
            self._runner.catch_up(PipelineView.name)
            return facts_of(self._views_storage.rows(PartyFactsView.name, {}),
                            self._views_storage.rows(PipelineView.name, {}), self._decisions_in_force())
        moment = _aware(at, "at")
        known = _aware(known_at, "known_at") if known_at is not None else None
        folded = self._runner.fold_together_as_of(
            [PartyFactsView.name, PipelineView.name, AddressDecisionsView.name], moment, known)
        return facts_of(folded[PartyFactsView.name].values(), folded[PipelineView.name].values(),
                        suppressed_by_key(folded[AddressDecisionsView.name].values()))

    # ------------------------------------------------------------------ internals

    def _run(
        self, model: type[P], party_id: UUID | str, fields: Mapping[str, Any],
        action: Callable[[Party, P], Any],
    ) -> PartyView:
        cmd = validate(model, {**fields, "party_id": party_id})

        def act(party: Party) -> None:
            action(party, cmd)

        return PartyView.model_validate(self._update(cmd, act).state())

    def _update(self, cmd: PartyCommand, action: Callable[[Party], list[Party] | None]) -> Party:
        """Load, command, save; on a version conflict re-run on fresh state, unless a version was expected."""
        return self._update_party(cmd.party_id, cmd.expected_version, lambda party: action(party) or [])

    def _load(self, party_id: UUID, *, version: int | None = None) -> Party:
        try:
            party: Any = self._app.repository.get(party_id, version=version)
        except AggregateNotFoundError:
            raise PartyNotFound(party_id) from None
        if not isinstance(party, Party):
            raise PartyNotFound(party_id, "not a party")
        return party

    def _events_of(self, party_id: UUID) -> list[Party.Event]:
        events = cast(list[Party.Event], list(self._app.events.get(party_id)))
        if not events:
            raise PartyNotFound(party_id)
        return events

    def _save(self, *aggregates: Aggregate) -> list[Recording[UUID]]:
        try:
            recordings = self._app.save(*aggregates)
        except IntegrityError:
            first = aggregates[0].id if aggregates else None
            raise ConcurrentUpdateError(first) from None
        if self._listeners and recordings:
            self._tell([_change(r.notification.id, r.domain_event) for r in recordings])
        return recordings

    def _tell(self, changes: Sequence[Change]) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(changes)
            except Exception:
                log.exception("a change listener failed; the commit stands")

    def _tell_bulk(self, stored: Sequence[Any], positions: Sequence[int] | None) -> None:
        if not positions:
            return
        changes = [
            _change(pos, self._app.mapper.to_domain_event(s))
            for pos, s in zip(positions, stored, strict=True)
        ]
        self._tell(changes)


def _detector(threshold: float | None) -> Detector:
    return Detector() if threshold is None else Detector(threshold=threshold)


def _record_of(cmd: RegisterParty) -> MatchRecord:
    identity = cmd.stored_identity()
    return record_of_row({
        "id": "new", "kind": cmd.kind.value, "name": cmd.display_name,
        "organization_name": cmd.organization_name if cmd.kind is PartyKind.PERSON else None, **identity,
    })


def _match(candidate: DuplicateCandidate, me: str | None = None) -> DuplicateMatch:
    first, second = candidate.a, candidate.b
    if me is not None and second == me:
        first, second = second, first
    swap = first != candidate.a
    reasons = [
        MatchReason(field=r.field, level=r.level, similarity=r.similarity, weight=r.weight,
                    value=r.b if swap else r.a, other_value=r.a if swap else r.b)
        for r in candidate.reasons
    ]
    return DuplicateMatch(party_id=_id_or_label(first), other_id=_id_or_label(second),
                          score=candidate.score, reasons=reasons)


def _id_or_label(value: str) -> UUID | str:
    try:
        return UUID(value)
    except ValueError:
        return value


class _Registered:
    """What a registration did: the party id, and whether it attached to an existing party."""

    __slots__ = ("attached", "party_id")

    def __init__(self, party_id: UUID, *, attached: bool) -> None:
        self.party_id = party_id
        self.attached = attached


def _now() -> datetime:
    from crmcore.values import utc_now

    return utc_now()


def _replay_without(events: Sequence[Party.Event], *, undo: UUID) -> Party:
    """The party replayed from ``events`` as if every undone merge, and its latest merge with ``undo``,
    had never happened (``Unmerged`` events only mark which merges were undone)."""
    skipped: set[int] = set()
    open_merges: dict[UUID, list[int]] = {}
    for index, event in enumerate(events):
        if isinstance(event, Party.Merged):
            open_merges.setdefault(event.loser_id, []).append(index)
        elif isinstance(event, Party.MergedInto):
            open_merges.setdefault(event.survivor_id, []).append(index)
        elif isinstance(event, Party.Unmerged) and open_merges.get(event.other_id):
            skipped.add(open_merges[event.other_id].pop())
    if open_merges.get(undo):
        skipped.add(open_merges[undo].pop())
    party: Party | None = None
    for index, event in enumerate(events):
        if index in skipped or isinstance(event, Party.Unmerged):
            continue
        if party is not None:  # skipped events leave gaps in the version sequence mutate() checks
            party._version = event.originator_version - 1
        party = cast(Party, event.mutate(party))
    assert party is not None
    return party
def _split_command(given: Mapping[str, Any], rest: str) -> dict[str, Any]:
    """``actor`` and ``effective_at`` as command fields; everything else under ``rest``."""
    command = {k: v for k, v in given.items() if k in ("actor", "effective_at")}
    return {**command, rest: {k: v for k, v in given.items() if k not in command}}


def _changed_definition(current: FieldDefinition, changes: Mapping[str, Any]) -> FieldDefinition:
    """``current`` with ``changes`` applied, validated as a whole; name, kind and section stay."""
    if changes.get("name", current.name) != current.name:
        message = f"{current.name}: a field is never renamed; retire it and define a new one"
        raise InvalidInput(message, [{"loc": ("name",), "msg": message, "type": "name_change"}])
    for rule in ("kind", "section"):
        old, new = str(getattr(current, rule)), str(changes.get(rule, getattr(current, rule)))
        if new != old:
            message = (f"{current.name}: the {rule} of a field never changes ({old} → {new}); "
                       "retire it and define a new field")
            raise InvalidInput(message, [{"loc": (rule,), "msg": message, "type": f"{rule}_change"}])
    try:
        return FieldDefinition.model_validate({**current.model_dump(mode="json"), **changes})
    except pydantic.ValidationError as error:
        raise invalid_input(error) from None


def _row_errors(index: int, error: InvalidInput) -> list[dict[str, Any]]:
    return [{**e, "loc": (index, "profile", *e.get("loc", ()))} for e in error.errors]


def _rows_error(errors: list[dict[str, Any]]) -> InvalidInput:
    summary = "; ".join(f"row {e['loc'][0]}: {e['msg']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return InvalidInput(f"bulk input: {summary}{more}", errors)


def _zone(timezone: str | tzinfo) -> tzinfo:
    if isinstance(timezone, tzinfo):
        return timezone
    try:
        return ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"timezone: not a known time zone: {timezone!r}",
                           [{"loc": ("timezone",), "msg": "unknown time zone", "type": "timezone"}]) from None


def _until(until: datetime | date | None, zone: tzinfo) -> datetime:
    """The moment a backtest ends in: now by default, a date's midnight in ``zone``; never in the future."""
    now = utc_now()
    if until is None:
        return now
    if isinstance(until, datetime):
        moment = _aware(until, "until")
    elif isinstance(until, date):
        moment = datetime(until.year, until.month, until.day, tzinfo=zone)
    else:
        raise InvalidInput("until: give a date or a timezone-aware datetime",
                           [{"loc": ("until",), "msg": "not a date", "type": "date_type"}])
    if moment > now:
        raise InvalidInput("until: a backtest covers the past; give a moment not in the future",
                           [{"loc": ("until",), "msg": "in the future", "type": "future"}])
    return moment


def _described(aggregate: Aggregate) -> str:
    return "" if isinstance(aggregate, Party) else f"{type(aggregate).__name__.lower()} {aggregate.id}: "


# ---------------------------------------------------------------------------------------------- clean-up

#: The rule an address suppressed by a clean-up is decided with, and the rule of its reinstatement when the
#: run is reverted.
CLEAN_UP_RULE = "clean_up"
CLEAN_UP_REVERTED_RULE = "clean_up_reverted"
_RAN_TOPIC = get_topic(CleanUp.Ran)


class _Replan(Exception):
    """A party no longer reads as the clean-up planned: plan again on fresh state."""


def _clean_up_policy(policy: CleanUpPolicy | None) -> CleanUpPolicy:
    if policy is None:
        return CleanUpPolicy()
    if not isinstance(policy, CleanUpPolicy):
        raise InvalidInput("policy: give a CleanUpPolicy", [
            {"loc": ("policy",), "msg": "not a CleanUpPolicy", "type": "is_instance_of"}])
    return policy


def _recorded(policy: HygienePolicy) -> dict[str, Any]:
    return policy.model_dump(mode="json")


def _run_reason(reason: str, run_id: UUID) -> str:
    """The reason a party set aside by run ``run_id`` is recorded with (how revert recognises it)."""
    return f"{reason} (clean-up {run_id})"


def _run_evidence(run_id: UUID) -> str:
    return f"clean_up:{run_id}"


def _decided_by(status: AddressStatus, run_id: UUID) -> bool:
    """Whether the decision in force now about the address is run ``run_id``'s suppression."""
    ordered = sorted(status.decisions, key=lambda d: d["effective_at"])  # stable: recording order
    last = ordered[-1] if ordered else None
    return bool(last is not None and last["suppressed"] and last["rule"] == CLEAN_UP_RULE
                and last["evidence"] == [_run_evidence(run_id)])


def _last_effective(status: AddressStatus) -> datetime:
    return max((d["effective_at"] for d in status.decisions), default=datetime.min.replace(tzinfo=UTC))


def _address_of(facts: Mapping[str, Any], key: str) -> str:
    """The address of the party of ``facts`` whose matching key is ``key`` (the key itself if none)."""
    for address in [*(facts.get("emails") or ()), *(facts.get("phones") or ())]:
        if suppression.address_key_of(address) == key:
            return str(address)
    return key


def _undone_id(run: CleanUp, action: CleanUpAction) -> UUID:
    """The aggregate reverting ``action`` of ``run`` changes: the party, the address's status or the task."""
    if action.kind is CleanUpKind.SUPPRESS_ADDRESS:
        return address_status_id(action.detail[0])
    if action.kind is CleanUpKind.COMPLETION_TASK:
        return run.tasks[action.party_id]
    return UUID(action.party_id)


def _clipped(text: str, longest: int) -> str:
    return text if len(text) <= longest else text[: longest - 1] + "…"


def _step(action: CleanUpAction, tasks_opened: Mapping[str, UUID]) -> CleanUpStep:
    task = tasks_opened.get(action.party_id) if action.kind is CleanUpKind.COMPLETION_TASK else None
    return CleanUpStep(party_id=UUID(action.party_id), kind=action.kind.value, reason=action.reason,
                       detail=list(action.detail), task_id=task)


def _run_view(
    run_id: UUID | None, dry_run: bool, at: datetime, actor: str, policy: Mapping[str, Any],
    hygiene_policy: Mapping[str, Any], before: HygieneCounts | Mapping[str, Any],
    after: HygieneCounts | Mapping[str, Any], actions: Sequence[CleanUpAction],
    tasks_opened: Mapping[str, UUID],
    reverted: Mapping[str, Sequence[CleanUpAction]],
) -> CleanUpRun:
    return CleanUpRun(
        run_id=run_id, dry_run=dry_run, at=at, actor=actor, policy=dict(policy),
        hygiene_policy=dict(hygiene_policy),
        counts_before=before if isinstance(before, HygieneCounts) else HygieneCounts.model_validate(before),
        counts_after=after if isinstance(after, HygieneCounts) else HygieneCounts.model_validate(after),
        actions=[_step(a, tasks_opened) for a in actions],
        reverted={UUID(p): [_step(a, tasks_opened) for a in undone] for p, undone in reverted.items()},
    )


def _clean_up_view(run: CleanUp) -> CleanUpRun:
    return _run_view(run.id, False, run.at, run.actor, run.policy, run.hygiene_policy, run.counts_before,
                     run.counts_after, run.actions, run.tasks, run.reverted)


def _back_off(attempt: int) -> None:
    """Sleep a random 0-2^attempt milliseconds (capped at 0.25 s) before re-running a collided command."""
    time.sleep(random.uniform(0, min(0.25, 0.001 * 2**attempt)))


def _uuid(value: UUID | str) -> UUID:
    return _id_of(value, "party")


def _opportunity_uuid(value: UUID | str) -> UUID:
    return _id_of(value, "opportunity")


def _id_of(value: Any, what: str) -> UUID:
    """``value`` as an id: a UUID, or its text; anything else (a number whose digits happen to make 32 hex
    digits, bytes, ...) is refused rather than read as an id."""
    if isinstance(value, UUID):
        return value
    try:
        if not isinstance(value, str):
            raise ValueError
        return UUID(value)
    except ValueError:
        article = "an" if what[0] in "aeiou" else "a"
        raise InvalidInput(
            f"not {article} {what} id: {value!r}",
            [{"loc": (f"{what}_id",), "msg": "not a UUID", "type": "uuid_parsing"}],
        ) from None


def _opportunity_settings(
    given_pipelines: Sequence[Pipeline], lost_reasons: Sequence[str],
) -> tuple[tuple[Pipeline, ...], tuple[str, ...]]:
    """The configured pipelines and lost reasons, checked: at least one of each, names unique."""
    chosen = tuple(given_pipelines)
    if not chosen or not all(isinstance(p, Pipeline) for p in chosen):
        raise InvalidInput("pipelines: give one or more Pipeline objects")
    names = [p.name.casefold() for p in chosen]
    if len(set(names)) != len(names):
        raise InvalidInput("pipelines: two pipelines have the same name")
    reasons = tuple(" ".join(r.split()) for r in lost_reasons if isinstance(r, str))
    if not reasons or len(reasons) != len(lost_reasons) or not all(reasons):
        raise InvalidInput("lost_reasons: give one or more non-empty texts")
    if len({r.casefold() for r in reasons}) != len(reasons):
        raise InvalidInput("lost_reasons: a reason is listed twice")
    return chosen, reasons


def _scoring_stages(stages: Sequence[Stage | str], field: str) -> list[str]:
    """The lifecycle stages named, as values, checked: at least one, each a stage."""
    if isinstance(stages, str) or not isinstance(stages, Sequence) or not stages:
        raise InvalidInput(f"{field}: give one or more lifecycle stages",
                           [{"loc": (field,), "msg": "empty", "type": "too_short"}])
    chosen: list[str] = []
    for index, stage in enumerate(stages):
        try:
            value = Stage(stage).value
        except ValueError:
            choices = ", ".join(s.value for s in Stage)
            message = f"{field}.{index}: not a stage: {stage!r} (one of {choices})"
            raise InvalidInput(message, [{"loc": (field, index), "msg": message, "type": "enum"}]) from None
        if value not in chosen:
            chosen.append(value)
    return chosen


def _cutoffs(cutoffs: Sequence[datetime | date], zone: tzinfo, end: datetime) -> list[datetime]:
    """The backtest cut-offs given: at least one, each before ``end``, ascending, none twice."""
    if isinstance(cutoffs, str) or not isinstance(cutoffs, Sequence) or not cutoffs:
        raise InvalidInput("cutoffs: give one or more dates or timezone-aware datetimes",
                           [{"loc": ("cutoffs",), "msg": "empty", "type": "too_short"}])
    moments: list[datetime] = []
    for index, cutoff in enumerate(cutoffs):
        moment = _moment(cutoff, zone, f"cutoffs.{index}")
        assert moment is not None
        if moment >= end:
            raise InvalidInput(f"cutoffs.{index}: a cut-off must come before the backtest's end ({end})",
                               [{"loc": ("cutoffs", index), "msg": "not before until", "type": "range"}])
        if moments and moment <= moments[-1]:
            raise InvalidInput(f"cutoffs.{index}: give the cut-offs in ascending order, none twice",
                               [{"loc": ("cutoffs", index), "msg": "not ascending", "type": "order"}])
        moments.append(moment)
    return moments


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field}: give a non-empty name",
                           [{"loc": (field,), "msg": "empty", "type": "string_too_short"}])
    return value.strip()


def _zone_name(timezone: str | tzinfo) -> str:
    return str(getattr(timezone, "key", None) or timezone)


def _moment(value: datetime | date | None, zone: tzinfo, field: str) -> datetime | None:
    """An aware moment, or a date's midnight in ``zone``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _aware(value, field)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=zone)
    raise InvalidInput(f"{field}: give a date or a timezone-aware datetime",
                       [{"loc": (field,), "msg": "not a date", "type": "date_type"}])


def _operators(names: Any, field: str) -> list[str]:
    """Operator names from a list (a single name is refused: give a list)."""
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise InvalidInput(f"{field}: give a list of operator names",
                           [{"loc": (field,), "msg": "not a list", "type": "list_type"}])
    return list(dict.fromkeys(_name(n, field) for n in names))


def _call_open(row: Mapping[str, Any] | None) -> bool:
    """Whether a call list entry is still to be worked: no call with a final outcome yet."""
    outcomes = (row or {}).get("call_outcomes") or {}
    return not any(outcomes.get(o.value) for o in FINAL_CALL_OUTCOMES)


def _call_back_on(row: Mapping[str, Any]) -> date | None:
    """The date the last call asked to be called back on, if it did."""
    last = row.get("last_call")
    if not last or last[2] != CallOutcome.CALL_BACK.value or not last[4]:
        return None
    return date.fromisoformat(last[4])


def _money(value: Any, field: str) -> Money:
    """``value`` as Money: Money itself, or a mapping with ``amount`` and ``currency``."""
    if isinstance(value, Money):
        return value
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{field}: give Money or {{'amount': ..., 'currency': ...}}",
                           [{"loc": (field,), "msg": "not money", "type": "model_type"}])
    try:
        return Money.model_validate(dict(value))
    except pydantic.ValidationError as error:
        raise invalid_input(error, prefix=f"{field}: ") from None


def _candidate(facts: Mapping[str, Any]) -> Candidate:
    """What the audience policy reads about a party, from its facts row."""
    emails, phones = facts.get("emails") or [], facts.get("phones") or []
    return Candidate(party_id=facts["party_id"], consent=dict(facts.get("consent") or {}),
                     email=emails[0] if emails else None, phone=phones[0] if phones else None,
                     open_opportunities=int(facts.get("open_opportunities") or 0))


def _campaign_view(campaign: Campaign) -> CampaignView:
    state = campaign.state()
    return CampaignView.model_validate({**state, "budget": Money.model_validate(state["budget"]),
                                        "cost": Money.model_validate(state["cost"])})


def _aware(value: datetime, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{field} must be a timezone-aware datetime",
            [{"loc": (field,), "msg": "naive or not a datetime", "type": "timezone_aware"}],
        )
    return value


def _quarter_ends(quarters: Any, until: datetime | None) -> tuple[datetime, list[tuple[str, datetime]]]:
    """``until`` (checked; default now) and the last ``quarters`` quarter ends by it (see
    :func:`~crmcore.hygiene.quarter_ends`); bad input raises :class:`InvalidInput`."""
    count = _quarters(quarters)
    end = _aware(until, "until") if until is not None else utc_now()
    try:
        return end, quarter_ends(end, count)
    except ValueError:  # before the year 1
        raise InvalidInput("quarters: reaches back before the first year", [
            {"loc": ("quarters",), "msg": "too far back", "type": "int_range"}]) from None


def _quarters(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 200:
        raise InvalidInput("quarters: give a whole number of quarters from 1 to 200", [
            {"loc": ("quarters",), "msg": "out of range", "type": "int_range"}])
    return value


def _group_by(value: Any) -> str | list[str] | None:
    """``group_by`` checked: None, ``"owner"``, ``"segment"``, or segment ids (as text, in order)."""
    if value is None or value in ("owner", "segment"):
        return cast("str | None", value)
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise InvalidInput("group_by: give \"owner\", \"segment\" or a list of segment ids", [
            {"loc": ("group_by",), "msg": "owner, segment or segment ids", "type": "value_error"}])
    ids = [str(_id_of(v, "segment")) for v in value]
    if len(set(ids)) != len(ids):
        raise InvalidInput("group_by: a segment is listed twice", [
            {"loc": ("group_by",), "msg": "repeated segment", "type": "value_error"}])
    return ids


def _attribution_window(days: Any) -> timedelta:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise InvalidInput("attribution_window_days: give a whole number of days from 1 to 3650", [
            {"loc": ("attribution_window_days",), "msg": "out of range", "type": "int_range"}])
    return timedelta(days=days)


def _results_moment(
    at: datetime | None, known_at: datetime | None,
) -> tuple[datetime | None, datetime | None]:
    """``at`` and ``known_at`` checked; ``known_at`` alone stands for both."""
    known = _aware(known_at, "known_at") if known_at is not None else None
    moment = _aware(at, "at") if at is not None else known
    return moment, known


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field}: give True or False",
                           [{"loc": (field,), "msg": "not a bool", "type": "bool_type"}])
    return value


def _currency_code(value: Any) -> str:
    code = value.strip().upper() if isinstance(value, str) else None
    if code not in CURRENCIES:
        raise InvalidInput(f"currency: not an ISO 4217 currency code: {value!r}",
                           [{"loc": ("currency",), "msg": "not a currency code", "type": "currency"}])
    return code


def _members(ids: Any) -> set[str]:
    """Party ids (UUIDs or their text) as text; a single text is refused rather than read letter by letter."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise InvalidInput(
            "segment_members: give a collection of party ids",
            [{"loc": ("segment_members",), "msg": "not a collection", "type": "iterable_type"}],
        )
    return {str(_uuid(i)) for i in ids}


def _consent_channel(value: ConsentChannel | str) -> ConsentChannel:
    try:
        return ConsentChannel(value)
    except ValueError:
        choices = ", ".join(c.value for c in ConsentChannel)
        raise InvalidInput(
            f"not a consent channel: {value!r} (one of {choices})",
            [{"loc": ("channel",), "msg": f"one of {choices}", "type": "enum"}],
        ) from None


def _read_address(value: str, kind: AddressKind) -> EmailAddress | PhoneNumber:
    if kind is AddressKind.EMAIL:
        return EmailAddress.parse(value, field="address")
    return PhoneNumber.parse(value, field="address")


def _addresses(party: Party, kind: AddressKind) -> list[EmailAddress | PhoneNumber]:
    """The party's addresses of ``kind``, primary first (``emails`` / ``phones``)."""
    stored = party.emails if kind is AddressKind.EMAIL else party.phones
    return [_read_address(str(value), kind) for value in stored]


def _primary_address(party: Party, kind: AddressKind) -> EmailAddress | PhoneNumber | None:
    addresses = _addresses(party, kind)
    return addresses[0] if addresses else None


def _audit_record(
    kind: Any, aggregate: UUID, party: UUID, item: Any, positions: Mapping[tuple[UUID, int], int],
) -> AuditRecord:
    """An audit record of a timeline entry (parties, opportunities, tasks) or of a plain event."""
    owner = {"party": "Party", "opportunity": "Opportunity", "task": "Task", "engagement": "Engagement",
             "address": "AddressStatus"}[kind]
    if isinstance(item, TimelineEntry):
        return AuditRecord(
            position=positions.get((aggregate, item.version)), aggregate=kind, aggregate_id=aggregate,
            version=item.version, event=f"{owner}.{item.event}", party_id=party, actor=item.actor,
            effective_at=item.effective_at, recorded_at=item.recorded_at, changes=item.changes,
            data=_json_native(item.data))
    return AuditRecord(
        position=positions.get((aggregate, item.originator_version)), aggregate=kind, aggregate_id=aggregate,
        version=item.originator_version, event=f"{owner}.{type(item).__name__}", party_id=party,
        actor=item.actor, effective_at=item.effective_at, recorded_at=item.timestamp, changes={},
        data=_json_native(_event_data(item)))


def _json_native(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as JSON-native values (ids and times as text, amounts as strings)."""
    return cast(dict[str, Any], orjson.loads(orjson.dumps(dict(data), default=str)))


def _event_data(event: DomainEventProtocol[Any]) -> dict[str, Any]:
    return {k: v for k, v in vars(event).items() if k not in _STANDARD_FIELDS}


def _change(position: int, domain_event: DomainEventProtocol[Any]) -> Change:
    event = cast(Any, domain_event)
    cls = type(event)
    return Change(
        position=position,
        aggregate_id=event.originator_id,
        aggregate_type=cls.__qualname__.split(".")[0],
        event=cls.__name__,
        version=event.originator_version,
        actor=getattr(event, "actor", ""),
        effective_at=getattr(event, "effective_at", event.timestamp),
        recorded_at=event.timestamp,
        data=_event_data(event),
    )


def _counts(
    by_stage: Mapping[Any, int], by_kind: Mapping[Any, int], by_owner: Mapping[Any, int]
) -> PartyCounts:
    owners = {str(k): v for k, v in by_owner.items() if k is not None}
    return PartyCounts(
        total=sum(by_stage.values()),
        by_stage={Stage(k): v for k, v in by_stage.items()},
        by_kind={PartyKind(k): v for k, v in by_kind.items()},
        by_owner=dict(sorted(owners.items())),
        unassigned=int(by_owner.get(None, 0)),
    )


def _counts_of_rows(rows: Iterable[Row]) -> PartyCounts:
    by_stage: dict[Any, int] = {}
    by_kind: dict[Any, int] = {}
    by_owner: dict[Any, int] = {}
    for row in rows:
        for table, field in ((by_stage, "stage"), (by_kind, "kind"), (by_owner, "owner")):
            table[row.get(field)] = table.get(row.get(field), 0) + 1
    return _counts(by_stage, by_kind, by_owner)


def _live_criteria(rows: Iterable[Row]) -> dict[str, Criterion]:
    """The criteria of the segments among ``rows`` (``segments`` view rows) that are not retired."""
    return {r["segment_id"]: parse_criteria(r["criteria"], check=False) for r in rows if not r["retired"]}


def _segment_view(row: Row) -> SegmentView:
    return SegmentView(id=UUID(row["segment_id"]), version=row["version"], name=row["name"],
                       description=row["description"], criteria=row["criteria"], retired=row["retired"],
                       retired_reason=row["retired_reason"], defined_at=row["defined_at"],
                       last_effective_at=row["changed_at"])


def _member(party_id: str, facts: Mapping[str, Any], kept: Row | None) -> SegmentMember:
    return SegmentMember(party_id=UUID(party_id), name=facts["name"], stage=facts["stage"],
                         since=kept["since"] if kept else None, cause=kept["cause"] if kept else None)


#: The engagement kind of each engagement event topic.
_REPORT_KINDS = {get_topic(cls): kind for cls, kind in KIND_OF_EVENT.items()}


def _decided(
    status: AddressStatus | None, row: Row, timeline: list[consent.BounceDecision], policy: BouncePolicy,
    actor: str,
) -> tuple[AddressStatus, int]:
    """The address's status aggregate (created if None) with the decisions it lacks to read as
    ``timeline`` under ``policy``, and how many were added (0: none needed; the aggregate is then
    unchanged, or None was given and an unsaved one is returned)."""
    recorded = [suppression.RecordedDecision(d["suppressed"], d["effective_at"], d["evidence"])
                for d in (status.decisions if status is not None else [])]
    changes = suppression.reconcile(timeline, recorded, policy)
    if status is None:
        first = changes[0].effective_at if changes else utc_now()
        status = AddressStatus(address_key=row["address_key"], address=row["address"] or row["address_key"],
                               actor=actor, effective_at=first)
    for change in changes:
        status.decide(suppress=change.suppressed, rule=change.rule, reason=change.reason,
                      policy=policy.stamp(), evidence=list(change.evidence), actor=actor,
                      effective_at=change.effective_at)
    return status, len(changes)


def _address_decision(decision: Mapping[str, Any]) -> AddressDecision:
    return AddressDecision(
        suppressed=decision["suppressed"], effective_at=decision["effective_at"],
        recorded_at=decision["recorded_at"], rule=decision["rule"], reason=decision["reason"],
        policy=dict(decision["policy"]), evidence=list(decision["evidence"]), actor=decision["actor"],
    )


def _unsubscribe(party: Party, decision: suppression.UnsubscribeParty) -> None:
    """Unsubscribe ``party`` as a reported unsubscription says (a known external id records nothing)."""
    party.unsubscribe_from(channel=decision.channel, source=decision.source, actor=decision.actor,
                           evidence=decision.evidence, external_id=decision.external_id,
                           effective_at=decision.effective_at)
