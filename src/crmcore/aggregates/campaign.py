"""The ``Campaign`` aggregate: a promotion over a newsletter, telemarketing or both, to a frozen audience.

Lifecycle: draft -> scheduled -> running (launched, audience frozen) -> completed, or cancelled from any
state that is not final. The audience is recorded at launch, per channel, with every exclusion and its
reason; newsletter sends are recorded in waves (who was released, who was skipped and why); costs add
up; telemarketing operators and the call list's split are recorded as moves. What recipients did (opens,
clicks, bounces, calls) are facts from outside, kept in ``Engagement`` aggregates, not here.

Public methods check the rules and raise (``IllegalTransition``, ``InvalidInput``) before any event;
the private ``@event`` methods only mutate state and never raise. Ids are kept as text inside lists so
large audiences stay plain JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from crmcore._ids import new_uuid7
from crmcore.aggregates.party import _check_not_future, _next_effective_time
from crmcore.exceptions import CurrencyMismatch, IllegalTransition, InvalidInput
from crmcore.values import CampaignChannel, CampaignStatus, Money, utc_now

__all__ = ["CAMPAIGN_EVENTS", "Campaign"]

#: How long a campaign's name, description, cost note and cancellation reason may be.
NAME_MAX, TEXT_MAX = 100, 2000


class Campaign(Aggregate):
    """A campaign: name, channels, audience segment, budget and cost, and its lifecycle."""

    class Event(Aggregate.Event):
        """Every campaign event says who did it and when it took effect."""

        actor: str
        effective_at: datetime

    class Drafted(Event, Aggregate.Created):
        name: str
        description: str | None
        channels: list[str]
        segment_id: UUID
        budget: dict[str, str]
        include_inactive: bool
        exclude_open_negotiations: bool

    class Revised(Event):
        """Some of the draft's settings changed: ``changes`` holds only those (same keys as ``Drafted``)."""

        changes: dict[str, Any]

    class Scheduled(Event):
        start_at: datetime

    class Launched(Event):
        """The audience, frozen: ``recipients`` per channel as ``[party_id, address]``, ``exclusions`` as
        ``[party_id, channel, reason, detail]``; membership was read at ``audience_at`` under ``policy``."""

        audience_at: datetime
        recipients: dict[str, list[list[str]]]
        exclusions: list[list[str]]
        policy: dict[str, Any]

    class Sent(Event):
        """Newsletter wave ``wave`` went to ``recipients``; ``skipped`` (``[party_id, reason]``) did not."""

        channel: str
        wave: int
        recipients: list[list[str]]
        skipped: list[list[str]]

    class CostRecorded(Event):
        amount: dict[str, str]
        note: str | None

    class OperatorsChanged(Event):
        """Operators joined or left the call list; ``moves`` (``[party_id, from, to]``, ``from`` empty for
        a first assignment) rebalanced its open entries."""

        added: list[str]
        removed: list[str]
        moves: list[list[str]]

    class Completed(Event):
        pass

    class Cancelled(Event):
        reason: str

    @staticmethod
    def create_id(**_: Any) -> UUID:
        """Campaigns get time-ordered UUIDv7 ids."""
        return new_uuid7()

    # ------------------------------------------------------------------ commands

    @classmethod
    def draft(
        cls,
        *,
        name: str,
        channels: Sequence[CampaignChannel | str],
        segment_id: UUID,
        budget: Money,
        actor: str,
        description: str | None = None,
        include_inactive: bool = False,
        exclude_open_negotiations: bool = True,
        effective_at: datetime | None = None,
    ) -> Campaign:
        """A new draft campaign; the segment must have been checked by the caller."""
        return cls(
            name=_name(name), description=_text(description, "description"), channels=_channels(channels),
            segment_id=segment_id, budget=budget.stored(), include_inactive=bool(include_inactive),
            exclude_open_negotiations=bool(exclude_open_negotiations), actor=actor,
            effective_at=_check_not_future(effective_at or utc_now()),
        )

    def revise(self, *, actor: str, effective_at: datetime | None = None, **changes: Any) -> bool:
        """Change settings of a draft or scheduled campaign; the same values record nothing (False).

        Accepts ``name``, ``description``, ``channels``, ``segment_id``, ``budget`` (Money),
        ``include_inactive``, ``exclude_open_negotiations``.
        """
        at = self._when(effective_at, CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, action="revise")
        checked: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "name":
                checked[key] = _name(value)
            elif key == "description":
                checked[key] = _text(value, "description")
            elif key == "channels":
                checked[key] = _channels(value)
            elif key == "segment_id":
                checked[key] = str(value)
            elif key == "budget":
                if not isinstance(value, Money):
                    raise _invalid("budget", "give Money")
                checked[key] = value.stored()
            elif key in ("include_inactive", "exclude_open_negotiations"):
                checked[key] = bool(value)
            else:
                raise _invalid(key, f"a campaign has no setting {key!r}")
        current = self.settings()
        different = {k: v for k, v in checked.items() if current.get(k) != v}
        if not different:
            return False
        self._revised(changes=different, actor=actor, effective_at=at)
        return True

    def schedule(self, *, start_at: datetime, actor: str, effective_at: datetime | None = None) -> None:
        """Schedule a draft to start at ``start_at`` (an aware date-time)."""
        at = self._when(effective_at, CampaignStatus.DRAFT, action="schedule")
        if not isinstance(start_at, datetime) or start_at.tzinfo is None:
            raise _invalid("start_at", "give an aware date-time")
        self._scheduled(start_at=start_at, actor=actor, effective_at=at)

    def launch(
        self,
        *,
        audience_at: datetime,
        recipients: Mapping[str, Sequence[Sequence[str]]],
        exclusions: Sequence[Sequence[str]],
        policy: Mapping[str, Any],
        actor: str,
        effective_at: datetime | None = None,
    ) -> None:
        """Start a scheduled campaign with its audience frozen (computed by the audience policy)."""
        at = self._when(effective_at, CampaignStatus.SCHEDULED, action="launch")
        unknown = set(recipients) - set(self.channels)
        if unknown:
            raise _invalid("recipients", f"channels {sorted(unknown)} are not the campaign's")
        self._launched(
            audience_at=audience_at,
            recipients={c: [[str(p), str(a)] for p, a in recipients.get(c, ())] for c in self.channels},
            exclusions=[[str(x) for x in e] for e in exclusions], policy=dict(policy), actor=actor,
            effective_at=at,
        )

    def send(
        self,
        *,
        recipients: Sequence[Sequence[str]],
        skipped: Sequence[Sequence[str]],
        actor: str,
        effective_at: datetime | None = None,
    ) -> int:
        """Record the next newsletter wave; returns its number. Each recipient must be in the newsletter
        audience and not sent before (the caller re-checks consent and suppression)."""
        at = self._when(effective_at, CampaignStatus.RUNNING, action="send")
        if CampaignChannel.NEWSLETTER.value not in self.channels:
            raise IllegalTransition(f"campaign {self.id} has no newsletter to send")
        audience = self.recipients.get(CampaignChannel.NEWSLETTER.value, {})
        for party_id, _ in recipients:
            if party_id not in audience:
                raise _invalid("recipients", f"party {party_id} is not in the newsletter audience")
            if party_id in self.sent:
                raise _invalid("recipients", f"party {party_id} was sent in wave {self.sent[party_id]}")
        wave = self.waves + 1
        self._sent(channel=CampaignChannel.NEWSLETTER.value, wave=wave,
                   recipients=[[str(p), str(a)] for p, a in recipients],
                   skipped=[[str(p), str(r)] for p, r in skipped], actor=actor, effective_at=at)
        return wave

    def record_cost(
        self, *, amount: Money, actor: str, note: str | None = None, effective_at: datetime | None = None,
    ) -> None:
        """Add a cost (in the budget's currency) to a scheduled, running, completed or cancelled campaign."""
        at = self._when(effective_at, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING,
                        CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, action="record a cost for")
        if not isinstance(amount, Money):
            raise _invalid("amount", "give Money")
        if amount.currency != self.budget_currency:
            raise CurrencyMismatch(self.budget_currency, amount.currency)
        self._cost_recorded(amount=amount.stored(), note=_text(note, "note"), actor=actor, effective_at=at)

    def change_operators(
        self,
        *,
        added: Sequence[str],
        removed: Sequence[str],
        moves: Sequence[Sequence[str]],
        actor: str,
        effective_at: datetime | None = None,
    ) -> bool:
        """Record operators joining or leaving and the moves that rebalance the call list (computed by
        :mod:`crmcore.policies.calllist`). Nothing to change records nothing (False)."""
        at = self._when(effective_at, CampaignStatus.RUNNING, action="change the operators of")
        if CampaignChannel.TELEMARKETING.value not in self.channels:
            raise IllegalTransition(f"campaign {self.id} has no telemarketing")
        if not added and not removed and not moves:
            return False
        calls = self.recipients.get(CampaignChannel.TELEMARKETING.value, {})
        after = (set(self.operators) | set(added)) - set(removed)
        for party_id, _, to in moves:
            if party_id not in calls:
                raise _invalid("moves", f"party {party_id} is not on the call list")
            if to not in after:
                raise _invalid("moves", f"{to!r} is not an operator of the campaign")
        self._operators_changed(added=list(added), removed=list(removed),
                                moves=[[str(p), str(f), str(t)] for p, f, t in moves], actor=actor,
                                effective_at=at)
        return True

    def complete(self, *, actor: str, effective_at: datetime | None = None) -> None:
        """Close a running campaign."""
        at = self._when(effective_at, CampaignStatus.RUNNING, action="complete")
        self._completed(actor=actor, effective_at=at)

    def cancel(self, *, reason: str, actor: str, effective_at: datetime | None = None) -> None:
        """Cancel a draft, scheduled or running campaign, saying why."""
        at = self._when(effective_at, CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING,
                        action="cancel")
        text = _text(reason, "reason")
        if text is None:
            raise _invalid("reason", "give a reason")
        self._cancelled(reason=text, actor=actor, effective_at=at)

    # ------------------------------------------------------------------ reading

    @property
    def budget_currency(self) -> str:
        """The currency of the budget, costs and ROI."""
        return self.budget["currency"]

    def settings(self) -> dict[str, Any]:
        """The settings a draft may revise, in their stored form."""
        return {
            "name": self.name, "description": self.description, "channels": list(self.channels),
            "segment_id": str(self.segment_id), "budget": dict(self.budget),
            "include_inactive": self.include_inactive,
            "exclude_open_negotiations": self.exclude_open_negotiations,
        }

    def state(self) -> dict[str, Any]:
        """The campaign as plain data."""
        return {
            "id": self.id, "version": self.version, **self.settings(), "segment_id": self.segment_id,
            "status": self.status.value, "start_at": self.start_at, "launched_at": self.launched_at,
            "audience_at": self.audience_at,
            "cost": {"amount": str(self.cost), "currency": self.budget_currency},
            "recipients": {c: len(r) for c, r in self.recipients.items()},
            "excluded": len(self.exclusions), "sent": len(self.sent), "waves": self.waves,
            "operators": list(self.operators), "cancel_reason": self.cancel_reason,
            "drafted_at": self.created_on, "last_effective_at": self.last_effective_at,
        }

    def _when(
        self, effective_at: datetime | None, *allowed: CampaignStatus, action: str,
    ) -> datetime:
        if self.status not in allowed:
            raise IllegalTransition(f"cannot {action} campaign {self.id}: it is {self.status.value}")
        return _next_effective_time(effective_at, self.last_effective_at, "campaign")

    # ------------------------------------------------------------------ mutators (never raise)

    @event(Drafted)
    def __init__(
        self, *, name: str, description: str | None, channels: list[str], segment_id: UUID,
        budget: dict[str, str], include_inactive: bool, exclude_open_negotiations: bool, actor: str,
        effective_at: datetime,
    ) -> None:
        self.name, self.description, self.channels = name, description, list(channels)
        self.segment_id = segment_id
        self.budget = dict(budget)
        self.include_inactive, self.exclude_open_negotiations = include_inactive, exclude_open_negotiations
        self.status = CampaignStatus.DRAFT
        self.start_at: datetime | None = None
        self.launched_at: datetime | None = None
        self.audience_at: datetime | None = None
        #: channel -> {party id text: address}
        self.recipients: dict[str, dict[str, str]] = {}
        self.exclusions: list[list[str]] = []
        #: the audience policy's name and version the launch recorded
        self.launch_policy: dict[str, Any] = {}
        #: newsletter: party id text -> the wave it was sent in
        self.sent: dict[str, int] = {}
        self.waves = 0
        self.cost = Decimal(0)
        self.operators: list[str] = []
        #: telemarketing: party id text -> operator
        self.assigned: dict[str, str] = {}
        self.cancel_reason: str | None = None
        self.last_effective_at = effective_at

    @event(Revised)
    def _revised(self, changes: dict[str, Any], actor: str, effective_at: datetime) -> None:
        for key, value in changes.items():
            if key == "segment_id":
                self.segment_id = UUID(str(value))
            elif key == "channels":
                self.channels = list(value)
            elif key == "budget":
                self.budget = dict(value)
            else:
                setattr(self, key, value)
        self.last_effective_at = effective_at

    @event(Scheduled)
    def _scheduled(self, start_at: datetime, actor: str, effective_at: datetime) -> None:
        self.status, self.start_at = CampaignStatus.SCHEDULED, start_at
        self.last_effective_at = effective_at

    @event(Launched)
    def _launched(
        self, audience_at: datetime, recipients: dict[str, list[list[str]]], exclusions: list[list[str]],
        policy: dict[str, Any], actor: str, effective_at: datetime,
    ) -> None:
        self.status, self.launched_at, self.audience_at = CampaignStatus.RUNNING, effective_at, audience_at
        self.recipients = {channel: {p: a for p, a in pairs} for channel, pairs in recipients.items()}
        self.exclusions = [list(e) for e in exclusions]
        self.launch_policy = dict(policy)
        self.last_effective_at = effective_at

    @event(Sent)
    def _sent(
        self, channel: str, wave: int, recipients: list[list[str]], skipped: list[list[str]], actor: str,
        effective_at: datetime,
    ) -> None:
        for party_id, _ in recipients:
            self.sent[party_id] = wave
        self.waves = wave
        self.last_effective_at = effective_at

    @event(CostRecorded)
    def _cost_recorded(
        self, amount: dict[str, str], note: str | None, actor: str, effective_at: datetime,
    ) -> None:
        self.cost += Decimal(amount["amount"])
        self.last_effective_at = max(self.last_effective_at, effective_at)

    @event(OperatorsChanged)
    def _operators_changed(
        self, added: list[str], removed: list[str], moves: list[list[str]], actor: str,
        effective_at: datetime,
    ) -> None:
        gone = set(removed)
        self.operators = [o for o in self.operators if o not in gone] + [
            o for o in added if o not in self.operators and o not in gone]
        for party_id, _, to in moves:
            self.assigned[party_id] = to
        self.last_effective_at = effective_at

    @event(Completed)
    def _completed(self, actor: str, effective_at: datetime) -> None:
        self.status = CampaignStatus.COMPLETED
        self.last_effective_at = effective_at

    @event(Cancelled)
    def _cancelled(self, reason: str, actor: str, effective_at: datetime) -> None:
        self.status, self.cancel_reason = CampaignStatus.CANCELLED, reason
        self.last_effective_at = effective_at


#: The campaign events, in the order of the class.
CAMPAIGN_EVENTS: tuple[type[Campaign.Event], ...] = (
    Campaign.Drafted, Campaign.Revised, Campaign.Scheduled, Campaign.Launched, Campaign.Sent,
    Campaign.CostRecorded, Campaign.OperatorsChanged, Campaign.Completed, Campaign.Cancelled,
)


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", [{"loc": (field,), "msg": message, "type": "value_error"}])


def _name(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > NAME_MAX:
        raise _invalid("name", f"give 1 to {NAME_MAX} characters")
    return text


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > TEXT_MAX:
        raise _invalid(field, f"text of at most {TEXT_MAX} characters")
    return value.strip() or None


def _channels(value: Iterable[Any]) -> list[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise _invalid("channels", "give a list: newsletter, telemarketing, or both in the order they run")
    chosen: list[str] = []
    for item in value:
        try:
            channel = CampaignChannel(item).value
        except ValueError:
            raise _invalid("channels", f"{item!r} is not one of newsletter, telemarketing") from None
        if channel in chosen:
            raise _invalid("channels", f"{channel} is given twice")
        chosen.append(channel)
    if not chosen:
        raise _invalid("channels", "give at least one channel")
    return chosen
