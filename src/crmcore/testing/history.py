"""A seeded, plausible history of a CRM over two years, built straight on the aggregates, for hygiene.

:func:`simulate_history` plays ``parties`` persons and organizations through a stretch of time (two years
by default) and returns the aggregates that record it, in an order that saves in batches
(:func:`load_history`), with a :class:`HistorySummary` of what it made: how many parties end at each
stage, how many never moved, which are stale and inactive, the opportunities, the mailings. It never goes
through the per-party CRM commands (it must scale to 100,000 parties): it calls the aggregates' own
commands, whose rules still hold - every event of an aggregate is generated in effective-time order, as
the aggregates require. The same seed always gives the same history; only the aggregate ids (time-ordered,
drawn as the aggregates are built) and the recording times differ between two runs.

What happens, and the numbers behind it (DOMAIN.md gives the anchors; each is a module constant):

- **Registration.** Persons (85 %) and organizations (15 %) are registered over the whole period: a quarter
  of them in an initial import during the first week, the rest spread evenly. Most start as suspects (50 %)
  or leads (about 40 %); a few come in already qualified (3-4 %) or as customers from the ERP (5-6 %).
  A person has an e-mail address and a phone number (60 %), only an e-mail address (25 %), only a phone
  (8 %) or neither (7 %) - the incomplete records of "Data hygiene: Completeness"; an organization has a VAT
  number (80 %), an info@ address (70 %) and a switchboard (80 %). The profile trait ``region`` is one of
  the Italian regions, Lombardy the most frequent (:data:`REGIONS`); 15 % are left empty, and a rep fills
  in 40 % of those when qualifying the party.
- **Lifecycle.** 45 % of suspects engage and become leads after a stay of 75 days on average. Leads are
  worked in 90 days on average (DOMAIN: "the average time a contact takes to be worked (e.g. 3 months)"),
  times each rep's pace (:data:`OWNERS`: one rep works at 0.8 of the average, one at 1.3, one at 1.8);
  35 % of leads are routed to a rep as they come in, every qualified party is assigned when qualified
  (save 3 %, left unowned). Of the leads 45 % are qualified (persons become prospects, organizations
  targets), 20 % disqualified (8 % of those re-opened months later, then worked again) and 35 % never
  move: with the suspects that never engage, these are the stale contacts of "Data hygiene: Stale
  contacts". Stays are gamma-distributed (shape 2), so some are short and some long.
- **Opportunities.** 65 % of the prospects and targets get an opportunity within about three weeks, owned
  by their rep, in EUR (lognormal, about 18,000 typical), moved through the default pipeline's stages: 40 %
  are won (the party converts to customer at the moment of the win, naming it, exactly as the
  conversion policy would), 45 % lost (then the party is disqualified in 30 % of cases, gets a second try
  in 15 %, else stays a prospect), 15 % stall and stay open. Deals last 75 days on average times the
  rep's pace. Of the prospects with no opportunity, 35 % are disqualified after about four months.
  15 % of customers buy again (a second opportunity, won in 55 % of cases).
- **Consent.** 85 % of the parties with an e-mail address subscribe to the newsletter, 55 % of those with
  a phone to phone calls, within two days of registration; 6 % (newsletter) and 5 % (phone) unsubscribe
  later from the preference centre, and more unsubscribe from the newsletter itself.
- **Newsletter.** A quarterly newsletter (``include_inactive``: a company that has not cleaned its list
  mails everyone) goes to every party subscribed at launch, except addresses suppressed and parties in an
  open negotiation (the campaign default), each excluded with its reason. The mail tool reports, per
  recipient: a hard bounce (2 % of addresses are wrong from the start, and 6 % a year go bad), a soft
  bounce (3 %; a quarter of those are a full mailbox retried three times within three days, which the
  bounce policy treats as a hard bounce), else a delivery; opens (one to three) and clicks (27 % of
  openers, so about 8 % of the list - DOMAIN's ~30 % opens and ~8 % clicks), unsubscribes (0.5 %) and
  complaints (0.1 %). Each party reads with its own propensity: a quarter are keen (60 % of mailings),
  a third regular (30 %), 30 % drift away (from 40 %, halving every two months after a moment in their
  first year) and 12 % hardly ever read (3 %): the campaigns' open rate falls from about 36 % to about
  29 % over the two years, and about a third of the parties mailed for a year
  end inactive (no open or click for 12 months, the engagement policy's default).
  Unsubscriptions and complaints unsubscribe their recipient, and hard bounces, repeated soft bounces and
  complaints suppress the address (``AddressStatus`` decisions): both recorded as the engagement
  policies decide them (``crm.run_policies()`` after loading finds nothing left to record).
- **Custom fields.** A field catalog is started at the beginning with ``industry`` (a choice, organizations,
  75 %), ``linkedin`` (a web link, 30 % of persons) and ``attention`` (a coloured label on 10 % of the
  qualified parties); half-way through, ``industry`` loses its ``retail`` choice (replaced by
  ``commerce``), so the values written before break the current rules (what ``crm.scan_fields()`` finds).
- **Duplicates.** 1 % of the parties are a person registered a second time, months later, as a lead met at
  an event: a slightly different name (a typo), the same e-mail address (its claim stays with the first
  record, as an import that skipped the check would have left it), no newsletter consent.

What it adds up to (10,000 parties, seed 0; :class:`HistorySummary` has the counts): after two years
29 % suspects, 26 % leads, 17 % prospects and targets, 12 % customers and 16 % disqualified; measured
stays of 71 days (suspect), 89 (lead), about 125 (prospect, target); 47 % of the parties stale by design
06's defaults - mostly suspects that never engaged and leads nobody worked: a list nobody cleaned -, 31 %
of the parties ever mailed inactive, 12 % of the addresses mailed suppressed; about 11 events a party.

Ids: parties, opportunities and campaigns get their aggregates' own time-ordered ids; reports get the ids
their source and external id give (``h<seed>-…``), so loading the same history twice collides instead
of doubling. Recording times are those of the load: ``known_at`` before the load sees nothing.
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from stdnum import luhn

from crmcore.aggregates.campaign import Campaign
from crmcore.aggregates.catalog import NAMESPACE, FieldCatalog
from crmcore.aggregates.claim import IdentityClaim
from crmcore.aggregates.engagement import AddressStatus, Engagement
from crmcore.aggregates.opportunity import Opportunity
from crmcore.aggregates.party import Party, identity_keys_of
from crmcore.fields import FieldDefinition, FieldKind, LabelChoice
from crmcore.policies import suppression
from crmcore.policies.consent import BounceDecision, BounceFold, BouncePolicy, BounceReport
from crmcore.policies.conversion import cause_of_win
from crmcore.policies.engagement import DEFAULT_ENGAGEMENT, EngagementPolicy
from crmcore.policies.pipelines import DEFAULT_LOST_REASONS, DEFAULT_PIPELINE, Pipeline
from crmcore.values import (
    CampaignChannel,
    Channel,
    ConsentChannel,
    EngagementKind,
    ExclusionReason,
    Money,
    PartyKind,
    Stage,
    utc_now,
)

if TYPE_CHECKING:
    from crmcore.application import CRM

__all__ = [
    "OWNERS",
    "REGIONS",
    "HistorySummary",
    "SimulatedHistory",
    "load_history",
    "simulate_history",
]

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

#: The sales reps and their pace: how long they take over a stay or a deal, relative to the average.
OWNERS: tuple[tuple[str, float], ...] = (
    ("giulia", 0.8), ("marco", 1.0), ("sara", 1.0), ("luca", 1.3), ("paolo", 1.8),
)
#: Regions (the ``region`` profile trait) and their weights; Lombardy the largest.
REGIONS: tuple[tuple[str, int], ...] = (
    ("Lombardy", 24), ("Lazio", 12), ("Campania", 9), ("Veneto", 9), ("Emilia-Romagna", 8),
    ("Piedmont", 8), ("Tuscany", 7), ("Sicily", 7), ("Apulia", 6), ("Liguria", 3), ("Sardinia", 3),
    ("Marche", 2), ("Friuli-Venezia Giulia", 2),
)

# -- the numbers (see the module docstring) -------------------------------------------------------------
ORGANIZATION_SHARE = 0.15
DUPLICATE_SHARE = 0.01
IMPORT_SHARE, IMPORT_DAYS = 0.25, 7
PERSON_STAGES = ((Stage.SUSPECT, 50), (Stage.LEAD, 42), (Stage.PROSPECT, 3), (Stage.CUSTOMER, 5))
ORGANIZATION_STAGES = ((Stage.SUSPECT, 50), (Stage.LEAD, 40), (Stage.TARGET, 4), (Stage.CUSTOMER, 6))
#: persons: (email, phone) present, with weights
PERSON_CONTACTS = (((True, True), 60), ((True, False), 25), ((False, True), 8), ((False, False), 7))
ORG_VAT, ORG_EMAIL, ORG_PHONE = 0.80, 0.70, 0.80
REGION_MISSING, REGION_FILLED_AT_QUALIFICATION = 0.15, 0.40

ENGAGE, SUSPECT_DAYS = 0.45, 75.0
ROUTED, LEAD_DAYS = 0.35, 90.0
QUALIFY, DISQUALIFY, REOPEN = 0.45, 0.20, 0.08
UNOWNED_QUALIFIED = 0.03
OPPORTUNITY, OPPORTUNITY_AFTER_DAYS, DEAL_DAYS = 0.65, 20.0, 75.0
WON, LOST = 0.40, 0.45  # the rest stall and stay open
LOST_THEN_DISQUALIFIED, LOST_THEN_RETRIED = 0.30, 0.15
NO_DEAL_DISQUALIFIED, NO_DEAL_DAYS = 0.35, 120.0
REPEAT, REPEAT_WON, REPEAT_LOST = 0.15, 0.55, 0.35

NEWSLETTER_CONSENT, PHONE_CONSENT = 0.85, 0.55
NEWSLETTER_LEAVES, PHONE_LEAVES = 0.06, 0.05
QUARTER = timedelta(days=91)
FIRST_SEND = timedelta(days=45)
REPORT_WINDOW = timedelta(days=14)
BAD_AT_START, BAD_PER_YEAR = 0.02, 0.06
SOFT_BOUNCE, PERSISTENT_SOFT = 0.03, 0.25
CLICK_GIVEN_OPEN = 0.27
UNSUBSCRIBE, COMPLAINT = 0.005, 0.001
#: readers: (share, open propensity, drifts away)
READERS = ((0.25, 0.60, False), (0.33, 0.30, False), (0.30, 0.40, True), (0.12, 0.03, False))
DRIFT_HALF_LIFE_DAYS, DRIFT_FLOOR = 60.0, 0.02

LINKEDIN, INDUSTRY, ATTENTION = 0.30, 0.75, 0.10
RULES_CHANGE_AT = 0.55  # of the period

#: What the hygiene design reads by default: stale after 2.5 times the average stay; 20 stays to measure
#: one; 90 days when there are fewer; inactive after 365 days (design 06 § 1).
STALE_FACTOR, MIN_SAMPLES, FALLBACK_DAYS = 2.5, 20, 90.0
STALE_CANDIDATE_DAYS = 225.0  # 2.5 x 3 months: DOMAIN's "6-8 months in the example"
OPEN_STAGES = (Stage.SUSPECT, Stage.LEAD, Stage.PROSPECT, Stage.TARGET)

_GIVEN = (
    "Giuseppe", "Giovanni", "Antonio", "Mario", "Luigi", "Francesco", "Marco", "Alessandro", "Andrea",
    "Luca", "Matteo", "Lorenzo", "Davide", "Simone", "Federico", "Riccardo", "Stefano", "Roberto", "Paolo",
    "Niccolò", "Maria", "Anna", "Giulia", "Francesca", "Chiara", "Sara", "Martina", "Elena", "Valentina",
    "Federica", "Silvia", "Laura", "Paola", "Elisa", "Alessia", "Sofia", "Aurora", "Beatrice", "Ilaria",
    "Marta",
)
_FAMILY = (
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco",
    "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa", "Giordano", "Rizzo", "Lombardi", "Moretti",
    "Barbieri", "Fontana", "Santoro", "Mariani", "Rinaldi", "Caruso", "Ferrara", "Galli", "Martini",
    "Leone", "Longo", "Gentile", "Martinelli", "Vitale", "Lombardo", "Serra", "Coppola", "De Santis",
    "D'Angelo", "Marchetti", "Parisi", "Villa", "Conte", "Ferraro", "Ferri", "Fabbri", "Bianco", "Marini",
    "Grasso", "Valentini",
)
_SECTORS = (
    ("Meccanica", "manufacturing"), ("Impianti", "manufacturing"), ("Logistica", "logistics"),
    ("Alimentari", "food"), ("Software", "software"), ("Consulting", "services"), ("Costruzioni", "services"),
    ("Tessile", "manufacturing"), ("Arredamenti", "retail"), ("Elettronica", "manufacturing"),
    ("Market", "retail"), ("Servizi", "services"),
)
_LEGAL = ("S.r.l.", "S.p.A.", "S.n.c.", "S.a.s.")
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
_CHANNELS = (
    (Channel.WEB_FORM, 30), (Channel.EMAIL, 20), (Channel.DOWNLOAD, 15), (Channel.PHONE, 10),
    (Channel.EVENT, 10), (Channel.SOCIAL, 8), (Channel.REFERRAL, 5), (Channel.MEETING, 2),
)
_CONSENT_SOURCES = ("web form", "web form", "event", "shop")
_DISQUALIFIED = ("no budget", "not in our market", "cannot decide", "no response", "customer of a competitor")
_LINKS = ("https://example.com/offer", "https://example.com/webinar", "https://example.com/pricing")
_INDUSTRY_BEFORE = ("manufacturing", "retail", "services", "software", "logistics", "food")
_INDUSTRY_AFTER = ("manufacturing", "commerce", "services", "software", "logistics", "food")
_ATTENTION = (LabelChoice(value="hot", colour="red"), LabelChoice(value="follow up", colour="orange"))

#: Actors of the recorded events.
MARKETING, MAILER, SOURCE = "marketing", "mailer", "mailer"


@dataclass(frozen=True)
class HistorySummary:
    """What a simulated history made, counted at its end (``end``), for tests to assert against loosely."""

    start: datetime
    end: datetime
    seed: int
    #: every aggregate event the history records
    events: int
    parties: int
    persons: int
    organizations: int
    #: stage value -> parties at that stage at the end (disqualified included)
    by_stage: Mapping[str, int]
    #: owner -> parties owned at the end; ``unassigned`` have none
    by_owner: Mapping[str, int]
    unassigned: int
    #: parties still at the stage they were registered at, never having moved
    never_progressed: int
    reopened: int
    #: stage value -> (mean length in days of the completed stays in it, how many)
    stage_averages: Mapping[str, tuple[float, int]]
    #: parties in an open stage unchanged for longer than 225 days (7.5 months) at the end
    stale_candidates: int
    #: parties stale by design 06's defaults at the end: in an open stage for longer than 2.5 times the
    #: stage's measured average (90 days below 20 stays), with no open opportunity
    stale: int
    opportunities: int
    open_opportunities: int
    won: int
    lost: int
    won_value: Money
    campaigns: int
    #: newsletter recipients over all campaigns
    sent: int
    #: engagement reports
    reports: int
    #: parties with evidence of a delivered newsletter
    mailed: int
    #: parties inactive at the end under the default engagement policy
    inactive: int
    #: consent channel -> parties subscribed (unsubscribed) at the end
    subscribed: Mapping[str, int]
    unsubscribed: Mapping[str, int]
    #: addresses suppressed at the end (hard bounce, repeated soft bounces, complaint)
    suppressed: int
    #: persons with no e-mail address, with no phone, with neither
    missing_email: int
    missing_phone: int
    missing_contact: int
    missing_region: int
    #: organizations at target or customer with no VAT number
    missing_vat: int
    #: prospects, targets and customers with no owner
    unowned_qualified: int
    #: custom field values the current rules refuse (``industry`` = ``retail`` written before the change)
    rule_breaks: int
    #: (first record, duplicate) pairs
    duplicates: tuple[tuple[UUID, UUID], ...]


@dataclass(frozen=True)
class SimulatedHistory:
    """The aggregates recording a history (unsaved, in save order) and its summary."""

    aggregates: list[Aggregate]
    summary: HistorySummary
    party_ids: tuple[UUID, ...]
    campaign_ids: tuple[UUID, ...]
    opportunity_ids: tuple[UUID, ...]

    @property
    def start(self) -> datetime:
        return self.summary.start

    @property
    def end(self) -> datetime:
        return self.summary.end


def simulate_history(
    *,
    parties: int,
    seed: int = 0,
    start: datetime,
    years: float = 2,
    owners: Sequence[tuple[str, float]] = OWNERS,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    organization_share: float = ORGANIZATION_SHARE,
    duplicate_share: float = DUPLICATE_SHARE,
    custom_fields: bool = True,
) -> SimulatedHistory:
    """A seeded history of ``parties`` parties (duplicates included) over ``years`` from ``start``.

    ``start`` must be timezone-aware and the end (``start`` + ``years``) not in the future: effective times
    are never in the future. ``owners`` are the reps with their pace (1.0: the average). ``custom_fields``
    starts a field catalog (the store's only one: load into a store that has none). See the module
    docstring for what happens and with which numbers.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    if parties < 1:
        raise ValueError("parties: give at least 1")
    if not owners:
        raise ValueError("owners: give at least one sales rep")
    begin = start.astimezone(UTC).replace(microsecond=0)
    end = begin + timedelta(days=365 * years)
    if end > utc_now():
        raise ValueError(f"the history would end in the future ({end.isoformat()}): start earlier")
    return _Simulation(
        parties=parties, seed=seed, start=begin, end=end, owners=owners, pipeline=pipeline,
        organization_share=organization_share, duplicate_share=duplicate_share, custom_fields=custom_fields,
    ).run()


def load_history(crm: CRM, history: SimulatedHistory, *, batch_size: int = 5000) -> int:
    """Save ``history`` into ``crm``, ``batch_size`` aggregates per transaction; returns how many events.

    Each batch's events go to the store's recorder in one insert, as ``crm`` would save them, without the
    application's per-object checks (which cost a third of the time); a batch holding an aggregate due for a
    snapshot, or a CRM with change listeners, is saved through the CRM instead. A history loads once: its
    aggregates then have no pending events left.
    """
    if batch_size < 1:
        raise ValueError("batch_size: give at least 1")
    app = crm._app
    intervals = dict(app.snapshotting_intervals or {})
    direct = not crm._listeners
    saved = 0
    aggregates = history.aggregates
    for first in range(0, len(aggregates), batch_size):
        batch = aggregates[first : first + batch_size]
        if not direct or any(a.version >= intervals.get(type(a), a.version + 1) for a in batch):
            saved += sum(len(a.pending_events) for a in batch)
            crm._save(*batch)
            continue
        events = [event for aggregate in batch for event in aggregate.collect_events()]
        app.recorder.insert_events([app.mapper.to_stored_event(event) for event in events])
        saved += len(events)
    return saved


# -- the simulation -----------------------------------------------------------------------------------


@dataclass
class _Seed:
    """A party to be: what is drawn before its life is played."""

    index: int
    kind: PartyKind
    at: datetime
    stage: Stage
    name: str
    identity: dict[str, Any]
    profile: dict[str, Any]
    channel: Channel | None
    source: str
    #: the ``industry`` custom field value an organization would be given
    industry: str | None = None
    duplicate_of: int | None = None
    #: identity keys the party holds without a claim (a duplicate's shared e-mail address)
    unclaimed: frozenset[str] = frozenset()


@dataclass
class _Deal:
    key: int
    opened: datetime
    closed: datetime | None = None
    status: str = "open"
    amount: Decimal = Decimal(0)
    reasons: tuple[str, ...] = ()


@dataclass
class _Life:
    """One party's planned moments, in the order they are drawn (sorted by time when played)."""

    moments: list[tuple[datetime, int, str, dict[str, Any]]] = field(default_factory=list)
    stays: list[tuple[Stage, datetime]] = field(default_factory=list)
    deals: list[_Deal] = field(default_factory=list)
    owner: str | None = None
    reopened: bool = False

    def add(self, at: datetime, action: str, **data: Any) -> None:
        self.moments.append((at, len(self.moments), action, data))

    @property
    def stage(self) -> Stage:
        return self.stays[-1][0]

    def move(self, stage: Stage, at: datetime) -> None:
        self.stays.append((stage, at))


@dataclass
class _Send:
    """One campaign's schedule and what it collects."""

    index: int
    campaign: Campaign
    launch: datetime
    send: datetime
    recipients: list[list[str]] = field(default_factory=list)
    exclusions: list[list[str]] = field(default_factory=list)


class _Simulation:
    def __init__(
        self, *, parties: int, seed: int, start: datetime, end: datetime, owners: Sequence[tuple[str, float]],
        pipeline: Pipeline, organization_share: float, duplicate_share: float, custom_fields: bool,
    ) -> None:
        self.rng = random.Random(seed)
        self.parties, self.seed, self.start, self.end = parties, seed, start, end
        self.owners = [name for name, _ in owners]
        self.pace = dict(owners)
        self.pipeline = pipeline
        self.organization_share, self.duplicate_share = organization_share, duplicate_share
        self.custom_fields = custom_fields
        self.span = end - start
        self.rules_change = start + self.span * RULES_CHANGE_AT
        self.bounce_policy = BouncePolicy()
        self.engagement_policy: EngagementPolicy = DEFAULT_ENGAGEMENT
        self.prefix = f"h{seed}"
        self.front: list[Aggregate] = []  # saved first: the catalog and the campaigns
        self.rest: list[Aggregate] = []
        self.party_ids: list[UUID] = []
        self.opportunity_ids: list[UUID] = []
        self.counts: Counter[str] = Counter()
        self.stays_done: dict[Stage, list[float]] = {}
        self.final: list[dict[str, Any]] = []  # per party, what the summary reads
        self.engagement: dict[int, tuple[datetime | None, datetime | None]] = {}
        self.deal_number = 0

    # ------------------------------------------------------------------ the whole

    def run(self) -> SimulatedHistory:
        if self.custom_fields:
            self.front.append(self._catalog())
        self.sends = self._campaigns()
        seeds = self._seeds()
        for seed in seeds:
            self._play(seed)
        for send in self.sends:
            self._launch(send)
        aggregates = self.front + self.rest
        summary = self._summary(seeds, aggregates)
        return SimulatedHistory(
            aggregates=aggregates, summary=summary, party_ids=tuple(self.party_ids),
            campaign_ids=tuple(s.campaign.id for s in self.sends),
            opportunity_ids=tuple(self.opportunity_ids),
        )

    def days(self, mean: float) -> timedelta:
        """A stay of ``mean`` days on average: gamma-distributed, shape 2."""
        return timedelta(days=self.rng.gammavariate(2.0, mean / 2.0))

    def between(self, low: datetime, high: datetime) -> datetime:
        seconds = max(0, int((high - low).total_seconds()))
        return low + timedelta(seconds=self.rng.randrange(seconds + 1))

    # ------------------------------------------------------------------ catalog and campaigns

    def _catalog(self) -> FieldCatalog:
        catalog = FieldCatalog.start(actor=MARKETING, effective_at=self.start)
        for definition in (
            FieldDefinition(name="industry", kind=FieldKind.CHOICE, choices=_INDUSTRY_BEFORE,
                            label="Industry"),
            FieldDefinition(name="linkedin", kind=FieldKind.WEB_LINK, label="LinkedIn profile"),
            FieldDefinition(name="attention", kind=FieldKind.LABEL, choices=_ATTENTION, label="Attention"),
        ):
            catalog.define(definition, actor=MARKETING, effective_at=self.start)
        self.catalog_before = catalog.version
        catalog.change_rules(
            FieldDefinition(name="industry", kind=FieldKind.CHOICE, choices=_INDUSTRY_AFTER,
                            label="Industry"),
            actor=MARKETING, effective_at=self.rules_change,
        )
        self.catalog_after = catalog.version
        return catalog

    def _campaigns(self) -> list[_Send]:
        sends: list[_Send] = []
        at = self.start + FIRST_SEND
        while at + REPORT_WINDOW < self.end:
            index = len(sends)
            drafted = at - 14 * DAY
            quarter = (at.month - 1) // 3 + 1
            campaign = Campaign.draft(
                name=f"Newsletter {at.year} Q{quarter}", channels=[CampaignChannel.NEWSLETTER],
                segment_id=uuid5(NAMESPACE, f"history:{self.seed}:newsletter subscribers"),
                budget=Money.of("2000", "EUR"), actor=MARKETING, include_inactive=True,
                description="The quarterly newsletter to every subscriber", effective_at=drafted,
            )
            campaign.schedule(start_at=at, actor=MARKETING, effective_at=drafted + DAY)
            sends.append(_Send(index, campaign, at - 2 * HOUR, at))
            self.front.append(campaign)
            at += QUARTER
        return sends

    def _launch(self, send: _Send) -> None:
        campaign = send.campaign
        campaign.launch(
            audience_at=send.launch, recipients={CampaignChannel.NEWSLETTER.value: send.recipients},
            exclusions=send.exclusions, policy={"name": "audience", "version": 1}, actor=MARKETING,
            effective_at=send.launch,
        )
        if send.recipients:
            campaign.send(recipients=send.recipients, skipped=[], actor=MARKETING, effective_at=send.send)
        cost = Decimal(200) + (Decimal("0.01") * len(send.recipients)).quantize(Decimal("0.01"))
        campaign.record_cost(amount=Money.of(str(cost), "EUR"), note="mail tool and design",
                             actor=MARKETING, effective_at=send.send)
        done = send.send + REPORT_WINDOW + DAY
        if done <= self.end:
            campaign.complete(actor=MARKETING, effective_at=done)

    # ------------------------------------------------------------------ who

    def _seeds(self) -> list[_Seed]:
        rng = self.rng
        duplicates = round(self.parties * self.duplicate_share) if self.parties >= 100 else 0
        originals = self.parties - duplicates
        seeds: list[_Seed] = []
        last = self.end - DAY
        for index in range(originals):
            if rng.random() < IMPORT_SHARE:
                at, source = self.between(self.start, self.start + IMPORT_DAYS * DAY), "import"
            else:
                at, source = self.between(self.start, last), rng.choice(_CONSENT_SOURCES)
            organization = rng.random() < self.organization_share
            seeds.append(self._organization(index, at, source) if organization
                         else self._person(index, at, source))
        persons = [s for s in seeds if s.kind is PartyKind.PERSON and s.identity.get("emails")
                   and s.at < last - 60 * DAY]
        for number, original in enumerate(rng.sample(persons, min(duplicates, len(persons)))):
            seeds.append(self._duplicate(originals + number, original, last))
        seeds.sort(key=lambda s: (s.at, s.index))
        return seeds

    def _person(self, index: int, at: datetime, source: str) -> _Seed:
        rng = self.rng
        given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
        has_email, has_phone = _weighted(rng, PERSON_CONTACTS)
        identity: dict[str, Any] = {"given_name": given, "family_name": family}
        if has_email:
            local = f"{_slug(given)}.{_slug(family)}.{self.seed}.{index}"
            identity["emails"] = [f"{local}@{rng.choice(_DOMAINS)}"]
        if has_phone:
            identity["phones"] = [self._phone(index)]
        stage = _weighted(rng, PERSON_STAGES)
        return _Seed(index, PartyKind.PERSON, at, stage, f"{given} {family}", identity, self._profile(),
                     self._channel(stage), source)

    def _organization(self, index: int, at: datetime, source: str) -> _Seed:
        rng = self.rng
        family, (sector, industry) = rng.choice(_FAMILY), rng.choice(_SECTORS)
        name = f"{family} {sector} {rng.choice(_LEGAL)}"
        identity: dict[str, Any] = {}
        if rng.random() < ORG_VAT:
            identity["vat_number"] = self._vat(index)
        if rng.random() < ORG_EMAIL:
            identity["emails"] = [f"info@{_slug(family)}-{_slug(sector)}-{self.seed}-{index}.example.com"]
        if rng.random() < ORG_PHONE:
            identity["phones"] = [self._phone(index)]
        stage = _weighted(rng, ORGANIZATION_STAGES)
        return _Seed(index, PartyKind.ORGANIZATION, at, stage, name, identity, self._profile(),
                     self._channel(stage), source, industry=industry)

    def _duplicate(self, index: int, original: _Seed, last: datetime) -> _Seed:
        """The same person registered again later: a typo in a name, the same e-mail address."""
        rng = self.rng
        given, family = original.identity["given_name"], original.identity["family_name"]
        if rng.random() < 0.5:
            family = _typo(rng, family)
        else:
            given = _typo(rng, given)
        identity: dict[str, Any] = {"given_name": given, "family_name": family,
                                    "emails": list(original.identity["emails"])}
        if rng.random() < 0.5:
            identity["phones"] = [self._phone(index)]
        at = self.between(original.at + 30 * DAY, min(last, original.at + 365 * DAY))
        profile = {k: v for k, v in original.profile.items() if rng.random() < 0.5}
        unclaimed = frozenset(f"email:{e.lower()}" for e in identity["emails"])
        return _Seed(index, PartyKind.PERSON, at, Stage.LEAD, f"{given} {family}", identity, profile,
                     Channel.EVENT, "event", duplicate_of=original.index, unclaimed=unclaimed)

    def _profile(self) -> dict[str, Any]:
        if self.rng.random() < REGION_MISSING:
            return {}
        return {"region": _weighted(self.rng, REGIONS)}

    def _channel(self, stage: Stage) -> Channel | None:
        return None if stage is Stage.SUSPECT else _weighted(self.rng, _CHANNELS)

    def _phone(self, index: int) -> str:
        """An Italian mobile number in E.164 form, unique per index and seed."""
        return f"+393{20 + self.seed % 80:02d}{index:07d}"

    def _vat(self, index: int) -> str:
        office = f"{self.rng.randint(1, 100):03d}"
        head = f"{(self.seed * 7_919 + index) % 9_999_999 + 1:07d}{office}"
        return f"IT{head}{luhn.calc_check_digit(head)}"

    def _owner(self) -> str:
        return self.rng.choice(self.owners)

    # ------------------------------------------------------------------ one life

    def _play(self, seed: _Seed) -> None:
        """Plan one party's life, then record it on its aggregates (each one's events in time order)."""
        life = _Life()
        life.move(seed.stage, seed.at)
        if seed.stage in (Stage.PROSPECT, Stage.TARGET, Stage.CUSTOMER):
            life.owner = self._owner()
        party = Party.register(
            kind=seed.kind, stage=seed.stage, name=seed.name, actor=MARKETING, effective_at=seed.at,
            channel=seed.channel, owner=life.owner, profile=dict(seed.profile), identity=seed.identity,
        )
        self._lifecycle(seed, life)
        self._fields(seed, life)
        consents = self._consent(seed, life)
        reports, status = self._mailings(seed, life, party.id, consents)
        aggregates: list[Aggregate] = [party]
        aggregates += [
            IdentityClaim(key=key, holder=party.id, actor=MARKETING, effective_at=seed.at)
            for key in sorted(identity_keys_of(seed.identity) - seed.unclaimed)
        ]
        deals = self._record(party, life)
        aggregates += deals.values()
        aggregates += reports
        if status is not None:
            aggregates.append(status)
        self.rest += aggregates
        self.party_ids.append(party.id)
        self._note(seed, life, party, deals)

    def _lifecycle(self, seed: _Seed, life: _Life) -> None:
        rng, end = self.rng, self.end
        at = seed.at
        if life.stage is Stage.SUSPECT and rng.random() < ENGAGE:
            engaged = at + self.days(SUSPECT_DAYS)
            if engaged < end:
                life.add(engaged, "engage", channel=_weighted(rng, _CHANNELS))
                life.move(Stage.LEAD, engaged)
                at = engaged
        while life.stage is Stage.LEAD:
            if life.owner is None and rng.random() < ROUTED:
                life.owner = self._owner()
                life.add(at, "assign", owner=life.owner)
            pace = self.pace.get(life.owner, 1.0) if life.owner else 1.0
            roll = rng.random()
            left = at + self.days(LEAD_DAYS * pace)
            if left >= end or roll >= QUALIFY + DISQUALIFY:
                return  # never worked, or not yet
            at = left
            if roll < QUALIFY:
                self._qualify(seed, life, at)
                break
            life.add(at, "disqualify", reason=rng.choice(_DISQUALIFIED))
            life.move(Stage.DISQUALIFIED, at)
            if life.reopened or rng.random() >= REOPEN:
                return
            again = at + timedelta(days=rng.uniform(60, 270))
            if again >= end:
                return
            at = again
            life.add(at, "reopen", reason="showed interest again")
            life.move(Stage.LEAD, at)
            life.reopened = True
        if life.stage in (Stage.PROSPECT, Stage.TARGET):
            at = self._work(seed, life, at)
        if life.stage is Stage.CUSTOMER and rng.random() < REPEAT:
            again = at + timedelta(days=rng.uniform(60, 300))
            self._deal(seed, life, again, won=REPEAT_WON, lost=REPEAT_LOST)

    def _qualify(self, seed: _Seed, life: _Life, at: datetime) -> None:
        rng = self.rng
        stage = Stage.PROSPECT if seed.kind is PartyKind.PERSON else Stage.TARGET
        life.add(at, "qualify")
        life.move(stage, at)
        if life.owner is None and rng.random() >= UNOWNED_QUALIFIED:
            life.owner = self._owner()
            life.add(at, "assign", owner=life.owner)
        if "region" not in seed.profile and rng.random() < REGION_FILLED_AT_QUALIFICATION:
            life.add(at, "profile", changes={"region": _weighted(rng, REGIONS)})
        if self.custom_fields and rng.random() < ATTENTION:
            life.add(at, "fields", values={"attention": rng.choice(_ATTENTION).value})

    def _work(self, seed: _Seed, life: _Life, at: datetime) -> datetime:
        """A qualified party's deals (or none); returns when its last move happened."""
        rng, end = self.rng, self.end
        pace = self.pace.get(life.owner, 1.0) if life.owner else 1.0
        if rng.random() >= OPPORTUNITY:
            if rng.random() < NO_DEAL_DISQUALIFIED:
                gone = at + self.days(NO_DEAL_DAYS * pace)
                if gone < end:
                    life.add(gone, "disqualify", reason=rng.choice(_DISQUALIFIED))
                    life.move(Stage.DISQUALIFIED, gone)
                    return gone
            return at
        for attempt in range(2):
            opened = at + self.days(OPPORTUNITY_AFTER_DAYS * pace)
            deal = self._deal(seed, life, opened, won=WON, lost=LOST)
            if deal is None or deal.status != "lost" or deal.closed is None:
                return deal.closed if deal is not None and deal.closed is not None else at
            at = deal.closed
            roll = rng.random()
            if roll < LOST_THEN_DISQUALIFIED:
                gone = at + timedelta(days=rng.uniform(7, 60))
                if gone < end:
                    life.add(gone, "disqualify", reason=f"lost the deal: {deal.reasons[0]}")
                    life.move(Stage.DISQUALIFIED, gone)
                    return gone
                return at
            if attempt == 1 or roll >= LOST_THEN_DISQUALIFIED + LOST_THEN_RETRIED:
                return at
            at += timedelta(days=rng.uniform(60, 180))
        return at

    def _deal(self, seed: _Seed, life: _Life, opened: datetime, *, won: float, lost: float) -> _Deal | None:
        """Plan one opportunity opened at ``opened``: through the stages to a win, a loss or a stall."""
        rng, end = self.rng, self.end
        if opened >= end:
            return None
        owner = life.owner or self._owner()
        pace = self.pace.get(owner, 1.0)
        self.deal_number += 1
        amount = Decimal(max(500, round(rng.lognormvariate(9.8, 0.8), -2)))
        duration = self.days(DEAL_DAYS * pace)
        deal = _Deal(key=self.deal_number, opened=opened, amount=amount)
        life.deals.append(deal)
        life.add(opened, "open", key=deal.key, owner=owner, amount=amount,
                 close=(opened + duration * 1.1).date(), title=f"{seed.name}: deal {len(life.deals)}")
        stages = [s.name for s in self.pipeline.open_stages]
        roll = rng.random()
        outcome = "won" if roll < won else "lost" if roll < won + lost else "stalled"
        last = len(stages) - 1 if outcome == "won" else rng.randrange(len(stages))
        if outcome == "stalled":
            last = min(last, 2)
        steps = last + 1
        for number, stage in enumerate(stages[1 : last + 1], 1):
            moved = opened + duration * number / steps
            if moved >= end:
                return deal
            life.add(moved, "move", key=deal.key, stage=stage)
        closed = opened + duration
        if outcome == "stalled" or closed >= end:
            return deal
        if outcome == "won":
            life.add(closed, "win", key=deal.key)
            deal.status = "won"
            if life.stage in (Stage.PROSPECT, Stage.TARGET):
                life.move(Stage.CUSTOMER, closed)
        else:
            reasons = rng.sample(DEFAULT_LOST_REASONS, 1 if rng.random() < 0.7 else 2)
            life.add(closed, "lose", key=deal.key, reasons=reasons)
            deal.status, deal.reasons = "lost", tuple(reasons)
        deal.closed = closed
        return deal

    def _fields(self, seed: _Seed, life: _Life) -> None:
        if not self.custom_fields:
            return
        rng = self.rng
        industry = seed.industry
        at = seed.at
        if seed.kind is PartyKind.ORGANIZATION and industry is not None and rng.random() < INDUSTRY:
            if at >= self.rules_change and industry == "retail":
                industry = "commerce"
            life.add(at, "fields", values={"industry": industry})
        if seed.kind is PartyKind.PERSON and rng.random() < LINKEDIN:
            name = f"{_slug(seed.identity['given_name'])}-{_slug(seed.identity['family_name'])}-{seed.index}"
            life.add(at, "fields", values={"linkedin": f"https://www.linkedin.com/in/{name}"})

    def _consent(self, seed: _Seed, life: _Life) -> list[tuple[datetime, str, bool]]:
        """Plan subscriptions and preference-centre unsubscriptions; returns (when, channel, subscribed)."""
        rng, end = self.rng, self.end
        entries: list[tuple[datetime, str, bool]] = []
        wanted = []
        if seed.identity.get("emails") and seed.duplicate_of is None:
            wanted.append((ConsentChannel.NEWSLETTER.value, NEWSLETTER_CONSENT, NEWSLETTER_LEAVES))
        if seed.identity.get("phones"):
            wanted.append((ConsentChannel.PHONE.value, PHONE_CONSENT, PHONE_LEAVES))
        for channel, share, leaves in wanted:
            if rng.random() >= share:
                continue
            at = min(seed.at + timedelta(seconds=rng.randrange(2 * 86400)), end - HOUR)
            life.add(at, "subscribe", channel=channel, source=seed.source)
            entries.append((at, channel, True))
            if rng.random() < leaves:
                gone = self.between(at, end - HOUR)
                life.add(gone, "unsubscribe", channel=channel, source="preference centre", external_id=None,
                         evidence=None, actor=MARKETING)
                entries.append((gone, channel, False))
        return entries

    # ------------------------------------------------------------------ the newsletter

    def _mailings(
        self, seed: _Seed, life: _Life, party_id: UUID, consents: list[tuple[datetime, str, bool]],
    ) -> tuple[list[Engagement], AddressStatus | None]:
        """Each campaign's audience rule for this party and, when it is a recipient, what the mail tool
        reports. Unsubscriptions and complaints plan the party's unsubscription; bounces and complaints
        may suppress its address. Returns the reports and the address's decisions (None: none)."""
        rng = self.rng
        emails = seed.identity.get("emails") or []
        newsletter = [(at, on) for at, channel, on in consents if channel == ConsentChannel.NEWSLETTER.value]
        if not emails or not newsletter:
            return [], None
        address, who = emails[0], str(party_id)
        propensity, drifts = _reader(rng)
        drift_from = seed.at + timedelta(days=rng.uniform(0, 365)) if drifts else None
        bad_from = seed.at if rng.random() < BAD_AT_START else (
            seed.at + timedelta(days=rng.expovariate(BAD_PER_YEAR / 365)))
        fold = BounceFold(self.bounce_policy)
        timeline: list[BounceDecision] = []
        reports: list[Engagement] = []
        first_delivery: datetime | None = None
        last_engaged: datetime | None = None
        order = 0
        newsletter_channel = CampaignChannel.NEWSLETTER.value
        for send in self.sends:
            if seed.at >= send.launch:
                continue
            in_force = [on for at, on in sorted(newsletter) if at <= send.launch]
            if not in_force:
                continue
            excluded = None
            if not in_force[-1]:
                excluded = (ExclusionReason.UNSUBSCRIBED, "unsubscribed from the newsletter")
            elif fold.suppressed:
                excluded = (ExclusionReason.SUPPRESSED, f"{address} is suppressed")
            elif any(d.opened <= send.launch and (d.closed is None or d.closed > send.launch)
                     for d in life.deals):
                excluded = (ExclusionReason.OPEN_NEGOTIATION, "an opportunity is open")
            if excluded is not None:
                send.exclusions.append([who, newsletter_channel, excluded[0].value, excluded[1]])
                continue
            send.recipients.append([who, address])
            for kind, at, extra in self._reports(rng, send.send, propensity, drift_from, bad_from):
                order += 1
                external_id = f"{self.prefix}-{send.index}-{seed.index}-{order}"
                reports.append(Engagement.report(
                    kind, source=SOURCE, external_id=external_id, campaign_id=send.campaign.id,
                    party_id=party_id, channel=newsletter_channel, address=address, actor=MAILER,
                    effective_at=at, **extra,
                ))
                if kind in _EVIDENCE and first_delivery is None:
                    first_delivery = at
                if kind in (EngagementKind.OPENED, EngagementKind.CLICKED):
                    last_engaged = at if last_engaged is None else max(last_engaged, at)
                change = fold.add(BounceReport(at, kind.value, extra.get("raw_code"), external_id, order))
                if change is not None:
                    timeline.append(change)
                if kind in (EngagementKind.UNSUBSCRIBED, EngagementKind.COMPLAINT):
                    said = "a spam complaint" if kind is EngagementKind.COMPLAINT else "an unsubscription"
                    life.add(at, "unsubscribe", channel=ConsentChannel.NEWSLETTER.value, source=SOURCE,
                             external_id=external_id, actor=MAILER,
                             evidence=f"{said} reported for campaign {send.campaign.id}")
                    newsletter.append((at, False))
        self.engagement[seed.index] = (first_delivery, last_engaged)
        return reports, self._decisions(address, timeline)

    def _reports(
        self, rng: random.Random, sent: datetime, propensity: float, drift_from: datetime | None,
        bad_from: datetime,
    ) -> list[tuple[EngagementKind, datetime, dict[str, Any]]]:
        """What the mail tool reports about one recipient of a wave sent at ``sent``, in time order."""
        made: list[tuple[EngagementKind, datetime, dict[str, Any]]] = []
        if sent >= bad_from:
            made.append((EngagementKind.HARD_BOUNCE, sent + _minutes(rng, 60), {"raw_code": "550 5.1.1"}))
            return made
        if rng.random() < SOFT_BOUNCE:
            first = sent + _minutes(rng, 360)
            made.append((EngagementKind.SOFT_BOUNCE, first, {"raw_code": "452 4.2.2"}))
            if rng.random() < PERSISTENT_SOFT:  # a full mailbox, retried
                made += [(EngagementKind.SOFT_BOUNCE, first + later, {"raw_code": "452 4.2.2"})
                         for later in (DAY, 3 * DAY)]
            return made
        delivered = sent + _minutes(rng, 60)
        made.append((EngagementKind.DELIVERED, delivered, {}))
        chance = propensity
        if drift_from is not None and sent > drift_from:
            chance = max(DRIFT_FLOOR, propensity * 0.5 ** ((sent - drift_from) / DAY / DRIFT_HALF_LIFE_DAYS))
        if rng.random() < chance:
            opens = sorted(delivered + HOUR + _minutes(rng, 60 * 24 * 10)
                           for _ in range(rng.choice((1, 1, 1, 2, 3))))
            made += [(EngagementKind.OPENED, at, {}) for at in opens]
            if rng.random() < CLICK_GIVEN_OPEN:
                clicked = opens[0] + _minutes(rng, 30)
                made.append((EngagementKind.CLICKED, clicked, {"link": rng.choice(_LINKS)}))
        roll = rng.random()
        if roll < UNSUBSCRIBE:
            made.append((EngagementKind.UNSUBSCRIBED, delivered + _minutes(rng, 60 * 24 * 12), {}))
        elif roll < UNSUBSCRIBE + COMPLAINT:
            made.append((EngagementKind.COMPLAINT, delivered + _minutes(rng, 60 * 24 * 12), {}))
        made.sort(key=lambda m: m[1])
        return made

    # ------------------------------------------------------------------ recording

    def _record(self, party: Party, life: _Life) -> dict[int, Opportunity]:
        """Play the planned moments on the party and its opportunities in time order; returns those."""
        deals: dict[int, Opportunity] = {}
        for at, _, action, data in sorted(life.moments, key=lambda m: (m[0], m[1])):
            actor = party.owner or MARKETING
            if action == "engage":
                party.engage(channel=data["channel"], actor=MARKETING, effective_at=at)
            elif action == "assign":
                party.assign(owner=data["owner"], actor=MARKETING, effective_at=at)
            elif action == "qualify":
                party.qualify(actor=actor, effective_at=at)
            elif action == "disqualify":
                party.disqualify(reason=data["reason"], actor=actor, effective_at=at)
            elif action == "reopen":
                party.reopen(reason=data["reason"], actor=actor, effective_at=at)
            elif action == "profile":
                party.update_profile(changes=data["changes"], actor=actor, effective_at=at)
            elif action == "fields":
                version = self.catalog_after if at >= self.rules_change else self.catalog_before
                party.set_fields(values=data["values"], catalog_version=version, actor=actor, effective_at=at)
            elif action == "subscribe":
                party.subscribe_to(channel=data["channel"], source=data["source"], lawful_basis="consent",
                                   actor=MARKETING, effective_at=at)
            elif action == "unsubscribe":
                party.unsubscribe_from(channel=data["channel"], source=data["source"], actor=data["actor"],
                                       evidence=data["evidence"], external_id=data["external_id"],
                                       effective_at=at)
            elif action == "open":
                deal = Opportunity.open(
                    party_id=party.id, title=data["title"], owner=data["owner"],
                    value=Money(amount=data["amount"], currency="EUR"), pipeline=self.pipeline, stage=None,
                    expected_close=data["close"], actor=data["owner"], effective_at=at,
                )
                deals[data["key"]] = deal
                self.opportunity_ids.append(deal.id)
            elif action == "move":
                deal = deals[data["key"]]
                deal.move_stage(pipeline=self.pipeline, stage=data["stage"], actor=deal.owner,
                                effective_at=at)
            elif action == "win":
                deal = deals[data["key"]]
                deal.win(pipeline=self.pipeline, reasons=[], actor=deal.owner, effective_at=at)
                if party.stage in (Stage.PROSPECT, Stage.TARGET):  # conversion on a won deal, as the policy
                    party.convert(actor=deal.owner, reference=f"opportunity {deal.id}",
                                  caused_by=cause_of_win(deal.id, deal.version),
                                  effective_at=max(at, party.last_effective_at))
            elif action == "lose":
                deal = deals[data["key"]]
                deal.lose(pipeline=self.pipeline, reasons=list(data["reasons"]), actor=deal.owner,
                          effective_at=at)
            else:  # pragma: no cover - a planning mistake
                raise AssertionError(f"unknown action {action!r}")
        return deals

    def _decisions(self, address: str, timeline: list[Any]) -> AddressStatus | None:
        """The ``AddressStatus`` the engagement policy would record for ``address``'s decision timeline."""
        changes = suppression.reconcile(timeline, [], self.bounce_policy)
        if not changes:
            return None
        actor = f"policy:{self.bounce_policy.name}"
        status = AddressStatus(address_key=suppression.address_key_of(address), address=address,
                               actor=actor, effective_at=changes[0].effective_at)
        for change in changes:
            status.decide(suppress=change.suppressed, rule=change.rule, reason=change.reason,
                          policy=self.bounce_policy.stamp(), evidence=list(change.evidence),
                          actor=actor, effective_at=change.effective_at)
        self.counts["suppressed"] += status.suppressed
        return status

    # ------------------------------------------------------------------ counting

    def _note(self, seed: _Seed, life: _Life, party: Party, deals: Mapping[int, Opportunity]) -> None:
        if party.stage is not life.stage:  # pragma: no cover - the plan and the aggregate disagree
            raise AssertionError(f"party {seed.index}: planned {life.stage}, recorded {party.stage}")
        for (stage, since), (_, until) in zip(life.stays, life.stays[1:], strict=False):
            self.stays_done.setdefault(stage, []).append((until - since) / DAY)
        consent = {}
        for entry in sorted(party.consents, key=lambda e: e["effective_at"]):
            consent[entry["channel"]] = entry["status"]
        self.final.append({
            "index": seed.index, "id": party.id, "kind": party.kind, "stage": party.stage,
            "since": life.stays[-1][1], "moved": len(life.stays) > 1, "owner": party.owner,
            "open_deal": any(d.status.value == "open" for d in deals.values()),
            "deals": [(d.status.value, d.amount) for d in deals.values()],
            "consent": consent, "emails": party.emails, "phones": party.phones,
            "region": party.profile.get("region"), "vat": party.identity.get("vat_number"),
            "reopened": life.reopened, "duplicate_of": seed.duplicate_of,
            "rule_break": party.custom_fields.get("industry") == "retail" and self.custom_fields,
        })

    def _summary(self, seeds: Sequence[_Seed], aggregates: Sequence[Aggregate]) -> HistorySummary:
        end = self.end
        averages = {stage.value: (sum(days) / len(days), len(days))
                    for stage, days in self.stays_done.items()}
        overall = [d for days in self.stays_done.values() for d in days]
        stale = candidates = 0
        for row in self.final:
            if row["stage"] not in OPEN_STAGES:
                continue
            days = (end - row["since"]) / DAY
            candidates += days > STALE_CANDIDATE_DAYS
            mean = _average_for(averages.get(row["stage"].value), overall)
            stale += days > STALE_FACTOR * mean and not row["open_deal"]
        cutoff = end - self.engagement_policy.inactive_after
        inactive = mailed = 0
        for first, engaged in self.engagement.values():
            if first is None:
                continue
            mailed += 1
            inactive += first <= cutoff and (engaged is None or engaged <= cutoff)
        by_owner = Counter(row["owner"] for row in self.final if row["owner"])
        index_to_id = {row["index"]: row["id"] for row in self.final}
        persons = [row for row in self.final if row["kind"] is PartyKind.PERSON]
        deals = [deal for row in self.final for deal in row["deals"]]
        consent = Counter((channel, status)
                          for row in self.final for channel, status in row["consent"].items())
        return HistorySummary(
            start=self.start, end=end, seed=self.seed,
            events=sum(len(a.pending_events) for a in aggregates),
            parties=len(self.final), persons=len(persons), organizations=len(self.final) - len(persons),
            by_stage=dict(Counter(row["stage"].value for row in self.final)),
            by_owner=dict(by_owner), unassigned=sum(1 for row in self.final if not row["owner"]),
            never_progressed=sum(1 for row in self.final if not row["moved"] and row["stage"] in OPEN_STAGES),
            reopened=sum(1 for row in self.final if row["reopened"]),
            stage_averages=averages, stale_candidates=candidates, stale=stale,
            opportunities=len(deals), open_opportunities=sum(1 for s, _ in deals if s == "open"),
            won=sum(1 for s, _ in deals if s == "won"), lost=sum(1 for s, _ in deals if s == "lost"),
            won_value=Money(amount=sum((a for s, a in deals if s == "won"), Decimal(0)), currency="EUR"),
            campaigns=len(self.sends), sent=sum(len(s.recipients) for s in self.sends),
            reports=sum(1 for a in aggregates if isinstance(a, Engagement)),
            mailed=mailed, inactive=inactive,
            subscribed={c.value: consent[(c.value, "subscribed")] for c in ConsentChannel
                        if consent[(c.value, "subscribed")]},
            unsubscribed={c.value: consent[(c.value, "unsubscribed")] for c in ConsentChannel
                          if consent[(c.value, "unsubscribed")]},
            suppressed=self.counts["suppressed"],
            missing_email=sum(1 for row in persons if not row["emails"]),
            missing_phone=sum(1 for row in persons if not row["phones"]),
            missing_contact=sum(1 for row in persons if not row["emails"] and not row["phones"]),
            missing_region=sum(1 for row in self.final if not row["region"]),
            missing_vat=sum(1 for row in self.final if row["kind"] is PartyKind.ORGANIZATION
                            and row["stage"] in (Stage.TARGET, Stage.CUSTOMER) and not row["vat"]),
            unowned_qualified=sum(1 for row in self.final if not row["owner"]
                                  and row["stage"] in (Stage.PROSPECT, Stage.TARGET, Stage.CUSTOMER)),
            rule_breaks=sum(1 for row in self.final if row["rule_break"]),
            duplicates=tuple((index_to_id[row["duplicate_of"]], row["id"]) for row in self.final
                             if row["duplicate_of"] is not None),
        )


# -- helpers ------------------------------------------------------------------------------------------

#: Reports that prove a newsletter was delivered (what ``first_delivery`` of ``party_engagement`` reads).
_EVIDENCE = frozenset({EngagementKind.DELIVERED, EngagementKind.OPENED, EngagementKind.CLICKED,
                       EngagementKind.UNSUBSCRIBED, EngagementKind.COMPLAINT})


def _weighted(rng: random.Random, options: Sequence[tuple[Any, int]]) -> Any:
    values = [value for value, _ in options]
    weights = [weight for _, weight in options]
    return rng.choices(values, weights)[0]


def _reader(rng: random.Random) -> tuple[float, bool]:
    """A party's reading habit: its open propensity and whether it drifts away (:data:`READERS`)."""
    roll, total = rng.random(), 0.0
    for share, propensity, drifts in READERS:
        total += share
        if roll < total:
            return propensity, drifts
    return READERS[-1][1], READERS[-1][2]


def _minutes(rng: random.Random, most: int) -> timedelta:
    return timedelta(seconds=rng.randrange(60, most * 60 + 61))


def _slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def _typo(rng: random.Random, name: str) -> str:
    """``name`` with one letter dropped, doubled or two neighbours swapped (never the first letter)."""
    if len(name) < 4:
        return name + name[-1]
    at = rng.randrange(1, len(name) - 1)
    how = rng.randrange(3)
    if how == 0:
        return name[:at] + name[at + 1 :]
    if how == 1:
        return name[:at] + name[at] + name[at:]
    return name[:at] + name[at + 1] + name[at] + name[at + 2 :]


def _average_for(measured: tuple[float, int] | None, overall: Sequence[float]) -> float:
    if measured is not None and measured[1] >= MIN_SAMPLES:
        return measured[0]
    if len(overall) >= MIN_SAMPLES:
        return sum(overall) / len(overall)
    return FALLBACK_DAYS
