"""Consent and deliverability: may this party be contacted on this channel at that moment?

Pure functions over a party's ledgers (no I/O). A ledger is a list of plain, self-contained entries (dicts
with the fields of :class:`~crmcore.models.ConsentEntry` or :class:`~crmcore.models.DeliveryEntry`), so
ledgers of several parties can be concatenated and still be read. Entries are read in effective-time
order whatever order they were recorded in; entries effective at the same moment are read in recording
order (recording time, then position in the party's history).

The rules, with their default numbers (each configurable in :class:`BouncePolicy`):

- the last consent entry for the channel at or before the moment decides: subscribed allows,
  unsubscribed refuses, none refuses;
- e-mail and newsletter reach the party's e-mail address, phone and sms its phone number; with no
  address for the channel, contact is refused;
- a raw code is classified by the vendor map first, then as SMTP: ``5xx`` / ``5.x.x`` hard, ``4xx`` /
  ``4.x.x`` soft, ``2xx`` / ``2.x.x`` delivered; a code neither reads is left to the recorded outcome.

The bounce policy (``bounce``, version 2) reads every report on one address - the party's delivery ledger
entries and the engagement reports of campaigns alike (:class:`BounceReport`) - in effective-time order
(then recording order), so a late report counts where it happened:

- a hard bounce suppresses the address at once (rule ``hard_bounce``);
- ``soft_bounce_limit`` (default 3) soft bounces, all within ``soft_bounce_window_days`` (default 60; the
  first and the last at most that many days apart, both ends included) and with no delivery between them,
  treat the address as hard-bounced (rule ``soft_bounces``): it stays suppressed, whatever soft bounces
  follow, until a delivery clears it;
- a spam complaint suppresses the address (rule ``complaint``); no delivery clears that;
- a delivery - or an open or a click, which prove one - resets the count of soft bounces, and, when
  ``delivery_clears_hard_bounce`` (default), reinstates a hard-bounced address (rule ``delivered``).

:func:`decision_timeline` gives every change of an address's state with its rule, reason, effective time
(the report that tipped it) and evidence (the reports it rests on); :func:`deliverability_of`,
:func:`deliverability_at` and :func:`may_contact` give the state at a moment, which is always the last
change of that timeline effective by then.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crmcore.identity import EmailAddress, PhoneNumber
from crmcore.models import ConsentEntry, ContactDecision, Deliverability, DeliveryEntry
from crmcore.values import (
    AddressKind,
    ConsentChannel,
    ConsentStatus,
    DeliveryOutcome,
    LawfulBasis,
)

__all__ = [
    "ADDRESS_KIND",
    "RULE_COMPLAINT",
    "RULE_DELIVERED",
    "RULE_HARD_BOUNCE",
    "RULE_REAPPLIED",
    "RULE_SOFT_BOUNCES",
    "AddressKind",
    "BounceDecision",
    "BounceFold",
    "BouncePolicy",
    "BounceReport",
    "ConsentChannel",
    "ConsentStatus",
    "DeliveryOutcome",
    "LawfulBasis",
    "address_kind_of",
    "bounce_state",
    "consent_at",
    "current_consent",
    "decision_timeline",
    "deliverability_at",
    "deliverability_of",
    "entry_order",
    "ledger_reports",
    "may_contact",
    "report_order",
    "state_at",
    "undeliverable",
]

#: Which kind of address each channel reaches.
ADDRESS_KIND: Mapping[ConsentChannel, AddressKind] = {
    ConsentChannel.EMAIL: AddressKind.EMAIL,
    ConsentChannel.NEWSLETTER: AddressKind.EMAIL,
    ConsentChannel.PHONE: AddressKind.PHONE,
    ConsentChannel.SMS: AddressKind.PHONE,
}

_ADDRESS_LABEL = {AddressKind.EMAIL: "e-mail address", AddressKind.PHONE: "phone number"}
_BASIC_CODE = re.compile(r"([245])[0-9]{2}")
_ENHANCED_CODE = re.compile(r"([245])\.[0-9]{1,3}\.[0-9]{1,3}")
_SMTP_CLASS = {
    "2": DeliveryOutcome.DELIVERED,
    "4": DeliveryOutcome.SOFT_BOUNCE,
    "5": DeliveryOutcome.HARD_BOUNCE,
}


class BouncePolicy(BaseModel):
    """How reports about an address (deliveries, bounces, complaints) decide whether it may be used.

    ``name`` and ``version`` identify the policy in every decision it takes (``bounce``, version 2: the
    version in which soft bounces counted within a window).
    ``soft_bounce_limit``: how many soft bounces, with no delivery between them, treat the address as
    hard-bounced (default 3).
    ``soft_bounce_window_days``: they count only when they all fall within this many days, measured on
    their effective times (default 60; None: no window, every soft bounce since the last delivery counts).
    ``vendor_codes``: codes of a sending tool (``"suppressed"``, ``"mailbox_full"``…) and what they mean;
    looked up case-insensitively, before the SMTP reading.
    ``delivery_clears_hard_bounce``: whether a delivery (or an open or a click, which prove one) after a
    hard bounce, or after the soft bounces that counted as one, makes the address usable again.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)] = "bounce"
    version: Annotated[int, Field(ge=1)] = 2
    soft_bounce_limit: Annotated[int, Field(ge=1)] = 3
    soft_bounce_window_days: Annotated[int, Field(ge=1)] | None = 60
    vendor_codes: Mapping[str, DeliveryOutcome] = Field(default_factory=dict)
    delivery_clears_hard_bounce: bool = True

    @field_validator("vendor_codes")
    @classmethod
    def _folded_codes(cls, value: Mapping[str, DeliveryOutcome]) -> Mapping[str, DeliveryOutcome]:
        return {code.strip().casefold(): outcome for code, outcome in value.items()}

    def stamp(self) -> dict[str, Any]:
        """The policy as its decisions record it: ``{"name": ..., "version": ...}``."""
        return {"name": self.name, "version": self.version}

    def classify(self, raw_code: str | None) -> DeliveryOutcome | None:
        """What a raw code means: a vendor code, else an SMTP basic or enhanced status; None if neither.

        ``"550"``, ``"5.1.1"`` and ``"550 5.1.1 user unknown"`` are hard bounces; ``"421"`` and ``"4.2.2"``
        soft bounces; ``"250"`` a delivery.
        """
        if raw_code is None:
            return None
        text = raw_code.strip()
        vendor = self.vendor_codes.get(text.casefold())
        if vendor is not None:
            return vendor
        first = text.split(maxsplit=1)[0] if text else ""
        for pattern in (_BASIC_CODE, _ENHANCED_CODE):
            match = pattern.fullmatch(first)
            if match is not None:
                return _SMTP_CLASS[match.group(1)]
        return None

    def outcome_of(self, entry: Mapping[str, Any]) -> DeliveryOutcome:
        """The outcome of a delivery entry under this policy: its raw code if readable, else as recorded."""
        return self.classify(entry.get("raw_code")) or DeliveryOutcome(entry["outcome"])

    def reading_of(self, outcome: str, raw_code: str | None = None) -> str | None:
        """What a report counts as: ``delivered``, ``soft_bounce``, ``hard_bounce`` or ``complaint``;
        None for reports that say nothing about the address (an unsubscription, a call).

        Delivery outcomes are read from their raw code when the policy can, as recorded otherwise; an open
        or a click proves a delivery.
        """
        if outcome in _DELIVERY_OUTCOMES:
            classified = self.classify(raw_code) if raw_code is not None else None
            return classified.value if classified is not None else outcome
        if outcome in _PROOFS_OF_DELIVERY:
            return _DELIVERED
        if outcome == RULE_COMPLAINT:
            return RULE_COMPLAINT
        return None


# ---------------------------------------------------------------------- the decision timeline of an address

#: The rules a decision names.
RULE_HARD_BOUNCE = "hard_bounce"
RULE_SOFT_BOUNCES = "soft_bounces"
RULE_COMPLAINT = "complaint"
RULE_DELIVERED = "delivered"
RULE_REAPPLIED = "reapplied"

_DELIVERED = DeliveryOutcome.DELIVERED.value
_SOFT = DeliveryOutcome.SOFT_BOUNCE.value
_HARD = DeliveryOutcome.HARD_BOUNCE.value
_DELIVERY_OUTCOMES = frozenset(o.value for o in DeliveryOutcome)
_PROOFS_OF_DELIVERY = frozenset({"opened", "clicked"})
_PROOF_REASON = {"opened": "an open was reported, proving a delivery",
                 "clicked": "a click was reported, proving a delivery"}


class BounceReport(NamedTuple):
    """One report about an address, as the bounce policy reads it.

    ``outcome``: ``delivered``, ``soft_bounce``, ``hard_bounce`` (read again from ``raw_code`` when the
    policy can), ``opened`` and ``clicked`` (proofs of delivery), ``complaint``; anything else is ignored.
    ``evidence`` names the report in decisions (an external id, or ``party:<id>:<version>`` for a party's
    ledger entry). Reports are read in ``effective_at`` order, then ``order`` (recording order).
    """

    effective_at: datetime
    outcome: str
    raw_code: str | None = None
    evidence: str = ""
    order: Any = 0


class BounceDecision(NamedTuple):
    """A change of an address's state: suppressed (or not) from ``effective_at``, by ``rule``, resting on
    the reports named in ``evidence``."""

    suppressed: bool
    effective_at: datetime
    rule: str
    reason: str
    evidence: tuple[str, ...]


def report_order(report: BounceReport) -> tuple[datetime, Any]:
    """The reading order of reports: effective time, then recording order."""
    return (report.effective_at, report.order)


class BounceFold:
    """The state of one address as reports are read in order (:meth:`add`, which returns a change).

    Suppressed while any of these holds: a hard bounce not cleared since; ``soft_bounce_limit`` soft
    bounces within the window with no delivery between them (then treated as hard-bounced until a
    clearing delivery); a spam complaint (never cleared by a delivery).
    """

    __slots__ = ("complaint", "hard", "last", "policy", "softs", "tipped")

    def __init__(self, policy: BouncePolicy) -> None:
        self.policy = policy
        #: the reports that keep the address suppressed, by cause (None: that cause does not hold)
        self.hard: tuple[str, ...] | None = None
        self.tipped: tuple[str, ...] | None = None
        self.complaint: tuple[str, ...] | None = None
        #: soft bounces counting towards the limit: (effective time, evidence)
        self.softs: list[tuple[datetime, str]] = []
        self.last: BounceReport | None = None

    @property
    def suppressed(self) -> bool:
        """Whether the address is suppressed after the reports read so far."""
        return self.hard is not None or self.tipped is not None or self.complaint is not None

    @property
    def hard_bounced(self) -> bool:
        """Hard-bounced, or treated as such after repeated soft bounces."""
        return self.hard is not None or self.tipped is not None

    def add(self, report: BounceReport) -> BounceDecision | None:
        """Read the next report; the change of state it makes, if any."""
        reading = self.policy.reading_of(report.outcome, report.raw_code)
        if reading is None:
            return None
        self.last = report
        before = self.suppressed
        rule, reason = "", ""
        if reading == _DELIVERED:
            self.softs = []
            if self.policy.delivery_clears_hard_bounce:
                self.hard = self.tipped = None
            rule, reason = RULE_DELIVERED, _PROOF_REASON.get(report.outcome, "a delivery was reported")
        elif reading == _SOFT:
            window = self.policy.soft_bounce_window_days
            if window is not None:
                earliest = report.effective_at - timedelta(days=window)
                self.softs = [s for s in self.softs if s[0] >= earliest]
            self.softs.append((report.effective_at, report.evidence))
            if len(self.softs) >= self.policy.soft_bounce_limit and self.tipped is None:
                self.tipped = tuple(e for _, e in self.softs)
                within = f"within {window} days " if window is not None else ""
                rule = RULE_SOFT_BOUNCES
                reason = (f"{len(self.softs)} soft bounces {within}with no delivery between them "
                          f"(limit {self.policy.soft_bounce_limit}): treated as hard-bounced")
        elif reading == _HARD:
            if self.hard is None:
                self.hard = (report.evidence,)
                code = f" ({report.raw_code})" if report.raw_code else ""
                rule, reason = RULE_HARD_BOUNCE, f"hard bounce reported{code}"
        elif self.complaint is None:
            self.complaint = (report.evidence,)
            rule, reason = RULE_COMPLAINT, "spam complaint reported"
        if self.suppressed == before:
            return None
        evidence = (report.evidence,) if reading != _SOFT else self.tipped or ()
        return BounceDecision(self.suppressed, report.effective_at, rule, reason, evidence)

    @property
    def cause(self) -> tuple[str, tuple[str, ...]] | None:
        """The rule keeping the address suppressed and its evidence (a complaint first), or None."""
        for rule, evidence in ((RULE_COMPLAINT, self.complaint), (RULE_HARD_BOUNCE, self.hard),
                               (RULE_SOFT_BOUNCES, self.tipped)):
            if evidence is not None:
                return rule, evidence
        return None


def decision_timeline(
    reports: Iterable[BounceReport], policy: BouncePolicy | None = None,
) -> list[BounceDecision]:
    """Every change of an address's state under ``policy``, reading its ``reports`` in effective-time
    order (then recording order), whatever order they are given in.

    The address starts deliverable; each decision says from when it is suppressed (or not), by which rule
    (``hard_bounce``, ``soft_bounces``, ``complaint``; ``delivered`` for a reinstatement) and on which
    reports. The state at a moment is that of the last decision effective by then (:func:`state_at`).
    """
    fold = BounceFold(policy or BouncePolicy())
    changes = []
    for report in sorted(reports, key=report_order):
        change = fold.add(report)
        if change is not None:
            changes.append(change)
    return changes


def state_at(timeline: Sequence[BounceDecision], at: datetime | None = None) -> BounceDecision | None:
    """The decision in force at ``at`` (None: after every decision), or None if none was effective then."""
    found = None
    for decision in timeline:
        if at is not None and decision.effective_at > at:
            break
        found = decision
    return found


def ledger_reports(entries: Iterable[Mapping[str, Any]]) -> list[BounceReport]:
    """Delivery ledger entries (:class:`~crmcore.models.DeliveryEntry` fields) as reports: each named
    ``party:<party id>:<version>``, read in effective time, recording time, then position order."""
    return [
        BounceReport(e["effective_at"], str(e["outcome"]), e.get("raw_code"),
                     f"party:{e.get('party_id')}:{e.get('version')}", (e["recorded_at"], e["version"]))
        for e in entries
    ]


def undeliverable(entries: Iterable[Mapping[str, Any]], policy: BouncePolicy) -> bool:
    """Whether reports kept by a view (``outcome``, ``raw_code``, ``order`` = [effective time as text,
    recording time as text, version]) leave the address suppressed under ``policy``."""
    fold = BounceFold(policy)
    for entry in sorted(entries, key=lambda e: tuple(e["order"])):
        order = entry["order"]
        fold.add(BounceReport(datetime.fromisoformat(order[0]), entry["outcome"], entry.get("raw_code")))
    return fold.suppressed


def address_kind_of(channel: ConsentChannel) -> AddressKind:
    """The kind of address ``channel`` reaches."""
    return ADDRESS_KIND[ConsentChannel(channel)]


def entry_order(entry: Mapping[str, Any]) -> tuple[datetime, datetime, int]:
    """The reading order of ledger entries: effective time, then recording time, then position."""
    return (entry["effective_at"], entry["recorded_at"], entry["version"])


def _until(entries: Iterable[Mapping[str, Any]], at: datetime | None) -> list[Mapping[str, Any]]:
    kept = [e for e in entries if at is None or e["effective_at"] <= at]
    return sorted(kept, key=entry_order)


def consent_at(
    entries: Iterable[Mapping[str, Any]], channel: ConsentChannel, at: datetime | None = None,
) -> ConsentEntry | None:
    """The consent entry in force for ``channel`` at ``at`` (None: the latest), or None if there is none."""
    wanted = ConsentChannel(channel).value
    relevant = [e for e in _until(entries, at) if e["channel"] == wanted]
    return ConsentEntry.model_validate(relevant[-1]) if relevant else None


def current_consent(entries: Iterable[Mapping[str, Any]]) -> dict[ConsentChannel, ConsentStatus]:
    """The latest status of every channel that has a consent entry."""
    status: dict[ConsentChannel, ConsentStatus] = {}
    for entry in _until(entries, None):
        status[ConsentChannel(entry["channel"])] = ConsentStatus(entry["status"])
    return {channel: status[channel] for channel in ConsentChannel if channel in status}


def bounce_state(ordered: Iterable[Mapping[str, Any]], policy: BouncePolicy) -> tuple[bool, int]:
    """After ledger entries on one address, in reading order: (hard-bounced, or treated as such after
    repeated soft bounces?, soft bounces counting towards the limit). Entries need ``effective_at``,
    ``outcome`` and ``raw_code``."""
    fold = BounceFold(policy)
    for entry in ordered:
        fold.add(BounceReport(entry["effective_at"], str(entry["outcome"]), entry.get("raw_code")))
    return fold.hard_bounced, len(fold.softs)


def deliverability_of(
    reports: Iterable[BounceReport],
    address_key: str,
    at: datetime | None = None,
    policy: BouncePolicy | None = None,
    *,
    last: Mapping[str, Any] | None = None,
) -> Deliverability:
    """Whether the address with ``address_key`` is deliverable at ``at`` (None: after every report), from
    its ``reports`` under ``policy``: the state :func:`decision_timeline` gives then. ``last`` is the
    latest ledger entry to show with it."""
    rules = policy or BouncePolicy()
    fold = BounceFold(rules)
    decided: BounceDecision | None = None
    for report in sorted(reports, key=report_order):
        if at is not None and report.effective_at > at:
            break
        decided = fold.add(report) or decided
    cause = fold.cause
    if cause is None:
        reason = ("the address is deliverable" if fold.last is not None
                  else "no delivery reported for the address")
    elif cause[0] == RULE_COMPLAINT:
        reason = "a spam complaint was reported for the address"
    elif cause[0] == RULE_HARD_BOUNCE:
        reason = "the address hard-bounced"
    else:
        window = rules.soft_bounce_window_days
        within = f" within {window} days" if window is not None else ""
        reason = (f"the address soft-bounced {len(cause[1])} time(s){within} with no delivery between them "
                  f"(limit {rules.soft_bounce_limit})")
    return Deliverability(
        address_key=address_key,
        at=at,
        deliverable=cause is None,
        reason=reason,
        hard_bounced=fold.hard_bounced,
        soft_bounces=len(fold.softs),
        last=DeliveryEntry.model_validate(last) if last is not None else None,
        rule=cause[0] if cause is not None else None,
        since=decided.effective_at if decided is not None and cause is not None else None,
        evidence=list(cause[1]) if cause is not None else [],
        policy=rules.stamp(),
    )


def deliverability_at(
    entries: Iterable[Mapping[str, Any]],
    address_key: str,
    at: datetime | None = None,
    policy: BouncePolicy | None = None,
) -> Deliverability:
    """Whether the address with ``address_key`` is deliverable at ``at`` (None: now), under ``policy``,
    from a party's delivery ledger entries: :func:`deliverability_of` over :func:`ledger_reports`."""
    relevant = _until((e for e in entries if e["address_key"] == address_key), at)
    return deliverability_of(ledger_reports(relevant), address_key, at, policy,
                             last=relevant[-1] if relevant else None)


def may_contact(
    consents: Iterable[Mapping[str, Any]],
    deliveries: Iterable[Mapping[str, Any]],
    channel: ConsentChannel,
    at: datetime | None = None,
    *,
    address: EmailAddress | PhoneNumber | None,
    policy: BouncePolicy | None = None,
    deliverability: Deliverability | None = None,
) -> ContactDecision:
    """Could the party whose ledgers these are be contacted on ``channel`` at ``at``, at ``address``?

    Allowed only when the consent in force is a subscription, an address of the channel's kind is given,
    and that address is deliverable then: as ``deliverability`` says when given (the caller read it
    elsewhere: recorded decisions, every report on the address), else as ``policy`` reads the party's
    ``deliveries``. The decision says why, and which entry decided.
    """
    channel = ConsentChannel(channel)
    entry = consent_at(consents, channel, at)
    shown = str(address) if address is not None else None

    def refuse(reason: str, deliverability: Deliverability | None = None) -> ContactDecision:
        return ContactDecision(allowed=False, reason=reason, channel=channel, at=at, address=shown,
                               consent=entry, deliverability=deliverability)

    if entry is None:
        return refuse(f"no consent recorded for {channel.value}")
    if entry.status is ConsentStatus.UNSUBSCRIBED:
        return refuse(f"unsubscribed from {channel.value} on {entry.effective_at.isoformat()} "
                      f"(source: {entry.source})")
    kind = ADDRESS_KIND[channel]
    if address is None:
        return refuse(f"no {_ADDRESS_LABEL[kind]} to reach the party by {channel.value}")
    if (kind is AddressKind.EMAIL) != isinstance(address, EmailAddress):
        return refuse(f"{shown} is not an {_ADDRESS_LABEL[kind]}, which {channel.value} needs")
    state = deliverability or deliverability_at(deliveries, address.key, at, policy)
    if not state.deliverable:
        return refuse(f"{shown}: {state.reason}", state)
    basis = entry.lawful_basis.value if entry.lawful_basis else "unstated"
    return ContactDecision(
        allowed=True,
        reason=(f"subscribed to {channel.value} on {entry.effective_at.isoformat()} "
                f"(lawful basis: {basis}; source: {entry.source})"),
        channel=channel, at=at, address=shown, consent=entry, deliverability=state,
    )
